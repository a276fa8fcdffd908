// Shape tables for `make-checkpoint`: the architecture numbers of published VLM checkpoints and the
// tensor names/shapes transformers (5.x, native classes) writes for them.
//
// Sources (checked while writing this file):
// - InternVL2.5 -hf layout: transformers `models/internvl/convert_internvl_weights_to_hf.py`
//   (key renames vision_model→vision_tower, layers→layer, qkv split into q/k/v_proj, ls1/ls2→lambda_1/2,
//   mlp1.{0,1,3}→multi_modal_projector.{layer_norm,linear_1,linear_2}; image_token_id 151667 for Qwen2
//   LMs; tokenizer = Qwen2.5-VL tokenizer + <img>,</img>,<IMG_CONTEXT>,<quad>,</quad>,<ref>,</ref>,<box>,</box>
//   = ids 151665..151673 → vocab 151674; image processor 448x448, ImageNet mean/std).
//   InternViT-300M-448px (model dump of InternVL3-1B, same ViT): hidden 1024, 24 layers, 16 heads,
//   MLP 4096, qkv bias, LayerNorm eps 1e-6, patch 14; projector LayerNorm(4096)→Linear(4096,H)→GELU→Linear(H,H).
//   Qwen2.5-0.5B (its config.json): hidden 896, 24 layers, 14 heads, 2 kv heads, MLP 4864, theta 1e6, tied.
//   Qwen2.5-3B (InternVL2_5-4B llm_config as quoted in public tests): hidden 2048, 36 layers, 16 heads, 2 kv, MLP 11008.
//   InternVL2_5 original config: downsample_ratio 0.5, max_dynamic_patch 12, image_seq_length 256 (=(448/14*0.5)^2).
//   lm_head: InternVL keeps a separate LM head although Qwen2.5-0.5B/3B alone are tied: the published sizes
//   (InternVL2-1B / 2.5-1B "0.9B" = 938 M, 2.5-4B "3.7B") only add up with an untied [vocab, H] head (tied
//   would be 802 M / 3.4 B), and InternVL3-1B's config (same ViT + Qwen2.5-0.5B) has tie_word_embeddings
//   false. So these write `language_model.lm_head.weight` (fixtures/tiny-internvl is the tied variant).
// - Qwen2-VL-2B-Instruct (config.json, model dumps): hidden 1536, 28 layers, 12 heads, 2 kv heads, MLP 8960,
//   vocab 151936, theta 1e6, mrope_section [16,24,24], tied embeddings (2.21 B params, as published); ViT depth 32, embed 1280, 16 heads,
//   mlp_ratio 4, patch 14, temporal 2, merge 2, merger Linear(5120,5120)→GELU→Linear(5120,1536);
//   tokens <|vision_start|> 151652, <|vision_end|> 151653, <|image_pad|> 151655, <|video_pad|> 151656;
//   processor min_pixels 3136, max_pixels 12845056.
// - llava-1.5-7b-hf (config.json): CLIP ViT-L/14-336 (1024, 24 layers, 16 heads, MLP 4096, proj dim 768),
//   Vicuna-7B / Llama-2 LM (4096, 32 layers, 32 heads = 32 kv heads, MLP 11008, theta 1e4, rms 1e-5,
//   max pos 4096), vocab 32064, <image> 32000, <pad> 32001, image_seq_length 576, feature layer -2.
import { LightVLMError } from '../errors.js';

export const LIKE_NAMES = ['tiny-llava', 'internvl2_5-1b', 'internvl2_5-4b', 'llava-1.5-7b', 'qwen2-vl-2b'] as const;
export type LikeName = (typeof LIKE_NAMES)[number];
export type Family = 'llava' | 'internvl' | 'qwen2_vl';

/** How a tensor is filled: normal(0, std), or a constant. */
export type Init = { kind: 'normal'; std: number } | { kind: 'const'; value: number };
export interface TensorSpec {
  name: string;
  shape: number[];
  init: Init;
}

