import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { LIKE_NAMES, makeCheckpoint, resolveShape } from '../../src/checkpoint/make.js';
import { buildTokenizer } from '../../src/checkpoint/tokenizerStub.js';
import { openCheckpoint, readHeader } from '../../src/checkpoint/safetensors.js';
import { makeCheckpointCommand } from '../../src/cli/makeCheckpoint.js';
import { LightVLMError } from '../../src/errors.js';

// The repository root: the first folder above this file (test/ or dist/test/) holding fixtures/.
let root = path.dirname(fileURLToPath(import.meta.url));
while (!fs.existsSync(path.join(root, 'fixtures')) && path.dirname(root) !== root) root = path.dirname(root);
const fixture = (name: string) => path.join(root, 'fixtures', name);
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lightvlm-mkckpt-'));
const readJson = (dir: string, f: string) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));

/** name → shape of every tensor in a model folder. */
function shapes(dir: string): Map<string, number[]> {
  return new Map([...openCheckpoint(dir).entries].map(([k, v]) => [k, v.shape]));
}
/** The tensor-name pattern: layer indices replaced by N. */
const pattern = (names: Iterable<string>) => new Set([...names].map((n) => n.replace(/\.(layers?|blocks)\.\d+\./, '.$1.N.')));

const render = (dir: string, messages: unknown[]) =>
  new Template(fs.readFileSync(path.join(dir, 'chat_template.jinja'), 'utf8')).render({ messages, add_generation_prompt: true });
const imageTurn = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What color is the circle?' }] }];
const loadTok = (dir: string) => new Tokenizer(readJson(dir, 'tokenizer.json'), readJson(dir, 'tokenizer_config.json'));

