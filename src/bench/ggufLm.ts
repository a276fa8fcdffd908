// The language model of a lightvlm checkpoint (a Qwen2 LM: InternVL's text model, or a plain Qwen2)
// as a llama.cpp `qwen2` GGUF with the same weights, at f32, q8_0 or q4_0, plus the tokenizer
// metadata llama.cpp needs to load it (the checkpoint's tokenizer.json vocabulary and merges).
//
// Tensor names follow llama.cpp's qwen2 (llama-arch.cpp): token_embd, blk.N.attn_norm,
// attn_q/k/v (+ bias), attn_output, ffn_norm, ffn_gate/up/down, output_norm, output. An HF Linear
// weight [out, in] is ggml ne = [in, out] with the same bytes; qwen2 is NEOX RoPE in llama.cpp,
// the same rotate-half as transformers, so q/k need no permutation (unlike the `llama` arch).
// Quantized files mirror `llama-quantize`'s choices for Q8_0 / Q4_0: every matrix at the type
// except `output` in a Q4_0 file, which llama-quantize keeps at q8_0 when its row length is not a
// multiple of 256 (896 for Qwen2-0.5B; q6_K otherwise, which this writer does not encode, so q8_0
// there too); norms and biases stay f32.
import fs from 'node:fs';
import path from 'node:path';
import { openCheckpoint, type SafetensorsStore } from '../checkpoint/safetensors.js';
import { encode, type GgmlTypeName, type MetaValue, type TensorSource, writeGguf } from './gguf.js';

export type GgufFileType = 'f32' | 'q8_0' | 'q4_0';
/** general.file_type (llama_ftype): ALL_F32 = 0, MOSTLY_Q4_0 = 2, MOSTLY_Q8_0 = 7. */
const FTYPE: Record<GgufFileType, number> = { f32: 0, q4_0: 2, q8_0: 7 };

export interface Qwen2Config {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  eps: number;
  ropeTheta: number;
  maxPositions: number;
  vocab: number;
  tied: boolean;
}

type Json = Record<string, unknown>;
const num = (o: Json, k: string): number | undefined => (typeof o[k] === 'number' ? (o[k] as number) : undefined);

/** The Qwen2 text config inside a checkpoint's config.json (text_config, llm_config or top level). */
export function qwen2Config(dir: string): Qwen2Config {
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Json;
  const t = ((cfg.text_config ?? cfg.llm_config ?? cfg) as Json);
  if (t.model_type !== 'qwen2') throw new Error(`${dir}: the language model is '${String(t.model_type)}', not qwen2; the GGUF export covers Qwen2 LMs (InternVL, Qwen2)`);
  const need = (k: string): number => {
    const v = num(t, k);
    if (v === undefined) throw new Error(`${dir}/config.json: text config has no numeric ${k}`);
    return v;
  };
  const rope = (t.rope_parameters ?? t.rope_scaling ?? {}) as Json;
  return {
    hidden: need('hidden_size'),
    layers: need('num_hidden_layers'),
    heads: need('num_attention_heads'),
    kvHeads: num(t, 'num_key_value_heads') ?? need('num_attention_heads'),
    intermediate: need('intermediate_size'),
    eps: num(t, 'rms_norm_eps') ?? 1e-6,
    ropeTheta: num(t, 'rope_theta') ?? num(rope, 'rope_theta') ?? 1e6,
    maxPositions: num(t, 'max_position_embeddings') ?? 32768,
    vocab: need('vocab_size'),
    tied: Boolean(cfg.tie_word_embeddings ?? t.tie_word_embeddings ?? true) || Boolean(t.tie_word_embeddings),
  };
}

/** Checkpoint tensor-name prefix of the LM's decoder (".../embed_tokens.weight" sits under it) and the head's name. */
export function lmNames(st: Pick<SafetensorsStore, 'names' | 'has'>, tied: boolean): { prefix: string; head: string | null } {
  const prefix = st.names().map((n) => n.match(/^(.*?)embed_tokens\.weight$/)?.[1]).find((p) => p !== undefined && st.has(`${p}layers.0.self_attn.q_proj.weight`));
  if (prefix === undefined) throw new Error('no Qwen2 decoder in the checkpoint (no *embed_tokens.weight next to layers.0.self_attn.q_proj.weight)');
  // transformers 4 InternVL: language_model.model. -> language_model.lm_head; transformers 5: model.language_model. -> lm_head
  const head = [prefix.replace(/model\.$/, 'lm_head.weight'), 'lm_head.weight', `${prefix}lm_head.weight`, 'model.lm_head.weight'].find((n) => st.has(n));
  // No head tensor: tied to the embeddings, as the engine reads it (transformers 5 InternVL ties by
  // default); llama.cpp then uses token_embd as the output matrix.
  if (head === undefined && !tied) throw new Error(`no LM head next to ${prefix}embed_tokens.weight and the text config unties the embeddings`);
  return { prefix, head: head ?? null };
}