export interface LMShape {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  ropeTheta: number;
  rmsEps: number;
  maxPos: number;
  qkvBias: boolean;
  tieEmbeddings: boolean;
  headDim?: number; // config head_dim when it is not hidden / heads
}

export interface SpecialToken {
  content: string;
  id: number;
  special?: boolean; // default true
}

export interface TokenizerShape {
  specials: SpecialToken[];
  byteOffset: number; // id of the first of the 256 byte tokens
  bos: string | null;
  eos: string;
  pad: string;
  unk?: string;
  addBos: boolean; // post-processor prepends `bos` (Llama tokenizers)
  extraConfig: Record<string, unknown>; // family keys of tokenizer_config.json
  modelMaxLength: number;
}

export interface ModelShape {
  like: LikeName;
  family: Family;
  hfRepo: string;
  lm: LMShape;
  config: (dtype: string, lm: LMShape) => Record<string, unknown>;
  tensors: (lm: LMShape) => TensorSpec[];
  processor: Record<string, unknown>;
  generation: Record<string, unknown>;
  tokenizer: TokenizerShape;
  chatTemplate: string;
}

const W = (std = 0.02): Init => ({ kind: 'normal', std });
const ONE: Init = { kind: 'const', value: 1 };
const ZERO: Init = { kind: 'const', value: 0 };
const t = (name: string, shape: number[], init: Init): TensorSpec => ({ name, shape, init });

/** Linear layer: weight [out, in] (+ bias [out]). */
function linear(out: TensorSpec[], name: string, o: number, i: number, bias: boolean): void {
  out.push(t(`${name}.weight`, [o, i], W()));
  if (bias) out.push(t(`${name}.bias`, [o], ZERO));
}
function layerNorm(out: TensorSpec[], name: string, d: number, bias = true): void {
  out.push(t(`${name}.weight`, [d], ONE));
  if (bias) out.push(t(`${name}.bias`, [d], ZERO));
}

/**
 * Llama/Qwen2 decoder stack under `prefix` (`language_model.model` or `model`), plus the LM head.
 * Also the loader's reference for what a checkpoint must hold (checkpoint/validate.ts).
 */
export function lmTensors(lm: LMShape, prefix: string, headName: string): TensorSpec[] {
  const out: TensorSpec[] = [];
  const hd = lm.headDim ?? lm.hidden / lm.heads;
  out.push(t(`${prefix}.embed_tokens.weight`, [lm.vocab, lm.hidden], W()));
  for (let l = 0; l < lm.layers; l++) {
    const p = `${prefix}.layers.${l}`;
    layerNorm(out, `${p}.input_layernorm`, lm.hidden, false);
    layerNorm(out, `${p}.post_attention_layernorm`, lm.hidden, false);
    linear(out, `${p}.mlp.gate_proj`, lm.intermediate, lm.hidden, false);
    linear(out, `${p}.mlp.up_proj`, lm.intermediate, lm.hidden, false);
    linear(out, `${p}.mlp.down_proj`, lm.hidden, lm.intermediate, false);
    linear(out, `${p}.self_attn.q_proj`, lm.heads * hd, lm.hidden, lm.qkvBias);
    linear(out, `${p}.self_attn.k_proj`, lm.kvHeads * hd, lm.hidden, lm.qkvBias);
    linear(out, `${p}.self_attn.v_proj`, lm.kvHeads * hd, lm.hidden, lm.qkvBias);
    linear(out, `${p}.self_attn.o_proj`, lm.hidden, lm.heads * hd, false);
  }
  layerNorm(out, `${prefix}.norm`, lm.hidden, false);
  if (!lm.tieEmbeddings) out.push(t(headName, [lm.vocab, lm.hidden], W()));
  return out;
}

function layerTypes(n: number): string[] {
  return Array.from({ length: n }, () => 'full_attention');
}

