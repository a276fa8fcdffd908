// `lightvlm make-checkpoint`: writes a random-weight checkpoint with the exact shapes of a published model.
import { parseArgs } from 'node:util';
import { LightVLMError } from '../errors.js';
import { LIKE_NAMES, makeCheckpoint, resolveShape } from '../checkpoint/make.js';

export const MAKE_CHECKPOINT_HELP = `Usage: lightvlm make-checkpoint --like NAME --out DIR [options]

Writes a Hugging Face model folder (config.json, model.safetensors or shards + index, tokenizer.json,
tokenizer_config.json, chat_template.jinja, generation_config.json, processor_config.json) whose tensors
have the exact names and shapes of a published vision-language model, filled with seeded random values.
Use it to measure speed and memory at real sizes without downloading weights; its answers are noise.

Options:
  --like NAME      the model to imitate (required): ${LIKE_NAMES.join(', ')}
                     tiny-llava       the fixtures/tiny-llava shapes (about 0.3 M parameters, for tests)
                     internvl2_5-1b   OpenGVLab/InternVL2_5-1B-MPO-hf (InternViT-300M + Qwen2.5-0.5B)
                     internvl2_5-4b   OpenGVLab/InternVL2_5-4B-MPO-hf (InternViT-300M + Qwen2.5-3B)
                     llava-1.5-7b     llava-hf/llava-1.5-7b-hf (CLIP ViT-L/336 + Vicuna-7B, ~14 GB in bf16)
                     qwen2-vl-2b      Qwen/Qwen2-VL-2B-Instruct
  --out DIR        the folder to write (required); created if missing, must be empty unless --force
  --seed S         integer seed of the random values (default 0); same seed, same bytes
  --dtype T        bf16 (default, as the published weights) or fp32
  --layers N       override the language model's number of decoder layers (quick tests)
  --force          write into a non-empty --out, replacing checkpoint files already there
  --shard-gb G     largest weight file in GB before sharding (default 2)
  --quiet          no progress on stderr
  -h, --help       show this help

The tokenizer is a byte-level BPE stand-in with the family's special tokens at their real ids.
Example: lightvlm make-checkpoint --like internvl2_5-1b --out /tmp/ivl-1b`;

/** Runs the command; `print` receives stdout text (the help, then the folder written). */
export async function makeCheckpointCommand(argv: string[], print: (text: string) => void = (t) => process.stdout.write(t)): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        like: { type: 'string' },
        out: { type: 'string' },
        seed: { type: 'string' },
        dtype: { type: 'string' },
        layers: { type: 'string' },
        force: { type: 'boolean' },
        'shard-gb': { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    throw new LightVLMError(`make-checkpoint: ${(e as Error).message}\nRun 'lightvlm make-checkpoint --help' for the options.`, 'E_OPTION');
  }
  if (values.help) {
    print(MAKE_CHECKPOINT_HELP + '\n');
    return 0;
  }
  const like = values.like as string | undefined;
  const out = values.out as string | undefined;
  if (!like) throw new LightVLMError(`make-checkpoint needs --like NAME; valid names: ${LIKE_NAMES.join(', ')}.`, 'E_OPTION');
  if (!out) throw new LightVLMError('make-checkpoint needs --out DIR, the folder to write the checkpoint to.', 'E_OPTION');
  const int = (flag: string, v: string | boolean | undefined): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !/^-?\d+$/.test(v)) throw new LightVLMError(`--${flag} must be an integer, got ${String(v)}.`, 'E_OPTION');
    return Number(v);
  };
  const dtype = (values.dtype as string | undefined) ?? 'bf16';
  if (dtype !== 'bf16' && dtype !== 'fp32') throw new LightVLMError(`--dtype must be bf16 or fp32, got ${dtype}.`, 'E_OPTION');
  let maxShardBytes: number | undefined;
  if (values['shard-gb'] !== undefined) {
    const g = Number(values['shard-gb']);
    if (!(g > 0)) throw new LightVLMError(`--shard-gb must be a positive number, got ${String(values['shard-gb'])}.`, 'E_OPTION');
    maxShardBytes = g * 1e9;
  }
  const layers = int('layers', values.layers);
  resolveShape(like, layers); // validates --like / --layers before touching --out
  const res = await makeCheckpoint({
    like, out, dtype, layers, maxShardBytes,
    seed: int('seed', values.seed) ?? 0,
    force: values.force === true,
    log: values.quiet ? undefined : (line) => process.stderr.write(line + '\n'),
  });
  print(`${res.dir}\n`);
  return 0;
}
