// Method specs shared by the CLI (`run`, `eval`, `bench`), eval and bench (a spec string → acceleration options):
//   --method NAME[:KEEP]   prefill token reduction, KEEP = final kept fraction of image tokens in (0, 1]
//   --kv NAME[:BUDGET]     decode-time KV-cache compression, BUDGET = entries per layer (positive integer)
//   --keep F               (repeatable) crossed with every --method that has no explicit KEEP, so
//                          `--method lightvlm --method fastv --keep 0.1 --keep 0.35` is a 2×2 sweep.
//   --vit-merge SPEC       (repeatable) token merging in the vision tower, MODE[:LAYER[:KEEP[:LAYERS]]] or off
// Combinations are methods × kv values × vit-merge values; without --kv the engine's default decode policy applies.
import type { Acceleration, DecodeAcceleration } from './types.js';
import { LightVLMError } from '../errors.js';
import { parseVitMergeSpec, vitMergeLabel } from '../vitmerge/options.js';
import type { VitMergeOptions } from '../vitmerge/policy.js';

import { KV_METHODS } from '../kvcache/registry.js';
import { PREFILL_METHODS, type PrefillMethod } from '../merge/plan.js';
import { isOneOf } from '../util/never.js';

export interface MethodSpec {
  method: PrefillMethod;
  keep?: number; // undefined: the engine's default keep for that method (or 1 for `none`)
}

/** One measured configuration: a prefill method and an optional decode policy. */
export interface Combo {
  prefill: MethodSpec;
  kv?: DecodeAcceleration; // undefined: engine default
  vit?: VitMergeOptions;   // undefined: no merging in the vision tower
}

const parseFraction = (raw: string, what: string): number => {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v <= 0 || v > 1) {
    throw new LightVLMError(`${what}: keep must be a fraction in (0, 1], e.g. 0.35; got '${raw}'.`, 'E_OPTION');
  }
  return v;
};

/** `lightvlm:0.35` → { method: 'lightvlm', keep: 0.35 }; `none` → { method: 'none' }. */
export function parseMethodSpec(spec: string): MethodSpec {
  const [name = '', keepRaw, ...rest] = spec.trim().split(':');
  const method = name.toLowerCase();
  if (!isOneOf(PREFILL_METHODS, method)) {
    throw new LightVLMError(`unknown method '${name}' in --method ${spec}. Valid methods: ${PREFILL_METHODS.join(', ')} (written NAME or NAME:KEEP, e.g. lightvlm:0.35).`, 'E_OPTION');
  }
  if (rest.length > 0) throw new LightVLMError(`--method ${spec}: expected NAME or NAME:KEEP with one colon, e.g. lightvlm:0.35.`, 'E_OPTION');
  if (keepRaw === undefined) return { method };
  const keep = parseFraction(keepRaw, `--method ${spec}`);
  // `none` keeps everything by definition; a different keep means the user meant another method.
  if (method === 'none' && keep !== 1) throw new LightVLMError(`--method ${spec}: 'none' keeps every image token and takes no keep; use e.g. lightvlm:${keepRaw} to reduce.`, 'E_OPTION');
  return { method, keep };
}

/** `h2o:512` → { method: 'h2o', budget: 512 }; `none` → { method: 'none' }. */
export function parseKvSpec(spec: string): DecodeAcceleration {
  const [name = '', budgetRaw, ...rest] = spec.trim().split(':');
  const method = name.toLowerCase();
  if (!isOneOf(KV_METHODS, method)) {
    throw new LightVLMError(`unknown KV policy '${name}' in --kv ${spec}. Valid policies: ${KV_METHODS.join(', ')} (written NAME or NAME:BUDGET, e.g. h2o:512).`, 'E_OPTION');
  }
  if (rest.length > 0) throw new LightVLMError(`--kv ${spec}: expected NAME or NAME:BUDGET with one colon, e.g. h2o:512.`, 'E_OPTION');
  if (budgetRaw === undefined) return { method };
  const budget = Number(budgetRaw);
  if (!Number.isInteger(budget) || budget <= 0) {
    throw new LightVLMError(`--kv ${spec}: the budget must be a positive whole number of cache entries per layer, e.g. h2o:512; got '${budgetRaw}'.`, 'E_OPTION');
  }
  if (method === 'none') throw new LightVLMError(`--kv ${spec}: 'none' never compresses the cache and takes no budget.`, 'E_OPTION');
  return { method, budget };
}

