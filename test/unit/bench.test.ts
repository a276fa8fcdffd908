// `lightvlm bench` without a model: statistics and pairwise speedups on synthetic timings, the
// interleaved loop and the command driven by a fake VLM, method/KV spec parsing, tables and the SVG.
import { capture } from '../helpers.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LightVLMError } from '../../src/errors.js';
import type { GenerateOptions, GenerateResult, GenerateStats, VLM, VLMInput } from '../../src/engine/types.js';
import { max, median, min, pairwiseRatioMedian, pairwiseRatios, percentile, summarize } from '../../src/bench/stats.js';
import { type BenchSample, buildBenchRows, prefillFlop, runBench, stagesOf } from '../../src/bench/run.js';
import { buildMatMulModel, measureMatmul, measureMemory } from '../../src/bench/machine.js';
import { expandCombos, parseKvSpec, parseMethodSpec, toAcceleration } from '../../src/engine/specs.js';
import { renderTable } from '../../src/report/table.js';
import { lineChart, niceTicks } from '../../src/report/svg.js';
import { benchCommand } from '../../src/cli/bench.js';

test('stats: median, min, max, p10 and pairwise ratio medians', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  assert.equal(min([3, NaN, 1]), 1);
  assert.equal(max([3, NaN, 1]), 3);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 10), 2);
  assert.equal(percentile([10, 20], 10), 11);
  assert.deepEqual(summarize([3, 1, 2]), { median: 2, min: 1, max: 3, p10: 1.2, n: 3 });
  // Pair i with i: the drift (×2 in round 3) cancels, the ratio of medians would not.
  const base = [100, 100, 200, 100];
  const fast = [50, 50, 100, 25];
  assert.deepEqual(pairwiseRatios(base, fast), [2, 2, 2, 4]);
  assert.equal(pairwiseRatioMedian(base, fast), 2);
  assert.equal(pairwiseRatioMedian([100, NaN, 90], [50, 10, 0]), 2); // missing and zero pairs are dropped
  assert.ok(Number.isNaN(pairwiseRatioMedian([], [])));
});

const stats = (o: Partial<GenerateStats>): GenerateStats => ({
  promptTokens: 600, imageTokens: 576, keptImageTokens: 576, imageTokensPerLayer: [576, 576, 576, 576], visionMs: 100, prefillMs: 1000, ttftMs: 1100,
  decodeTokens: 31, decodeMs: 1000, decodeTokensPerSecond: 31, totalMs: 2100, peakRssMb: 3000, cacheEntriesPerLayer: [], cacheBytes: 0, ...o,
});

test('bench rows: medians, stages, pairwise speedups against none, achieved GFLOP/s', () => {
  const { combos } = expandCombos(['lightvlm:0.25'], [], [], true);
  const samples: BenchSample[] = [];
  const drift = [1, 1.5, 1, 3];
  drift.forEach((d, rep) => {
    samples.push({ combo: 0, newTokens: 8, rep, stats: stats({ prefillMs: 1000 * d, totalMs: 2000 * d, ttftMs: 1100 * d }) });
    samples.push({ combo: 1, newTokens: 8, rep, stats: stats({ keptImageTokens: 144, imageTokensPerLayer: [576, 288, 144, 144], prefillMs: 400 * d, totalMs: 1600 * d, ttftMs: 500 * d }) });
  });
  const rows = buildBenchRows(combos, [8], samples, { lmParams: 1e9 }, { matmulGflops: 1000, memoryGBps: 100 });
  assert.equal(rows.length, 2);
  const [none, lv] = rows;
  assert.equal(none!.speedupPrefill, 1);
  assert.equal(lv!.speedupPrefill, 2.5);
  assert.equal(lv!.speedupTotal, 1.25);
  assert.equal(lv!.prefillMs, 500); // median of 400, 600, 400, 1200
  assert.deepEqual([lv!.ranges.prefillMs.min, lv!.ranges.prefillMs.max], [400, 1200]);
  assert.deepEqual(lv!.keptPerStage, [{ fromLayer: 0, tokens: 576 }, { fromLayer: 1, tokens: 288 }, { fromLayer: 2, tokens: 144 }]);
  assert.equal(lv!.keptImageTokens, 144);
  // 2 × 1e9 × (mean 288 image + 24 text) FLOP over the prefill time.
  assert.equal(prefillFlop({ lmParams: 1e9 }, samples[1]!.stats), 2e9 * 312);
  // none: 1.2e12 FLOP per run over 1, 1.5, 1, 3 s → median of 1200, 800, 1200, 400 GFLOP/s.
  assert.ok(Math.abs(none!.prefillGflops - 1000) < 1e-9);
  assert.ok(Math.abs(none!.prefillFractionOfPeak! - none!.prefillGflops / 1000) < 1e-12);
  assert.equal(none!.decodeGBps, 31 * 4); // 4 GB of fp32 weights per token × 31 tok/s
  assert.equal(none!.decodeFractionOfBandwidth, 1.24);
  assert.deepEqual(stagesOf([]), []);
});

