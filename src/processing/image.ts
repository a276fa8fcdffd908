// Image decoding into 8-bit RGB, matching what `transformers` gets from `PIL.Image.open(...)` followed by
// its `convert_to_rgb` (= `image.convert("RGB")` unless the mode already is RGB):
// - alpha is dropped, never composited (PIL's RGBA→RGB keeps the stored colour values);
// - grey → R = G = B; palette → palette colours (transparency ignored);
// - 16-bit RGB(A) / grey+alpha keep the high byte (Pillow's "RGB;16B"/"LA;16B" unpackers);
//   16-bit grey alone is mode "I;16" in PIL, whose RGB conversion clips values above 255 (not a rescale);
// - CMYK uses Pillow's naive cmyk2rgb formula, not an ICC transform;
// - embedded ICC profiles and EXIF orientation are ignored (PIL applies neither).
// Decoding itself is done by sharp (libvips: JPEG, PNG, WebP, GIF first frame, TIFF, AVIF...).
import fs from 'node:fs';
import sharp, { type Metadata, type SharpOptions } from 'sharp';
import { LightVLMError } from '../errors.js';
import type { RgbImage } from './resize.js';

export type { RgbImage } from './resize.js';

/**
 * Default cap on width × height checked from the file header before any pixel is decoded
 * (50 megapixels ≈ 150 MB of RGB). Override per call with `loadImage(src, { maxPixels })`.
 */
export const MAX_IMAGE_PIXELS = 50_000_000;
/** Largest encoded image accepted (files and buffers), checked before reading. */
export const MAX_IMAGE_BYTES = 256 * 1024 * 1024;
/**
 * Largest long side / short side. Qwen2-VL's processor refuses above 200; for the other families
 * an extreme strip (1x6000) would resize to hundreds of megapixels before cropping, so all refuse it.
 */
export const MAX_ASPECT_RATIO = 200;

export interface LoadImageOptions {
  /** Largest accepted width × height; defaults to MAX_IMAGE_PIXELS. Use Infinity to disable. */
  maxPixels?: number;
}

function describe(src: string | Uint8Array): string {
  return typeof src === 'string' ? src : `image buffer (${src.length} bytes)`;
}

function notReadable(src: string | Uint8Array, why: string): LightVLMError {
  why = why.trim().replace(/[:.]+$/, '');
  return new LightVLMError(
    `${describe(src)} is not a readable image (JPEG, PNG, WebP): ${why}. Check that the file is a complete, uncorrupted image in a supported format.`, 'E_IMAGE');
}

function tooBig(src: string | Uint8Array, bytes: number): LightVLMError {
  return new LightVLMError(`${describe(src)} is ${(bytes / 2 ** 20).toFixed(0)} MB, above the limit of ${MAX_IMAGE_BYTES / 2 ** 20} MB for an encoded image. Downscale or recompress it.`, 'E_IMAGE');
}

