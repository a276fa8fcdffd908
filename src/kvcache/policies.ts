// KV-cache selection policies (lightvlm-spec.md §4, §6) as pure functions. Each returns the
// ASCENDING row indices of one layer's cache to keep; the engine gathers K/V (and any per-row
// bookkeeping such as accumulated attention or original indices) at those rows. Ties between
// equal scores always go to the lower row index, so selections are deterministic.

import { LightVLMError } from '../errors.js';
import { topKAscending } from '../util/topk.js';

function range(a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = a; i < b; i++) out.push(i);
  return out;
}

function allRows(length: number): Int32Array {
  return Int32Array.from(range(0, length));
}

function checkCount(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new LightVLMError(`KV policy: ${name} must be a non-negative integer (got ${v})`, 'E_OPTION');
}

/** Union of explicit rows and the top `k` of `candidates` by score, ascending. */
function withTop(fixed: number[], candidates: number[], score: ArrayLike<number>, k: number): Int32Array {
  const local = topKAscending(Float64Array.from(candidates, (r) => score[r]), k);
  const rows = fixed.concat(Array.from(local, (j) => candidates[j]));
  return Int32Array.from(rows).sort();
}

/**
 * Component A (§4.1): after prefill, a layer keeps its text rows (and any non-image row, e.g.
 * generated tokens) and the image rows whose ORIGINAL index is in the final kept set.
 * origIndexOfRow: [rows] original prompt index of each cached row of this layer.
 */
export function staleImageRows(origIndexOfRow: Int32Array, isImageOrig: (o: number) => boolean, finalKeptOrig: Set<number>): Int32Array {
  const out: number[] = [];
  for (let r = 0; r < origIndexOfRow.length; r++) {
    const o = origIndexOfRow[r];
    if (!isImageOrig(o) || finalKeptOrig.has(o)) out.push(r);
  }
  return Int32Array.from(out);
}

export interface BudgetEvictArgs {
  length: number;        // cached rows in this layer
  protectedRows: number; // rows [0, protectedRows) are prompt entries: never evicted
  acc: Float32Array;     // [length] accumulated head-mean attention per row (only generated rows are read)
  sinks: number;         // first generated rows always kept
  window: number;        // most recent rows always kept
  budget: number;        // B_gen: generated rows kept after a compaction
}

/**
 * Component B (§4.2): when the generated rows (length − protectedRows) exceed `budget`, keep every
 * protected row, the first `sinks` generated rows, the last `window` rows, and the
 * (budget − sinks − window) other generated rows with the largest `acc`. Otherwise keep all.
 * The caller decides WHEN to call (every Δ steps, once generated > budget + Δ).
 */
export function budgetEvict(a: BudgetEvictArgs): Int32Array {
  for (const k of ['length', 'protectedRows', 'sinks', 'window', 'budget'] as const) checkCount(k, a[k]);
  if (a.sinks + a.window > a.budget) {
    throw new LightVLMError(`KV budget ${a.budget} is smaller than sinks (${a.sinks}) + window (${a.window}); use a budget >= ${a.sinks + a.window}`, 'E_OPTION');
  }
  if (a.protectedRows > a.length) throw new LightVLMError(`KV policy: protectedRows ${a.protectedRows} exceeds the cache length ${a.length}`, 'E_INTERNAL');
  const gen = a.length - a.protectedRows;
  if (gen <= a.budget) return allRows(a.length);
  if (a.acc.length < a.length) throw new LightVLMError(`KV policy: acc has ${a.acc.length} entries for ${a.length} rows`, 'E_INTERNAL');
  const sinkEnd = a.protectedRows + a.sinks;
  const winStart = a.length - a.window;
  const fixed = range(0, sinkEnd).concat(range(winStart, a.length));
  return withTop(fixed, range(sinkEnd, winStart), a.acc, a.budget - a.sinks - a.window);
}

/**
 * StreamingLLM (§6): once length > sinks + window, keep rows [0, sinks) and the last `window`.
 * Scope ('all' vs 'generated') is the caller's: for 'generated', pass the generated slice's length
 * and offset the result by the prompt length.
 */
export function streamingKeep(a: { length: number; sinks: number; window: number }): Int32Array {
  checkCount('length', a.length); checkCount('sinks', a.sinks); checkCount('window', a.window);
  if (a.length <= a.sinks + a.window) return allRows(a.length);
  return Int32Array.from(range(0, a.sinks).concat(range(a.length - a.window, a.length)));
}

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
