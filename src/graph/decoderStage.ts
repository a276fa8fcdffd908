// Graph for LM decoder layers [from, to): one "stage". Used for prefill (S = prompt rows), for a
// lone decode step (S = 1) and for a batched decode step of B sequences (S = B rows, one per
// sequence): every Linear runs on the [S, ·] rows, so all three share one session and one copy of
// the weights; only attention branches (If on B = past_key's first dim > 1).
//
// Inputs
//   hidden        [S, D]              residual stream entering layer `from`
//   cos, sin      [S, dh]             RoPE tables per row, computed by the caller from explicit
//                                     (possibly gapped, possibly M-RoPE) position ids
//   score_from    [1] int64           first query row summed into the score outputs (one sequence)
//   past_key.l    [B, P_l, Hkv·dh]    cached post-RoPE keys of layer l (token-major, so the JS-owned
//   past_value.l  [B, P_l, Hkv·dh]    cache appends rows and gathers rows; P_l differs per layer).
//                                     B = 1: one sequence (a view of its cache); B = S > 1: a batched
//                                     decode step, caches padded to the longest (graph/batchDecode.ts)
//   mask.l        [B, P_l + 1]        batch only: additive key mask of the padding (one sequence: any
//                                     [1, 1], unread)
// Outputs
//   hidden_out    [S, D]
//   new_key.l     [S, Hkv·dh]         only the new rows: the caller owns the cache
//   new_value.l   [S, Hkv·dh]
//   score.l       [T_l]               Σ over query rows ≥ score_from of head-mean softmax attention
//                                     (score_from = S−1: the last-row score merging uses; 0 with
//                                     S = prompt: H2O's column sums; a window: SnapKV's votes).
//                                     Batch: [B·(P_l+1)], each sequence's new-token attention row
//   attn_last.l   [T_l]               head-mean softmax attention of the last query row: the
//                                     importance score pyramid merging ranks image tokens by
// The causal mask is built from shapes: query row i sits at cache index P_l + i.
import { IO } from './io.js';
import { F, GraphBuilder, type GraphOptions } from './proto.js';
import { batchAttention } from './batchDecode.js';
import { activation, linear, rmsNorm, rope, type Activation, type LinearW } from './ops.js';

export interface DecoderLayerWeights {
  inputNorm: Float32Array;
  postNorm: Float32Array;
  qkv: LinearW;       // q|k|v rows concatenated: [(H + 2·Hkv)·dh, D]
  o: LinearW;         // [D, H·dh]
  gateUp: LinearW;    // gate|up rows concatenated: [2·I, D]
  down: LinearW;      // [D, I]
}

/** The LM sizes a decoder graph needs (models/config.ts's TextConfig extends it). */
export interface TextDims {
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  eps: number;
  act: Activation;
}

