// LLaVA (`model_type: llava`): CLIP ViT up to `vision_feature_layer`, MLP projector, Llama/Qwen2 LM.
import type { SafetensorsStore } from '../checkpoint/safetensors.js';
import { LightVLMError } from '../errors.js';
import type { GraphOptions } from '../graph/proto.js';
import { activation, layerNorm, linear, readActivation } from '../graph/ops.js';
import { clipProcess } from '../processing/processors.js';
import type { RgbImage } from '../processing/image.js';
import { f32 } from '../runtime/ort.js';
import { readTextConfig, type Json } from './config.js';
import type { ClipVisionConfig } from './visionConfig.js';
import type { Family, ImageInputs } from './family.js';
import { findPrefix, LanguageModelWeights } from './llm.js';
import { checkClipWeights, checkVisionDims, visionInt } from './visionWeights.js';
import { buildTower, readBlock, type BlockNames, type VitDims, type VitTower } from './vit.js';

/** CLIP encoder layer weights → block slots. */
const CLIP_BLOCK: BlockNames = {
  block: (l) => `encoder.layers.${l}.`,
  norm1: 'layer_norm1',
  norm2: 'layer_norm2',
  qkv: ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'],
  o: 'self_attn.out_proj',
  fc1: 'mlp.fc1',
  fc2: 'mlp.fc2',
};

