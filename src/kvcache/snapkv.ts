// SnapKV (lightvlm-spec.md §6): once after prefill, keep the prefix rows the observation window
// votes for (pooled) plus the window itself.
import { LightVLMError } from '../errors.js';
import { topKAscending } from '../util/topk.js';
import { allRows, checkCount, nonNegative, range, type KvControllerFactory } from './controller.js';

/**
 * 1-D average pooling with same-size output: PyTorch `avg_pool1d(x, k, stride=1, padding=k//2)`
 * with count_include_pad=True, i.e. out[i] = Σ_{j=i-k//2}^{i+k//2} x[j] (zeros outside) / k.
 * Odd k only (an even k changes the output length).
 */
export function avgPool1dSame(x: ArrayLike<number>, kernel: number): Float64Array {
  if (!Number.isInteger(kernel) || kernel < 1 || kernel % 2 === 0) {
    throw new LightVLMError(`pooling kernel ${kernel} must be an odd positive integer`, 'E_OPTION');
  }
  const n = x.length, h = kernel >> 1;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = Math.max(0, i - h); j <= Math.min(n - 1, i + h); j++) s += x[j];
    out[i] = s / kernel;
  }
  return out;
}

/**
 * SnapKV (§6), once at the end of prefill: if length >= capacity, the prefix rows
 * [0, length − window) are scored by avgPool1dSame(scores[0 : length − window], kernel) (pooling
 * sees only the prefix, as SnapKV pools attn[..., :-window]) and the top (capacity − window) are
 * kept together with the whole observation window. Below capacity, everything is kept.
 * scores: summed attention of the window queries to each row ([>= length − window] entries read).
 */
export function snapkvKeep(a: { length: number; scores: Float32Array; window: number; capacity: number; kernel?: number }): Int32Array {
  checkCount('length', a.length); checkCount('window', a.window); checkCount('capacity', a.capacity);
  if (a.window > a.capacity) throw new LightVLMError(`SnapKV window ${a.window} exceeds capacity ${a.capacity}`, 'E_OPTION');
  if (a.length < a.capacity) return allRows(a.length);
  const prefix = a.length - a.window;
  if (a.scores.length < prefix) throw new LightVLMError(`SnapKV: scores have ${a.scores.length} entries, need at least ${prefix}`, 'E_INTERNAL');
  const pooled = avgPool1dSame(a.scores.subarray(0, prefix), a.kernel ?? 5);
  const top = topKAscending(pooled, a.capacity - a.window);
  return Int32Array.from([...top, ...range(prefix, a.length)]);
}

export const snapkvKv: KvControllerFactory = (d, { base }) => {
  const capacity = nonNegative('budget', d.budget ?? 2048);
  const window = d.window ?? 32;
  return {
    ...base,
    prefillScoreFrom: (S) => Math.max(0, S - window),
    afterPrefill: (caches, scores, prompt) => {
      base.afterPrefill(caches, scores, prompt);
      caches.forEach((c, l) => {
        const s = scores.get(l)!;
        if (c.length === s.length && c.length >= capacity) c.gather(snapkvKeep({ length: c.length, scores: s, window, capacity }));
      });
    },
  };
};
