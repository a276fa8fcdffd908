// One pre-LN ViT block builder shared by the three vision towers (CLIP in llava.ts, InternViT in
// internvit.ts, the Qwen2-VL tower in qwen2vlVision.ts):
//   h = h + ls1 · o(attn(norm1(h)))       attention half (optional qk-norm, 2-D rotary, fused qkv)
//   h = h + ls2 · fc2(act(fc1(norm2(h)))) MLP half
// Weights reach the graph through slots (VitBlockW), filled from one declarative name table per
// family (BlockNames); graph code never reads a checkpoint name. Every Linear goes through linear().
// Activations are [n, D]: the n tokens of ONE image (or tile); n may be symbolic.
import type { SafetensorsStore } from '../checkpoint/safetensors.js';
import type { FeedValue } from '../runtime/ort.js';
import { activation, type Activation, fullAttention, lazyLinear, layerNorm, linear, rmsNorm, rope, type LinearW } from '../graph/ops.js';
import { GraphBuilder, type GraphOptions } from '../graph/proto.js';

/** Norm weights: LayerNorm when `b` is present, RMSNorm otherwise. */
export interface NormW {
  w: Float32Array;
  b?: Float32Array;
}

export interface VitBlockW {
  norm1: NormW;
  norm2: NormW;
  qkv: LinearW | [LinearW, LinearW, LinearW]; // fused [3D, D] (q | k | v) or separate q, k, v
  qNorm?: Float32Array;                         // InternViT qk-norm: RMSNorm over all heads at once
  kNorm?: Float32Array;
  o: LinearW;
  fc1: LinearW;
  fc2: LinearW;
  ls1?: Float32Array;                           // InternViT layer scale (lambda_1, lambda_2) [D]
  ls2?: Float32Array;
}

export interface VitDims {
  D: number;
  heads: number;
  dh: number;
  act: Activation;  // HF hidden_act of the MLP (quick_gelu for CLIP / Qwen2-VL, gelu for InternViT)
  eps: number;      // block norm epsilon
  qkNormEps?: number;
}

/** Checkpoint names of one block's weights, relative to the block prefix; `bias` suffixes are optional. */
export interface BlockNames {
  block: (layer: number) => string; // e.g. l => `encoder.layers.${l}.`
  norm1: string;
  norm2: string;
  qkv: string | [string, string, string];
  qNorm?: string;
  kNorm?: string;
  o: string;
  fc1: string;
  fc2: string;
  ls1?: string;
  ls2?: string;
}

/** Fills one block's slots from the checkpoint by its family's name table. */
export function readBlock(store: SafetensorsStore, prefix: string, names: BlockNames, layer: number, norm: 'layer' | 'rms'): VitBlockW {
  const base = prefix + names.block(layer);
  const t = (n: string) => store.float(base + n).data;
  const opt = (n: string | undefined) => (n !== undefined && store.has(base + n) ? t(n) : undefined);
  // Read on first use: a quantized build served from the disk cache never widens these to fp32.
  const lin = (n: string): LinearW => {
    const name = base + n + '.weight';
    const dims = store.entries.get(name)?.shape ?? store.float(name).dims; // (the read throws the typed "missing" error)
    return lazyLinear(base + n, () => store.float(name).data, dims[0]!, dims[1]!, opt(n + '.bias'));
  };
  const nrm = (n: string): NormW => (norm === 'layer' ? { w: t(n + '.weight'), b: t(n + '.bias') } : { w: t(n + '.weight') });
  const qkNorm = names.qNorm && store.has(base + names.qNorm + '.weight');
  return {
    norm1: nrm(names.norm1),
    norm2: nrm(names.norm2),
    qkv: typeof names.qkv === 'string' ? lin(names.qkv) : [lin(names.qkv[0]), lin(names.qkv[1]), lin(names.qkv[2])],
    ...(qkNorm ? { qNorm: t(names.qNorm! + '.weight'), kNorm: t(names.kNorm! + '.weight') } : {}),
    o: lin(names.o),
    fc1: lin(names.fc1),
    fc2: lin(names.fc2),
    ...(names.ls1 ? { ls1: t(names.ls1), ls2: t(names.ls2!) } : {}),
  };
}