test('tiny-llava has the fixture’s config, tensor names and shapes', async () => {
  const dir = tmp();
  try {
    const res = await makeCheckpoint({ like: 'tiny-llava', out: dir, seed: 1 });
    assert.equal(res.params, 273792);
    const fx = readJson(fixture('tiny-llava'), 'config.json');
    const cfg = readJson(dir, 'config.json');
    assert.deepEqual({ ...cfg.text_config }, fx.text_config);
    assert.deepEqual(cfg.vision_config, fx.vision_config);
    for (const k of ['image_token_index', 'image_seq_length', 'model_type', 'architectures', 'vision_feature_layer', 'tie_word_embeddings']) {
      assert.deepEqual(cfg[k], fx[k], k);
    }
    assert.equal(cfg.dtype, 'bfloat16');
    assert.deepEqual(readJson(dir, 'processor_config.json').image_processor, readJson(fixture('tiny-llava'), 'processor_config.json').image_processor);
    assert.deepEqual(shapes(dir), shapes(fixture('tiny-llava')));

    // Header: 8-byte aligned, offsets contiguous, file exactly as long as header + data.
    const file = path.join(dir, 'model.safetensors');
    const buf = fs.readFileSync(file);
    const hlen = Number(buf.readBigUInt64LE(0));
    assert.equal(hlen % 8, 0);
    const header = JSON.parse(buf.subarray(8, 8 + hlen).toString('utf8'));
    assert.deepEqual(header.__metadata__, { format: 'pt' });
    let end = 0;
    for (const [k, v] of Object.entries(header) as [string, { dtype: string; shape: number[]; data_offsets: [number, number] }][]) {
      if (k === '__metadata__') continue;
      assert.equal(v.dtype, 'BF16');
      assert.equal(v.data_offsets[0], end);
      assert.equal(v.data_offsets[1] - v.data_offsets[0], 2 * v.shape.reduce((a, b) => a * b, 1));
      end = v.data_offsets[1];
    }
    assert.equal(buf.length, 8 + hlen + end);
    assert.equal(readHeader(file).size, 73);

    const st = openCheckpoint(dir);
    const w = st.float('language_model.model.layers.0.mlp.up_proj.weight').data;
    const std = Math.sqrt(w.reduce((s, x) => s + x * x, 0) / w.length);
    assert.ok(std > 0.017 && std < 0.023, `std ${std}`);
    assert.ok(st.float('language_model.model.norm.weight').data.every((x) => x === 1));
    assert.ok(st.float('vision_tower.post_layernorm.bias').data.every((x) => x === 0));

    // Tokenizer: the fixture's special ids; the chat template renders like the fixture's prompt format.
    const tok = loadTok(dir);
    const prompt = render(dir, imageTurn);
    assert.equal(prompt, '<|im_start|>user\n<image>\nWhat color is the circle?<|im_end|>\n<|im_start|>assistant\n');
    const ids = tok.encode(prompt).ids;
    assert.deepEqual([ids[0], ids.filter((i: number) => i === 3).length, ids.filter((i: number) => i === 2).length], [1, 1, 1]);
    assert.equal(tok.decode(ids), prompt);

    // Same seed → same bytes; another seed → other bytes.
    const dir2 = tmp();
    try {
      await makeCheckpoint({ like: 'tiny-llava', out: dir2, seed: 1 });
      assert.ok(fs.readFileSync(path.join(dir2, 'model.safetensors')).equals(buf));
      await makeCheckpoint({ like: 'tiny-llava', out: dir2, seed: 2, force: true });
      assert.ok(!fs.readFileSync(path.join(dir2, 'model.safetensors')).equals(buf));
    } finally {
      fs.rmSync(dir2, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('internvl2_5-1b (2 LM layers): real sizes, tiny-internvl naming, InternVL special ids', async () => {
  const dir = tmp();
  try {
    const res = await makeCheckpoint({ like: 'internvl2_5-1b', out: dir, layers: 2, dtype: 'bf16' });
    const cfg = readJson(dir, 'config.json');
    const fx = readJson(fixture('tiny-internvl'), 'config.json');
    assert.deepEqual(Object.keys(cfg).sort(), Object.keys(fx).sort());
    assert.deepEqual(Object.keys(cfg.vision_config).sort(), Object.keys(fx.vision_config).sort());
    assert.equal(cfg.image_token_id, 151667);
    assert.equal(cfg.image_seq_length, 256);
    assert.equal(cfg.downsample_ratio, 0.5);
    const tc = cfg.text_config;
    assert.deepEqual([tc.hidden_size, tc.num_hidden_layers, tc.num_attention_heads, tc.num_key_value_heads, tc.intermediate_size, tc.vocab_size],
      [896, 2, 14, 2, 4864, 151674]);
    assert.equal(tc.layer_types.length, 2);
    assert.equal(tc.rope_parameters.rope_theta, 1e6);
    const vc = cfg.vision_config;
    assert.deepEqual([vc.hidden_size, vc.num_hidden_layers, vc.num_attention_heads, vc.intermediate_size, vc.image_size, vc.patch_size],
      [1024, 24, 16, 4096, [448, 448], [14, 14]]);
    const proc = readJson(dir, 'processor_config.json');
    assert.equal(proc.image_seq_length, 256);
    assert.equal(proc.image_processor.max_patches, 12);
    assert.deepEqual(proc.image_processor.size, { height: 448, width: 448 });

    // Names: the tiny-internvl set plus the InternViT qkv biases and the untied LM head.
    const sh = shapes(dir);
    const extra = ['vision_tower.encoder.layer.N.attention.q_proj.bias', 'vision_tower.encoder.layer.N.attention.k_proj.bias',
      'vision_tower.encoder.layer.N.attention.v_proj.bias', 'language_model.lm_head.weight'];
    assert.deepEqual(pattern(sh.keys()), new Set([...pattern(shapes(fixture('tiny-internvl')).keys()), ...extra]));
    assert.deepEqual(sh.get('language_model.model.embed_tokens.weight'), [151674, 896]);
    assert.deepEqual(sh.get('language_model.lm_head.weight'), [151674, 896]);
    assert.deepEqual(sh.get('language_model.model.layers.1.self_attn.k_proj.weight'), [128, 896]);
    assert.deepEqual(sh.get('multi_modal_projector.linear_1.weight'), [896, 4096]);
    assert.deepEqual(sh.get('vision_tower.embeddings.position_embeddings'), [1, 1025, 1024]);
    assert.deepEqual(sh.get('vision_tower.encoder.layer.23.mlp.fc1.weight'), [4096, 1024]);
    assert.equal(sh.has('language_model.model.layers.2.input_layernorm.weight'), false);
    assert.equal(res.params, [...sh.values()].reduce((s, d) => s + d.reduce((a, b) => a * b, 1), 0));

    const tok = loadTok(dir);
    const prompt = render(dir, imageTurn);
    assert.equal(prompt, '<|im_start|>user\n<IMG_CONTEXT>\nWhat color is the circle?<|im_end|>\n<|im_start|>assistant\n');
    const expanded = prompt.replace('<IMG_CONTEXT>', '<img>' + '<IMG_CONTEXT>'.repeat(3) + '</img>');
    const ids = tok.encode(expanded).ids;
    assert.equal(ids[0], 151644);
    assert.deepEqual(ids.slice(ids.indexOf(151665), ids.indexOf(151665) + 5), [151665, 151667, 151667, 151667, 151666]);
    assert.ok(ids.includes(151645));
    assert.equal(tok.encode('<|endoftext|>').ids[0], 151643);
    assert.equal(tok.decode(ids), expanded);
    assert.equal(typeof tok.decode([151673, 100000, 151000]), 'string'); // every id decodes
    assert.equal(readJson(dir, 'generation_config.json').eos_token_id, 151645);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('shape tables match the published sizes and the fixtures’ naming', () => {
  const count = (n: string) => { const s = resolveShape(n); return s.tensors(s.lm).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0); };
  assert.equal(Math.round(count('internvl2_5-1b') / 1e6), 938); // OpenGVLab/InternVL2_5-1B: 938 M
  assert.equal(Math.round(count('internvl2_5-4b') / 1e7), 371); // 3.71 B
  assert.equal(Math.round(count('llava-1.5-7b') / 1e7), 706); // llava-hf/llava-1.5-7b-hf: 7.06 B
  assert.equal(Math.round(count('qwen2-vl-2b') / 1e7), 221); // Qwen/Qwen2-VL-2B-Instruct: 2.21 B
  const names = (n: string) => { const s = resolveShape(n, 1); return s.tensors(s.lm).map((t) => t.name); };
  assert.deepEqual(pattern(names('qwen2-vl-2b')), pattern([...shapes(fixture('tiny-qwen2_vl')).keys()].filter((n) => n !== 'lm_head.weight')));
  assert.deepEqual(pattern(names('llava-1.5-7b')), pattern(shapes(fixture('tiny-llava')).keys()));
  assert.deepEqual(resolveShape('qwen2-vl-2b').config('bfloat16', resolveShape('qwen2-vl-2b').lm).vision_start_token_id, 151652);
});

test('qwen2-vl-2b and llava-1.5-7b tokenizers put the special tokens at the real ids', () => {
  const q = resolveShape('qwen2-vl-2b');
  const qt = buildTokenizer(q.tokenizer, q.lm.vocab);
  const qtok = new Tokenizer(qt.tokenizer, qt.config);
  const qPrompt = new Template(q.chatTemplate).render({ messages: imageTurn, add_generation_prompt: true });
  assert.ok(qPrompt.startsWith('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n'));
  const qids = qtok.encode(qPrompt).ids;
  assert.deepEqual(qids.slice(qids.indexOf(151652), qids.indexOf(151652) + 3), [151652, 151655, 151653]);
  const l = resolveShape('llava-1.5-7b');
  const lt = buildTokenizer(l.tokenizer, l.lm.vocab);
  const ltok = new Tokenizer(lt.tokenizer, lt.config);
  const lPrompt = new Template(l.chatTemplate).render({ messages: imageTurn, add_generation_prompt: true });
  assert.equal(lPrompt, 'USER: <image>\nWhat color is the circle? ASSISTANT:');
  const lids = ltok.encode(lPrompt).ids;
  assert.equal(lids[0], 1); // <s> added like the Llama tokenizer
  assert.ok(lids.includes(32000));
  assert.equal(ltok.encode('<pad>', { add_special_tokens: false }).ids[0], 32001);
});

/** Runs the CLI with its stdout text captured (process.stdout itself belongs to the test runner). */
async function cli(args: string[]): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const code = await makeCheckpointCommand(args, (t) => (stdout += t));
  return { code, stdout };
}

test('make-checkpoint CLI: help, unknown --like, non-empty --out', async () => {
  const help = await cli(['--help']);
  assert.equal(help.code, 0);
  const printed = help.stdout;
  for (const n of LIKE_NAMES) assert.ok(printed.includes(n));
  await assert.rejects(makeCheckpointCommand(['--like', 'gpt-5', '--out', path.join(os.tmpdir(), 'lightvlm-never-written')]),
    (e: unknown) => e instanceof LightVLMError && e.message.includes('internvl2_5-1b') && e.message.includes('gpt-5'));
  const dir = tmp();
  try {
    fs.writeFileSync(path.join(dir, 'keep.txt'), 'x');
    await assert.rejects(makeCheckpointCommand(['--like', 'tiny-llava', '--out', dir, '--quiet']),
      (e: unknown) => e instanceof LightVLMError && e.message.includes('--force'));
    const made = await cli(['--like', 'tiny-llava', '--out', dir, '--quiet', '--force', '--dtype', 'fp32', '--layers', '1']);
    assert.deepEqual(made, { code: 0, stdout: `${dir}\n` });
    assert.equal(fs.readFileSync(path.join(dir, 'keep.txt'), 'utf8'), 'x');
    assert.equal(readJson(dir, 'config.json').text_config.num_hidden_layers, 1);
    assert.equal(openCheckpoint(dir).entries.get('language_model.lm_head.weight')!.dtype, 'F32');
    await assert.rejects(makeCheckpointCommand(['--like', 'tiny-llava', '--out', dir, '--dtype', 'fp16', '--force']), LightVLMError);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
