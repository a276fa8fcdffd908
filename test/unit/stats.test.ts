// Statistics behind `eval`'s uncertainty columns, checked on hand-computed cases: Wilson intervals
// for known k/n, exact McNemar p-values for known discordant counts (with the binomial sums
// written out), the paired comparison and retention bootstrap, the half split, --compare-to
// resolution, and the chart's error bars.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapRetention, halfSplit, mcnemarExact, pairedCompare, wilson } from '../../src/eval/stats.js';
import { comparisons, resolveReference, type SettingRef } from '../../src/eval/compare.js';
import type { AnswerRecord } from '../../src/eval/score.js';
import { lineChart } from '../../src/report/svg.js';

const close = (a: number, b: number, tol = 1e-9): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('wilson: known intervals', () => {
  // 5/10: centre (5 + z²/2)/(10 + z²) = 0.5, half = z/(10+z²)·sqrt(2.5 + z²/4) → 0.23659…0.76341
  let c = wilson(5, 10);
  close(c.lo, 0.236593090512564); close(c.hi, 0.7634069094874361);
  // 0/10 and 10/10 reach the bounds exactly; the other side is z²/(n+z²) = 0.27753…
  c = wilson(0, 10);
  assert.equal(c.lo, 0); close(c.hi, 0.27753279986288926);
  c = wilson(10, 10);
  close(c.lo, 0.7224672001371109); assert.equal(c.hi, 1);
  // 81/263 (Wikipedia's worked example in spirit; value from the closed form)
  c = wilson(81, 263);
  close(c.lo, 0.2552885198782742); close(c.hi, 0.36620957698280004);
  // n = 0: no information
  assert.deepEqual(wilson(0, 0), { lo: 0, hi: 1 });
  assert.throws(() => wilson(3, 2), RangeError);
});

test('mcnemar exact: known discordant counts', () => {
  // b=3, c=12: n=15, P(X≤3) = (C(15,0)+C(15,1)+C(15,2)+C(15,3))/2^15 = (1+15+105+455)/32768 = 576/32768
  close(mcnemarExact(3, 12), 2 * 576 / 32768, 1e-12);
  close(mcnemarExact(12, 3), 2 * 576 / 32768, 1e-12); // symmetric
  close(mcnemarExact(0, 5), 2 / 32, 1e-12);           // 2·(1/2^5)
  close(mcnemarExact(1, 9), 2 * 11 / 1024, 1e-12);    // 2·(1+10)/2^10
  assert.equal(mcnemarExact(5, 5), 1);                 // 2·P(X≤5 | n=10) > 1 → capped
  assert.equal(mcnemarExact(0, 0), 1);                 // no discordant pairs: no evidence
  assert.equal(mcnemarExact(0, 1), 1);
});

test('paired comparison counts only shared questions', () => {
  const mine = new Map([['1', true], ['2', true], ['3', false], ['4', false], ['5', true]]);
  const ref = new Map([['1', false], ['2', true], ['3', true], ['4', false], ['6', true]]);
  const r = pairedCompare(mine, ref);
  assert.deepEqual(r, { n: 4, wins: 1, losses: 1, p: 1 });
});

test('retention bootstrap: deterministic, brackets the point estimate, degenerate cases', () => {
  const ref = Array.from({ length: 200 }, (_, i) => i % 2 === 0);      // 100 right
  const mine = ref.map((r, i) => r && i % 10 !== 0);                    // 80 right, all inside ref's
  const a = bootstrapRetention(mine, ref)!;
  assert.deepEqual(bootstrapRetention(mine, ref), a);
  assert.ok(a.lo < 0.8 && 0.8 < a.hi && a.hi <= 1, JSON.stringify(a)); // mine ⊂ ref: ratio never above 1
  assert.deepEqual(bootstrapRetention(ref, ref), { lo: 1, hi: 1 });
  assert.equal(bootstrapRetention(mine, ref.map(() => false)), null);
  assert.equal(bootstrapRetention([], []), null);
});

test('half split: disjoint halves, independent of file order', () => {
  const qs = Array.from({ length: 101 }, (_, i) => ({ id: String(i) }));
  const A = halfSplit(qs, 'A'), B = halfSplit(qs, 'B');
  assert.equal(A.length, 51); assert.equal(B.length, 50);
  const ids = new Set([...A, ...B].map((q) => q.id));
  assert.equal(ids.size, 101);
  const rev = [...qs].reverse();
  assert.deepEqual(halfSplit(rev, 'A').map((q) => q.id).sort(), A.map((q) => q.id).sort());
  // not simply the first half of the file
  assert.notDeepEqual(A.map((q) => q.id), qs.slice(0, 51).map((q) => q.id));
});

test('compare-to: labels, method names matched by keep, self and missing', () => {
  const s = (label: string, method: string, keep: number | null): SettingRef => ({ label, method, keep, kv: null });
  const settings = [s('none', 'none', null), s('lightvlm:0.1', 'lightvlm', 0.1), s('lightvlm:0.35', 'lightvlm', 0.35), s('fastv:0.1', 'fastv', 0.1), s('fastv:0.5', 'fastv', 0.5)];
  assert.equal(resolveReference('none', settings[3]!, settings)?.label, 'none');
  assert.equal(resolveReference('lightvlm', settings[3]!, settings)?.label, 'lightvlm:0.1');
  assert.equal(resolveReference('lightvlm', settings[4]!, settings), null);           // no lightvlm at 0.5
  assert.equal(resolveReference('lightvlm', settings[1]!, settings), null);           // itself
  assert.equal(resolveReference('fastv:0.5', settings[1]!, settings)?.label, 'fastv:0.5');

  const rec = (label: string, id: string, kind: string, correct: boolean) => ({ label, id, kind, correct }) as AnswerRecord;
  const answers = [
    rec('none', '1', 'color', true), rec('none', '2', 'color', true), rec('none', '3', 'count', false),
    rec('fastv:0.1', '1', 'color', false), rec('fastv:0.1', '2', 'color', true), rec('fastv:0.1', '3', 'count', true),
  ];
  const [[noneRow], [fastRow]] = comparisons(answers, [settings[0]!, settings[3]!], ['none']);
  assert.equal(noneRow, null);
  assert.deepEqual({ ...fastRow!, byKind: undefined }, { to: 'none', ref: 'none', n: 3, wins: 1, losses: 1, p: 1, byKind: undefined });
  assert.deepEqual(fastRow!.byKind.color, { n: 2, wins: 0, losses: 1, p: 1 });
  assert.deepEqual(fastRow!.byKind.count, { n: 1, wins: 1, losses: 0, p: 1 });
});

test('chart: error bars drawn for points with an interval only', () => {
  const svg = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', yDomain: [0, 1], series: [{ name: 'a', points: [{ x: 0.1, y: 0.5, lo: 0.4, hi: 0.6 }, { x: 0.3, y: 0.5 }] }] });
  assert.equal(svg.match(/class="error-bar"/g)?.length, 1);
});
