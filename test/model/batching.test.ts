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
