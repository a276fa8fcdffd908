// In-LM stage policies (lightvlm-spec.md §3.2–§3.5, §6): pure functions that, at a merge layer k_j,
// decide which rows of the current sequence survive and which carrier rows are overwritten first.
// PromptState.apply (engine/sequence.ts) carries a decision out: for each update, hidden[index] = row;
// then it gathers hidden/positions at `rows`. Text rows are never scored, merged or removed.

import { LightVLMError } from '../errors.js';
import { unreachable } from '../util/never.js';
import { argsortDesc, mulberry32, roundHalfEven, sampleWithoutReplacement, softmax } from '../util/topk.js';
import type { MergeDecision, MergeInput, MergeOptions, Span, StagePolicy } from './types.js';

/** P_j = max(1, roundHalfEven(origLength · keep)), never more than the tokens the span still has (§3.3). */
export function stageTarget(origLength: number, curLength: number, keep: number): number {
  return Math.min(curLength, Math.max(1, roundHalfEven(origLength * keep)));
}

/** Shape checks shared by every policy; returns T_cur. Spans must be in range and non-overlapping. */
function checkInput(input: MergeInput): number {
  const T = input.scores.length;
  if (!(input.keep > 0 && input.keep <= 1)) throw new LightVLMError(`merge keep ${input.keep} must lie in (0, 1]`, 'E_OPTION');
  if (input.hidden.length !== T * input.dim) {
    throw new LightVLMError(`merge input mismatch: hidden has ${input.hidden.length} values, expected scores.length (${T}) x dim (${input.dim})`, 'E_INTERNAL');
  }
  const sorted = [...input.spans].sort((a, b) => a.start - b.start);
  let end = 0;
  for (const s of sorted) {
    if (s.start < end || s.length < 0 || s.start + s.length > T || s.length > s.origLength) {
      throw new LightVLMError(`invalid image span {start: ${s.start}, length: ${s.length}, origLength: ${s.origLength}} for a ${T}-token sequence (spans must be disjoint, inside [0, ${T}), and not longer than origLength)`, 'E_INTERNAL');
    }
    end = s.start + s.length;
  }
  return T;
}

/** Ascending union of every non-image index and the kept image indices (§3.5). */
function assembleKeep(T: number, spans: Span[], keptPerSpan: Int32Array[]): Int32Array {
  const isImage = new Uint8Array(T);
  for (const s of spans) isImage.fill(1, s.start, s.start + s.length);
  const keepMask = new Uint8Array(T);
  for (let i = 0; i < T; i++) if (!isImage[i]) keepMask[i] = 1;
  for (const k of keptPerSpan) for (const i of k) keepMask[i] = 1;
  let n = 0;
  for (let i = 0; i < T; i++) n += keepMask[i];
  const out = new Int32Array(n);
  for (let i = 0, o = 0; i < T; i++) if (keepMask[i]) out[o++] = i;
  return out;
}

/** Span-local scores → rank order as GLOBAL indices (descending score, ties by ascending index). */
function spanOrder(scores: Float32Array, s: Span): Int32Array {
  const local = argsortDesc(scores.subarray(s.start, s.start + s.length));
  for (let i = 0; i < local.length; i++) local[i] += s.start;
  return local;
}

/**
 * single_tail (§3.4, iLLaVA v1): tail = order[P-1 .. n), weight of tail rank m is m+1 (the
 * lowest-scored token gets the largest weight r+1); h[order[P-1]] = Σ w_m h[tail[m]] / Σ w_m.
 */
function singleTailUpdate(hidden: Float32Array, dim: number, order: Int32Array, P: number): { index: number; row: Float32Array } {
  const acc = new Float64Array(dim);
  let wsum = 0;
  for (let m = 0; m + P - 1 < order.length; m++) {
    const w = m + 1;
    wsum += w;
    const o = order[P - 1 + m] * dim;
    for (let d = 0; d < dim; d++) acc[d] += w * hidden[o + d];
  }
  const row = new Float32Array(dim);
  for (let d = 0; d < dim; d++) row[d] = acc[d] / wsum;
  return { index: order[P - 1], row };
}

