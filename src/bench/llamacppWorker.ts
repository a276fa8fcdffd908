// Child process that runs llama.cpp through node-llama-cpp for bench/llamacpp.ts, one request at a
// time over IPC, so llama.cpp's memory (mmap'd weights, KV cache) is measured apart from lightvlm's
// and the two engines take turns without sharing a process. node-llama-cpp is not a dependency of
// lightvlm: it is imported from the folder the bench installed it into (argv[2]).
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** The slice of node-llama-cpp 3.21's API this worker uses (the package is not installed at build time). */
interface Sequence {
  clearHistory(): Promise<void>;
  evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>;
  evaluate(tokens: number[], o?: { temperature?: number }): AsyncGenerator<number, void, void>;
  controlledEvaluate(input: (number | [number, { generateNext: { probabilities: true; options: Record<string, number> } }])[]): Promise<(undefined | { next: { probabilities?: Map<number, number> } })[]>;
}
interface Context { getSequence(): Sequence; dispose(): Promise<void> }
interface Model { createContext(o: Record<string, unknown>): Promise<Context>; dispose(): Promise<void>; readonly size: number }
interface Llama {
  loadModel(o: { modelPath: string; gpuLayers?: number; useMmap?: boolean }): Promise<Model>;
  readonly buildType: 'localBuild' | 'prebuilt';
  readonly systemInfo: string;
  readonly llamaCppRelease: { repo: string; release: string };
  readonly cmakeOptions: Readonly<Record<string, string>>;
}
interface NodeLlamaCpp { getLlama(o: Record<string, unknown>): Promise<Llama> }

export type WorkerRequest =
  | { cmd: 'init'; build: 'auto' | 'never'; threads: number }
  | { cmd: 'load'; gguf: string; contextSize: number; batchSize: number; threads: number; flashAttention: boolean }
  | { cmd: 'run'; prompt: number[]; decode: number }                 // prefill `prompt`, then `decode` greedy tokens
  | { cmd: 'probs'; tokens: number[] }                                // next-token probabilities after `tokens` (T = 1)
  | { cmd: 'unload' };

export interface RunResult { promptMs: number; decodeMs: number; decodeTokens: number }

const rssMb = () => ({ rssMb: process.memoryUsage().rss / 2 ** 20, peakRssMb: process.resourceUsage().maxRSS / 1024 });

async function main(): Promise<void> {
  const pkgDir = process.argv[2];
  if (!pkgDir || !process.send) throw new Error('usage: forked by bench/llamacpp with the node-llama-cpp folder as argv[2]');
  const send = (m: unknown) => process.send!(m);
  const mod = (await import(pathToFileURL(path.join(pkgDir, 'dist', 'index.js')).href)) as NodeLlamaCpp;
  let llama: Llama | undefined;
  let model: Model | undefined;
  let context: Context | undefined;
  let seq: Sequence | undefined;

  const handle = async (r: WorkerRequest): Promise<unknown> => {
    switch (r.cmd) {
      case 'init': {
        // gpu: false = the CPU backend only; build 'never' = a local (native) build if one exists, else the prebuilt binary
        llama = await mod.getLlama({ gpu: false, build: r.build, maxThreads: r.threads, logLevel: 'error', progressLogs: false });
        return { buildType: llama.buildType, systemInfo: llama.systemInfo, release: llama.llamaCppRelease, cmakeOptions: llama.cmakeOptions };
      }
      case 'load': {
        if (!llama) throw new Error('init first');
        const t0 = performance.now();
        model = await llama.loadModel({ modelPath: r.gguf, gpuLayers: 0 });
        context = await model.createContext({ contextSize: r.contextSize, batchSize: r.batchSize, threads: { ideal: r.threads, min: r.threads }, flashAttention: r.flashAttention, sequences: 1 });
        seq = context.getSequence();
        return { loadMs: performance.now() - t0, modelBytes: model.size, ...rssMb() };
      }
      case 'run': {
        if (!seq) throw new Error('load first');
        await seq.clearHistory();
        const t0 = performance.now();
        if (r.prompt.length > 1) await seq.evaluateWithoutGeneratingNewTokens(r.prompt.slice(0, -1));
        // The prompt's last token goes through evaluate() so that its logits give the first new
        // token, as lightvlm's prefill does; each later token is one decode step (T = 1).
        const gen = seq.evaluate(r.prompt.slice(-1), { temperature: 0 });
        await gen.next();
        const t1 = performance.now();
        let n = 0;
        while (n < r.decode) {
          const x = await gen.next();
          if (x.done) break;
          n++;
        }
        const t2 = performance.now();
        await gen.return();
        return { promptMs: t1 - t0, decodeMs: t2 - t1, decodeTokens: n, ...rssMb() } satisfies RunResult & object;
      }
      case 'probs': {
        if (!seq) throw new Error('load first');
        await seq.clearHistory();
        const input: Parameters<Sequence['controlledEvaluate']>[0] = r.tokens.slice(0, -1);
        input.push([r.tokens[r.tokens.length - 1]!, { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }]);
        const out = await seq.controlledEvaluate(input);
        const probs = out[out.length - 1]?.next.probabilities;
        if (!probs) throw new Error('node-llama-cpp returned no probabilities');
        return { probs: [...probs] };
      }
      case 'unload': {
        await context?.dispose();
        await model?.dispose();
        context = undefined; model = undefined; seq = undefined;
        return rssMb();
      }
    }
  };
  process.on('message', (r: WorkerRequest) => {
    handle(r).then((res) => send({ ok: true, res }), (e: Error) => send({ ok: false, error: e.stack ?? String(e) }));
  });
  process.on('disconnect', () => process.exit(0));
  send({ ok: true, res: 'ready' });
}

main().catch((e) => {
  process.stderr.write(`llama.cpp worker: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
