// Qwen2-VL (`model_type: qwen2_vl`): native-resolution ViT with 2-D rotary embeddings and a 2×2
// patch merger (qwen2vlVision.ts), Qwen2 LM with M-RoPE (3 position rows: t, h, w).
import type { SafetensorsStore } from '../checkpoint/safetensors.js';
import { LightVLMError } from '../errors.js';
import type { RgbImage } from '../processing/image.js';
import { qwen2vlProcess } from '../processing/processors.js';
import { f32 } from '../runtime/ort.js';
import { readTextConfig, type Json } from './config.js';
import type { Qwen2VLVisionConfig } from './visionConfig.js';
import type { Family, ImageInputs } from './family.js';
import { findPrefix, LanguageModelWeights } from './llm.js';
import { qwen2vlTower, visionDims, visionRopeTables } from './qwen2vlVision.js';
import { buildTower } from './vit.js';
import { checkQwen2VLVisionWeights } from './visionWeights.js';

/** The image's [t, h, w] patch grid; only single images (t = 1) are supported. */
function gridOf(inputs: ImageInputs, m: number): [number, number, number] {
  const g = inputs.gridThw;
  if (!g) throw new LightVLMError('internal: Qwen2-VL image inputs lack gridThw (the [t, h, w] patch grid).', 'E_INTERNAL');
  const [t, h, w] = g;
  if (t !== 1) throw new LightVLMError(`Qwen2-VL video / multi-frame inputs (grid t = ${t}) are not supported; pass a single image.`, 'E_UNSUPPORTED');
  if (h % m !== 0 || w % m !== 0) throw new LightVLMError(`Qwen2-VL patch grid ${h}x${w} is not a multiple of spatial_merge_size ${m}.`, 'E_CONFIG');
  if (inputs.dims[0] !== t * h * w) {
    throw new LightVLMError(`internal: Qwen2-VL pixel_values hold ${inputs.dims[0]} patches but the grid ${t}x${h}x${w} needs ${t * h * w}.`, 'E_INTERNAL');
  }
  return [t, h, w];
}

/**
 * get_rope_index for one image grid: text counts up from 0 (or from the previous max + 1); each
 * run of image tokens gets (t, h/m, w/m) grid positions offset by the position where it starts.
 * Returns rows [t, h, w], each [T].
 */
export function qwen2vlPositionIds(ids: number[], imageTokenId: number, llmGrid: [number, number, number]): Int32Array[] {
  const T = ids.length;
  const rows = [new Int32Array(T), new Int32Array(T), new Int32Array(T)];
  const [gt, gh, gw] = llmGrid;
  const n = gt * gh * gw;
  let next = 0; // max position so far + 1
  let i = 0;
  while (i < T) {
    if (ids[i] !== imageTokenId) {
      for (const r of rows) r[i] = next;
      next++;
      i++;
      continue;
    }
    let len = 0;
    while (i + len < T && ids[i + len] === imageTokenId) len++;
    if (len !== n) throw new LightVLMError(`internal: an image-token run of ${len} tokens does not match the ${gt}x${gh}x${gw} token grid.`, 'E_INTERNAL');
    const base = next;
    for (let k = 0; k < n; k++) {
      rows[0]![i + k] = base + Math.floor(k / (gh * gw));
      rows[1]![i + k] = base + (Math.floor(k / gw) % gh);
      rows[2]![i + k] = base + (k % gw);
    }
    next = base + Math.max(gt, gh, gw);
    i += len;
  }
  return rows;
}

