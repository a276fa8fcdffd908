// The HTTP server behind `lightvlm serve`: an OpenAI-compatible chat completions endpoint on fastify
// (JSON-schema validation, body limit), SSE streaming, Prometheus metrics, graceful drain.
// Every request runs through the engine's scheduler, so concurrent requests share decode batches.
import crypto from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Engine } from '../engine/vlm.js';
import type { GenerateResult } from '../engine/types.js';
import { Metrics } from './metrics.js';
import { HttpError, toEngineRequest, toHttpError, type RequestLimits } from './openai.js';
import { chatCompletionSchema, type ChatCompletionRequest } from './schema.js';

export interface ServerOptions extends RequestLimits {
  modelId: string;
  bodyLimit: number;          // bytes of one request body
  requestTimeoutMs: number;   // a generation running longer is cancelled (503)
}

export interface LightVLMServer {
  app: FastifyInstance;
  metrics: Metrics;
  /** Stops taking requests (new ones get 503), waits for the running ones, closes the listener. */
  drain(): Promise<void>;
}

const sse = (reply: FastifyReply, obj: unknown) => reply.raw.write(`data: ${JSON.stringify(obj)}\n\n`);

export function createServer(engine: Engine, opts: ServerOptions): LightVLMServer {
  // no type coercion and no silent removal of unknown extension fields: a wrong request is refused, not guessed at
  const app = Fastify({ bodyLimit: opts.bodyLimit, logger: false, return503OnClosing: true, ajv: { customOptions: { coerceTypes: false, removeAdditional: false } } });
  const sched = engine.scheduler();
  const metrics = new Metrics(sched);
  let draining = false;
  let inflight = 0;
  let idle: (() => void) | null = null;

  // Errors fastify raises itself (schema validation, bad JSON, body too large, unknown route)
  // become OpenAI error bodies with their 4xx status.
  app.setErrorHandler((err: FastifyError, req, reply) => {
    let e: HttpError;
    if (err.validation) {
      const v = err.validation[0];
      const param = v?.instancePath ? v.instancePath.slice(1).replace(/\//g, '.') : ((v?.params as { missingProperty?: string })?.missingProperty ?? null);
      e = new HttpError(400, `invalid request: ${err.message}`, 'invalid_request_error', 'invalid_value', param);
    } else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      e = new HttpError(err.statusCode, err.message, 'invalid_request_error', err.code ?? null);
    } else e = toHttpError(err);
    if (req.url.startsWith('/v1/chat')) metrics.requests.inc({ status: String(e.status) });
    void reply.code(e.status).headers(e.headers).send(e.body());
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(new HttpError(404, `no route ${req.method} ${req.url}; see GET /v1/models, POST /v1/chat/completions.`, 'invalid_request_error', 'not_found').body());
  });

  app.get('/health', async (_req, reply) => {
    const s = sched.stats();
    return reply.code(draining ? 503 : 200).send({ status: draining ? 'draining' : 'ok', model: opts.modelId, running: s.running, queued: s.queued });
  });
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  app.get('/v1/models', async () => ({
    object: 'list',
    data: [{ id: opts.modelId, object: 'model', created: 0, owned_by: 'lightvlm' }],
  }));

  app.post<{ Body: ChatCompletionRequest }>('/v1/chat/completions', { schema: { body: chatCompletionSchema } }, async (req, reply) => {
    const t0 = performance.now();
    if (draining) throw new HttpError(503, 'the server is shutting down; retry on another replica.', 'server_error', 'draining', null, { 'retry-after': '1' });
    const body = req.body;
    if (body.model !== undefined && body.model !== opts.modelId) {
      throw new HttpError(404, `the model '${body.model}' does not exist on this server; it serves '${opts.modelId}'.`, 'invalid_request_error', 'model_not_found', 'model');
    }
    const { input, opts: gen } = toEngineRequest(body, opts);
    // cancelled by a client disconnect or the request timeout: the sequence leaves the batch
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => ((timedOut = true), abort.abort()), opts.requestTimeoutMs);
    let finished = false;
    reply.raw.on('close', () => {
      if (!finished) abort.abort();
    });
    const id = `chatcmpl-${crypto.randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const base = { id, created, model: opts.modelId, system_fingerprint: null };
    const delta = engine.textDelta();
    const stopLen = Math.max(0, ...(gen.stopStrings ?? []).map((s) => s.length));
    let text = '';
    let sent = 0;
    let tFirst = 0;
    let tLast = 0;
    let headers = false;
    const streaming = body.stream === true;
    const chunk = (d: object, finish: string | null) => ({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: d, logprobs: null, finish_reason: finish }] });
    const openStream = () => {
      if (headers) return;
      headers = true;
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      sse(reply, chunk({ role: 'assistant', content: '' }, null));
    };
    const onToken = (ids: number[]) => {
      const now = performance.now();
      if (ids.length === 1) ((tFirst = now), metrics.ttft.observe((now - t0) / 1000));
      else metrics.perToken.observe((now - tLast) / 1000);
      tLast = now;
      if (!streaming) return;
      text += delta(ids);
      // hold back the tail a stop string may still complete, and never send past a stop string
      const cut = Math.min(...(gen.stopStrings ?? []).map((s) => text.indexOf(s)).filter((i) => i >= 0), text.length - Math.max(0, stopLen - 1));
      if (cut > sent) {
        openStream();
        sse(reply, chunk({ content: text.slice(sent, cut) }, null));
        sent = cut;
      }
    };
    inflight++;
    let result: GenerateResult;
    try {
      result = await engine.generate(input, { ...gen, signal: abort.signal }, { onToken });
    } catch (e) {
      const err = toHttpError(e, timedOut);
      metrics.requests.inc({ status: String(err.status) });
      if (headers) {
        // the stream is open: report in-band, as OpenAI does, then end it
        sse(reply, err.body());
        reply.raw.end();
        return reply;
      }
      throw err;
    } finally {
      clearTimeout(timer);
      finished = true;
      if (--inflight === 0) idle?.();
    }
    void tFirst;
    const ids = result.tokenIds;
    const eos = engine.ctx.eosIds.includes(ids[ids.length - 1]!);
    const stopped = eos || (gen.stopStrings ?? []).some((s) => engine.ctx.decode(ids).includes(s));
    const finish = stopped ? 'stop' : 'length';
    const usage = { prompt_tokens: result.stats.promptTokens, completion_tokens: ids.length, total_tokens: result.stats.promptTokens + ids.length };
    metrics.promptTokens.inc(usage.prompt_tokens);
    metrics.completionTokens.inc(usage.completion_tokens);
    metrics.requests.inc({ status: '200' });
    metrics.duration.observe((performance.now() - t0) / 1000);
    if (!streaming) {
      return { ...base, object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: result.text, refusal: null }, logprobs: null, finish_reason: finish }], usage };
    }
    openStream();
    if (result.text.length > sent) sse(reply, chunk({ content: result.text.slice(sent) }, null));
    sse(reply, chunk({}, finish));
    sse(reply, { ...base, object: 'chat.completion.chunk', choices: [], usage });
    reply.raw.end('data: [DONE]\n\n');
    return reply;
  });

  const drain = async () => {
    draining = true;
    if (inflight > 0) await new Promise<void>((r) => (idle = r));
    await app.close();
  };
  return { app, metrics, drain };
}
