// One stage session serves a lone sequence (B = 1) and a batched decode step (B > 1) with the same
// weights: each sequence's rows of a batched step equal its own lone decode step through the same
// session (hidden_out, new K/V, its attention row), with caches of different lengths padded and masked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDecoderStage } from '../../src/graph/decoderStage.js';
import { DTYPES } from '../../src/graph/quant.js';
import { quantize } from '../../src/graph/quant.js';
import { f32, i64, Session, type FeedValue } from '../../src/runtime/ort.js';
import { mulberry32 } from '../../src/util/topk.js';

const D = 32;
const row = 16; // Hkv · dh = 2 · 8
const dims = { hidden: D, heads: 4, kvHeads: 2, headDim: 8, intermediate: 48, eps: 1e-6, act: 'silu' as const };
const r = mulberry32(11);
const rand = (n: number, s = 0.3) => Float32Array.from({ length: n }, () => (r() - 0.5) * s);
const lin = (o: number, i: number) => ({ w: rand(o * i), out: o, in: i, key: `w${o}x${i}:${r()}` });
const layers = [0, 1].map((index) => ({
  index,
  w: { inputNorm: rand(D, 2), postNorm: rand(D, 2), qkv: { ...lin(64, D), b: rand(64) }, o: lin(D, D), gateUp: lin(96, D), down: lin(D, 48) },
}));
const q4 = { bits: 4 as const, accuracyLevel: 0, get: (p: { w: Float32Array; out: number; in: number }) => quantize(p.w, p.out, p.in, 4) };

for (const dtype of DTYPES.filter((d) => d !== 'q8')) {
  test(`batched decode step equals lone steps through the same session (${dtype})`, async () => {
    const s = await Session.create(buildDecoderStage(dims, layers, dtype === 'q4' ? { quant: q4 } : {}), 'stage');
    const lens = [5, 0, 9]; // per-sequence cache lengths (0: a sequence whose cache is empty)
    const B = lens.length;
    const P = Math.max(...lens);
    const caches = lens.map((n) => [0, 1].map(() => ({ k: rand(n * row), v: rand(n * row) })));
    const x = rand(B * D, 2);
    const ang = Float32Array.from({ length: B * 8 }, (_, i) => (lens[Math.floor(i / 8)]! + 1) * 0.3 * ((i % 4) + 1));
    const cos = ang.map(Math.cos);
    const sin = ang.map(Math.sin);
    const fetch = ['hidden_out', 'new_key.0', 'new_value.0', 'new_key.1', 'new_value.1', 'score.0', 'score.1'];

    // batched: caches padded to P with garbage rows, masked out
    const feeds: Record<string, FeedValue> = { hidden: f32(x, [B, D]), cos: f32(cos, [B, 8]), sin: f32(sin, [B, 8]), score_from: i64(BigInt64Array.of(0n), [1]) };
    const mask = new Float32Array(B * (P + 1));
    lens.forEach((n, b) => mask.fill(-1e30, b * (P + 1) + n, b * (P + 1) + P));
    for (const l of [0, 1]) {
      const k = rand(B * P * row, 50);
      const v = rand(B * P * row, 50);
      lens.forEach((n, b) => (k.set(caches[b]![l]!.k, b * P * row), v.set(caches[b]![l]!.v, b * P * row)));
      feeds[`past_key.${l}`] = f32(k, [B, P, row]);
      feeds[`past_value.${l}`] = f32(v, [B, P, row]);
      feeds[`mask.${l}`] = f32(mask, [B, P + 1]);
    }
    const batch = await s.run(feeds, fetch);

    for (let b = 0; b < B; b++) {
      const n = lens[b]!;
      const one: Record<string, FeedValue> = {
        hidden: f32(x.slice(b * D, (b + 1) * D), [1, D]),
        cos: f32(cos.slice(b * 8, (b + 1) * 8), [1, 8]),
        sin: f32(sin.slice(b * 8, (b + 1) * 8), [1, 8]),
        score_from: i64(BigInt64Array.of(0n), [1]),
      };
      for (const l of [0, 1]) {
        one[`past_key.${l}`] = f32(caches[b]![l]!.k, [1, n, row]);
        one[`past_value.${l}`] = f32(caches[b]![l]!.v, [1, n, row]);
        one[`mask.${l}`] = f32(new Float32Array(1), [1, 1]);
      }
      const alone = await s.run(one, fetch);
      const near = (a: Float32Array, want: Float32Array, what: string) => {
        assert.equal(a.length, want.length, what);
        a.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) <= 1e-5 * (1 + Math.abs(want[i]!)), `${what}[${i}]: ${v} vs ${want[i]}`));
      };
      near(batch.hidden_out!.data.subarray(b * D, (b + 1) * D), alone.hidden_out!.data, `hidden_out b=${b}`);
      for (const l of [0, 1]) {
        near(batch[`new_key.${l}`]!.data.subarray(b * row, (b + 1) * row), alone[`new_key.${l}`]!.data, `new_key.${l} b=${b}`);
        near(batch[`new_value.${l}`]!.data.subarray(b * row, (b + 1) * row), alone[`new_value.${l}`]!.data, `new_value.${l} b=${b}`);
        // the sequence's batched attention row: its n real keys, zeros on the padding, then its own new key
        const sc = batch[`score.${l}`]!.data.subarray(b * (P + 1), (b + 1) * (P + 1));
        assert.ok(sc.subarray(n, P).every((v) => v === 0), `padding attention of b=${b} is exactly 0`);
        near(Float32Array.of(...sc.subarray(0, n), sc[P]!), alone[`score.${l}`]!.data, `score.${l} b=${b}`);
      }
    }
    await s.release();
  });
}
