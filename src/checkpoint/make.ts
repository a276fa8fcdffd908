// `make-checkpoint`: writes a random-weight Hugging Face model folder with the exact tensor names and
// shapes of a published VLM (see shapes.ts for the numbers and their sources), so the engine's speed
// can be measured at real sizes without downloading weights. The outputs are meaningless text.
import fs from 'node:fs';
import path from 'node:path';
import { LightVLMError } from '../errors.js';
import { LIKE_NAMES, modelShape, type LikeName, type ModelShape } from './shapes.js';
import { buildTokenizer } from './tokenizerStub.js';
import { dtypeBytes, numel, planShards, writeSafetensors, type DType } from './writeSafetensors.js';

export { LIKE_NAMES };
export type { LikeName, DType };

export interface MakeCheckpointOptions {
  like: string;
  out: string;
  seed?: number; // default 0
  dtype?: DType; // default bf16
  layers?: number; // overrides the LM depth (quick tests)
  force?: boolean; // allow a non-empty `out` (our files in it are replaced)
  maxShardBytes?: number; // default 2e9, as HF shards by decimal GB
  log?: (line: string) => void; // progress lines (the CLI passes stderr)
}

export interface MakeCheckpointResult {
  dir: string;
  params: number; // number of weight values written
  bytes: number; // tensor data bytes
  files: string[]; // safetensors files written
  seconds: number;
}

const OUR_FILES = ['config.json', 'generation_config.json', 'processor_config.json', 'tokenizer.json', 'tokenizer_config.json',
  'chat_template.jinja', 'model.safetensors', 'model.safetensors.index.json', 'make_checkpoint.json', 'README.md'];

/** Resolves the shape table for `like` with the options applied (no files touched). */
export function resolveShape(like: string, layers?: number): ModelShape {
  const shape = modelShape(like);
  if (layers !== undefined) {
    if (!Number.isInteger(layers) || layers < 1) throw new LightVLMError(`--layers must be a positive integer, got ${layers}.`, 'E_OPTION');
    shape.lm = { ...shape.lm, layers };
  }
  return shape;
}

export async function makeCheckpoint(opts: MakeCheckpointOptions): Promise<MakeCheckpointResult> {
  const t0 = performance.now();
  const seed = opts.seed ?? 0;
  const dtype: DType = opts.dtype ?? 'bf16';
  if (dtype !== 'bf16' && dtype !== 'fp32') throw new LightVLMError(`--dtype must be bf16 or fp32, got ${String(dtype)}.`, 'E_OPTION');
  if (!Number.isInteger(seed)) throw new LightVLMError(`--seed must be an integer, got ${seed}.`, 'E_OPTION');
  const shape = resolveShape(opts.like, opts.layers);
  const log = opts.log ?? (() => {});
  const dir = path.resolve(opts.out);
  prepareDir(dir, opts.force ?? false);

  const tensors = shape.tensors(shape.lm);
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`shape table for ${shape.like} lists ${t.name} twice`);
    names.add(t.name);
  }
  const params = tensors.reduce((s, t) => s + numel(t.shape), 0);
  const bytes = params * dtypeBytes(dtype);
  const shards = planShards(tensors, dtype, opts.maxShardBytes ?? 2e9);
  log(`make-checkpoint: ${shape.like} (${shape.hfRepo}) → ${dir}: ${(params / 1e6).toFixed(1)} M params, ` +
    `${gb(bytes)} ${dtype}, ${shards.length} file(s), seed ${seed}`);

  // Small files first, so a half-written folder is recognisable.
  const cfgDtype = dtype === 'bf16' ? 'bfloat16' : 'float32';
  writeJson(dir, 'config.json', shape.config(cfgDtype, shape.lm));
  writeJson(dir, 'generation_config.json', { ...stripUndefined(shape.generation), transformers_version: '5.17.0' });
  writeJson(dir, 'processor_config.json', shape.processor);
  const tok = buildTokenizer(shape.tokenizer, shape.lm.vocab);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tok.tokenizer));
  writeJson(dir, 'tokenizer_config.json', tok.config);
  fs.writeFileSync(path.join(dir, 'chat_template.jinja'), shape.chatTemplate);

  let done = 0;
  let lastPct = -1;
  const report = (n: number) => {
    done += n;
    const pct = Math.floor((100 * done) / bytes);
    if (pct >= lastPct + 5 || done === bytes) {
      lastPct = pct;
      const s = (performance.now() - t0) / 1000;
      log(`make-checkpoint: ${pct}% (${gb(done)} / ${gb(bytes)}) ${s.toFixed(1)} s`);
    }
  };
  for (const sh of shards) await writeSafetensors(path.join(dir, sh.file), sh.tensors, dtype, seed, report);
  if (shards.length > 1) {
    const weightMap: Record<string, string> = {};
    for (const sh of shards) for (const t of sh.tensors) weightMap[t.name] = sh.file;
    writeJson(dir, 'model.safetensors.index.json', { metadata: { total_size: bytes, total_parameters: params }, weight_map: weightMap });
  }
  const seconds = (performance.now() - t0) / 1000;
  const files = shards.map((s) => s.file);
  writeJson(dir, 'make_checkpoint.json', {
    random_weights: true, like: shape.like, shapes_of: shape.hfRepo, seed, dtype, lm_layers: shape.lm.layers, params, bytes, files,
  });
  fs.writeFileSync(path.join(dir, 'README.md'), readme(shape, seed, dtype, params));
  log(`make-checkpoint: wrote ${files.length} weight file(s), ${gb(bytes)} in ${seconds.toFixed(1)} s`);
  return { dir, params, bytes, files, seconds };
}

