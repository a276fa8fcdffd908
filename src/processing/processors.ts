// Image processors reproducing `transformers` 5 (default torchvision backend, or the PIL backend) from the raw
// `image_processor` dict (nested in processor_config.json or flat in preprocessor_config.json):
//   CLIPImageProcessor     → clipProcess      (LLaVA)
//   GotOcr2ImageProcessor  → gotOcr2Process   (InternVL dynamic tiling)
//   Qwen2VLImageProcessor  → qwen2vlProcess   (Qwen2-VL patch flattening)
// The order of operations and float32 rounding follow HF: antialiased resize and centre crop on
// uint8 (see resize.ts), then rescale + normalise into float32 (see toPlanar).
import fs from 'node:fs';
import path from 'node:path';
import { LightVLMError } from '../errors.js';
import { PIL_BICUBIC, resizeRgb, type ResizeBackend, type RgbImage } from './resize.js';

export type { ResizeBackend } from './resize.js';

/**
 * `backend`: whose arithmetic to reproduce. 'torchvision' (default) is transformers 5's default
 * image-processor backend and what the reference fixtures were made with; 'pil' is the
 * `*ImageProcessorPil` classes (stock Pillow). They differ by at most one uint8 level per pixel.
 */
export interface ProcessOptions {
  backend?: ResizeBackend;
}

/** The raw HF image-processor dict. */
export type ImageProcessorConfig = Record<string, unknown>;

const OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** Reads `preprocessor_config.json` (flat, transformers 4) or `processor_config.json` → "image_processor" (transformers 5). */
export function readImageProcessorConfig(modelDir: string): ImageProcessorConfig {
  const flat = path.join(modelDir, 'preprocessor_config.json');
  const nested = path.join(modelDir, 'processor_config.json');
  const parse = (file: string): Record<string, unknown> => {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new LightVLMError(`${file} is not valid JSON (${(e as Error).message}). Re-download the model folder.`, 'E_CONFIG');
    }
  };
  if (fs.existsSync(flat)) {
    const d = parse(flat);
    // Some exports nest it here too.
    const inner = d.image_processor;
    return inner && typeof inner === 'object' ? (inner as ImageProcessorConfig) : d;
  }
  if (fs.existsSync(nested)) {
    const d = parse(nested);
    const inner = d.image_processor;
    if (inner && typeof inner === 'object') return inner as ImageProcessorConfig;
    throw new LightVLMError(`${nested} has no "image_processor" section. The model folder lacks image-processor settings; add a preprocessor_config.json.`, 'E_CONFIG');
  }
  throw new LightVLMError(
    `no image-processor settings in ${modelDir}: expected preprocessor_config.json or processor_config.json (with an "image_processor" section). Download the full model folder.`, 'E_CONFIG');
}

// ---------- config helpers ----------

const bool = (cfg: ImageProcessorConfig, key: string, dflt: boolean): boolean => (typeof cfg[key] === 'boolean' ? (cfg[key] as boolean) : dflt);
const num = (cfg: ImageProcessorConfig, key: string, dflt: number): number => (typeof cfg[key] === 'number' ? (cfg[key] as number) : dflt);

function triple(cfg: ImageProcessorConfig, key: string, dflt: number[]): number[] {
  const v = cfg[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'number') return [v, v, v];
  if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number')) return v as number[];
  throw new LightVLMError(`image processor "${key}" must be a number or a list of 3 numbers, got ${JSON.stringify(v)}. Fix the image processor config.`, 'E_CONFIG');
}

interface SizeDict {
  height?: number;
  width?: number;
  shortest_edge?: number;
  longest_edge?: number;
}

