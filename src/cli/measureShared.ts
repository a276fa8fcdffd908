// Pieces shared by `lightvlm eval` and `lightvlm bench`: argument errors as LightVLMError, progress
// (a cli-progress bar on a terminal, plain lines in logs and CI), Ctrl-C handling, output files.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import cliProgress from 'cli-progress';
import { ExitCode, LightVLMError } from '../errors.js';
import type { VLM } from '../engine/types.js';
import type { LoadOptions } from '../engine/vlm.js';
import { DTYPES, type DType } from '../graph/quant.js';

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  isTTY: boolean;            // progress bar when true, plain lines otherwise
}

/** Injection points so tests can drive the commands with a fake model and captured output. */
export interface CommandDeps {
  loadVLM?: (dir: string, opts?: LoadOptions) => Promise<VLM>;
  io?: Partial<Io>;
}

export const resolveIo = (io: Partial<Io> = {}): Io => ({
  stdout: io.stdout ?? process.stdout,
  stderr: io.stderr ?? process.stderr,
  isTTY: io.isTTY ?? Boolean(process.stderr.isTTY),
});

/** The real engine, imported lazily so this module (and its tests) load before src/engine/vlm.ts exists. */
export async function defaultLoadVLM(dir: string, opts?: LoadOptions): Promise<VLM> {
  const { loadVLM } = await import('../engine/vlm.js');
  return loadVLM(dir, opts);
}

export const DTYPE_HELP = 'weights of every Linear: fp32 (default, the reference), q8 or q4 (block-32 MatMulNBits; quantized once, then cached on disk under $LIGHTVLM_CACHE_DIR or ~/.cache/lightvlm)';

/** --dtype checked and turned into load options; the first (uncached) quantization shows progress. */
export function dtypeLoadOptions(raw: string | undefined, io: Io): { opts: LoadOptions; done: () => void } {
  if (raw !== undefined && !(DTYPES as readonly string[]).includes(raw)) {
    throw new LightVLMError(`--dtype ${raw}: use one of ${DTYPES.join(', ')}.`, 'E_OPTION');
  }
  const dtype = (raw ?? 'fp32') as DType;
  let bar: Progress | undefined;
  const opts: LoadOptions = {
    dtype,
    onProgress: ({ done, total }) => {
      bar ??= new Progress(io, Math.round(total / 1e6), `M params quantized to ${dtype}`);
      bar.update(Math.min(Math.round(done / 1e6), Math.round(total / 1e6)), 'first load: quantizing, then cached');
    },
    onWarning: (m) => io.stderr.write(`warning: ${m}\n`),
  };
  return { opts, done: () => bar?.stop() };
}

type Options = NonNullable<ParseArgsConfig['options']>;

type Flags<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>>['values'];

/** util.parseArgs with its TypeErrors turned into a message that points at --help. */
export function parseFlags<O extends Options>(argv: string[], options: O, command: string): Flags<O> {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    // Node's hint about '--flag=-XYZ' is about its own syntax; the rest of its text is kept.
    const msg = (e as Error).message.split('\n').filter((l) => !l.startsWith('To specify')).join(' ').replace(/\.?\s*$/, '');
    throw new LightVLMError(`${msg}. Run 'lightvlm ${command} --help' for the flags.`, 'E_OPTION');
  }
}

export function positiveInt(raw: string | undefined, flag: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v <= 0) throw new LightVLMError(`${flag} must be a positive whole number; got '${raw}'.`, 'E_OPTION');
  return v;
}

export function requireDir(dir: string, flag: string, what: string): string {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new LightVLMError(`${flag} '${dir}' is not a folder: ${what}.`, 'E_IO');
  return dir;
}

/**
 * Fails before a long run, not after it, when an output file could not be written: the folder
 * must exist and be writable, the path must not be a folder, and the name must end in one of `ext`.
 */
