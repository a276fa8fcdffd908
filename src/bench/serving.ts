// Serving throughput of `none` vs an accelerated setting in ONE process, interleaved: aggregate
// decode tokens/s at several concurrencies (steps where every sequence is in the batch), requests
// per minute for a mixed workload, and how many sequences the scheduler admits within a fixed
// KV memory. Everything runs through the engine's scheduler, as the server's requests do.
//   node dist/src/bench/serving.js --model DIR [--image F] [--kv-image F] [--new-tokens N] [--conc 1,4,8,16]
import fs from 'node:fs';
import { Engine } from '../engine/vlm.js';
import type { GenerateOptions, PreparedImage } from '../engine/types.js';
import { parseKvSpec, parseMethodSpec, toAcceleration } from '../engine/specs.js';
import { intFlag, parseScriptArgs, scriptMain, UsageError } from '../util/args.js';

const USAGE = `node dist/src/bench/serving.js --model DIR [flags]
Serving throughput of 'none' vs an accelerated setting in one process, interleaved.

  --model DIR            model folder (required)
  --image FILE           image of the throughput runs (default examples/shapes.jpg)
  --kv-image FILE        image of the KV-admission measurement (default examples/wide.jpg)
  --new-tokens N         answer length (default 48)
  --conc LIST            concurrencies, e.g. 1,4,8,16
  --method M[:KEEP]      prefill method (default lightvlm:0.03)
  --kv M[:BUDGET]        decode KV policy (default lightvlm)
  --kv-memory BYTES      KV memory for the admission measurement (default 268435456)
  --kv-answer N          answer tokens reserved per request there (default 2048)
  --mixed-requests N     requests of the mixed workload (default 16)
  --json FILE            also write the results as JSON
  -h, --help             this help`;

const v = parseScriptArgs('serving', USAGE, {
    model: { type: 'string' },
    image: { type: 'string', default: 'examples/shapes.jpg' },
    'kv-image': { type: 'string', default: 'examples/wide.jpg' },
    'new-tokens': { type: 'string', default: '48' },
    conc: { type: 'string', default: '1,4,8,16' },
    method: { type: 'string', default: 'lightvlm:0.03' },
    kv: { type: 'string', default: 'lightvlm' },
    'kv-memory': { type: 'string', default: '268435456' },
    'kv-answer': { type: 'string', default: '2048' },
    'mixed-requests': { type: 'string', default: '16' },
    json: { type: 'string' },
});

const PROMPTS = ['What color is the square?', 'Describe the image.', 'What shape is the yellow object?', 'How many objects are there?', 'What is in the top left?'];

async function main(): Promise<void> {
  if (!v.model) throw new UsageError("--model DIR is required. Run 'serving --help' for the flags.");
  const N = intFlag(v['new-tokens'], '--new-tokens', 1);
  const concs = v.conc!.split(',').map((c) => intFlag(c, '--conc', 1, 1024));
  const R = intFlag(v['mixed-requests'], '--mixed-requests', 1);
  const mem = intFlag(v['kv-memory'], '--kv-memory', 1);
  const kvAnswer = intFlag(v['kv-answer'], '--kv-answer', 1);
  const e = await Engine.load(v.model);
  const sched = e.scheduler({ maxBatch: 64, maxQueue: 1024 });
  let steps: { b: number; ms: number }[] = [];
  sched.onStep = (b, ms) => steps.push({ b, ms });
  const methods: { name: string; acc: GenerateOptions['acceleration'] }[] = [
    { name: 'none', acc: {} },
    { name: `${v.method} + kv ${v.kv}`, acc: toAcceleration({ prefill: parseMethodSpec(v.method!), kv: parseKvSpec(v.kv!) }) },
  ];
  const img: PreparedImage = await e.prepareImage(v.image!);
  const run = (n: number, acc: GenerateOptions['acceleration'], maxNew: (i: number) => number) =>
    Promise.all(Array.from({ length: n }, (_, i) => e.generate({ image: img, prompt: PROMPTS[i % PROMPTS.length]! }, { maxNewTokens: maxNew(i), minNewTokens: maxNew(i), acceleration: acc })));
  for (const meth of methods) await run(2, meth.acc, () => 4); // warm-up: segments and batch graphs built
  const out: Record<string, unknown> = { model: v.model, imageTokens: img.imageTokens, newTokens: N, throughput: [] as unknown[] };
  for (const c of concs) {
    for (const meth of methods) {
      steps = [];
      const t0 = performance.now();
      const res = await run(c, meth.acc, () => N);
      const wall = performance.now() - t0;
      const full = steps.filter((s) => s.b === c);
      const tps = (full.reduce((a, s) => a + s.b, 0) * 1000) / full.reduce((a, s) => a + s.ms, 0);
      const row = { method: meth.name, concurrency: c, fullBatchSteps: full.length, decodeTokPerSec: tps, stepMsMedian: full.map((s) => s.ms).sort((a, b) => a - b)[full.length >> 1], wallS: wall / 1000, prefillMsMedian: res.map((r) => r.stats.prefillMs).sort((a, b) => a - b)[c >> 1], cacheMiB: res[0]!.stats.cacheBytes / 2 ** 20 };
      (out.throughput as unknown[]).push(row);
      process.stderr.write(`${JSON.stringify(row)}\n`);
    }
  }
  // mixed workload: prompts and answer lengths vary, all submitted at once
  out.mixed = [];
  for (const meth of methods) {
    const t0 = performance.now();
    await run(R, meth.acc, (i) => [16, 32, N][i % 3]!);
    const row = { method: meth.name, requests: R, wallS: (performance.now() - t0) / 1000, requestsPerMinute: (R * 60_000) / (performance.now() - t0) };
    (out.mixed as unknown[]).push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
  // admission within a fixed KV memory: the scheduler's reservation of one request on a real prompt
  const big = (await e.prepareImage(v['kv-image']!)) as PreparedImage;
  const prompt = e.buildPrompt(PROMPTS[0]!, big as Parameters<Engine['buildPrompt']>[1]);
  out.admission = methods.map((meth) => {
    const need = sched.reservation(prompt, { maxNewTokens: kvAnswer, acceleration: meth.acc });
    return { method: meth.name, imageTokens: big.imageTokens, answerTokens: kvAnswer, reservationMiB: need / 2 ** 20, kvMemoryMiB: mem / 2 ** 20, concurrency: Math.floor(mem / need) };
  });
  process.stderr.write(`${JSON.stringify(out.admission)}\n`);
  if (v.json) fs.writeFileSync(v.json, JSON.stringify(out, null, 2));
  await e.dispose();
}

scriptMain('serving', main);
