// Load-time check that the language model's weights are the ones config.json describes: every
// tensor the config implies exists with the implied shape, and no decoder layer lies beyond
// num_hidden_layers. The expected list comes from shapes.ts (the same table make-checkpoint
// writes), so the two cannot drift apart. A mismatch is an error naming the tensor and the config
// fields, instead of a graph that fails to build or silently runs fewer layers.
import { LightVLMError } from '../errors.js';
import type { SafetensorsStore } from './safetensors.js';
import { lmTensors } from './shapes.js';

const FIELDS = 'hidden_size, num_attention_heads, num_key_value_heads, head_dim, intermediate_size, vocab_size';

/** The config.json numbers the check reads (models/config.ts TextConfig has them; declared here so checkpoint/ stays below models/). */
export interface LmConfigFields {
  hidden: number; layers: number; heads: number; kvHeads: number; headDim: number; intermediate: number; vocab: number;
  ropeTheta: number; eps: number; maxPositions: number;
}

/** `prefix` ends with '.', e.g. 'language_model.model.'; `head` is the lm_head tensor name, or undefined when tied. */
export function validateLanguageModel(store: SafetensorsStore, prefix: string, head: string | undefined, cfg: LmConfigFields): void {
  const specs = lmTensors(
    {
      hidden: cfg.hidden, layers: cfg.layers, heads: cfg.heads, kvHeads: cfg.kvHeads, intermediate: cfg.intermediate, vocab: cfg.vocab,
      headDim: cfg.headDim, qkvBias: store.has(`${prefix}layers.0.self_attn.q_proj.bias`), tieEmbeddings: head === undefined,
      ropeTheta: cfg.ropeTheta, rmsEps: cfg.eps, maxPos: cfg.maxPositions,
    },
    prefix.slice(0, -1),
    head ?? '',
  );
  for (const spec of specs) {
    const e = store.entries.get(spec.name);
    if (!e) {
      throw new LightVLMError(
        `weight ${spec.name} is missing from the checkpoint, but config.json (num_hidden_layers ${cfg.layers}) needs it. The checkpoint is incomplete or config.json belongs to another model.`,
        'E_CHECKPOINT',
      );
    }
    if (e.shape.length !== spec.shape.length || e.shape.some((d, i) => d !== spec.shape[i])) {
      throw new LightVLMError(
        `weight ${spec.name} has shape [${e.shape.join(', ')}] but config.json implies [${spec.shape.join(', ')}] (${FIELDS}): config.json and the weights disagree.`,
        'E_CONFIG',
      );
    }
  }
  // Layer 0 decides whether q/k/v have biases; one in a later layer would be half-used.
  if (!store.has(`${prefix}layers.0.self_attn.q_proj.bias`)) {
    const stray = store.names().find((n) => n.startsWith(`${prefix}layers.`) && /\.self_attn\.[qkv]_proj\.bias$/.test(n));
    if (stray) throw new LightVLMError(`weight ${stray} is in the checkpoint but layer 0 has no ${prefix}layers.0.self_attn.q_proj.bias: the checkpoint is incomplete.`, 'E_CHECKPOINT');
  }
  // Layers past num_hidden_layers would be ignored: a config/weights mismatch, not a smaller model.
  const layerRe = new RegExp(`^${prefix.replace(/\./g, '\\.')}layers\\.(\\d+)\\.`);
  let top = -1;
  for (const name of store.names()) {
    const m = layerRe.exec(name);
    if (m) top = Math.max(top, Number(m[1]));
  }
  if (top >= cfg.layers) {
    throw new LightVLMError(`the checkpoint holds decoder layers up to ${top} but config.json num_hidden_layers is ${cfg.layers}: config.json and the weights disagree.`, 'E_CONFIG');
  }
}

/**
 * A tensor a graph builder reads: required unless `optional` (then its shape is checked when
 * present); `absent` (the config field that says so) = must not be in the checkpoint.
 */
export interface WeightSpec {
  name: string;
  shape: number[];
  optional?: boolean;
  absent?: string;
}

/**
 * Every required tensor exists and every listed tensor that exists has the listed shape. `fields`
 * names the config.json fields the shapes come from (for the message).
 */
export function checkWeights(store: SafetensorsStore, specs: WeightSpec[], fields: string): void {
  for (const spec of specs) {
    const e = store.entries.get(spec.name);
    if (e && spec.absent !== undefined) {
      throw new LightVLMError(`weight ${spec.name} is in the checkpoint but config.json (${spec.absent}) says the layer has no bias: config.json and the weights disagree.`, 'E_CONFIG');
    }
    if (!e) {
      if (spec.optional || spec.absent !== undefined) continue;
      throw new LightVLMError(
        `weight ${spec.name} is missing from the checkpoint, but config.json needs it (expected shape [${spec.shape.join(', ')}]). The checkpoint is incomplete or config.json belongs to another model.`,
        'E_CHECKPOINT',
      );
    }
    if (e.shape.length !== spec.shape.length || e.shape.some((d, i) => d !== spec.shape[i])) {
      throw new LightVLMError(
        `weight ${spec.name} has shape [${e.shape.join(', ')}] but config.json implies [${spec.shape.join(', ')}] (${fields}): config.json and the weights disagree.`,
        'E_CONFIG',
      );
    }
  }
}
