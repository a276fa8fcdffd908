// `npm run bench:llamacpp`: lightvlm against llama.cpp on this machine, on the same LM weights.
// 1. installs node-llama-cpp (pinned) into a cache folder on demand (it is NOT a lightvlm
//    dependency; without it, or with --no-install, the comparison is skipped with a message);
// 2. writes the checkpoint's LM as llama.cpp `qwen2` GGUFs (f32 / q8_0 / q4_0, bench/ggufLm.ts);
// 3. per dtype, one process (bench/llamacppSection.ts) where lightvlm and llama.cpp take turns on
//    the same token ids; prints prompt tokens/s, decode tokens/s and peak RSS side by side.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DType } from '../graph/quant.js';
import { type GgufFileType, writeLmGguf } from './ggufLm.js';
import type { SectionConfig, SectionResult } from './llamacppSection.js';
import { llamaTable, targetLines } from './llamacppReport.js';
import { intFlag, parseScriptArgs, scriptMain, UsageError } from '../util/args.js';

export const NODE_LLAMA_CPP = 'node-llama-cpp@3.21.1';
const GGUF_TYPE: Record<DType, GgufFileType> = { fp32: 'f32', q8: 'q8_0', q4: 'q4_0' };
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..', '..');

const HELP = `Usage: npm run bench:llamacpp -- --model DIR [options]

lightvlm vs llama.cpp (through node-llama-cpp) on the same Qwen2 LM weights, interleaved per dtype.

  --model DIR          lightvlm checkpoint with a Qwen2 LM (e.g. make-checkpoint --like internvl2_5-1b)
  --dtype D            repeatable: fp32 q8 q4 (default all three; llama.cpp f32 / q8_0 / q4_0)
  --rounds R           timed rounds per dtype after a short warm-up (default 2; medians reported)
  --threads N          threads for both engines (default 2)
  --new-tokens N       decode steps timed per run (default 32)
  --long N / --short N prompt lengths in tokens (default 1850 / 512: image tokens + padded question)
  --image-long FILE    default examples/wide.jpg (InternVL: 6 tiles + thumbnail = 1792 image tokens)
  --image-short FILE   default examples/shapes.jpg (1 tile = 256 image tokens)
  --cache DIR          node-llama-cpp install and GGUF files (default .cache/llamacpp)
  --no-install         do not install node-llama-cpp; skip the comparison if it is missing
  --build-native       compile llama.cpp from the source bundled with node-llama-cpp with this CPU's
                       native flags first (minutes); otherwise a native build made earlier is used
                       if present, else node-llama-cpp's prebuilt binary (the table says which)
  --flash-attention    llama.cpp flash attention on (default off, as llama-bench)
 --prepare            install, build, write the GGUFs and fill lightvlm's quantized-weight cache, then
                       stop: the timed run that follows measures cached loads
  --no-verify          skip the fp32 next-token distribution check against lightvlm
  --no-kv              skip lightvlm:0.03 with KV A+B (default: timed in the q4 section)
  --json FILE          write all runs as JSON
  -h, --help           this text
`;

