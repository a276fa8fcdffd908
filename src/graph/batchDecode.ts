// Graph for ONE decode step of B sequences at once through LM layers [from, to). Every Linear sees
// the B new rows as one [B, ·] matrix, so each weight is read once per step whatever B is; attention
// is per sequence, over that sequence's own cache, padded to the longest cache of the layer.
//
// Inputs
//   hidden        [B, D]              the B new tokens' residual stream entering layer `from`
//   cos, sin      [B, dh]             RoPE tables of each sequence's next position (from explicit ids)
//   past_key.l    [B, P_l, Hkv·dh]    cache of layer l of every sequence, padded to P_l = the longest
//   past_value.l  [B, P_l, Hkv·dh]    (after merging and eviction every sequence has its own length)
//   mask.l        [B, P_l + 1]        additive key mask: 0 for a real row, −1e30 for padding; the
//                                     last column (the new token's own key) is always 0
// Outputs
//   hidden_out    [B, D]
//   new_key.l     [B, Hkv·dh]         the new rows only (post-RoPE keys): the caller owns the caches
//   new_value.l   [B, Hkv·dh]
//   score.l       [B, P_l + 1]        head-mean softmax attention of each new query over its keys
//                                     (padding columns are exactly 0): what component B and H2O
//                                     accumulate per sequence
// Numerically this is the single-sequence stage graph (decoderStage.ts) at S = 1 with padded keys
// whose probabilities are exactly zero, so a sequence decodes the same inside a batch as alone.
import { IO } from './io.js';
import { GraphBuilder, type GraphOptions } from './proto.js';
import { linear, rmsNorm, rope } from './ops.js';
import { mlpBlock, type DecoderLayerWeights, type TextDims } from './decoderStage.js';

export function buildBatchDecode(dims: TextDims, layers: { index: number; w: DecoderLayerWeights }[], opts: GraphOptions = {}): Uint8Array {
  const { hidden: D, heads: H, kvHeads: Hkv, headDim: dh } = dims;
  const G = H / Hkv;
  const g = new GraphBuilder(`batch_decode.${layers[0]!.index}-${layers[layers.length - 1]!.index + 1}`, { ...(opts.quant ? { quant: opts.quant } : {}) });
  let h = g.input(IO.hidden, 'float32', ['B', D]);
  const cos = g.op('Unsqueeze', [g.input(IO.cos, 'float32', ['B', dh]), g.constI64([1])]); // [B,1,dh]
  const sin = g.op('Unsqueeze', [g.input(IO.sin, 'float32', ['B', dh]), g.constI64([1])]);

  for (const { index: l, w } of layers) {
    const pastK = g.input(IO.pastKey(l), 'float32', ['B', `P${l}`, Hkv * dh]);
    const pastV = g.input(IO.pastValue(l), 'float32', ['B', `P${l}`, Hkv * dh]);
    const mask = g.input(IO.mask(l), 'float32', ['B', `T${l}`]);

    // --- attention ---
    const x = rmsNorm(g, h, w.inputNorm, dims.eps);
    const [q, k, v] = g.opN('Split', [linear(g, x, w.qkv, `l${l}.qkv`), g.constI64([H * dh, Hkv * dh, Hkv * dh])], 3, { axis: -1 });
    // 1/√dh folded into q after RoPE, in the same order as the stage graph
    const qr = g.op('Mul', [rope(g, g.op('Reshape', [q!, g.constI64([-1, H, dh])]), cos, sin, dh), g.constF32([1 / Math.sqrt(dh)], [])]); // [B,H,dh]
    const newK = g.op('Reshape', [rope(g, g.op('Reshape', [k!, g.constI64([-1, Hkv, dh])]), cos, sin, dh), g.constI64([-1, Hkv * dh])]); // [B,Hkv·dh]
    g.output(newK, IO.newKey(l), 'float32', ['B', Hkv * dh]);
    g.output(v!, IO.newValue(l), 'float32', ['B', Hkv * dh]);
    const one = g.constI64([1]);
    const Kall = g.op('Concat', [pastK, g.op('Unsqueeze', [newK, one])], { axis: 1 }); // [B,T,Hkv·dh]
    const Vall = g.op('Concat', [pastV, g.op('Unsqueeze', [v!, one])], { axis: 1 });
    const kT = g.op('Transpose', [g.op('Reshape', [Kall, g.constI64([0, 0, Hkv, dh])])], { perm: [0, 2, 3, 1] }); // [B,Hkv,dh,T]
    const vT = g.op('Transpose', [g.op('Reshape', [Vall, g.constI64([0, 0, Hkv, dh])])], { perm: [0, 2, 1, 3] }); // [B,Hkv,T,dh]
    // GQA without repeat_kv: query head h uses kv head h / G, so the G heads of a kv head are rows
    const qg = g.op('Reshape', [qr, g.constI64([-1, Hkv, G, dh])]); // [B,Hkv,G,dh]
    const m4 = g.op('Unsqueeze', [mask, g.constI64([1, 2])]); // [B,1,1,T]
    const probs = g.op('Softmax', [g.op('Add', [g.op('MatMul', [qg, kT]), m4])], { axis: -1 }); // [B,Hkv,G,T]
    g.output(g.op('ReduceMean', [probs], { axes: [1, 2], keepdims: 0 }), IO.score(l), 'float32', ['B', `T${l}`]);
    const ctx = g.op('Reshape', [g.op('MatMul', [probs, vT]), g.constI64([-1, H * dh])]); // [B,Hkv,G,dh] → [B,H·dh]
    h = g.op('Add', [h, linear(g, ctx, w.o, `l${l}.o`)]);

    h = mlpBlock(g, h, l, w, dims);
  }
  g.output(h, IO.hiddenOut, 'float32', ['B', D]);
  return g.encode();
}
