// Resizing of 8-bit RGB images exactly as `transformers` image processors do it (on uint8, before
// rescaling). Two arithmetic flavours of the same antialiased resampler exist:
//
// - 'pil': stock Pillow `Image.resize` (`libImaging/Resample.c`), used by the PIL backend
//   (`*ImageProcessorPil`). Coefficients quantised to 22-bit fixed point.
// - 'torchvision' (default): `torchvision.transforms.v2.functional.resize(uint8, antialias=True)` on
//   CPU, used by the default backend of transformers 5. PyTorch's uint8 kernel is a port of
//   Pillow-SIMD: same filter and bounds, but int16 coefficients whose precision is chosen per axis
//   (largest number of bits keeping the biggest coefficient below 2^15, typically 14-15 bits).
//   The reference fixtures match this flavour bit-exactly; stock Pillow differs by ±1 level on ~1% of
//   pixels after a downscale.
//
// Both: separable, horizontal pass first into a uint8 temporary, then vertical; the filter support
// is widened by the downscale factor (= antialiasing); weights normalised in double precision, then
// rounded half away from zero; sums start at half an LSB, are floored and clipped to 0..255.
// Bicubic uses a = -0.5. Nearest: both map dst x to floor((x + 0.5) * in / out) (Pillow in double,
// PyTorch's "nearest-exact", which transformers uses for PIL NEAREST, in float32).
import { LightVLMError } from '../errors.js';

/** An 8-bit RGB image: `data` is RGB interleaved, row-major, length `width * height * 3`. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** PIL resampling filter ids (as in `PIL.Image.Resampling` and HF's `resample` config field). */
export const PIL_NEAREST = 0;
export const PIL_LANCZOS = 1;
export const PIL_BILINEAR = 2;
export const PIL_BICUBIC = 3;

/** Which library's arithmetic to reproduce (see the file header). */
export type ResizeBackend = 'torchvision' | 'pil';
const PIL_PRECISION_BITS = 32 - 8 - 2;
const MAX_COEF_BITS = 15;

interface Filter {
  support: number;
  fn: (x: number) => number;
}

