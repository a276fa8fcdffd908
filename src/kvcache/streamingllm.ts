// StreamingLLM (lightvlm-spec.md §6): attention sinks + a recent window.
import { allRows, checkCount, evictEach, nonNegative, range, type KvControllerFactory } from './controller.js';

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

/** scope 'all': sinks + recent window over the whole cache, prompt included (faithful to SL). */
export const streamingllmKv: KvControllerFactory = (d, { every, sinks, base }) => {
  const budget = nonNegative('budget', d.budget ?? 1024);
  const window = d.window ?? budget - sinks;
  return { ...base, afterStep: (caches) => evictEach(caches, (c) => c.length > sinks + window + every, (c) => streamingKeep({ length: c.length, sinks, window })) };
};
