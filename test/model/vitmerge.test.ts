// Token merging inside the vision tower (vitMerge, issue #12) on every family: nothing merged is no
// merging; reduce keeps whole 2×2 groups; the merged features equal an independent replay of the
// same decisions; the LM gets exactly as many features as the prompt has image tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/engine/vlm.js';
import type { ImageInputs } from '../../src/models/family.js';
import { buildTower, type VitPart } from '../../src/models/vit.js';
import { f32, i64, Session } from '../../src/runtime/ort.js';
import { leastAttended, mergeLayers, unitsAfter, VIT_MERGE_MODES, type VitMergeOptions } from '../../src/vitmerge/policy.js';
import { loadGolden, MODELS, relL2 } from '../helpers.js';

// tiny-llava's tower runs one block (no room for a merge layer): synth-llava is the LLaVA case.
const FAMILIES = ['synth-llava', 'tiny-internvl', 'tiny-qwen2_vl'] as const;

async function open(name: string): Promise<{ e: Engine; inputs: ImageInputs; question: string }> {
  const g = loadGolden(name);
  const e = await Engine.load(MODELS[name]!.dir);
  const { loadImage } = await import('../../src/processing/image.js');
  return { e, inputs: e.family.preprocess(await loadImage(g.image)), question: g.question };
}

const last = (e: Engine) => e.family.vit!.depth - 2; // the last possible merge layer

for (const name of FAMILIES) {
  test(`${name}: vitMerge with nothing merged equals no merging (both modes, same answer)`, async () => {
    const { e, inputs, question } = await open(name);
    const plain = await e.encodeInputs(inputs);
    const want = (await e.generate({ image: plain, prompt: question }, { maxNewTokens: 4 })).tokenIds;
    for (const mode of VIT_MERGE_MODES) {
      // keep 1: every merge layer runs (segments, scores, rows) but merges nothing
      const vm: VitMergeOptions = { mode, layer: 0, keep: 1, layers: e.family.vit!.depth - 1 };
      const img = await e.encodeInputs(inputs, performance.now(), vm);
      assert.deepEqual(img.features, plain.features, `${mode}: features`);
      assert.deepEqual(img.clsAttn, plain.clsAttn, `${mode}: [CLS] attention`);
      const r = await e.generate({ image: plain, prompt: question }, { maxNewTokens: 4, acceleration: { vitMerge: vm } });
      assert.deepEqual(r.tokenIds, want, `${mode}: answer`);
      assert.deepEqual(r.vision!.tokensPerLayer, r.stats.visionTokensPerLayer);
      assert.ok(r.vision!.tokensPerLayer.every((t) => t === r.vision!.tokensPerLayer[0]), 'no layer ran on fewer tokens');
    }
    await e.dispose();
  });

  test(`${name}: the LM gets as many features as the prompt has image tokens, positions of the kept ones`, async () => {
    const { e, inputs, question } = await open(name);
    const fullPrompt = e.buildPrompt(question, await e.encodeInputs(inputs));
    for (const mode of VIT_MERGE_MODES) {
      const img = await e.encodeInputs(inputs, performance.now(), { mode, layer: last(e), keep: 0.5, layers: 1 });
      const p = e.buildPrompt(question, img);
      const n = p.spans.reduce((a, s) => a + s.length, 0);
      assert.equal(n * e.info.hiddenSize, p.features.length, mode);
      assert.equal(n, img.imageTokens);
      if (mode === 'unmerge') {
        assert.deepEqual(p.ids, fullPrompt.ids);
        assert.deepEqual(p.pos, fullPrompt.pos);
        continue;
      }
      const keep = img.vision!.lmKeep!;
      assert.equal(keep.length, n);
      assert.ok(n < fullPrompt.spans[0]!.length, 'reduce hands fewer tokens to the LM');
      // every kept image token keeps its original position row(s) (M-RoPE), text is unchanged around it
      const s0 = fullPrompt.spans[0]!.start;
      if (p.pos.length === 3) for (let r = 0; r < 3; r++) keep.forEach((k, i) => assert.equal(p.pos[r]![s0 + i], fullPrompt.pos[r]![s0 + k]));
      assert.deepEqual(p.ids.slice(0, s0), fullPrompt.ids.slice(0, s0));
      const r = await e.generate({ image: img, prompt: question }, { maxNewTokens: 2, acceleration: { vitMerge: { mode, layer: last(e), keep: 0.5, layers: 1 }, prefill: { method: 'lightvlm', keep: 0.5 } } });
      assert.equal(r.stats.imageTokens, n);
    }
    await e.dispose();
  });
}

for (const name of ['tiny-internvl', 'tiny-qwen2_vl']) {
  test(`${name}: reduce merges whole 2×2 groups (per tile) and keeps the same count in every tile`, async () => {
    const { e, inputs } = await open(name);
    const img = await e.encodeInputs(inputs, performance.now(), { mode: 'reduce', layer: 0, keep: 0.5, layers: 1 });
    const t = img.vision!;
    for (const m of t.mergedAway) assert.ok(m.every((f) => f === 0 || f === 1), `a group was split: ${Array.from(m)}`);
    const parts = e.family.vit!.parts(inputs);
    const perPart = parts[0]!.layout.headRows.length / parts[0]!.layout.group;
    const counts = parts.map((_, p) => t.lmKeep!.filter((k) => Math.floor(k / perPart) === p).length);
    assert.ok(counts.every((c) => c === counts[0] && c === Math.round(perPart * 0.5)), `kept per part ${counts}`);
    // the features of kept groups come from kept groups only: dropped groups are absent
    const gone = t.mergedAway[t.mergedAway.length - 1]!;
    assert.deepEqual(Array.from(t.lmKeep!), Array.from(gone.keys()).filter((k) => gone[k] === 0));
    await e.dispose();
  });
}

