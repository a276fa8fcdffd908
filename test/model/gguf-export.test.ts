// The LM of a checkpoint as a llama.cpp qwen2 GGUF (bench/ggufLm.ts), on tiny-internvl: llama.cpp's
// metadata keys from config.json, the tokenizer vocabulary, every tensor under llama.cpp's name with
// the reversed (ggml) shape, f32 data equal to the checkpoint's weights, quantized data equal to the
// block encoders' output on those weights. (Loading it in llama.cpp is `npm run bench:llamacpp`'s
// check: node-llama-cpp is not a dependency.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openCheckpoint } from '../../src/checkpoint/safetensors.js';
import { GGML_TYPE, quantizeQ4_0, quantizeQ8_0, readGgufHeader, tensorBytes } from '../../src/bench/gguf.js';
import { writeLmGguf } from '../../src/bench/ggufLm.js';
import { MODELS } from '../helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lightvlm-gguf-lm-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const dir = MODELS['tiny-internvl']!.dir;
const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).text_config;

function tensorData(file: string, name: string): Buffer {
  const h = readGgufHeader(file);
  const t = h.tensors.find((x) => x.name === name)!;
  const type = (Object.entries(GGML_TYPE).find(([, v]) => v === t.type)![0]) as keyof typeof GGML_TYPE;
  const bytes = fs.readFileSync(file);
  return bytes.subarray(h.dataOffset + t.offset, h.dataOffset + t.offset + tensorBytes(type, t.ne));
}

test('tiny-internvl LM as a qwen2 GGUF: metadata, vocabulary, names, shapes and f32 weights', () => {
  const file = path.join(tmp, 'f32.gguf');
  const x = writeLmGguf(dir, file, 'f32');
  const h = readGgufHeader(file);
  assert.equal(h.meta.get('general.architecture'), 'qwen2');
  assert.equal(h.meta.get('qwen2.block_count'), cfg.num_hidden_layers);
  assert.equal(h.meta.get('qwen2.embedding_length'), cfg.hidden_size);
  assert.equal(h.meta.get('qwen2.feed_forward_length'), cfg.intermediate_size);
  assert.equal(h.meta.get('qwen2.attention.head_count'), cfg.num_attention_heads);
  assert.equal(h.meta.get('qwen2.attention.head_count_kv'), cfg.num_key_value_heads);
  assert.equal(h.meta.get('qwen2.rope.freq_base'), cfg.rope_parameters.rope_theta);
  assert.equal(h.meta.get('qwen2.attention.layer_norm_rms_epsilon'), Math.fround(cfg.rms_norm_eps));
  assert.equal(h.meta.get('tokenizer.ggml.model'), 'gpt2');
  const tokens = h.meta.get('tokenizer.ggml.tokens') as string[];
  assert.equal(tokens.length, cfg.vocab_size);
  const tj = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  for (const [tok, id] of Object.entries(tj.model.vocab as Record<string, number>)) if (id < cfg.vocab_size) assert.equal(tokens[id], tok);
  const L = cfg.num_hidden_layers;
  // embd, output_norm + 12 per layer (q/k/v with bias); no output.weight: tiny-internvl has no
  // lm_head tensor, so (as in the engine) the head is the tied embedding, which llama.cpp also falls back to
  assert.equal(x.tensors, 2 + 12 * L);
  assert.equal(h.tensors.length, x.tensors);
  const byName = new Map(h.tensors.map((t) => [t.name, t]));
  const D = cfg.hidden_size, kv = (D / cfg.num_attention_heads) * cfg.num_key_value_heads;
  assert.deepEqual(byName.get('token_embd.weight')!.ne, [D, cfg.vocab_size]);
  assert.equal(byName.get('output.weight'), undefined);
  assert.deepEqual(byName.get(`blk.${L - 1}.attn_k.weight`)!.ne, [D, kv]);
  assert.deepEqual(byName.get('blk.0.attn_k.bias')!.ne, [kv]);
  assert.deepEqual(byName.get('blk.0.ffn_down.weight')!.ne, [cfg.intermediate_size, D]);
  assert.ok(h.tensors.every((t) => t.type === GGML_TYPE.f32));
  const st = openCheckpoint(dir);
  const prefix = st.names().find((n) => n.endsWith('embed_tokens.weight'))!.replace('embed_tokens.weight', '');
  for (const [g, hf] of [['token_embd.weight', 'embed_tokens.weight'], ['blk.1.ffn_gate.weight', 'layers.1.mlp.gate_proj.weight'], ['blk.0.attn_q.bias', 'layers.0.self_attn.q_proj.bias'], ['output_norm.weight', 'norm.weight']]) {
    const want = st.float(prefix + hf!).data;
    assert.deepEqual(new Float32Array(Uint8Array.from(tensorData(file, g!)).buffer), want, g);
  }
});

test('q8_0 / q4_0 GGUFs hold the block encodings of the same weights; norms and biases stay f32', () => {
  const st = openCheckpoint(dir);
  const prefix = st.names().find((n) => n.endsWith('embed_tokens.weight'))!.replace('embed_tokens.weight', '');
  const up = st.float(`${prefix}layers.2.mlp.up_proj.weight`).data;
  for (const [type, enc] of [['q8_0', quantizeQ8_0], ['q4_0', quantizeQ4_0]] as const) {
    const file = path.join(tmp, `${type}.gguf`);
    writeLmGguf(dir, file, type);
    const h = readGgufHeader(file);
    const t = (n: string) => h.tensors.find((x) => x.name === n)!.type;
    assert.equal(t('blk.2.ffn_up.weight'), GGML_TYPE[type]);
    assert.equal(t('token_embd.weight'), GGML_TYPE[type]);
    assert.equal(t('blk.0.attn_norm.weight'), GGML_TYPE.f32);
    assert.equal(t('blk.0.attn_v.bias'), GGML_TYPE.f32);
    assert.deepEqual([...tensorData(file, 'blk.2.ffn_up.weight')], [...enc(up)]);
  }
});

test('a checkpoint whose LM is not Qwen2 is refused by name', () => {
  assert.throws(() => writeLmGguf(MODELS['tiny-llava']!.dir, path.join(tmp, 'x.gguf'), 'f32'), /not qwen2/);
});
