// The one place that checks what callers pass to the engine: generation options, inputs, load
// options, thread counts. The library and the CLI both go through here, so they are equally strict.
// Messages speak in option names (`maxNewTokens`, `acceleration.decode.budget`); the CLI passes a
// `names` map so the same checks speak in its flags (`--max-new-tokens`). Every failure is an
// E_OPTION (E_IMAGE / E_PROMPT / E_PROMPT_TOO_LONG for the input) LightVLMError.
import os from 'node:os';
import type { Acceleration, DecodeAcceleration, GenerateOptions, PrefillAcceleration } from './engine/types.js';
import { LightVLMError } from './errors.js';
import { KV_METHODS } from './kvcache/registry.js';
import { PREFILL_METHODS } from './merge/plan.js';
import { PRE_LM_POSITIONS } from './merge/prelmPlan.js';
import { MERGE_MODES, SCORE_RULES } from './merge/types.js';
import { resolveVitMerge } from './vitmerge/options.js';
import type { VitMergeOptions } from './vitmerge/policy.js';

/** Longest prompt accepted, in characters (about 25k tokens): far past any supported model's context. */
export const MAX_PROMPT_CHARS = 100_000;
/** Stop strings: at most this many, each at most MAX_STOP_CHARS long (checked on every token). */
export const MAX_STOP_STRINGS = 64;
export const MAX_STOP_CHARS = 1_000;
/** Largest maxNewTokens; the model's context is the real limit and is checked at generation. */
export const MAX_NEW_TOKENS = 1 << 20;
/** ORT intra-op threads: more than a few per core only adds contention (1000 threads hang). */
export const maxThreads = (): number => 4 * Math.max(1, os.availableParallelism?.() ?? os.cpus().length);

/** Option path → how the caller spells it (the CLI maps to its flags). */
export type OptionNames = Readonly<Record<string, string>>;

const show = (v: unknown): string => {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? (v.constructor?.name && v.constructor !== Object ? `a ${v.constructor.name}` : 'an object') : typeof v;
};

class Checker {
  constructor(private readonly names: OptionNames = {}) {}

  name(path: string): string {
    return this.names[path] ?? path;
  }

  fail(path: string, want: string, got: unknown): never {
    throw new LightVLMError(`${this.name(path)} must be ${want}; got ${show(got)}.`, 'E_OPTION');
  }

  object(path: string, v: unknown, known: readonly string[]): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'an object', v);
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!known.includes(k) && o[k] !== undefined) {
        throw new LightVLMError(`unknown option ${path ? path + '.' : ''}${k}; known: ${known.join(', ')}.`, 'E_OPTION');
      }
    }
    return o;
  }

  /** A finite number in [min, max] (`int`: a safe integer); `openMin` excludes min. */
  num(path: string, v: unknown, o: { int?: boolean; min?: number; max?: number; openMin?: boolean }): number {
    const ok =
      typeof v === 'number' &&
      Number.isFinite(v) &&
      (!o.int || Number.isSafeInteger(v)) &&
      (o.min === undefined || (o.openMin ? v > o.min : v >= o.min)) &&
      (o.max === undefined || v <= o.max);
    if (!ok) {
      const range = [o.min !== undefined ? `${o.openMin ? '>' : '>='} ${o.min}` : '', o.max !== undefined ? `<= ${o.max}` : ''].filter(Boolean).join(' and ');
      this.fail(path, `${o.int ? 'a whole number' : 'a finite number'}${range ? ' ' + range : ''}`, v);
    }
    return v as number;
  }

  oneOf<T extends string>(path: string, v: unknown, allowed: readonly T[]): T {
    if (typeof v !== 'string' || !allowed.includes(v as T)) this.fail(path, `one of ${allowed.join(', ')}`, v);
    return v as T;
  }
}

const GENERATE_KEYS = ['maxNewTokens', 'minNewTokens', 'temperature', 'topK', 'topP', 'seed', 'stopStrings', 'acceleration', 'signal'] as const;
const PREFILL_KEYS = ['method', 'keep', 'stages', 'mergeMode', 'seed', 'score', 'positions'] as const;
const DECODE_KEYS = ['method', 'budget', 'window', 'sinks', 'every', 'pruneStaleImage'] as const;

