// Image decoding, resizing and the processors' size rules on synthetic images: no model files.
// The transformers goldens are in test/model/processors.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { LightVLMError } from '../../src/errors.js';
import { loadImage, MAX_IMAGE_PIXELS, type RgbImage } from '../../src/processing/image.js';
import { resizeRgb } from '../../src/processing/resize.js';
import { clipProcess, optimalTiledCanvas, smartResize } from '../../src/processing/processors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lightvlm-image-test-'));

// --- grid / size rules ---

test('optimalTiledCanvas tie-breaking favours more tiles only while the image is large enough', () => {
  assert.deepEqual(optimalTiledCanvas(100, 100, 56, 56, 1, 4), [2, 2]); // 10000 > 0.5*56*56*4
  assert.deepEqual(optimalTiledCanvas(50, 50, 56, 56, 1, 4), [1, 1]);
  assert.deepEqual(optimalTiledCanvas(100, 150, 56, 56, 1, 4), [2, 2]); // 1:1, 2:1, 2:2 all 0.5 off 1.5: the last tie wins
  assert.deepEqual(optimalTiledCanvas(100, 400, 56, 56, 1, 12), [4, 1]);
});

test('smartResize follows transformers 5 (round half even, min/max pixels, aspect limit)', () => {
  assert.deepEqual(smartResize(100, 150, 28, 3136, 12544), [84, 112]); // 112x140 > max → scaled down
  assert.deepEqual(smartResize(100, 150, 28, 3136, 1e6), [112, 140]);
  assert.deepEqual(smartResize(42, 42, 28, 28 * 28, 1e9), [56, 56]); // round(1.5) = 2
  assert.deepEqual(smartResize(70, 70, 28, 28 * 28, 1e9), [56, 56]); // round(2.5) = 2
  assert.deepEqual(smartResize(1, 1, 28, 3136, 12544), [56, 56]);
  const [h, w] = smartResize(2000, 3000, 28, 3136, 28 * 28 * 1280);
  assert.ok(h * w <= 28 * 28 * 1280 && h % 28 === 0 && w % 28 === 0);
  assert.throws(() => smartResize(1, 201, 28, 3136, 12544), (e: unknown) => e instanceof LightVLMError && /aspect ratio/.test(e.message));
});

