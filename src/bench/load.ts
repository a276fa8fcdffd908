// `npm run load`: a bounded load generator for `lightvlm serve` on the loopback interface. It starts
// the server as a child process (or targets --url on 127.0.0.1/localhost only), sends concurrent
// mixed requests (plain, streamed, accelerated, client disconnects, bad ones) until --requests are
// done or --seconds have passed, whichever comes first, then stops the server with SIGTERM. Reports
// requests served, errors by status, TTFT and end-to-end latency percentiles, aggregate tokens/s,
// and the server's RSS after warm-up and at the end.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile } from './stats.js';
import { spawnServe } from '../server/spawn.js';
import { intFlag, parseScriptArgs, scriptMain, UsageError } from '../util/args.js';

const ROOT = (() => {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'package.json'))) d = path.dirname(d);
  return d;
})();

interface Outcome {
  kind: string;
  status: number;      // HTTP status; 0 = a disconnect this client made on purpose
  ttftMs?: number;     // streamed requests: time to the first content chunk
  e2eMs: number;
  tokens: number;
}

const USAGE = `npm run load -- [flags]   (node dist/src/bench/load.js [flags])
Sends a bounded mix of requests to 'lightvlm serve' (started here, or --url on loopback) and reports
served requests, errors by status, TTFT / end-to-end percentiles, tokens/s and server RSS.

  --model DIR          model folder for the server it starts (default: the demo model)
  --url URL            target a running server instead (http://127.0.0.1:PORT or localhost only)
  --requests N         requests to send (default 1000)
  --seconds S          stop sending after S seconds (default 420)
  --concurrency C      requests in flight (default 8)
  --max-tokens N       max_tokens of each request (default 12)
  --warmup N           requests sent (at --concurrency) before RSS is first read (default 300)
  --json FILE          also write the report as JSON
  --serve-arg ARG      extra flag for the server it starts (repeatable)
  -h, --help           this help`;

const v = parseScriptArgs('load', USAGE, {
    model: { type: 'string' },
    url: { type: 'string' },
    requests: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '420' },
    concurrency: { type: 'string', default: '8' },
    'max-tokens': { type: 'string', default: '12' },
    warmup: { type: 'string', default: '300' },
    json: { type: 'string' },
    'serve-arg': { type: 'string', multiple: true },
});

const images = ['shapes.jpg', 'grid.jpg', 'circles.jpg', 'wide.jpg'].map((f) => `data:image/jpeg;base64,${fs.readFileSync(path.join(ROOT, 'examples', f)).toString('base64')}`);
const prompts = ['What color is the square?', 'What shape is the yellow object?', 'What is in the top left cell?', 'How many circles are there?'];
const settings = [undefined, { prefill: { method: 'lightvlm', keep: 0.35 }, kv: { method: 'lightvlm', budget: 64 } }, { prefill: { method: 'lightvlm', keep: 0.1 } }, { prefill: { method: 'fastv', keep: 0.35 } }];

/** The i-th request of the mix: 70% good (a third of them streamed), 10% disconnects, 20% bad. */
function request(i: number, maxTokens: number): { kind: string; body: string; stream: boolean; disconnect: boolean } {
  const good = (stream: boolean) => JSON.stringify({
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: images[i % images.length] } }, { type: 'text', text: prompts[(i >> 2) % prompts.length] }] }],
    max_tokens: maxTokens,
    stream,
    ...(settings[i % settings.length] ? { lightvlm: settings[i % settings.length] } : {}),
  });
  const r = i % 10;
  if (r < 5) return { kind: 'plain', body: good(false), stream: false, disconnect: false };
  if (r < 7) return { kind: 'stream', body: good(true), stream: true, disconnect: false };
  if (r === 7) return { kind: 'disconnect', body: good(true), stream: true, disconnect: true };
  const bad = [
    '{"messages": [',
    JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/x.png' } }, { type: 'text', text: 'x' }] }] }),
    JSON.stringify({ messages: [{ role: 'user', content: 'no image' }] }),
    JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,aGVsbG8=' } }, { type: 'text', text: 'x' }] }] }),
    JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: images[0] } }, { type: 'text', text: 'x' }] }], max_tokens: 10 ** 6 }),
  ];
  return { kind: 'bad', body: bad[i % bad.length]!, stream: false, disconnect: false };
}