// HF get_size_dict: an int means a square (default_to_square) or the shortest edge.
function sizeDict(v: unknown, defaultToSquare: boolean, dflt: SizeDict): SizeDict {
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'number') return defaultToSquare ? { height: v, width: v } : { shortest_edge: v };
  if (Array.isArray(v) && v.length === 2) return { height: v[0] as number, width: v[1] as number };
  if (typeof v === 'object') return v as SizeDict;
  throw new LightVLMError(`image processor size ${JSON.stringify(v)} is not understood. Use {"height","width"} or {"shortest_edge"}.`, 'E_CONFIG');
}

function resampleOf(cfg: ImageProcessorConfig, dflt: number): number {
  const r = cfg.resample;
  return typeof r === 'number' ? r : dflt;
}

// ---------- shared steps ----------

/**
 * Rescale + normalise into planar float32 [3, H, W], with HF's float32 rounding:
 * - PIL backend: x = f32(px * factor) (computed in float64), then f32(f32(x - mean) / std);
 * - torchvision backend (rescale and normalise fused): f32(f32(px - mean/factor) / (std/factor)),
 *   with mean/factor = f32(f32(mean) * f32(1/factor)); rescale alone = f32(px * f32(factor)).
 */
function toPlanar(img: RgbImage, cfg: ImageProcessorConfig, backend: ResizeBackend, out?: Float32Array, offset = 0): Float32Array {
  const doRescale = bool(cfg, 'do_rescale', true);
  const doNormalize = bool(cfg, 'do_normalize', true);
  const factor = num(cfg, 'rescale_factor', 1 / 255);
  const mean = triple(cfg, 'image_mean', OPENAI_CLIP_MEAN).map(Math.fround);
  const std = triple(cfg, 'image_std', OPENAI_CLIP_STD).map(Math.fround);
  const fused = backend === 'torchvision' && doRescale && doNormalize;
  const inv = Math.fround(1 / factor);
  const hw = img.width * img.height;
  const dst = out ?? new Float32Array(3 * hw);
  for (let c = 0; c < 3; c++) {
    // One lookup table per channel: the result only depends on the uint8 value.
    const lut = new Float32Array(256);
    const m = Math.fround(mean[c] * inv);
    const sd = Math.fround(std[c] * inv);
    for (let v = 0; v < 256; v++) {
      if (fused) {
        lut[v] = Math.fround(Math.fround(v - m) / sd);
        continue;
      }
      let x = !doRescale ? v : backend === 'pil' ? Math.fround(v * factor) : Math.fround(v * Math.fround(factor));
      if (doNormalize) x = Math.fround(Math.fround(x - mean[c]) / std[c]);
      lut[v] = x;
    }
    const base = offset + c * hw;
    for (let i = 0; i < hw; i++) dst[base + i] = lut[img.data[i * 3 + c]];
  }
  return dst;
}

// Centre crop on uint8 (before rescaling), zero-padding a side that is shorter than the crop.
// Where the image is larger it starts at floor((size - crop) / 2) in both backends; where it is
// smaller the image lands at ceil(d / 2) (numpy `center_crop`, PIL backend) or floor(d / 2)
// (torchvision backend pads left/top with d // 2), d = crop - size.
function centerCrop(img: RgbImage, cropH: number, cropW: number, backend: ResizeBackend): RgbImage {
  const place = (size: number, crop: number): { src: number; dst: number; n: number } => {
    if (crop <= size) return { src: Math.floor((size - crop) / 2), dst: 0, n: crop };
    const d = crop - size;
    return { src: 0, dst: backend === 'pil' ? Math.ceil(d / 2) : Math.floor(d / 2), n: size };
  };
  const py = place(img.height, cropH);
  const px = place(img.width, cropW);
  const out = new Uint8Array(cropH * cropW * 3);
  for (let y = 0; y < py.n; y++) {
    const s = ((py.src + y) * img.width + px.src) * 3;
    out.set(img.data.subarray(s, s + px.n * 3), ((py.dst + y) * cropW + px.dst) * 3);
  }
  return { width: cropW, height: cropH, data: out };
}