/**
 * recycle (§3.4, iLLaVA v2 mode 3): pc = max(1, roundHalfEven(P·pcRatio)) carriers = order[P-pc .. P);
 * red = order[P .. n). Each carrier c takes the m = min(topM, |red|) redundant rows with the largest
 * raw dot product ⟨h_i, h_c⟩ (ties: lower sequence index), w = softmax(sim/sqrt(D)),
 * h_c ← ½ (h_c + Σ w_i h_i). Carriers read pre-merge rows only (red rows are never written).
 */
function recycleUpdates(hidden: Float32Array, dim: number, order: Int32Array, P: number, pcRatio: number, topM: number): { index: number; row: Float32Array }[] {
  const n = order.length;
  const red = order.subarray(P, n);
  if (red.length === 0) return [];
  const pc = Math.min(P, Math.max(1, roundHalfEven(P * pcRatio)));
  const m = Math.min(Math.max(1, Math.floor(topM)), red.length);
  const scale = 1 / Math.sqrt(dim);
  const updates: { index: number; row: Float32Array }[] = [];
  for (let r = P - pc; r < P; r++) {
    const c = order[r];
    const co = c * dim;
    // similarities to every redundant token (float64 sums of fp32 products), then top-m by
    // (sim desc, sequence index asc)
    const cand = Array.from(red, (i) => {
      let d0 = 0, d1 = 0, d2 = 0, d3 = 0, d = 0;
      const o = i * dim;
      for (; d + 3 < dim; d += 4) {
        d0 += hidden[o + d] * hidden[co + d];
        d1 += hidden[o + d + 1] * hidden[co + d + 1];
        d2 += hidden[o + d + 2] * hidden[co + d + 2];
        d3 += hidden[o + d + 3] * hidden[co + d + 3];
      }
      for (; d < dim; d++) d0 += hidden[o + d] * hidden[co + d];
      return { i, dot: d0 + d1 + d2 + d3 };
    });
    cand.sort((a, b) => (a.dot !== b.dot ? b.dot - a.dot : a.i - b.i));
    const top = cand.slice(0, m);
    const w = softmax(top.map((t) => t.dot * scale));
    const mix = new Float64Array(dim);
    top.forEach((t, k) => {
      const o = t.i * dim;
      for (let d = 0; d < dim; d++) mix[d] += w[k] * hidden[o + d];
    });
    const row = new Float32Array(dim);
    for (let d = 0; d < dim; d++) row[d] = 0.5 * (hidden[co + d] + mix[d]);
    updates.push({ index: c, row });
  }
  return updates;
}

/**
 * Row-debiased scores (MergeOptions.debias = 'row'): a copy of `scores` where every image token of
 * a span is divided by the mean score of that span's current tokens in the same grid row. Grid rows
 * are numbered over the concatenated `grids` (each part h×w, row-major, in token order); the token's
 * place is `origInSpan[i]`. A row whose mean is not positive leaves its scores unchanged. Returns
 * the input array untouched when there is nothing to debias with.
 */