export function createQwen2VL(cfg: Json, store: SafetensorsStore, processorCfg: Json): Family {
  const vc = cfg.vision_config as Qwen2VLVisionConfig | undefined;
  if (!vc) throw new LightVLMError('config.json of a qwen2_vl model has no vision_config.', 'E_CONFIG');
  if (vc.model_type && vc.model_type !== 'qwen2_vl_vision' && vc.model_type !== 'qwen2_vl') {
    throw new LightVLMError(`qwen2_vl vision tower "${vc.model_type}" is not supported (supported: qwen2_vl_vision).`, 'E_UNSUPPORTED');
  }
  // transformers 4 configs keep the text settings at the top level.
  const text = readTextConfig(cfg.text_config ?? cfg, cfg);
  if (!text.mropeSection) throw new LightVLMError('config.json of a qwen2_vl model lacks rope mrope_section (M-RoPE); cannot place image positions.', 'E_CONFIG');
  if (text.mropeSection.reduce((a, b) => a + b, 0) !== text.headDim / 2) {
    throw new LightVLMError(`mrope_section ${JSON.stringify(text.mropeSection)} must sum to head_dim / 2 = ${text.headDim / 2}.`, 'E_CONFIG');
  }
  const lm = new LanguageModelWeights(store, text);
  const vp = findPrefix(store, ['visual.', 'model.visual.'], 'patch_embed.proj.weight', 'vision tower');
  const d = visionDims(vc, text.hidden);
  if (d.out !== text.hidden) throw new LightVLMError(`vision merger width ${d.out} differs from the LM hidden size ${text.hidden}.`, 'E_CONFIG');
  checkQwen2VLVisionWeights(store, vp, d);
  const ip = (processorCfg.image_processor ?? processorCfg) as Json;
  for (const [k, v] of [['patch_size', d.ps], ['temporal_patch_size', d.tp], ['merge_size', d.m]] as const) {
    if (ip[k] !== undefined && ip[k] !== v) throw new LightVLMError(`image processor ${k} ${ip[k]} differs from the vision tower's ${v}.`, 'E_CONFIG');
  }
  const imageTokenId: number = cfg.image_token_id ?? cfg.image_token_index ?? 151655;
  const imageToken: string = processorCfg.image_token ?? '<|image_pad|>';
  const visionParams = store.paramCount(vp);
  const m = d.m;
  const nTokens = (inputs: ImageInputs) => {
    const [t, h, w] = gridOf(inputs, m);
    return (t * h * w) / (m * m);
  };

  const tower = () => qwen2vlTower(store, vp, d);
  const visionFeeds = (inputs: ImageInputs) => {
    const grid = gridOf(inputs, m);
    const n = inputs.dims[0]!;
    const { cos, sin } = visionRopeTables(grid, d);
    return {
      pixel_values: f32(inputs.pixelValues, inputs.dims),
      rope_cos: f32(cos, [n, d.dh]),
      rope_sin: f32(sin, [n, d.dh]),
    };
  };

  return {
    modelType: 'qwen2_vl',
    text,
    lm,
    imageTokenId,
    visionParams,
    preprocess: (img: RgbImage): ImageInputs => qwen2vlProcess(img, ip),
    expandPrompt(rendered: string, inputs: ImageInputs): string {
      const parts = rendered.split(imageToken);
      if (parts.length !== 2) throw new LightVLMError(`the chat template must place the image token ${imageToken} exactly once (found ${parts.length - 1}).`, 'E_CONFIG');
      return parts.join(imageToken.repeat(nTokens(inputs)));
    },
    imageTokens: nTokens,
    tokenGrids(inputs: ImageInputs) {
      const [, h, w] = gridOf(inputs, m);
      return [{ h: h / m, w: w / m }];
    },
    buildVision: (opts) => buildTower(tower(), [], opts)[0]!,
    visionFeeds,
    vit: {
      tower,
      depth: d.depth,
      // patches come in merge-window order (m² consecutive rows per LM token); no [CLS]
      parts(inputs: ImageInputs) {
        const feeds = visionFeeds(inputs);
        const n = inputs.dims[0]!;
        const rotary = { cos: feeds.rope_cos!.data as Float32Array, sin: feeds.rope_sin!.data as Float32Array, dh: d.dh };
        return [{ feeds, layout: { tokens: n, protect: [], headRows: Int32Array.from({ length: n }, (_, i) => i), group: m * m, rotary } }];
      },
    },
    positionIds(ids: number[], inputs: ImageInputs): Int32Array[] {
      const [t, h, w] = gridOf(inputs, m);
      return qwen2vlPositionIds(ids, imageTokenId, [t, h / m, w / m]);
    },
  };
}
