// Small numeric helpers shared by the merge and KV policies: Python-compatible rounding,
// deterministic ranking, softmax, and a seeded PRNG. Everything here is pure.

/**
 * Round to the nearest integer, ties to even: Python 3's `round(x)` (lightvlm-spec.md §3.3, U11).
 * `x - Math.floor(x)` is exact for doubles, so halves are detected exactly
 * (0.5 → 0, 1.5 → 2, 2.5 → 2, -0.5 → 0, -1.5 → -2).
 */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const fl = Math.floor(x);
  const diff = x - fl;
  if (diff > 0.5) return fl + 1;
  if (diff < 0.5) return fl === 0 ? 0 : fl; // avoid -0
  return fl % 2 === 0 ? fl : fl + 1;
}

/**
 * Indices 0..n-1 sorted by descending score, ties broken by ascending index (spec §3.2), so
 * rankings are deterministic. NaN scores rank after every number (ties among NaN by index).
 */
export function argsortDesc(scores: ArrayLike<number>): Int32Array {
  const n = scores.length;
  const idx = new Array<number>(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  idx.sort((a, b) => {
    const sa = scores[a], sb = scores[b];
    const na = Number.isNaN(sa), nb = Number.isNaN(sb);
    if (na || nb) return na === nb ? a - b : na ? 1 : -1;
    if (sa !== sb) return sb > sa ? 1 : -1;
    return a - b;
  });
  return Int32Array.from(idx);
}

/**
 * The `k` best indices by descending score (ties: lower index first), returned in ASCENDING index
 * order, i.e. ready to gather rows. `k` is clamped to [0, n].
 */
export function topKAscending(scores: ArrayLike<number>, k: number): Int32Array {
  const order = argsortDesc(scores);
  const kk = Math.max(0, Math.min(order.length, Math.floor(k)));
  return order.slice(0, kk).sort();
}

/** log(Σ exp(x_i)) in float64, stable. -Infinity for an empty input. */
export function logSumExp(x: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > m) m = x[i];
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - m);
  return m + Math.log(s);
}

/** Numerically stable softmax in float64: exp(x_i - max) / Σ exp(x_j - max). */
export function softmax(x: ArrayLike<number>): Float64Array {
  const out = new Float64Array(x.length);
  if (x.length === 0) return out;
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > m) m = x[i];
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    out[i] = Math.exp(x[i] - m);
    s += out[i];
  }
  for (let i = 0; i < x.length; i++) out[i] /= s;
  return out;
}

/** Row-wise softmax of a row-major [rows, cols] matrix, in place (float64 accumulation). */
export function softmaxRowsInPlace(x: Float32Array | Float64Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let m = -Infinity;
    for (let c = 0; c < cols; c++) if (x[o + c] > m) m = x[o + c];
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[o + c] - m);
    for (let c = 0; c < cols; c++) x[o + c] = Math.exp(x[o + c] - m) / s;
  }
}

/**
 * mulberry32: a tiny seeded PRNG returning floats in [0, 1). Same seed → same sequence on every
 * platform (32-bit integer arithmetic only). Used by the `random` baseline (spec §6: record the seed).
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A uniformly random k-subset of 0..n-1 (partial Fisher–Yates driven by `rng`), ascending.
 * Consumes exactly min(k, n) draws from `rng`.
 */
export function sampleWithoutReplacement(n: number, k: number, rng: () => number): Int32Array {
  const kk = Math.max(0, Math.min(n, Math.floor(k)));
  const arr = new Int32Array(n);
  for (let i = 0; i < n; i++) arr[i] = i;
  for (let i = 0; i < kk; i++) {
    const j = i + Math.min(n - i - 1, Math.floor(rng() * (n - i)));
    const t = arr[i]; arr[i] = arr[j]; arr[j] = t;
  }
  return arr.slice(0, kk).sort();
}