function checkPrefill(c: Checker, v: unknown): PrefillAcceleration {
  const o = c.object('acceleration.prefill', v, PREFILL_KEYS);
  const out: PrefillAcceleration = { method: c.oneOf('acceleration.prefill.method', o.method, PREFILL_METHODS) };
  if (o.keep !== undefined) out.keep = c.num('acceleration.prefill.keep', o.keep, { min: 0, openMin: true, max: 1 });
  if (out.method === 'none' && out.keep !== undefined && out.keep !== 1) {
    throw new LightVLMError(`${c.name('acceleration.prefill.keep')} ${out.keep} needs a reducing method: 'none' keeps every image token.`, 'E_OPTION');
  }
  if (o.stages !== undefined) {
    if (!Array.isArray(o.stages) || o.stages.length === 0) c.fail('acceleration.prefill.stages', 'a non-empty array of { layer, keep }', o.stages);
    out.stages = (o.stages as unknown[]).map((s, i) => {
      const p = `acceleration.prefill.stages[${i}]`;
      const so = c.object(p, s, ['layer', 'keep']);
      return { layer: c.num(`${p}.layer`, so.layer, { int: true, min: 1 }), keep: c.num(`${p}.keep`, so.keep, { min: 0, openMin: true, max: 1 }) };
    });
  }
  if (o.mergeMode !== undefined) out.mergeMode = c.oneOf('acceleration.prefill.mergeMode', o.mergeMode, MERGE_MODES);
  if (o.score !== undefined) out.score = c.oneOf('acceleration.prefill.score', o.score, SCORE_RULES);
  if (o.seed !== undefined) out.seed = c.num('acceleration.prefill.seed', o.seed, { int: true, min: 0 });
  if (o.positions !== undefined) out.positions = c.oneOf('acceleration.prefill.positions', o.positions, PRE_LM_POSITIONS);
  return out;
}

/** The defaults kvcache/ applies when a field is left out (kept in step with kvcache/registry.ts resolveKv). */
const KV_DEFAULT_SINKS = 4;

function checkDecode(c: Checker, v: unknown): DecodeAcceleration {
  const o = c.object('acceleration.decode', v, DECODE_KEYS);
  const out: DecodeAcceleration = { method: c.oneOf('acceleration.decode.method', o.method, KV_METHODS) };
  if (o.budget !== undefined) out.budget = c.num('acceleration.decode.budget', o.budget, { int: true, min: 1 });
  if (o.window !== undefined) out.window = c.num('acceleration.decode.window', o.window, { int: true, min: 0 });
  if (o.sinks !== undefined) out.sinks = c.num('acceleration.decode.sinks', o.sinks, { int: true, min: 0 });
  if (o.every !== undefined) out.every = c.num('acceleration.decode.every', o.every, { int: true, min: 1 });
  if (o.pruneStaleImage !== undefined) {
    if (typeof o.pruneStaleImage !== 'boolean') c.fail('acceleration.decode.pruneStaleImage', 'true or false', o.pruneStaleImage);
    out.pruneStaleImage = o.pruneStaleImage;
  }
  if ((out.method === 'none' || out.method === 'stale') && out.budget !== undefined) {
    throw new LightVLMError(`${c.name('acceleration.decode.budget')}: KV method '${out.method}' takes no budget (it never evicts by count).`, 'E_OPTION');
  }
  // Cross-field limits, in the policies' own terms, so the user sees the field they set.
  const sinks = out.sinks ?? KV_DEFAULT_SINKS;
  const budget = out.budget;
  if (budget !== undefined && out.method === 'streamingllm' && out.window === undefined && budget <= sinks) {
    throw new LightVLMError(`${c.name('acceleration.decode.budget')} ${budget} leaves no recent window after ${sinks} attention sinks for streamingllm; use a budget > ${sinks}.`, 'E_OPTION');
  }
  if (out.window !== undefined && budget !== undefined && (out.method === 'h2o' || out.method === 'snapkv') && out.window >= budget) {
    throw new LightVLMError(`${c.name('acceleration.decode.window')} ${out.window} must be smaller than ${c.name('acceleration.decode.budget')} ${budget} for ${out.method}.`, 'E_OPTION');
  }
  if (out.method === 'snapkv' && budget === undefined && out.window !== undefined && out.window >= 2048) {
    throw new LightVLMError(`${c.name('acceleration.decode.window')} ${out.window} must be smaller than the snapkv budget (default 2048).`, 'E_OPTION');
  }
  return out;
}

/**
 * Checks GenerateOptions strictly (types, ranges, unknown keys) and returns a clean copy.
 * `names` maps option paths to the caller's spelling (the CLI's flags).
 */
