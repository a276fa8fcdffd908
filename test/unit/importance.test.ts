// Importance score rules (merge/importance.ts) on hand-computed cases: novelty is the distance of
// each image row from its span's mean, text rows are never scored, and stageScores applies each
// rule at the stages it is meant for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noveltyScores, stageScores } from '../../src/merge/importance.js';
import { lightvlmPolicy } from '../../src/merge/policies.js';

test('novelty: distance from the span mean, per span, text rows 0', () => {
  // rows (D = 2): text [9,9] | span A: [0,0] [0,0] [3,0] | text [7,7] | span B: [1,1] [1,3]
  const hidden = Float32Array.from([9, 9, 0, 0, 0, 0, 3, 0, 7, 7, 1, 1, 1, 3]);
  const spans = [{ start: 1, length: 3, origLength: 3 }, { start: 5, length: 2, origLength: 2 }];
  // span A mean [1,0]: distances 1, 1, 2; span B mean [1,2]: distances 1, 1
  assert.deepEqual(Array.from(noveltyScores(hidden, 2, spans, 7)), [0, 1, 1, 2, 0, 1, 1]);
});

test('novelty keeps the outlier rows where last-token attention would keep the background', () => {
  // 8 background rows that are near-duplicates and 2 distinct "object" rows; attention favours the
  // last background rows (as layer-0 attention favours the rows nearest the question).
  const D = 3, T = 11; // row 0 is text
  const hidden = new Float32Array(T * D);
  for (let i = 1; i < T; i++) hidden.set([1 + 0.01 * i, 1, 1], i * D);
  hidden.set([5, -2, 0], 3 * D);
  hidden.set([-3, 4, 1], 6 * D);
  const scores = Float32Array.from({ length: T }, (_, i) => i / 100);
  const spans = [{ start: 1, length: 10, origLength: 10 }];
  const pick = (rule: 'novelty' | 'attention') =>
    Array.from(lightvlmPolicy({ keep: 0.2, spans, scores, hidden, dim: D }, { mode: 'drop', ...stageScores(rule, { scores, hidden, dim: D, spans }) }).rows);
  assert.deepEqual(pick('novelty'), [0, 3, 6]);
  assert.deepEqual(pick('attention'), [0, 9, 10]);
});

test('stageScores: each rule at the stages it applies to', () => {
  const hidden = Float32Array.from([0, 0, 2, 0]);
  const scores = Float32Array.from([0.3, 0.7]);
  const whole = [{ start: 0, length: 2, origLength: 2 }];
  const later = [{ start: 0, length: 2, origLength: 4 }]; // an earlier stage already shrank the span
  assert.deepEqual(Array.from(stageScores('novelty', { scores, hidden, dim: 2, spans: whole }).scores), [1, 1]);
  assert.equal(stageScores('novelty', { scores, hidden, dim: 2, spans: later }).scores, scores);
  assert.equal(stageScores('debiased', { scores, hidden, dim: 2, spans: whole }).debias, 'row');
  assert.equal(stageScores('debiased', { scores, hidden, dim: 2, spans: later }).debias, 'none');
  assert.equal(stageScores('debiased-all', { scores, hidden, dim: 2, spans: later }).debias, 'row');
  assert.deepEqual(stageScores('attention', { scores, hidden, dim: 2, spans: whole }), { scores, debias: 'none' });
});
