// Invariants of the engine that need no golden: cached decoding equals recomputation, splitting
// the decoder changes nothing, keep 1 equals none, decoding after a merge equals recomputing the
// merged prefill, per-layer cache lengths follow spec §3.6.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/engine/vlm.js';
import { forwardAll } from '../../src/engine/inspect.js';
import { argmax } from '../../src/engine/sampling.js';
import type { MergeDecision, MergeInput } from '../../src/merge/types.js';
import { loadGolden, MODELS, relL2 } from '../helpers.js';

const FAMILIES = ['tiny-llava', 'tiny-internvl', 'tiny-qwen2_vl'];

async function setup(name: string) {
  const g = loadGolden(name);
  const e = await Engine.load(MODELS[name]!.dir);
  const img = await e.prepareImage(g.image);
  return { g, e, img: img as Parameters<Engine['buildPrompt']>[1] };
}

for (const name of FAMILIES) {
  test(`${name}: cached decoding equals recomputing the full sequence; splits change nothing`, async () => {
    const { g, e, img } = await setup(name);
    const steps: Float32Array[] = [];
    const r = await e.generate({ image: img, prompt: g.question }, { maxNewTokens: 6, minNewTokens: 6 }, { onLogits: (l) => steps.push(l) });
    const p = e.buildPrompt(g.question, img);
    const T = p.ids.length;
    // the same tokens fed as one prompt (M-RoPE rows continue from max + 1, as in decoding)
    const next = Math.max(...p.pos.map((row) => Math.max(...row))) + 1;
    const ids = [...p.ids, ...r.tokenIds.slice(0, -1)];
    const pos = p.pos.map((row) => Int32Array.from([...row, ...r.tokenIds.slice(0, -1).map((_, t) => next + t)]));
    const full = await forwardAll(e.ctx, { ...p, ids, pos }, false);
    const split = await forwardAll(e.ctx, { ...p, ids, pos }, true);
    const V = e.info.vocabSize;
    assert.ok(relL2(split.logits, full.logits) < 1e-5, 'per-layer split differs from the single range');
    steps.forEach((l, t) => {
      const row = full.logits.subarray((T - 1 + t) * V, (T + t) * V);
      assert.ok(relL2(l, row) < 1e-4, `step ${t}: cached decode differs from recomputation`);
      assert.equal(argmax(l), r.tokenIds[t]);
    });
    await e.dispose();
  });

  test(`${name}: keep 1 (explicit stages) gives the unreduced logits`, async () => {
    const { g, e, img } = await setup(name);
    const L = e.info.layers;
    const first = (opts: object) => {
      const out: Float32Array[] = [];
      return e.generate({ image: img, prompt: g.question }, { maxNewTokens: 3, minNewTokens: 3, ...opts }, { onLogits: (l) => out.push(l) }).then((r) => ({ r, out }));
    };
    const base = await first({});
    const stages = Array.from({ length: L - 1 }, (_, i) => ({ layer: i + 1, keep: 1 }));
    for (const method of ['lightvlm', 'fastv', 'pdrop', 'random']) {
      const m = await first({ acceleration: { prefill: { method, stages } } });
      assert.deepEqual(m.r.tokenIds, base.r.tokenIds, method);
      m.out.forEach((l, t) => assert.ok(relL2(l, base.out[t]!) < 1e-5, `${method} step ${t}`));
      assert.deepEqual(m.r.stats.imageTokensPerLayer, base.r.stats.imageTokensPerLayer);
    }
    await e.dispose();
  });
}

for (const name of FAMILIES) {
  test(`${name}: decoding after a merge equals recomputing the merged prefill with the same kept tokens`, async () => {
    const { g, e, img } = await setup(name);
    const stages = [{ layer: 1, keep: 0.5 }, { layer: 2, keep: 0.25 }];
    const accel = { prefill: { method: 'lightvlm' as const, stages, mergeMode: 'recycle' as const } };
    const merged = await e.generate({ image: img, prompt: g.question }, { maxNewTokens: 4, minNewTokens: 4, acceleration: accel });
    const N = merged.stats.imageTokens;
    const [N1, N2] = merged.kept.map((k) => k.imageIndices.length);
    assert.deepEqual(merged.stats.imageTokensPerLayer, [N, N1, N2]);
    // cache lengths (spec §3.6): T_txt + N_j + t, component A off with --kv none
    const T = merged.stats.promptTokens;
    const t = merged.tokenIds.length - 1;
    assert.deepEqual(merged.stats.cacheEntriesPerLayer, [T + t, T - N + N1! + t, T - N + N2! + t]);
    // Replay: the prompt extended by the generated tokens (at positions max + 1 + t on every
    // M-RoPE row) with the same kept image tokens forced gives the cached decode's logits.
    // 'drop' makes the replay exact (recycle carriers would depend on the longer prompt's scores).
    const p = e.buildPrompt(g.question, img);
    const next = Math.max(...p.pos.map((row) => Math.max(...row))) + 1;
    const { generate } = await import('../../src/engine/generate.js');
    const dropSteps: Float32Array[] = [];
    const dropped = await e.generate({ image: img, prompt: g.question }, { maxNewTokens: 4, minNewTokens: 4, acceleration: { prefill: { method: 'lightvlm', stages, mergeMode: 'drop' } } }, { onLogits: (l) => dropSteps.push(l) });
    const dropKept = dropped.kept.map((k) => new Set(k.imageIndices));
    for (let k = 1; k < dropped.tokenIds.length; k++) {
      let stage = 0;
      const replay = (i: MergeInput): MergeDecision => {
        const want = dropKept[stage++]!;
        const o = i.origInSpan!;
        return { rows: Int32Array.from(Array.from(o.keys()).filter((r) => o[r]! < 0 || want.has(o[r]!))), updates: [] };
      };
      const out: Float32Array[] = [];
      const extra = dropped.tokenIds.slice(0, k);
      const ids = [...p.ids, ...extra];
      const pos = p.pos.map((row) => Int32Array.from([...row, ...extra.map((_, j) => next + j)]));
      await generate(e.ctx, { ...p, ids, pos }, { maxNewTokens: 1, acceleration: { prefill: { method: 'lightvlm', stages, mergeMode: 'drop' } } }, { policy: replay, onLogits: (l) => out.push(l) });
      assert.ok(relL2(dropSteps[k]!, out[0]!) < 1e-4, `step ${k}`);
    }
    await e.dispose();
  });
}

test('component A: every layer holds the text plus the final kept image tokens', async () => {
  const { g, e, img } = await setup('tiny-llava');
  const r = await e.generate(
    { image: img, prompt: g.question },
    { maxNewTokens: 3, minNewTokens: 3, acceleration: { prefill: { method: 'lightvlm', stages: [{ layer: 1, keep: 0.5 }, { layer: 2, keep: 0.25 }] }, decode: { method: 'stale' } } },
  );
  const { promptTokens: T, imageTokens: N, keptImageTokens: K } = r.stats;
  assert.equal(K, N / 4);
  assert.deepEqual(r.stats.cacheEntriesPerLayer, [T - N + K + 2, T - N + K + 2, T - N + K + 2]);
  await e.dispose();
});
