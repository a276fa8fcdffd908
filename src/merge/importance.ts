// Training-free importance scores for image tokens at a merge stage, as alternatives to the spec's
// last-token attention (lightvlm-spec.md §3.2). Pure functions of what a stage already has: the
// hidden rows entering the merge layer and the attention scores. No constant is fitted to a model.
//
// Why: at an early first stage (layer 1 on an 8-layer LM) the last token's layer-0 attention is
// mostly positional (it favours the image rows nearest the question), so ranking by it throws the
// objects away and does worse than random (docs/schedule.md). What an image token carries that its
// neighbours do not is visible in the hidden state itself: background patches are near-duplicates
// of each other and of their span's mean, object patches stand out.
import type { MergeInput, ScoreRule, Span } from './types.js';

/**
 * Novelty: for each image row i of a span, the Euclidean distance of h_i from the mean of the
 * span's current rows, ‖h_i − μ_span‖. Text rows get 0 (they are never ranked).
 * hidden: [T, D] row-major; returns [T]. Sums in float64.
 */
export function noveltyScores(hidden: Float32Array, dim: number, spans: readonly Span[], T: number): Float32Array {
  const out = new Float32Array(T);
  const mean = new Float64Array(dim);
  for (const s of spans) {
    if (s.length === 0) continue;
    mean.fill(0);
    for (let i = s.start; i < s.start + s.length; i++) {
      const o = i * dim;
      for (let d = 0; d < dim; d++) mean[d] += hidden[o + d]!;
    }
    for (let d = 0; d < dim; d++) mean[d] /= s.length;
    for (let i = s.start; i < s.start + s.length; i++) {
      const o = i * dim;
      let acc = 0;
      for (let d = 0; d < dim; d++) {
        const x = hidden[o + d]! - mean[d]!;
        acc += x * x;
      }
      out[i] = Math.sqrt(acc);
    }
  }
  return out;
}

export type StageScoreInput = Pick<MergeInput, 'scores' | 'hidden' | 'dim' | 'spans'>;

/** What the stage policy ranks by under `rule` (merge/types.ts SCORE_RULES): the scores, and whether to row-debias them. */
export function stageScores(rule: ScoreRule, i: StageScoreInput): { scores: Float32Array; debias: 'none' | 'row' } {
  const first = i.spans.every((s) => s.length === s.origLength);
  if (rule === 'novelty' && first) return { scores: noveltyScores(i.hidden, i.dim, i.spans, i.scores.length), debias: 'none' };
  return { scores: i.scores, debias: rule === 'debiased-all' || (rule === 'debiased' && first) ? 'row' : 'none' };
}