export function checkOutputPath(file: string | undefined, flag: string, ext?: string | readonly string[]): void {
  if (file === undefined) return;
  if (file.trim() === '') throw new LightVLMError(`${flag} is empty; give the file to write.`, 'E_OPTION');
  const exts = ext === undefined ? [] : typeof ext === 'string' ? [ext] : ext;
  if (exts.length && !exts.some((e) => file.toLowerCase().endsWith(e))) throw new LightVLMError(`${flag} ${file}: the file name must end in ${exts.join(' or ')}.`, 'E_OPTION');
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) throw new LightVLMError(`${flag} ${file}: folder '${dir}' does not exist; create it first.`, 'E_IO');
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw new LightVLMError(`${flag} ${file} is a folder; give a file name.`, 'E_IO');
  try {
    fs.accessSync(fs.existsSync(file) ? file : dir, fs.constants.W_OK);
  } catch {
    throw new LightVLMError(`${flag} ${file}: cannot write there (permission denied). Choose another path.`, 'E_IO');
  }
}

export function writeOutput(file: string, text: string, io: Io, what: string): void {
  try {
    fs.writeFileSync(file, text);
    io.stderr.write(`wrote ${what} to ${file}\n`);
  } catch (e) {
    throw new LightVLMError(`could not write ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`, 'E_IO');
  }
}

const clock = (s: number): string => {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m` : m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
};

/** Progress with ETA. Log messages during a bar are held back and printed when it stops. */
export class Progress {
  private readonly bar?: cliProgress.SingleBar;
  private readonly start = performance.now();
  private readonly held: string[] = [];
  private lastLine = -Infinity;

  constructor(private readonly io: Io, private readonly total: number, private readonly unit: string) {
    if (io.isTTY && total > 0) {
      this.bar = new cliProgress.SingleBar({
        format: `{bar} {percentage}% | {value}/{total} ${unit} | {duration_formatted} elapsed, ETA {eta_formatted} | {label}`,
        stream: io.stderr as NodeJS.WritableStream & { isTTY?: boolean },
        etaBuffer: 50, // a longer window: per-item times vary with the method
        hideCursor: true,
      }, cliProgress.Presets.shades_classic);
      this.bar.start(total, 0, { label: '' });
    }
  }

  update(done: number, label: string): void {
    if (this.bar) return this.bar.update(done, { label });
    // Plain lines go to logs: one every 2 s at most (plus the last), not one per item.
    const now = performance.now();
    if (done < this.total && now - this.lastLine < 2000) return;
    this.lastLine = now;
    const elapsed = (now - this.start) / 1e3;
    const eta = done > 0 ? (elapsed / done) * (this.total - done) : NaN;
    this.io.stderr.write(`[${done}/${this.total} ${this.unit}] ${label} (elapsed ${clock(elapsed)}, ETA ${clock(eta)})\n`);
  }

  log(line: string): void {
    if (this.bar) this.held.push(line);
    else this.io.stderr.write(line + '\n');
  }

  stop(): void {
    this.bar?.stop();
    for (const l of this.held.splice(0)) this.io.stderr.write(l + '\n');
  }
}

/**
 * First Ctrl-C: abort between model calls, so the command can still print what it has. A second
 * Ctrl-C exits at once, for when the current call is slow.
 */
export function catchInterrupt(io: Io): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const handler = (): void => {
    if (ac.signal.aborted) process.exit(ExitCode.INTERRUPTED);
    io.stderr.write('\ninterrupted: finishing the current call, then reporting what has been measured (Ctrl-C again to quit now)\n');
    ac.abort();
  };
  process.on('SIGINT', handler);
  return { signal: ac.signal, dispose: () => { process.off('SIGINT', handler); } };
}

/** Runs a command body; bad input becomes "lightvlm CMD: message" on stderr and its exit code. */
export async function runCommand(io: Io, command: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (!(e instanceof LightVLMError)) throw e;
    io.stderr.write(`lightvlm ${command}: ${e.message}\n`);
    return e.exitCode;
  }
}
