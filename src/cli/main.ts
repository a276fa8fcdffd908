#!/usr/bin/env node
// `lightvlm` command: dispatches to the subcommands. Errors a user can fix print one clear line
// and exit non-zero; nothing from inside ONNX Runtime reaches the terminal as a stack trace.
import fs from 'node:fs';
import path from 'node:path';
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

main(process.argv.slice(2)).then(
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
