// H2O (lightvlm-spec.md §6): heavy hitters by accumulated attention + a recent window.
import { LightVLMError } from '../errors.js';
import { allRows, checkCount, evictEach, nonNegative, range, withTop, type KvControllerFactory } from './controller.js';

/**
 * H2O (§6): once length > heavy + recent, keep the last `recent` rows plus the `heavy` rows with
 * the largest accumulated attention among the older ones.
 */
export function h2oKeep(a: { length: number; acc: Float32Array; heavy: number; recent: number }): Int32Array {
  checkCount('length', a.length); checkCount('heavy', a.heavy); checkCount('recent', a.recent);
  if (a.length <= a.heavy + a.recent) return allRows(a.length);
  if (a.acc.length < a.length) throw new LightVLMError(`KV policy: acc has ${a.acc.length} entries for ${a.length} rows`, 'E_INTERNAL');
  const start = a.length - a.recent;
  return withTop(range(start, a.length), range(0, start), a.acc, a.heavy);
}

export const h2oKv: KvControllerFactory = (d, { every, base }) => {
  const budget = nonNegative('budget', d.budget ?? 1024);
  const recent = d.window ?? Math.floor(budget / 2);
  const heavy = budget - recent;
  return {
    ...base,
    prefillScoreFrom: () => 0, // column sums over every prompt query
    decodeScores: true,
    afterPrefill: (caches, scores, prompt) => {
      caches.forEach((c, l) => c.accumulate(scores.get(l)!));
      base.afterPrefill(caches, scores, prompt);
    },
    afterStep: (caches, scores) => {
      caches.forEach((c, l) => c.accumulate(scores.get(l)!));
      evictEach(caches, (c) => c.length > budget + every, (c) => h2oKeep({ length: c.length, acc: c.acc, heavy, recent }));
    },
  };
};
