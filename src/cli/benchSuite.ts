// `npm run bench` = `lightvlm bench-suite`: the default benchmark suite. Each section runs one
// `lightvlm bench` or `lightvlm eval` invocation, keeps what it printed (markdown table), its JSON
// and chart under bench/results/, and BENCHMARKS.md is rebuilt from every section present, each
// with its own machine, date and exact command. `--only a,b` reruns some sections.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { LightVLMError } from '../errors.js';
import { PACKAGE_ROOT } from './common.js';
import { parseFlags } from './measureShared.js';

const RESULTS = path.join(PACKAGE_ROOT, 'bench', 'results');
const IVL = path.join(PACKAGE_ROOT, 'checkpoints', 'internvl2_5-1b');
const KEEPS = ['0.35', '0.1', '0.03'];

interface Section {
  name: string;
  title: string;
  about: string;
  command: 'bench' | 'eval';
  args: string[];
  needs?: 'internvl2_5-1b';
}

const SECTIONS: Section[] = [
  {
    name: 'demo-eval',
    title: 'Accuracy on synth-vqa (300 questions), synth-llava',
    about: 'Greedy answers, exact match after trimming. Retention = accuracy / accuracy of `none` on the same questions. Every method at keep 0.35, 0.10 and 0.03 of the 576 image tokens.',
    command: 'eval',
    args: ['--method', 'none', ...['lightvlm', 'fastv', 'pdrop', 'random', 'fastervlm', 'visionzip', 'fourier'].flatMap((m) => ['--method', m]), ...KEEPS.flatMap((k) => ['--keep', k])],
  },
  {
    name: 'demo-prefill',
    title: 'Prefill speed, synth-llava (576 image tokens, 8 layers)',
    about: 'LM prefill and time to first token, interleaved runs, medians with min-max; ratios are medians of run-by-run ratios against `none`.',
    command: 'bench',
    args: ['--image', 'examples/shapes.jpg', '--prompt', 'What color is the square?', '--method', 'none', ...['lightvlm', 'fastv', 'pdrop', 'random'].flatMap((m) => ['--method', m]), ...KEEPS.flatMap((k) => ['--keep', k]), '--new-tokens', '8', '--repeat', '5'],
  },
  {
    name: 'ivl-prefill',
    title: 'Prefill speed, internvl2_5-1b shape (7 tiles = 1792 image tokens, 24 layers)',
    about: 'Random weights with the exact shapes of InternVL2.5-1B (`lightvlm make-checkpoint --like internvl2_5-1b`); a 3:2 image gives 6 tiles + thumbnail. The vision pass is shared (timed once).',
    command: 'bench',
    needs: 'internvl2_5-1b',
    args: ['--model', IVL, '--image', 'examples/wide.jpg', '--share-vision', '--method', 'none', '--method', 'lightvlm', ...KEEPS.flatMap((k) => ['--keep', k]), '--method', 'fastv:0.03', '--method', 'pdrop:0.03', '--method', 'random:0.03', '--new-tokens', '2', '--repeat', '2'],
  },
  {
    name: 'ivl-kv',
    title: 'Long answers, internvl2_5-1b shape: KV-cache compression',
    about: 'Answers forced to 512/1024/2048/4096 tokens. `none` = unreduced model; `lightvlm:0.03` with `kv=none` (no compression), `kv=stale` (component A alone), `kv=lightvlm` (A + B: budget 1024 generated entries, window 256, 4 sinks, every 32).',
    command: 'bench',
    needs: 'internvl2_5-1b',
    args: ['--model', IVL, '--image', 'examples/wide.jpg', '--share-vision', '--skip-machine', '--method', 'none/none', '--method', 'lightvlm:0.03/none', '--method', 'lightvlm:0.03/stale', '--method', 'lightvlm:0.03/lightvlm', '--new-tokens', '512', '--new-tokens', '1024', '--new-tokens', '2048', '--new-tokens', '4096', '--repeat', '1', '--warmup', '1', '--warmup-tokens', '4'],
  },
  {
    name: 'ivl-kv-baselines',
    title: 'KV-cache baselines, internvl2_5-1b shape, 512- and 1024-token answers',
    about: 'All at budget 1024 entries per layer, after `lightvlm:0.03` prefill; StreamingLLM and H2O over the whole cache (scope all), SnapKV at the end of prefill.',
    command: 'bench',
    needs: 'internvl2_5-1b',
    args: ['--model', IVL, '--image', 'examples/wide.jpg', '--share-vision', '--skip-machine', '--method', 'none/none', '--method', 'lightvlm:0.03/lightvlm:1024', '--method', 'lightvlm:0.03/streamingllm:1024', '--method', 'lightvlm:0.03/h2o:1024', '--method', 'lightvlm:0.03/snapkv:1024', '--new-tokens', '512', '--new-tokens', '1024', '--repeat', '1', '--warmup', '1', '--warmup-tokens', '4'],
  },
];