export function norm(g: GraphBuilder, x: string, n: NormW, eps: number): string {
  return n.b ? layerNorm(g, x, n.w, n.b, eps) : rmsNorm(g, x, n.w, eps);
}

const scaled = (g: GraphBuilder, x: string, s: Float32Array | undefined) => (s ? g.op('Mul', [x, g.weight('ls', [s.length], s)]) : x);

/** 2-D rotary tables as graph values, [n, 1, dh] each (Qwen2-VL). */
export interface Rotary {
  cos: string;
  sin: string;
}

/**
 * Attention half of a block. h: [n, D] → h + ls1·o(attn(norm1(h))). Also returns the attention
 * probabilities [1, heads, n, n] (one image) for the signals the merge policies read.
 */
export function attentionHalf(g: GraphBuilder, h: string, w: VitBlockW, d: VitDims, n: number | string, rot?: Rotary): { h: string; probs: string } {
  const { D, heads, dh } = d;
  const x = norm(g, h, w.norm1, d.eps);
  let q: string, k: string, v: string;
  if (Array.isArray(w.qkv)) [q, k, v] = w.qkv.map((p) => linear(g, x, p)) as [string, string, string];
  else [q, k, v] = g.opN('Split', [linear(g, x, w.qkv), g.constI64([D, D, D])], 3, { axis: -1 }) as [string, string, string];
  if (w.qNorm && w.kNorm) {
    q = rmsNorm(g, q, w.qNorm, d.qkNormEps ?? 1e-6);
    k = rmsNorm(g, k, w.kNorm, d.qkNormEps ?? 1e-6);
  }
  if (rot) {
    const heads3 = g.constI64([0, heads, dh]);
    const flat = g.constI64([0, D]);
    const r = (t: string) => g.op('Reshape', [rope(g, g.op('Reshape', [t, heads3]), rot.cos, rot.sin, dh), flat]); // [n, D]
    q = r(q);
    k = r(k);
  }
  const att = fullAttention(g, q, k, v, n, heads, dh);
  return { h: g.op('Add', [h, scaled(g, linear(g, att.out, w.o), w.ls1)]), probs: att.probs };
}

/** MLP half of a block. h: [n, D] → h + ls2·fc2(act(fc1(norm2(h)))). */
export function mlpHalf(g: GraphBuilder, h: string, w: VitBlockW, d: VitDims): string {
  const y = norm(g, h, w.norm2, d.eps);
  return g.op('Add', [h, scaled(g, linear(g, activation(g, linear(g, y, w.fc1), d.act), w.fc2), w.ls2)]);
}

/** A whole block. h: [n, D] → [n, D]; probs [1, heads, n, n]. */
export function vitBlock(g: GraphBuilder, h: string, w: VitBlockW, d: VitDims, n: number | string, rot?: Rotary): { h: string; probs: string } {
  const a = attentionHalf(g, h, w, d, n, rot);
  return { h: mlpHalf(g, a.h, w, d), probs: a.probs };
}

/** Mean attention each token receives: head mean, then mean over query rows. probs [1,h,n,n] → [n]. */
export function receivedAttention(g: GraphBuilder, probs: string): string {
  return g.op('Reshape', [g.op('ReduceMean', [probs], { axes: [0, 1, 2], keepdims: 0 }), g.constI64([-1])]);
}