// ---------------------------------------------------------------- LLaVA (CLIP ViT + Llama)
interface ClipShape { hidden: number; layers: number; heads: number; intermediate: number; image: number; patch: number; projDim: number }

function llava(like: LikeName, hfRepo: string, lm: LMShape, v: ClipShape, imageTokenId: number, tok: TokenizerShape,
  chatTemplate: string, padId: number | null, bosId: number | null, eosId: number): ModelShape {
  const nPos = (v.image / v.patch) ** 2 + 1;
  return {
    like, family: 'llava', hfRepo, lm, tokenizer: tok, chatTemplate,
    config: (dtype, m) => ({
      architectures: ['LlavaForConditionalGeneration'], dtype, image_seq_length: nPos - 1,
      image_token_index: imageTokenId, model_type: 'llava', multimodal_projector_bias: true, projector_hidden_act: 'gelu',
      text_config: {
        attention_bias: false, attention_dropout: 0.0, bos_token_id: bosId, eos_token_id: eosId, head_dim: m.hidden / m.heads,
        hidden_act: 'silu', hidden_size: m.hidden, initializer_range: 0.02, intermediate_size: m.intermediate,
        max_position_embeddings: m.maxPos, mlp_bias: false, model_type: 'llama', num_attention_heads: m.heads,
        num_hidden_layers: m.layers, num_key_value_heads: m.kvHeads, pad_token_id: padId, pretraining_tp: 1,
        rms_norm_eps: m.rmsEps, rope_parameters: { rope_theta: m.ropeTheta, rope_type: 'default' },
        tie_word_embeddings: m.tieEmbeddings, use_cache: true, vocab_size: m.vocab,
      },
      tie_word_embeddings: m.tieEmbeddings, transformers_version: '5.17.0',
      vision_config: {
        attention_dropout: 0.0, hidden_act: 'quick_gelu', hidden_size: v.hidden, image_size: v.image, initializer_factor: 1.0,
        initializer_range: 0.02, intermediate_size: v.intermediate, layer_norm_eps: 1e-5, model_type: 'clip_vision_model',
        num_attention_heads: v.heads, num_channels: 3, num_hidden_layers: v.layers, patch_size: v.patch, projection_dim: v.projDim,
      },
      vision_feature_layer: -2, vision_feature_select_strategy: 'default',
    }),
    tensors: (m) => {
      const out = lmTensors(m, 'language_model.model', 'language_model.lm_head.weight');
      linear(out, 'multi_modal_projector.linear_1', m.hidden, v.hidden, true);
      linear(out, 'multi_modal_projector.linear_2', m.hidden, m.hidden, true);
      out.push(t('vision_tower.embeddings.class_embedding', [v.hidden], W()));
      out.push(t('vision_tower.embeddings.patch_embedding.weight', [v.hidden, 3, v.patch, v.patch], W()));
      out.push(t('vision_tower.embeddings.position_embedding.weight', [nPos, v.hidden], W()));
      for (let l = 0; l < v.layers; l++) {
        const p = `vision_tower.encoder.layers.${l}`;
        layerNorm(out, `${p}.layer_norm1`, v.hidden);
        layerNorm(out, `${p}.layer_norm2`, v.hidden);
        linear(out, `${p}.mlp.fc1`, v.intermediate, v.hidden, true);
        linear(out, `${p}.mlp.fc2`, v.hidden, v.intermediate, true);
        for (const n of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) linear(out, `${p}.self_attn.${n}`, v.hidden, v.hidden, true);
      }
      layerNorm(out, 'vision_tower.post_layernorm', v.hidden);
      layerNorm(out, 'vision_tower.pre_layrnorm', v.hidden);
      return out;
    },
    processor: {
      image_processor: {
        crop_size: { height: v.image, width: v.image }, do_center_crop: true, do_convert_rgb: true, do_normalize: true,
        do_rescale: true, do_resize: true, image_mean: CLIP_MEAN, image_processor_type: 'CLIPImageProcessor', image_std: CLIP_STD,
        resample: 3, rescale_factor: 1 / 255, size: { shortest_edge: v.image },
      },
      image_token: '<image>', num_additional_image_tokens: 1, patch_size: v.patch, processor_class: 'LlavaProcessor',
      vision_feature_select_strategy: 'default',
    },
    generation: { _from_model_config: true, bos_token_id: bosId ?? undefined, eos_token_id: eosId, pad_token_id: padId ?? undefined, use_cache: true },
  };
}

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

