// `lightvlm bench`: speed of several methods on one image and prompt, interleaved, against the
// machine's own matmul and memory-bandwidth ceilings measured in the same process.
import fs from 'node:fs';
import { setDefaultThreads } from '../runtime/ort.js';
import { ExitCode, LightVLMError } from '../errors.js';
import { type MachineInfo, measureMachine } from '../bench/machine.js';
import { type BenchRow, DEFAULT_BENCH_PROMPT, buildBenchRows, runBench, syntheticImage } from '../bench/run.js';
import { formatSummary } from '../bench/stats.js';
import { renderTable } from '../report/table.js';
import { lineChart } from '../report/svg.js';
import { DEMO_MODEL } from './common.js';
import { comboLabel, expandCombos } from '../engine/specs.js';
import { KV_METHODS } from '../kvcache/registry.js';
import { PREFILL_METHODS } from '../merge/plan.js';
import { type CommandDeps, Progress, catchInterrupt, checkOutputPath, defaultLoadVLM, DTYPE_HELP, dtypeLoadOptions, parseFlags, positiveInt, requireDir, resolveIo, runCommand, writeOutput } from './measureShared.js';

export const BENCH_HELP = `Usage: lightvlm bench [--model DIR] [options]

Times methods on one image and prompt in one process: a warm-up round, then R rounds that run
every setting once each, interleaved (A B C A B C ...), so machine drift hits all alike.

  --model DIR            Hugging Face model folder (default: the bundled demo, models/synth-llava)
  --image FILE           image to describe (default: a generated 448×448 picture of shapes)
  --prompt TEXT          user prompt (default: "${DEFAULT_BENCH_PROMPT}")
  --method NAME[:KEEP]   repeatable; ${PREFILL_METHODS.join(' ')}.
                         NAME[:KEEP]/KV[:BUDGET] pairs it with one KV policy (not crossed with --kv)
                         'none' is added first when missing: speedups are measured against it
  --keep F               repeatable; crossed with every --method given without :KEEP
  --kv NAME[:BUDGET]     repeatable; ${KV_METHODS.join(' ')}. Every --method is paired
                         with every --kv (the baseline is none with kv none); without --kv the
                         engine's default decode policy is used
  --vit-merge SPEC       repeatable; token merging inside the vision tower: MODE[:LAYER[:KEEP[:LAYERS]]]
                         (unmerge | reduce) or off, paired with every setting (docs/vit-merge.md)
  --new-tokens N         repeatable; generate exactly N tokens (EOS suppressed). Default 32
  --repeat R             timed rounds (default 5)
  --warmup W             untimed rounds first (default 1)
  --threads N            ONNX Runtime intra-op threads (default: all cores)
  --dtype D              ${DTYPE_HELP}
  --skip-machine         do not measure matmul GFLOP/s and memory bandwidth
  --warmup-tokens N       warm-up rounds generate N tokens per setting (long answers: warm up cheaply)
  --share-vision         encode the image once (timed once) and reuse it in every run: for large
                         models whose vision pass would dominate the benchmark's wall time
  --json FILE            write { machine, rows } as JSON (medians, min-max in rows[].ranges)
  --chart FILE.svg       write a chart of prefill speedup vs kept image-token fraction
  --markdown             print the table as markdown
  -h, --help             show this text

Per setting and token count: image tokens seen by the LM per stage (L<first layer>:<tokens>),
vision ms, LM prefill ms, time to first token, decode tokens/s, total ms and peak RSS, each as
median (min–max); speedups are medians of run-by-run ratios none/method from the same round.
Machine: ONNX Runtime fp32 MatMul of two 2048×2048 matrices (best GFLOP/s) and a 256 MB
Float64Array copy (best GB/s, read + write). Achieved prefill GFLOP/s = 2 × LM parameters ×
(image tokens averaged over layers + text tokens) / prefill time; decode GB/s = bytes per weight
(4 fp32, 1.16 q8, 0.64 q4: every weight streamed once per token) × LM parameters × decode tokens/s.
Ctrl-C reports the rounds done.
`;

