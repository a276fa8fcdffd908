// `lightvlm eval` without a model: the dataset reader on crafted bad rows, the scorer, per-kind and
// retention arithmetic, and the eval loop and command driven by a fake VLM with scripted answers.
import { capture } from '../helpers.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LightVLMError } from '../../src/errors.js';
import type { GenerateOptions, GenerateResult, PreparedImage, VLM, VLMInput } from '../../src/engine/types.js';
import { parseQuestions, loadDataset } from '../../src/eval/dataset.js';
import { type AnswerRecord, isCorrect, normalizeAnswer, summarize } from '../../src/eval/score.js';
import { buildEvalReport, runEval } from '../../src/eval/run.js';
import { expandCombos } from '../../src/engine/specs.js';
import { evalCommand } from '../../src/cli/eval.js';
import { wilson } from '../../src/eval/stats.js';

function makeDataset(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lightvlm-eval-'));
  fs.mkdirSync(path.join(dir, 'images'));
  for (const f of ['a.png', 'b.png', 'broken.png']) fs.writeFileSync(path.join(dir, 'images', f), 'not really an image');
  fs.mkdirSync(path.join(dir, 'images', 'folder.png'));
  const lines = [
    JSON.stringify({ id: 1, image: 'images/a.png', question: 'What color is the square?', answer: 'red', kind: 'color' }),
    JSON.stringify({ id: 2, image: 'images/a.png', question: 'How many circles?', answer: 'two', kind: 'count' }),
    '{"id": 3, "image": "images/b.png", "question": "broken json"',                                   // line 3
    JSON.stringify({ id: 4, image: 'images/missing.png', question: 'Q?', answer: 'x' }),              // line 4
    JSON.stringify({ id: 5, image: 'images/b.png', answer: 'yes' }),                                  // line 5: no question
    '',                                                                                                // blank: ignored
    JSON.stringify({ id: 6, image: 'images/b.png', question: 'Is there a circle?', answer: 'yes', kind: 'exists' }),
    JSON.stringify({ id: 6, image: 'images/b.png', question: 'dup', answer: 'no' }),                   // line 8: duplicate id
    JSON.stringify({ id: 7, image: 'images/b.png', question: 'What shape?', answer: ['circle', 'round'] }), // no kind → other
    JSON.stringify({ id: 8, image: 'images/broken.png', question: 'What?', answer: 'x', kind: 'color' }), // fails at run time
    '[1, 2, 3]',                                                                                       // line 11: not an object
    JSON.stringify({ id: 9, image: 'images/folder.png', question: 'Q?', answer: 'x' }),               // line 12: a folder
  ];
  fs.writeFileSync(path.join(dir, 'questions.jsonl'), lines.join('\n') + '\n');
  return dir;
}

