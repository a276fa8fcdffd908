// The KV-cache controller interface the engine drives, and what the policy files share. A
// controller decides WHEN to compact a sequence's caches (after prefill, every decode step); its
// policy's pure function decides WHICH rows stay; LayerCache.gather applies them.
import { LightVLMError } from '../errors.js';
import { topKAscending } from '../util/topk.js';
import type { LayerCache } from './cache.js';

/** The settings of a decode-time KV policy (DecodeAcceleration in registry.ts adds its name). */
export interface KvOptions {
  budget?: number;                    // entries per layer (generated entries for lightvlm's component B)
  window?: number;                    // recent window W
  sinks?: number;                     // attention sinks n_sink
  every?: number;                     // eviction period Δ
  pruneStaleImage?: boolean;          // component A; default on whenever prefill merging is on
}

/** The prompt rows that survived prefill (PromptState satisfies it). */
export interface PromptRows {
  orig: Int32Array;    // [T_final] original prompt index of each surviving row
  isImage: Uint8Array; // [T_orig] 1 where the ORIGINAL token is an image token
}

/** One sequence's KV policy: per-sequence counters live in its closure. */
export interface KvController {
  /** Query row from which prefill sums per-layer scores, or undefined when no scores are needed. */
  prefillScoreFrom?: (S: number) => number;
  decodeScores: boolean;
  afterPrefill(caches: LayerCache[], scores: Map<number, Float32Array>, prompt: PromptRows): void;
  afterStep(caches: LayerCache[], scores: Map<number, Float32Array>): void;
}

/** Settings every controller gets, already validated, and the controller it extends. */
export interface KvSettings {
  every: number;       // eviction period Δ
  sinks: number;       // attention sinks
  base: KvController;  // no compression, plus component A when it is on
}

export type KvControllerFactory = (d: KvOptions, s: KvSettings) => KvController;

/** A setting that must be a non-negative integer. */
export const nonNegative = (name: string, v: number): number => {
  if (!Number.isInteger(v) || v < 0) throw new LightVLMError(`KV ${name} must be a non-negative integer (got ${v}).`, 'E_OPTION');
  return v;
};

/** Amortised compaction: let a layer grow past its limit, then gather back down. */
export function evictEach(caches: LayerCache[], over: (c: LayerCache, l: number) => boolean, rows: (c: LayerCache, l: number) => Int32Array): void {
  caches.forEach((c, l) => {
    if (over(c, l)) c.gather(rows(c, l));
  });
}

// ---- row helpers of the pure policies: every policy returns ASCENDING rows of one layer's cache;
// ties between equal scores go to the lower row index, so selections are deterministic ----

export function range(a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = a; i < b; i++) out.push(i);
  return out;
}

export function allRows(length: number): Int32Array {
  return Int32Array.from(range(0, length));
}

export function checkCount(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new LightVLMError(`KV policy: ${name} must be a non-negative integer (got ${v})`, 'E_OPTION');
}

/** Union of explicit rows and the top `k` of `candidates` by score, ascending. */
export function withTop(fixed: number[], candidates: number[], score: ArrayLike<number>, k: number): Int32Array {
  const local = topKAscending(Float64Array.from(candidates, (r) => score[r]), k);
  const rows = fixed.concat(Array.from(local, (j) => candidates[j]));
  return Int32Array.from(rows).sort();
}
