// Vision tower and projector weights are checked against config.json's vision sizes at load, for
// the three families, on header-only stores built from make-checkpoint's shape tables (no weight
// bytes are read): every published shape loads; a config that disagrees with the weights is
// E_CONFIG naming the tensor and both shapes; a missing tensor is E_CHECKPOINT naming it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SafetensorsStore, type TensorEntry } from '../../src/checkpoint/safetensors.js';
import { LIKE_NAMES, modelShape } from '../../src/checkpoint/shapes.js';
import { LightVLMError } from '../../src/errors.js';
import type { Json } from '../../src/models/config.js';
import { createInternVL } from '../../src/models/internvl.js';
import { createLlava } from '../../src/models/llava.js';
import { createQwen2VL } from '../../src/models/qwen2vl.js';

const FACTORY = { llava: createLlava, internvl: createInternVL, qwen2_vl: createQwen2VL } as const;

/** config.json, processor settings and a header-only store as make-checkpoint would write them (2 LM layers). */
function model(like: string) {
  const s = modelShape(like);
  const lm = { ...s.lm, layers: 2 };
  const entries = new Map<string, TensorEntry>();
  for (const t of s.tensors(lm)) entries.set(t.name, { dtype: 'F32', shape: t.shape, file: '', begin: 0, end: 0 });
  return { family: s.family, cfg: structuredClone(s.config('float32', lm)) as Json, processor: structuredClone(s.processor) as Json, entries };
}

function load(m: ReturnType<typeof model>): void {
  FACTORY[m.family](m.cfg, new SafetensorsStore(m.entries), m.processor);
}

function refused(m: ReturnType<typeof model>, code: string, re: RegExp, what: string): void {
  assert.throws(() => load(m), (e: unknown) => {
    assert.ok(e instanceof LightVLMError, `${what}: raw error ${(e as Error)?.stack}`);
    assert.equal(e.code, code, `${what}: ${e.message}`);
    assert.match(e.message, re, what);
    return true;
  });
}

test('every make-checkpoint shape passes the loader checks (tables and checks agree)', () => {
  for (const like of LIKE_NAMES) load(model(like));
});

test('LLaVA / CLIP: vision sizes in config.json that the weights do not have are refused, naming the tensor', () => {
  let m = model('tiny-llava');
  m.cfg.vision_config.intermediate_size = 96;
  refused(m, 'E_CONFIG', /vision_tower\.encoder\.layers\.0\.mlp\.fc1\.weight has shape \[192, 48\] but config\.json implies \[96, 48\]/, 'intermediate_size');
  m = model('tiny-llava');
  m.cfg.vision_config.hidden_size = 64;
  refused(m, 'E_CONFIG', /vision_tower\.embeddings\.class_embedding has shape \[48\] but config\.json implies \[64\]/, 'hidden_size');
  m = model('tiny-llava');
  m.cfg.vision_config.image_size = 84; // 6x6 patches + [CLS]
  refused(m, 'E_CONFIG', /position_embedding\.weight has shape \[17, 48\] but config\.json implies \[37, 48\]/, 'image_size');
  m = model('tiny-llava');
  m.cfg.vision_config.num_hidden_layers = 3;
  refused(m, 'E_CHECKPOINT', /vision_tower\.encoder\.layers\.2\.layer_norm1\.weight is missing/, 'more layers in config');
  m = model('tiny-llava');
  m.cfg.vision_config.num_hidden_layers = 1;
  m.cfg.vision_feature_layer = -1;
  refused(m, 'E_CONFIG', /vision layers up to 1 but config\.json vision_config\.num_hidden_layers is 1/, 'fewer layers in config');
  m = model('tiny-llava');
  m.cfg.text_config.hidden_size = 96;
  m.cfg.text_config.head_dim = 24;
  refused(m, 'E_CONFIG', /has shape/, 'text hidden');
  m = model('tiny-llava');
  m.entries.delete('multi_modal_projector.linear_2.bias');
  refused(m, 'E_CHECKPOINT', /multi_modal_projector\.linear_2\.bias is missing.*expected shape \[64\]/, 'projector bias');
  m = model('tiny-llava');
  m.cfg.multimodal_projector_bias = false;
  refused(m, 'E_CONFIG', /multi_modal_projector\.linear_1\.bias is in the checkpoint but config\.json \(multimodal_projector_bias\)/, 'bias switch');
  m = model('tiny-llava');
  m.cfg.vision_feature_layer = 5;
  refused(m, 'E_CONFIG', /vision_feature_layer 5 is out of range/, 'feature layer');
  for (const [k, v] of [['hidden_size', 'x'], ['patch_size', 0], ['num_attention_heads', 5], ['layer_norm_eps', -1]] as const) {
    m = model('tiny-llava');
    m.cfg.vision_config[k] = v;
    refused(m, 'E_CONFIG', new RegExp(`vision_config\\.(${k}|hidden_size)`), `vision_config.${k} = ${v}`);
  }
});

