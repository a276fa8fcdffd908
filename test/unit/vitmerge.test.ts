// vitMerge's pure parts: the §3.9 merge rule, unit ranking, schedules, the CLI spec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyMerge, leastAttended, mergeLayers, TokenTrack, unitsAfter } from '../../src/vitmerge/policy.js';
import { parseVitMergeSpec, resolveVitMerge, vitMergeLabel } from '../../src/vitmerge/options.js';
import { comboLabel, expandCombos, toAcceleration } from '../../src/engine/specs.js';

const units = (...rows: number[][]) => rows.map((r) => Int32Array.from(r));

test('the r+1 least-attended units merge into the (r+1)-th with weights r+1 … 1', () => {
  // 5 rows of D=2; rows 1..4 are units, row 0 ([CLS]) is not
  const h = Float32Array.from([9, 9, 1, 0, 2, 0, 3, 0, 4, 40]);
  const us = units([1], [2], [3], [4]);
  const scores = Float32Array.from([1, 0.3, 0.1, 0.2, 0.9]);
  const chosen = leastAttended(scores, us, 2); // row 2 (0.1), row 3 (0.2), row 1 (0.3)
  assert.deepEqual(chosen, [1, 2, 0]);
  const m = applyMerge(h, 2, us, chosen);
  // target row 1 = (3·x2 + 2·x3 + 1·x1) / 6 = (3·2 + 2·3 + 1) / 6
  assert.deepEqual(Array.from(m.kept), [0, 1, 4]);
  assert.ok(Math.abs(m.hidden[2]! - 13 / 6) < 1e-6);
  assert.equal(m.hidden[3], 0);
  assert.deepEqual(Array.from(m.hidden.subarray(4)), [4, 40]);
  assert.deepEqual(Array.from(m.rowMap), [0, 1, 1, 1, 2]); // dropped rows point at their target
});

test('groups merge member by member and stay whole; ties go to the lower unit', () => {
  const h = Float32Array.from({ length: 8 }, (_, i) => i); // 8 rows, D=1
  const us = units([0, 1], [2, 3], [4, 5], [6, 7]);
  const chosen = leastAttended(new Float32Array(8), us, 1); // all tied: units 0, 1
  assert.deepEqual(chosen, [0, 1]);
  const m = applyMerge(h, 1, us, chosen);
  assert.deepEqual(Array.from(m.kept), [2, 3, 4, 5, 6, 7]);
  assert.deepEqual(Array.from(m.hidden.subarray(0, 2)), [Math.fround((2 * 0 + 2) / 3), Math.fround((2 * 1 + 3) / 3)]);
  const t = new TokenTrack(8, us);
  t.update(chosen, m);
  assert.deepEqual(t.unitIds, [1, 2, 3]);
  assert.deepEqual(Array.from(t.rowOf), [0, 1, 0, 1, 2, 3, 4, 5]);
  assert.deepEqual(Array.from(t.origOf), [2, 3, 4, 5, 6, 7]);
});

test('schedules: geometric over the merge layers, layers inside the tower', () => {
  assert.deepEqual([0, 1].map((j) => unitsAfter(100, 0.25, j, 2)), [50, 25]);
  assert.equal(unitsAfter(100, 1, 0, 1), 100);
  assert.equal(unitsAfter(3, 0.01, 0, 1), 1);
  assert.deepEqual(mergeLayers({ mode: 'unmerge', layer: 2, keep: 0.5, layers: 3 }, 6), [2, 3, 4]);
  assert.throws(() => mergeLayers({ mode: 'unmerge', layer: 4, keep: 0.5, layers: 2 }, 6), /0\.\.4/);
});

test('--vit-merge specs and library options', () => {
  assert.equal(parseVitMergeSpec('off'), undefined);
  assert.deepEqual(parseVitMergeSpec('reduce:3:0.25:2'), { mode: 'reduce', layer: 3, keep: 0.25, layers: 2 });
  assert.deepEqual(parseVitMergeSpec('unmerge'), { mode: 'unmerge', keep: 0.4, layers: 2 });
  assert.deepEqual(mergeLayers(parseVitMergeSpec('unmerge')!, 24), [4, 5]); // round(24 / 6)
  assert.equal(vitMergeLabel(parseVitMergeSpec('reduce:auto:0.3')), 'reduce:auto:0.3:2');
  assert.throws(() => parseVitMergeSpec('shrink'), /mode 'shrink' is not one of reduce, unmerge/);
  assert.throws(() => parseVitMergeSpec('reduce:1:1.5'), /keep must be a fraction/);
  assert.throws(() => parseVitMergeSpec('reduce:x'), /LAYER 'x' is not a number/);
  assert.throws(() => resolveVitMerge({ layer: -1 }), /layer must be/);
  assert.equal(vitMergeLabel({ mode: 'reduce', layer: 3, keep: 0.25, layers: 2 }), 'reduce:3:0.25:2');
  const { combos } = expandCombos(['lightvlm:0.1'], [], [], true, ['off', 'unmerge:1:0.5:2']);
  assert.deepEqual(combos.map(comboLabel), ['none', 'lightvlm:0.1', 'lightvlm:0.1 vit=unmerge:1:0.5:2']);
  assert.deepEqual(toAcceleration(combos[2]!).vitMerge, { mode: 'unmerge', layer: 1, keep: 0.5, layers: 2 });
});