test('centre crop pads small images with zeros, placed as each backend does', () => {
  const img: RgbImage = { width: 4, height: 4, data: new Uint8Array(48).fill(255) };
  const cfg = { size: { height: 4, width: 4 }, crop_size: { height: 7, width: 7 }, do_normalize: false };
  const tv = clipProcess(img, cfg); // torchvision: pad floor(3/2) = 1 before
  const pil = clipProcess(img, cfg, { backend: 'pil' }); // numpy: ceil(3/2) = 2 before
  assert.deepEqual(tv.dims, [1, 3, 7, 7]);
  const row = (pv: Float32Array, y: number) => Array.from(pv.subarray(y * 7, y * 7 + 7));
  assert.deepEqual(row(tv.pixelValues, 0), [0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(row(tv.pixelValues, 1), [0, 1, 1, 1, 1, 0, 0]);
  assert.deepEqual(row(pil.pixelValues, 1), [0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(row(pil.pixelValues, 2), [0, 0, 1, 1, 1, 1, 0]);
});

test('flags: no resize / crop / normalise gives raw rescaled pixels', async () => {
  const img: RgbImage = { width: 2, height: 1, data: new Uint8Array([0, 51, 255, 255, 0, 102]) };
  const out = clipProcess(img, { do_resize: false, do_center_crop: false, do_normalize: false });
  assert.deepEqual(out.dims, [1, 3, 1, 2]);
  // torchvision multiplies in float32, numpy in float64 before the cast
  const f = 1 / 255;
  assert.deepEqual(Array.from(out.pixelValues), [0, 255, 51, 0, 255, 102].map((v) => Math.fround(v * Math.fround(f))));
  const pil = clipProcess(img, { do_resize: false, do_center_crop: false, do_normalize: false }, { backend: 'pil' });
  assert.deepEqual(Array.from(pil.pixelValues), [0, 255, 51, 0, 255, 102].map((v) => Math.fround(v * f)));
  const raw = clipProcess(img, { do_resize: false, do_center_crop: false, do_normalize: false, do_rescale: false });
  assert.deepEqual(Array.from(raw.pixelValues), [0, 255, 51, 0, 255, 102]);
});

test('resize: same size is a copy, nearest duplicates pixels, bicubic keeps constants', () => {
  const img: RgbImage = { width: 2, height: 2, data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) };
  assert.deepEqual(resizeRgb(img, 2, 2).data, img.data);
  const n = resizeRgb(img, 4, 2, 0);
  assert.deepEqual(Array.from(n.data.subarray(0, 12)), [1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]);
  const flat: RgbImage = { width: 37, height: 23, data: new Uint8Array(37 * 23 * 3).fill(77) };
  for (const be of ['torchvision', 'pil'] as const) assert.ok(resizeRgb(flat, 11, 50, 3, be).data.every((v) => v === 77));
});

// --- decoding ---

test('grayscale → R = G = B', async () => {
  const file = path.join(tmp, 'gray.png');
  await sharp(Buffer.from([10, 40, 70, 1]), { raw: { width: 2, height: 2, channels: 1 } }).png().toFile(file);
  const img = await loadImage(file);
  assert.deepEqual(Array.from(img.data), [10, 10, 10, 40, 40, 40, 70, 70, 70, 1, 1, 1]);
});

test('RGBA → alpha dropped without compositing (PIL convert("RGB"))', async () => {
  const file = path.join(tmp, 'rgba.png');
  await sharp(Buffer.from([10, 20, 30, 0, 40, 50, 60, 128]), { raw: { width: 2, height: 1, channels: 4 } }).png().toFile(file);
  assert.deepEqual(Array.from((await loadImage(file)).data), [10, 20, 30, 40, 50, 60]);
  const ga = await sharp(Buffer.from([10, 0, 40, 128]), { raw: { width: 2, height: 1, channels: 2 } }).png().toBuffer();
  assert.deepEqual(Array.from((await loadImage(ga)).data), [10, 10, 10, 40, 40, 40]);
});

test('PNG, lossless WebP, GIF, palette PNG decode to the same pixels; JPEG close', async () => {
  const raw = Buffer.alloc(8 * 8 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 256;
  const src = () => sharp(raw, { raw: { width: 8, height: 8, channels: 3 } });
  const png = path.join(tmp, 'a.png');
  const webp = path.join(tmp, 'a.webp');
  const jpg = path.join(tmp, 'a.jpg');
  await src().png().toFile(png);
  await src().webp({ lossless: true }).toFile(webp);
  await src().jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toFile(jpg);
  assert.deepEqual((await loadImage(png)).data, new Uint8Array(raw));
  assert.deepEqual((await loadImage(webp)).data, new Uint8Array(raw));
  const j = await loadImage(jpg);
  assert.equal(j.width, 8);
  const few = Buffer.from([10, 20, 30, 40, 50, 60, 70, 80, 90, 1, 2, 3]);
  const g = await sharp(few, { raw: { width: 2, height: 2, channels: 3 } }).gif().toBuffer();
  assert.deepEqual(Array.from((await loadImage(g)).data), Array.from(few));
  const p = await sharp(few, { raw: { width: 2, height: 2, channels: 3 } }).png({ palette: true }).toBuffer();
  assert.deepEqual(Array.from((await loadImage(p)).data), Array.from(few));
});

test('EXIF orientation is not applied (PIL in transformers does not auto-rotate)', async () => {
  const file = path.join(tmp, 'rot.jpg');
  await sharp({ create: { width: 30, height: 10, channels: 3, background: { r: 1, g: 2, b: 3 } } }).jpeg().withMetadata({ orientation: 6 }).toFile(file);
  const img = await loadImage(file);
  assert.deepEqual([img.width, img.height], [30, 10]);
});

// Minimal PNG writer for headers sharp will not produce (16-bit raw values, lying dimensions).
function crc32(buf: Buffer): number {
  let crc = 0xffffffff;
  for (const b of buf) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
function pngFile(w: number, h: number, depth: number, colorType: number, rows: Buffer): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = depth;
  ihdr[9] = colorType;
  const sig = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

test('16-bit PNGs: RGB keeps the high byte, grey clips at 255 (PIL mode I;16)', async () => {
  const row = Buffer.alloc(1 + 12);
  [0, 100, 255, 256, 1000, 65535].forEach((v, i) => row.writeUInt16BE(v, 1 + 2 * i));
  const rgb = await loadImage(pngFile(2, 1, 16, 2, row));
  assert.deepEqual(Array.from(rgb.data), [0, 0, 0, 1, 3, 255]);
  const grey = await loadImage(pngFile(6, 1, 16, 0, row));
  assert.deepEqual(Array.from(grey.data).filter((_, i) => i % 3 === 0), [0, 100, 255, 255, 255, 255]);
});

// --- errors ---

async function rejectsWith(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof LightVLMError && re.test(e.message));
}

test('missing file, corrupt file, non-image file, empty file', async () => {
  await rejectsWith(loadImage(path.join(tmp, 'nope.png')), /does not exist/);
  const good = await sharp({ create: { width: 20, height: 20, channels: 3, background: '#808080' } }).png().toBuffer();
  const corrupt = path.join(tmp, 'corrupt.png');
  fs.writeFileSync(corrupt, good.subarray(0, 30));
  await rejectsWith(loadImage(corrupt), /is not a readable image \(JPEG, PNG, WebP\)/);
  const text = path.join(tmp, 'notes.png');
  fs.writeFileSync(text, 'this is not an image at all\n');
  await rejectsWith(loadImage(text), /notes\.png is not a readable image/);
  const empty = path.join(tmp, 'empty.jpg');
  fs.writeFileSync(empty, '');
  await rejectsWith(loadImage(empty), /not a readable image/);
});

test('huge images are refused from the header, before decoding; the limit can be raised or lowered', async () => {
  assert.equal(MAX_IMAGE_PIXELS, 50_000_000);
  const huge = path.join(tmp, 'huge.png');
  fs.writeFileSync(huge, pngFile(100_000, 100_000, 8, 2, Buffer.alloc(10))); // 68 bytes claiming 10^10 pixels
  const t0 = Date.now();
  await rejectsWith(loadImage(huge), /100000x100000 .*above the limit.*maxPixels/);
  assert.ok(Date.now() - t0 < 2000);
  const small = await sharp({ create: { width: 20, height: 20, channels: 3, background: '#808080' } }).png().toBuffer();
  await rejectsWith(loadImage(small, { maxPixels: 399 }), /above the limit of 399 pixels/);
  assert.equal((await loadImage(small, { maxPixels: 400 })).width, 20);
});