// Pillow's bicubic kernel with a = -0.5; the operation order matches the C source so the double
// results (and therefore the quantised coefficients) are bit-identical.
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function triangle(x: number): number {
  if (x < 0) x = -x;
  if (x < 1) return 1 - x;
  return 0;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

function lanczos(x: number): number {
  return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

const FILTERS: Record<number, Filter> = {
  [PIL_LANCZOS]: { support: 3, fn: lanczos },
  [PIL_BILINEAR]: { support: 1, fn: triangle },
  [PIL_BICUBIC]: { support: 2, fn: bicubic },
};

/**
 * Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for one axis.
 * Returns per output index: `bounds[2i]` = first input index, `bounds[2i+1]` = tap count, and
 * `kk[i*ksize + j]` = integer weight (×2^22) of input `bounds[2i] + j`.
 */
interface Coeffs {
  ksize: number;
  bounds: Int32Array;
  kk: Int32Array;
  bits: number; // fixed-point precision of kk
}

function precompute(inSize: number, outSize: number, filter: Filter, backend: ResizeBackend): Coeffs {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const pre = new Float64Array(outSize * ksize); // normalised double weights
  const w = new Float64Array(ksize);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale; // in0 = 0 (no box)
    let ww = 0;
    // C `(int)` truncates toward zero; the clamp to 0 makes that equal to Math.trunc here.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    for (let x = 0; x < xmax; x++) {
      const v = filter.fn((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) pre[xx * ksize + x] = ww !== 0 ? w[x] / ww : w[x];
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  let bits = PIL_PRECISION_BITS;
  if (backend === 'torchvision') {
    let maxk = 0;
    for (let i = 0; i < pre.length; i++) if (pre[i] > maxk) maxk = pre[i];
    for (bits = 0; bits < PIL_PRECISION_BITS; bits++) {
      if (Math.trunc(0.5 + maxk * 2 ** (bits + 1)) >= 2 ** MAX_COEF_BITS) break;
    }
  }
  // normalize_coeffs_8bpc: round half away from zero via (int)(±0.5 + k * 2^bits)
  const kk = new Int32Array(outSize * ksize);
  const one = 2 ** bits;
  for (let i = 0; i < pre.length; i++) kk[i] = pre[i] < 0 ? Math.trunc(-0.5 + pre[i] * one) : Math.trunc(0.5 + pre[i] * one);
  return { ksize, bounds, kk, bits };
}

// clip8: floor(sum / 2^bits) clamped to 0..255. Sums stay below 2^31, so doubles hold them exactly.
function clip8(v: number, bits: number): number {
  if (v <= 0) return 0;
  const r = v >> bits;
  return r > 255 ? 255 : r;
}

/** Largest resize target (width × height), checked before any buffer is allocated (~300 MB of RGB). */
export const MAX_RESIZE_PIXELS = 100_000_000;

/**
 * Resizes `img` to `width` x `height` (`resample`: 3 bicubic, 2 bilinear, 1 lanczos, 0 nearest) with the
 * arithmetic of `backend`. Same size → copy, as in both libraries.
 */
export function resizeRgb(img: RgbImage, width: number, height: number, resample: number = PIL_BICUBIC, backend: ResizeBackend = 'torchvision'): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new LightVLMError(`cannot resize an image to ${width}x${height}: both sides must be positive integers. Check the image processor's size settings.`, 'E_CONFIG');
  }
  if (width * height > MAX_RESIZE_PIXELS) {
    throw new LightVLMError(
      `the image processor would resize a ${img.width}x${img.height} image to ${width}x${height} = ${width * height} pixels, above the limit of ${MAX_RESIZE_PIXELS}. Use a less extreme image shape, or check the processor's size settings.`,
      'E_IMAGE',
    );
  }
  if (img.width < 1 || img.height < 1) {
    throw new LightVLMError(`cannot resize an empty ${img.width}x${img.height} image. Pass an image with at least one pixel.`, 'E_IMAGE');
  }
  if (width === img.width && height === img.height) return { width, height, data: img.data.slice() };
  if (resample === PIL_NEAREST) return resizeNearest(img, width, height, backend);
  // transformers' torchvision backend has no tensor Lanczos and falls back to bicubic.
  const filter = FILTERS[backend === 'torchvision' && resample === PIL_LANCZOS ? PIL_BICUBIC : resample];
  if (!filter) {
    throw new LightVLMError(`image resampling filter ${resample} is not supported (supported: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic). Set "resample" in the image processor config to one of these.`, 'E_CONFIG');
  }

  const needH = width !== img.width;
  const needV = height !== img.height;
  const horiz = precompute(img.width, width, filter, backend);
  const vert = precompute(img.height, height, filter, backend);

  let src = img;
  let vb = vert.bounds;
  if (needH) {
    // Only the source rows that the vertical pass reads are resampled horizontally.
    const yFirst = vert.bounds[0];
    const yLast = vert.bounds[(height - 1) * 2] + vert.bounds[(height - 1) * 2 + 1];
    vb = vert.bounds.slice();
    for (let i = 0; i < height; i++) vb[i * 2] -= yFirst;
    src = convolvePass(img, 'x', width, horiz, horiz.bounds, yFirst, yLast - yFirst);
  }
  if (needV) src = convolvePass(src, 'y', height, vert, vb);
  return src;
}

// One separable pass of the fixed-point filter along `axis` of an RGB image [h, w, 3].
// 'x': output [rows, outSize, 3] from source rows offset .. offset + rows (only the rows the
// vertical pass will read); 'y': output [outSize, w, 3]. Tap k of output i reads source index
// bounds[2i] + k along the axis.
function convolvePass(img: RgbImage, axis: 'x' | 'y', outSize: number, co: Coeffs, bounds: Int32Array, offset = 0, rows = img.height): RgbImage {
  const { ksize, kk, bits } = co;
  const half = 2 ** (bits - 1);
  const rowStride = img.width * 3;
  const outW = axis === 'x' ? outSize : img.width;
  const outH = axis === 'x' ? rows : outSize;
  const tapStride = axis === 'x' ? 3 : rowStride; // source step between filter taps
  const out = new Uint8Array(outW * outH * 3);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const i = axis === 'x' ? x : y; // index along the filtered axis
      const min = bounds[i * 2];
      const taps = bounds[i * 2 + 1];
      const kb = i * ksize;
      let s0 = half;
      let s1 = half;
      let s2 = half;
      let p = axis === 'x' ? (y + offset) * rowStride + min * 3 : min * rowStride + x * 3;
      for (let t = 0; t < taps; t++, p += tapStride) {
        const k = kk[kb + t];
        s0 += img.data[p] * k;
        s1 += img.data[p + 1] * k;
        s2 += img.data[p + 2] * k;
      }
      const o = (y * outW + x) * 3;
      out[o] = clip8(s0, bits);
      out[o + 1] = clip8(s1, bits);
      out[o + 2] = clip8(s2, bits);
    }
  }
  return { width: outW, height: outH, data: out };
}

// Source index of destination index `x` for nearest-neighbour resampling.
function nearestIndex(x: number, inSize: number, outSize: number, backend: ResizeBackend): number {
  if (backend === 'pil') {
    // Pillow's affine "scale" path: COORD(a0 * (x + 0.5)) with a0 = in / out (double).
    return Math.min(inSize - 1, Math.trunc((inSize / outSize) * (x + 0.5)));
  }
  // transformers maps PIL NEAREST to torchvision NEAREST_EXACT; PyTorch's nearest-exact index is
  // floorf((x + 0.5) * (float)(in / out)), the product rounded to float32 before flooring.
  const scale = Math.fround(inSize / outSize);
  return Math.min(inSize - 1, Math.floor(Math.fround((x + 0.5) * scale)));
}

function resizeNearest(img: RgbImage, width: number, height: number, backend: ResizeBackend): RgbImage {
  const xin = new Int32Array(width);
  for (let x = 0; x < width; x++) xin[x] = nearestIndex(x, img.width, width, backend);
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const yi = nearestIndex(y, img.height, height, backend);
    const rowIn = yi * img.width * 3;
    for (let x = 0; x < width; x++) {
      const i = rowIn + xin[x] * 3;
      const o = (y * width + x) * 3;
      out[o] = img.data[i];
      out[o + 1] = img.data[i + 1];
      out[o + 2] = img.data[i + 2];
    }
  }
  return { width, height, data: out };
}