// PilBackend.resize target size from a size dict: (height, width).
function resizeTarget(img: RgbImage, size: SizeDict): [number, number] {
  const { height: H, width: W } = img;
  if (size.shortest_edge && size.longest_edge) {
    // get_size_with_aspect_ratio(image_size, shortest_edge, longest_edge)
    let s = size.shortest_edge;
    const maxSize = size.longest_edge;
    let raw: number | null = null;
    const minO = Math.min(H, W);
    const maxO = Math.max(H, W);
    if ((maxO / minO) * s > maxSize) {
      raw = (maxSize * minO) / maxO;
      s = pyRound(raw);
    }
    if ((H <= W && H === s) || (W <= H && W === s)) return [H, W];
    if (W < H) return [Math.trunc(raw !== null ? (raw * H) / W : (s * H) / W), s];
    return [s, Math.trunc(raw !== null ? (raw * W) / H : (s * W) / H)];
  }
  if (size.shortest_edge) {
    // get_resize_output_image_size(default_to_square=False): short side = size, long = int(size * long / short)
    const s = size.shortest_edge;
    const [short, long] = W <= H ? [W, H] : [H, W];
    const newLong = Math.trunc((s * long) / short);
    return W <= H ? [newLong, s] : [s, newLong];
  }
  if (size.height && size.width) return [size.height, size.width];
  throw new LightVLMError(`image processor size ${JSON.stringify(size)} must contain "height" and "width", or "shortest_edge". Fix the image processor config.`, 'E_CONFIG');
}

/** Python's round(): half to even. */
function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

// ---------- CLIP ----------

export interface ClipOutput {
  pixelValues: Float32Array;
  dims: [1, 3, number, number];
}

/** CLIPImageProcessor: resize (shortest edge or height/width) → centre crop → rescale → normalise. */
export function clipProcess(img: RgbImage, cfg: ImageProcessorConfig, opts: ProcessOptions = {}): ClipOutput {
  const backend = opts.backend ?? 'torchvision';
  let im = img;
  if (bool(cfg, 'do_resize', true)) {
    const [h, w] = resizeTarget(im, sizeDict(cfg.size, false, { shortest_edge: 224 }));
    im = resizeRgb(im, w, h, resampleOf(cfg, PIL_BICUBIC), backend);
  }
  if (bool(cfg, 'do_center_crop', true)) {
    const crop = sizeDict(cfg.crop_size, true, { height: 224, width: 224 });
    if (!crop.height || !crop.width) throw new LightVLMError(`image processor crop_size ${JSON.stringify(cfg.crop_size)} must have "height" and "width". Fix the config.`, 'E_CONFIG');
    im = centerCrop(im, crop.height, crop.width, backend);
  }
  return { pixelValues: toPlanar(im, cfg, backend), dims: [1, 3, im.height, im.width] };
}

// ---------- GOT-OCR2 / InternVL ----------

/** Most tiles one image may become (InternVL publishes 12; 64 leaves room, and bounds the grid search). */
export const MAX_TILES = 64;

/** All (columns, rows) grids with min ≤ cols*rows ≤ max, sorted (stably) by tile count. */
function supportedGrids(minTiles: number, maxTiles: number): [number, number][] {
  const grids: [number, number][] = [];
  for (let w = 1; w <= maxTiles; w++) for (let h = 1; h <= maxTiles; h++) if (w * h <= maxTiles && w * h >= minTiles) grids.push([w, h]);
  return grids.sort((a, b) => a[0] * a[1] - b[0] * b[1]);
}

/**
 * get_optimal_tiled_canvas: the (columns, rows) grid whose aspect ratio is closest to the image's;
 * on an exact tie the later (more tiles) grid wins while the image area exceeds half the tiled area.
 */
