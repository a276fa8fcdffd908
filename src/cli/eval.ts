// `lightvlm eval`: accuracy of several methods on a VQA folder, with retention against `none`.
import { setDefaultThreads } from '../runtime/ort.js';
import { KV_METHODS } from '../kvcache/registry.js';
import { PREFILL_METHODS } from '../merge/plan.js';
import { ExitCode, LightVLMError } from '../errors.js';
import { loadDataset } from '../eval/dataset.js';
import { DEFAULT_PROMPT_SUFFIX, type EvalReport, buildEvalReport, runEval, settingRefs } from '../eval/run.js';
import { MATCH_MODES, type MatchMode } from '../eval/score.js';
import { checkCompareNames } from '../eval/compare.js';
import { HALVES, type Half, type Interval, halfSplit } from '../eval/stats.js';
import { renderTable } from '../report/table.js';
import { type Point, lineChart } from '../report/svg.js';
import path from 'node:path';
import { DEMO_MODEL, PACKAGE_ROOT } from './common.js';
import { comboLabel, expandCombos } from '../engine/specs.js';
import { type CommandDeps, Progress, catchInterrupt, checkOutputPath, defaultLoadVLM, DTYPE_HELP, dtypeLoadOptions, parseFlags, positiveInt, requireDir, resolveIo, runCommand, writeOutput } from './measureShared.js';

/** The bundled evaluation set that goes with the bundled demo model. */
export const DEMO_DATASET = path.join(PACKAGE_ROOT, 'datasets', 'synth-vqa');

export const EVAL_HELP = `Usage: lightvlm eval [--model DIR] [--dataset DIR] [options]

Scores methods on a VQA folder by exact match and reports accuracy, accuracy per kind, and
retention = accuracy / accuracy of the unreduced model ('none') on the same questions, each with
its 95% interval (Wilson for accuracies, paired percentile bootstrap over questions for
retention), and a paired comparison of every method against a reference method: wins (questions
only this method gets right), losses (only the reference gets right) and the exact two-sided
McNemar p-value, overall and per kind.

  --model DIR            Hugging Face model folder (config.json, *.safetensors, tokenizer files);
                         default: the bundled demo, models/synth-llava
  --dataset DIR          folder with questions.jsonl (one JSON object per line: id, image,
                         question, answer [string or list], optional kind) and the images it
                         names, relative to the folder; a .jsonl file path also works.
                         Default: the bundled datasets/synth-vqa
  --limit N              score only the first N valid questions (after --split)
  --split A|B            score one half of the dataset: questions ordered by a hash of their id,
                         the first half is A, the rest B. Decide on A, confirm on B
  --compare-to NAME      repeatable; reference for the paired comparison (default: none). A label
                         ("fastv:0.1") or a method name: 'lightvlm' compares every setting with the
                         lightvlm setting of the same keep
  --method NAME[:KEEP]   repeatable; prefill method and final kept fraction of image tokens.
                         NAME: ${PREFILL_METHODS.join(' ')}.
                         'none' is added first when missing (retention needs it). Default: none
  --keep F               repeatable; crossed with every --method given without :KEEP, so
                         --method lightvlm --method fastv --keep 0.1 --keep 0.35 runs 4 settings
  --kv NAME[:BUDGET]     repeatable; decode KV-cache policy: ${KV_METHODS.join(' ')}.
                         Every --method is paired with every --kv; without --kv the engine default
  --vit-merge SPEC       repeatable; token merging inside the vision tower (docs/vit-merge.md):
                         MODE[:LAYER[:KEEP[:LAYERS]]], MODE = unmerge | reduce, or off. Every
                         setting is paired with every --vit-merge; the vision pass is shared per value
  --max-new-tokens N     answer length limit (default 16)
  --match MODE           exact (default): the answer with surrounding white space stripped must
                         equal a gold answer. normalized: first line only, NFKC, lower case,
                         "answer:" prefix, punctuation (except inside words) and the articles
                         a/an/the removed, number words zero..twenty read as digits, white space
                         collapsed, on both sides; for chatty models ("Yes.", "Two")
  --prompt-suffix TEXT   appended to every question (default: none, the question as written).
                         LLaVA-1.5-style models: $'\\nAnswer the question using a single word or phrase.'
  --threads N            ONNX Runtime intra-op threads (default: all cores)
  --dtype D              ${DTYPE_HELP}
  --json FILE            write { model, dataset, questions, skipped, methods, answers } as JSON
  --chart FILE.svg       write a chart of accuracy vs kept image-token fraction, a line per method
  --markdown             print the table as markdown
  -h, --help             show this text

Generation is greedy. Each image goes through the vision encoder once, shared by all
questions and methods on it. Bad rows (invalid JSON, missing fields, missing or unreadable image)
are reported with their line number, skipped and counted. Ctrl-C prints what has been scored so far.
Exit codes: ${ExitCode.OK} done, ${ExitCode.USAGE} bad input, ${ExitCode.INTERRUPTED} interrupted.
`;