export function checkGenerateOptions(opts: unknown, names?: OptionNames): GenerateOptions {
  const c: Checker = new Checker(names);
  if (opts === undefined) return {};
  const o = c.object('', opts, GENERATE_KEYS);
  const out: GenerateOptions = {};
  if (o.maxNewTokens !== undefined) out.maxNewTokens = c.num('maxNewTokens', o.maxNewTokens, { int: true, min: 1, max: MAX_NEW_TOKENS });
  if (o.minNewTokens !== undefined) out.minNewTokens = c.num('minNewTokens', o.minNewTokens, { int: true, min: 0, max: MAX_NEW_TOKENS });
  if (o.temperature !== undefined) out.temperature = c.num('temperature', o.temperature, { min: 0 });
  if (o.topK !== undefined) out.topK = c.num('topK', o.topK, { int: true, min: 1 });
  if (o.topP !== undefined) out.topP = c.num('topP', o.topP, { min: 0, openMin: true, max: 1 });
  if (o.seed !== undefined) out.seed = c.num('seed', o.seed, { int: true, min: 0, max: 2 ** 32 - 1 });
  if (o.stopStrings !== undefined) {
    if (!Array.isArray(o.stopStrings)) c.fail('stopStrings', 'an array of non-empty strings', o.stopStrings);
    const s = o.stopStrings as unknown[];
    if (s.length > MAX_STOP_STRINGS) c.fail('stopStrings', `at most ${MAX_STOP_STRINGS} strings`, `${s.length} strings`);
    s.forEach((x, i) => {
      if (typeof x !== 'string' || x.length === 0 || x.length > MAX_STOP_CHARS) {
        c.fail(names?.stopStrings ? 'stopStrings' : `stopStrings[${i}]`, `a non-empty string of at most ${MAX_STOP_CHARS} characters (an empty one would stop at once)`, x);
      }
    });
    out.stopStrings = [...(s as string[])];
  }
  if (o.signal !== undefined) {
    if (!(o.signal instanceof AbortSignal)) c.fail('signal', 'an AbortSignal', o.signal);
    out.signal = o.signal as AbortSignal;
  }
  if (o.acceleration !== undefined) {
    const a = c.object('acceleration', o.acceleration, ['prefill', 'decode', 'vitMerge']);
    const acc: Acceleration = {};
    if (a.prefill !== undefined) acc.prefill = checkPrefill(c, a.prefill);
    if (a.decode !== undefined) acc.decode = checkDecode(c, a.decode);
    if (a.vitMerge !== undefined) {
      // field ranges are checked by resolveVitMerge (vitmerge/options.ts), which names them
      const vm = c.object('acceleration.vitMerge', a.vitMerge, ['mode', 'layer', 'keep', 'layers']);
      acc.vitMerge = resolveVitMerge(vm as Partial<VitMergeOptions>, c.name('acceleration.vitMerge'));
    }
    out.acceleration = acc;
  }
  return out;
}

/** ORT intra-op thread count: a whole number in [1, 4 × cores]. */
export function checkThreads(v: unknown, name = 'threads'): number {
  return new Checker({ threads: name }).num('threads', v, { int: true, min: 1, max: maxThreads() });
}

/** LoadOptions: an object; `boundaries` whole layer numbers >= 1 (the other fields are checked where they are used). */
export function checkLoadOptions<T extends { boundaries?: number[] }>(opts: T): T {
  const c: Checker = new Checker();
  if (opts === undefined) return {} as T;
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) c.fail('load options', 'an object', opts);
  if (opts.boundaries === undefined) return opts;
  if (!Array.isArray(opts.boundaries)) c.fail('boundaries', 'an array of layer numbers', opts.boundaries);
  return { ...opts, boundaries: (opts.boundaries as unknown[]).map((b, i) => c.num(`boundaries[${i}]`, b, { int: true, min: 1 })) };
}

/** What the engine accepts as an image: a file path, encoded bytes, or a PreparedImage. */
export function checkImageSource(image: unknown): string | Uint8Array | { kind: 'prepared-image' } {
  if (typeof image === 'string') {
    if (image.length === 0) throw new LightVLMError('image is an empty string; pass a file path, a Buffer/Uint8Array of encoded bytes, or a PreparedImage.', 'E_IMAGE');
    if (/^(https?|data):/i.test(image)) {
      throw new LightVLMError(`image ${show(image)} is a URL; lightvlm reads files and bytes only. Fetch it first and pass the bytes (new Uint8Array(await (await fetch(url)).arrayBuffer())).`, 'E_IMAGE');
    }
    return image;
  }
  if (image instanceof Uint8Array) return image; // Buffer is a Uint8Array
  if (typeof image === 'object' && image !== null && (image as { kind?: unknown }).kind === 'prepared-image') return image as { kind: 'prepared-image' };
  const hint =
    image instanceof ArrayBuffer || image instanceof SharedArrayBuffer
      ? ' Wrap an ArrayBuffer as new Uint8Array(buffer).'
      : image instanceof URL
        ? ' A URL object is not read; pass url.pathname for a file: URL, or fetch the bytes.'
        : '';
  throw new LightVLMError(`image must be a file path, a Buffer/Uint8Array of encoded bytes, or a PreparedImage from prepareImage(); got ${show(image)}.${hint}`, 'E_IMAGE');
}

/** The question: a non-empty string of at most MAX_PROMPT_CHARS characters. */
export function checkPrompt(prompt: unknown): string {
  if (typeof prompt !== 'string') throw new LightVLMError(`prompt must be a string; got ${show(prompt)}.`, 'E_PROMPT');
  if (prompt.trim() === '') throw new LightVLMError('prompt is empty; pass the question about the image.', 'E_PROMPT');
  if (prompt.length > MAX_PROMPT_CHARS) {
    throw new LightVLMError(`prompt has ${prompt.length} characters; the limit is ${MAX_PROMPT_CHARS}. Shorten it.`, 'E_PROMPT_TOO_LONG');
  }
  return prompt;
}

/** VLMInput: { image, prompt } with both checked. */
export function checkInput(input: unknown): { image: string | Uint8Array | { kind: 'prepared-image' }; prompt: string } {
  if (typeof input !== 'object' || input === null) {
    throw new LightVLMError(`generate() takes { image, prompt }; got ${show(input)}.`, 'E_OPTION');
  }
  const o = input as { image?: unknown; prompt?: unknown };
  return { image: checkImageSource(o.image), prompt: checkPrompt(o.prompt) };
}
