// Pre-LM reduction of one image span's features (lightvlm-spec.md §6 "Pre-LLM pruning"):
// FasterVLM (top by [CLS] attention), VisionZip (dominant + contextual merges) and a Fourier
// low-pass resampler. Inputs: N image tokens laid out row-major on a gh x gw grid
// (token index = y*gw + x), features [N, D] row-major, clsAttn [N] (the [CLS] attention each
// token receives, head-summed or head-averaged: same ranking). Everything is pure.

import { LightVLMError } from '../errors.js';
import { roundHalfEven, topKAscending } from '../util/topk.js';

/** Image tokens kept for a fraction: max(1, roundHalfEven(N · keep)), at most N. */
export function preLMTarget(N: number, keep: number): number {
  if (!(keep > 0 && keep <= 1)) throw new LightVLMError(`pre-LM keep ${keep} must lie in (0, 1]`, 'E_OPTION');
  return Math.min(N, Math.max(1, roundHalfEven(N * keep)));
}

/** FasterVLM: the top max(1, roundHalfEven(N·keep)) tokens by [CLS] attention, ascending indices (ties: lower index). */
export function fastervlmSelect(clsAttn: Float32Array, keep: number): Int32Array {
  return topKAscending(clsAttn, preLMTarget(clsAttn.length, keep));
}

/**
 * Split a total token budget like VisionZip's 54 dominant + 10 contextual (54/64 = 84.375%):
 * nDominant = max(1, roundHalfEven(total · 54/64)), nContext = total − nDominant.
 * 64 → 54+10, 128 → 108+20, 192 → 162+30 (VisionZip's LLaVA-1.5 budgets exactly).
 */
export function splitVisionZipBudget(total: number): { nDominant: number; nContext: number } {
  if (!Number.isInteger(total) || total < 1) throw new LightVLMError(`VisionZip budget ${total} must be an integer >= 1`, 'E_OPTION');
  const nDominant = Math.min(total, Math.max(1, roundHalfEven((total * 54) / 64)));
  return { nDominant, nContext: total - nDominant };
}

export interface VisionZipResult {
  dominant: Int32Array;          // [nDominant] indices of the dominant tokens, ascending (emit features[dominant] unchanged)
  contextual: Float32Array;      // [nCtx', D] merged contextual rows, in target order (nCtx' = min(nContext, R))
  contextualTargets: Int32Array; // [nCtx'] original index of each contextual row's target (for position ids in 'keep' mode)
}

/**
 * VisionZip (LC `visionzip.py`): dominant = top nDominant by clsAttn (kept in ascending index order,
 * as `masked_select` does). The R remaining tokens (ascending order) are L2-normalised — we use the
 * FEATURES themselves as the similarity metric where VisionZip uses the head-mean attention keys,
 * because the engine's vision graphs do not export keys. Targets: remaining positions 0, step,
 * 2·step, … (step = max(1, floor(R/nContext)), first nContext of them); every other remaining token
 * joins its most cosine-similar target (ties: first target); each target emits
 * features[target] + mean(features[assigned]) (just features[target] when nothing is assigned).
 * Arithmetic in float64, stored fp32.
 */
export function visionzipSelect(clsAttn: Float32Array, features: Float32Array, D: number, nDominant: number, nContext: number): VisionZipResult {
  const N = clsAttn.length;
  if (features.length !== N * D) throw new LightVLMError(`VisionZip: features have ${features.length} values, expected ${N} x ${D}`, 'E_INTERNAL');
  if (nDominant < 0 || nContext < 0 || !Number.isInteger(nDominant) || !Number.isInteger(nContext)) {
    throw new LightVLMError(`VisionZip: token counts must be non-negative integers (got ${nDominant} dominant, ${nContext} contextual)`, 'E_INTERNAL');
  }
  const dominant = topKAscending(clsAttn, Math.min(N, nDominant));
  const isDom = new Uint8Array(N);
  for (const i of dominant) isDom[i] = 1;
  const rest: number[] = [];
  for (let i = 0; i < N; i++) if (!isDom[i]) rest.push(i);
  const R = rest.length;
  if (nContext === 0 || R === 0) return { dominant, contextual: new Float32Array(0), contextualTargets: new Int32Array(0) };

  // L2-normalised metric rows of the remaining tokens
  const unit = new Float64Array(R * D);
  for (let r = 0; r < R; r++) {
    const o = rest[r] * D;
    let nn = 0;
    for (let d = 0; d < D; d++) nn += features[o + d] * features[o + d];
    const inv = nn > 0 ? 1 / Math.sqrt(nn) : 0;
    for (let d = 0; d < D; d++) unit[r * D + d] = features[o + d] * inv;
  }
  const step = Math.max(1, Math.floor(R / nContext));
  const targets: number[] = []; // positions within `rest`
  for (let r = 0; r < R && targets.length < nContext; r += step) targets.push(r);
  const isTarget = new Uint8Array(R);
  for (const t of targets) isTarget[t] = 1;
  const C = targets.length;
  const sum = new Float64Array(C * D);
  const count = new Float64Array(C);
  for (let r = 0; r < R; r++) {
    if (isTarget[r]) continue;
    let best = 0, bestSim = -Infinity;
    for (let c = 0; c < C; c++) {
      let sim = 0;
      const a = r * D, b = targets[c] * D;
      for (let d = 0; d < D; d++) sim += unit[a + d] * unit[b + d];
      if (sim > bestSim) { bestSim = sim; best = c; }
    }
    count[best]++;
    const o = rest[r] * D;
    for (let d = 0; d < D; d++) sum[best * D + d] += features[o + d];
  }
  const contextual = new Float32Array(C * D);
  const contextualTargets = new Int32Array(C);
  for (let c = 0; c < C; c++) {
    const t = rest[targets[c]];
    contextualTargets[c] = t;
    const n = Math.max(1, count[c]); // counts.clamp(min=1)
    for (let d = 0; d < D; d++) contextual[c * D + d] = features[t * D + d] + sum[c * D + d] / n;
  }
  return { dominant, contextual, contextualTargets };
}