// The family chat templates. ChatML ones follow fixtures/*/chat_template.jinja; LLaVA-1.5 and Qwen2-VL
// follow the published templates (USER:/ASSISTANT: turns; Qwen2-VL default system message).
const chatml = (image: string) =>
  "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}" +
  "{% else %}{% for c in message['content'] %}{% if c['type'] == 'image' %}" + image +
  "{% elif c['type'] == 'video' %}<video>\n{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n" +
  "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

const LLAVA15_TEMPLATE =
  "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}" +
  "{% if message['content'] is string %}{{ message['content'] + ' ' }}{% else %}" +
  "{% for c in message['content'] %}{% if c['type'] == 'image' %}{{ '<image>\n' }}{% endif %}{% endfor %}" +
  "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] + ' ' }}{% endif %}{% endfor %}{% endif %}" +
  "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

const QWEN2VL_TEMPLATE =
  "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}" +
  "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}" +
  "{% for c in message['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>" +
  "{% elif c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n" +
  "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

// Qwen2 / Qwen2.5 special tokens, ids from the published tokenizers (151643..151664).
const QWEN_SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|object_ref_start|>', '<|object_ref_end|>', '<|box_start|>',
  '<|box_end|>', '<|quad_start|>', '<|quad_end|>', '<|vision_start|>', '<|vision_end|>', '<|vision_pad|>', '<|image_pad|>', '<|video_pad|>'];
const QWEN25_EXTRA = ['<tool_call>', '</tool_call>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|fim_pad|>', '<|repo_name|>', '<|file_sep|>'];
const INTERNVL_EXTRA = ['<img>', '</img>', '<IMG_CONTEXT>', '<quad>', '</quad>', '<ref>', '</ref>', '<box>', '</box>'];

function seqSpecials(first: number, names: string[], special = (_: string) => true): SpecialToken[] {
  return names.map((content, i) => ({ content, id: first + i, special: special(content) }));
}

