// `lightvlm run`: one question about one image. Plain mode streams the answer; --json prints one object.
import { LightVLMError } from '../errors.js';
import type { Acceleration, GenerateOptions } from '../engine/types.js';
import { setDefaultThreads } from '../runtime/ort.js';
import { parseStages } from '../merge/schedule.js';
import { MERGE_MODES, SCORE_RULES } from '../merge/types.js';
import { isOneOf } from '../util/never.js';
import { KV_METHODS } from '../kvcache/registry.js';
import { PREFILL_METHODS } from '../merge/plan.js';
import { checkGenerateOptions, checkThreads } from '../options.js';
import { loadImage } from '../processing/image.js';
import { DEMO_MODEL, FLAG_NAMES, num, readPrompt, refuseEmpty } from './common.js';
import { checkOutputPath, DTYPE_HELP, dtypeLoadOptions, parseFlags, resolveIo } from './measureShared.js';
import { parseKvSpec, parseMethodSpec } from '../engine/specs.js';
import { parseVitMergeSpec } from '../vitmerge/options.js';

const HELP = `Usage: lightvlm run --image FILE --prompt TEXT [options]

Answers a question about an image. Streams the answer as it is generated.

Model and input:
  --model DIR              Hugging Face model folder (default: the bundled demo, models/synth-llava)
  --image FILE             image file (JPEG, PNG, WebP, GIF, TIFF)
  --prompt TEXT            the question; --prompt - reads it from standard input
  --prompt-file FILE       read the question from FILE (for long prompts)

Generation:
  --max-new-tokens N       stop after N tokens (default 64)
  --min-new-tokens N       suppress end-of-sequence until N tokens (default 0)
  --temperature T          sample with temperature T (default 0: greedy)
  --top-k K                sample from the K most likely tokens
  --top-p P                sample from the smallest set with probability mass P
  --seed S                 random seed for sampling and for --method random (default 0)
  --stop TEXT              stop when TEXT appears (repeatable)

Acceleration (LightVLM):
  --method NAME[:KEEP]     prefill token reduction: ${PREFILL_METHODS.join(', ')};
                           KEEP = final fraction of image
                           tokens kept (default 0.35), e.g. --method lightvlm:0.10
  --stages L:K,...         explicit merge schedule, e.g. 3:0.70,6:0.50,12:0.35 (layer:cumulative keep)
  --merge MODE             how merged-away tokens are folded in: ${MERGE_MODES.join(', ')} (default ${MERGE_MODES[0]})
  --score RULE             image-token importance (docs/schedule.md): novelty (default: at the first
                           stage, distance from the image's mean hidden state; attention after),
                           attention (the spec's score), debiased (row-debiased first-stage
                           attention, stages shifted to layer >= 2), debiased-all
  --kv NAME[:BUDGET]       KV-cache compression while decoding: ${KV_METHODS.join(', ')} (default none;
                           stale = component A, lightvlm = A + budgeted eviction B);
                           BUDGET = cache entries per layer
  --vit-merge SPEC         token merging inside the vision tower (docs/vit-merge.md):
                           MODE[:LAYER[:KEEP[:LAYERS]]], MODE = unmerge (merged tokens copied
                           back before the projector) or reduce (fewer tokens reach the LM)
  --explain FILE.png       (or .jpg, .webp) draw the image with the tokens kept at each merge stage

Output:
  --json                   print one JSON object { text, tokenIds, stats } instead of streaming
  --threads N              ONNX Runtime threads (default: all cores)
  --dtype D                ${DTYPE_HELP}
  -h, --help               show this help
`;

