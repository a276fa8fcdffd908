// Greedy answers of the trained synth-llava under q8 / q4 against fp32, on the first 200 synth-vqa
// questions. Measured (accuracy_level 4): q8 200/200 agree, q4 183/200 (91.5%); all three answer
// 100/200 correctly. ~600 short generations: the most expensive quantization test, kept to one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Engine } from '../../src/engine/vlm.js';
import type { PreparedImage } from '../../src/engine/types.js';
import { loadDataset } from '../../src/eval/dataset.js';
import type { DType } from '../../src/graph/quant.js';
import { MODELS, ROOT } from '../helpers.js';

test('synth-llava greedy answers agree with fp32 on >= 97% (q8) and >= 90% (q4) of the first 200 synth-vqa questions', async () => {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lightvlm-agree-'));
  const qs = loadDataset(path.join(ROOT, 'datasets/synth-vqa'), 200).questions;
  assert.equal(qs.length, 200);
  const answers = async (dtype: DType): Promise<string[]> => {
    const e = await Engine.load(MODELS['synth-llava']!.dir, { dtype, cacheDir });
    const imgs = new Map<string, PreparedImage>();
    const out: string[] = [];
    for (const q of qs) {
      let img = imgs.get(q.image);
      if (!img) imgs.set(q.image, (img = await e.prepareImage(q.image)));
      out.push((await e.generate({ image: img, prompt: q.question }, { maxNewTokens: 8 })).text.trim());
    }
    await e.dispose();
    return out;
  };
  const ref = await answers('fp32');
  for (const [dtype, min] of [['q8', 0.97], ['q4', 0.9]] as const) {
    const got = await answers(dtype);
    const agree = got.filter((a, i) => a === ref[i]).length / qs.length;
    assert.ok(agree >= min, `${dtype}: ${agree * 100}% of answers agree with fp32`);
  }
  fs.rmSync(cacheDir, { recursive: true, force: true });
});