const FLAGS = {
  model: { type: 'string' },
  dataset: { type: 'string' },
  limit: { type: 'string' },
  split: { type: 'string' },
  'compare-to': { type: 'string', multiple: true },
  method: { type: 'string', multiple: true },
  keep: { type: 'string', multiple: true },
  kv: { type: 'string', multiple: true },
  'vit-merge': { type: 'string', multiple: true },
  'max-new-tokens': { type: 'string' },
  'prompt-suffix': { type: 'string' },
  match: { type: 'string' },
  threads: { type: 'string' },
  dtype: { type: 'string' },
  json: { type: 'string' },
  chart: { type: 'string' },
  markdown: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const pct = (x: number | null): string => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
const ci = (c: Interval | null): string => (c === null ? '-' : `${(100 * c.lo).toFixed(1)}–${(100 * c.hi).toFixed(1)}`);
/** "p" with two significant digits, or "<0.001"; a star marks p < 0.05. */
export const fmtP = (p: number): string => (p < 0.001 ? '<0.001*' : `${Number(p.toPrecision(2))}${p < 0.05 ? '*' : ''}`);
const versus = (c: { wins: number; losses: number; p: number } | null | undefined): string => (c ? `+${c.wins}/−${c.losses} p=${fmtP(c.p)}` : '-');

export function evalTable(report: EvalReport, markdown: boolean): string {
  const kinds = [...new Set(report.methods.flatMap((m) => Object.keys(m.byKind)))].sort();
  const headers = ['method', 'kept', 'n', 'accuracy', '95% CI', 'retention', '95% CI', ...report.compareTo.map((n) => `vs ${n}`), ...kinds];
  const rows = report.methods.map((m) => [m.label, m.keptFraction.toFixed(3), m.answered, pct(m.accuracy), ci(m.accuracyCI), pct(m.retention), ci(m.retentionCI),
    ...m.comparisons.map(versus), ...kinds.map((k) => pct(m.byKind[k] ?? null))]);
  const align = headers.map((_, i) => (i === 0 ? 'left' : 'right') as 'left' | 'right');
  return renderTable(headers, rows, { format: markdown ? 'markdown' : 'text', align });
}

/** Per kind: accuracy with its Wilson interval and the paired comparisons restricted to that kind. */
export function evalKindTable(report: EvalReport, markdown: boolean): string {
  const headers = ['method', 'kind', 'n', 'accuracy', '95% CI', ...report.compareTo.map((n) => `vs ${n}`)];
  const rows = report.methods.flatMap((m) => Object.entries(m.kinds).map(([k, s]) => [m.label, k, s.n, pct(s.accuracy), ci(s.ci), ...m.comparisons.map((c) => versus(c?.byKind[k]))]));
  const align = headers.map((_, i) => (i < 2 ? 'left' : 'right') as 'left' | 'right');
  return renderTable(headers, rows, { format: markdown ? 'markdown' : 'text', align });
}

/** Accuracy vs achieved kept fraction, one line per method name (and KV policy): a keep sweep reads as a curve. */
export function evalChart(report: EvalReport, title: string): string {
  const series = new Map<string, Point[]>();
  for (const m of report.methods) {
    const name = m.kv === null ? m.method : `${m.method} kv=${m.kv}`;
    const pts = series.get(name) ?? [];
    pts.push({ x: m.keptFraction, y: m.accuracy, lo: m.accuracyCI.lo, hi: m.accuracyCI.hi });
    series.set(name, pts);
  }
  return lineChart({
    title,
    xLabel: 'kept image-token fraction',
    yLabel: 'accuracy',
    series: [...series].map(([name, points]) => ({ name, points })),
    yDomain: [0, 1],
  });
}

export async function evalCommand(argv: string[], deps: CommandDeps = {}): Promise<number> {
  const io = resolveIo(deps.io);
  return runCommand(io, 'eval', async () => {
    const v = parseFlags(argv, FLAGS, 'eval');
    if (v.help) { io.stdout.write(EVAL_HELP); return 0; }
    const model = requireDir(v.model ?? DEMO_MODEL, '--model', 'the Hugging Face model folder to evaluate');
    const limit = positiveInt(v.limit, '--limit', Infinity);
    const maxNewTokens = positiveInt(v['max-new-tokens'], '--max-new-tokens', 16);
    const threads = v.threads === undefined ? undefined : positiveInt(v.threads, '--threads', 1);
    const match = (v.match ?? 'exact') as MatchMode;
    if (!MATCH_MODES.includes(match)) throw new LightVLMError(`--match ${v.match}: valid modes are ${MATCH_MODES.join(', ')}.`, 'E_OPTION');
    const { combos, added } = expandCombos(v.method ?? [], v.keep ?? [], v.kv ?? [], true, v['vit-merge'] ?? []);
    checkOutputPath(v.json, '--json');
    checkOutputPath(v.chart, '--chart', '.svg');

    const split = v.split === undefined ? undefined : (v.split.toUpperCase() as Half);
    if (split !== undefined && !HALVES.includes(split)) throw new LightVLMError(`--split ${v.split}: use A or B (the two halves of the dataset, by a hash of the question id).`, 'E_OPTION');
    const compareTo = v['compare-to'] ?? ['none'];
    checkCompareNames(compareTo, settingRefs(combos));

    const ds = loadDataset(v.dataset ?? DEMO_DATASET, split === undefined ? limit : Infinity);
    if (split !== undefined) ds.questions = halfSplit(ds.questions, split).slice(0, limit);
    for (const b of ds.bad) io.stderr.write(`${ds.file}:${b.line}: ${b.reason}; row skipped\n`);
    if (ds.questions.length === 0) throw new LightVLMError(`${ds.file} has no usable questions${ds.bad.length ? ` (${ds.bad.length} bad rows, listed above)` : ''}.`, 'E_INPUT');
    if (added && (v.method ?? []).length > 0) io.stderr.write(`note: added '${comboLabel(combos[0]!)}' as the baseline: retention is accuracy / accuracy of the unreduced model\n`);
    io.stderr.write(`eval: ${ds.questions.length} questions × ${combos.length} settings (${combos.map(comboLabel).join(', ')})\n`);

    if (threads !== undefined) setDefaultThreads(threads);
    const load = dtypeLoadOptions(v.dtype, io);
    const vlm = await (deps.loadVLM ?? defaultLoadVLM)(model, load.opts);
    load.done();
    const interrupt = catchInterrupt(io);
    const progress = new Progress(io, ds.questions.length * combos.length, 'answers');
    let outcome;
    try {
      const correct = new Map<string, [number, number]>();
      outcome = await runEval(vlm, ds.questions, {
        combos,
        maxNewTokens,
        promptSuffix: v['prompt-suffix'] ?? DEFAULT_PROMPT_SUFFIX,
        match,
        signal: interrupt.signal,
        onAnswer: (a, done) => {
          const c = correct.get(a.label) ?? [0, 0];
          c[0] += a.correct ? 1 : 0;
          c[1]++;
          correct.set(a.label, c);
          progress.update(done, [...correct].map(([k, [ok, n]]) => `${k} ${pct(ok / n)}`).join(', '));
        },
        onSkip: (row) => progress.log(`${ds.file}:${row.line}: ${row.reason}; row skipped`),
      });
    } finally {
      progress.stop();
      interrupt.dispose();
      await vlm.dispose();
    }

    const report = buildEvalReport(model, ds.dir, combos, ds.bad, outcome, compareTo, split ?? null);
    io.stdout.write(evalTable(report, v.markdown ?? false));
    io.stdout.write('\n' + evalKindTable(report, v.markdown ?? false));
    io.stdout.write(`\n${report.questions} questions scored${split ? ` (half ${split})` : ''}, ${report.skipped} rows skipped; ${report.scoring}${outcome.interrupted ? ', INTERRUPTED (partial results)' : ''}${outcome.error !== undefined ? ', STOPPED BY AN ERROR (partial results)' : ''}\n`);
    io.stdout.write('95% CI: Wilson (accuracy), paired bootstrap over questions (retention). vs X: +wins/−losses against X on the same questions, exact two-sided McNemar p (* p < 0.05)\n');
    if (v.json !== undefined) writeOutput(v.json, JSON.stringify(report, null, 2) + '\n', io, 'per-question answers');
    if (v.chart !== undefined) writeOutput(v.chart, evalChart(report, `Accuracy vs kept image tokens (${report.questions} questions)`), io, 'the chart');
    if (outcome.error !== undefined) throw outcome.error; // after the partial results are out: the command still fails
    return outcome.interrupted ? ExitCode.INTERRUPTED : ExitCode.OK;
  });
}