const HELP = `Usage: lightvlm bench-suite [--only NAME,...] [--list]

Runs the default benchmark suite and rewrites BENCHMARKS.md from bench/results/.
Sections: ${SECTIONS.map((s) => s.name).join(', ')}.
The internvl2_5-1b sections create checkpoints/internvl2_5-1b first when it is missing (1.9 GB).
  --only NAME,...   run only these sections (the others keep their last results)
  --list            print the sections and their commands
  --render          only redraw the bench charts from bench/results/*.json and rewrite BENCHMARKS.md
`;

function capture(): { io: { stdout: Writable; stderr: NodeJS.WritableStream; isTTY: boolean }; text: () => string } {
  let buf = '';
  const stdout = new Writable({ write: (c, _e, cb) => ((buf += c.toString()), cb()) });
  return { io: { stdout, stderr: process.stderr, isTTY: Boolean(process.stderr.isTTY) }, text: () => buf };
}

const shellQuote = (a: string) => (/^[\w./:=,-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
const rel = (a: string) => (a.startsWith(PACKAGE_ROOT + path.sep) ? path.relative(PACKAGE_ROOT, a) : a);

async function runSection(s: Section): Promise<void> {
  if (s.needs && !fs.existsSync(path.join(IVL, 'config.json'))) {
    const { makeCheckpoint } = await import('../checkpoint/make.js');
    process.stderr.write(`creating ${rel(IVL)} (random weights, internvl2_5-1b shapes)...\n`);
    await makeCheckpoint({ like: 'internvl2_5-1b', out: IVL, seed: 0 });
  }
  const json = path.join(RESULTS, `${s.name}.json`);
  const chart = path.join(RESULTS, `${s.name}.svg`);
  const args = [...s.args, '--markdown', '--json', json, '--chart', chart];
  const cap = capture();
  const started = new Date();
  process.stderr.write(`\n== ${s.name}: lightvlm ${s.command} ${args.map(rel).map(shellQuote).join(' ')}\n`);
  const cmd = s.command === 'bench' ? (await import('./bench.js')).benchCommand : (await import('./eval.js')).evalCommand;
  const code = await cmd(args, { io: cap.io });
  if (code !== 0) throw new LightVLMError(`section ${s.name} failed with exit code ${code}.`, 'E_INTERNAL');
  process.stdout.write(cap.text());
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const md = [
    `## ${s.title}`,
    '',
    s.about,
    '',
    `- machine: ${cpu}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()}, Node ${process.version}, onnxruntime-node CPU, fp32`,
    `- date: ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${((Date.now() - started.getTime()) / 60000).toFixed(1)} min`,
    `- command: \`lightvlm ${s.command} ${args.map(rel).map(shellQuote).join(' ')}\``,
    '',
    cap.text().trim(),
    '',
    `![${s.name}](bench/results/${s.name}.svg)`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(RESULTS, `${s.name}.md`), md);
}

/** Charts redrawn from the saved JSON rows (after a change to the chart code; no rerun). */
async function rerenderCharts(): Promise<void> {
  const { benchChart } = await import('./bench.js');
  for (const s of SECTIONS) {
    const json = path.join(RESULTS, `${s.name}.json`);
    if (s.command === 'bench' && fs.existsSync(json)) fs.writeFileSync(path.join(RESULTS, `${s.name}.svg`), benchChart(JSON.parse(fs.readFileSync(json, 'utf8')).rows));
  }
}

function writeBenchmarksMd(): void {
  const parts = SECTIONS.filter((s) => fs.existsSync(path.join(RESULTS, `${s.name}.md`))).map((s) => fs.readFileSync(path.join(RESULTS, `${s.name}.md`), 'utf8'));
  const head = fs.existsSync(path.join(PACKAGE_ROOT, 'bench', 'README.md')) ? fs.readFileSync(path.join(PACKAGE_ROOT, 'bench', 'README.md'), 'utf8').trim() + '\n\n' : '';
  fs.writeFileSync(path.join(PACKAGE_ROOT, 'BENCHMARKS.md'), `# Benchmarks\n\nWritten by \`npm run bench\` (\`lightvlm bench-suite\`); every table below is the output of the command shown with it.\n\n${head}${parts.join('\n')}`);
}

export async function benchSuiteCommand(argv: string[]): Promise<number> {
  const v = parseFlags(argv, { only: { type: 'string' }, list: { type: 'boolean' }, render: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, 'bench-suite');
  if (v.help) return (process.stdout.write(HELP), 0);
  if (v.list) {
    for (const s of SECTIONS) process.stdout.write(`${s.name}: lightvlm ${s.command} ${s.args.map(rel).map(shellQuote).join(' ')}\n`);
    return 0;
  }
  if (v.render) {
    await rerenderCharts();
    writeBenchmarksMd();
    return 0;
  }
  const only = v.only?.split(',').map((x) => x.trim());
  for (const o of only ?? []) if (!SECTIONS.some((s) => s.name === o)) throw new LightVLMError(`unknown section "${o}". Sections: ${SECTIONS.map((s) => s.name).join(', ')}.`, 'E_OPTION');
  fs.mkdirSync(RESULTS, { recursive: true });
  for (const s of SECTIONS) if (!only || only.includes(s.name)) await runSection(s);
  writeBenchmarksMd();
  process.stderr.write(`wrote ${path.join(PACKAGE_ROOT, 'BENCHMARKS.md')}\n`);
  return 0;
}
