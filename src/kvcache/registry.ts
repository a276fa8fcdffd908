// KV options → one sequence's controller. The policy registry lives here: a new KV policy is its
// file (pure row selection + controller factory, like h2o.ts) plus one line in KV_POLICIES.
import { LightVLMError } from '../errors.js';
import { nonNegative, type KvController, type KvControllerFactory, type KvOptions } from './controller.js';
import { h2oKv } from './h2o.js';
import { lightvlmKv, pruneStale } from './lightvlm.js';
import { snapkvKv } from './snapkv.js';
import { streamingllmKv } from './streamingllm.js';

export type { KvController } from './controller.js';

/**
 * Each policy: its controller; whether component A (stale image rows) is on by default when merging;
 * whether the rows decoding adds per layer stay within budget + every (the scheduler reserves KV
 * memory for that many instead of maxNewTokens).
 */
const KV_POLICIES = {
  none: { make: (_d, s) => s.base, staleByDefault: false, boundsDecode: false },
  stale: { make: (_d, s) => s.base, staleByDefault: true, boundsDecode: false }, // component A alone
  lightvlm: { make: lightvlmKv, staleByDefault: true, boundsDecode: true },
  streamingllm: { make: streamingllmKv, staleByDefault: false, boundsDecode: true },
  h2o: { make: h2oKv, staleByDefault: false, boundsDecode: true },
  snapkv: { make: snapkvKv, staleByDefault: false, boundsDecode: false },
} satisfies Record<string, { make: KvControllerFactory; staleByDefault: boolean; boundsDecode: boolean }>;

export type KvMethod = keyof typeof KV_POLICIES;
/** Every KV policy, in the order help texts list them. */
export const KV_METHODS = Object.keys(KV_POLICIES) as KvMethod[];

/** True when `method` keeps the rows decoding adds per layer within budget + every (KV_POLICIES). */
export const boundsDecodeRows = (method: KvMethod): boolean => KV_POLICIES[method]?.boundsDecode ?? false;

/** Decode-time KV-cache compression (lightvlm-spec.md §4, §6). */
export interface DecodeAcceleration extends KvOptions {
  method: KvMethod;
}

/** `merging`: the prefill plan has in-LM merge stages (component A has something to prune). */
export function resolveKv(d: DecodeAcceleration | undefined, merging: boolean): KvController {
  const method = d?.method ?? 'none';
  const every = nonNegative('every', d?.every ?? 32);
  const sinks = nonNegative('sinks', d?.sinks ?? 4);
  if (!(KV_METHODS as string[]).includes(method)) throw new LightVLMError(`unknown KV method "${method}". Use one of: ${KV_METHODS.join(', ')}.`, 'E_OPTION');
  const entry = KV_POLICIES[method];
  const stale = d?.pruneStaleImage ?? (merging && entry.staleByDefault);
  const base: KvController = {
    decodeScores: false,
    afterPrefill: (caches, _s, prompt) => {
      if (stale) pruneStale(caches, prompt);
    },
    afterStep: () => {},
  };
  return entry.make(d ?? {}, { every, sinks, base });
}