export function buildDecoderStage(
  dims: TextDims,
  layers: { index: number; w: DecoderLayerWeights }[],
  opts: GraphOptions = {},
): Uint8Array {
  const { hidden: D, heads: H, kvHeads: Hkv, headDim: dh } = dims;
  const G = H / Hkv;
  const g = new GraphBuilder(`decoder.${layers[0]!.index}-${layers[layers.length - 1]!.index + 1}`, opts);
  let h = g.input(IO.hidden, 'float32', ['S', D]);
  const cosIn = g.input(IO.cos, 'float32', ['S', dh]);
  const sinIn = g.input(IO.sin, 'float32', ['S', dh]);
  const scoreFrom = g.input(IO.scoreFrom, 'int64', [1]);
  const cos = g.op('Unsqueeze', [cosIn, g.constI64([1])]); // [S,1,dh]
  const sin = g.op('Unsqueeze', [sinIn, g.constI64([1])]);
  const S = g.op('Gather', [g.op('Shape', [h]), g.constI64([0], [])], { axis: 0 }); // scalar
  const negInf = g.constF32([-1e30], []);
  const zero = g.constF32([0], []);

  const row = Hkv * dh;
  // B > 1: a batched decode step (one new row per sequence, padded caches); else one sequence.
  const B = g.op('Gather', [g.op('Shape', [IO.pastKey(layers[0]!.index)]), g.constI64([0], [])], { axis: 0 });
  const isBatch = g.op('Greater', [B, g.constI64([1], [])]);

  for (const { index: l, w } of layers) {
    const pastK = g.input(IO.pastKey(l), 'float32', ['B', `P${l}`, row]);
    const pastV = g.input(IO.pastValue(l), 'float32', ['B', `P${l}`, row]);
    const mask = g.input(IO.mask(l), 'float32', ['B', `M${l}`]);

    // --- attention ---
    const x = rmsNorm(g, h, w.inputNorm, dims.eps);
    const qkv = linear(g, x, w.qkv, `l${l}.qkv`);
    const [q, k, v] = g.opN('Split', [qkv, g.constI64([H * dh, Hkv * dh, Hkv * dh])], 3, { axis: -1 });
    // 1/√dh is folded into q ([S,H,dh]) rather than applied to the [H,S,T] scores: one pass fewer over the largest tensor
    const qr = g.op('Mul', [rope(g, g.op('Reshape', [q!, g.constI64([-1, H, dh])]), cos, sin, dh), g.constF32([1 / Math.sqrt(dh)], [])]); // [S,H,dh]
    const kr = rope(g, g.op('Reshape', [k!, g.constI64([-1, Hkv, dh])]), cos, sin, dh); // [S,Hkv,dh]
    const newK = g.op('Reshape', [kr, g.constI64([-1, row])]);
    g.output(newK, IO.newKey(l), 'float32', ['S', row]);
    g.output(v!, IO.newValue(l), 'float32', ['S', row]);

    // One sequence: S rows of it against its cache [1, P, row]. Returns ctx [S, H·dh], score.l, attn_last.l.
    const single = (b: GraphBuilder): string[] => {
      const pk = b.op('Reshape', [pastK, b.constI64([-1, row])]); // [P, row]
      const pv = b.op('Reshape', [pastV, b.constI64([-1, row])]);
      const Kall = b.op('Concat', [pk, newK], { axis: 0 }); // [T, Hkv·dh]
      const kT = b.op('Transpose', [b.op('Reshape', [Kall, b.constI64([-1, Hkv, dh])])], { perm: [1, 2, 0] }); // [Hkv,dh,T]
      const T = b.op('Gather', [b.op('Shape', [Kall]), b.constI64([0], [])], { axis: 0 });
      const P = b.op('Sub', [T, S]);
      // Softmax attention probs [H, S', T] of the query rows r >= from (int64 [1]); row r sits at
      // cache index P + r. GQA without repeat_kv: query head h uses kv head h / G, so the G heads of
      // a kv head are grouped into one MatMul.
      const probsFrom = (from: string): string => {
        const qs = b.op('Slice', [qr, from, b.constI64([2 ** 62]), b.constI64([0])]); // [S',H,dh]
        const qg = b.op('Reshape', [
          b.op('Transpose', [b.op('Reshape', [qs, b.constI64([-1, Hkv, G, dh])])], { perm: [1, 2, 0, 3] }), // [Hkv,G,S',dh]
          b.constI64([Hkv, -1, dh]),
        ]); // [Hkv, G·S', dh]
        const logits = b.op('Reshape', [b.op('MatMul', [qg, kT]), b.constI64([H, -1, 0])]); // [H,S',T]
        const first = b.op('Add', [P, b.op('Gather', [from, b.constI64([0], [])], { axis: 0 })]);
        const kpos = b.op('Range', [b.constI64([0], []), T, b.constI64([1], [])]); // [T]
        const qpos = b.op('Unsqueeze', [b.op('Range', [first, T, b.constI64([1], [])]), b.constI64([1])]); // [S',1]
        const cmask = b.op('Where', [b.op('Greater', [kpos, qpos]), negInf, zero]); // [S',T]
        return b.op('Softmax', [b.op('Add', [logits, cmask])], { axis: -1 });
      };
      // Side outputs from the query rows >= score_from only (one row by default, score_from = S − 1):
      // score.l = Σ over those rows of the head-mean probs, attn_last.l = the last row's.
      const all = opts.fusedAttention === false ? probsFrom(b.constI64([0])) : undefined; // standard ops everywhere: [H,S,T]
      const rows = all ? b.op('Slice', [all, scoreFrom, b.constI64([2 ** 62]), b.constI64([1])]) : probsFrom(scoreFrom); // [H,S',T]
      const score = b.op('ReduceMean', [b.op('ReduceSum', [rows, b.constI64([1])], { keepdims: 0 })], { axes: [0], keepdims: 0 });
      const lastRow = b.op('Slice', [rows, b.constI64([-1]), b.constI64([2 ** 62]), b.constI64([1])]); // [H,1,T]
      const attnLast = b.op('ReduceMean', [lastRow], { axes: [0, 1], keepdims: 0 });
      // Decode (S = 1): `rows` is the whole [H,1,T] attention, so ctx = probs·V costs one small MatMul.
      const standardCtx = (c: GraphBuilder, probs: string): string => {
        const vT = c.op('Transpose', [c.op('Reshape', [c.op('Concat', [pv, v!], { axis: 0 }), c.constI64([-1, Hkv, dh])])], { perm: [1, 0, 2] }); // [Hkv,T,dh]
        const ctx = c.op('MatMul', [c.op('Reshape', [probs, c.constI64([Hkv, -1, 0])]), vT]); // [Hkv,G·S,dh]
        return c.op('Reshape', [c.op('Transpose', [c.op('Reshape', [ctx, c.constI64([Hkv, G, -1, dh])])], { perm: [2, 0, 1, 3] }), c.constI64([-1, H * dh])]); // [S,H·dh]
      };
      // Prefill (S > 1): GroupQueryAttention (com.microsoft) never materializes the [H,S,T] mask, the
      // masked logits and the probs as separate tensors (measured 2.3x faster per layer at S = 1836,
      // 1.3x at 512; slower than standard ops at S = 1). q is pre-scaled and q, k are rotated, so
      // scale = 1, do_rotary = 0; past in BNSH [1,Hkv,P,dh]; seqlens_k = T − 1, total_sequence_length = T.
      const fusedCtx = (c: GraphBuilder): string => {
        const bnsh = (x: string) => c.op('Unsqueeze', [c.op('Transpose', [c.op('Reshape', [x, c.constI64([-1, Hkv, dh])])], { perm: [1, 0, 2] }), c.constI64([0])]);
        const b3 = (x: string) => c.op('Unsqueeze', [x, c.constI64([0])]); // [S,·] → [1,S,·]
        const i32 = (x: string) => c.op('Cast', [x], { to: 6 });
        const seqlensK = i32(c.op('Unsqueeze', [c.op('Sub', [T, c.constI64([1], [])]), c.constI64([0])]));
        const [out] = c.opN(
          'GroupQueryAttention',
          [b3(c.op('Reshape', [qr, c.constI64([-1, H * dh])])), b3(newK), b3(v!), bnsh(pk), bnsh(pv), seqlensK, i32(T)],
          3,
          { num_heads: H, kv_num_heads: Hkv, scale: F(1), do_rotary: 0 },
          'com.microsoft',
        );
        return c.op('Reshape', [out!, c.constI64([-1, H * dh])]);
      };
      const ctx = all ? standardCtx(b, all) : b.ifElse(b.op('Greater', [S, b.constI64([1], [])]), ['float32'], (c) => [fusedCtx(c)], (c) => [standardCtx(c, rows)])[0]!;
      return [ctx, score, attnLast];
    };
    // B sequences, one new row each (graph/batchDecode.ts); score.l is then [B·(P+1)], attn_last.l a copy of it.
    const batch = (b: GraphBuilder): string[] => {
      const { ctx, score } = batchAttention(b, { qr, newK, v: v!, pastK, pastV, mask, heads: H, kvHeads: Hkv, headDim: dh });
      return [ctx, score, b.op('Identity', [score])];
    };
    const [ctx2, score, attnLast] = g.ifElse(isBatch, ['float32', 'float32', 'float32'], batch, single) as [string, string, string];
    g.output(score, IO.score(l), 'float32', [`T${l}`]);
    g.output(attnLast, IO.attnLast(l), 'float32', [`T${l}`]);
    h = g.op('Add', [h, linear(g, ctx2, w.o, `l${l}.o`)]);

    h = mlpBlock(g, h, l, w, dims);
  }
  g.output(h, IO.hiddenOut, 'float32', ['S', D]);
  return g.encode();
}