/** node-llama-cpp's folder in the cache, installed with `npm i -E` when missing (null: unavailable). */
export function ensureNodeLlamaCpp(cache: string, install: boolean, log: (s: string) => void): string | null {
  const dir = path.join(cache, 'node_modules', 'node-llama-cpp');
  const version = NODE_LLAMA_CPP.split('@')[1];
  const installed = (() => {
    try { return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version as string; } catch { return null; }
  })();
  if (installed === version) return dir;
  if (!install) {
    log(`skipping the llama.cpp comparison: ${NODE_LLAMA_CPP} is not installed in ${cache} (run without --no-install to install it there).`);
    return null;
  }
  log(`installing ${NODE_LLAMA_CPP} into ${cache} (not a lightvlm dependency; about 700 MB with its prebuilt binaries)...`);
  fs.mkdirSync(cache, { recursive: true });
  if (!fs.existsSync(path.join(cache, 'package.json'))) fs.writeFileSync(path.join(cache, 'package.json'), '{ "name": "lightvlm-llamacpp-bench", "private": true }\n');
  const r = spawnSync('npm', ['install', '-E', '--no-audit', '--no-fund', NODE_LLAMA_CPP], { cwd: cache, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    log(`skipping the llama.cpp comparison: 'npm install -E ${NODE_LLAMA_CPP}' failed (exit ${r.status ?? r.error?.message}); check network access to the npm registry.`);
    return null;
  }
  return dir;
}

/** A short fingerprint of the checkpoint (config + safetensors names, sizes, mtimes): GGUFs are rebuilt when it changes. */
function fingerprint(dir: string): string {
  const h = crypto.createHash('sha1');
  for (const f of fs.readdirSync(dir).sort()) {
    if (f !== 'config.json' && f !== 'tokenizer.json' && !f.endsWith('.safetensors') && !f.endsWith('.index.json')) continue;
    const s = fs.statSync(path.join(dir, f));
    h.update(`${f}:${s.size}:${s.mtimeMs}\n`);
  }
  return h.digest('hex').slice(0, 10);
}

export async function main(argv: string[]): Promise<number> {
  const v = parseScriptArgs('bench:llamacpp', HELP, {
    model: { type: 'string' }, dtype: { type: 'string', multiple: true }, rounds: { type: 'string' }, threads: { type: 'string' },
    'new-tokens': { type: 'string' }, long: { type: 'string' }, short: { type: 'string' }, 'image-long': { type: 'string' }, 'image-short': { type: 'string' },
    cache: { type: 'string' }, 'no-install': { type: 'boolean' }, 'build-native': { type: 'boolean' },
    'flash-attention': { type: 'boolean' }, 'no-verify': { type: 'boolean' }, prepare: { type: 'boolean' }, 'no-kv': { type: 'boolean' }, json: { type: 'string' },
  }, argv);
  const log = (s: string) => process.stderr.write(`${s}\n`);
  if (!v.model) throw new UsageError('--model DIR is required (a checkpoint with a Qwen2 LM, e.g. `lightvlm make-checkpoint --like internvl2_5-1b --out DIR`).');
  const int = (s: string | undefined, d: number, name: string) => (s === undefined ? d : intFlag(s, name, 1));
  const dtypes = (v.dtype ?? ['fp32', 'q8', 'q4']).map((d) => {
    if (!(d in GGUF_TYPE)) throw new UsageError(`--dtype ${d}: expected fp32, q8 or q4`);
    return d as DType;
  });
  const cache = path.resolve(v.cache ?? path.join(ROOT, '.cache', 'llamacpp'));
  const pkgDir = ensureNodeLlamaCpp(cache, !v['no-install'], log);
  if (pkgDir === null) return 0;
  if (v['build-native']) {
    log('compiling llama.cpp with this CPU\'s native flags (node-llama-cpp source download --gpu false): this takes minutes...');
    const r = spawnSync('npx', ['--no', 'node-llama-cpp', 'source', 'download', '--gpu', 'false', '--noUsageExample'], { cwd: cache, stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) log(`native build failed (exit ${r.status}); continuing with the prebuilt binary.`);
  }

  const model = path.resolve(v.model);
  const fp = fingerprint(model);
  const ggufs = new Map<DType, string>();
  for (const d of dtypes) {
    const file = path.join(cache, 'gguf', `${path.basename(model)}-${fp}-${GGUF_TYPE[d]}.gguf`);
    if (!fs.existsSync(file)) {
      const t0 = performance.now();
      log(`writing ${file}...`);
      const x = writeLmGguf(model, file, GGUF_TYPE[d]);
      log(`  ${x.tensors} tensors, ${(x.bytes / 2 ** 20).toFixed(0)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    ggufs.set(d, file);
  }

  if (v.prepare) {
    const { Engine } = await import('../engine/vlm.js');
    for (const d of dtypes.filter((x) => x !== 'fp32')) {
      const t0 = performance.now();
      await (await Engine.load(model, { dtype: d })).dispose();
      log(`lightvlm ${d} weights quantized or found in the cache in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    return 0;
  }

  // The machine's ceilings in the same run (ONNX Runtime fp32 matmul, memory copy), for context.
  const { measureMachine } = await import('./machine.js');
  const m = await measureMachine();
  const machine = `${m.cpu}, ${m.cores} logical CPUs, ${m.totalMemoryGB} GB; matmul ${m.matmulGflops.toFixed(0)} GFLOP/s; memory copy ${m.memoryGBps.toFixed(1)} GB/s (median ${m.memoryGBpsMedian.toFixed(1)})`;
  log(`machine: ${machine}`);
  const results: SectionResult[] = [];
  const started = new Date();
  for (const d of dtypes) {
    const cfg: SectionConfig = {
      model, dtype: d, gguf: ggufs.get(d)!, pkgDir, build: 'never', threads: int(v.threads, 2, '--threads'), rounds: int(v.rounds, 2, '--rounds'),
      newTokens: int(v['new-tokens'], 32, '--new-tokens'), longTokens: int(v.long, 1850, '--long'), shortTokens: int(v.short, 512, '--short'),
      imageLong: path.resolve(v['image-long'] ?? path.join(ROOT, 'examples', 'wide.jpg')), imageShort: path.resolve(v['image-short'] ?? path.join(ROOT, 'examples', 'shapes.jpg')),
      question: 'Describe this image in detail.', lightvlmKv: !v['no-kv'] && d === 'q4', verify: !v['no-verify'], flashAttention: v['flash-attention'] ?? false,
    };
    const tmp = path.join(cache, `section-${d}-${process.pid}`);
    fs.writeFileSync(`${tmp}.cfg.json`, JSON.stringify(cfg));
    const r = spawnSync(process.execPath, [path.join(HERE, 'llamacppSection.js'), `${tmp}.cfg.json`, `${tmp}.out.json`], { stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
    fs.rmSync(`${tmp}.cfg.json`, { force: true });
    if (r.status !== 0) { log(`section ${d} failed (exit ${r.status}); see above.`); return 1; }
    results.push(JSON.parse(fs.readFileSync(`${tmp}.out.json`, 'utf8')) as SectionResult);
    fs.rmSync(`${tmp}.out.json`, { force: true });
  }
  const minutes = (Date.now() - started.getTime()) / 60000;
  process.stdout.write(`date: ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${minutes.toFixed(1)} min; llama.cpp ${results[0] ? `${results[0].llama.buildType} (${JSON.stringify(results[0].llama.release)})` : ''}\n`);
  process.stdout.write(`machine: ${machine}\n`);
  if (results[0]) process.stdout.write(`llama.cpp system info: ${results[0].llama.systemInfo}\n\n`);
  process.stdout.write(llamaTable(results) + '\n');
  for (const l of targetLines(results)) process.stdout.write(`- ${l}\n`);
  if (v.json) fs.writeFileSync(v.json, JSON.stringify({ model, started: started.toISOString(), machine: m, results }, null, 2) + '\n');
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  scriptMain('bench:llamacpp', async () => process.exit(await main(process.argv.slice(2))));
}
