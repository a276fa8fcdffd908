// Turns the user's `acceleration` options into a plan: the prefill merge stages with their policy,
// and the KV-cache controller used after prefill and at every decode step.
import { LightVLMError } from '../errors.js';
import type { LayerCache } from '../kvcache/cache.js';
import type { TextConfig } from '../models/config.js';
import type { LmPrompt } from './generate.js';
import type { PromptState, Decision, Span } from './sequence.js';
import type { DecodeAcceleration, PrefillAcceleration } from './types.js';

export interface StageInput {
  keep: number;
  spans: Span[];
  scores: Float32Array;
  hidden: Float32Array;
  dim: number;
  rng: () => number;
}

export interface PrefillPlan {
  method: string;
  stages: { layer: number; keep: number }[];
  policy: ((input: StageInput) => Decision) | null;
  preLm?: (prompt: LmPrompt) => LmPrompt;
  seed: number;
}

export interface KvController {
  /** Query row from which prefill sums per-layer scores, or undefined when no scores are needed. */
  prefillScoreFrom?: (S: number) => number;
  decodeScores: boolean;
  afterPrefill(caches: LayerCache[], scores: Map<number, Float32Array>, state: PromptState): void;
  afterStep(caches: LayerCache[], scores: Map<number, Float32Array>): void;
}

export function resolvePrefill(p: PrefillAcceleration | undefined, L: number, _cfg: TextConfig): PrefillPlan {
  const method = p?.method ?? 'none';
  if (method === 'none' || (p?.keep === 1 && !p.stages)) return { method, stages: [], policy: null, seed: p?.seed ?? 0 };
  throw new LightVLMError(`unknown prefill method "${method}".`);
}

export function resolveKv(d: DecodeAcceleration | undefined, _plan: PrefillPlan): KvController {
  const method = d?.method ?? 'none';
  if (method === 'none') return { decodeScores: false, afterPrefill: () => {}, afterStep: () => {} };
  throw new LightVLMError(`unknown KV method "${method}".`);
}