export function optimalTiledCanvas(origH: number, origW: number, tileH: number, tileW: number, minTiles: number, maxTiles: number): [number, number] {
  const aspect = origW / origH;
  const area = origW * origH;
  let bestDiff = Infinity;
  let best: [number, number] = [1, 1];
  for (const g of supportedGrids(minTiles, maxTiles)) {
    const diff = Math.abs(aspect - g[0] / g[1]);
    if (diff < bestDiff) {
      bestDiff = diff;
      best = g;
    } else if (diff === bestDiff && area > 0.5 * tileH * tileW * g[0] * g[1]) {
      best = g;
    }
  }
  return best;
}

export interface GotOcr2Output {
  pixelValues: Float32Array;
  dims: [number, 3, number, number];
  numTiles: number;
}

/**
 * GotOcr2ImageProcessor. With crop_to_patches (and max_patches > 1): resize to the grid canvas,
 * cut row-major tiles, then append a thumbnail (whole image resized to one tile) if there are
 * several tiles. Otherwise a plain resize to `size`. Each tile is rescaled/normalised to [3, H, W].
 */
export function gotOcr2Process(img: RgbImage, cfg: ImageProcessorConfig, opts: ProcessOptions = {}): GotOcr2Output {
  const backend = opts.backend ?? 'torchvision';
  const size = sizeDict(cfg.size, true, { height: 384, width: 384 });
  const resample = resampleOf(cfg, PIL_BICUBIC);
  const minP = num(cfg, 'min_patches', 1);
  const maxP = num(cfg, 'max_patches', 12);
  // The grid search is O(max_patches²) and every tile is a vision-tower pass: bound both.
  if (!Number.isInteger(minP) || !Number.isInteger(maxP) || minP < 1 || maxP < minP || maxP > MAX_TILES) {
    throw new LightVLMError(`image processor min_patches ${minP} / max_patches ${maxP} must be whole numbers with 1 <= min_patches <= max_patches <= ${MAX_TILES}. Fix the image processor config.`, 'E_CONFIG');
  }
  let tiles: RgbImage[];
  if (bool(cfg, 'crop_to_patches', false) && maxP > 1) {
    if (!size.height || !size.width) throw new LightVLMError(`crop_to_patches needs size {"height","width"}, got ${JSON.stringify(cfg.size)}. Fix the image processor config.`, 'E_CONFIG');
    const th = size.height;
    const tw = size.width;
    const [cols, rows] = optimalTiledCanvas(img.height, img.width, th, tw, minP, maxP);
    const canvas = resizeRgb(img, tw * cols, th * rows, resample, backend);
    tiles = [];
    for (let i = 0; i < cols * rows; i++) {
      const c = i % cols;
      const r = Math.floor(i / cols);
      const t = new Uint8Array(th * tw * 3);
      for (let y = 0; y < th; y++) {
        const s = ((r * th + y) * canvas.width + c * tw) * 3;
        t.set(canvas.data.subarray(s, s + tw * 3), y * tw * 3);
      }
      tiles.push({ width: tw, height: th, data: t });
    }
    if (tiles.length !== 1) tiles.push(resizeRgb(img, tw, th, resample, backend));
  } else {
    let im = img;
    if (bool(cfg, 'do_resize', true)) {
      const [h, w] = resizeTarget(im, size);
      im = resizeRgb(im, w, h, resample, backend);
    }
    tiles = [im];
  }
  const { width: W, height: H } = tiles[0];
  const out = new Float32Array(tiles.length * 3 * H * W);
  tiles.forEach((t, i) => toPlanar(t, cfg, backend, out, i * 3 * H * W));
  return { pixelValues: out, dims: [tiles.length, 3, H, W], numTiles: tiles.length };
}

// ---------- Qwen2-VL ----------

/**
 * smart_resize (transformers 5): round each side to a multiple of `factor`, then scale into
 * [minPixels, maxPixels] keeping the aspect ratio. Aspect ratios above 200 are rejected; tiny
 * images are scaled up by the min_pixels branch (1x1 → 56x56 with the defaults).
 */
