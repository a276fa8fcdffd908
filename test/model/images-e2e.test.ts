// Odd images through every family's whole pipeline (decode → processor → vision → LM):
// 1x1, grayscale, alpha, palette, WebP/PNG/JPEG, and the pixel limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { Engine } from '../../src/engine/vlm.js';
import { LightVLMError } from '../../src/errors.js';
import { MODELS } from '../helpers.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lightvlm-img-'));
const solid = (w: number, h: number, channels: 3 | 4, bg: Record<string, number>) => sharp({ create: { width: w, height: h, channels, background: bg } });

test('odd images run end to end in every family', async () => {
  const files = {
    'one.png': await solid(1, 1, 3, { r: 200, g: 10, b: 10 }).png().toBuffer(),
    'gray.png': await solid(40, 30, 3, { r: 90, g: 90, b: 90 }).grayscale().png().toBuffer(),
    'alpha.png': await solid(64, 48, 4, { r: 0, g: 0, b: 255, alpha: 0.5 }).png().toBuffer(),
    'pic.webp': await solid(100, 60, 3, { r: 0, g: 200, b: 0 }).webp().toBuffer(),
    'pic.jpg': await solid(30, 90, 3, { r: 250, g: 250, b: 0 }).jpeg().toBuffer(),
  };
  for (const [f, b] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), b);
  for (const name of ['tiny-llava', 'tiny-internvl', 'tiny-qwen2_vl']) {
    const e = await Engine.load(MODELS[name]!.dir);
    for (const f of Object.keys(files)) {
      const r = await e.generate({ image: path.join(dir, f), prompt: 'What is it?' }, { maxNewTokens: 2, minNewTokens: 2 });
      assert.equal(r.tokenIds.length, 2, `${name} ${f}`);
      assert.ok(r.stats.imageTokens > 0);
    }
    // the same pixels as PNG and as lossless WebP give the same answer
    const png = await e.generate({ image: path.join(dir, 'alpha.png'), prompt: 'What is it?' }, { maxNewTokens: 3, minNewTokens: 3 });
    fs.writeFileSync(path.join(dir, 'alpha.webp'), await sharp(path.join(dir, 'alpha.png')).webp({ lossless: true }).toBuffer());
    const webp = await e.generate({ image: path.join(dir, 'alpha.webp'), prompt: 'What is it?' }, { maxNewTokens: 3, minNewTokens: 3 });
    assert.deepEqual(webp.tokenIds, png.tokenIds, `${name}: PNG and lossless WebP`);
    await e.dispose();
  }
});

test('an image over the pixel limit is refused before decoding', async () => {
  const f = path.join(dir, 'huge.png');
  fs.writeFileSync(f, await solid(9000, 6000, 3, { r: 1, g: 2, b: 3 }).png({ compressionLevel: 9 }).toBuffer());
  const e = await Engine.load(MODELS['tiny-llava']!.dir);
  await assert.rejects(e.generate({ image: f, prompt: 'hi' }, { maxNewTokens: 1 }), (err: unknown) => err instanceof LightVLMError && /54000000|54.0|megapixel|pixel/i.test(err.message));
  await e.dispose();
});
