#!/usr/bin/env node
// `lightvlm` command: dispatches to the subcommands. Errors a user can fix print one clear line
// and exit non-zero; nothing from inside ONNX Runtime reaches the terminal as a stack trace.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode, LightVLMError } from '../errors.js';
import { PACKAGE_ROOT } from '../paths.js';

const HELP = `lightvlm: run Hugging Face vision-language models on ONNX Runtime, faster with LightVLM

Usage: lightvlm <command> [options]

Commands:
  run               answer a question about an image (streams the answer)
  eval              score methods on a VQA dataset folder (accuracy, retention, chart)
  bench             time methods side by side on one image (interleaved, medians, ratios)
  bench-suite       the default benchmark suite behind \`npm run bench\`; rewrites BENCHMARKS.md
  make-checkpoint   write a random-weight checkpoint with the shapes of a published model
  serve             OpenAI-compatible HTTP server (continuous batching, SSE, /metrics)

Run \`lightvlm <command> --help\` for the options of each command; \`lightvlm --version\` prints the version.
The bundled demo model is models/synth-llava; --model defaults to it.
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(HELP);
      return cmd === undefined ? ExitCode.USAGE : ExitCode.OK;
    case '-v':
    case '--version':
    case 'version':
      process.stdout.write(`lightvlm ${JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')).version}\n`);
      return ExitCode.OK;
    case 'run':
      return (await import('./run.js')).runCommand(rest);
    case 'eval':
      return (await import('./eval.js')).evalCommand(rest);
    case 'bench':
      return (await import('./bench.js')).benchCommand(rest);
    case 'bench-suite':
      return (await import('./benchSuite.js')).benchSuiteCommand(rest);
    case 'serve':
      return (await import('./serve.js')).serveCommand(rest);
    case 'make-checkpoint':
      return (await import('./makeCheckpoint.js')).makeCheckpointCommand(rest);
    default:
      throw new LightVLMError(`unknown command "${cmd}". Commands: run, eval, bench, bench-suite, make-checkpoint, serve (see lightvlm --help).`, 'E_INPUT');
  }
}

// A closed stdout (\`lightvlm run ... | head -1\`) is not an error: stop quietly, as Unix tools do.
const quietOnEpipe = (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(ExitCode.OK);
  throw e;
};
process.stdout.on('error', quietOnEpipe);
process.stderr.on('error', quietOnEpipe);

// ONNX Runtime 1.30 (onnxruntime-node, Linux x64) crashes with SIGSEGV while creating ANY session,
// even a one-node Relu graph, when the process's command line holds more than about 20-30 KB
// (measured on Node 20.20, ulimit -s 8192: one 20 KB argument runs; one 30 KB argument, or three of
// 10 KB, crash; the same 30 KB in an environment variable does not; ulimit -s 16384 does not). A long
// --prompt is how a user gets there. So a command line over LONG_ARGV bytes is run again as a child
// whose arguments travel in the LIGHTVLM_ARGV environment variable and whose command line is short.
// Library users with such a command line can raise the stack limit (ulimit -s 16384).
const LONG_ARGV = 16 * 1024;
const HANDOVER = 'LIGHTVLM_ARGV';

function rerunWithShortArgv(args: string[]): void {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], { stdio: 'inherit', env: { ...process.env, [HANDOVER]: JSON.stringify(args) } });
  // The child sees Ctrl-C itself (same terminal process group) and prints its partial results; the parent waits for it.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('error', (e) => {
    process.stderr.write(`lightvlm: error: could not hand the ${args.length} arguments over (${e.message}); pass a long prompt with --prompt-file FILE or --prompt - instead. (E_INPUT)\n`);
    process.exit(ExitCode.USAGE);
  });
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal ? os.constants.signals[signal] : 0)));
}

const handedOver = process.env[HANDOVER];
delete process.env[HANDOVER];
const args: string[] = handedOver !== undefined ? JSON.parse(handedOver) : process.argv.slice(2);
if (handedOver === undefined && args.reduce((n, a) => n + Buffer.byteLength(a) + 1, 0) > LONG_ARGV) rerunWithShortArgv(args);
else main(args).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof LightVLMError) {
      process.stderr.write(`lightvlm: error: ${e.message} (${e.code})\n`);
      if (process.env.LIGHTVLM_DEBUG) process.stderr.write(`${e.stack}\n`);
      process.exitCode = e.exitCode;
    } else if ((e as { code?: string })?.code?.startsWith?.('ERR_PARSE_ARGS')) {
      process.stderr.write(`lightvlm: error: ${(e as Error).message}. See --help.\n`);
      process.exitCode = ExitCode.USAGE;
    } else {
      process.stderr.write(`lightvlm: internal error: ${(e as Error)?.message ?? e}\n(set LIGHTVLM_DEBUG=1 for the stack trace, and please report it)\n`);
      if (process.env.LIGHTVLM_DEBUG) process.stderr.write(`${(e as Error)?.stack}\n`);
      process.exitCode = ExitCode.INTERNAL;
    }
  },
);
