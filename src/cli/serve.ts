// `lightvlm serve`: the OpenAI-compatible HTTP server (src/server/app.ts) on one model folder.
// SIGTERM / SIGINT drain: running requests finish, new ones get 503, then the process exits 0.
import path from 'node:path';
import { LightVLMError } from '../errors.js';
import { setDefaultThreads } from '../runtime/ort.js';
import { DEMO_MODEL, num } from './common.js';
import { DTYPE_HELP, dtypeLoadOptions, parseFlags, resolveIo } from './measureShared.js';

const HELP = `Usage: lightvlm serve [--model DIR] [--host 127.0.0.1] [--port 8080] [options]

Serves the model over HTTP with an OpenAI-compatible API:
  POST /v1/chat/completions   one user message with one image (data: URL) and text; stream: true for SSE;
                              max_tokens / max_completion_tokens, temperature, top_p, seed, stop;
                              extension field "lightvlm": {"prefill": {"method": "lightvlm", "keep": 0.1},
                                                           "kv": {"method": "lightvlm", "budget": 512}}
  GET  /v1/models, GET /health, GET /metrics (Prometheus)

Options:
  --model DIR                Hugging Face model folder (default: the bundled demo, models/synth-llava)
  --model-name NAME          id reported by /v1/models and expected in "model" (default: the folder name)
  --host HOST                address to listen on (default 127.0.0.1)
  --port N                   port (default 8080; 0 picks a free one)
  --max-batch N              sequences decoded together (default 16)
  --max-queue N              requests waiting beyond the batch before 429 (default 64)
  --kv-memory BYTES          KV-cache bytes for all running sequences together (default: unbounded);
                             suffixes K, M, G allowed, e.g. 2G
  --max-tokens N             largest max_tokens a request may ask for (default 2048)
  --default-max-tokens N     max_tokens when a request gives none (default 256)
  --max-body-bytes N         largest request body (default 20M)
  --max-image-pixels N       largest image width x height (default 25000000)
  --request-timeout S        seconds before a running request is cancelled with 503 (default 600)
  --allow-local-images DIR   accept image_url paths inside DIR (off: only data: URLs)
  --threads N                ONNX Runtime threads (default: all cores)
  --dtype D                  ${DTYPE_HELP}
  -h, --help                 show this help
`;

const OPTIONS = {
  model: { type: 'string' },
  'model-name': { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'max-batch': { type: 'string' },
  'max-queue': { type: 'string' },
  'kv-memory': { type: 'string' },
  'max-tokens': { type: 'string' },
  'default-max-tokens': { type: 'string' },
  'max-body-bytes': { type: 'string' },
  'max-image-pixels': { type: 'string' },
  'request-timeout': { type: 'string' },
  'allow-local-images': { type: 'string' },
  threads: { type: 'string' },
  dtype: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `2G`, `512M`, `64K` or a plain byte count. */
export function parseBytes(raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMG]?)i?B?\s*$/i.exec(raw);
  if (!m) throw new LightVLMError(`${flag} must be a byte count such as 2G, 512M or 1000000; got '${raw}'.`, 'E_OPTION');
  const v = Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase());
  if (!(v >= 1)) throw new LightVLMError(`${flag} must be at least 1 byte; got '${raw}'.`, 'E_OPTION');
  return Math.floor(v);
}

export async function serveCommand(argv: string[]): Promise<number> {
  const v = parseFlags(argv, OPTIONS, 'serve');
  if (v.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const int = (k: keyof typeof v, min: number) => num(v[k] as string | undefined, `--${k}`, { int: true, min });
  const threads = int('threads', 1);
  if (threads) setDefaultThreads(threads);
  const dir = v.model ?? DEMO_MODEL;
  const port = int('port', 0) ?? 8080;
  const host = v.host ?? '127.0.0.1';
  const maxTokens = int('max-tokens', 1) ?? 2048;
  const kvMemory = parseBytes(v['kv-memory'], '--kv-memory');
  const { Engine } = await import('../engine/vlm.js');
  const { createServer } = await import('../server/app.js');
  const load = dtypeLoadOptions(v.dtype, resolveIo());
  const engine = await Engine.load(dir, load.opts);
  load.done();
  engine.maxImagePixels = int('max-image-pixels', 1) ?? 25_000_000;
  engine.scheduler({ maxBatch: int('max-batch', 1) ?? 16, maxQueue: int('max-queue', 0) ?? 64, ...(kvMemory ? { kvMemory } : {}) });
  const server = createServer(engine, {
    modelId: v['model-name'] ?? path.basename(path.resolve(dir)),
    maxTokens,
    defaultMaxTokens: Math.min(maxTokens, int('default-max-tokens', 1) ?? 256),
    bodyLimit: parseBytes(v['max-body-bytes'], '--max-body-bytes') ?? 20 * 2 ** 20,
    requestTimeoutMs: (num(v['request-timeout'], '--request-timeout', { min: 0.001 }) ?? 600) * 1000,
    ...(v['allow-local-images'] ? { localImageRoot: v['allow-local-images'] } : {}),
  });
  const address = await server.app.listen({ host, port });
  process.stderr.write(`lightvlm: serving ${dir} at ${address} (POST /v1/chat/completions)\n`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      process.stderr.write(`lightvlm: ${sig}: draining (running requests finish, new ones get 503)\n`);
      void server.drain().then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await engine.dispose();
  process.stderr.write('lightvlm: drained, exiting\n');
  return 0;
}
