// Prefill options → a plan the engine runs: which layers merge and with which bound policy, or
// which pre-LM reducer shrinks the image spans before the LM. The method registry lives here: a new
// in-LM method is its policy (merge/policies.ts or its own file) plus one line in IN_LM.
import { LightVLMError } from '../errors.js';
import type { LmPrompt } from '../processing/lmPrompt.js';
import { isOneOf, unreachable } from '../util/never.js';
import { lightvlmPolicy, randomPolicy, topScoreDropPolicy } from './policies.js';
import { PRE_LM, preLmReducer, type PreLmMethod } from './prelmPlan.js';
import { chooseDefaultSchedule, fastvSchedule, pyramidDropSchedule, validateStages, type MergeStage } from './schedule.js';
import { MERGE_MODES, SCORE_RULES, type MergeDecision, type MergeInput, type MergeMode, type MergeOptions, type ScoreRule, type StagePolicy } from './types.js';

/** Prefill token reduction (lightvlm-spec.md §3, §6). `keep` is the FINAL fraction of image tokens kept. */
export interface PrefillAcceleration {
  method: PrefillMethod;
  keep?: number;                      // final kept fraction in (0, 1]
  stages?: MergeStage[];              // explicit schedule (cumulative keeps), overrides `keep`
  mergeMode?: MergeMode;              // lightvlm only; default 'recycle'
  seed?: number;                      // for `random`
  score?: ScoreRule;                  // lightvlm only; default 'debiased'
}

/** An in-LM method: its default schedule for an L-layer LM, its policy, and the options bound to it. */
interface InLmMethodEntry {
  schedule: (L: number, keep: number) => MergeStage[];
  policy: StagePolicy;
  options: (p: PrefillAcceleration) => (input: MergeInput) => MergeOptions;
}

const dropOnly = () => () => ({ mode: 'drop' as const });

/**
 * LightVLM's options: the merge mode, and the score rule turned into a per-stage debias choice:
 * 'debiased' = row-debiased while every span is still whole (the first stage), 'debiased-all' = at
 * every stage, 'attention' = never (spec §3.2).
 */
function lightvlmOptions(p: PrefillAcceleration): (input: MergeInput) => MergeOptions {
  const mode = p.mergeMode ?? 'recycle';
  const score = p.score ?? 'debiased';
  const whole = (i: MergeInput) => i.spans.every((s) => s.length === s.origLength);
  switch (score) {
    case 'attention':
      return () => ({ mode, debias: 'none' });
    case 'debiased':
      return (i) => ({ mode, debias: whole(i) ? 'row' : 'none' });
    case 'debiased-all':
      return () => ({ mode, debias: 'row' });
    default:
      return unreachable(score, 'score rule');
  }
}

/** The in-LM methods, one line each. */
const IN_LM = {
  lightvlm: { schedule: chooseDefaultSchedule, policy: lightvlmPolicy, options: lightvlmOptions },
  random: { schedule: chooseDefaultSchedule, policy: randomPolicy, options: dropOnly },
  fastv: { schedule: (L, keep) => fastvSchedule(keep, Math.min(2, L - 1)), policy: topScoreDropPolicy, options: dropOnly },
  pdrop: { schedule: pyramidDropSchedule, policy: topScoreDropPolicy, options: dropOnly },
} satisfies Record<string, InLmMethodEntry>;

export type InLmMethod = keyof typeof IN_LM;
export type PrefillMethod = 'none' | InLmMethod | PreLmMethod;
/** Every prefill method, in the order help texts list them. */
export const PREFILL_METHODS: readonly PrefillMethod[] = ['none', ...(Object.keys(IN_LM) as InLmMethod[]), ...(Object.keys(PRE_LM) as PreLmMethod[])];

export interface PrefillPlan {
  method: PrefillMethod;
  stages: MergeStage[];
  /** The stage policy with the method's options bound; null without in-LM stages. */
  policy: ((input: MergeInput) => MergeDecision) | null;
  preLm?: (prompt: LmPrompt) => LmPrompt;
  seed: number;
}

export function resolvePrefill(p: PrefillAcceleration | undefined, L: number): PrefillPlan {
  const method = p?.method ?? 'none';
  const seed = p?.seed ?? 0;
  // A method named without a keep (and without stages) reduces to the spec's headline 35%.
  const keep = p?.keep ?? (method === 'none' || p?.stages ? 1 : 0.35);
  if (!(keep > 0 && keep <= 1)) throw new LightVLMError(`keep ${keep} must lie in (0, 1], e.g. --method lightvlm:0.35.`, 'E_OPTION');
  if (!isOneOf(PREFILL_METHODS, method)) throw new LightVLMError(`unknown prefill method "${method}". Use one of: ${PREFILL_METHODS.join(', ')}.`, 'E_OPTION');
  const none: PrefillPlan = { method, stages: [], policy: null, seed };
  if (method === 'none') return none;
  if (p?.mergeMode !== undefined && !isOneOf(MERGE_MODES, p.mergeMode)) throw new LightVLMError(`unknown merge mode "${p.mergeMode}"; use ${MERGE_MODES.join(', ')}.`, 'E_OPTION');
  if (p?.score !== undefined && !isOneOf(SCORE_RULES, p.score)) throw new LightVLMError(`unknown score "${p.score}"; use ${SCORE_RULES.join(', ')}.`, 'E_OPTION');
  const explicit = p!.stages;
  if (explicit) validateStages(explicit, L);
  if (isOneOf(Object.keys(PRE_LM) as PreLmMethod[], method)) return keep === 1 ? none : { ...none, preLm: preLmReducer(method, keep) };
  const entry: InLmMethodEntry = IN_LM[method];
  const stages = explicit ? explicit.map((s) => ({ ...s })) : keep === 1 ? [] : entry.schedule(L, keep);
  const options = entry.options(p!);
  return { method, stages, policy: (input) => entry.policy(input, options(input)), seed };
}
