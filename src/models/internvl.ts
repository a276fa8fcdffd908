// InternVL (`model_type: internvl`, the transformers-native layout of InternVL2.5 / InternVL3 "-hf"
// checkpoints): InternViT on dynamic 448² tiles (GotOcr2 tiling), pixel shuffle, MLP projector,
// Qwen2 / Llama LM. Each tile contributes `image_seq_length` tokens between <img> … </img>.
import fs from 'node:fs';
import path from 'node:path';
import type { SafetensorsStore } from '../checkpoint/safetensors.js';
import { LightVLMError } from '../errors.js';
import { gotOcr2Process } from '../processing/processors.js';
import type { RgbImage } from '../processing/image.js';
import { f32 } from '../runtime/ort.js';
import { readTextConfig, type Json } from './config.js';
import type { InternVisionConfig } from './visionConfig.js';
import { readActivation } from '../graph/ops.js';
import type { Family, ImageInputs } from './family.js';
import { internVitTower, pixelShuffleRows } from './internvit.js';
import { buildTower } from './vit.js';
import { checkInternVitWeights, checkVisionDims, visionInt } from './visionWeights.js';
import { findPrefix, LanguageModelWeights } from './llm.js';

const pair = (v: unknown, what: string): [number, number] => {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [v[0], v[1]];
  throw new LightVLMError(`config.json vision_config.${what} must be a number or [height, width], got ${JSON.stringify(v)}.`, 'E_CONFIG');
};

/** The processor's image tokens: tokenizer_config.json attributes next to the weights, else InternVL's defaults. */
function imageTokenStrings(store: SafetensorsStore, processorCfg: Json): { context: string; start: string; end: string } {
  let tc: Json = {};
  const first = store.entries.values().next().value as { file?: string } | undefined;
  const file = first?.file ? path.join(path.dirname(first.file), 'tokenizer_config.json') : '';
  if (file && fs.existsSync(file)) {
    try {
      tc = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      tc = {};
    }
  }
  const str = (...vs: unknown[]): string | undefined => vs.find((v): v is string => typeof v === 'string');
  return {
    context: str(processorCfg.image_token, tc.context_image_token) ?? '<IMG_CONTEXT>',
    start: str(processorCfg.start_image_token, tc.start_image_token) ?? '<img>',
    end: str(processorCfg.end_image_token, tc.end_image_token) ?? '</img>',
  };
}

