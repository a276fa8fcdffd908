// Reading config.json: the LM part is normalised into TextConfig; HF names are kept elsewhere.
import fs from 'node:fs';
import path from 'node:path';
import { LightVLMError } from '../errors.js';
import type { TextDims } from '../graph/decoderStage.js';
import { readActivation } from '../graph/ops.js';

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The LM part of config.json, normalised (the graph sizes plus positions, vocabulary, RoPE). */
export interface TextConfig extends TextDims {
  layers: number;
  ropeTheta: number;
  mropeSection?: number[]; // Qwen2-VL M-RoPE: frequency counts for the t, h, w rows
  vocab: number;
  maxPositions: number;
  tieEmbeddings: boolean;
  /**
   * eos_token_id of config.json (text_config's, else the top level's), as a list; engine/vlm.ts
   * prefers generation_config.json's. Read here so config.json is parsed once.
   */
  configEosIds: number[];
}

/** A number, a list of numbers, or nothing (HF's eos_token_id) → the numbers. */
const idList = (v: unknown): number[] => (Array.isArray(v) ? v : v == null ? [] : [v]).filter((x): x is number => typeof x === 'number');

export function readJsonFile(file: string, what: string): Json {
  if (!fs.existsSync(file)) throw new LightVLMError(`missing ${file} (${what}).`, 'E_CONFIG');
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new LightVLMError(`${file} is not valid JSON (${(e as Error).message}).`, 'E_CONFIG');
  }
}

export function readModelConfig(dir: string): Json {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new LightVLMError(`model folder ${dir} does not exist. Pass --model with a Hugging Face model folder (config.json, model.safetensors, tokenizer.json).`, 'E_IO');
  }
  return readJsonFile(path.join(dir, 'config.json'), 'the model configuration');
}

/** Llama / Qwen2 text config (nested `text_config` or `llm_config`), rope params old or new style. */
export function readTextConfig(tc: Json, top: Json): TextConfig {
  const need = (k: string): number => {
    const v = tc[k];
    if (typeof v !== 'number') throw new LightVLMError(`config.json text_config.${k} is missing or not a number.`, 'E_CONFIG');
    return v;
  };
  const rope = (tc.rope_parameters ?? tc.rope_scaling ?? {}) as Json;
  const ropeType = rope.rope_type ?? rope.type ?? 'default';
  if (!['default', 'mrope'].includes(ropeType)) {
    throw new LightVLMError(`rope type "${ropeType}" is not supported yet (supported: default, mrope).`, 'E_UNSUPPORTED');
  }
  const heads = need('num_attention_heads');
  const hidden = need('hidden_size');
  const out: TextConfig = {
    layers: need('num_hidden_layers'),
    hidden,
    heads,
    kvHeads: tc.num_key_value_heads ?? heads,
    headDim: tc.head_dim ?? hidden / heads,
    intermediate: need('intermediate_size'),
    eps: tc.rms_norm_eps ?? 1e-6,
    act: readActivation(tc.hidden_act ?? 'silu', 'text_config.hidden_act'),
    ropeTheta: rope.rope_theta ?? tc.rope_theta ?? 10000,
    ...(rope.mrope_section ? { mropeSection: rope.mrope_section as number[] } : {}),
    vocab: need('vocab_size'),
    maxPositions: tc.max_position_embeddings ?? 32768,
    tieEmbeddings: Boolean(tc.tie_word_embeddings ?? top.tie_word_embeddings ?? false),
    configEosIds: idList(top.text_config?.eos_token_id ?? top.eos_token_id),
  };
  checkTextConfig(out);
  return out;
}

/** Sanity of the numbers before any graph is built: sizes are positive whole numbers that divide, eps and theta positive. */
function checkTextConfig(c: TextConfig): void {
  const bad = (field: string, v: unknown, want: string): never => {
    throw new LightVLMError(`config.json text_config.${field} is ${JSON.stringify(v)}; it must be ${want}. Fix config.json (or re-download the model).`, 'E_CONFIG');
  };
  const ints: [string, number][] = [
    ['num_hidden_layers', c.layers], ['hidden_size', c.hidden], ['num_attention_heads', c.heads], ['num_key_value_heads', c.kvHeads],
    ['head_dim', c.headDim], ['intermediate_size', c.intermediate], ['vocab_size', c.vocab], ['max_position_embeddings', c.maxPositions],
  ];
  for (const [k, v] of ints) if (!Number.isSafeInteger(v) || v < 1 || v > 2 ** 31) bad(k, v, 'a positive whole number');
  if (c.heads % c.kvHeads !== 0) bad('num_key_value_heads', c.kvHeads, `a divisor of num_attention_heads (${c.heads})`);
  if (c.headDim % 2 !== 0) bad('head_dim', c.headDim, 'even (rotary embeddings rotate pairs)');
  if (typeof c.eps !== 'number' || !(c.eps > 0) || !Number.isFinite(c.eps)) bad('rms_norm_eps', c.eps, 'a positive number such as 1e-6');
  if (typeof c.ropeTheta !== 'number' || !(c.ropeTheta > 0) || !Number.isFinite(c.ropeTheta)) bad('rope_theta', c.ropeTheta, 'a positive number such as 10000');
  if (c.mropeSection && (!Array.isArray(c.mropeSection) || !c.mropeSection.every((x) => Number.isSafeInteger(x) && x >= 0))) bad('rope_parameters.mrope_section', c.mropeSection, 'a list of whole numbers');
}