// ---------------------------------------------------------------- InternVL (InternViT + pixel shuffle + Qwen2)
function internvl(like: LikeName, hfRepo: string, lm: LMShape): ModelShape {
  const v = { hidden: 1024, layers: 24, heads: 16, intermediate: 4096, image: 448, patch: 14 };
  const nPatch = (v.image / v.patch) ** 2;
  const seqLen = nPatch / 4; // downsample_ratio 0.5 → 256
  const specials = [
    ...seqSpecials(151643, QWEN_SPECIALS),
    ...seqSpecials(151657, QWEN25_EXTRA, (s) => !s.includes('tool_call') && !s.startsWith('<|fim') && s !== '<|repo_name|>' && s !== '<|file_sep|>'),
    ...seqSpecials(151665, INTERNVL_EXTRA),
  ];
  return {
    like, family: 'internvl', hfRepo, lm, chatTemplate: chatml('<IMG_CONTEXT>\n'),
    tokenizer: {
      specials, byteOffset: 0, bos: null, eos: '<|im_end|>', pad: '<|endoftext|>', addBos: false, modelMaxLength: 8192,
      extraConfig: { context_image_token: '<IMG_CONTEXT>', end_image_token: '</img>', start_image_token: '<img>', video_token: '<video>', processor_class: 'InternVLProcessor' },
    },
    config: (dtype, m) => ({
      architectures: ['InternVLForConditionalGeneration'], downsample_ratio: 0.5, dtype, image_seq_length: seqLen,
      image_token_id: 151667, model_type: 'internvl', projector_hidden_act: 'gelu',
      text_config: {
        attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645, hidden_act: 'silu', hidden_size: m.hidden,
        initializer_range: 0.02, intermediate_size: m.intermediate, layer_types: layerTypes(m.layers), max_position_embeddings: m.maxPos,
        max_window_layers: m.layers, model_type: 'qwen2', num_attention_heads: m.heads, num_hidden_layers: m.layers,
        num_key_value_heads: m.kvHeads, pad_token_id: 151643, rms_norm_eps: m.rmsEps,
        rope_parameters: { rope_theta: m.ropeTheta, rope_type: 'default' }, sliding_window: null,
        tie_word_embeddings: m.tieEmbeddings, use_cache: true, use_sliding_window: false, vocab_size: m.vocab,
      },
      tie_word_embeddings: m.tieEmbeddings, transformers_version: '5.17.0',
      vision_config: {
        attention_bias: true, attention_dropout: 0.0, hidden_act: 'gelu', hidden_dropout_prob: 0.0, hidden_size: v.hidden,
        image_size: [v.image, v.image], initializer_range: 1e-10, intermediate_size: v.intermediate, layer_norm_eps: 1e-6,
        layer_scale_init_value: 0.1, model_type: 'internvl_vision', norm_type: 'layer_norm', num_attention_heads: v.heads,
        num_channels: 3, num_hidden_layers: v.layers, patch_size: [v.patch, v.patch], projection_dropout: 0.0,
        use_absolute_position_embeddings: true, use_mask_token: false, use_mean_pooling: true, use_qk_norm: false,
      },
      vision_feature_layer: -1, vision_feature_select_strategy: 'default',
    }),
    tensors: (m) => {
      const out = lmTensors(m, 'language_model.model', 'language_model.lm_head.weight');
      const ps = v.hidden * 4; // pixel shuffle with ratio 0.5 stacks 2x2 patches
      layerNorm(out, 'multi_modal_projector.layer_norm', ps);
      linear(out, 'multi_modal_projector.linear_1', m.hidden, ps, true);
      linear(out, 'multi_modal_projector.linear_2', m.hidden, m.hidden, true);
      out.push(t('vision_tower.embeddings.cls_token', [1, 1, v.hidden], W()));
      out.push(t('vision_tower.embeddings.patch_embeddings.projection.weight', [v.hidden, 3, v.patch, v.patch], W()));
      out.push(t('vision_tower.embeddings.patch_embeddings.projection.bias', [v.hidden], ZERO));
      out.push(t('vision_tower.embeddings.position_embeddings', [1, nPatch + 1, v.hidden], W()));
      for (let l = 0; l < v.layers; l++) {
        const p = `vision_tower.encoder.layer.${l}`;
        for (const n of ['q_proj', 'k_proj', 'v_proj', 'projection_layer']) linear(out, `${p}.attention.${n}`, v.hidden, v.hidden, true);
        out.push(t(`${p}.lambda_1`, [v.hidden], { kind: 'const', value: 0.1 }));
        out.push(t(`${p}.lambda_2`, [v.hidden], { kind: 'const', value: 0.1 }));
        layerNorm(out, `${p}.layernorm_after`, v.hidden);
        layerNorm(out, `${p}.layernorm_before`, v.hidden);
        linear(out, `${p}.mlp.fc1`, v.intermediate, v.hidden, true);
        linear(out, `${p}.mlp.fc2`, v.hidden, v.intermediate, true);
      }
      return out;
    },
    processor: {
      image_processor: {
        crop_to_patches: true, do_convert_rgb: true, do_normalize: true, do_rescale: true, do_resize: true,
        image_mean: [0.485, 0.456, 0.406], image_processor_type: 'GotOcr2ImageProcessor', image_std: [0.229, 0.224, 0.225],
        max_patches: 12, min_patches: 1, resample: 3, rescale_factor: 1 / 255, size: { height: v.image, width: v.image },
      },
      image_seq_length: seqLen, processor_class: 'InternVLProcessor',
    },
    generation: { _from_model_config: true, bos_token_id: 151643, eos_token_id: 151645, pad_token_id: 151643, use_cache: true },
  };
}