export function smartResize(height: number, width: number, factor: number, minPixels: number, maxPixels: number): [number, number] {
  if (height < 1 || width < 1) throw new LightVLMError(`cannot process a ${width}x${height} image. Pass an image with at least one pixel.`, 'E_IMAGE');
  const ratio = Math.max(height, width) / Math.min(height, width);
  if (ratio > 200) {
    throw new LightVLMError(
      `image ${width}x${height} has an aspect ratio of ${ratio.toFixed(1)}, above Qwen2-VL's limit of 200. Crop or pad the image to a less extreme shape.`, 'E_IMAGE');
  }
  let h = pyRound(height / factor) * factor;
  let w = pyRound(width / factor) * factor;
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.max(factor, Math.floor(height / beta / factor) * factor);
    w = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  return [h, w];
}

export interface Qwen2VLOutput {
  pixelValues: Float32Array;
  dims: [number, number];
  gridThw: [number, number, number];
}

/**
 * Qwen2VLImageProcessor for one image → pixel_values [t*h*w, C*tp*ps*ps] and grid [t, h, w].
 * Row order: (t, h/m, w/m, m_h, m_w); column order: (C, tp, ps_y, ps_x) — HF's
 * reshape [t, tp, C, h/m, m, ps, w/m, m, ps] + transpose (0, 3, 6, 4, 7, 2, 1, 5, 8).
 * A single image is repeated to temporal_patch_size frames.
 */
export function qwen2vlProcess(img: RgbImage, cfg: ImageProcessorConfig, opts: ProcessOptions = {}): Qwen2VLOutput {
  const backend = opts.backend ?? 'torchvision';
  const ps = num(cfg, 'patch_size', 14);
  const tp = num(cfg, 'temporal_patch_size', 2);
  const m = num(cfg, 'merge_size', 2);
  const size = (cfg.size && typeof cfg.size === 'object' ? cfg.size : {}) as Record<string, number>;
  const minPixels = num(cfg, 'min_pixels', size.shortest_edge ?? size.min_pixels ?? 56 * 56);
  const maxPixels = num(cfg, 'max_pixels', size.longest_edge ?? size.max_pixels ?? 28 * 28 * 1280);
  let im = img;
  if (bool(cfg, 'do_resize', true)) {
    const [h, w] = smartResize(im.height, im.width, ps * m, minPixels, maxPixels);
    im = resizeRgb(im, w, h, resampleOf(cfg, PIL_BICUBIC), backend);
  }
  if (im.height % (ps * m) !== 0 || im.width % (ps * m) !== 0) {
    throw new LightVLMError(`Qwen2-VL needs image sides that are multiples of ${ps * m}, got ${im.width}x${im.height} with do_resize false. Enable do_resize or resize the image first.`, 'E_IMAGE');
  }
  const planar = toPlanar(im, cfg, backend); // [3, H, W]
  const H = im.height;
  const W = im.width;
  const gh = H / ps;
  const gw = W / ps;
  const gt = 1;
  const C = 3;
  const rowLen = C * tp * ps * ps;
  const nRows = gt * gh * gw;
  const out = new Float32Array(nRows * rowLen);
  let row = 0;
  for (let bh = 0; bh < gh / m; bh++) {
    for (let bw = 0; bw < gw / m; bw++) {
      for (let mh = 0; mh < m; mh++) {
        for (let mw = 0; mw < m; mw++) {
          const y0 = (bh * m + mh) * ps;
          const x0 = (bw * m + mw) * ps;
          let o = row * rowLen;
          for (let c = 0; c < C; c++) {
            for (let t = 0; t < tp; t++) {
              // every temporal frame is the same image
              for (let py = 0; py < ps; py++) {
                const s = c * H * W + (y0 + py) * W + x0;
                out.set(planar.subarray(s, s + ps), o);
                o += ps;
              }
            }
          }
          row++;
        }
      }
    }
  }
  return { pixelValues: out, dims: [nRows, rowLen], gridThw: [gt, gh, gw] };
}
