// Image preprocessing against the transformers goldens (fixtures/*/golden) and the checkpoints'
// processor configs. The pure decode/resize edge cases are in test/unit/image.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { LightVLMError } from '../../src/errors.js';
import { readSafetensorsFile } from '../../src/checkpoint/safetensors.js';
import { loadImage, type RgbImage } from '../../src/processing/image.js';
import { clipProcess, gotOcr2Process, qwen2vlProcess, readImageProcessorConfig } from '../../src/processing/processors.js';
import { ROOT } from '../helpers.js';

const fx = (...p: string[]) => path.join(ROOT, 'fixtures', ...p);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lightvlm-processors-test-'));

function maxAbsDiff(a: Float32Array, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function golden(dir: string): { pv: Float32Array; dims: number[]; grid?: number[] } {
  const t = readSafetensorsFile(path.join(dir, 'inputs.safetensors'));
  const pv = t.get('pixel_values')!;
  const g = t.get('image_grid_thw');
  return { pv: pv.data as Float32Array, dims: pv.dims, grid: g ? Array.from(g.data as BigInt64Array, Number) : undefined };
}

// --- goldens (reported max errors: all four are bit-exact with the default backend) ---

const CASES = [
  { name: 'tiny-llava', model: fx('tiny-llava'), gold: fx('tiny-llava', 'golden'), run: clipProcess },
  { name: 'synth-llava', model: path.join(ROOT, 'models', 'synth-llava'), gold: fx('synth-llava-golden'), run: clipProcess },
  { name: 'tiny-internvl', model: fx('tiny-internvl'), gold: fx('tiny-internvl', 'golden'), run: gotOcr2Process },
  { name: 'tiny-qwen2_vl', model: fx('tiny-qwen2_vl'), gold: fx('tiny-qwen2_vl', 'golden'), run: qwen2vlProcess },
] as const;

for (const c of CASES) {
  test(`pixel_values match the transformers golden: ${c.name}`, async () => {
    const cfg = readImageProcessorConfig(c.model);
    const img = await loadImage(path.join(c.gold, 'image.png'));
    const g = golden(c.gold);
    const out = c.run(img, cfg);
    assert.deepEqual([...out.dims], g.dims);
    const err = maxAbsDiff(out.pixelValues, g.pv);
    assert.ok(err <= 1e-6, `${c.name}: max abs error ${err}`); // contract is 1e-2; we reproduce exactly
    if (g.grid) assert.deepEqual((out as { gridThw: number[] }).gridThw, g.grid);
    // Stock-Pillow arithmetic (PIL backend) differs by at most one uint8 level per pixel.
    const pil = c.run(img, cfg, { backend: 'pil' });
    assert.ok(maxAbsDiff(pil.pixelValues, g.pv) < 0.02);
  });
}

test('internvl tiles: 150x100 → 2x2 grid + thumbnail = 5 tiles', async () => {
  const out = gotOcr2Process(await loadImage(fx('tiny-internvl', 'golden', 'image.png')), readImageProcessorConfig(fx('tiny-internvl')));
  assert.equal(out.numTiles, 5);
});

// --- tiny images through every processor ---

test('a 1x1 image goes through all processors like HF', async () => {
  const file = path.join(tmp, 'one.png');
  await sharp({ create: { width: 1, height: 1, channels: 3, background: { r: 200, g: 100, b: 50 } } }).png().toFile(file);
  const img = await loadImage(file);
  assert.deepEqual([img.width, img.height, ...img.data], [1, 1, 200, 100, 50]);
  const clip = clipProcess(img, readImageProcessorConfig(fx('tiny-llava')));
  assert.deepEqual(clip.dims, [1, 3, 56, 56]);
  // A constant image stays constant: R channel = (200/255 - mean) / std everywhere.
  const r = (200 / 255 - 0.48145466) / 0.26862954;
  assert.ok(Math.abs(clip.pixelValues[0] - r) < 1e-5 && Math.abs(clip.pixelValues[3135] - r) < 1e-5);
  const got = gotOcr2Process(img, readImageProcessorConfig(fx('tiny-internvl')));
  assert.deepEqual(got.dims, [1, 3, 56, 56]);
  const q = qwen2vlProcess(img, readImageProcessorConfig(fx('tiny-qwen2_vl')));
  assert.deepEqual(q.gridThw, [1, 4, 4]);
  assert.deepEqual(q.dims, [16, 1176]);
});

test('an image with aspect ratio above 200 is refused by Qwen2-VL', () => {
  const img: RgbImage = { width: 402, height: 2, data: new Uint8Array(402 * 2 * 3) };
  assert.throws(() => qwen2vlProcess(img, readImageProcessorConfig(fx('tiny-qwen2_vl'))), LightVLMError);
});

// --- configs ---

test('readImageProcessorConfig reads nested processor_config.json, flat preprocessor_config.json, else explains', () => {
  assert.equal(readImageProcessorConfig(fx('tiny-qwen2_vl')).image_processor_type, 'Qwen2VLImageProcessor');
  const flat = fs.mkdtempSync(path.join(tmp, 'flat-'));
  fs.writeFileSync(path.join(flat, 'preprocessor_config.json'), JSON.stringify({ image_processor_type: 'Qwen2VLImageProcessor', min_pixels: 3136, max_pixels: 12544 }));
  const cfg = readImageProcessorConfig(flat);
  assert.equal(cfg.max_pixels, 12544);
  // min_pixels / max_pixels (transformers 4 style) drive smart_resize like size.shortest/longest_edge.
  const img: RgbImage = { width: 150, height: 100, data: new Uint8Array(150 * 100 * 3) };
  assert.deepEqual(qwen2vlProcess(img, cfg).gridThw, [1, 6, 8]);
  const none = fs.mkdtempSync(path.join(tmp, 'none-'));
  assert.throws(() => readImageProcessorConfig(none), (e: unknown) => e instanceof LightVLMError && /preprocessor_config\.json or processor_config\.json/.test(e.message));
});