export function createLlava(cfg: Json, store: SafetensorsStore, processorCfg: Json): Family {
  const vc = cfg.vision_config as ClipVisionConfig | undefined;
  if (!vc || (vc.model_type ?? 'clip_vision_model') !== 'clip_vision_model') {
    throw new LightVLMError(`llava vision tower "${vc?.model_type}" is not supported (supported: clip_vision_model).`, 'E_UNSUPPORTED');
  }
  const text = readTextConfig(cfg.text_config ?? {}, cfg);
  const lm = new LanguageModelWeights(store, text);
  const vp = findPrefix(store, ['vision_tower.vision_model.', 'vision_tower.', 'model.vision_tower.vision_model.', 'model.vision_tower.'], 'embeddings.class_embedding', 'vision tower');
  const pp = findPrefix(store, ['multi_modal_projector.', 'model.multi_modal_projector.'], 'linear_1.weight', 'projector');
  const featureLayer = cfg.vision_feature_layer ?? -2;
  if (typeof featureLayer !== 'number') throw new LightVLMError('a list-valued vision_feature_layer is not supported yet.', 'E_UNSUPPORTED');
  const strategy = cfg.vision_feature_select_strategy ?? 'default';
  if (strategy !== 'default' && strategy !== 'full') throw new LightVLMError(`vision_feature_select_strategy "${strategy}" is not supported (supported: default, full).`, 'E_UNSUPPORTED');
  if ((vc.num_channels ?? 3) !== 3) throw new LightVLMError(`vision_config.num_channels ${vc.num_channels} is not supported (RGB images: 3).`, 'E_UNSUPPORTED');
  const imageSize = visionInt('image_size', vc.image_size);
  const patch = visionInt('patch_size', vc.patch_size);
  if (patch > imageSize) throw new LightVLMError(`config.json vision_config.patch_size ${patch} is larger than image_size ${imageSize}.`, 'E_CONFIG');
  const side = Math.floor(imageSize / patch);
  const nPatches = side * side;
  const nImage = strategy === 'default' ? nPatches : nPatches + 1;
  const nLayers = visionInt('num_hidden_layers', vc.num_hidden_layers);
  // hidden_states[0] is the pre-layernormed embedding, [i] the output of layer i.
  const runLayers = featureLayer < 0 ? nLayers + 1 + featureLayer : featureLayer;
  if (!Number.isInteger(featureLayer) || runLayers < 1 || runLayers > nLayers) {
    throw new LightVLMError(`vision_feature_layer ${featureLayer} is out of range for a ${nLayers}-layer vision tower (use -${nLayers}..-1 or 1..${nLayers}).`, 'E_CONFIG');
  }
  const imageTokenId: number = cfg.image_token_index ?? cfg.image_token_id;
  const imageToken: string = processorCfg.image_token ?? '<image>';
  const w = (n: string) => store.float(vp + n).data;
  const visionParams = store.paramCount(vp, pp);

  const D = visionInt('hidden_size', vc.hidden_size);
  const heads = visionInt('num_attention_heads', vc.num_attention_heads);
  checkVisionDims(D, heads, vc.layer_norm_eps, ['hidden_size', 'num_attention_heads']);
  const n = nPatches + 1; // [CLS] + patches
  const projectorAct = readActivation(cfg.projector_hidden_act ?? 'gelu', 'projector_hidden_act');
  checkClipWeights(store, vp, pp, { D, I: visionInt('intermediate_size', vc.intermediate_size), patch, positions: n, layers: nLayers, textHidden: text.hidden, projectorBias: cfg.multimodal_projector_bias ?? true });
  const dims: VitDims = { D, heads, dh: D / heads, act: readActivation(vc.hidden_act ?? 'quick_gelu', 'vision_config.hidden_act'), eps: vc.layer_norm_eps ?? 1e-5 };
  const tower = (): VitTower => ({
    name: 'clip_vision',
    dims,
    blocks: Array.from({ length: runLayers }, (_, l) => readBlock(store, vp, CLIP_BLOCK, l, 'layer')),
    tokens: n,
    embed(g) {
      const px = g.input('pixel_values', 'float32', [1, 3, imageSize, imageSize]);
      const conv = g.op('Conv', [px, g.weight('patch', [D, 3, patch, patch], w('embeddings.patch_embedding.weight'))], { strides: [patch, patch] });
      const patches = g.op('Transpose', [g.op('Reshape', [conv, g.constI64([D, nPatches])])], { perm: [1, 0] }); // [n-1, D]
      const cls = g.weight('cls', [1, D], w('embeddings.class_embedding'));
      const h = g.op('Add', [g.op('Concat', [cls, patches], { axis: 0 }), g.weight('pos', [n, D], w('embeddings.position_embedding.weight'))]); // [n, D]
      return layerNorm(g, h, w('pre_layrnorm.weight'), w('pre_layrnorm.bias'), dims.eps);
    },
    head(g, h, probs, _n, rows) {
      // rows: the patch rows to read (merged towers); else patches 1..n-1 in order. 'default' drops [CLS].
      const patchRows = rows ? g.op('Gather', [h, rows], { axis: 0 }) : g.op('Slice', [h, g.constI64([1]), g.constI64([n]), g.constI64([0])]);
      const feats = strategy === 'default' ? patchRows : g.op('Concat', [g.op('Slice', [h, g.constI64([0]), g.constI64([1]), g.constI64([0])]), patchRows], { axis: 0 });
      const Dt = text.hidden;
      const pw = (nm: string) => store.float(pp + nm).data;
      const hasBias = store.has(pp + 'linear_1.bias');
      const l1 = { w: pw('linear_1.weight'), out: Dt, in: D, key: pp + 'linear_1', ...(hasBias ? { b: pw('linear_1.bias') } : {}) };
      const l2 = { w: pw('linear_2.weight'), out: Dt, in: Dt, key: pp + 'linear_2', ...(hasBias ? { b: pw('linear_2.bias') } : {}) };
      const out = linear(g, activation(g, linear(g, feats, l1), projectorAct), l2);
      g.output(out, 'features', 'float32', [rows ? 'm' : nImage, Dt]);
      if (!probs) return;
      // [CLS] query row of the feature layer, head mean, over the patch keys: FasterVLM / VisionZip's score.
      const row = g.op('ReduceMean', [g.op('Slice', [probs, g.constI64([0]), g.constI64([1]), g.constI64([2])])], { axes: [1], keepdims: 0 }); // [1,1,n]
      const flat = g.op('Reshape', [row, g.constI64([-1])]); // [n] (n rows of h)
      const cls = rows ? g.op('Gather', [flat, rows], { axis: 0 }) : g.op('Slice', [flat, g.constI64([1]), g.constI64([n]), g.constI64([0])]);
      g.output(cls, 'cls_attn', 'float32', [rows ? 'm' : nPatches]);
    },
  });

  return {
    modelType: 'llava',
    text,
    lm,
    imageTokenId,
    visionParams,
    preprocess: (img: RgbImage): ImageInputs => clipProcess(img, processorCfg.image_processor ?? processorCfg),
    expandPrompt(rendered: string): string {
      if (!rendered.includes(imageToken)) throw new LightVLMError(`the chat template did not place the image token ${imageToken}.`, 'E_CONFIG');
      return rendered.split(imageToken).join(imageToken.repeat(nImage));
    },
    imageTokens: () => nImage,
    tokenGrids: () => [strategy === 'default' ? { h: side, w: side } : { h: 1, w: nImage }],
    buildVision: (opts: GraphOptions = {}) => buildTower(tower(), [], opts)[0]!,
    visionFeeds: (inputs: ImageInputs) => ({ pixel_values: f32(inputs.pixelValues, inputs.dims) }),
    vit: {
      tower,
      depth: runLayers,
      parts: (inputs: ImageInputs) => [
        {
          feeds: { pixel_values: f32(inputs.pixelValues, inputs.dims) },
          layout: {
            tokens: n,
            protect: [0], // [CLS]
            headRows: Int32Array.from({ length: nPatches }, (_, i) => i + 1), // patches in order
            group: 1,
            ...(strategy === 'default' ? {} : { reduceError: `vitMerge reduce needs vision_feature_select_strategy 'default' (this model hands [CLS] to the LM too); use unmerge.` }),
          },
        },
      ],
    },
    positionIds(ids: number[]): Int32Array[] {
      return [Int32Array.from(ids, (_, i) => i)];
    },
  };
}
