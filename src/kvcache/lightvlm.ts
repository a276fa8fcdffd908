// LightVLM's KV policy (lightvlm-spec.md §4): component A drops, after prefill, the image rows that
// later merge stages removed; component B keeps the generated entries within a budget by
// accumulated attention, protecting the prompt.
import { LightVLMError } from '../errors.js';
import type { LayerCache } from './cache.js';
import { allRows, checkCount, evictEach, nonNegative, range, withTop, type KvControllerFactory, type PromptRows } from './controller.js';

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

/** Component A on every layer: keep text rows and the image rows that survived the last stage. */
export function pruneStale(caches: LayerCache[], prompt: PromptRows): void {
  const finalSet = new Set<number>();
  for (const o of prompt.orig) if (prompt.isImage[o]) finalSet.add(o);
  for (const c of caches) {
    const rows = staleImageRows(c.orig.subarray(0, c.length), (o) => prompt.isImage[o] === 1, finalSet);
    if (rows.length !== c.length) c.gather(rows);
  }
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

/** Component B (§4.2): budget over GENERATED entries; prompt entries are protected. */
export const lightvlmKv: KvControllerFactory = (d, { every, sinks, base }) => {
  const budget = nonNegative('budget', d.budget ?? 1024);
  const window = nonNegative('window', d.window ?? Math.min(256, Math.max(0, budget - sinks)));
  let promptRows: number[] = [];
  return {
    decodeScores: true,
    afterPrefill: (caches, s, prompt) => {
      base.afterPrefill(caches, s, prompt);
      promptRows = caches.map((c) => c.length);
    },
    afterStep: (caches, scores) => {
      caches.forEach((c, l) => c.accumulate(scores.get(l)!));
      evictEach(
        caches,
        (c, l) => c.length - promptRows[l]! > budget + every,
        (c, l) => budgetEvict({ length: c.length, protectedRows: promptRows[l]!, acc: c.acc, sinks, window, budget }),
      );
    },
  };
};