const FLAGS = {
  model: { type: 'string' },
  image: { type: 'string' },
  prompt: { type: 'string' },
  method: { type: 'string', multiple: true },
  keep: { type: 'string', multiple: true },
  kv: { type: 'string', multiple: true },
  'vit-merge': { type: 'string', multiple: true },
  'new-tokens': { type: 'string', multiple: true },
  repeat: { type: 'string' },
  warmup: { type: 'string' },
  threads: { type: 'string' },
  dtype: { type: 'string' },
  'skip-machine': { type: 'boolean' },
  'share-vision': { type: 'boolean' },
  'warmup-tokens': { type: 'string' },
  json: { type: 'string' },
  chart: { type: 'string' },
  markdown: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const x = (r: number | null): string => (r === null ? '-' : `${r.toFixed(2)}×`);
const pctOf = (v: number, f: number | null): string => (f === null ? v.toFixed(1) : `${v.toFixed(1)} (${(100 * f).toFixed(0)}%)`);

export function benchTable(rows: readonly BenchRow[], markdown: boolean): string {
  const headers = ['method', 'new', 'image tokens per stage', 'vision ms', 'prefill ms', 'TTFT ms', 'decode tok/s', 'total ms', 'peak RSS MB', 'prefill ×', 'total ×', 'prefill GFLOP/s', 'decode GB/s'];
  const body = rows.map((r) => [
    r.label, r.newTokens, r.keptPerStage.map((s) => `L${s.fromLayer}:${s.tokens}`).join(' '),
    formatSummary(r.ranges.visionMs), formatSummary(r.ranges.prefillMs), formatSummary(r.ranges.ttftMs),
    formatSummary(r.ranges.decodeTokensPerSecond), formatSummary(r.ranges.totalMs), formatSummary(r.ranges.peakRssMb, 0),
    x(r.speedupPrefill), x(r.speedupTotal), pctOf(r.prefillGflops, r.prefillFractionOfPeak), pctOf(r.decodeGBps, r.decodeFractionOfBandwidth),
  ]);
  const align = headers.map((_, i) => (i === 0 || i === 2 ? 'left' : 'right') as 'left' | 'right');
  return renderTable(headers, body, { format: markdown ? 'markdown' : 'text', align });
}

/**
 * Several answer lengths: total latency vs answer length, one line per setting (the long-answer
 * view). One length: LM prefill speedup vs kept image-token fraction, one line per method.
 */
export function benchChart(rows: readonly BenchRow[]): string {
  const lengths = new Set(rows.map((r) => r.newTokens));
  const series = new Map<string, { x: number; y: number }[]>();
  const add = (name: string, p: { x: number; y: number }) => series.set(name, [...(series.get(name) ?? []), p]);
  const named = (r: BenchRow) => `${r.method}${r.keep === null || r.method === 'none' ? '' : `:${r.keep}`}${r.kv === null ? '' : ` kv=${r.kv}`}`;
  if (lengths.size > 1) {
    for (const r of rows) add(named(r), { x: r.newTokens, y: r.totalMs / 1000 });
    return lineChart({ title: 'Total latency vs answer length', xLabel: 'generated tokens', yLabel: 'total seconds (vision + prefill + decode)', series: [...series].map(([name, points]) => ({ name, points })) });
  }
  for (const r of rows) {
    if (r.speedupPrefill === null || r.imageTokens <= 0) continue;
    add(`${r.method}${r.kv === null ? '' : ` kv=${r.kv}`}`, { x: r.keptImageTokens / r.imageTokens, y: r.speedupPrefill });
  }
  return lineChart({ title: 'LM prefill speedup vs kept image tokens', xLabel: 'kept image-token fraction', yLabel: 'prefill speedup over none (×)', series: [...series].map(([name, points]) => ({ name, points })) });
}

export const machineLine = (m: MachineInfo): string =>
  `machine: ${m.cpu}, ${m.cores} logical CPUs, ${m.totalMemoryGB} GB; ONNX Runtime fp32 matmul ${m.matmulGflops.toFixed(0)} GFLOP/s (n=${m.matmulSize}, median ${m.matmulGflopsMedian.toFixed(0)}); memory copy ${m.memoryGBps.toFixed(1)} GB/s (median ${m.memoryGBpsMedian.toFixed(1)})\n`;

export async function benchCommand(argv: string[], deps: CommandDeps = {}): Promise<number> {
  const io = resolveIo(deps.io);
  return runCommand(io, 'bench', async () => {
    const v = parseFlags(argv, FLAGS, 'bench');
    if (v.help) { io.stdout.write(BENCH_HELP); return 0; }
    const model = requireDir(v.model ?? DEMO_MODEL, '--model', 'the Hugging Face model folder to benchmark');
    const repeat = positiveInt(v.repeat, '--repeat', 5);
    const warmup = v.warmup === '0' ? 0 : positiveInt(v.warmup, '--warmup', 1);
    const newTokens = [...new Set((v['new-tokens'] ?? ['32']).map((n) => positiveInt(n, '--new-tokens', 32)))];
    const threads = v.threads === undefined ? undefined : positiveInt(v.threads, '--threads', 1);
    const { combos, added } = expandCombos(v.method ?? [], v.keep ?? [], v.kv ?? [], true, v['vit-merge'] ?? []);
    checkOutputPath(v.json, '--json');
    checkOutputPath(v.chart, '--chart', '.svg');
    let image: string | Uint8Array;
    if (v.image !== undefined) {
      if (!fs.existsSync(v.image) || !fs.statSync(v.image).isFile()) throw new LightVLMError(`--image '${v.image}' is not a file. Pass a JPEG or PNG, or leave --image out to use a generated picture.`, 'E_IO');
      image = v.image;
    } else {
      image = await syntheticImage();
    }
    if (added && (v.method ?? []).length > 0) io.stderr.write(`note: added '${comboLabel(combos[0]!)}' as the baseline for the speedup ratios\n`);

    if (threads !== undefined) setDefaultThreads(threads);
    // The machine is measured before the model is loaded, so its memory does not compete for cache.
    let machine: MachineInfo | undefined;
    if (!v['skip-machine']) {
      io.stderr.write('measuring the machine (matmul GFLOP/s, memory bandwidth)...\n');
      machine = await measureMachine(); // printed with the table on stdout
    }
    const load = dtypeLoadOptions(v.dtype, io);
    const vlm = await (deps.loadVLM ?? defaultLoadVLM)(model, load.opts);
    load.done();
    const interrupt = catchInterrupt(io);
    const warmupTokens = v['warmup-tokens'] !== undefined ? positiveInt(v['warmup-tokens'], '--warmup-tokens', 1) : undefined;
    const progress = new Progress(io, (warmup * (warmupTokens !== undefined ? 1 : newTokens.length) + repeat * newTokens.length) * combos.length, 'runs');
    let result;
    try {
      result = await runBench(vlm, {
        image, prompt: v.prompt ?? DEFAULT_BENCH_PROMPT, combos, newTokens, repeat, warmup, signal: interrupt.signal, shareVision: v['share-vision'] ?? false,
        ...(warmupTokens !== undefined ? { warmupTokens } : {}),
        onRun: (done, _total, label, isWarmup) => progress.update(done, `${isWarmup ? 'warm-up ' : ''}${label}`),
      });
    } finally {
      progress.stop();
      interrupt.dispose();
    }
    const rows = buildBenchRows(combos, newTokens, result.samples, vlm.info, machine);
    const modelType = vlm.info.modelType;
    await vlm.dispose();

    if (machine) io.stdout.write(machineLine(machine));
    io.stdout.write(benchTable(rows, v.markdown ?? false));
    if (result.interrupted) io.stdout.write('\nINTERRUPTED: medians over the rounds completed\n');
    if (v.json !== undefined) {
      const doc = { model, modelType, prompt: v.prompt ?? DEFAULT_BENCH_PROMPT, image: typeof image === 'string' ? image : 'generated', repeat, warmup, interrupted: result.interrupted, machine: machine ?? null, rows };
      writeOutput(v.json, JSON.stringify(doc, null, 2) + '\n', io, 'bench results');
    }
    if (v.chart !== undefined) writeOutput(v.chart, benchChart(rows), io, 'the chart');
    return result.interrupted ? ExitCode.INTERRUPTED : ExitCode.OK;
  });
}
