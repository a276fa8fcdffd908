// Pre-LM position conventions (merge/prelmPlan.ts): 'renumber' gives the shorter prompt
// contiguous ids, 'original' keeps each kept patch's own id (and the text after the image keeps its
// ids too), so the LM sees the same geometry as without pruning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { preLmReducer } from '../../src/merge/prelmPlan.js';
import type { LmPrompt } from '../../src/processing/lmPrompt.js';

test('pre-LM positions: renumber vs original', () => {
  // 2 text rows, a 2x2 image (4 rows, D = 1), 2 text rows; [CLS] attention keeps patches 1 and 3.
  const prompt: LmPrompt = {
    ids: [5, 6, 9, 9, 9, 9, 7, 8],
    features: Float32Array.from([10, 11, 12, 13]),
    clsAttn: Float32Array.from([0.1, 0.4, 0.2, 0.3]),
    grids: [{ h: 2, w: 2 }],
    pos: [Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7])],
    spans: [{ start: 2, length: 4, origLength: 4 }],
    visionMs: 0,
  };
  const r = preLmReducer('fastervlm', 0.5, 'renumber')(prompt);
  assert.deepEqual(r.ids, [5, 6, 9, 9, 7, 8]);
  assert.deepEqual(Array.from(r.features), [11, 13]);
  assert.deepEqual(Array.from(r.pos[0]!), [0, 1, 2, 3, 4, 5]);
  const o = preLmReducer('fastervlm', 0.5, 'original')(prompt);
  assert.deepEqual(Array.from(o.features), [11, 13]);
  assert.deepEqual(Array.from(o.pos[0]!), [0, 1, 3, 5, 6, 7]);
  assert.deepEqual(o.spans, [{ start: 2, length: 2, origLength: 2 }]);
  assert.deepEqual(Array.from(preLmReducer('fastervlm', 0.5)(prompt).pos[0]!), [0, 1, 2, 3, 4, 5]); // default: spec
});