const OPTIONS = {
  model: { type: 'string' },
  image: { type: 'string' },
  prompt: { type: 'string' },
  'prompt-file': { type: 'string' },
  'max-new-tokens': { type: 'string' },
  'min-new-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  seed: { type: 'string' },
  stop: { type: 'string', multiple: true },
  method: { type: 'string' },
  stages: { type: 'string' },
  merge: { type: 'string' },
  score: { type: 'string' },
  kv: { type: 'string' },
  'vit-merge': { type: 'string' },
  explain: { type: 'string' },
  json: { type: 'boolean' },
  threads: { type: 'string' },
  dtype: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Options shared by run/eval/bench: --method/--stages/--merge/--kv into `acceleration`. */
export function accelerationFrom(v: { method?: string; stages?: string; merge?: string; score?: string; kv?: string; seed?: string; 'vit-merge'?: string }): Acceleration {
  const acc: Acceleration = {};
  if (v.method !== undefined || v.stages !== undefined) {
    const m = parseMethodSpec(v.method ?? 'lightvlm');
    acc.prefill = { method: m.method, ...(m.keep !== undefined ? { keep: m.keep } : {}) };
    if (v.stages) acc.prefill.stages = parseStages(v.stages);
    if (v.merge) {
      if (!isOneOf(MERGE_MODES, v.merge)) throw new LightVLMError(`--merge ${v.merge}: use ${MERGE_MODES.join(', ')}.`, 'E_OPTION');
      acc.prefill.mergeMode = v.merge;
    }
    if (v.score) {
      if (!isOneOf(SCORE_RULES, v.score)) throw new LightVLMError(`--score ${v.score}: use ${SCORE_RULES.join(', ')}.`, 'E_OPTION');
      acc.prefill.score = v.score;
    }
    if (v.seed !== undefined) acc.prefill.seed = Number(v.seed);
  } else if (v.merge || v.score) throw new LightVLMError('--merge and --score need --method lightvlm (or --stages).', 'E_OPTION');
  if (v.kv) acc.decode = parseKvSpec(v.kv);
  const vit = v['vit-merge'] === undefined ? undefined : parseVitMergeSpec(v['vit-merge']);
  if (vit) acc.vitMerge = vit;
  return acc;
}

export async function runCommand(argv: string[]): Promise<number> {
  const v = parseFlags(argv, OPTIONS, 'run');
  if (v.help) {
    process.stdout.write(HELP);
    return 0;
  }
  refuseEmpty(v, ['model', 'image', 'method', 'stages', 'merge', 'score', 'kv', 'vit-merge', 'explain', 'threads', 'stop']);
  if (!v.image) throw new LightVLMError('--image is required (an image file). See lightvlm run --help.', 'E_INPUT');
  if (v.prompt === undefined && v['prompt-file'] === undefined) throw new LightVLMError('--prompt is required (the question about the image; --prompt - reads standard input, --prompt-file FILE a file).', 'E_INPUT');
  const prompt = readPrompt(v);
  if (v.threads !== undefined) setDefaultThreads(checkThreads(num(v.threads, '--threads', { int: true, min: 1 }), '--threads'));
  const { EXPLAIN_EXTENSIONS } = await import('../report/explain.js');
  checkOutputPath(v.explain, '--explain', EXPLAIN_EXTENSIONS);
  const opts: GenerateOptions = checkGenerateOptions({
    maxNewTokens: num(v['max-new-tokens'], '--max-new-tokens', { int: true, min: 1 }) ?? 64,
    minNewTokens: num(v['min-new-tokens'], '--min-new-tokens', { int: true, min: 0 }) ?? 0,
    temperature: num(v.temperature, '--temperature', { min: 0 }) ?? 0,
    ...(v['top-k'] ? { topK: num(v['top-k'], '--top-k', { int: true, min: 1 })! } : {}),
    ...(v['top-p'] ? { topP: num(v['top-p'], '--top-p', { min: 0, max: 1 })! } : {}),
    seed: num(v.seed, '--seed', { int: true, min: 0 }) ?? 0,
    ...(v.stop ? { stopStrings: v.stop } : {}),
    acceleration: accelerationFrom(v),
  }, FLAG_NAMES);
  // The image is read and checked before the model loads: a typo costs no load time.
  const image = await loadImage(v.image).then(() => v.image!);
  const { Engine } = await import('../engine/vlm.js');
  const load = dtypeLoadOptions(v.dtype, resolveIo());
  const engine = await Engine.load(v.model ?? DEMO_MODEL, load.opts);
  load.done();
  try {
    const input = { image, prompt };
    let result;
    if (v.json) {
      result = await engine.generate(input, opts);
      const s = result.stats;
      process.stdout.write(
        JSON.stringify({ text: result.text, tokenIds: result.tokenIds, stats: { ...s, keptImageTokens: s.keptImageTokens }, kept: result.kept.map((k) => ({ layer: k.layer, count: k.imageIndices.length })), ...(result.vision ? { vision: { mode: result.vision.mode, layers: result.vision.layers, tokensPerLayer: result.vision.tokensPerLayer } } : {}) }) + '\n',
      );
    } else {
      const stream = engine.stream(input, opts);
      for await (const piece of stream) process.stdout.write(piece);
      process.stdout.write('\n');
      result = await stream.result;
    }
    if (v.explain) {
      const { drawExplanation } = await import('../report/explain.js');
      try {
        await drawExplanation(v.image, result, v.explain);
      } catch (e) {
        throw new LightVLMError(`could not write --explain ${v.explain}: ${(e as Error).message.split('\n')[0]}`, 'E_IO');
      }
      process.stderr.write(`wrote ${v.explain}\n`);
    }
  } finally {
    await engine.dispose();
  }
  return 0;
}
