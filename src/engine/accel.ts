// Turns the user's `acceleration` options into a plan: the prefill merge stages with their policy
// (or a pre-LM reducer), and the KV-cache controller used after prefill and at each decode step.
// Policies only return indices; sequence.ts / cache.ts apply them.
import { LightVLMError } from '../errors.js';
import type { LayerCache } from '../kvcache/cache.js';
import { budgetEvict, h2oKeep, snapkvKeep, staleImageRows, streamingKeep } from '../kvcache/policies.js';
import type { TextConfig } from '../models/config.js';
import { lightvlmPolicy, randomPolicy, topScoreDropPolicy, type StagePolicy } from '../merge/policies.js';
import { chooseDefaultSchedule, defaultLightVLMSchedule, fastvSchedule, pyramidDropSchedule, validateStages, type MergeStage } from '../merge/schedule.js';
import { preLmReducer } from './prelmApply.js';
import { SCORE_RULES, type ScoreRule, stageScores } from '../merge/importance.js';
import type { LmPrompt, Span } from '../processing/lmPrompt.js';
import type { Decision, PromptState } from './sequence.js';
import type { DecodeAcceleration, PrefillAcceleration } from './types.js';

export const PREFILL_METHODS = ['none', 'lightvlm', 'random', 'fastv', 'pdrop', 'fastervlm', 'visionzip', 'fourier'] as const;
/**
 * The lightvlm score rule used when none is given (docs/schedule.md): novelty at the first stage,
 * which holds up at the spec's early first stage, so the default schedule is the spec's §3.8 pyramid.
 */
export const DEFAULT_SCORE: ScoreRule = 'novelty';

/**
 * Default stages for a score rule: novelty and the spec's attention use the spec pyramid
 * (defaultLightVLMSchedule); the row-debiased rules rank by attention at the first stage, which is
 * positional at layer 0, so they keep the shifted pyramid (chooseDefaultSchedule: first stage ≥ 2).
 */
export const defaultStagesFor = (score: ScoreRule, L: number, keep: number): MergeStage[] =>
  score === 'debiased' || score === 'debiased-all' ? chooseDefaultSchedule(L, keep) : defaultLightVLMSchedule(L, keep);
export const KV_METHODS = ['none', 'stale', 'lightvlm', 'streamingllm', 'h2o', 'snapkv'] as const;

export interface StageInput {
  keep: number;
  spans: Span[];
  scores: Float32Array;
  hidden: Float32Array;
  dim: number;
  rng: () => number;
  /** LM-token grid of each image part in token order, and the current rows' original span offsets. */
  grids: { h: number; w: number }[];
  origInSpan: Int32Array; // [T_cur] index of each row inside its ORIGINAL image span, −1 for text
}