/**
 * Independent replay: runs the segment graphs by hand and applies the decisions with its own
 * bookkeeping (a list of live original rows and a merged-into map), then compares the features.
 */
async function replay(e: Engine, parts: VitPart[], o: VitMergeOptions): Promise<Float32Array[]> {
  const vit = e.family.vit!;
  const cuts = mergeLayers(o, vit.depth);
  const sessions = await Promise.all(buildTower(vit.tower(), cuts).map((gr, i) => Session.create(gr, `replay ${i}`)));
  const out: Float32Array[] = [];
  for (const part of parts) {
    const L = part.layout;
    const g = o.mode === 'reduce' ? L.group : 1;
    let units: number[][] = [];
    if (o.mode === 'reduce') for (let t = 0; t < L.headRows.length / g; t++) units.push(Array.from(L.headRows.slice(t * g, (t + 1) * g)));
    else for (let r = 0; r < L.tokens; r++) if (!L.protect.includes(r)) units.push([r]);
    const initial = units.length;
    let alive = Array.from({ length: L.tokens }, (_, i) => i); // original row of each current row
    const into = new Map<number, number>(); // dropped original row → original row it went into
    let res = await sessions[0]!.run(part.feeds, ['hidden', 'attn_received']);
    let h = res.hidden!.data;
    for (let j = 0; j < cuts.length; j++) {
      const D = h.length / alive.length;
      const r = units.length - unitsAfter(initial, o.keep, j, cuts.length);
      const vec = new Map(alive.map((orig, row) => [orig, h.slice(row * D, (row + 1) * D)]));
      if (r > 0) {
        const chosen = leastAttended(res.attn_received!.data, units.map((u) => Int32Array.from(u, (x) => alive.indexOf(x))), r);
        const target = units[chosen[r]!]!;
        target.forEach((t, i) => {
          const acc = new Float64Array(D);
          chosen.forEach((u, k) => vec.get(units[u]![i]!)!.forEach((x, c) => (acc[c] += (x * (r + 1 - k)) / (((r + 1) * (r + 2)) / 2))));
          vec.set(t, Float32Array.from(acc));
        });
        for (const u of chosen.slice(0, r)) units[u]!.forEach((x, i) => into.set(x, target[i]!));
        const gone = new Set(chosen.slice(0, r));
        units = units.filter((_, u) => !gone.has(u));
        alive = alive.filter((x) => !into.has(x));
      }
      h = new Float32Array(alive.length * D);
      alive.forEach((orig, row) => h.set(vec.get(orig)!, row * D));
      const feeds: Record<string, ReturnType<typeof f32>> = { hidden_in: f32(h, [alive.length, D]) };
      if (L.rotary) {
        const pick = (tab: Float32Array) => f32(Float32Array.from(alive.flatMap((orig) => Array.from(tab.subarray(orig * L.rotary!.dh, (orig + 1) * L.rotary!.dh)))), [alive.length, L.rotary!.dh]);
        feeds.rope_cos = pick(L.rotary.cos);
        feeds.rope_sin = pick(L.rotary.sin);
      }
      if (j + 1 < cuts.length) {
        res = await sessions[j + 1]!.run(feeds, ['hidden', 'attn_received']);
        h = res.hidden!.data;
        continue;
      }
      const home = (x: number): number => (into.has(x) ? home(into.get(x)!) : x);
      const rows = o.mode === 'unmerge' ? Array.from(L.headRows, (x) => alive.indexOf(home(x))) : units.flatMap((u) => u.map((x) => alive.indexOf(x)));
      const fin = await sessions[cuts.length]!.run({ ...feeds, rows: i64(BigInt64Array.from(rows, BigInt), [rows.length]) }, ['features']);
      out.push(fin.features!.data);
    }
  }
  for (const s of sessions) await s.release();
  return out;
}

for (const name of FAMILIES) {
  test(`${name}: merged vision features equal a replay of the same decisions (both modes)`, async () => {
    const { e, inputs } = await open(name);
    const depth = e.family.vit!.depth;
    for (const mode of VIT_MERGE_MODES) {
      const o: VitMergeOptions = { mode, layer: depth > 3 ? 1 : 0, keep: 0.4, layers: depth > 3 ? 3 : 1 };
      const img = await e.encodeInputs(inputs, performance.now(), o);
      const ref = await replay(e, e.family.vit!.parts(inputs), o);
      const all = new Float32Array(ref.reduce((a, x) => a + x.length, 0));
      ref.reduce((off, x) => (all.set(x, off), off + x.length), 0);
      assert.equal(img.features.length, all.length, mode);
      assert.ok(relL2(img.features, all) < 1e-6, `${mode}: rel err ${relL2(img.features, all)}`);
      assert.ok(img.vision!.tokensPerLayer[depth - 1]! < img.vision!.tokensPerLayer[0]!, 'later layers ran on fewer tokens');
    }
    await e.dispose();
  });
}