/** Token strings by id, token types (1 normal, 3 control, 4 user-defined) and merges from tokenizer.json. */
export function tokenizerMeta(dir: string, vocab: number): { tokens: string[]; types: Int32Array; merges: string[]; eos?: number; pad?: number; bos?: number } {
  const tj = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as Json;
  const model = tj.model as { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
  if (model?.type !== 'BPE' || !model.vocab) throw new Error(`${dir}/tokenizer.json is not a BPE tokenizer; the GGUF export writes a gpt2-style (BPE) vocabulary`);
  const tokens: string[] = Array.from({ length: vocab }, (_, i) => `[PAD${i}]`);
  const types = new Int32Array(vocab).fill(1);
  for (const [tok, id] of Object.entries(model.vocab)) if (id < vocab) tokens[id] = tok;
  const added = (tj.added_tokens ?? []) as { id: number; content: string; special?: boolean }[];
  for (const a of added) {
    if (a.id >= vocab) continue;
    tokens[a.id] = a.content;
    types[a.id] = a.special ? 3 : 4;
  }
  const merges = (model.merges ?? []).map((m) => (Array.isArray(m) ? m.join(' ') : m));
  const tc = fs.existsSync(path.join(dir, 'tokenizer_config.json')) ? (JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')) as Json) : {};
  const idOf = (k: string): number | undefined => {
    const v = tc[k];
    const s = typeof v === 'string' ? v : (v as { content?: string } | undefined)?.content;
    return s === undefined ? undefined : added.find((a) => a.content === s)?.id;
  };
  const out: ReturnType<typeof tokenizerMeta> = { tokens, types, merges };
  const eos = idOf('eos_token'); if (eos !== undefined) out.eos = eos;
  const pad = idOf('pad_token'); if (pad !== undefined) out.pad = pad;
  const bos = idOf('bos_token'); if (bos !== undefined) out.bos = bos;
  return out;
}

export interface GgufExport {
  file: string;
  bytes: number;
  tensors: number;
  config: Qwen2Config;
}

/** Writes the checkpoint's LM as a llama.cpp `qwen2` GGUF of `type` at `file`. */
export function writeLmGguf(dir: string, file: string, type: GgufFileType, onTensor?: (done: number, total: number) => void): GgufExport {
  const c = qwen2Config(dir);
  const st = openCheckpoint(dir);
  const { prefix, head } = lmNames(st, c.tied);
  const tok = tokenizerMeta(dir, c.vocab);
  const meta = new Map<string, MetaValue>();
  const u32 = (value: number): MetaValue => ({ type: 'u32', value });
  meta.set('general.architecture', { type: 'str', value: 'qwen2' });
  meta.set('general.name', { type: 'str', value: `lightvlm LM of ${path.basename(path.resolve(dir))}` });
  meta.set('general.file_type', u32(FTYPE[type]));
  meta.set('qwen2.context_length', u32(c.maxPositions));
  meta.set('qwen2.embedding_length', u32(c.hidden));
  meta.set('qwen2.block_count', u32(c.layers));
  meta.set('qwen2.feed_forward_length', u32(c.intermediate));
  meta.set('qwen2.attention.head_count', u32(c.heads));
  meta.set('qwen2.attention.head_count_kv', u32(c.kvHeads));
  meta.set('qwen2.rope.freq_base', { type: 'f32', value: c.ropeTheta });
  meta.set('qwen2.attention.layer_norm_rms_epsilon', { type: 'f32', value: c.eps });
  meta.set('tokenizer.ggml.model', { type: 'str', value: 'gpt2' });
  meta.set('tokenizer.ggml.pre', { type: 'str', value: 'qwen2' });
  meta.set('tokenizer.ggml.tokens', { type: 'arr', of: 'str', value: tok.tokens });
  meta.set('tokenizer.ggml.token_type', { type: 'arr', of: 'i32', value: tok.types });
  meta.set('tokenizer.ggml.merges', { type: 'arr', of: 'str', value: tok.merges });
  if (tok.eos !== undefined) meta.set('tokenizer.ggml.eos_token_id', u32(tok.eos));
  if (tok.pad !== undefined) meta.set('tokenizer.ggml.padding_token_id', u32(tok.pad));
  if (tok.bos !== undefined) meta.set('tokenizer.ggml.bos_token_id', u32(tok.bos));
  meta.set('tokenizer.ggml.add_bos_token', { type: 'bool', value: false });

  const tensors: TensorSource[] = [];
  const put = (name: string, src: string, t: GgmlTypeName) => {
    const shape = st.entries.get(src)?.shape;
    if (!shape) throw new Error(`checkpoint has no ${src}`);
    tensors.push({ name, ne: [...shape].reverse(), type: shape.length === 1 ? 'f32' : t, data: () => encode(shape.length === 1 ? 'f32' : t, st.float(src).data) });
  };
  put('token_embd.weight', `${prefix}embed_tokens.weight`, type);
  for (let l = 0; l < c.layers; l++) {
    const p = `${prefix}layers.${l}.`;
    put(`blk.${l}.attn_norm.weight`, `${p}input_layernorm.weight`, 'f32');
    for (const [g, hf] of [['attn_q', 'q_proj'], ['attn_k', 'k_proj'], ['attn_v', 'v_proj']] as const) {
      put(`blk.${l}.${g}.weight`, `${p}self_attn.${hf}.weight`, type);
      put(`blk.${l}.${g}.bias`, `${p}self_attn.${hf}.bias`, 'f32');
    }
    put(`blk.${l}.attn_output.weight`, `${p}self_attn.o_proj.weight`, type);
    put(`blk.${l}.ffn_norm.weight`, `${p}post_attention_layernorm.weight`, 'f32');
    put(`blk.${l}.ffn_gate.weight`, `${p}mlp.gate_proj.weight`, type);
    put(`blk.${l}.ffn_up.weight`, `${p}mlp.up_proj.weight`, type);
    put(`blk.${l}.ffn_down.weight`, `${p}mlp.down_proj.weight`, type);
  }
  put('output_norm.weight', `${prefix}norm.weight`, 'f32');
  if (head !== null) put('output.weight', head, type === 'q4_0' ? 'q8_0' : type);

  let done = 0;
  const counted = tensors.map((t) => ({ ...t, data: () => { const d = t.data(); onTensor?.(++done, tensors.length); return d; } }));
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const bytes = writeGguf(tmp, meta, counted);
    fs.renameSync(tmp, file); // readers never see a half-written file
    return { file, bytes, tensors: tensors.length, config: c };
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
