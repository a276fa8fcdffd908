// Unit tests of the pure policies: rounding/ranking helpers, schedules, in-LM stage policies,
// pre-LM reductions and KV selections. Expected values are computed by hand in the comments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LightVLMError } from '../../src/errors.js';
import { argsortDesc, mulberry32, roundHalfEven, sampleWithoutReplacement, softmax, topKAscending } from '../../src/util/topk.js';
import { chooseDefaultSchedule, defaultLightVLMSchedule, fastvSchedule, parseStages, pyramidDropSchedule, validateStages } from '../../src/merge/schedule.js';
import { lightvlmPolicy as lightvlm, randomPolicy as random, rowDebiasedScores, stageTarget, topScoreDropPolicy as topScoreDrop } from '../../src/merge/policies.js';
import type { MergeDecision, MergeInput, MergeOptions, StagePolicy } from '../../src/merge/types.js';
import { fastervlmSelect, fourierGrid, fourierLowPass, splitVisionZipBudget, visionzipSelect } from '../../src/merge/prelm.js';
import { resolvePrefill } from '../../src/merge/plan.js';
import { PromptState } from '../../src/engine/sequence.js';
import { budgetEvict, staleImageRows } from '../../src/kvcache/lightvlm.js';
import { streamingKeep } from '../../src/kvcache/streamingllm.js';
import { h2oKeep } from '../../src/kvcache/h2o.js';
import { avgPool1dSame, snapkvKeep } from '../../src/kvcache/snapkv.js';

const arr = (a: ArrayLike<number>) => Array.from(a);
const close = (a: ArrayLike<number>, b: number[], tol = 1e-5) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `index ${i}: ${a[i]} vs ${b[i]}`);
};
const layers = (s: { layer: number }[]) => s.map((x) => x.layer);

// Policies take (input, options); the cases below write both in one object.
type Case = MergeInput & MergeOptions;
const call = (p: StagePolicy) => ({ mode, pcRatio, topM, debias, ...input }: Case): MergeDecision =>
  p(input, { mode, ...(pcRatio !== undefined ? { pcRatio } : {}), ...(topM !== undefined ? { topM } : {}), ...(debias !== undefined ? { debias } : {}) });
const lightvlmPolicy = call(lightvlm);
const randomPolicy = call(random);
const topScoreDropPolicy = call(topScoreDrop);
/** Carries a decision out the way the engine does (PromptState.apply) and returns the state. */
const applied = (hidden: Float32Array, dim: number, spans: MergeInput['spans'], d: MergeDecision): PromptState => {
  const T = hidden.length / dim;
  const st = new PromptState(Float32Array.from(hidden), Int32Array.from({ length: T }, (_, i) => i), [Int32Array.from({ length: T }, (_, i) => i)], spans.map((x) => ({ ...x })), new Uint8Array(T), dim);
  st.apply(d);
  return st;
};

test('roundHalfEven matches Python round', () => {
  assert.equal(roundHalfEven(0.5), 0);
  assert.equal(roundHalfEven(1.5), 2);
  assert.equal(roundHalfEven(2.5), 2);
  assert.equal(roundHalfEven(3.5), 4);
  assert.equal(roundHalfEven(2.4999), 2);
  assert.equal(roundHalfEven(2.5000001), 3);
  assert.equal(roundHalfEven(-1.5), -2);
  assert.ok(Object.is(roundHalfEven(-0.5), 0));
  assert.equal(roundHalfEven(7), 7);
});

