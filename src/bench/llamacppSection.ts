// One dtype of the llama.cpp comparison (bench/llamacpp.ts), in its own process so each section's
// peak RSS is its own: lightvlm at `dtype` in this process, llama.cpp on the matching GGUF in a
// forked worker (bench/llamacppWorker.ts). The two take turns on the same token ids: a warm-up
// round on both prompts, then R rounds of [llama long, lightvlm long, llama short, lightvlm
// short, llama from an empty cache, (lightvlm:0.03 + KV A+B long)], so drift hits both alike.
// Usage (spawned by bench/llamacpp.ts): node llamacppSection.js CONFIG.json OUT.json
import fs from 'node:fs';
import path from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Engine } from '../engine/vlm.js';
import { forwardAll } from '../engine/inspect.js';
import type { Acceleration, GenerateStats, PreparedImage } from '../engine/types.js';
import type { LmPrompt } from '../processing/lmPrompt.js';
import { setDefaultThreads } from '../runtime/ort.js';
import type { DType } from '../graph/quant.js';
import type { RunResult, WorkerRequest } from './llamacppWorker.js';

export interface SectionConfig {
  model: string;
  dtype: DType;
  gguf: string;
  pkgDir: string;              // node-llama-cpp install folder
  build: 'auto' | 'never';
  threads: number;
  rounds: number;
  newTokens: number;
  longTokens: number;          // target prompt lengths (image tokens + padded question)
  shortTokens: number;
  imageLong: string;
  imageShort: string;
  question: string;
  lightvlmKv: boolean;         // also time lightvlm:0.03 with KV A+B on the long prompt
  verify: boolean;             // compare next-token distributions of both engines on a short text
  flashAttention: boolean;
}

export interface Run { promptTokens: number; promptMs: number; decodeTokens: number; decodeMs: number; peakRssMb: number; cacheBytes?: number }
export interface SectionResult {
  dtype: DType;
  gguf: { file: string; bytes: number };
  llama: { buildType: string; systemInfo: string; release: unknown; loadMs: number; peakRssMb: number; runs: Record<string, Run[]> };
  lightvlm: { loadMs: number; visionMs: Record<string, number>; peakRssMb: number; runs: Record<string, Run[]> };
  verify?: Verify;
}
export interface Verify { tokens: number; argmaxEqual: boolean; top5Overlap: number; probRelL2: number; maxAbsLogProbTop20: number; klNats: number }

