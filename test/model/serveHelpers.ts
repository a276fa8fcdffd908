// Starting a real `lightvlm serve` app on a loopback port (port 0) for the server tests, and the
// pieces of an OpenAI chat request they send. The client is the `openai` npm package.
import fs from 'node:fs';
import OpenAI from 'openai';
import { Engine } from '../../src/engine/vlm.js';
import type { SchedulerOptions } from '../../src/engine/scheduler.js';
import { createServer, type ServerOptions } from '../../src/server/app.js';

export async function startServer(dir: string, sched: SchedulerOptions = {}, limits: Partial<ServerOptions> = {}) {
  const engine = await Engine.load(dir);
  engine.scheduler(sched);
  const server = createServer(engine, { modelId: 'test-model', maxTokens: 512, defaultMaxTokens: 16, bodyLimit: 2 ** 20, requestTimeoutMs: 120_000, ...limits });
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  return {
    engine,
    server,
    url,
    client,
    /** One Prometheus sample by name and labels, from GET /metrics. */
    async metric(name: string): Promise<number> {
      const text = await (await fetch(`${url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(name + ' '));
      return line ? Number(line.slice(name.length + 1)) : 0;
    },
    async close() {
      await server.app.close();
      await engine.dispose();
    },
  };
}

export const dataUrl = (file: string) => `data:image/png;base64,${fs.readFileSync(file).toString('base64')}`;

/** One user message: an image part and a text part. */
export const userMessage = (image: string, text: string) => [
  { role: 'user' as const, content: [{ type: 'image_url' as const, image_url: { url: image } }, { type: 'text' as const, text }] },
];

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 20 ms for up to `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(20);
  }
  return false;
}