/** A family's tower around the shared blocks: its embedding, its head, and the blocks it runs. */
export interface VitTower {
  name: string;
  dims: VitDims;
  blocks: VitBlockW[];        // the layers run (up to the feature layer)
  tokens: number | string;    // n after the embedding (symbolic for native-resolution towers)
  rotary?: number;            // head size dh when blocks take 2-D rotary tables rope_cos / rope_sin [n, dh]
  /** Declares the pixel inputs and returns the embedded tokens h [n, D]. */
  embed(g: GraphBuilder): string;
  /**
   * Declares the outputs from the last hidden states h [n, D] and the last layer's attention
   * probs [1, heads, n, n]. `rows` (int64 [m]), when given, lists the rows of h the head reads
   * (in the order it reads them), replacing the family's own fixed row order.
   */
  head(g: GraphBuilder, h: string, probs: string, n: number | string, rows?: string): void;
}

function rotaryInputs(g: GraphBuilder, dh: number): Rotary {
  const un = (x: string) => g.op('Unsqueeze', [x, g.constI64([1])]); // [n, 1, dh]
  return { cos: un(g.input('rope_cos', 'float32', ['n', dh])), sin: un(g.input('rope_sin', 'float32', ['n', dh])) };
}

/**
 * The tower as ONNX graphs. Without cuts: one graph, pixels → features. With cuts c₁ < c₂ < …
 * (block indices < the number of blocks − 1), the tower is split after the attention half of each cut
 * layer (where token merging acts, spec §3.9): segment 0 = embedding … attention of c₁; segment i
 * takes `hidden_in` [n, D] and starts with the MLP half of cᵢ; every segment but the last outputs
 * `hidden` and `attn_received` [n]; the last takes `rows` and runs the head.
 */
/** `opts.quant` makes every Linear MatMulNBits (LoadOptions.dtype). */
export function buildTower(t: VitTower, cuts: number[] = [], opts: GraphOptions = {}): Uint8Array[] {
  const L = t.blocks.length;
  const d = t.dims;
  return Array.from({ length: cuts.length + 1 }, (_, s) => {
    const g = new GraphBuilder(cuts.length ? `${t.name}_${s}` : t.name, opts);
    const first = s === 0;
    const last = s === cuts.length;
    let h = first ? t.embed(g) : g.input('hidden_in', 'float32', ['n', d.D]);
    const n = first ? t.tokens : 'n';
    const rot = t.rotary ? rotaryInputs(g, t.rotary) : undefined;
    let l = first ? 0 : cuts[s - 1]! + 1;
    if (!first) h = mlpHalf(g, h, t.blocks[l - 1]!, d);
    const end = last ? L : cuts[s]!;
    let probs = '';
    for (; l < end; l++) ({ h, probs } = vitBlock(g, h, t.blocks[l]!, d, n, rot));
    if (last) {
      t.head(g, h, probs, n, cuts.length ? g.input('rows', 'int64', ['m']) : undefined);
    } else {
      const a = attentionHalf(g, h, t.blocks[end]!, d, n, rot);
      g.output(a.h, 'hidden', 'float32', [n, d.D]);
      g.output(receivedAttention(g, a.probs), 'attn_received', 'float32', [n]);
    }
    return g.encode();
  });
}

/**
 * One image part (a tile for InternVL, the image otherwise) as vision-side merging sees it.
 * Rows are the tower's tokens after the embedding ([CLS] first where there is one).
 */
export interface VitLayout {
  tokens: number;           // rows at the embedding
  protect: number[];        // rows never merged ([CLS])
  headRows: Int32Array;     // original rows in the order the head reads them
  group: number;            // consecutive headRows per LM token (k² pixel shuffle, m² merger, 1 CLIP)
  rotary?: { cos: Float32Array; sin: Float32Array; dh: number }; // per-row 2-D rotary tables [tokens, dh]
  reduceError?: string;     // why `reduce` cannot apply to this family's layout, if it cannot
}

/** One image part for a merged tower run: its first segment's feeds (pixels, rotary tables) and layout. */
export interface VitPart {
  feeds: Record<string, FeedValue>;
  layout: VitLayout;
}

/** A family's vision-side merging support (Family.vit). */
export interface VitSupport<Inputs> {
  tower(): VitTower;
  depth: number;            // blocks the tower runs
  parts(inputs: Inputs): VitPart[];
}