/** Post-attention half of a decoder layer: h + down(act(gate(norm(h))) · up(norm(h))), rows [R, D] → [R, D]. Shared by the stage and batched-decode graphs. */
export function mlpBlock(g: GraphBuilder, h: string, l: number, w: DecoderLayerWeights, dims: TextDims): string {
  const I = dims.intermediate;
  const y = rmsNorm(g, h, w.postNorm, dims.eps);
  const [gate, up] = g.opN('Split', [linear(g, y, w.gateUp, `l${l}.gateup`), g.constI64([I, I])], 2, { axis: -1 });
  return g.op('Add', [h, linear(g, g.op('Mul', [activation(g, gate!, dims.act), up!]), w.down, `l${l}.down`)]);
}

/** Final norm + LM head. hidden [S, D] → normed [S, D], logits [S, V]. `floatHead` keeps the head fp32 in a quantized build. */
export function buildHead(D: number, eps: number, norm: Float32Array, lmHead: LinearW, opts: GraphOptions = {}, floatHead = false): Uint8Array {
  const g = new GraphBuilder('lm_head', opts);
  const h = g.input(IO.hidden, 'float32', ['S', D]);
  const n = rmsNorm(g, h, norm, eps);
  g.output(n, IO.normed, 'float32', ['S', D]);
  g.output(linear(g, n, lmHead, 'lm_head', floatHead), IO.logits, 'float32', ['S', lmHead.out]);
  return g.encode();
}