test('bench rows: no baseline gives null speedups; an interrupted round still pairs by round', () => {
  const combos = [{ prefill: { method: 'fastv' as const, keep: 0.5 } }];
  const rows = buildBenchRows(combos, [4], [{ combo: 0, newTokens: 4, rep: 0, stats: stats({}) }], { lmParams: 1 });
  assert.equal(rows[0]!.speedupPrefill, null);
  assert.equal(rows[0]!.prefillFractionOfPeak, null);
  const { combos: c2 } = expandCombos(['fastv:0.5'], [], [], true);
  const partial: BenchSample[] = [
    { combo: 0, newTokens: 4, rep: 0, stats: stats({ prefillMs: 100 }) }, { combo: 1, newTokens: 4, rep: 0, stats: stats({ prefillMs: 50 }) },
    { combo: 0, newTokens: 4, rep: 1, stats: stats({ prefillMs: 900 }) }, // round 1 of fastv never ran
  ];
  assert.equal(buildBenchRows(c2, [4], partial, { lmParams: 1 })[1]!.speedupPrefill, 2);
});

function fakeVLM() {
  const calls: { image: unknown; method: string; keep?: number; kv?: string; min?: number; max?: number }[] = [];
  const vlm: VLM = {
    info: { modelType: 'fake', layers: 4, hiddenSize: 8, heads: 2, kvHeads: 1, headDim: 4, intermediateSize: 16, vocabSize: 10, maxPositions: 100, lmParams: 1e6, visionParams: 10 },
    async prepareImage() { throw new Error('bench must time the vision encoder every run'); },
    async generate(input: VLMInput, opts?: GenerateOptions): Promise<GenerateResult> {
      const p = opts?.acceleration?.prefill;
      const call: (typeof calls)[number] = { image: input.image, method: p?.method ?? '?' };
      if (p?.keep !== undefined) call.keep = p.keep;
      if (opts?.acceleration?.decode) call.kv = opts.acceleration.decode.method;
      if (opts?.minNewTokens !== undefined) call.min = opts.minNewTokens;
      if (opts?.maxNewTokens !== undefined) call.max = opts.maxNewTokens;
      calls.push(call);
      const keep = p?.keep ?? 1;
      return { text: 'x', tokenIds: [], kept: [], grids: [], stats: stats({ keptImageTokens: Math.round(576 * keep), imageTokensPerLayer: [576, 576, Math.round(576 * keep), Math.round(576 * keep)], prefillMs: 1000 * keep, totalMs: 1000 * keep + 500 }) };
    },
    stream() { throw new Error('not used'); },
    async dispose() {},
  };
  return { vlm, calls };
}

test('bench loop: warm-up, then methods interleaved, exact token counts', async () => {
  const { vlm, calls } = fakeVLM();
  const { combos } = expandCombos(['none', 'lightvlm:0.5'], [], ['none', 'h2o:64'], true);
  assert.equal(combos.length, 4);
  const { samples } = await runBench(vlm, { image: 'img.png', prompt: 'p', combos, newTokens: [4, 8], repeat: 2, warmup: 1 });
  assert.equal(calls.length, 3 * 2 * 4);
  assert.equal(samples.length, 2 * 2 * 4);
  assert.deepEqual(calls.slice(0, 4).map((c) => `${c.method}/${c.kv}`), ['none/none', 'none/h2o', 'lightvlm/none', 'lightvlm/h2o']);
  assert.ok(calls.every((c) => c.image === 'img.png' && c.min === c.max));
  assert.deepEqual(calls.slice(0, 8).map((c) => c.max), [4, 4, 4, 4, 8, 8, 8, 8]);
});

