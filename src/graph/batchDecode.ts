// Attention of ONE decode step of B sequences at once, the batch branch of the LM stage graph
// (decoderStage.ts). Every Linear of the stage graph sees the B new rows as one [B, ·] matrix, so
// each weight is read once per step whatever B is, and B = 1 (prefill, a lone decode) and B > 1 run
// through the same session and the same weights. Attention is per sequence, over that sequence's
// own cache, padded to the longest cache of the layer:
//
//   qr        [B, H, dh]            rotated, pre-scaled queries of the B new tokens
//   newK, v   [B, Hkv·dh]           their new keys (post-RoPE) and values
//   pastK/V   [B, P, Hkv·dh]        every sequence's cache of this layer, padded to P = the longest
//   mask      [B, P + 1]            additive key mask: 0 for a real row, −1e30 for padding; the last
//                                   column (the new token's own key) is always 0
// Returns ctx [B, H·dh] and score [B·(P+1)]: the head-mean softmax attention of each new query over
// its keys, row b at [b·(P+1), (b+1)·(P+1)) (padding columns exactly 0), what component B and H2O
// accumulate per sequence. Numerically this is the single-sequence decode path at S = 1 with padded
// keys whose probabilities are exactly zero, so a sequence decodes the same inside a batch as alone.
import type { GraphBuilder } from './proto.js';

export interface BatchAttentionIn {
  qr: string;
  newK: string;
  v: string;
  pastK: string;
  pastV: string;
  mask: string;
  heads: number;
  kvHeads: number;
  headDim: number;
}

export function batchAttention(b: GraphBuilder, x: BatchAttentionIn): { ctx: string; score: string } {
  const { heads: H, kvHeads: Hkv, headDim: dh } = x;
  const G = H / Hkv;
  const one = b.constI64([1]);
  const Kall = b.op('Concat', [x.pastK, b.op('Unsqueeze', [x.newK, one])], { axis: 1 }); // [B,T,Hkv·dh]
  const Vall = b.op('Concat', [x.pastV, b.op('Unsqueeze', [x.v, one])], { axis: 1 });
  const kT = b.op('Transpose', [b.op('Reshape', [Kall, b.constI64([0, 0, Hkv, dh])])], { perm: [0, 2, 3, 1] }); // [B,Hkv,dh,T]
  const vT = b.op('Transpose', [b.op('Reshape', [Vall, b.constI64([0, 0, Hkv, dh])])], { perm: [0, 2, 1, 3] }); // [B,Hkv,T,dh]
  // GQA without repeat_kv: query head h uses kv head h / G, so the G heads of a kv head are rows
  const qg = b.op('Reshape', [x.qr, b.constI64([-1, Hkv, G, dh])]); // [B,Hkv,G,dh]
  const m4 = b.op('Unsqueeze', [x.mask, b.constI64([1, 2])]); // [B,1,1,T]
  const probs = b.op('Softmax', [b.op('Add', [b.op('MatMul', [qg, kT]), m4])], { axis: -1 }); // [B,Hkv,G,T]
  const score = b.op('Reshape', [b.op('ReduceMean', [probs], { axes: [1, 2], keepdims: 0 }), b.constI64([-1])]); // [B·T]
  const ctx = b.op('Reshape', [b.op('MatMul', [probs, vT]), b.constI64([-1, H * dh])]); // [B,Hkv,G,dh] → [B,H·dh]
  return { ctx, score };
}