export interface PrefillPlan {
  method: string;
  stages: MergeStage[];
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

const bind = (p: StagePolicy, mode: 'recycle' | 'single_tail' | 'drop', debias: (i: StageInput) => 'none' | 'row' = () => 'none') =>
  (i: StageInput): Decision => p({ ...i, mode, debias: debias(i) });

export function resolvePrefill(p: PrefillAcceleration | undefined, L: number, _cfg: TextConfig): PrefillPlan {
  const method = p?.method ?? 'none';
  const seed = p?.seed ?? 0;
  // A method named without a keep (and without stages) reduces to the spec's headline 35%.
  const keep = p?.keep ?? (method === 'none' || p?.stages ? 1 : 0.35);
  if (!(keep > 0 && keep <= 1)) throw new LightVLMError(`keep ${keep} must lie in (0, 1], e.g. --method lightvlm:0.35.`, 'E_OPTION');
  const none: PrefillPlan = { method, stages: [], policy: null, seed };
  if (method === 'none') return none;
  const explicit = p?.stages;
  if (explicit) validateStages(explicit, L);
  const stagesOr = (dflt: () => MergeStage[]) => (explicit ? explicit.map((s) => ({ ...s })) : keep === 1 ? [] : dflt());
  const mode = p?.mergeMode ?? 'recycle';
  if (!['recycle', 'single_tail', 'drop'].includes(mode)) throw new LightVLMError(`unknown merge mode "${mode}"; use recycle, single_tail or drop.`, 'E_OPTION');
  switch (method) {
    case 'lightvlm': {
      // score rule (docs/schedule.md, merge/importance.ts): which ranking the stages use
      const score = p?.score ?? DEFAULT_SCORE;
      if (!SCORE_RULES.includes(score)) throw new LightVLMError(`unknown score "${score}"; use ${SCORE_RULES.join(', ')}.`, 'E_OPTION');
      const policy = (i: StageInput): Decision => lightvlmPolicy({ ...i, ...stageScores(score, i), mode });
      return { method, stages: stagesOr(() => defaultStagesFor(score, L, keep)), policy, seed };
    }
    case 'random':
      // the ablation of the default score: same layers and counts as lightvlm's default
      return { method, stages: stagesOr(() => defaultStagesFor(DEFAULT_SCORE, L, keep)), policy: bind(randomPolicy, 'drop'), seed };
    case 'fastv':
      return { method, stages: stagesOr(() => fastvSchedule(keep, Math.min(2, L - 1))), policy: bind(topScoreDropPolicy, 'drop'), seed };
    case 'pdrop':
      return { method, stages: stagesOr(() => pyramidDropSchedule(L, keep)), policy: bind(topScoreDropPolicy, 'drop'), seed };
    case 'fastervlm':
    case 'visionzip':
    case 'fourier':
      if (p?.positions !== undefined && !['renumber', 'original'].includes(p.positions)) throw new LightVLMError(`unknown positions "${p.positions}"; use renumber or original.`, 'E_OPTION');
      return keep === 1 ? none : { ...none, preLm: preLmReducer(method, keep, p?.positions) };
    default:
      throw new LightVLMError(`unknown prefill method "${method}". Use one of: ${PREFILL_METHODS.join(', ')}.`, 'E_OPTION');
  }
}

const positive = (name: string, v: number) => {
  if (!Number.isInteger(v) || v < 0) throw new LightVLMError(`KV ${name} must be a non-negative integer (got ${v}).`, 'E_OPTION');
  return v;
};

/** Component A (§4.1): early layers drop the image rows later stages merged away. */
function pruneStale(caches: LayerCache[], state: PromptState): void {
  const finalSet = new Set<number>();
  for (const o of state.orig) if (state.isImage[o]) finalSet.add(o);
  for (const c of caches) {
    const rows = staleImageRows(c.orig.subarray(0, c.length), (o) => state.isImage[o] === 1, finalSet);
    if (rows.length !== c.length) c.gather(rows);
  }
}

export function resolveKv(d: DecodeAcceleration | undefined, plan: PrefillPlan): KvController {
  const method = d?.method ?? 'none';
  const every = positive('every', d?.every ?? 32);
  const sinks = positive('sinks', d?.sinks ?? 4);
  const merging = plan.stages.length > 0;
  const stale = d?.pruneStaleImage ?? (merging && (method === 'lightvlm' || method === 'stale'));
  const base: KvController = {
    decodeScores: false,
    afterPrefill: (caches, _s, state) => {
      if (stale) pruneStale(caches, state);
    },
    afterStep: () => {},
  };
  // Amortised compaction: let a layer grow `every` rows past its limit, then gather back down.
  const evictEach = (caches: LayerCache[], over: (c: LayerCache, l: number) => boolean, rows: (c: LayerCache, l: number) => Int32Array) => {
    caches.forEach((c, l) => {
      if (over(c, l)) c.gather(rows(c, l));
    });
  };
  switch (method) {
    case 'none':
    case 'stale':
      return base;
    case 'lightvlm': {
      // Component B (§4.2): budget over GENERATED entries; prompt entries are protected.
      const budget = positive('budget', d?.budget ?? 1024);
      const window = positive('window', d?.window ?? Math.min(256, Math.max(0, budget - sinks)));
      let promptRows: number[] = [];
      return {
        decodeScores: true,
        afterPrefill: (caches, s, state) => {
          base.afterPrefill(caches, s, state);
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
    }
    case 'streamingllm': {
      // scope 'all': sinks + recent window over the whole cache, prompt included (faithful to SL).
      const budget = positive('budget', d?.budget ?? 1024);
      const window = d?.window ?? budget - sinks;
      return { ...base, afterStep: (caches) => evictEach(caches, (c) => c.length > sinks + window + every, (c) => streamingKeep({ length: c.length, sinks, window })) };
    }
    case 'h2o': {
      const budget = positive('budget', d?.budget ?? 1024);
      const recent = d?.window ?? Math.floor(budget / 2);
      const heavy = budget - recent;
      return {
        ...base,
        prefillScoreFrom: () => 0, // column sums over every prompt query
        decodeScores: true,
        afterPrefill: (caches, scores, state) => {
          caches.forEach((c, l) => c.accumulate(scores.get(l)!));
          base.afterPrefill(caches, scores, state);
        },
        afterStep: (caches, scores) => {
          caches.forEach((c, l) => c.accumulate(scores.get(l)!));
          evictEach(caches, (c) => c.length > budget + every, (c) => h2oKeep({ length: c.length, acc: c.acc, heavy, recent }));
        },
      };
    }
    case 'snapkv': {
      const capacity = positive('budget', d?.budget ?? 2048);
      const window = d?.window ?? 32;
      return {
        ...base,
        prefillScoreFrom: (S) => Math.max(0, S - window),
        afterPrefill: (caches, scores, state) => {
          base.afterPrefill(caches, scores, state);
          caches.forEach((c, l) => {
            const s = scores.get(l)!;
            if (c.length === s.length && c.length >= capacity) c.gather(snapkvKeep({ length: c.length, scores: s, window, capacity }));
          });
        },
      };
    }
    default:
      throw new LightVLMError(`unknown KV method "${method}". Use one of: ${KV_METHODS.join(', ')}.`, 'E_OPTION');
  }
}