/** Request/response over the worker's IPC channel, one at a time. */
class Worker {
  private pending: ((m: { ok: boolean; res?: unknown; error?: string }) => void)[] = [];
  constructor(readonly child: ChildProcess) {
    child.on('message', (m: { ok: boolean; res?: unknown; error?: string }) => this.pending.shift()?.(m));
    child.on('exit', (code) => { for (const p of this.pending.splice(0)) p({ ok: false, error: `llama.cpp worker exited (${code})` }); });
  }
  static async start(pkgDir: string): Promise<Worker> {
    const w = new Worker(fork(path.join(path.dirname(fileURLToPath(import.meta.url)), 'llamacppWorker.js'), [pkgDir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    await w.next();
    return w;
  }
  private next(): Promise<unknown> {
    return new Promise((resolve, reject) => this.pending.push((m) => (m.ok ? resolve(m.res) : reject(new Error(m.error)))));
  }
  call<T>(r: WorkerRequest): Promise<T> {
    const p = this.next();
    this.child.send(r);
    return p as Promise<T>;
  }
}

/** Pads `question` with filler words until the prompt holds about `target` tokens (at least the unpadded length). */
function padPrompt(e: Engine, img: PreparedImage, question: string, target: number): { text: string; prompt: LmPrompt } {
  const build = (q: string) => (e.buildPrompt as (q: string, i: unknown) => LmPrompt).call(e, q, img);
  let text = question;
  let prompt = build(text);
  const words = ' Describe every shape, its colour, its size and where it lies in the picture.';
  // sentence-sized steps while far from the target (each adds < 80 tokens), then one character at a time
  while (prompt.ids.length < target) {
    text += target - prompt.ids.length > 80 ? words : 'x';
    prompt = build(text);
  }
  return { text, prompt };
}

function softmax(logits: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  const p = new Float64Array(logits.length);
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += p[i] = Math.exp(logits[i]! - m);
  for (let i = 0; i < p.length; i++) p[i]! /= s;
  return p;
}

const topK = (p: ArrayLike<number>, k: number): number[] => Array.from(p, (v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]).slice(0, k).map((x) => x[1]);

/** lightvlm's fp32-softmaxed next-token distribution vs llama.cpp's on the same token ids. */
export function compareDistributions(mine: Float64Array, theirs: Float64Array, tokens: number): Verify {
  // node-llama-cpp's probabilities sum to 1 only up to float rounding: renormalize before comparing
  let sum = 0;
  for (const v of theirs) sum += v;
  theirs = theirs.map((v) => v / sum);
  const a = topK(mine, 20);
  const b = topK(theirs, 5);
  let num = 0, den = 0, kl = 0;
  for (let i = 0; i < mine.length; i++) {
    num += (mine[i]! - theirs[i]!) ** 2;
    den += mine[i]! ** 2;
    if (mine[i]! > 0) kl += mine[i]! * Math.log(mine[i]! / Math.max(theirs[i]!, 1e-30));
  }
  return {
    tokens,
    argmaxEqual: a[0] === b[0],
    top5Overlap: a.slice(0, 5).filter((t) => b.includes(t)).length,
    probRelL2: Math.sqrt(num / den),
    maxAbsLogProbTop20: Math.max(...a.map((t) => Math.abs(Math.log(mine[t]!) - Math.log(Math.max(theirs[t]!, 1e-30))))),
    klNats: kl,
  };
}

async function verify(e: Engine, w: Worker, V: number): Promise<Verify> {
  // A short text (the question's token ids), no image: the LM alone, position ids 0..T-1.
  const ids = e.text.encode('Describe this image in detail. What colour is the circle?').slice(0, 24);
  const T = ids.length;
  const prompt: LmPrompt = { ids, features: new Float32Array(0), spans: [], grids: [], pos: [Int32Array.from({ length: T }, (_, i) => i)], visionMs: 0 };
  const { logits } = await forwardAll(e.ctx, prompt, false);
  const mine = softmax(logits.subarray((T - 1) * V, T * V));
  const { probs } = await w.call<{ probs: [number, number][] }>({ cmd: 'probs', tokens: ids });
  const theirs = new Float64Array(V);
  for (const [t, p] of probs) theirs[t] = p;
  return compareDistributions(mine, theirs, T);
}

const rssNow = () => process.resourceUsage().maxRSS / 1024;

async function main(): Promise<void> {
  const [cfgFile, outFile] = process.argv.slice(2);
  if (!cfgFile || !outFile) throw new Error('usage: llamacppSection.js CONFIG.json OUT.json');
  const c = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as SectionConfig;
  const log = (s: string) => process.stderr.write(`[${c.dtype}] ${s}\n`);
  setDefaultThreads(c.threads);

  const w = await Worker.start(c.pkgDir);
  const init = await w.call<{ buildType: string; systemInfo: string; release: unknown }>({ cmd: 'init', build: c.build, threads: c.threads });
  const lload = await w.call<{ loadMs: number }>({ cmd: 'load', gguf: c.gguf, contextSize: c.longTokens + c.newTokens + 64, batchSize: 512, threads: c.threads, flashAttention: c.flashAttention });
  log(`llama.cpp (${init.buildType}) loaded ${path.basename(c.gguf)} in ${(lload.loadMs / 1000).toFixed(1)} s`);

  const t0 = performance.now();
  const e = await Engine.load(c.model, { dtype: c.dtype });
  const loadMs = performance.now() - t0;
  log(`lightvlm ${c.dtype} loaded in ${(loadMs / 1000).toFixed(1)} s; encoding the images`);
  const imgLong = await e.prepareImage(c.imageLong);
  const imgShort = await e.prepareImage(c.imageShort);
  const long = padPrompt(e, imgLong, c.question, c.longTokens);
  const short = padPrompt(e, imgShort, c.question, c.shortTokens);
  log(`prompts: ${long.prompt.ids.length} tokens (${imgLong.imageTokens} image), ${short.prompt.ids.length} tokens (${imgShort.imageTokens} image)`);

  const result: SectionResult = {
    dtype: c.dtype,
    gguf: { file: c.gguf, bytes: fs.statSync(c.gguf).size },
    llama: { buildType: init.buildType, systemInfo: init.systemInfo, release: init.release, loadMs: lload.loadMs, peakRssMb: 0, runs: {} },
    lightvlm: { loadMs, visionMs: { long: imgLong.visionMs, short: imgShort.visionMs }, peakRssMb: 0, runs: {} },
  };
  if (c.verify) {
    result.verify = await verify(e, w, e.info.vocabSize);
    log(`next-token distribution vs llama.cpp: ${JSON.stringify(result.verify)}`);
  }

  const none: Acceleration = { prefill: { method: 'none' }, decode: { method: 'none' } };
  const kvAB: Acceleration = { prefill: { method: 'lightvlm', keep: 0.03 }, decode: { method: 'lightvlm' } };
  const push = (into: Record<string, Run[]>, key: string, r: Run) => (into[key] ??= []).push(r);
  const llamaRun = async (ids: number[], n: number) => w.call<RunResult & { peakRssMb: number }>({ cmd: 'run', prompt: ids, decode: n });
  const ours = async (img: PreparedImage, text: string, n: number, acceleration: Acceleration): Promise<GenerateStats> =>
    (await e.generate({ image: img, prompt: text }, { maxNewTokens: n, minNewTokens: n, temperature: 0, acceleration })).stats;
  const fromStats = (s: GenerateStats): Run => ({ promptTokens: s.promptTokens, promptMs: s.prefillMs, decodeTokens: s.decodeTokens, decodeMs: s.decodeMs, peakRssMb: s.peakRssMb, cacheBytes: s.cacheBytes });
  const fromLlama = (ids: number[], r: RunResult & { peakRssMb: number }): Run => ({ promptTokens: ids.length, promptMs: r.promptMs, decodeTokens: r.decodeTokens, decodeMs: r.decodeMs, peakRssMb: r.peakRssMb });

  // warm-up: sessions, arenas and pages on both sides, on both prompts (a first run at ~1850 tokens
  // measured 1.7-2.8x slower prefill than the next in lightvlm q8/q4: ORT grows its buffers then)
  for (const [p, img] of [[short, imgShort], [long, imgLong]] as const) {
    await llamaRun(p.prompt.ids, 4);
    await ours(img, p.text, 4, none);
    if (c.lightvlmKv) await ours(img, p.text, 4, kvAB);
  }
  const N = c.newTokens;
  for (let r = 0; r < c.rounds; r++) {
    log(`round ${r + 1}/${c.rounds}`);
    push(result.llama.runs, 'long', fromLlama(long.prompt.ids, await llamaRun(long.prompt.ids, N)));
    push(result.lightvlm.runs, 'long', fromStats(await ours(imgLong, long.text, N, none)));
    push(result.llama.runs, 'short', fromLlama(short.prompt.ids, await llamaRun(short.prompt.ids, N)));
    push(result.lightvlm.runs, 'short', fromStats(await ours(imgShort, short.text, N, none)));
    // empty cache: one token in, N decode steps (llama-bench's tg)
    push(result.llama.runs, 'empty', fromLlama([long.prompt.ids[0]!], await llamaRun([long.prompt.ids[0]!], N)));
    if (c.lightvlmKv) push(result.lightvlm.runs, 'long-lightvlm0.03-kvAB', fromStats(await ours(imgLong, long.text, N, kvAB)));
  }
  const un = await w.call<{ peakRssMb: number }>({ cmd: 'unload' });
  result.llama.peakRssMb = un.peakRssMb;
  result.lightvlm.peakRssMb = rssNow();
  await e.dispose();
  w.child.disconnect();
  fs.writeFileSync(outFile, JSON.stringify(result, null, 2));
}

main().catch((err) => {
  process.stderr.write(`llama.cpp comparison section failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
