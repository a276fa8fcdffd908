// Prefill options → a plan the engine runs: which layers merge and with which bound policy, or
// which pre-LM reducer shrinks the image spans before the LM. The method registry lives here: a new
// in-LM method is its policy (merge/policies.ts or its own file) plus one line in IN_LM.
import { LightVLMError } from '../errors.js';
import type { LmPrompt } from '../processing/lmPrompt.js';
import { isOneOf, unreachable } from '../util/never.js';
import { lightvlmPolicy, randomPolicy, topScoreDropPolicy } from './policies.js';
import { stageScores } from './importance.js';
import { PRE_LM, PRE_LM_POSITIONS, preLmReducer, type PreLmMethod, type PreLmPositions } from './prelmPlan.js';
import { chooseDefaultSchedule, defaultLightVLMSchedule, fastvSchedule, pyramidDropSchedule, validateStages, type MergeStage } from './schedule.js';
import { MERGE_MODES, SCORE_RULES, type MergeDecision, type MergeInput, type MergeMode, type MergeOptions, type ScoreRule, type StagePolicy } from './types.js';

/** Prefill token reduction (lightvlm-spec.md §3, §6). `keep` is the FINAL fraction of image tokens kept. */
export interface PrefillAcceleration {
  method: PrefillMethod;
  keep?: number;                      // final kept fraction in (0, 1]
  stages?: MergeStage[];              // explicit schedule (cumulative keeps), overrides `keep`
  mergeMode?: MergeMode;              // lightvlm only; default 'recycle'
  seed?: number;                      // for `random`
  /**
   * lightvlm importance score (docs/schedule.md, merge/importance.ts): 'novelty' (default,
   * DEFAULT_SCORE) = distance from the span's mean hidden state at the first stage, attention after;
   * 'attention' = spec §3.2; 'debiased' = row-debiased attention at the first stage, attention
   * after; 'debiased-all' = row-debiased at every stage.
   */
  score?: ScoreRule;
  /**
   * Pre-LM methods on 1-D RoPE models: 'renumber' (default, spec §6) gives the kept image rows
   * contiguous position ids; 'original' keeps the ids of the patches they came from (docs/schedule.md).
   */
  positions?: PreLmPositions;
}

/** An in-LM method: its default schedule for an L-layer LM, its policy, and the options bound to it. */
interface InLmMethodEntry {
  schedule: (L: number, keep: number, p: PrefillAcceleration) => MergeStage[];
  policy: StagePolicy;
  options: (p: PrefillAcceleration) => (input: MergeInput) => MergeOptions;
}

const dropOnly = () => () => ({ mode: 'drop' as const });

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
export function defaultStagesFor(score: ScoreRule, L: number, keep: number): MergeStage[] {
  switch (score) {
    case 'debiased':
    case 'debiased-all':
      return chooseDefaultSchedule(L, keep);
    case 'novelty':
    case 'attention':
      return defaultLightVLMSchedule(L, keep);
    default:
      return unreachable(score, 'score rule');
  }
}

/** LightVLM's options: the merge mode, and what each stage ranks by under the score rule (merge/importance.ts). */
function lightvlmOptions(p: PrefillAcceleration): (input: MergeInput) => MergeOptions {
  const mode = p.mergeMode ?? 'recycle';
  const score = p.score ?? DEFAULT_SCORE;
  return (i) => ({ mode, ...stageScores(score, i) });
}

/** The in-LM methods, one line each. */
const IN_LM = {
  lightvlm: { schedule: (L, keep, p) => defaultStagesFor(p.score ?? DEFAULT_SCORE, L, keep), policy: lightvlmPolicy, options: lightvlmOptions },
  // the ablation of the default score: same layers and counts as lightvlm's default
  random: { schedule: (L, keep) => defaultStagesFor(DEFAULT_SCORE, L, keep), policy: randomPolicy, options: dropOnly },
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
  if (p?.positions !== undefined && !isOneOf(PRE_LM_POSITIONS, p.positions)) throw new LightVLMError(`unknown positions "${p.positions}"; use ${PRE_LM_POSITIONS.join(' or ')}.`, 'E_OPTION');
  const explicit = p!.stages;
  if (explicit) validateStages(explicit, L);
  if (isOneOf(Object.keys(PRE_LM) as PreLmMethod[], method)) return keep === 1 ? none : { ...none, preLm: preLmReducer(method, keep, p!.positions) };
  const entry: InLmMethodEntry = IN_LM[method];
  const stages = explicit ? explicit.map((s) => ({ ...s })) : keep === 1 ? [] : entry.schedule(L, keep, p!);
  const options = entry.options(p!);
  return { method, stages, policy: (input) => entry.policy(input, options(input)), seed };
}
