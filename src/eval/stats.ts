// Uncertainty of accuracy numbers: Wilson score intervals for one proportion, the exact McNemar test
// for two methods scored on the same questions, a paired bootstrap interval for retention, and the
// deterministic half-split used to decide on one half of a dataset and confirm on the other.
//
// Why these: accuracies here are binomial proportions on a few hundred to a few thousand
// questions, often near 0.5; Wilson keeps its coverage there and at 0/n or n/n, where the Wald
// interval collapses. Two methods answer the SAME questions, so their difference is judged on the
// discordant questions only (one right, the other wrong): under "no difference" each discordant
// question is a fair coin, which is McNemar's exact (binomial) test. Treating the two accuracies
// as independent would waste the pairing and overstate the noise.
import binomialCdf from '@stdlib/stats-base-dists-binomial-cdf';
import { mulberry32 } from '../util/topk.js';

/** Φ⁻¹(0.975): the two-sided 95% normal quantile. */
export const Z95 = 1.959963984540054;

export interface Interval { lo: number; hi: number }

/**
 * Wilson score interval for k successes in n trials:
 *   centre = (k + z²/2) / (n + z²),  half = z/(n + z²) · sqrt(k(n−k)/n + z²/4).
 * n = 0 says nothing: [0, 1].
 */
export function wilson(k: number, n: number, z = Z95): Interval {
  if (!(n > 0)) return { lo: 0, hi: 1 };
  if (k < 0 || k > n) throw new RangeError(`wilson: k = ${k} must lie in [0, n = ${n}]`);
  const z2 = z * z;
  const centre = (k + z2 / 2) / (n + z2);
  const half = (z / (n + z2)) * Math.sqrt((k * (n - k)) / n + z2 / 4);
  // Clamp rounding noise only; mathematically the bounds lie in [0, 1] and hit them at k = 0 / n.
  return { lo: k === 0 ? 0 : Math.max(0, centre - half), hi: k === n ? 1 : Math.min(1, centre + half) };
}

/**
 * Exact two-sided McNemar p-value from the discordant counts: b questions only A gets right, c only
 * B gets right. Under H0 b ~ Binomial(b + c, ½), p = min(1, 2·P(X ≤ min(b, c))). b = c = 0: p = 1.
 */
export function mcnemarExact(b: number, c: number): number {
  const n = b + c;
  if (n === 0) return 1;
  return Math.min(1, 2 * binomialCdf(Math.min(b, c), n, 0.5));
}

export interface PairedComparison {
  n: number;          // questions both answered
  wins: number;       // this method right, the reference wrong
  losses: number;     // this method wrong, the reference right
  p: number;          // exact two-sided McNemar
}

/** Paired comparison on the questions both answered (ids), from id → correct maps. */
export function pairedCompare(mine: ReadonlyMap<string, boolean>, ref: ReadonlyMap<string, boolean>): PairedComparison {
  let n = 0, wins = 0, losses = 0;
  for (const [id, ok] of mine) {
    const r = ref.get(id);
    if (r === undefined) continue;
    n++;
    if (ok && !r) wins++;
    else if (!ok && r) losses++;
  }
  return { n, wins, losses, p: mcnemarExact(wins, losses) };
}

/**
 * 95% percentile-bootstrap interval for retention = (Σ mine) / (Σ ref) over paired questions.
 * Questions are resampled with replacement and the SAME draw is used for both methods, so the
 * interval reflects the pairing (a ratio of two correlated proportions has no simple closed form).
 * Deterministic: mulberry32(seed), `rounds` resamples. Resamples where the reference gets nothing
 * right have no ratio and are skipped. Null when there are no pairs or the reference never scores.
 */
export function bootstrapRetention(mine: readonly boolean[], ref: readonly boolean[], rounds = 2000, seed = 0x5eed): Interval | null {
  const n = Math.min(mine.length, ref.length);
  if (n === 0 || !ref.some(Boolean)) return null;
  const rng = mulberry32(seed);
  const ratios: number[] = [];
  for (let b = 0; b < rounds; b++) {
    let sm = 0, sr = 0;
    for (let i = 0; i < n; i++) {
      const j = Math.floor(rng() * n);
      if (mine[j]) sm++;
      if (ref[j]) sr++;
    }
    if (sr > 0) ratios.push(sm / sr);
  }
  ratios.sort((a, b) => a - b);
  const q = (p: number): number => ratios[Math.min(ratios.length - 1, Math.max(0, Math.round(p * (ratios.length - 1))))]!;
  return { lo: q(0.025), hi: q(0.975) };
}

/** FNV-1a, 32 bit: a stable hash that does not depend on Node's version or the file order. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(s, 'utf8')) {
    h ^= ch;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export type Half = 'A' | 'B';
export const HALVES: readonly Half[] = ['A', 'B'];

/**
 * The decide-on-one-half, confirm-on-the-other protocol: order the questions by fnv1a("split:" + id)
 * (ties by id) and put the first ⌈n/2⌉ in half A, the rest in B. Depends only on the ids, so
 * the halves are the same whatever the file order, and the two halves never overlap.
 */
export function halfSplit<T extends { id: string }>(questions: readonly T[], half: Half): T[] {
  const order = questions.map((q, i) => ({ i, h: fnv1a(`split:${q.id}`), id: q.id }));
  order.sort((a, b) => a.h - b.h || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const cut = Math.ceil(order.length / 2);
  const chosen = new Set((half === 'A' ? order.slice(0, cut) : order.slice(cut)).map((o) => o.i));
  return questions.filter((_, i) => chosen.has(i)); // file order kept, so images still group
}
