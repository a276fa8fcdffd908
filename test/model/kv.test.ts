// KV-cache compression in decoding: an unbounded budget changes nothing, eviction keeps memory
// within the budget over long answers, and positions keep counting from the original length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/engine/vlm.js';
import { loadGolden, MODELS, relL2 } from '../helpers.js';
import type { DecodeAcceleration } from '../../src/engine/types.js';

test('budget >= sequence length: every KV method reproduces no compression', async () => {
  const g = loadGolden('tiny-llava');
  const e = await Engine.load(MODELS['tiny-llava']!.dir);
  const img = await e.prepareImage(g.image);
  const run = async (decode?: DecodeAcceleration) => {
    const out: Float32Array[] = [];
    const r = await e.generate({ image: img, prompt: g.question }, { maxNewTokens: 40, minNewTokens: 40, ...(decode ? { acceleration: { decode } } : {}) }, { onLogits: (l) => out.push(l) });
    return { r, out };
  };
  const base = await run();
  for (const decode of [{ method: 'lightvlm', budget: 64, window: 16 }, { method: 'streamingllm', budget: 200 }, { method: 'h2o', budget: 200 }, { method: 'snapkv', budget: 200 }] satisfies DecodeAcceleration[]) {
    const m = await run(decode);
    assert.deepEqual(m.r.tokenIds, base.r.tokenIds, decode.method);
    m.out.forEach((l, t) => assert.ok(relL2(l, base.out[t]!) < 1e-6, `${decode.method} step ${t}`));
  }
  await e.dispose();
});

test('cache stays within budget over 2000 decode steps; positions keep increasing', async () => {
  const g = loadGolden('tiny-llava');
  const e = await Engine.load(MODELS['tiny-llava']!.dir);
  const img = await e.prepareImage(g.image);
  const T = e.buildPrompt(g.question, img as Parameters<Engine['buildPrompt']>[1]).ids.length;
  const n = 2000;
  for (const [decode, limit] of [
    [{ method: 'lightvlm', budget: 64, window: 16, sinks: 4, every: 8 }, T + 64 + 8],
    [{ method: 'streamingllm', budget: 48, every: 8 }, 48 + 8],
    [{ method: 'h2o', budget: 48, every: 8 }, 48 + 8],
  ] as const) {
    let worst = 0;
    const positions: number[] = [];
    const r = await e.generate({ image: img, prompt: g.question }, { maxNewTokens: n, minNewTokens: n, acceleration: { decode } }, {
      onStep: (s) => {
        worst = Math.max(worst, ...s.cacheLengths);
        positions.push(s.position);
      },
    });
    assert.ok(worst <= limit, `${decode.method}: ${worst} entries > ${limit}`);
    assert.ok(Math.max(...r.stats.cacheEntriesPerLayer) < worst, `${decode.method} evicted`);
    assert.equal(r.tokenIds.length, n);
    // the t-th fed token sits at position T + t, whatever was evicted before it
    assert.deepEqual(positions, Array.from({ length: n - 1 }, (_, t) => T + t));
  }
  await e.dispose();
});

test('stop strings end the answer and are cut from the text', async () => {
  const g = loadGolden('tiny-llava');
  const e = await Engine.load(MODELS['tiny-llava']!.dir);
  const img = await e.prepareImage(g.image);
  const full = await e.generate({ image: img, prompt: g.question }, { maxNewTokens: 12, minNewTokens: 12 });
  const stop = full.text.slice(4, 7);
  assert.ok(stop.length === 3 && !full.text.slice(0, 4).includes(stop));
  const r = await e.generate({ image: img, prompt: g.question }, { maxNewTokens: 12, minNewTokens: 12, stopStrings: [stop] });
  assert.equal(r.text, full.text.slice(0, 4));
  assert.ok(r.tokenIds.length < 12);
  assert.deepEqual(r.tokenIds, full.tokenIds.slice(0, r.tokenIds.length));
  await e.dispose();
});