// ---------------------------------------------------------------- Qwen2-VL
function qwen2vl(): ModelShape {
  const v = { embed: 1280, depth: 32, heads: 16, mlpRatio: 4, patch: 14, temporal: 2, merge: 2 };
  const lm: LMShape = { hidden: 1536, layers: 28, heads: 12, kvHeads: 2, intermediate: 8960, vocab: 151936, ropeTheta: 1e6,
    rmsEps: 1e-6, maxPos: 32768, qkvBias: true, tieEmbeddings: true };
  return {
    like: 'qwen2-vl-2b', family: 'qwen2_vl', hfRepo: 'Qwen/Qwen2-VL-2B-Instruct', lm, chatTemplate: QWEN2VL_TEMPLATE,
    tokenizer: { specials: seqSpecials(151643, QWEN_SPECIALS), byteOffset: 0, bos: null, eos: '<|im_end|>', pad: '<|endoftext|>',
      addBos: false, modelMaxLength: 32768, extraConfig: { processor_class: 'Qwen2VLProcessor' } },
    config: (dtype, m) => ({
      architectures: ['Qwen2VLForConditionalGeneration'], dtype, image_token_id: 151655, model_type: 'qwen2_vl',
      text_config: {
        attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645, hidden_act: 'silu', hidden_size: m.hidden,
        initializer_range: 0.02, intermediate_size: m.intermediate, layer_types: layerTypes(m.layers), max_position_embeddings: m.maxPos,
        max_window_layers: m.layers, model_type: 'qwen2_vl_text', num_attention_heads: m.heads, num_hidden_layers: m.layers,
        num_key_value_heads: m.kvHeads, pad_token_id: 151643, rms_norm_eps: m.rmsEps,
        rope_parameters: { mrope_section: [16, 24, 24], rope_theta: m.ropeTheta, rope_type: 'default', type: 'mrope' },
        sliding_window: null, tie_word_embeddings: m.tieEmbeddings, use_cache: true, use_sliding_window: false, vocab_size: m.vocab,
      },
      tie_word_embeddings: m.tieEmbeddings, transformers_version: '5.17.0', video_token_id: 151656,
      vision_config: {
        depth: v.depth, embed_dim: v.embed, hidden_act: 'quick_gelu', hidden_size: m.hidden, in_channels: 3, initializer_range: 0.02,
        mlp_ratio: v.mlpRatio, model_type: 'qwen2_vl_vision', num_heads: v.heads, patch_size: v.patch,
        rope_parameters: { rope_theta: 10000.0, rope_type: 'axial' }, spatial_merge_size: v.merge, temporal_patch_size: v.temporal,
      },
      vision_end_token_id: 151653, vision_start_token_id: 151652,
    }),
    tensors: (m) => {
      const out = lmTensors(m, 'model', 'lm_head.weight');
      const mlp = v.embed * v.mlpRatio;
      const merged = v.embed * v.merge * v.merge;
      for (let l = 0; l < v.depth; l++) {
        const p = `visual.blocks.${l}`;
        linear(out, `${p}.attn.proj`, v.embed, v.embed, true);
        linear(out, `${p}.attn.qkv`, 3 * v.embed, v.embed, true);
        linear(out, `${p}.mlp.fc1`, mlp, v.embed, true);
        linear(out, `${p}.mlp.fc2`, v.embed, mlp, true);
        layerNorm(out, `${p}.norm1`, v.embed);
        layerNorm(out, `${p}.norm2`, v.embed);
      }
      layerNorm(out, 'visual.merger.ln_q', v.embed);
      linear(out, 'visual.merger.mlp.0', merged, merged, true);
      linear(out, 'visual.merger.mlp.2', m.hidden, merged, true);
      out.push(t('visual.patch_embed.proj.weight', [v.embed, 3, v.temporal, v.patch, v.patch], W()));
      return out;
    },
    processor: {
      image_processor: {
        do_convert_rgb: true, do_normalize: true, do_rescale: true, do_resize: true, image_mean: CLIP_MEAN,
        image_processor_type: 'Qwen2VLImageProcessor', image_std: CLIP_STD, merge_size: v.merge, patch_size: v.patch, resample: 3,
        rescale_factor: 1 / 255, size: { longest_edge: 12845056, shortest_edge: 3136 }, temporal_patch_size: v.temporal,
      },
      processor_class: 'Qwen2VLProcessor',
    },
    generation: { bos_token_id: 151643, eos_token_id: [151645, 151643], pad_token_id: 151643, use_cache: true },
  };
}

