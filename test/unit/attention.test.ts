// The LM stage graph's two attention paths agree: prefill (S > 1) through GroupQueryAttention in an
// If branch, decode (S = 1) through standard ops, against standard ops everywhere
// (fusedAttention: false), including the score side outputs, with and without a cache (P > 0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDecoderStage } from '../../src/graph/decoderStage.js';
import { f32, i64, Session } from '../../src/runtime/ort.js';
import { mulberry32 } from '../../src/util/topk.js';
import { relL2 } from '../helpers.js';

const dims = { hidden: 32, heads: 4, kvHeads: 2, headDim: 8, intermediate: 48, eps: 1e-6, act: 'silu' as const };
const r = mulberry32(3);
const rand = (n: number, s = 0.3) => Float32Array.from({ length: n }, () => (r() - 0.5) * s);
const lin = (o: number, i: number) => ({ w: rand(o * i), out: o, in: i });
const layers = [0, 1].map((index) => ({
  index,
  w: { inputNorm: rand(32, 2), postNorm: rand(32, 2), qkv: { ...lin(64, 32), b: rand(64) }, o: lin(32, 32), gateUp: lin(96, 32), down: lin(32, 48) },
}));

test('fused prefill / standard decode attention equals standard attention everywhere (outputs, new K/V, scores)', async () => {
  const fused = await Session.create(buildDecoderStage(dims, layers), 'fused');
  const std = await Session.create(buildDecoderStage(dims, layers, { fusedAttention: false }), 'std');
  for (const [S, P, from] of [[6, 0, 5], [6, 0, 0], [4, 7, 3], [4, 7, 1], [1, 9, 0], [1, 0, 0]] as const) {
    const ang = Float32Array.from({ length: S * 8 }, (_, i) => (P + Math.floor(i / 8)) * 0.3 * ((i % 4) + 1));
    const feeds = {
      hidden: f32(rand(S * 32, 2), [S, 32]),
      cos: f32(ang.map(Math.cos), [S, 8]),
      sin: f32(ang.map(Math.sin), [S, 8]),
      score_from: i64(BigInt64Array.of(BigInt(from)), [1]),
      'past_key.0': f32(rand(P * 16), [1, P, 16]),
      'past_value.0': f32(rand(P * 16), [1, P, 16]),
      'past_key.1': f32(rand(P * 16), [1, P, 16]),
      'past_value.1': f32(rand(P * 16), [1, P, 16]),
      'mask.0': f32(new Float32Array(1), [1, 1]),
      'mask.1': f32(new Float32Array(1), [1, 1]),
    };
    const fetch = ['hidden_out', 'new_key.1', 'new_value.1', 'score.0', 'score.1', 'attn_last.1'];
    const a = await fused.run(feeds, fetch);
    const b = await std.run(feeds, fetch);
    for (const k of fetch) {
      assert.deepEqual(a[k]!.dims, b[k]!.dims, `${k} S=${S} P=${P}`);
      assert.ok(relL2(a[k]!.data, b[k]!.data) < 1e-5, `${k} S=${S} P=${P} from=${from}: ${relL2(a[k]!.data, b[k]!.data)}`);
    }
  }
  await fused.release();
  await std.release();
});