/** Loads an image file or encoded bytes into an 8-bit RGB image, the way HF's PIL processors see it. */
export async function loadImage(src: string | Uint8Array, opts: LoadImageOptions = {}): Promise<RgbImage> {
  const maxPixels = opts.maxPixels ?? MAX_IMAGE_PIXELS;
  let input: Buffer;
  if (typeof src === 'string') {
    let st: fs.Stats;
    try {
      st = fs.statSync(src);
    } catch {
      throw new LightVLMError(`image file ${src} does not exist. Check the path.`, 'E_IO');
    }
    if (!st.isFile()) throw new LightVLMError(`image path ${src} is not a file. Pass the path of an image file.`, 'E_IO');
    if (st.size > MAX_IMAGE_BYTES) throw tooBig(src, st.size);
    try {
      input = fs.readFileSync(src);
    } catch (e) {
      throw new LightVLMError(`cannot read image file ${src} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). Check its permissions.`, 'E_IO');
    }
  } else {
    if (src.byteLength > MAX_IMAGE_BYTES) throw tooBig(src, src.byteLength);
    input = Buffer.from(src.buffer, src.byteOffset, src.byteLength);
  }
  if (input.length === 0) throw notReadable(src, 'it is empty (0 bytes)');

  // Header only: no pixels are decoded here, so a huge image is rejected cheaply.
  const base = { limitInputPixels: false as const, ignoreIcc: true, autoOrient: false, failOn: 'warning' as const, page: 0, pages: 1 };
  let meta: Metadata;
  try {
    meta = await sharp(input, base).metadata();
  } catch (e) {
    throw notReadable(src, (e as Error).message);
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width <= 0 || height <= 0) {
    throw new LightVLMError(`${describe(src)} has zero size (${width}x${height}). Pass an image with at least one pixel.`, 'E_IMAGE');
  }
  if (width * height > maxPixels) {
    throw new LightVLMError(
      `${describe(src)} is ${width}x${height} = ${width * height} pixels, above the limit of ${maxPixels} pixels ` +
        `(default MAX_IMAGE_PIXELS = ${MAX_IMAGE_PIXELS}). Downscale the image first, or raise the limit with loadImage(path, { maxPixels }).`, 'E_IMAGE');
  }
  if (Math.max(width, height) / Math.min(width, height) > MAX_ASPECT_RATIO) {
    throw new LightVLMError(
      `${describe(src)} is ${width}x${height}, an aspect ratio of ${(Math.max(width, height) / Math.min(width, height)).toFixed(0)}:1, above the limit of ${MAX_ASPECT_RATIO}:1. Crop or pad it to a less extreme shape.`,
      'E_IMAGE',
    );
  }

  try {
    if (meta.space === 'cmyk') return await decodeCmyk(input, base);
    if (meta.depth === 'ushort') return await decode16(input, base, meta);
    // 8-bit: sharp hands out grey as 3 identical channels, and RGB(A) as stored.
    const { data, info } = await sharp(input, base).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    return toRgb(data, info.width, info.height, info.channels, (v) => v);
  } catch (e) {
    if (e instanceof LightVLMError) throw e;
    throw notReadable(src, (e as Error).message);
  }
}

type SharpOpts = SharpOptions;

// 16-bit images: get the raw 16-bit samples and reduce them like Pillow does.
async function decode16(input: Buffer, base: SharpOpts, meta: Metadata): Promise<RgbImage> {
  const grey = meta.space === 'grey16' || meta.space === 'b-w';
  const { data, info } = await sharp(input, base)
    .toColourspace(grey ? 'grey16' : 'rgb16')
    .raw({ depth: 'ushort' })
    .toBuffer({ resolveWithObject: true });
  const u16 = new Uint16Array(data.buffer, data.byteOffset, data.length >> 1);
  // Grey without alpha is PIL mode "I;16": its conversion to RGB clips to 255. Everything else keeps the high byte.
  const reduce = grey && info.channels === 1 ? (v: number) => (v > 255 ? 255 : v) : (v: number) => v >> 8;
  return toRgb(u16, info.width, info.height, info.channels, reduce);
}

// CMYK (JPEG/TIFF): raw ink values, then Pillow's cmyk2rgb: c' = clip(255 - k - c*(255-k)/255) with MULDIV255 rounding.
async function decodeCmyk(input: Buffer, base: SharpOpts): Promise<RgbImage> {
  const { data, info } = await sharp(input, base)
    .pipelineColourspace('cmyk')
    .toColourspace('cmyk')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels < 4) throw new Error(`unexpected CMYK decode with ${info.channels} channels`);
  const n = info.width * info.height;
  const out = new Uint8Array(n * 3);
  const muldiv255 = (a: number, b: number) => {
    const t = a * b + 128;
    return ((t >> 8) + t) >> 8;
  };
  for (let i = 0; i < n; i++) {
    const p = i * info.channels;
    const nk = 255 - data[p + 3];
    for (let c = 0; c < 3; c++) {
      const v = nk - muldiv255(data[p + c], nk);
      out[i * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width: info.width, height: info.height, data: out };
}

// Channels → RGB: 1 = grey, 2 = grey + alpha, 3 = RGB, 4 = RGBA (alpha dropped, as PIL does).
function toRgb(src: ArrayLike<number>, width: number, height: number, channels: number, reduce: (v: number) => number): RgbImage {
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const p = i * channels;
    if (channels <= 2) {
      const g = reduce(src[p]);
      out[i * 3] = g;
      out[i * 3 + 1] = g;
      out[i * 3 + 2] = g;
    } else {
      out[i * 3] = reduce(src[p]);
      out[i * 3 + 1] = reduce(src[p + 1]);
      out[i * 3 + 2] = reduce(src[p + 2]);
    }
  }
  return { width, height, data: out };
}