test('dataset: bad rows are reported with line numbers and skipped', () => {
  const dir = makeDataset();
  const ds = loadDataset(dir);
  assert.deepEqual(ds.questions.map((q) => q.id), ['1', '2', '6', '7', '8']);
  assert.deepEqual(ds.bad.map((b) => b.line), [3, 4, 5, 8, 11, 12]);
  assert.match(ds.bad[0]!.reason, /invalid JSON/);
  assert.match(ds.bad[1]!.reason, /missing\.png' does not exist/);
  assert.match(ds.bad[2]!.reason, /'question'/);
  assert.match(ds.bad[3]!.reason, /duplicate id 6/);
  assert.match(ds.bad[4]!.reason, /not a JSON object/);
  assert.match(ds.bad[5]!.reason, /is not a file/);
  assert.equal(ds.questions.find((q) => q.id === '7')!.kind, 'other');
  assert.deepEqual(ds.questions.find((q) => q.id === '7')!.answers, ['circle', 'round']);
  // --limit counts valid questions only.
  assert.deepEqual(loadDataset(dir, 2).questions.map((q) => q.id), ['1', '2']);
  assert.throws(() => loadDataset(path.join(dir, 'nope')), (e: unknown) => e instanceof LightVLMError && /does not exist/.test(e.message));
  assert.throws(() => loadDataset(path.join(dir, 'images')), /no questions\.jsonl/);
});

test('dataset: every required field is checked', () => {
  const { questions, bad } = parseQuestions('{"image":"x","question":"q","answer":"a"}\n{"id":1,"image":"","question":"q","answer":""}\n', '/nonexistent');
  assert.equal(questions.length, 0);
  assert.match(bad[0]!.reason, /'id'/);
  assert.match(bad[1]!.reason, /fields 'image', 'answer'/);
});

test('scorer: exact mode strips white space only', () => {
  assert.ok(isCorrect('  purple circle\n', ['purple circle']));
  assert.ok(isCorrect('round', ['circle', 'round']));
  assert.ok(!isCorrect('Purple circle', ['purple circle']));
  assert.ok(!isCorrect('yes.', ['yes']));
  assert.ok(!isCorrect('   ', ['']));                    // empty never scores
});

test('scorer: normalized mode', () => {
  const isCorrectN = (p: string, g: string[]) => isCorrect(p, g, 'normalized');
  assert.equal(normalizeAnswer('  The Red Square.\nmore text'), 'red square');
  assert.equal(normalizeAnswer('Answer: Two'), '2');
  assert.equal(normalizeAnswer('"yes!"'), 'yes');
  assert.equal(normalizeAnswer('t-shirt, 3.5'), 't-shirt 3.5');
  assert.ok(isCorrectN('Yes.', ['yes']));
  assert.ok(isCorrectN('2', ['two']));
  assert.ok(isCorrectN('a purple   circle', ['purple circle']));
  assert.ok(!isCorrectN('purple', ['purple circle']));   // exact match, not containment
  assert.ok(!isCorrectN('', ['']));
});

const rec = (id: string, label: string, kind: string, correct: boolean, kept = 100): AnswerRecord => ({
  id, line: Number(id), kind, image: 'x', question: 'q', answer: ['a'], label, method: label.split(':')[0]!, keep: null, kv: null,
  prediction: correct ? 'a' : 'b', normalized: correct ? 'a' : 'b', correct, imageTokens: 100, keptImageTokens: kept, ms: 1,
});

test('summaries: per-kind accuracy and retention against none on shared questions', () => {
  const answers = [
    rec('1', 'none', 'color', true), rec('2', 'none', 'color', true), rec('3', 'none', 'count', true), rec('4', 'none', 'count', false),
    rec('1', 'fastv:0.1', 'color', true, 10), rec('2', 'fastv:0.1', 'color', false, 10), rec('3', 'fastv:0.1', 'count', false, 10), rec('4', 'fastv:0.1', 'count', true, 10),
    rec('1', 'lightvlm:0.5', 'color', true, 50), // interrupted: only question 1 answered
  ];
  const [none, fastv, lv] = summarize(answers, [{ label: 'none', keep: null }, { label: 'fastv:0.1', keep: 0.1 }, { label: 'lightvlm:0.5', keep: 0.5 }], 'none');
  assert.equal(none!.accuracy, 0.75);
  assert.deepEqual(none!.byKind, { color: 1, count: 0.5 });
  assert.equal(none!.retention, 1);
  assert.equal(fastv!.accuracy, 0.5);
  assert.deepEqual(fastv!.byKind, { color: 0.5, count: 0.5 });
  assert.equal(fastv!.retention, 0.5 / 0.75);
  assert.equal(fastv!.keptFraction, 0.1);
  // retention over the one shared question: 1 / 1.
  assert.equal(lv!.accuracy, 1);
  assert.equal(lv!.retention, 1);
  assert.equal(summarize(answers, [{ label: 'fastv:0.1', keep: 0.1 }], undefined)[0]!.retention, null);
});

/** Answers the gold answer except where `wrong(method, question)`; counts prepareImage calls. */
function fakeVLM(wrong: (method: string, q: string) => boolean) {
  const gold: Record<string, string> = { 'What color is the square?': ' red\n', 'How many circles?': 'two', 'Is there a circle?': 'yes', 'What shape?': 'round' };
  const prepared: string[] = [];
  const vlm: VLM = {
    info: { modelType: 'fake', layers: 4, hiddenSize: 8, heads: 2, kvHeads: 1, headDim: 4, intermediateSize: 16, vocabSize: 10, maxPositions: 100, lmParams: 1000, visionParams: 10 },
    async prepareImage(image: string | Uint8Array): Promise<PreparedImage> {
      if (typeof image === 'string' && image.endsWith('broken.png')) throw new LightVLMError(`cannot decode ${path.basename(image)}: unsupported image format`);
      prepared.push(String(image));
      return { kind: 'prepared-image', imageTokens: 100, visionMs: 1 };
    },
    async generate(input: VLMInput, opts?: GenerateOptions): Promise<GenerateResult> {
      assert.equal((input.image as PreparedImage).kind, 'prepared-image');
      const q = input.prompt.split('\n')[0]!;
      const m = opts?.acceleration?.prefill?.method ?? 'none';
      const keep = opts?.acceleration?.prefill?.keep ?? 1;
      const text = wrong(m, q) ? 'no idea' : gold[q] ?? '?';
      const kept = Math.round(100 * keep);
      return { text, tokenIds: [], kept: [], grids: [], stats: { promptTokens: 120, imageTokens: 100, keptImageTokens: kept, imageTokensPerLayer: [100, 100, kept, kept], visionMs: 0, prefillMs: 1, ttftMs: 1, decodeTokens: 1, decodeMs: 1, decodeTokensPerSecond: 1, totalMs: 2, peakRssMb: 1, cacheEntriesPerLayer: [], cacheBytes: 0 } };
    },
    stream() { throw new Error('not used'); },
    async dispose() {},
  };
  return { vlm, prepared };
}

test('eval loop: one vision pass per image, run-time failures skipped, right accuracies', async () => {
  const dir = makeDataset();
  const ds = loadDataset(dir);
  const { combos } = expandCombos(['fastv:0.25', 'lightvlm:0.5'], [], [], true);
  const { vlm, prepared } = fakeVLM((m, q) => m === 'fastv' && q.startsWith('How many'));
  const outcome = await runEval(vlm, ds.questions, { combos });
  assert.deepEqual(prepared.map((p) => path.basename(p)), ['a.png', 'b.png']);
  assert.deepEqual(outcome.failed.map((f) => f.line), [10]);
  const report = buildEvalReport('m', dir, combos, ds.bad, outcome);
  assert.equal(report.questions, 4);
  assert.equal(report.skipped, 7);
  assert.deepEqual(report.methods.map((m) => [m.method, m.keep, m.accuracy, m.retention]), [['none', null, 1, 1], ['fastv', 0.25, 0.75, 0.75], ['lightvlm', 0.5, 1, 1]]);
  assert.deepEqual(report.methods[1]!.byKind, { color: 1, count: 0, exists: 1, other: 1 });
  assert.equal(report.methods[1]!.keptFraction, 0.25);
  assert.equal(report.answers.length, 12);
});

test('eval loop: an aborted signal stops early and keeps what was scored', async () => {
  const ds = loadDataset(makeDataset());
  const { combos } = expandCombos(['none', 'lightvlm:0.5'], [], [], true);
  const ac = new AbortController();
  const { vlm } = fakeVLM(() => false);
  const outcome = await runEval(vlm, ds.questions, { combos, signal: ac.signal, onAnswer: (_a, done) => { if (done === 3) ac.abort(); } });
  assert.equal(outcome.interrupted, true);
  assert.equal(outcome.answers.length, 3);
});


/** fakeVLM whose generate refuses 'How many' as a prompt mistake (E_PROMPT) and fails on 'What shape' with `fatal`. */
function faultyVLM(fatal: LightVLMError) {
  const { vlm } = fakeVLM(() => false);
  const generate = vlm.generate.bind(vlm);
  vlm.generate = async (input, opts) => {
    if (input.prompt.startsWith('How many')) throw new LightVLMError("the prompt contains the model's image placeholder \"<image>\"; remove it from the question.", 'E_PROMPT');
    if (input.prompt.startsWith('What shape') && opts?.acceleration?.prefill?.method === 'lightvlm') throw fatal;
    return generate(input, opts);
  };
  return vlm;
}

test('eval: a row the engine refuses (<image> in the question) is skipped and counted; an internal error stops the run but keeps whole questions scored', async () => {
  const ds = loadDataset(makeDataset());
  const { combos } = expandCombos(['lightvlm:0.5'], [], [], true); // none, lightvlm:0.5
  const outcome = await runEval(faultyVLM(new LightVLMError('internal: something broke', 'E_INTERNAL')), ds.questions, { combos });
  assert.deepEqual(outcome.failed.map((f) => [f.line, /image placeholder/.test(f.reason)]), [[2, true]]); // broken.png (line 10) is never reached
  assert.ok(outcome.error instanceof LightVLMError && outcome.error.code === 'E_INTERNAL');
  // questions 1 and 6 answered by both settings; question 7's 'none' answer is dropped with it
  assert.deepEqual(outcome.answers.map((a) => `${a.id}:${a.method}`), ['1:none', '1:lightvlm', '6:none', '6:lightvlm']);
  const report = buildEvalReport('m', ds.dir, combos, ds.bad, outcome);
  assert.equal(report.error, 'internal: something broke');
  assert.equal(report.questions, 2);
});

test('eval command: partial results are printed and written before an internal error fails the command', async () => {
  const dir = makeDataset();
  const cap = capture();
  const json = path.join(dir, 'partial.json');
  const code = await evalCommand(['--model', dir, '--dataset', dir, '--method', 'lightvlm:0.5', '--json', json], { loadVLM: async () => faultyVLM(new LightVLMError('internal: boom', 'E_INTERNAL')), io: cap.io });
  const { out, err } = cap.text();
  assert.equal(code, 70);
  assert.match(err, /lightvlm eval: internal: boom/);
  assert.match(err, /questions\.jsonl:2: the engine refused it: .*image placeholder.*row skipped/);
  assert.match(out, /2 questions scored, 7 rows skipped; .*STOPPED BY AN ERROR \(partial results\)/);
  const doc = JSON.parse(fs.readFileSync(json, 'utf8'));
  assert.equal(doc.questions, 2);
  assert.equal(doc.error, 'internal: boom');
});

test('eval command: table, JSON shape and chart from a fake model', async () => {
  const dir = makeDataset();
  const cap = capture();
  const { vlm } = fakeVLM((m, q) => m === 'lightvlm' && q.startsWith('What shape'));
  const json = path.join(dir, 'out.json');
  const chart = path.join(dir, 'out.svg');
  const code = await evalCommand(['--model', dir, '--dataset', dir, '--method', 'lightvlm', '--keep', '0.35', '--keep', '0.1', '--json', json, '--chart', chart], { loadVLM: async () => vlm, io: cap.io });
  const { out, err } = cap.text();
  assert.equal(code, 0, err);
  assert.match(err, /questions\.jsonl:3: invalid JSON/);
  assert.match(err, /added 'none' as the baseline/);
  assert.match(out, /lightvlm:0\.35/);
  const doc = JSON.parse(fs.readFileSync(json, 'utf8'));
  for (const k of ['model', 'dataset', 'questions', 'skipped', 'methods', 'answers']) assert.ok(k in doc, k);
  assert.equal(doc.questions, 4);
  assert.equal(doc.skipped, 7);
  assert.deepEqual(doc.methods.map((m: { method: string; keep: number | null; accuracy: number; retention: number }) => [m.method, m.keep, m.accuracy, m.retention]), [['none', null, 1, 1], ['lightvlm', 0.35, 0.75, 0.75], ['lightvlm', 0.1, 0.75, 0.75]]);
  for (const m of doc.methods) assert.deepEqual(Object.keys(m.byKind).sort(), ['color', 'count', 'exists', 'other']);
  const a = doc.answers[0];
  for (const k of ['id', 'kind', 'question', 'answer', 'method', 'keep', 'prediction', 'correct']) assert.ok(k in a, k);
  const svg = fs.readFileSync(chart, 'utf8');
  assert.equal(svg.match(/<path d=/g)!.length, 2); // lines: none, lightvlm
  assert.equal(svg.match(/class="error-bar"/g)!.length, 3); // one 95% interval per setting
  // uncertainty: Wilson interval of 3/4, paired comparison against none (one loss, p = 1)
  const lv = doc.methods[1];
  assert.deepEqual(lv.accuracyCI, wilson(3, 4));
  assert.deepEqual(doc.compareTo, ['none']);
  assert.deepEqual({ ...lv.comparisons[0], byKind: undefined }, { to: 'none', ref: 'none', n: 4, wins: 0, losses: 1, p: 1, byKind: undefined });
  assert.deepEqual(lv.comparisons[0].byKind.other, { n: 1, wins: 0, losses: 1, p: 1 });
  assert.equal(doc.methods[0].comparisons[0], null);
  assert.deepEqual(lv.kinds.other, { n: 1, correct: 0, accuracy: 0, ci: wilson(0, 1) });
  assert.match(out, /\+0\/−1 p=1/);
});

test('eval command: --split scores one half, --compare-to a method name pairs by keep', async () => {
  const dir = makeDataset();
  const { vlm } = fakeVLM((m, q) => m === 'fastv' && q.startsWith('What'));
  const halves: string[][] = [];
  for (const half of ['A', 'B']) {
    const cap = capture();
    const json = path.join(dir, `split-${half}.json`);
    const code = await evalCommand(['--model', dir, '--dataset', dir, '--split', half, '--method', 'lightvlm:0.1', '--method', 'fastv:0.1', '--compare-to', 'none', '--compare-to', 'lightvlm', '--json', json], { loadVLM: async () => vlm, io: cap.io });
    assert.equal(code, 0, cap.text().err);
    const doc = JSON.parse(fs.readFileSync(json, 'utf8'));
    assert.equal(doc.split, half);
    assert.deepEqual(doc.methods[2].comparisons.map((c: { ref: string } | null) => c?.ref), ['none', 'lightvlm:0.1']);
    halves.push([...new Set(doc.answers.map((a: { id: string }) => a.id))] as string[]);
  }
  assert.deepEqual([...halves[0]!, ...halves[1]!].sort(), ['1', '2', '6', '7']); // the 4 usable questions, each in one half
  const cap = capture();
  assert.equal(await evalCommand(['--model', dir, '--dataset', dir, '--split', 'C'], { loadVLM: async () => vlm, io: cap.io }), 2);
  assert.equal(await evalCommand(['--model', dir, '--dataset', dir, '--compare-to', 'pdrop'], { loadVLM: async () => vlm, io: cap.io }), 2);
  assert.match(cap.text().err, /--compare-to pdrop matches no evaluated setting/);
});

test('eval command: bad input is a message and exit code 2, not a stack trace', async () => {
  const dir = makeDataset();
  for (const [args, re] of [
    [['--model', path.join(dir, 'nope'), '--dataset', dir], /--model '.*nope' is not a folder/],
    [['--model', dir, '--dataset', path.join(dir, 'nope')], /dataset '.*nope' does not exist/],
    [['--model', dir, '--dataset', dir, '--method', 'fastest:0.3'], /unknown method 'fastest'.*none, lightvlm, random/],
    [['--model', dir, '--dataset', dir, '--limit', '0'], /--limit must be a positive whole number/],
    [['--model', dir, '--dataset', dir, '--limit'], /argument missing.*--help/],
    [['--model', dir, '--dataset', dir, '--chart', path.join(dir, 'c.png')], /must end in \.svg/],
    [['--model', dir, '--dataset', dir, '--bogus'], /Unknown option '--bogus'.*--help/],
  ] as const) {
    const cap = capture();
    const code = await evalCommand([...args], { loadVLM: async () => { throw new Error('must not load'); }, io: cap.io });
    assert.equal(code, 2);
    assert.match(cap.text().err, re);
    assert.doesNotMatch(cap.text().err, /\n\s+at /);
  }
  const cap = capture();
  assert.equal(await evalCommand(['--help'], { io: cap.io }), 0);
  assert.match(cap.text().out, /--max-new-tokens/);
});

test('eval command: --match normalized accepts chatty answers that exact rejects', async () => {
  const dir = makeDataset();
  const chatty: VLM = { ...fakeVLM(() => false).vlm, async generate(input: VLMInput) {
    const r = await fakeVLM(() => false).vlm.generate(input, {});
    return { ...r, text: `The ${r.text.trim()}.` };
  } };
  const scores: number[] = [];
  for (const match of ['exact', 'normalized']) {
    const cap = capture();
    const json = path.join(dir, `${match}.json`);
    assert.equal(await evalCommand(['--model', dir, '--dataset', dir, '--match', match, '--json', json], { loadVLM: async () => chatty, io: cap.io }), 0);
    const doc = JSON.parse(fs.readFileSync(json, 'utf8'));
    assert.equal(doc.match, match);
    scores.push(doc.methods[0].accuracy);
  }
  assert.deepEqual(scores, [0, 1]);
  const cap = capture();
  assert.equal(await evalCommand(['--model', dir, '--dataset', dir, '--match', 'fuzzy'], { io: cap.io }), 2);
  assert.match(cap.text().err, /valid modes are exact, normalized/);
});
