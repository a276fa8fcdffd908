// Block quantization of Linear weights into the MatMulNBits layout (onnxruntime-notes.md §3.4).
// The HF weight [N = out, K = in] is already the layout MatMulNBits wants: one block is 32
// consecutive K values of one output row n, so no transpose is ever made.
//
//   B           uint8 [N, nb, 32·bits/8]   q4: element j of a block in byte j>>1, low nibble first
//   scales      f32   [N, nb]
//   zeroPoints  uint8 q4: [N, ceil(nb/2)] packed, block b in byte b>>1, low nibble first
//                     q8: [N, nb], one byte per block
// with nb = ceil(K/32). Asymmetric round-to-nearest over a range that includes 0:
//   scale = (max − min)/qmax, zp = round(−min/scale), q = clamp(round(x/scale) + zp, 0, qmax)
// so w ≈ (q − zp)·scale and 0 is exact (padding rows past K dequantize to 0).

export type DType = 'fp32' | 'q8' | 'q4';
export const DTYPES: readonly DType[] = ['fp32', 'q8', 'q4'];
export const BLOCK = 32;

export interface QuantizedLinear {
  bits: 4 | 8;
  K: number;
  N: number;
  B: Uint8Array;
  scales: Float32Array;
  zeroPoints: Uint8Array;
}

/** What linear() needs to emit MatMulNBits: the bit width, the kernel's accuracy level, the arrays. */
export interface LinearQuantizer {
  readonly bits: 4 | 8;
  /** MatMulNBits accuracy_level: 0 = fp32 compute (exact vs dequantized), 4 = int8 activations (VNNI). */
  readonly accuracyLevel: number;
  /** Quantized arrays of w [out, in]; `key` names the checkpoint tensor(s) for the disk cache. */
  get(p: { w: Float32Array; out: number; in: number; key?: string }): QuantizedLinear;
}

/** Bytes streamed per weight: packed values + an fp32 scale and a zero point per block of 32. */
export const BYTES_PER_PARAM: Record<DType, number> = { fp32: 4, q8: 1 + 4 / BLOCK + 1 / BLOCK, q4: 0.5 + 4 / BLOCK + 0.5 / BLOCK };

export const bitsOf = (d: DType): 4 | 8 => (d === 'q4' ? 4 : 8);

/** Byte sizes of the three arrays for a [N, K] weight. */
export function quantSizes(bits: 4 | 8, N: number, K: number): { b: number; s: number; z: number } {
  const nb = Math.ceil(K / BLOCK);
  return { b: N * nb * ((BLOCK * bits) / 8), s: N * nb * 4, z: bits === 4 ? N * Math.ceil(nb / 2) : N * nb };
}

/** Quantizes w [N, K] (row-major, HF layout) into MatMulNBits arrays. ~2-4 ns per weight in V8. */
export function quantize(w: Float32Array, N: number, K: number, bits: 4 | 8): QuantizedLinear {
  if (w.length !== N * K) throw new Error(`internal: weight has ${w.length} values, expected ${N}×${K}`);
  const nb = Math.ceil(K / BLOCK);
  const qmax = bits === 4 ? 15 : 255;
  const blob = (BLOCK * bits) / 8;
  const sz = quantSizes(bits, N, K);
  const B = new Uint8Array(sz.b);
  const scales = new Float32Array(sz.s / 4);
  const zeroPoints = new Uint8Array(sz.z);
  const zpRow = bits === 4 ? Math.ceil(nb / 2) : nb;
  for (let n = 0; n < N; n++) {
    const row = n * K;
    for (let b = 0; b < nb; b++) {
      const k0 = row + b * BLOCK;
      const k1 = Math.min(row + K, k0 + BLOCK);
      let mn = 0;
      let mx = 0;
      for (let k = k0; k < k1; k++) {
        const v = w[k]!;
        if (v < mn) mn = v;
        else if (v > mx) mx = v;
      }
      const scale = mx > mn ? (mx - mn) / qmax : 1;
      const inv = 1 / scale;
      const zp = Math.min(qmax, Math.max(0, Math.round(-mn * inv)));
      const sIdx = n * nb + b;
      scales[sIdx] = scale;
      if (bits === 4) zeroPoints[n * zpRow + (b >> 1)]! |= zp << ((b & 1) * 4);
      else zeroPoints[n * zpRow + b] = zp;
      // q = clamp(round(x/scale) + zp): trunc(x·inv + zp + 0.5) is round-half-up for non-negative
      // arguments, and anything that truncates below 0 clamps to 0 anyway. Past K: q = zp (value 0).
      const zh = zp + 0.5;
      const o = sIdx * blob;
      const q = (k: number): number => {
        if (k >= k1) return zp;
        const t = (w[k]! * inv + zh) | 0;
        return t < 0 ? 0 : t > qmax ? qmax : t;
      };
      if (bits === 8) for (let j = 0; j < BLOCK; j++) B[o + j] = q(k0 + j);
      else for (let j = 0; j < BLOCK; j += 2) B[o + (j >> 1)] = q(k0 + j) | (q(k0 + j + 1) << 4);
    }
  }
  return { bits, K, N, B, scales, zeroPoints };
}

/** w ≈ (q − zp)·scale, back to [N, K] fp32: the reference the kernel is exact against (tests). */
export function dequantize(q: QuantizedLinear): Float32Array {
  const { bits, K, N } = q;
  const nb = Math.ceil(K / BLOCK);
  const blob = (BLOCK * bits) / 8;
  const zpRow = bits === 4 ? Math.ceil(nb / 2) : nb;
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const b = k >> 5;
      const j = k & 31;
      const s = q.scales[n * nb + b]!;
      const zp = bits === 4 ? (q.zeroPoints[n * zpRow + (b >> 1)]! >> ((b & 1) * 4)) & 15 : q.zeroPoints[n * zpRow + b]!;
      const byte = q.B[(n * nb + b) * blob + (bits === 4 ? j >> 1 : j)]!;
      const v = bits === 4 ? (byte >> ((j & 1) * 4)) & 15 : byte;
      out[n * K + k] = (v - zp) * s;
    }
  }
  return out;
}
