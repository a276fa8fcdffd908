// Batching invariant: a sequence decoded inside a batch (graph/batchDecode.ts through the
// scheduler, other sequences with other settings beside it) gives exactly the tokens it gives when
// decoded alone through the single-sequence graphs, in every family, with pyramid merging and KV
// eviction on (so every sequence and layer holds its own number of cache rows).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/engine/vlm.js';
import type { GenerateOptions } from '../../src/engine/types.js';
import { loadGolden, MODELS } from '../helpers.js';

const FAMILIES = ['tiny-llava', 'tiny-internvl', 'tiny-qwen2_vl'];
const N = 20; // tokens per answer: several eviction rounds at budget 6, period 2

const SETTINGS: GenerateOptions[] = [
  {},
  { acceleration: { prefill: { method: 'lightvlm', keep: 0.35 }, decode: { method: 'lightvlm', budget: 6, window: 3, sinks: 1, every: 2 } } },
  { acceleration: { prefill: { method: 'fastv', keep: 0.5 }, decode: { method: 'h2o', budget: 10, every: 2 } } },
  { acceleration: { decode: { method: 'streamingllm', budget: 12, sinks: 2, every: 3 } } },
  { temperature: 0.8, topP: 0.9, seed: 7, acceleration: { prefill: { method: 'lightvlm', keep: 0.1 }, decode: { method: 'lightvlm', budget: 8, window: 4, sinks: 2, every: 2 } } },
];

for (const name of FAMILIES) {
  test(`${name}: tokens decoded in a batch equal tokens decoded alone (merging + eviction on)`, async () => {
    const g = loadGolden(name);
    const e = await Engine.load(MODELS[name]!.dir);
    try {
      const img = await e.prepareImage(g.image);
      const prompts = [g.question, 'Describe the picture.', g.question, 'What is it?', 'Count the objects.'];
      const jobs = SETTINGS.map((s, i) => ({ input: { image: img, prompt: prompts[i]! }, opts: { ...s, maxNewTokens: N, minNewTokens: N } }));
      const alone: Awaited<ReturnType<Engine["generate"]>>[] = [];
      for (const j of jobs) alone.push(await e.generateAlone(j.input, j.opts));
      let maxBatch = 0;
      e.scheduler().onStep = (b) => (maxBatch = Math.max(maxBatch, b));
      const batched = await Promise.all(jobs.map((j) => e.generate(j.input, j.opts)));
      assert.equal(maxBatch, jobs.length, 'all sequences decoded together');
      batched.forEach((r, i) => {
        assert.deepEqual(r.tokenIds, alone[i]!.tokenIds, `setting ${i}`);
        assert.deepEqual(r.stats.cacheEntriesPerLayer, alone[i]!.stats.cacheEntriesPerLayer, `setting ${i}: cache rows`);
      });
      // the settings really gave different cache shapes
      assert.ok(new Set(batched.map((r) => r.stats.cacheEntriesPerLayer.join(','))).size >= 3);
    } finally {
      await e.dispose();
    }
  });
}

test('admission by KV memory: compressed sequences let more run at once, within the same --kv-memory', async () => {
  const name = 'tiny-llava';
  const g = loadGolden(name);
  const e = await Engine.load(MODELS[name]!.dir);
  try {
    const img = await e.prepareImage(g.image);
    const prompt = e.buildPrompt(g.question, img as Parameters<Engine['buildPrompt']>[1]);
    const plain: GenerateOptions = { maxNewTokens: 40, minNewTokens: 40 };
    const compressed: GenerateOptions = { ...plain, acceleration: { prefill: { method: 'lightvlm', keep: 0.1 }, decode: { method: 'lightvlm', budget: 4, window: 2, sinks: 1, every: 2 } } };
    const probe = e.scheduler();
    const rPlain = probe.reservation(prompt, plain);
    const rComp = probe.reservation(prompt, compressed);
    const fit = Math.floor((2 * rPlain + 1) / rComp);
    assert.ok(fit >= 3, `compressed reservation ${rComp} vs ${rPlain}: ${fit} fit where 2 unreduced do`);
    await e.dispose();
    const maxRunning = async (opts: GenerateOptions) => {
      const m = await Engine.load(MODELS[name]!.dir);
      const sched = m.scheduler({ kvMemory: 2 * rPlain + 1 });
      let most = 0;
      sched.onStep = () => (most = Math.max(most, sched.stats().decoding));
      const pimg = await m.prepareImage(g.image);
      const rs = await Promise.all(Array.from({ length: 6 }, () => m.generate({ image: pimg, prompt: g.question }, opts)));
      assert.equal(sched.stats().kvReserved, 0, 'every reservation returned');
      assert.ok(sched.stats().kvBytes === 0);
      await m.dispose();
      assert.ok(rs.every((r) => r.tokenIds.length === 40));
      return most;
    };
    assert.equal(await maxRunning(plain), 2, 'two unreduced sequences fit');
    assert.ok((await maxRunning(compressed)) >= fit, `at least ${fit} compressed sequences run at once in the same memory`);
  } finally {
    await e.dispose().catch(() => {});
  }
});
