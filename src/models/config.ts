// Reading config.json: the LM part is normalised into TextConfig; HF names are kept elsewhere.
import fs from 'node:fs';
import path from 'node:path';
import { LightVLMError } from '../errors.js';
import type { TextDims } from '../graph/decoderStage.js';

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The LM part of config.json, normalised (the graph sizes plus positions, vocabulary, RoPE). */
export interface TextConfig extends TextDims {
  layers: number;
  ropeTheta: number;
  mropeSection?: number[]; // Qwen2-VL M-RoPE: frequency counts for the t, h, w rows
  vocab: number;
  maxPositions: number;
  tieEmbeddings: boolean;
}

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
  return {
    layers: need('num_hidden_layers'),
    hidden,
    heads,
    kvHeads: tc.num_key_value_heads ?? heads,
    headDim: tc.head_dim ?? hidden / heads,
    intermediate: need('intermediate_size'),
    eps: tc.rms_norm_eps ?? 1e-6,
    act: tc.hidden_act ?? 'silu',
    ropeTheta: rope.rope_theta ?? tc.rope_theta ?? 10000,
    ...(rope.mrope_section ? { mropeSection: rope.mrope_section as number[] } : {}),
    vocab: need('vocab_size'),
    maxPositions: tc.max_position_embeddings ?? 32768,
    tieEmbeddings: Boolean(tc.tie_word_embeddings ?? top.tie_word_embeddings ?? false),
  };
}