test('specs: NAME[:KEEP] and NAME[:BUDGET] parsing and errors', () => {
  assert.deepEqual(parseMethodSpec('lightvlm:0.35'), { method: 'lightvlm', keep: 0.35 });
  assert.deepEqual(parseMethodSpec('none'), { method: 'none' });
  assert.deepEqual(parseMethodSpec('FastV'), { method: 'fastv' });
  assert.deepEqual(parseKvSpec('h2o:512'), { method: 'h2o', budget: 512 });
  assert.deepEqual(parseKvSpec('snapkv'), { method: 'snapkv' });
  const bad = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof LightVLMError && re.test(e.message));
  bad(() => parseMethodSpec('tome:0.5'), /unknown method 'tome'.*none, lightvlm, random, fastv, pdrop, fastervlm, visionzip, fourier/);
  bad(() => parseMethodSpec('lightvlm:0'), /keep must be a fraction in \(0, 1\]/);
  bad(() => parseMethodSpec('lightvlm:1.5'), /fraction/);
  bad(() => parseMethodSpec('lightvlm:abc'), /got 'abc'/);
  bad(() => parseMethodSpec('lightvlm:'), /fraction/);
  bad(() => parseMethodSpec('lightvlm:0.3:2'), /one colon/);
  bad(() => parseMethodSpec('none:0.5'), /'none' keeps every image token/);
  bad(() => parseKvSpec('lru'), /unknown KV policy 'lru'.*none, stale, lightvlm, streamingllm, h2o, snapkv/);
  bad(() => parseKvSpec('h2o:0'), /positive whole number/);
  bad(() => parseKvSpec('h2o:12.5'), /positive whole number/);
  bad(() => parseKvSpec('none:64'), /takes no budget/);
  bad(() => expandCombos(['lightvlm'], ['2'], [], false), /--keep 2/);
  // --keep crosses methods without KEEP; none is added once; duplicates collapse.
  const { combos, added } = expandCombos(['lightvlm', 'fastv:0.1', 'lightvlm:0.1'], ['0.1', '0.35'], [], true);
  assert.equal(added, true);
  assert.deepEqual(combos.map((c) => `${c.prefill.method}:${c.prefill.keep ?? '-'}`), ['none:-', 'lightvlm:0.1', 'lightvlm:0.35', 'fastv:0.1']);
  assert.deepEqual(toAcceleration({ prefill: { method: 'lightvlm', keep: 0.35 }, kv: { method: 'h2o', budget: 512 } }), { prefill: { method: 'lightvlm', keep: 0.35 }, decode: { method: 'h2o', budget: 512 } });
  assert.deepEqual(toAcceleration({ prefill: { method: 'none' } }), { prefill: { method: 'none' } });
});

/** Minimal XML well-formedness: every tag closes in order, one root <svg>, attributes quoted. */
function checkXml(xml: string): string[] {
  const stack: string[] = [];
  const tags: string[] = [];
  const body = xml.replace(/<text[^>]*>[^<]*<\/text>/g, (t) => { assert.doesNotMatch(t.replace(/^<text[^>]*>|<\/text>$/g, ''), /[<>]|&(?!(amp|lt|gt|quot|apos);)/); return '<text/>'; });
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (close) assert.equal(stack.pop(), name, `closing </${name}>`);
    else { tags.push(name!); if (!self) stack.push(name!); }
  }
  assert.equal(stack.length, 0, `unclosed: ${stack.join(',')}`);
  assert.equal(body.replace(/<[^>]*>/g, '').trim(), '', 'stray text or malformed tag');
  assert.equal(tags[0], 'svg');
  return tags;
}