export function createInternVL(cfg: Json, store: SafetensorsStore, processorCfg: Json): Family {
  const vc = cfg.vision_config as InternVisionConfig | undefined;
  if (!vc || (vc.model_type ?? 'internvl_vision') !== 'internvl_vision') {
    throw new LightVLMError(`internvl vision tower "${vc?.model_type}" is not supported (supported: internvl_vision).`, 'E_UNSUPPORTED');
  }
  const tc = (cfg.text_config ?? {}) as Json;
  const textType = tc.model_type ?? 'qwen2';
  if (!['qwen2', 'llama'].includes(textType)) {
    throw new LightVLMError(`internvl language model "${textType}" is not supported yet (supported: qwen2, llama).`, 'E_UNSUPPORTED');
  }
  // transformers 5 ties lm_head to the embeddings from the top-level tie_word_embeddings (default true).
  const tie = Boolean(cfg.tie_word_embeddings ?? true) || Boolean(tc.tie_word_embeddings);
  const text = { ...readTextConfig(tc, cfg), tieEmbeddings: tie };
  const lm = new LanguageModelWeights(store, text);
  const vp = findPrefix(store, ['vision_tower.', 'model.vision_tower.'], 'embeddings.cls_token', 'vision tower');
  const pp = findPrefix(store, ['multi_modal_projector.', 'model.multi_modal_projector.'], 'linear_1.weight', 'projector');

  const featureLayer = cfg.vision_feature_layer ?? -1;
  if (typeof featureLayer !== 'number') throw new LightVLMError('a list-valued vision_feature_layer is not supported for internvl.', 'E_UNSUPPORTED');
  const strategy = cfg.vision_feature_select_strategy ?? 'default';
  if (strategy !== 'default') {
    throw new LightVLMError(`internvl vision_feature_select_strategy "${strategy}" is not supported (supported: default); transformers cannot pixel-shuffle a [CLS] row either.`, 'E_UNSUPPORTED');
  }
  if (vc.use_mask_token) throw new LightVLMError('internvl vision use_mask_token is not supported (it only matters for masked-image pretraining).', 'E_UNSUPPORTED');
  const norm = vc.norm_type ?? 'layer_norm';
  if (!['layer_norm', 'rms_norm'].includes(norm)) throw new LightVLMError(`internvl vision norm_type "${norm}" is not supported (supported: layer_norm, rms_norm).`, 'E_UNSUPPORTED');

  const nLayers = visionInt('num_hidden_layers', vc.num_hidden_layers);
  if (featureLayer < -(nLayers + 1) || featureLayer > nLayers) {
    throw new LightVLMError(`vision_feature_layer ${featureLayer} is out of range for a ${nLayers}-layer vision tower.`, 'E_CONFIG');
  }
  // −1 = last_hidden_state (after vision_tower.layernorm when use_mean_pooling is false);
  // any other index = encoder hidden_states[i] (0 = embeddings, i = output of layer i), no final norm.
  const runLayers = featureLayer < 0 ? nLayers + 1 + featureLayer : featureLayer;
  const finalNorm = featureLayer === -1 && !(vc.use_mean_pooling ?? true);

  const ip = (processorCfg.image_processor ?? processorCfg) as Json;
  const [imgH, imgW] = pair(vc.image_size ?? 448, 'image_size');
  const [ph, pw] = pair(vc.patch_size ?? 14, 'patch_size');
  for (const [f, x] of [['image_size', imgH], ['image_size', imgW], ['patch_size', ph], ['patch_size', pw]] as const) visionInt(f, x);
  const size = (ip.size ?? {}) as Json;
  const tileH: number = size.height ?? imgH;
  const tileW: number = size.width ?? imgW;
  if (tileH !== imgH || tileW !== imgW) {
    throw new LightVLMError(
      `the image processor makes ${tileW}x${tileH} tiles but the vision tower was trained on ${imgW}x${imgH}; interpolated position embeddings are not supported yet.`, 'E_CONFIG');
  }
  if (tileH % ph || tileW % pw || tileH / ph !== tileW / pw) {
    throw new LightVLMError(`internvl needs a square patch grid: ${tileW}x${tileH} tiles with ${pw}x${ph} patches do not give one.`, 'E_CONFIG');
  }
  const grid = tileH / ph; // patches per side
  const ratio: number = cfg.downsample_ratio ?? 0.5;
  const k = Math.round(1 / ratio);
  if (!(ratio > 0) || Math.abs(k * ratio - 1) > 1e-9 || grid % k) {
    throw new LightVLMError(`downsample_ratio ${ratio} is not supported: 1/ratio must be an integer dividing the ${grid}-patch grid side.`, 'E_CONFIG');
  }
  const side = grid / k; // LM tokens per tile side
  const perTile = side * side;
  const seqLen: number = processorCfg.image_seq_length ?? cfg.image_seq_length ?? 256;
  if (seqLen !== perTile) {
    throw new LightVLMError(`image_seq_length ${seqLen} does not match the ${perTile} tokens the vision tower makes per tile (${grid}² patches, downsample ${ratio}).`, 'E_CONFIG');
  }
  const D = visionInt('hidden_size', vc.hidden_size);
  checkVisionDims(D, visionInt('num_attention_heads', vc.num_attention_heads), vc.layer_norm_eps, ['hidden_size', 'num_attention_heads']);
  checkInternVitWeights(store, vp, pp, {
    D, I: visionInt('intermediate_size', vc.intermediate_size), ph, pw, positions: grid * grid + 1, layers: nLayers, shuffle: k,
    textHidden: text.hidden, rms: norm === 'rms_norm', qkNorm: Boolean(vc.use_qk_norm), finalNorm, absolutePositions: vc.use_absolute_position_embeddings ?? true,
    attentionBias: Boolean(vc.attention_bias ?? false),
  });
  const imageTokenId: number = cfg.image_token_id ?? cfg.image_token_index ?? 151667;
  const tok = imageTokenStrings(store, processorCfg);
  const tiles = (inputs: ImageInputs): number => inputs.numTiles ?? inputs.dims[0]!;
  const visionParams = store.paramCount(vp, pp);
  const tower = () =>
    internVitTower(store, { vc, vp, pp, tileH, tileW, runLayers, finalNorm, shuffle: k, projectorAct: readActivation(cfg.projector_hidden_act ?? 'gelu', 'projector_hidden_act'), textHidden: text.hidden });

  return {
    modelType: 'internvl',
    text,
    lm,
    imageTokenId,
    visionParams,
    preprocess(img: RgbImage): ImageInputs {
      const out = gotOcr2Process(img, ip);
      return { pixelValues: out.pixelValues, dims: [...out.dims], numTiles: out.numTiles };
    },
    expandPrompt(rendered: string, inputs: ImageInputs): string {
      if (!rendered.includes(tok.context)) throw new LightVLMError(`the chat template did not place the image token ${tok.context}.`, 'E_CONFIG');
      return rendered.split(tok.context).join(tok.start + tok.context.repeat(perTile * tiles(inputs)) + tok.end);
    },
    imageTokens: (inputs: ImageInputs) => perTile * tiles(inputs),
    tokenGrids: (inputs: ImageInputs) => Array.from({ length: tiles(inputs) }, () => ({ h: side, w: side })),
    buildVision: (opts) => buildTower(tower(), [], opts)[0]!,
    visionFeeds: (inputs: ImageInputs) => ({ pixel_values: f32(inputs.pixelValues, inputs.dims) }),
    vit: {
      tower,
      depth: runLayers,
      // one part per tile (thumbnail included): [CLS] + grid² patches, k² patches per LM token
      parts(inputs: ImageInputs) {
        const per = inputs.pixelValues.length / tiles(inputs);
        const layout = { tokens: grid * grid + 1, protect: [0], headRows: pixelShuffleRows(grid, grid, k), group: k * k };
        return Array.from({ length: tiles(inputs) }, (_, t) => ({
          feeds: { pixel_values: f32(inputs.pixelValues.subarray(t * per, (t + 1) * per), [1, ...inputs.dims.slice(1)]) },
          layout,
        }));
      },
    },
    positionIds: (ids: number[]): Int32Array[] => [Int32Array.from(ids, (_, i) => i)],
  };
}