async function send(url: string, i: number, maxTokens: number): Promise<Outcome> {
  const q = request(i, maxTokens);
  const t0 = performance.now();
  const abort = new AbortController();
  try {
    const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: q.body, signal: abort.signal });
    if (!q.stream || res.status !== 200) {
      const j = (await res.json()) as { usage?: { completion_tokens: number } };
      return { kind: q.kind, status: res.status, e2eMs: performance.now() - t0, tokens: j.usage?.completion_tokens ?? 0 };
    }
    let ttft: number | undefined;
    let tokens = 0;
    let buf = '';
    const dec = new TextDecoder();
    for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += dec.decode(part, { stream: true });
      if (ttft === undefined && buf.includes('"content":"') && /"content":"[^"]/.test(buf)) {
        ttft = performance.now() - t0;
        if (q.disconnect) {
          abort.abort();
          return { kind: q.kind, status: 0, ttftMs: ttft, e2eMs: performance.now() - t0, tokens: 0 };
        }
      }
      const m = /"completion_tokens":(\d+)/.exec(buf);
      if (m) tokens = Number(m[1]);
    }
    return { kind: q.kind, status: 200, ...(ttft !== undefined ? { ttftMs: ttft } : {}), e2eMs: performance.now() - t0, tokens };
  } catch (e) {
    if (abort.signal.aborted) return { kind: q.kind, status: 0, e2eMs: performance.now() - t0, tokens: 0 };
    return { kind: q.kind, status: -1, e2eMs: performance.now() - t0, tokens: 0 };
  }
}

async function rssBytes(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^lightvlm_process_resident_memory_bytes (\S+)/m.exec(text)?.[1] ?? NaN);
}

const startServer = () =>
  spawnServe(path.join(ROOT, 'dist/src/cli/main.js'), ['--host', '127.0.0.1', '--port', '0', ...(v.model ? ['--model', v.model] : []), ...(v['serve-arg'] ?? [])], 'inherit');

async function main(): Promise<void> {
  if (v.url && !/^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?\/?$/.test(v.url)) throw new UsageError('--url must be a loopback address (http://127.0.0.1:PORT): this generator never loads a remote host.');
  const total = intFlag(v.requests, '--requests', 1);
  const deadline = performance.now() + intFlag(v.seconds, '--seconds', 1) * 1000;
  const conc = intFlag(v.concurrency, '--concurrency', 1, 1024);
  const maxTokens = intFlag(v['max-tokens'], '--max-tokens', 1);
  const warmup = intFlag(v.warmup, '--warmup', 0);
  const server = v.url ? { url: v.url.replace(/\/$/, ''), stop: async () => null } : await startServer();
  const { url } = server;
  // Warm-up at the measured concurrency: every setting and batch size runs before RSS is read, so
  // graph builds and the allocators reaching their working set do not count as growth. Measured
  // (BENCHMARKS.md, load test): the server's RSS plateaus after ~300 mixed requests at C = 8 and then
  // stays flat; a short sequential warm-up read 48% "growth" that was only this warm-up.
  let w = 0;
  await Promise.all(Array.from({ length: Math.min(conc, warmup) }, async () => {
    while (w < warmup) await send(url, w++, maxTokens);
  }));
  const rssBefore = await rssBytes(url);
  const out: Outcome[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < total && performance.now() < deadline) out.push(await send(url, next++, maxTokens));
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  const rssAfter = await rssBytes(url);
  const exit = await server.stop();
  const byStatus: Record<string, number> = {};
  for (const o of out) byStatus[o.status === 0 ? 'client-disconnect' : String(o.status)] = (byStatus[o.status === 0 ? 'client-disconnect' : String(o.status)] ?? 0) + 1;
  const ok = out.filter((o) => o.status === 200);
  const ttft = out.filter((o) => o.ttftMs !== undefined).map((o) => o.ttftMs!);
  const pct = (xs: number[]) => ({ p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99), max: Math.max(...xs) });
  const tokens = ok.reduce((a, o) => a + o.tokens, 0);
  const report = {
    requests: out.length, seconds: wall, concurrency: conc, maxTokens, byStatus,
    served: ok.length, tokens, tokensPerSecond: tokens / wall,
    ttftMs: pct(ttft), e2eMsOk: pct(ok.map((o) => o.e2eMs)),
    rssBeforeMb: rssBefore / 2 ** 20, rssAfterMb: rssAfter / 2 ** 20, rssGrowth: rssAfter / rssBefore - 1,
    serverExit: exit,
  };
  const f = (x: number) => x.toFixed(0);
  process.stdout.write(
    [
      `| requests | served (200) | by status | wall s | tokens/s | TTFT p50 / p90 / p99 ms | e2e (200) p50 / p90 / p99 ms | RSS after warm-up → end | growth |`,
      `| --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
      `| ${out.length} | ${ok.length} | ${Object.entries(byStatus).map(([k, n]) => `${k}: ${n}`).join(', ')} | ${wall.toFixed(0)} | ${report.tokensPerSecond.toFixed(1)} | ${f(report.ttftMs.p50)} / ${f(report.ttftMs.p90)} / ${f(report.ttftMs.p99)} | ${f(report.e2eMsOk.p50)} / ${f(report.e2eMsOk.p90)} / ${f(report.e2eMsOk.p99)} | ${report.rssBeforeMb.toFixed(0)} → ${report.rssAfterMb.toFixed(0)} MB | ${(100 * report.rssGrowth).toFixed(1)}% |`,
      '',
    ].join('\n'),
  );
  if (v.json) fs.writeFileSync(v.json, JSON.stringify(report, null, 2));
  if (exit !== null && exit !== 0) process.exitCode = 1;
}

scriptMain('load', main);