export const methodLabel = (m: MethodSpec): string => (m.keep === undefined || m.method === 'none' ? m.method : `${m.method}:${m.keep}`);
export const kvLabel = (kv: DecodeAcceleration | undefined): string =>
  kv === undefined ? 'default' : kv.budget === undefined ? kv.method : `${kv.method}:${kv.budget}`;
export const comboLabel = (c: Combo): string =>
  (c.kv === undefined ? methodLabel(c.prefill) : `${methodLabel(c.prefill)} kv=${kvLabel(c.kv)}`) + (c.vit ? ` vit=${vitMergeLabel(c.vit)}` : '');

/** The `acceleration` option handed to VLM.generate for one combination. */
export function toAcceleration(c: Combo): Acceleration {
  const prefill = c.prefill.keep === undefined ? { method: c.prefill.method } : { method: c.prefill.method, keep: c.prefill.keep };
  return { prefill, ...(c.kv ? { decode: { ...c.kv } } : {}), ...(c.vit ? { vitMerge: { ...c.vit } } : {}) };
}

/**
 * Expands repeated --method / --keep / --kv values into combinations, deduplicated, in the order given.
 * With `requireBaseline`, a plain `none` (kv default, or kv none) is added at the front when missing,
 * because retention and speedups are measured against it; `added` says so the caller can tell the user.
 */
export function expandCombos(methods: string[], keeps: string[], kvs: string[], requireBaseline: boolean, vits: string[] = []): { combos: Combo[]; added: boolean } {
  const keepValues = keeps.map((k) => parseFraction(k, `--keep ${k}`));
  // `METHOD[:KEEP]/KV[:BUDGET]` pairs a method with one KV policy instead of crossing it with every --kv.
  const prefills: { m: MethodSpec; kv?: DecodeAcceleration }[] = [];
  for (const raw of methods.length > 0 ? methods : ['none']) {
    const [name = '', kvRaw, ...extra] = raw.split('/');
    if (extra.length > 0) throw new LightVLMError(`--method ${raw}: expected METHOD[:KEEP] or METHOD[:KEEP]/KV[:BUDGET].`, 'E_OPTION');
    const m = parseMethodSpec(name);
    const kv = kvRaw === undefined ? undefined : parseKvSpec(kvRaw);
    const push = (spec: MethodSpec) => prefills.push(kv ? { m: spec, kv } : { m: spec });
    if (m.keep !== undefined || m.method === 'none' || keepValues.length === 0) push(m);
    else for (const keep of keepValues) push({ method: m.method, keep });
  }
  const kvList: (DecodeAcceleration | undefined)[] = kvs.length > 0 ? kvs.map(parseKvSpec) : [undefined];
  const combos: Combo[] = [];
  const seen = new Set<string>();
  const vitList = vits.length > 0 ? vits.map(parseVitMergeSpec) : [undefined];
  for (const { m: prefill, kv: fixed } of prefills) {
    for (const kv of fixed ? [fixed] : kvList) {
      for (const vit of vitList) {
        const c: Combo = { prefill, ...(kv ? { kv } : {}), ...(vit ? { vit } : {}) };
        const key = comboLabel(c);
        if (!seen.has(key)) { seen.add(key); combos.push(c); }
      }
    }
  }
  let added = false;
  if (requireBaseline && findBaseline(combos) < 0) {
    combos.unshift(kvs.length > 0 ? { prefill: { method: 'none' }, kv: { method: 'none' } } : { prefill: { method: 'none' } });
    added = true;
  }
  return { combos, added };
}

/** Index of the unreduced reference: prefill none with no KV compression (kv default or none) and no vitMerge. */
export function findBaseline(combos: readonly Combo[]): number {
  return combos.findIndex((c) => c.prefill.method === 'none' && (c.kv === undefined || c.kv.method === 'none') && c.vit === undefined);
}
