// Block quantization (MatMulNBits layout) and the kernel contract: MatMulNBits at accuracy_level 0
// equals an fp32 Gemm over the dequantized weights, for 8 and 4 bits, K a multiple of 32 or not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dequantize, quantize, type LinearQuantizer } from '../../src/graph/quant.js';
import { linear } from '../../src/graph/ops.js';
import { GraphBuilder } from '../../src/graph/proto.js';
import { f32, Session } from '../../src/runtime/ort.js';
import { mulberry32 } from '../../src/util/topk.js';
import { relL2 } from '../helpers.js';

const gauss = (n: number, seed: number): Float32Array => {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r()) * 0.05);
};

for (const bits of [8, 4] as const) {
  test(`q${bits}: round-to-nearest within half a step per block, zero exact, padding past K dequantizes to 0`, () => {
    const N = 5;
    const K = 70; // 3 blocks, the last one partial
    const w = gauss(N * K, bits);
    w[7] = 0;
    const q = quantize(w, N, K, bits);
    const d = dequantize(q);
    const nb = Math.ceil(K / 32);
    for (let n = 0; n < N; n++)
      for (let k = 0; k < K; k++) {
        const s = q.scales[n * nb + (k >> 5)]!;
        assert.ok(Math.abs(d[n * K + k]! - w[n * K + k]!) <= s / 2 + 1e-7, `w[${n},${k}]`);
      }
    assert.equal(d[7], 0);
    // measured: relative L2 of the weights 0.0044 (q8), 0.077 (q4) on Gaussian weights
    assert.ok(relL2(d, w) < (bits === 8 ? 0.006 : 0.1), `rel err ${relL2(d, w)}`);
  });
}

const fixed = (bits: 4 | 8, accuracyLevel: number): LinearQuantizer => ({ bits, accuracyLevel, get: (p) => quantize(p.w, p.out, p.in, bits) });

for (const [bits, K] of [[8, 64], [4, 64], [4, 48], [8, 40]] as const) {
  test(`MatMulNBits q${bits} (K=${K}, bias) at accuracy_level 0 equals Gemm over the dequantized weight`, async () => {
    const N = 24;
    const S = 3;
    const w = gauss(N * K, 11 + K);
    const b = gauss(N, 3);
    const x = gauss(S * K, 5);
    const run = async (quant: LinearQuantizer | undefined, weight: Float32Array) => {
      const g = new GraphBuilder('t', quant ? { quant } : {});
      const xi = g.input('x', 'float32', ['S', K]);
      g.output(linear(g, xi, { w: weight, b, out: N, in: K }), 'y', 'float32', ['S', N]);
      const s = await Session.create(g.encode(), 't');
      const y = (await s.run({ x: f32(x, [S, K]) }, ['y'])).y!;
      await s.release();
      assert.deepEqual(y.dims, [S, N]);
      return y.data;
    };
    const yq = await run(fixed(bits, 0), w);
    const yd = await run(undefined, dequantize(quantize(w, N, K, bits)));
    assert.ok(relL2(yq, yd) < 1e-5, `kernel vs dequantized: ${relL2(yq, yd)}`);
    // accuracy_level 4 quantizes activations to int8 too: measured ~1e-2 here
    const y4 = await run(fixed(bits, 4), w);
    assert.ok(relL2(y4, yd) < 0.03, `level 4 vs dequantized: ${relL2(y4, yd)}`);
  });
}
