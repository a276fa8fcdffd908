// OpenAI chat request → engine input and options; engine errors → OpenAI error bodies and HTTP
// statuses. A client mistake is always a 4xx here; only faults of the model or of lightvlm are 5xx.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LightVLMError } from '../errors.js';
import { AbortedError, QueueFullError } from '../engine/scheduler.js';
import type { GenerateOptions, VLMInput } from '../engine/types.js';
import type { ChatCompletionRequest } from './schema.js';

/** An error with its HTTP status, in the OpenAI error shape. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export interface RequestLimits {
  maxTokens: number;          // largest max_tokens accepted
  defaultMaxTokens: number;   // used when the request gives none
  localImageRoot?: string;    // local image paths are allowed only inside this folder
}

const bad = (message: string, param: string | null, code = 'invalid_value') => new HttpError(400, message, 'invalid_request_error', code, param);

function imageFrom(url: string, limits: RequestLimits): string | Uint8Array {
  const m = /^data:([^;,]*)(;base64)?,(.*)$/s.exec(url);
  if (m) {
    if (!m[2]) throw bad('image data URLs must be base64 encoded (data:image/png;base64,...).', 'messages.content.image_url.url');
    const bytes = Buffer.from(m[3]!, 'base64');
    if (bytes.length === 0) throw bad('the image data URL holds no bytes.', 'messages.content.image_url.url');
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !url.startsWith('file://')) {
    throw bad('this server does not fetch remote images; send the image inline as a data: URL (data:image/jpeg;base64,...).', 'messages.content.image_url.url', 'remote_url_refused');
  }
  if (!limits.localImageRoot) {
    throw bad('local image paths are disabled on this server (start it with --allow-local-images DIR); send the image as a data: URL.', 'messages.content.image_url.url', 'local_path_refused');
  }
  const file = path.resolve(url.startsWith('file://') ? fileURLToPath(url) : url);
  const root = path.resolve(limits.localImageRoot);
  if (!(file + path.sep).startsWith(root + path.sep) && file !== root) {
    throw bad(`local image paths must lie inside ${root}.`, 'messages.content.image_url.url', 'local_path_refused');
  }
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) throw bad(`image file ${url} does not exist.`, 'messages.content.image_url.url', 'image_not_found');
  return file;
}

/**
 * The engine answers one user turn about one image (the chat templates of the three families are
 * rendered for exactly that), so the conversation must be one user message with one image and
 * text; a system message is refused rather than silently dropped.
 */
export function toEngineRequest(req: ChatCompletionRequest, limits: RequestLimits): { input: VLMInput; opts: GenerateOptions } {
  const users = req.messages.filter((m) => m.role === 'user');
  if (req.messages.length !== 1 || users.length !== 1) {
    throw bad('this server answers a single user message (one image and its question); multi-turn conversations and system messages are not supported.', 'messages', 'unsupported_conversation');
  }
  const content = users[0]!.content;
  const parts = typeof content === 'string' ? [{ type: 'text' as const, text: content }] : content;
  const images = parts.filter((p) => p.type === 'image_url');
  if (images.length !== 1) throw bad(`the user message must hold exactly one image_url part (got ${images.length}).`, 'messages.content', 'image_count');
  const prompt = parts.map((p) => (p.type === 'text' ? p.text : '')).join('\n').trim();
  if (prompt === '') throw bad('the user message has no text: ask a question about the image.', 'messages.content', 'empty_prompt');
  const maxNew = req.max_completion_tokens ?? req.max_tokens ?? limits.defaultMaxTokens;
  if (maxNew > limits.maxTokens) throw bad(`max_tokens ${maxNew} is above this server's limit of ${limits.maxTokens}.`, req.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens');
  const x = req.lightvlm;
  const opts: GenerateOptions = {
    maxNewTokens: maxNew,
    temperature: req.temperature ?? 0,
    ...(req.top_p != null ? { topP: req.top_p } : {}),
    seed: req.seed ?? 0,
    ...(req.stop != null ? { stopStrings: typeof req.stop === 'string' ? [req.stop] : req.stop } : {}),
    ...(x ? {
      acceleration: {
        ...(x.prefill ? { prefill: { ...x.prefill } } : {}),
        ...(x.kv ? { decode: { ...x.kv } } : {}),
        ...(x.vitMerge ? { vitMerge: { ...x.vitMerge } } : {}),
      },
    } : {}),
  };
  if (x?.prefill?.method === 'none' && x.prefill.keep !== undefined && x.prefill.keep !== 1) throw bad("prefill method 'none' keeps every image token and takes no keep.", 'lightvlm.prefill.keep');
  if (x?.kv && ['none', 'stale'].includes(x.kv.method) && x.kv.budget !== undefined) throw bad(`kv method '${x.kv.method}' takes no budget.`, 'lightvlm.kv.budget');
  return { input: { image: imageFrom(images[0]!.image_url.url, limits), prompt }, opts };
}

/** Maps anything thrown while serving a request to an HttpError. */
export function toHttpError(e: unknown, timedOut = false): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof QueueFullError) {
    return new HttpError(429, e.message, 'rate_limit_error', 'queue_full', null, { 'retry-after': String(e.retryAfterSeconds) });
  }
  if (e instanceof AbortedError) {
    return timedOut
      ? new HttpError(503, 'the request did not finish within the server\'s --request-timeout; retry later or ask for fewer tokens.', 'server_error', 'timeout', null, { 'retry-after': '5' })
      : new HttpError(499, 'the client closed the request.', 'invalid_request_error', 'cancelled');
  }
  if (e instanceof LightVLMError) {
    if (!e.userFault) return new HttpError(500, e.message, 'server_error', e.code);
    const code = e.code === 'E_PROMPT_TOO_LONG' ? 'context_length_exceeded' : e.code;
    return new HttpError(400, e.message, 'invalid_request_error', code);
  }
  return new HttpError(500, `internal error: ${(e as Error)?.message ?? String(e)}`, 'server_error', 'internal');
}
