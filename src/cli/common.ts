// Options shared by run, eval and bench: model folder, threads, number parsing.
import fs from 'node:fs';
import { LightVLMError } from '../errors.js';
import { checkPrompt, MAX_PROMPT_CHARS } from '../options.js';
import { demoModelPath, PACKAGE_ROOT } from '../paths.js';

export { PACKAGE_ROOT };
export const DEMO_MODEL = demoModelPath;

export function num(raw: string | undefined, flag: string, opts: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  const bad = raw.trim() === '' || !Number.isFinite(v) || (opts.int && !Number.isInteger(v)) || (opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max);
  if (bad) {
    const range = [opts.min !== undefined ? `>= ${opts.min}` : '', opts.max !== undefined ? `<= ${opts.max}` : ''].filter(Boolean).join(' and ');
    throw new LightVLMError(`${flag} must be ${opts.int ? 'a whole number' : 'a number'}${range ? ' ' + range : ''}; got '${raw}'.`, 'E_OPTION');
  }
  return v;
}

/** An option given as '' (`--method ''`) is a mistake, not "use the default": say so. */
export function refuseEmpty(values: Record<string, unknown>, flags: readonly string[]): void {
  for (const f of flags) {
    const v = values[f];
    const list = Array.isArray(v) ? v : [v];
    if (list.some((x) => typeof x === 'string' && x.trim() === '')) {
      throw new LightVLMError(`--${f} is empty; give it a value or leave the flag out (see --help).`, 'E_OPTION');
    }
  }
}

/** CLI spellings of the library's option names, so checkGenerateOptions speaks in flags. */
export const FLAG_NAMES = {
  maxNewTokens: '--max-new-tokens',
  minNewTokens: '--min-new-tokens',
  temperature: '--temperature',
  topK: '--top-k',
  topP: '--top-p',
  seed: '--seed',
  stopStrings: '--stop',
  'acceleration.prefill.method': '--method',
  'acceleration.prefill.keep': '--method NAME:KEEP',
  'acceleration.prefill.stages': '--stages',
  'acceleration.prefill.mergeMode': '--merge',
  'acceleration.prefill.score': '--score',
  'acceleration.decode.method': '--kv',
  'acceleration.decode.budget': '--kv NAME:BUDGET',
  'acceleration.vitMerge': '--vit-merge',
} as const;

/**
 * The prompt from --prompt TEXT, --prompt - (standard input) or --prompt-file FILE. Long prompts go
 * through a file or stdin: a command line of tens of KB is fragile (see docs and issue #10 notes).
 */
export function readPrompt(v: { prompt?: string; 'prompt-file'?: string }, stdin: () => Buffer = () => fs.readFileSync(0)): string {
  if (v.prompt !== undefined && v['prompt-file'] !== undefined) throw new LightVLMError('give either --prompt or --prompt-file, not both.', 'E_OPTION');
  const limitBytes = 4 * MAX_PROMPT_CHARS; // UTF-8: at most 4 bytes a character
  const decode = (buf: Buffer, what: string): string => {
    if (buf.length > limitBytes) throw new LightVLMError(`${what} holds ${buf.length} bytes; a prompt is at most ${MAX_PROMPT_CHARS} characters.`, 'E_PROMPT_TOO_LONG');
    return buf.toString('utf8').replace(/\r?\n$/, ''); // `echo q | lightvlm run --prompt -` adds one newline
  };
  let text: string | undefined;
  if (v['prompt-file'] !== undefined) {
    const f = v['prompt-file'];
    let st: fs.Stats;
    try {
      st = fs.statSync(f);
    } catch {
      throw new LightVLMError(`--prompt-file ${f} does not exist.`, 'E_IO');
    }
    if (!st.isFile()) throw new LightVLMError(`--prompt-file ${f} is not a file.`, 'E_IO');
    if (st.size > limitBytes) throw new LightVLMError(`--prompt-file ${f} is ${st.size} bytes; a prompt is at most ${MAX_PROMPT_CHARS} characters.`, 'E_PROMPT_TOO_LONG');
    text = decode(fs.readFileSync(f), `--prompt-file ${f}`);
  } else if (v.prompt === '-') {
    text = decode(stdin(), 'standard input (--prompt -)');
  } else {
    text = v.prompt;
  }
  if (text === undefined || text.trim() === '') {
    throw new LightVLMError('the question is missing or empty: pass --prompt TEXT, --prompt - (read standard input) or --prompt-file FILE.', 'E_PROMPT');
  }
  return checkPrompt(text);
}