test('svg: well-formed, one path per series, escaped names', () => {
  const svg = lineChart({
    title: 'Accuracy <vs> kept & "tokens"', xLabel: 'kept fraction', yLabel: 'accuracy',
    series: [
      { name: 'none', points: [{ x: 1, y: 0.9 }] },
      { name: 'lightvlm', points: [{ x: 0.35, y: 0.85 }, { x: 0.1, y: 0.7 }, { x: 0.03, y: 0.5 }] },
      { name: 'fastv <k=2>', points: [{ x: 0.1, y: 0.4 }, { x: NaN, y: 1 }] },
    ],
  });
  const tags = checkXml(svg);
  assert.equal(tags.filter((t) => t === 'path').length, 3);
  assert.equal(tags.filter((t) => t === 'circle').length, 5);
  assert.match(svg, /fastv &lt;k=2&gt;/);
  assert.match(svg, /d="M[\d.]+ [\d.]+ L[\d.]+ [\d.]+ L[\d.]+ [\d.]+"/); // sorted sweep: one M, two L
  checkXml(lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [] }));
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
});

test('table: aligned text and markdown', () => {
  const t = renderTable(['method', 'acc'], [['none', 0.9], ['lightvlm:0.35', 0.875]]);
  const lines = t.trimEnd().split('\n');
  assert.equal(lines.length, 4);
  assert.equal(lines[2], 'none           0.900');
  const md = renderTable(['a|b', 'n'], [['x', 1]], { format: 'markdown' });
  assert.equal(md, '| a\\|b | n |\n|:---|---:|\n| x | 1 |\n');
});

test('machine: the MatMul graph runs through ORT and the copy is timed', async () => {
  assert.ok(buildMatMulModel(8).length > 0);
  const mm = await measureMatmul(128, 50);
  assert.ok(mm.best > 0 && mm.best >= mm.median);
  const mem = await measureMemory(8, 20);
  assert.ok(mem.best > 0 && mem.mb === 8);
});

test('bench command: JSON rows with the documented names, errors as messages', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lightvlm-bench-'));
  const cap = capture();
  const io = cap.io;
  const { vlm, calls } = fakeVLM();
  const json = path.join(dir, 'b.json');
  const chart = path.join(dir, 'b.svg');
  const code = await benchCommand(['--model', dir, '--method', 'lightvlm:0.5', '--method', 'fastv:0.25', '--new-tokens', '4', '--repeat', '3', '--skip-machine', '--json', json, '--chart', chart], { loadVLM: async () => vlm, io });
  assert.equal(code, 0, cap.text().err);
  assert.ok(calls[0]!.image instanceof Uint8Array); // the generated default image
  assert.match(cap.text().out, /lightvlm:0\.5/);
  const doc = JSON.parse(fs.readFileSync(json, 'utf8'));
  assert.equal(doc.machine, null);
  assert.equal(doc.rows.length, 3);
  for (const k of ['method', 'keep', 'newTokens', 'imageTokens', 'keptImageTokens', 'visionMs', 'prefillMs', 'ttftMs', 'decodeTokensPerSecond', 'totalMs', 'peakRssMb', 'speedupPrefill', 'speedupTotal']) assert.ok(k in doc.rows[1], k);
  assert.equal(doc.rows[1].speedupPrefill, 2);
  assert.equal(doc.rows[2].speedupPrefill, 4);
  assert.equal(checkXml(fs.readFileSync(chart, 'utf8')).filter((t) => t === 'path').length, 3);

  for (const [args, re] of [[['--model', dir, '--repeat', 'x'], /--repeat must be/], [['--model', dir, '--image', path.join(dir, 'nope.jpg')], /--image .* is not a file/], [['--model', dir, '--kv', 'h3o'], /unknown KV policy/]] as const) {
    cap.reset();
    assert.equal(await benchCommand([...args], { loadVLM: async () => vlm, io }), 2);
    assert.match(cap.text().err, re);
  }
});

test('bench loop: cheap warm-up with --warmup-tokens, then the measured counts', async () => {
  const { vlm, calls } = fakeVLM();
  const { combos } = expandCombos(['none', 'lightvlm:0.5/lightvlm'], [], [], true);
  const { samples } = await runBench(vlm, { image: 'img.png', prompt: 'p', combos, newTokens: [64, 128], repeat: 1, warmup: 1, warmupTokens: 2 });
  assert.deepEqual(calls.map((c) => c.max), [2, 2, 64, 64, 128, 128]);
  assert.deepEqual(calls.map((c) => `${c.method}/${c.kv}`).slice(0, 2), ['none/undefined', 'lightvlm/lightvlm']);
  assert.equal(samples.length, 4);
});