test('argsortDesc / topKAscending / softmax / PRNG', () => {
  assert.deepEqual(arr(argsortDesc([0.1, 0.5, 0.2, 0.5, 0.05])), [1, 3, 2, 0, 4]);
  assert.deepEqual(arr(argsortDesc([1, NaN, 2])), [2, 0, 1]);
  assert.deepEqual(arr(topKAscending([3, 1, 3, 2], 2)), [0, 2]);
  close(softmax([0, Math.log(3)]), [0.25, 0.75], 1e-12);
  const a = mulberry32(7), b = mulberry32(7);
  const xs = Array.from({ length: 100 }, () => a());
  assert.deepEqual(xs, Array.from({ length: 100 }, () => b()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const s = sampleWithoutReplacement(50, 10, mulberry32(1));
  assert.equal(new Set(s).size, 10);
  assert.deepEqual(arr(s), arr(s).sort((x, y) => x - y));
});

test('default LightVLM schedule matches spec §3.8', () => {
  assert.deepEqual(layers(defaultLightVLMSchedule(8, 0.35)), [1, 2, 4]);
  assert.deepEqual(layers(defaultLightVLMSchedule(24, 0.35)), [3, 6, 12]);
  assert.deepEqual(layers(defaultLightVLMSchedule(28, 0.35)), [4, 7, 14]);
  assert.deepEqual(layers(defaultLightVLMSchedule(32, 0.03)), [4, 8, 16]);
  assert.deepEqual(layers(defaultLightVLMSchedule(48, 0.1)), [6, 12, 24]);
  assert.deepEqual(layers(defaultLightVLMSchedule(80, 0.1)), [10, 20, 40]);
  // keeps (q, q², f) and counts of 1792 from the spec table
  const table: [number, number[], number[]][] = [
    [0.35, [0.705, 0.497, 0.35], [1263, 890, 627]],
    [0.1, [0.464, 0.215, 0.1], [832, 386, 179]],
    [0.03, [0.311, 0.097, 0.03], [557, 173, 54]],
  ];
  for (const [f, keeps, counts] of table) {
    const s = defaultLightVLMSchedule(32, f);
    close(s.map((x) => x.keep), keeps, 6e-4);
    assert.equal(s[2].keep, f);
    assert.deepEqual(s.map((x) => stageTarget(1792, 1792, x.keep)), counts);
    validateStages(s, 32);
  }
  // shallow LMs are repaired into valid schedules; the final keep is always f
  assert.deepEqual(layers(defaultLightVLMSchedule(4, 0.1)), [1, 2, 3]);
  const l3 = defaultLightVLMSchedule(3, 0.1);
  assert.deepEqual(layers(l3), [1, 2]);
  assert.equal(l3[1].keep, 0.1);
  assert.deepEqual(defaultLightVLMSchedule(2, 0.1), [{ layer: 1, keep: 0.1 }]);
  assert.throws(() => defaultLightVLMSchedule(1, 0.1), LightVLMError);
  assert.throws(() => defaultLightVLMSchedule(32, 0), LightVLMError);
  assert.throws(() => defaultLightVLMSchedule(32, 1.5), LightVLMError);
  // keep 1 everywhere is allowed (identity stages)
  validateStages(defaultLightVLMSchedule(32, 1), 32);
});

test('pyramidDrop, fastv and chooseDefaultSchedule', () => {
  const pd = pyramidDropSchedule(32, 0.125);
  assert.deepEqual(layers(pd), [8, 16, 24]);
  close(pd.map((x) => x.keep), [0.5, 0.25, 0.125], 1e-12);
  assert.deepEqual(layers(pyramidDropSchedule(28, 0.35)), [7, 14, 21]);
  assert.deepEqual(fastvSchedule(0.5), [{ layer: 2, keep: 0.5 }]);
  assert.deepEqual(fastvSchedule(0.222, 3), [{ layer: 3, keep: 0.222 }]);
  // measured rule (docs/schedule.md): the spec pyramid shifted up so that k_1 >= 2
  assert.deepEqual(layers(chooseDefaultSchedule(8, 0.35)), [2, 3, 5]);
  assert.deepEqual(chooseDefaultSchedule(8, 0.1).map((x) => x.keep), defaultLightVLMSchedule(8, 0.1).map((x) => x.keep));
  assert.equal(chooseDefaultSchedule(8, 0.03)[2].keep, 0.03);
  assert.deepEqual(layers(chooseDefaultSchedule(10, 0.1)), [2, 3, 6]);
  assert.deepEqual(layers(chooseDefaultSchedule(4, 0.1)), [2, 3]);
  assert.deepEqual(chooseDefaultSchedule(3, 0.1), [{ layer: 2, keep: 0.1 }]);
  assert.deepEqual(chooseDefaultSchedule(2, 0.1), [{ layer: 1, keep: 0.1 }]);
  // from L = 12 on roundHalfEven(L/8) >= 2: the spec default itself
  for (const L of [12, 16, 24, 28, 32, 36, 48, 80]) for (const f of [0.35, 0.1, 0.03]) assert.deepEqual(chooseDefaultSchedule(L, f), defaultLightVLMSchedule(L, f));
  assert.deepEqual(layers(chooseDefaultSchedule(24, 0.1)), [3, 6, 12]);
  assert.deepEqual(layers(chooseDefaultSchedule(28, 0.1)), [4, 7, 14]);
  assert.deepEqual(layers(chooseDefaultSchedule(32, 0.1)), [4, 8, 16]);
  for (let L = 2; L <= 40; L++) validateStages(chooseDefaultSchedule(L, 0.03), L);
});

test('validateStages and parseStages errors', () => {
  const bad = (s: { layer: number; keep: number }[], L: number, re: RegExp) =>
    assert.throws(() => validateStages(s, L), (e: unknown) => e instanceof LightVLMError && re.test(e.message));
  validateStages([{ layer: 3, keep: 0.7 }, { layer: 6, keep: 0.5 }], 24);
  validateStages([], 24);
  bad([{ layer: 0, keep: 0.5 }], 32, /stage 1 \(0:0\.5\).*\[1, 31\]/);
  bad([{ layer: 32, keep: 0.5 }], 32, /\[1, 31\]/);
  bad([{ layer: 2.5, keep: 0.5 }], 32, /integer/);
  bad([{ layer: 4, keep: 0.7 }, { layer: 4, keep: 0.5 }], 32, /stage 2 \(4:0\.5\).*strictly increase.*\[5, 31\]/);
  bad([{ layer: 4, keep: 0 }], 32, /\(0, 1\]/);
  bad([{ layer: 4, keep: 1.2 }], 32, /\(0, 1\]/);
  bad([{ layer: 4, keep: 0.5 }, { layer: 8, keep: 0.5 }], 32, /stage 2.*strictly decrease.*\(0, 0\.5\)/);
  assert.deepEqual(parseStages('3:0.70, 6:0.50,12:0.35'), [{ layer: 3, keep: 0.7 }, { layer: 6, keep: 0.5 }, { layer: 12, keep: 0.35 }]);
  assert.deepEqual(parseStages('2:1e-1'), [{ layer: 2, keep: 0.1 }]);
  assert.throws(() => parseStages('3-0.7'), LightVLMError);
  assert.throws(() => parseStages(''), LightVLMError);
  assert.throws(() => parseStages('3:0.70,6:0.50,12:0.35', 8), /\[1, 7\]/);
});

// Sequence of 7 tokens: text 0, image span 1..5, text 6. D = 2.
// Image scores (positions 1..5): 0.1, 0.5, 0.2, 0.5, 0.05 → order 2, 4, 3, 1, 5 (tie 2/4 by index).
const T7scores = new Float32Array([0.3, 0.1, 0.5, 0.2, 0.5, 0.05, 0.9]);
const T7hidden = new Float32Array([0, 0, 1, 0, 0, 1, 2, 2, 4, 0, 0, 4, 9, 9]);
const base7 = (mode: MergeOptions['mode'], extra: Partial<Case> = {}): Case => ({
  keep: 0.4, // P = roundHalfEven(5 · 0.4) = 2
  spans: [{ start: 1, length: 5, origLength: 5 }],
  scores: T7scores, hidden: T7hidden, dim: 2, mode, ...extra,
});

test('lightvlm drop keeps the top-P image tokens and all text', () => {
  const d = lightvlmPolicy(base7('drop'));
  assert.deepEqual(arr(d.rows), [0, 2, 4, 6]);
  assert.equal(d.updates.length, 0);
  assert.deepEqual(arr(topScoreDropPolicy(base7('drop')).rows), [0, 2, 4, 6]);
});

test('lightvlm single_tail: weights 1..r+1, lowest score heaviest', () => {
  const d = lightvlmPolicy(base7('single_tail'));
  assert.deepEqual(arr(d.rows), [0, 2, 4, 6]);
  // tail = [4, 3, 1, 5] with weights 1, 2, 3, 4 (Σ = 10) into carrier 4:
  // (1·[4,0] + 2·[2,2] + 3·[1,0] + 4·[0,4]) / 10 = [1.1, 2.0]
  assert.equal(d.updates.length, 1);
  assert.equal(d.updates[0].index, 4);
  close(d.updates[0].row, [1.1, 2.0]);
  const st = applied(T7hidden, 2, base7('drop').spans, d);
  close(st.hidden, [0, 0, 0, 1, 1.1, 2.0, 9, 9]);
  assert.deepEqual(arr(st.orig), [0, 2, 4, 6]);
  assert.deepEqual(arr(st.pos[0]!), [0, 2, 4, 6]); // positions keep their gaps
  assert.deepEqual(st.spans, [{ start: 1, length: 2, origLength: 5 }]);
  assert.equal(T7hidden[8], 4); // input untouched
});

test('lightvlm recycle: carrier = order[P-pc..P), softmax over top-M dot products', () => {
  // P = 2, pc = max(1, roundHalfEven(0.1)) = 1 → dom = [2], carrier = [4], red = [3, 1, 5].
  // h4 = [4,0]; sims with 3,1,5 = 8, 4, 0; scale 1/sqrt(2).
  const d = lightvlmPolicy(base7('recycle'));
  assert.deepEqual(arr(d.rows), [0, 2, 4, 6]);
  assert.equal(d.updates.length, 1);
  assert.equal(d.updates[0].index, 4);
  const sm = (xs: number[]) => { const e = xs.map(Math.exp); const t = e.reduce((a, b) => a + b); return e.map((x) => x / t); };
  const w = sm([8 / Math.SQRT2, 4 / Math.SQRT2, 0]);
  const expected = [0.5 * (4 + w[0] * 2 + w[1] * 1 + w[2] * 0), 0.5 * (0 + w[0] * 2 + w[1] * 0 + w[2] * 4)];
  close(d.updates[0].row, expected);
  close(d.updates[0].row, [2.9689004, 0.9476639]);
  // topM = 2: only tokens 3 and 1 contribute, w = softmax([8, 4]/√2) = [0.944193, 0.055807]
  close(lightvlmPolicy(base7('recycle', { topM: 2 })).updates[0].row, [2.9720964, 0.9441928]);
});

test('recycle carrier count uses roundHalfEven(P · pcRatio)', () => {
  const n = 100, D = 3, rng = mulberry32(3);
  const scores = Float32Array.from({ length: n }, (_, i) => n - i); // order = 0, 1, 2, ...
  const hidden = Float32Array.from({ length: n * D }, () => rng() - 0.5);
  for (const [P, pc] of [[10, 1], [30, 2], [50, 2], [70, 4]]) { // 0.5→0→1, 1.5→2, 2.5→2, 3.5→4
    const d = lightvlmPolicy({ keep: P / n, spans: [{ start: 0, length: n, origLength: n }], scores, hidden, dim: D, mode: 'recycle' });
    assert.equal(d.rows.length, P);
    assert.deepEqual(d.updates.map((u) => u.index), Array.from({ length: pc }, (_, i) => P - pc + i));
  }
});

test('keep = 1 is the identity for every policy', () => {
  for (const mode of ['drop', 'single_tail', 'recycle'] as const) {
    const d = lightvlmPolicy(base7(mode, { keep: 1 }));
    assert.deepEqual(arr(d.rows), [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(d.updates.length, 0);
  }
  assert.equal(randomPolicy(base7('drop', { keep: 1 })).rows.length, 7);
});

test('two spans are reduced independently; text is never dropped', () => {
  // text 0 | span A 1..4 | text 5 | span B 6..9 (orig 8, already reduced to 4) | text 10
  const scores = new Float32Array([0, 0.01, 0.04, 0.03, 0.02, 0, 0.9, 0.6, 0.8, 0.7, 0]);
  const hidden = Float32Array.from({ length: 11 }, (_, i) => i);
  const spans = [{ start: 1, length: 4, origLength: 4 }, { start: 6, length: 4, origLength: 8 }];
  // keep 0.5: A → P = 2 (tokens 2, 3); B → P = 4 of origLength 8 = all 4
  assert.deepEqual(arr(lightvlmPolicy({ keep: 0.5, spans, scores, hidden, dim: 1, mode: 'drop' }).rows), [0, 2, 3, 5, 6, 7, 8, 9, 10]);
  // keep 0.25: A → P = 1 (token 2); B → P = 2 (tokens 6, 8)
  const d = lightvlmPolicy({ keep: 0.25, spans, scores, hidden, dim: 1, mode: 'single_tail' });
  assert.deepEqual(arr(d.rows), [0, 2, 5, 6, 8, 10]);
  // A: tail [2,3,4,1] w 1..4 → (2+6+12+4)/10 = 2.4; B: tail [8,9,7] w 1..3 → (8+18+21)/6 = 7.8333
  assert.deepEqual(d.updates.map((u) => u.index), [2, 8]);
  close(d.updates.map((u) => u.row[0]), [2.4, 47 / 6]);
  assert.deepEqual(applied(hidden, 1, spans, d).spans, [{ start: 1, length: 1, origLength: 4 }, { start: 3, length: 2, origLength: 8 }]);
  const r = randomPolicy({ keep: 0.25, spans, scores, hidden, dim: 1, mode: 'drop', rng: mulberry32(5) });
  for (const t of [0, 5, 10]) assert.ok(arr(r.rows).includes(t));
  assert.equal(arr(r.rows).filter((i) => i >= 1 && i <= 4).length, 1);
  assert.equal(arr(r.rows).filter((i) => i >= 6 && i <= 9).length, 2);
});

test('row-debiased score: divide by the mean of the current tokens in the same grid row', () => {
  // T = 8: text 0, image 1..6 = a 2x3 grid (rows {1,2,3} and {4,5,6}), text 7.
  // row 0 scores .1 .2 .3 (mean .2) -> .5 1 1.5; row 1 scores .4 .4 1 (mean .6) -> .667 .667 1.667
  const scores = Float32Array.from([0.05, 0.1, 0.2, 0.3, 0.4, 0.4, 1.0, 0.02]);
  const spans = [{ start: 1, length: 6, origLength: 6 }];
  const grids = [{ h: 2, w: 3 }];
  const origInSpan = Int32Array.from([-1, 0, 1, 2, 3, 4, 5, -1]);
  const base = { keep: 0.5, spans, scores, hidden: new Float32Array(8), dim: 1, mode: 'drop' as const, grids, origInSpan };
  close(rowDebiasedScores(scores, spans, grids, origInSpan), [0.05, 0.5, 1, 1.5, 2 / 3, 2 / 3, 5 / 3, 0.02]);
  // P = 3. attention: 1.0 (6), .4 (4), .4 (5); debiased: 1.667 (6), 1.5 (3), 1.0 (2)
  assert.deepEqual(arr(lightvlmPolicy(base).rows), [0, 4, 5, 6, 7]);
  assert.deepEqual(arr(lightvlmPolicy({ ...base, debias: 'none' }).rows), [0, 4, 5, 6, 7]);
  assert.deepEqual(arr(lightvlmPolicy({ ...base, debias: 'row' }).rows), [0, 2, 3, 6, 7]);
  // without grids / origInSpan the debiased score is the plain score
  assert.deepEqual(arr(lightvlmPolicy({ ...base, debias: 'row', grids: undefined }).rows), [0, 4, 5, 6, 7]);
  // a reduced span: current rows hold original tokens 0, 2 (grid row 0) and 3, 5 (grid row 1)
  // scores .1 .3 | .5 .6 -> .5 1.5 | .909 1.091; P = roundHalfEven(6 · 1/3) = 2
  const red = { keep: 1 / 3, spans: [{ start: 0, length: 4, origLength: 6 }], scores: Float32Array.from([0.1, 0.3, 0.5, 0.6, 0.01]), hidden: new Float32Array(5), dim: 1, mode: 'drop' as const, grids, origInSpan: Int32Array.from([0, 2, 3, 5, -1]) };
  assert.deepEqual(arr(lightvlmPolicy(red).rows), [2, 3, 4]);
  assert.deepEqual(arr(lightvlmPolicy({ ...red, debias: 'row' }).rows), [1, 3, 4]);
  // two parts 1x2 + 1x2 in one span (InternVL tiles): rows {0,1} and {2,3}; a zero-mean row is left as is
  close(rowDebiasedScores(Float32Array.from([0.2, 0.6, 0, 0]), [{ start: 0, length: 4, origLength: 4 }], [{ h: 1, w: 2 }, { h: 1, w: 2 }], Int32Array.from([0, 1, 2, 3])), [0.5, 1.5, 0, 0]);
});

test('resolvePrefill: lightvlm defaults to the spec schedule with the novelty score; debiased rules keep the shifted one', () => {
  assert.deepEqual(layers(resolvePrefill({ method: 'lightvlm', keep: 0.1 }, 8).stages), [1, 2, 4]);
  assert.deepEqual(layers(resolvePrefill({ method: 'random', keep: 0.1 }, 8).stages), [1, 2, 4]);
  assert.deepEqual(layers(resolvePrefill({ method: 'lightvlm', keep: 0.1, score: 'debiased' }, 8).stages), [2, 3, 5]);
  assert.deepEqual(layers(resolvePrefill({ method: 'lightvlm', keep: 0.1, score: 'attention' }, 8).stages), [1, 2, 4]);
  // the spec's schedule stays reachable through explicit stages
  const spec = defaultLightVLMSchedule(8, 0.1);
  assert.deepEqual(resolvePrefill({ method: 'lightvlm', stages: spec }, 8).stages, spec);
  // 2x2 grid (original image tokens 0..3), last row is text; P = roundHalfEven(4 · 0.5) = 2
  const keepOf = (score: 'attention' | 'debiased' | 'debiased-all', scores: number[], origInSpan: number[]) =>
    arr(resolvePrefill({ method: 'lightvlm', keep: 0.5, score, mergeMode: 'drop' }, 8).policy!({
      keep: 0.5, spans: [{ start: 0, length: scores.length - 1, origLength: 4 }], scores: Float32Array.from(scores), hidden: new Float32Array(scores.length),
      dim: 1, rng: mulberry32(0), grids: [{ h: 2, w: 2 }], origInSpan: Int32Array.from(origInSpan) }).rows);
  // whole span (first stage): rows {.1,.3} mean .2 -> .5 1.5; {.4,.4} -> 1 1
  const whole = [[0.1, 0.3, 0.4, 0.4, 0.05], [0, 1, 2, 3, -1]];
  assert.deepEqual(keepOf('attention', whole[0], whole[1]), [2, 3, 4]);
  assert.deepEqual(keepOf('debiased', whole[0], whole[1]), [1, 2, 4]); // 1.5 (1), then 1 (2) before 1 (3)
  assert.deepEqual(keepOf('debiased-all', whole[0], whole[1]), [1, 2, 4]);
  // reduced span (a later stage; 3 of 4 left): rows {.3,.35} mean .325 -> .923 1.077; {.2} -> 1
  const later = [[0.3, 0.35, 0.2, 0.05], [0, 1, 2, -1]];
  assert.deepEqual(keepOf('attention', later[0], later[1]), [0, 1, 3]);
  assert.deepEqual(keepOf('debiased', later[0], later[1]), [0, 1, 3]); // plain attention after the first stage
  assert.deepEqual(keepOf('debiased-all', later[0], later[1]), [1, 2, 3]);
  assert.throws(() => resolvePrefill({ method: 'lightvlm', keep: 0.5, score: 'lse' as 'attention' }, 8), LightVLMError);
});

test('random policy is reproducible with a seed and has the right count', () => {
  const n = 200;
  const input = (seed: number): Case => ({
    keep: 0.35, spans: [{ start: 3, length: n, origLength: n }], scores: new Float32Array(n + 5),
    hidden: new Float32Array((n + 5) * 2), dim: 2, mode: 'drop', rng: mulberry32(seed),
  });
  const a = randomPolicy(input(42)), b = randomPolicy(input(42)), c = randomPolicy(input(43));
  assert.deepEqual(arr(a.rows), arr(b.rows));
  assert.notDeepEqual(arr(a.rows), arr(c.rows));
  assert.equal(a.rows.length, 70 + 5); // 200 · 0.35 = 70 image + 5 text
  for (const t of [0, 1, 2, 203, 204]) assert.ok(arr(a.rows).includes(t));
  assert.deepEqual(arr(a.rows), arr(a.rows).sort((x, y) => x - y));
});

test('bad merge inputs throw LightVLMError', () => {
  assert.throws(() => lightvlmPolicy(base7('drop', { dim: 3 })), LightVLMError);
  assert.throws(() => lightvlmPolicy(base7('drop', { spans: [{ start: 4, length: 5, origLength: 5 }] })), LightVLMError);
  assert.throws(() => lightvlmPolicy(base7('drop', { keep: 0 })), LightVLMError);
});

test('fastervlm and visionzip selection', () => {
  assert.deepEqual(arr(fastervlmSelect(new Float32Array([0.1, 0.9, 0.3, 0.9, 0.2, 0]), 0.5)), [1, 2, 3]);
  assert.deepEqual(splitVisionZipBudget(64), { nDominant: 54, nContext: 10 });
  assert.deepEqual(splitVisionZipBudget(128), { nDominant: 108, nContext: 20 });
  assert.deepEqual(splitVisionZipBudget(192), { nDominant: 162, nContext: 30 });
  assert.deepEqual(splitVisionZipBudget(1), { nDominant: 1, nContext: 0 });
  const cls = new Float32Array([0.5, 0.1, 0.2, 0.9, 0.05, 0.15]);
  const feats = new Float32Array([7, 7, 1, 0, 2, 0.1, 8, 8, 0, 1, 0.1, 3]);
  // dominant: 3, 0. rest = [1, 2, 4, 5], step 2 → targets 1, 4; 2 joins 1, 5 joins 4
  const vz = visionzipSelect(cls, feats, 2, 2, 2);
  assert.deepEqual(arr(vz.dominant), [0, 3]);
  assert.deepEqual(arr(vz.contextualTargets), [1, 4]);
  close(vz.contextual, [3, 0.1, 0.1, 4]);
  const all = visionzipSelect(cls, feats, 2, 2, 4); // every remaining token is a target: unchanged
  close(all.contextual, [1, 0, 2, 0.1, 0, 1, 0.1, 3]);
  assert.equal(visionzipSelect(cls, feats, 2, 3, 0).contextual.length, 0); // FasterVLM special case
});

test('fourier low-pass: grid rule, constants, identity, means', () => {
  assert.deepEqual(fourierGrid(24, 24, 0.35), { gh: 14, gw: 14 });
  assert.deepEqual(fourierGrid(24, 24, 0.03), { gh: 4, gw: 4 });
  assert.deepEqual(fourierGrid(3, 5, 1), { gh: 3, gw: 5 });
  const gh = 6, gw = 10, D = 3;
  const cst = new Float32Array(gh * gw * D);
  for (let i = 0; i < gh * gw; i++) cst.set([1.5, -2, 0.25], i * D);
  const r = fourierLowPass(cst, gh, gw, D, 0.3); // K = 18 → 3 x 6
  assert.deepEqual([r.gh, r.gw], [3, 6]);
  for (let i = 0; i < r.gh * r.gw; i++) close(r.features.subarray(i * D, i * D + D), [1.5, -2, 0.25]);
  const rng = mulberry32(9);
  const x = Float32Array.from({ length: gh * gw * D }, () => rng() * 2 - 1);
  const id = fourierLowPass(x, gh, gw, D, 1);
  assert.deepEqual([id.gh, id.gw], [gh, gw]);
  close(id.features, arr(x), 1e-5);
  // 2x2 → 1x1 is the mean of the four rows
  close(fourierLowPass(new Float32Array([1, 2, 3, 4]), 2, 2, 1, 0.25).features, [2.5]);
});

test('component A keeps text and final image rows', () => {
  const orig = new Int32Array([0, 1, 3, 4, 7, 8, 9]); // a stage-1 layer's rows; image = orig 1..7
  assert.deepEqual(arr(staleImageRows(orig, (o) => o >= 1 && o <= 7, new Set([3, 7]))), [0, 2, 4, 5, 6]);
});

test('budgetEvict keeps protected + sinks + window + top-scored generated rows', () => {
  const acc = new Float32Array(20).fill(0.1);
  acc[0] = 100; acc[5] = 0; acc[19] = 0; // protected / sink / window scores are irrelevant
  acc[10] = 0.9; acc[8] = 0.5; acc[12] = 0.5; acc[15] = 0.5; // ties → 8, 12
  const k = budgetEvict({ length: 20, protectedRows: 5, acc, sinks: 2, window: 3, budget: 8 });
  assert.deepEqual(arr(k), [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 17, 18, 19]);
  assert.equal(budgetEvict({ length: 13, protectedRows: 5, acc, sinks: 2, window: 3, budget: 8 }).length, 13);
  assert.throws(() => budgetEvict({ length: 20, protectedRows: 5, acc, sinks: 4, window: 6, budget: 8 }), /budget >= 10/);
});

test('streamingllm, h2o, snapkv', () => {
  assert.deepEqual(arr(streamingKeep({ length: 10, sinks: 2, window: 3 })), [0, 1, 7, 8, 9]);
  assert.deepEqual(arr(streamingKeep({ length: 5, sinks: 2, window: 3 })), [0, 1, 2, 3, 4]);
  const acc = new Float32Array([0.3, 0.1, 0.5, 0.2, 0.5, 0, 9, 9]);
  assert.deepEqual(arr(h2oKeep({ length: 8, acc, heavy: 2, recent: 2 })), [2, 4, 6, 7]);
  assert.equal(h2oKeep({ length: 4, acc, heavy: 2, recent: 2 }).length, 4);
  close(avgPool1dSame([1, 1, 1], 3), [2 / 3, 1, 2 / 3], 1e-12); // zero padding counted
  // prefix scores [0,0,0,10,0,0,1] pooled (k=5): [0, 2, 2, 2, 2.2, 2.2, 0.2] → top 3: 4, 5, 1
  const scores = new Float32Array([0, 0, 0, 10, 0, 0, 1, 50, 50, 50]);
  assert.deepEqual(arr(snapkvKeep({ length: 10, scores, window: 3, capacity: 6 })), [1, 4, 5, 7, 8, 9]);
  assert.equal(snapkvKeep({ length: 5, scores, window: 3, capacity: 6 }).length, 5);
  assert.equal(snapkvKeep({ length: 6, scores, window: 3, capacity: 6 }).length, 6);
  assert.throws(() => snapkvKeep({ length: 10, scores, window: 3, capacity: 6, kernel: 4 }), LightVLMError);
});