function prepareDir(dir: string, force: boolean): void {
  if (fs.existsSync(dir)) {
    if (!fs.statSync(dir).isDirectory()) throw new LightVLMError(`--out ${dir} exists and is not a directory.`, 'E_IO');
    const entries = fs.readdirSync(dir);
    if (entries.length > 0 && !force) {
      throw new LightVLMError(`--out ${dir} is not empty. Choose an empty or new directory, or pass --force to overwrite the checkpoint files in it.`, 'E_IO');
    }
    for (const e of entries) {
      if (OUR_FILES.includes(e) || /^model-\d{5}-of-\d{5}\.safetensors$/.test(e)) fs.rmSync(path.join(dir, e), { force: true });
    }
  } else {
    fs.mkdirSync(dir, { recursive: true });
  }
}

function writeJson(dir: string, name: string, obj: unknown): void {
  fs.writeFileSync(path.join(dir, name), JSON.stringify(obj, null, 2) + '\n');
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

const gb = (b: number) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : `${(b / 1e6).toFixed(1)} MB`);

function readme(shape: ModelShape, seed: number, dtype: DType, params: number): string {
  const specials = shape.tokenizer.specials.filter((s) => s.special !== false).map((s) => `\`${s.content}\`=${s.id}`).join(', ');
  return `# Random-weight checkpoint shaped like ${shape.hfRepo}

Written by \`lightvlm make-checkpoint --like ${shape.like} --seed ${seed} --dtype ${dtype}\`.
**The weights are random** (normal, std 0.02 for matrices and embeddings; norm weights 1, biases 0).
Use it to measure speed and memory at the real sizes; generated text is meaningless.

- Architecture: ${shape.family}, ${(params / 1e6).toFixed(1)} M parameters, LM ${shape.lm.layers} layers × ${shape.lm.hidden}
  (${shape.lm.heads} heads, ${shape.lm.kvHeads} KV heads, MLP ${shape.lm.intermediate}), vocab ${shape.lm.vocab}.
- Layout: transformers 5 native (\`config.json\`, \`processor_config.json\` with a nested \`image_processor\`,
  \`chat_template.jinja\`), tensor names as transformers saves them.
- Tokenizer: a **byte-level BPE stand-in** (256 byte tokens, a few merges, filler tokens for unused ids),
  not the published vocabulary${shape.family === 'llava' && shape.lm.vocab > 1000 ? ' (the real LLaVA-1.5 tokenizer is a Llama SentencePiece model)' : ''}.
  Special tokens sit at the real ids: ${specials}.
`;
}