/** Orthonormal DCT-II basis row k evaluated at sample n for length N. */
function dctBasis(k: number, n: number, N: number): number {
  const a = k === 0 ? Math.sqrt(1 / N) : Math.sqrt(2 / N);
  return a * Math.cos((Math.PI * (2 * n + 1) * k) / (2 * N));
}

/**
 * Resampling matrix [m, n] (float64): forward orthonormal DCT-II on length n, keep coefficients
 * 0..m-1, inverse orthonormal DCT (DCT-III) on length m, times sqrt(m/n).
 * The factor makes a constant signal stay constant: DCT_n(c)[0] = c·sqrt(n), and the length-m
 * inverse of that single coefficient is c·sqrt(n)/sqrt(m). For m = n the matrix is the identity.
 */
function lowPassMatrix(m: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  const s = Math.sqrt(m / n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let v = 0;
      for (let k = 0; k < m; k++) v += dctBasis(k, i, m) * dctBasis(k, j, n);
      out[i * n + j] = s * v;
    }
  }
  return out;
}

/**
 * Reduced grid for a keep fraction: K = max(1, roundHalfEven(N·keep)), a = sqrt(K/N),
 * h' = clamp(roundHalfEven(gh·a), 1, gh), w' = clamp(roundHalfEven(K/h'), 1, gw).
 * Aspect-preserving (both sides scaled by ≈ sqrt(keep)); h'·w' ≈ K. keep = 1 → (gh, gw).
 * 24x24 at 0.35 → 14x14 (196 for K=202); at 0.03 → 4x4 (16 for K=17).
 */
export function fourierGrid(gh: number, gw: number, keep: number): { gh: number; gw: number } {
  const N = gh * gw;
  const K = preLMTarget(N, keep);
  const h = Math.min(gh, Math.max(1, roundHalfEven(gh * Math.sqrt(K / N))));
  const w = Math.min(gw, Math.max(1, roundHalfEven(K / h)));
  return { gh: h, gw: w };
}

/**
 * Fourier low-pass: per channel, orthonormal 2-D DCT-II over the gh x gw grid, keep the lowest
 * h' x w' frequencies (fourierGrid), inverse 2-D DCT on the h' x w' grid, scaled by
 * sqrt(h'w'/(gh·gw)) so a constant image stays constant. Separable:
 * out[y', x', :] = Σ_y Mh[y', y] Σ_x Mw[x', x] features[y, x, :]. Returns features [h'·w', D]
 * row-major on the new grid, and the new grid size.
 */
export function fourierLowPass(features: Float32Array, gh: number, gw: number, D: number, keep: number): { features: Float32Array; gh: number; gw: number } {
  if (features.length !== gh * gw * D) throw new LightVLMError(`Fourier reduction: features have ${features.length} values, expected ${gh} x ${gw} x ${D}`, 'E_INTERNAL');
  const g = fourierGrid(gh, gw, keep);
  const Mh = lowPassMatrix(g.gh, gh);
  const Mw = lowPassMatrix(g.gw, gw);
  // pass 1 along x: tmp[y, x', d]
  const tmp = new Float64Array(gh * g.gw * D);
  for (let y = 0; y < gh; y++) {
    for (let xo = 0; xo < g.gw; xo++) {
      const t = (y * g.gw + xo) * D;
      for (let x = 0; x < gw; x++) {
        const c = Mw[xo * gw + x];
        if (c === 0) continue;
        const f = (y * gw + x) * D;
        for (let d = 0; d < D; d++) tmp[t + d] += c * features[f + d];
      }
    }
  }
  // pass 2 along y: out[y', x', d]
  const acc = new Float64Array(g.gh * g.gw * D);
  for (let yo = 0; yo < g.gh; yo++) {
    for (let y = 0; y < gh; y++) {
      const c = Mh[yo * gh + y];
      if (c === 0) continue;
      for (let xo = 0; xo < g.gw; xo++) {
        const o = (yo * g.gw + xo) * D, t = (y * g.gw + xo) * D;
        for (let d = 0; d < D; d++) acc[o + d] += c * tmp[t + d];
      }
    }
  }
  return { features: Float32Array.from(acc), gh: g.gh, gw: g.gw };
}
