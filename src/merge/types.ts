// The vocabulary of prefill merging, shared by the policies, the plans and the engine that runs them.
//   keep      always a FRACTION of an original image span (a stage's cumulative ρ_j, a method's final f)
//   rows      indices into the current sequence (what a decision keeps)
//   Span      an image span of the current sequence (processing/lmPrompt.ts)
import type { Grid, Span } from '../processing/lmPrompt.js';

export type { Grid, Span };

/** How the tokens a stage removes are folded into the kept ones (lightvlm-spec.md §3.4). */
export const MERGE_MODES = ['recycle', 'single_tail', 'drop'] as const;
export type MergeMode = (typeof MERGE_MODES)[number];

/**
 * The lightvlm score rules (PrefillAcceleration.score; evidence in docs/schedule.md; default
 * merge/plan.ts DEFAULT_SCORE):
 *   'novelty'      — noveltyScores (merge/importance.ts) at the first stage (every span still whole), §3.2 attention after;
 *   'debiased'     — row-debiased attention at the first stage, attention after;
 *   'debiased-all' — row-debiased attention at every stage;
 *   'attention'    — the spec's §3.2 score at every stage.
 */
export const SCORE_RULES = ['novelty', 'debiased', 'debiased-all', 'attention'] as const;
export type ScoreRule = (typeof SCORE_RULES)[number];

/** What a stage policy sees at merge layer k_j. */
export interface MergeInput {
  keep: number;            // cumulative fraction ρ_j of the ORIGINAL span length kept from this stage on
  spans: Span[];
  scores: Float32Array;    // [T_cur] head-mean softmax attention of the last prompt token at layer k_j−1 (whole row, text incl.)
  hidden: Float32Array;    // [T_cur, D] hidden states entering layer k_j (row-major)
  dim: number;             // D
  rng?: () => number;      // for random
  /** LM-token grid of each image part in token order. */
  grids?: Grid[];
  /** [T_cur] index of each row among the original image tokens (in token order), −1 for text. */
  origInSpan?: Int32Array;
}

/** Per-method settings a plan binds to a policy. */
export interface MergeOptions {
  mode: MergeMode;
  /** What the stage ranks by when not `MergeInput.scores` ([T_cur]; e.g. novelty at the first stage, merge/importance.ts). */
  scores?: Float32Array;
  pcRatio?: number; topM?: number; // recycle params (defaults 0.05, 5)
  /**
   * Score debiasing (lightvlm-spec.md §3.2 is 'none'). 'row': each image token's score is divided
   * by the mean score of the CURRENT tokens of its span that lie in the same image row (from
   * `grids` + `origInSpan`), so a row that the last token favours as a whole (e.g. the bottom rows,
   * nearest the question, at shallow layers) no longer wins by position alone. Needs `grids` and
   * `origInSpan`; without them, or when a span's length does not match its grids, it is 'none'.
   */
  debias?: 'none' | 'row';
}

/** A stage's decision; PromptState.apply (engine/sequence.ts) carries it out. */
export interface MergeDecision {
  rows: Int32Array;                                  // ascending rows of the current sequence to keep; ALL non-image rows included
  updates: { index: number; row: Float32Array }[];   // carrier rows overwritten BEFORE the gather; computed in float64, stored fp32
}

/** A pure in-LM stage policy. Policies that only drop ignore `opts`. */
export type StagePolicy = (input: MergeInput, opts: MergeOptions) => MergeDecision;