export function rowDebiasedScores(scores: Float32Array, spans: Span[], grids: readonly { h: number; w: number }[] | undefined, origInSpan: Int32Array | undefined): Float32Array {
  if (!grids || grids.length === 0 || !origInSpan || origInSpan.length !== scores.length) return scores;
  const total = grids.reduce((a, g) => a + g.h * g.w, 0);
  // part start offsets and row offsets in the concatenated grid
  const starts: number[] = [], rowBase: number[] = [];
  let acc = 0, rows = 0;
  for (const g of grids) { starts.push(acc); rowBase.push(rows); acc += g.h * g.w; rows += g.h; }
  const rowOf = (o: number): number => {
    if (o < 0 || o >= total) return -1;
    let p = grids.length - 1;
    while (p > 0 && starts[p]! > o) p--;
    return rowBase[p]! + Math.floor((o - starts[p]!) / grids[p]!.w);
  };
  const out = Float32Array.from(scores);
  for (const s of spans) {
    const sum = new Float64Array(rows), cnt = new Int32Array(rows);
    const key = new Int32Array(s.length);
    for (let i = 0; i < s.length; i++) {
      const r = rowOf(origInSpan[s.start + i]!);
      key[i] = r;
      if (r >= 0) { sum[r] += scores[s.start + i]!; cnt[r]++; }
    }
    for (let i = 0; i < s.length; i++) {
      const r = key[i]!;
      if (r < 0) continue;
      const mean = sum[r]! / cnt[r]!;
      if (mean > 0) out[s.start + i] = scores[s.start + i]! / mean;
    }
  }
  return out;
}

/**
 * LightVLM stage policy: per span, rank image tokens by score and keep P_j, merging the removed
 * ones per `mode` ('drop' | 'single_tail' | 'recycle'). Spans are handled independently.
 */
export const lightvlmPolicy: StagePolicy = (input, opts) => {
  const T = checkInput(input);
  const { hidden, dim } = input;
  const ranked = opts.scores ?? input.scores;
  if (ranked.length !== T) throw new LightVLMError(`merge options: scores has ${ranked.length} values, expected ${T}`, 'E_INTERNAL');
  const scores = opts.debias === 'row' ? rowDebiasedScores(ranked, input.spans, input.grids, input.origInSpan) : ranked;
  const pcRatio = opts.pcRatio ?? 0.05;
  const topM = opts.topM ?? 5;
  const kept: Int32Array[] = [];
  const updates: { index: number; row: Float32Array }[] = [];
  for (const s of input.spans) {
    if (s.length === 0) continue;
    const P = stageTarget(s.origLength, s.length, input.keep);
    const order = spanOrder(scores, s);
    kept.push(order.slice(0, P));
    if (P >= s.length) continue; // nothing removed: no merge
    switch (opts.mode) {
      case 'drop':
        break;
      case 'single_tail':
        updates.push(singleTailUpdate(hidden, dim, order, P));
        break;
      case 'recycle':
        updates.push(...recycleUpdates(hidden, dim, order, P, pcRatio, topM));
        break;
      default:
        unreachable(opts.mode, 'merge mode');
    }
  }
  return { rows: assembleKeep(T, input.spans, kept), updates };
};

/**
 * `random` baseline (§6): per span, a uniformly random P_j-subset of the current image tokens,
 * dropped without merging. Uses `input.rng` (seed it with mulberry32 and record the seed); without
 * one, a fresh mulberry32(0) is used, so the call is still deterministic.
 */
export const randomPolicy: StagePolicy = (input) => {
  const T = checkInput(input);
  const rng = input.rng ?? mulberry32(0);
  const kept = input.spans.map((s) => {
    const P = stageTarget(s.origLength, s.length, input.keep);
    const local = sampleWithoutReplacement(s.length, P, rng);
    for (let i = 0; i < local.length; i++) local[i] += s.start;
    return local;
  });
  return { rows: assembleKeep(T, input.spans, kept), updates: [] };
};

/**
 * FastV / PyramidDrop (§6): per span keep the top P_j image tokens by score, drop the rest.
 * (Which layer the score comes from — k-1 for FastV, k itself for PyramidDrop — is the caller's
 * business.) Counts use the same P_j rule as LightVLM, not LightCompress's round/floor.
 */
export const topScoreDropPolicy: StagePolicy = (input) => {
  const T = checkInput(input);
  const kept = input.spans.map((s) => spanOrder(input.scores, s).slice(0, stageTarget(s.origLength, s.length, input.keep)));
  return { rows: assembleKeep(T, input.spans, kept), updates: [] };
};