test('InternVL / InternViT: tower, pixel-shuffle projector and bias switches are checked', () => {
  let m = model('internvl2_5-1b');
  m.cfg.downsample_ratio = 0.25; // 4x4 shuffle: projector input 16·1024
  m.cfg.image_seq_length = 64;
  m.processor.image_seq_length = 64;
  refused(m, 'E_CONFIG', /multi_modal_projector\.layer_norm\.weight has shape \[4096\] but config\.json implies \[16384\]/, 'downsample_ratio');
  m = model('internvl2_5-1b');
  m.cfg.vision_config.intermediate_size = 4000;
  refused(m, 'E_CONFIG', /vision_tower\.encoder\.layer\.0\.mlp\.fc1\.weight has shape \[4096, 1024\] but config\.json implies \[4000, 1024\]/, 'intermediate');
  m = model('internvl2_5-1b');
  m.cfg.vision_config.attention_bias = false;
  refused(m, 'E_CONFIG', /attention\.q_proj\.bias is in the checkpoint but config\.json \(vision_config\.attention_bias\)/, 'attention_bias');
  m = model('internvl2_5-1b');
  m.entries.delete('vision_tower.encoder.layer.7.lambda_2');
  refused(m, 'E_CHECKPOINT', /vision_tower\.encoder\.layer\.7\.lambda_2 is missing/, 'layer scale');
  m = model('internvl2_5-1b');
  m.entries.set('vision_tower.embeddings.cls_token', { ...m.entries.get('vision_tower.embeddings.cls_token')!, shape: [1024] });
  refused(m, 'E_CONFIG', /cls_token has shape \[1024\] but config\.json implies \[1, 1, 1024\]/, 'cls shape');
  m = model('internvl2_5-1b');
  m.cfg.vision_config.use_qk_norm = true;
  refused(m, 'E_CHECKPOINT', /attention\.q_norm\.weight is missing/, 'qk norm');
});

test('Qwen2-VL: blocks, patch embedding and merger are checked against embed_dim, mlp_ratio, merge and patch sizes', () => {
  let m = model('qwen2-vl-2b');
  m.cfg.vision_config.mlp_ratio = 2;
  refused(m, 'E_CONFIG', /visual\.blocks\.0\.mlp\.fc1\.weight has shape \[5120, 1280\] but config\.json implies \[2560, 1280\]/, 'mlp_ratio');
  m = model('qwen2-vl-2b');
  m.cfg.vision_config.temporal_patch_size = 1;
  m.processor.image_processor.temporal_patch_size = 1;
  refused(m, 'E_CONFIG', /patch_embed\.proj\.weight has shape \[1280, 3, 2, 14, 14\] but config\.json implies \[1280, 3, 1, 14, 14\]/, 'temporal patch');
  m = model('qwen2-vl-2b');
  m.cfg.vision_config.depth = 31;
  refused(m, 'E_CONFIG', /vision layers up to 31 but config\.json vision_config\.depth is 31/, 'depth');
  m = model('qwen2-vl-2b');
  m.entries.delete('visual.merger.mlp.2.bias');
  refused(m, 'E_CHECKPOINT', /visual\.merger\.mlp\.2\.bias is missing/, 'merger bias');
  m = model('qwen2-vl-2b');
  m.cfg.vision_config.embed_dim = 'big';
  refused(m, 'E_CONFIG', /vision_config\.embed_dim is "big"/, 'embed_dim type');
  // a pre-flattened patch embedding [E, C·tp·ps·ps] is the same weights and loads
  m = model('qwen2-vl-2b');
  m.entries.set('visual.patch_embed.proj.weight', { ...m.entries.get('visual.patch_embed.proj.weight')!, shape: [1280, 3 * 2 * 14 * 14] });
  load(m);
});
