// Flag parsing for the stand-alone scripts (`npm run load`, `node dist/src/bench/serving.js`):
// --help prints the usage and exits 0; an unknown flag, a missing value or a bad number prints one
// line naming the flag and exits 2, as the `lightvlm` subcommands do (no ERR_PARSE_ARGS stack trace).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { LightVLMError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>>['values'];

/** Thrown for a flag mistake; `scriptMain` prints it and exits 2. */
export class UsageError extends Error {}

/** util.parseArgs that prints `usage` for -h/--help (exit 0) and turns its errors into one line + exit 2. */
export function parseScriptArgs<O extends Options>(name: string, usage: string, options: O, argv = process.argv.slice(2)): Values<O> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage.endsWith('\n') ? usage : usage + '\n');
    process.exit(0);
  }
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    const msg = (e as Error).message.split('\n').filter((l) => !l.startsWith('To specify')).join(' ').replace(/\.?\s*$/, '');
    return usageExit(name, `${msg}. Run '${name} --help' for the flags.`);
  }
}

function usageExit(name: string, msg: string): never {
  process.stderr.write(`${name}: error: ${msg}\n`);
  process.exit(2);
}

/** A whole number flag in [min, max]; else a UsageError naming the flag. */
export function intFlag(raw: string | undefined, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}; got '${raw}'.`);
  }
  return v;
}

/** Runs a script's main: a UsageError prints one line and exits 2, a LightVLMError exits with its code's status, anything else 1. */
export function scriptMain(name: string, main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    if (e instanceof UsageError) usageExit(name, e.message);
    if (e instanceof LightVLMError) {
      process.stderr.write(`${name}: error: ${e.message} (${e.code})\n`);
      process.exitCode = e.exitCode;
      return;
    }
    process.stderr.write(`${name}: error: ${(e as Error)?.message ?? e}\n`);
    if (process.env.LIGHTVLM_DEBUG) process.stderr.write(`${(e as Error)?.stack}\n`);
    process.exitCode = 1;
  });
}