const QWEN25 = { ropeTheta: 1e6, rmsEps: 1e-6, maxPos: 32768, qkvBias: true, tieEmbeddings: false, vocab: 151674 };

export function modelShape(like: string): ModelShape {
  switch (like) {
    case 'tiny-llava': // the numbers of fixtures/tiny-llava
      return llava('tiny-llava', 'fixtures/tiny-llava',
        { hidden: 64, layers: 3, heads: 4, kvHeads: 2, intermediate: 160, vocab: 400, ropeTheta: 10000, rmsEps: 1e-5, maxPos: 2048, qkvBias: false, tieEmbeddings: false },
        { hidden: 48, layers: 2, heads: 4, intermediate: 192, image: 56, patch: 14, projDim: 48 }, 3,
        { specials: seqSpecials(0, ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<image>']), byteOffset: 4, bos: null, eos: '<|im_end|>',
          pad: '<|endoftext|>', addBos: false, modelMaxLength: 2048, extraConfig: { processor_class: 'LlavaProcessor' } },
        chatml('<image>\n'), 0, null, 2);
    case 'internvl2_5-1b':
      return internvl('internvl2_5-1b', 'OpenGVLab/InternVL2_5-1B-MPO-hf',
        { hidden: 896, layers: 24, heads: 14, kvHeads: 2, intermediate: 4864, ...QWEN25 });
    case 'internvl2_5-4b':
      return internvl('internvl2_5-4b', 'OpenGVLab/InternVL2_5-4B-MPO-hf',
        { hidden: 2048, layers: 36, heads: 16, kvHeads: 2, intermediate: 11008, ...QWEN25 });
    case 'llava-1.5-7b':
      return llava('llava-1.5-7b', 'llava-hf/llava-1.5-7b-hf',
        { hidden: 4096, layers: 32, heads: 32, kvHeads: 32, intermediate: 11008, vocab: 32064, ropeTheta: 10000, rmsEps: 1e-5, maxPos: 4096, qkvBias: false, tieEmbeddings: false },
        { hidden: 1024, layers: 24, heads: 16, intermediate: 4096, image: 336, patch: 14, projDim: 768 }, 32000,
        { specials: [{ content: '<unk>', id: 0 }, { content: '<s>', id: 1 }, { content: '</s>', id: 2 }, { content: '<image>', id: 32000 }, { content: '<pad>', id: 32001 }],
          byteOffset: 3, bos: '<s>', eos: '</s>', pad: '<pad>', unk: '<unk>', addBos: true, modelMaxLength: 4096,
          extraConfig: { add_bos_token: true, add_eos_token: false, image_token: '<image>', processor_class: 'LlavaProcessor' } },
        LLAVA15_TEMPLATE, 32001, 1, 2);
    case 'qwen2-vl-2b':
      return qwen2vl();
    default:
      throw new LightVLMError(`unknown --like ${JSON.stringify(like)}; valid names: ${LIKE_NAMES.join(', ')}.`, 'E_OPTION');
  }
}
