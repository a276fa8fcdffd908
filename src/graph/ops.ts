// Building blocks shared by every graph. Activations are 2-D [rows, features] wherever possible
// (batch is always 1 in the LM), so every Linear is one Gemm with transB=1 over the HF [out, in]
// weight as stored: no transposed copies of the weights are ever made.
import { LightVLMError } from '../errors.js';
import { isOneOf, unreachable } from '../util/never.js';
import { F, GraphBuilder } from './proto.js';
import { BLOCK } from './quant.js';

export interface LinearW {
  w: Float32Array; // [out, in], HF layout (may be a getter: quantized builds with a cache hit never read it)
  b?: Float32Array; // [out]
  out: number;
  in: number;
  key?: string; // checkpoint tensor name(s): the quantized-weight cache key; without it, never cached
}

/** A LinearW whose weight is read on first access of `.w` (and not kept by this object). */
export function lazyLinear(key: string, read: () => Float32Array, out: number, inDim: number, b?: Float32Array): LinearW {
  return {
    get w() {
      return read();
    },
    out,
    in: inDim,
    key,
    ...(b ? { b } : {}),
  };
}

/**
 * y[rows, out] = x[rows, in] · Wᵀ + b. In a quantized graph: MatMulNBits (com.microsoft) over the
 * block-quantized weight, B [out, ceil(in/32), 32·bits/8], scales and zero points [out, blocks], same result layout.
 */
export function linear(g: GraphBuilder, x: string, p: LinearW, hint = 'w', float = false): string {
  if (g.quant && !float) {
    const q = g.quant.get(p);
    const nb = Math.ceil(p.in / BLOCK);
    const ins = [
      x,
      g.weightU8(`${hint}_q`, [p.out, nb, (BLOCK * q.bits) / 8], q.B),
      g.weight(`${hint}_s`, [p.out * nb], q.scales),
      g.weightU8(`${hint}_z`, [q.zeroPoints.length], q.zeroPoints),
    ];
    if (p.b) ins.push('', g.weight(`${hint}_b`, [p.out], p.b));
    return g.op('MatMulNBits', ins, { K: p.in, N: p.out, bits: q.bits, block_size: BLOCK, accuracy_level: g.quant.accuracyLevel }, 'com.microsoft');
  }
  const w = g.weight(hint, [p.out, p.in], p.w);
  const ins = [x, w];
  if (p.b) ins.push(g.weight(`${hint}_b`, [p.out], p.b));
  return g.op('Gemm', ins, { transB: 1 });
}

/** RMSNorm over the last axis (fused by ORT; matches HF LlamaRMSNorm in fp32). */
export function rmsNorm(g: GraphBuilder, x: string, weight: Float32Array, eps: number): string {
  const w = g.weight('rms', [weight.length], weight);
  return g.op('SimplifiedLayerNormalization', [x, w], { axis: -1, epsilon: F(eps), stash_type: 1 });
}

export function layerNorm(g: GraphBuilder, x: string, weight: Float32Array, bias: Float32Array, eps: number): string {
  const w = g.weight('ln', [weight.length], weight);
  const b = g.weight('ln_b', [bias.length], bias);
  return g.op('LayerNormalization', [x, w, b], { axis: -1, epsilon: F(eps) });
}

/** The activations the graphs build, by HF name (config.json hidden_act / projector_hidden_act). */
export const ACTIVATIONS = ['silu', 'swish', 'quick_gelu', 'gelu', 'gelu_pytorch_tanh', 'gelu_new'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

/** A config.json activation name, checked when the config is read (`field` names it in the error). */
export function readActivation(name: unknown, field: string): Activation {
  if (!isOneOf(ACTIVATIONS, name)) throw new LightVLMError(`config.json ${field} ${JSON.stringify(name)} is not supported (supported: ${ACTIVATIONS.join(', ')}).`, 'E_UNSUPPORTED');
  return name;
}

/** Activations by HF name. gelu = exact erf form (nn.GELU / ACT2FN['gelu']). */
export function activation(g: GraphBuilder, x: string, name: Activation): string {
  switch (name) {
    case 'silu':
    case 'swish':
      return g.op('Mul', [x, g.op('Sigmoid', [x])]);
    case 'quick_gelu':
      return g.op('Mul', [x, g.op('Sigmoid', [g.op('Mul', [x, g.constF32([1.702], [])])])]);
    case 'gelu': {
      const erf = g.op('Erf', [g.op('Mul', [x, g.constF32([Math.SQRT1_2], [])])]);
      return g.op('Mul', [g.op('Mul', [x, g.constF32([0.5], [])]), g.op('Add', [erf, g.constF32([1], [])])]);
    }
    case 'gelu_pytorch_tanh':
    case 'gelu_new': {
      // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
      const x3 = g.op('Mul', [g.op('Mul', [x, x]), x]);
      const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [x3, g.constF32([0.044715], [])])]), g.constF32([Math.sqrt(2 / Math.PI)], [])]);
      const t = g.op('Add', [g.op('Tanh', [inner]), g.constF32([1], [])]);
      return g.op('Mul', [g.op('Mul', [x, g.constF32([0.5], [])]), t]);
    }
    default:
      return unreachable(name, 'activation');
  }
}

/**
 * Rotate-half RoPE. x: [S, heads, dh]; cos, sin: [S, 1, dh] full-width tables (cat(freqs, freqs)).
 * out = x·cos + rotate_half(x)·sin, rotate_half(x) = cat(−x[..., dh/2:], x[..., :dh/2]).
 */
export function rope(g: GraphBuilder, x: string, cos: string, sin: string, dh: number): string {
  const [x1, x2] = g.opN('Split', [x, g.constI64([dh / 2, dh / 2])], 2, { axis: -1 });
  const rot = g.op('Concat', [g.op('Neg', [x2!]), x1!], { axis: -1 });
  return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rot, sin])]);
}

/**
 * Full (non-causal) multi-head attention for vision towers.
 * q, k, v: [B·n, heads·dh] with B images of n tokens. Returns [B·n, heads·dh] and probs [B, heads, n, n].
 */
export function fullAttention(
  g: GraphBuilder,
  q: string,
  k: string,
  v: string,
  n: number | string,
  heads: number,
  dh: number,
  bias?: string, // optional additive mask broadcastable to [B, heads, n, n]
): { out: string; probs: string } {
  // [B·n, h·dh] → [B, n, h, dh]; with a symbolic n there is exactly one image (B = 1)
  const split = g.constI64(typeof n === 'number' ? [-1, n, heads, dh] : [1, -1, heads, dh]);
  // 1/√dh folded into q: cheaper than scaling the [B,h,n,n] scores
  const qs = g.op('Mul', [q, g.constF32([1 / Math.sqrt(dh)], [])]);
  const q4 = g.op('Transpose', [g.op('Reshape', [qs, split])], { perm: [0, 2, 1, 3] }); // [B,h,n,dh]
  const kT = g.op('Transpose', [g.op('Reshape', [k, split])], { perm: [0, 2, 3, 1] }); // [B,h,dh,n]
  const v4 = g.op('Transpose', [g.op('Reshape', [v, split])], { perm: [0, 2, 1, 3] }); // [B,h,n,dh]
  let s = g.op('MatMul', [q4, kT]);
  if (bias) s = g.op('Add', [s, bias]);
  const probs = g.op('Softmax', [s], { axis: -1 });
  const ctx = g.op('Transpose', [g.op('MatMul', [probs, v4])], { perm: [0, 2, 1, 3] }); // [B,n,h,dh]
  return { out: g.op('Reshape', [ctx, g.constI64([-1, heads * dh])]), probs };
}
