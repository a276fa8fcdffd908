// JSON schema of POST /v1/chat/completions (the OpenAI chat format, the parts this server honours),
// validated by fastify (Ajv) before any handler runs: a malformed request never reaches the engine.
// Unknown top-level fields are ignored, as OpenAI-compatible servers do; unknown fields inside
// `lightvlm` (our extension) are refused so a typo is not silently ignored.
import { KV_METHODS, type KvMethod } from '../kvcache/registry.js';
import { PREFILL_METHODS, type PrefillMethod } from '../merge/plan.js';
import { VIT_MERGE_MODES, type VitMergeMode } from '../vitmerge/policy.js';

const textPart = {
  type: 'object',
  required: ['type', 'text'],
  properties: { type: { const: 'text' }, text: { type: 'string' } },
} as const;

const imagePart = {
  type: 'object',
  required: ['type', 'image_url'],
  properties: {
    type: { const: 'image_url' },
    image_url: {
      type: 'object',
      required: ['url'],
      properties: { url: { type: 'string', minLength: 1 }, detail: { type: 'string' } },
    },
  },
} as const;

const message = {
  type: 'object',
  required: ['role', 'content'],
  properties: {
    role: { enum: ['system', 'developer', 'user', 'assistant'] },
    content: {
      anyOf: [
        { type: 'string' },
        { type: 'array', minItems: 1, items: { anyOf: [textPart, imagePart] } },
      ],
    },
  },
} as const;

/**
 * The `lightvlm` extension field: acceleration settings per request, e.g.
 * `{"prefill": {"method": "lightvlm", "keep": 0.1}, "kv": {"method": "lightvlm", "budget": 512},
 *   "vitMerge": {"mode": "unmerge"}}` (vitMerge: token merging inside the vision tower, docs/vit-merge.md;
 * layer/keep/layers default as in the library).
 */
export const extensionSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    prefill: {
      type: 'object',
      additionalProperties: false,
      required: ['method'],
      properties: {
        method: { enum: [...PREFILL_METHODS] },
        keep: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      },
    },
    kv: {
      type: 'object',
      additionalProperties: false,
      required: ['method'],
      properties: {
        method: { enum: [...KV_METHODS] },
        budget: { type: 'integer', minimum: 1 },
      },
    },
    vitMerge: {
      type: 'object',
      additionalProperties: false,
      required: ['mode'],
      properties: {
        mode: { enum: [...VIT_MERGE_MODES] },
        layer: { type: 'integer', minimum: 0 },
        keep: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
        layers: { type: 'integer', minimum: 1 },
      },
    },
  },
} as const;

export const chatCompletionSchema = {
  type: 'object',
  required: ['messages'],
  properties: {
    model: { type: 'string' },
    messages: { type: 'array', minItems: 1, items: message },
    stream: { type: 'boolean' },
    stream_options: { type: ['object', 'null'], properties: { include_usage: { type: 'boolean' } } },
    max_tokens: { type: ['integer', 'null'], minimum: 1 },
    max_completion_tokens: { type: ['integer', 'null'], minimum: 1 },
    temperature: { type: ['number', 'null'], minimum: 0, maximum: 2 },
    top_p: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 1 },
    seed: { type: ['integer', 'null'], minimum: 0, maximum: 4294967295 },
    stop: {
      anyOf: [
        { type: 'string', minLength: 1 },
        { type: 'array', maxItems: 4, items: { type: 'string', minLength: 1 } },
        { type: 'null' },
      ],
    },
    n: { type: ['integer', 'null'], minimum: 1, maximum: 1 },
    lightvlm: extensionSchema,
  },
} as const;

export interface ChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant';
  content: string | ({ type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } })[];
}

export interface ChatCompletionRequest {
  model?: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  n?: number | null;
  lightvlm?: {
    prefill?: { method: PrefillMethod; keep?: number };
    kv?: { method: KvMethod; budget?: number };
    vitMerge?: { mode: VitMergeMode; layer?: number; keep?: number; layers?: number };
  };
}
