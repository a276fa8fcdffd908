// Robust summaries for benchmark samples. Medians rather than means because a single page-fault or
// GC pause on a shared CPU would move a mean a lot; min-max shows the spread honestly.
// Speedups are the median of pairwise ratios: run i of the baseline against run i of the method,
// measured back to back (interleaved), so slow drift of the machine (thermal, other load) cancels.

export interface Summary {
  median: number;
  min: number;
  max: number;
  p10: number;
  n: number;
}

const finite = (xs: readonly number[]): number[] => xs.filter((x) => Number.isFinite(x));

/** Linear-interpolated percentile (numpy's default), p in [0, 100]. NaN for no samples. */
export function percentile(xs: readonly number[], p: number): number {
  const s = finite(xs).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const pos = (Math.min(100, Math.max(0, p)) / 100) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export const median = (xs: readonly number[]): number => percentile(xs, 50);
export const min = (xs: readonly number[]): number => (finite(xs).length ? Math.min(...finite(xs)) : NaN);
export const max = (xs: readonly number[]): number => (finite(xs).length ? Math.max(...finite(xs)) : NaN);

export function summarize(xs: readonly number[]): Summary {
  return { median: median(xs), min: min(xs), max: max(xs), p10: percentile(xs, 10), n: finite(xs).length };
}

/** base[i] / other[i] for each pair where both are finite and other[i] > 0. */
export function pairwiseRatios(base: readonly number[], other: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.min(base.length, other.length); i++) {
    const b = base[i]!;
    const o = other[i]!;
    if (Number.isFinite(b) && Number.isFinite(o) && o > 0) out.push(b / o);
  }
  return out;
}

/** Speedup of `other` over `base` from times (ms): > 1 means `other` is faster. NaN without pairs. */
export const pairwiseRatioMedian = (base: readonly number[], other: readonly number[]): number => median(pairwiseRatios(base, other));

/** "12.3 (11.9–13.0)": the median with min–max, for tables. */
export function formatSummary(s: Summary, digits = 1): string {
  if (!Number.isFinite(s.median)) return '-';
  const f = (x: number): string => x.toFixed(digits);
  return s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}
