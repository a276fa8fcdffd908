// Load-time check that the vision tower and projector weights are the ones config.json's
// vision_config describes, for the three families (CLIP in LLaVA, InternViT + pixel-shuffle
// projector in InternVL, the Qwen2-VL tower + merger). Each table lists the tensors the family's
// graph builder reads, with the shape the config implies; biases are required or must be absent
// as the config's bias switches say (transformers builds the same modules from the same config,
// so a bias missing from one layer would otherwise be read as zero there without notice). Every layer num_hidden_layers names must be there, also those past the
// feature layer that never run: transformers writes them all, and a missing one means config.json
// names more layers than the weights hold (which would move the feature layer silently). A mismatch is an error naming the tensor,
// the shape found and the shape expected, instead of a graph that fails to build ("internal error").
// The vision_config numbers themselves are checked first (positive whole sizes that divide).
import { checkWeights, type WeightSpec } from '../checkpoint/validate.js';
import type { SafetensorsStore } from '../checkpoint/safetensors.js';
import { LightVLMError } from '../errors.js';
import type { Json } from './config.js';

/** `vision_config.<field>` must be a positive whole number (when `v` is a number read from it). */
export function visionInt(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > 2 ** 31) {
    throw new LightVLMError(`config.json vision_config.${field} is ${JSON.stringify(v)}; it must be a positive whole number. Fix config.json (or re-download the model).`, 'E_CONFIG');
  }
  return v;
}

/** hidden size divisible by the head count, eps positive. */
export function checkVisionDims(D: number, heads: number, eps: unknown, names: [string, string]): void {
  if (D % heads !== 0) {
    throw new LightVLMError(`config.json vision_config.${names[0]} ${D} is not divisible by vision_config.${names[1]} ${heads}.`, 'E_CONFIG');
  }
  if (eps !== undefined && (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps))) {
    throw new LightVLMError(`config.json vision_config.layer_norm_eps is ${JSON.stringify(eps)}; it must be a positive number such as 1e-6.`, 'E_CONFIG');
  }
}

const req = (name: string, shape: number[]): WeightSpec => ({ name, shape });

/** weight [out, in]; bias [out] required (`bias` true) or absent (false; `field` names the config switch). */
function lin(out: WeightSpec[], name: string, o: number, i: number, bias = true, field = ''): void {
  out.push(req(`${name}.weight`, [o, i]));
  out.push(bias ? req(`${name}.bias`, [o]) : { name: `${name}.bias`, shape: [o], absent: field });
}
function ln(out: WeightSpec[], name: string, d: number, optional = false, withBias = true): void {
  out.push({ name: `${name}.weight`, shape: [d], ...(optional ? { optional } : {}) });
  if (withBias) out.push({ name: `${name}.bias`, shape: [d], ...(optional ? { optional } : {}) });
}

/** Layers at or past `total` present in the checkpoint → the config and the weights disagree. */
function noExtraLayers(store: SafetensorsStore, re: RegExp, total: number, field: string): void {
  let top = -1;
  for (const name of store.names()) {
    const m = re.exec(name);
    if (m) top = Math.max(top, Number(m[1]));
  }
  if (top >= total) {
    throw new LightVLMError(`the checkpoint holds vision layers up to ${top} but config.json vision_config.${field} is ${total}: config.json and the weights disagree.`, 'E_CONFIG');
  }
}
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export interface ClipWeightDims {
  D: number; I: number; patch: number; positions: number; layers: number; textHidden: number; projectorBias: boolean;
}

/** LLaVA: CLIP tower under `vp`, 2-layer MLP projector under `pp`. */
export function checkClipWeights(store: SafetensorsStore, vp: string, pp: string, d: ClipWeightDims): void {
  const { D, I } = d;
  const s: WeightSpec[] = [
    req(`${vp}embeddings.class_embedding`, [D]),
    req(`${vp}embeddings.patch_embedding.weight`, [D, 3, d.patch, d.patch]),
    req(`${vp}embeddings.position_embedding.weight`, [d.positions, D]),
  ];
  ln(s, `${vp}pre_layrnorm`, D);
  ln(s, `${vp}post_layernorm`, D); // not run (the feature layer is before it), but transformers always writes it
  for (let l = 0; l < d.layers; l++) {
    const p = `${vp}encoder.layers.${l}.`;
    ln(s, p + 'layer_norm1', D);
    ln(s, p + 'layer_norm2', D);
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) lin(s, `${p}self_attn.${n}`, D, D);
    lin(s, p + 'mlp.fc1', I, D);
    lin(s, p + 'mlp.fc2', D, I);
  }
  lin(s, pp + 'linear_1', d.textHidden, D, d.projectorBias, 'multimodal_projector_bias');
  lin(s, pp + 'linear_2', d.textHidden, d.textHidden, d.projectorBias, 'multimodal_projector_bias');
  checkWeights(store, s, 'vision_config (hidden_size, intermediate_size, patch_size, image_size) and text_config.hidden_size');
  noExtraLayers(store, new RegExp(`^${esc(vp)}encoder\\.layers\\.(\\d+)\\.`), d.layers, 'num_hidden_layers');
}

export interface InternVitWeightDims {
  D: number; I: number; ph: number; pw: number; positions: number; layers: number; shuffle: number; textHidden: number;
  rms: boolean; qkNorm: boolean; finalNorm: boolean; absolutePositions: boolean; attentionBias: boolean;
}

/** InternVL: InternViT under `vp`, LayerNorm + 2-layer MLP projector over D·k² pixel-shuffled rows under `pp`. */
export function checkInternVitWeights(store: SafetensorsStore, vp: string, pp: string, d: InternVitWeightDims): void {
  const { D, I } = d;
  const s: WeightSpec[] = [
    req(`${vp}embeddings.cls_token`, [1, 1, D]),
    req(`${vp}embeddings.patch_embeddings.projection.weight`, [D, 3, d.ph, d.pw]),
    req(`${vp}embeddings.patch_embeddings.projection.bias`, [D]),
    { name: `${vp}embeddings.position_embeddings`, shape: [1, d.positions, D], ...(d.absolutePositions ? {} : { optional: true }) },
  ];
  for (let l = 0; l < d.layers; l++) {
    const p = `${vp}encoder.layer.${l}.`;
    for (const n of ['q_proj', 'k_proj', 'v_proj']) lin(s, `${p}attention.${n}`, D, D, d.attentionBias, 'vision_config.attention_bias');
    lin(s, `${p}attention.projection_layer`, D, D);
    if (d.qkNorm) for (const n of ['q_norm', 'k_norm']) s.push(req(`${p}attention.${n}.weight`, [D]));
    for (const n of ['lambda_1', 'lambda_2']) s.push(req(p + n, [D]));
    ln(s, p + 'layernorm_before', D, false, !d.rms);
    ln(s, p + 'layernorm_after', D, false, !d.rms);
    lin(s, p + 'mlp.fc1', I, D);
    lin(s, p + 'mlp.fc2', D, I);
  }
  ln(s, `${vp}layernorm`, D, !d.finalNorm);
  const Dk = D * d.shuffle * d.shuffle;
  ln(s, pp + 'layer_norm', Dk);
  lin(s, pp + 'linear_1', d.textHidden, Dk);
  lin(s, pp + 'linear_2', d.textHidden, d.textHidden);
  checkWeights(store, s, 'vision_config (hidden_size, intermediate_size, patch_size, image_size), downsample_ratio and text_config.hidden_size');
  noExtraLayers(store, new RegExp(`^${esc(vp)}encoder\\.layer\\.(\\d+)\\.`), d.layers, 'num_hidden_layers');
}

export interface Qwen2VLWeightDims {
  C: number; tp: number; ps: number; m: number; E: number; mlp: number; depth: number; out: number;
}

/** Qwen2-VL: patch embedding, `depth` blocks with fused qkv, PatchMerger (ln_q, mlp.0, mlp.2) under `vp`. */
export function checkQwen2VLVisionWeights(store: SafetensorsStore, vp: string, d: Qwen2VLWeightDims): void {
  const { E } = d;
  const K = d.C * d.tp * d.ps * d.ps;
  const Em = E * d.m * d.m;
  // Conv3d kernel [E, C, tp, ps, ps] (the graph reads it flattened as [E, K]); a pre-flattened [E, K] is accepted too.
  const conv = `${vp}patch_embed.proj.weight`;
  const found = store.entries.get(conv)?.shape;
  const s: WeightSpec[] = [req(conv, found?.length === 2 ? [E, K] : [E, d.C, d.tp, d.ps, d.ps])];
  for (let l = 0; l < d.depth; l++) {
    const p = `${vp}blocks.${l}.`;
    ln(s, p + 'norm1', E);
    ln(s, p + 'norm2', E);
    lin(s, p + 'attn.qkv', 3 * E, E);
    lin(s, p + 'attn.proj', E, E);
    lin(s, p + 'mlp.fc1', d.mlp, E);
    lin(s, p + 'mlp.fc2', E, d.mlp);
  }
  ln(s, `${vp}merger.ln_q`, E);
  lin(s, `${vp}merger.mlp.0`, Em, Em);
  lin(s, `${vp}merger.mlp.2`, d.out, Em);
  checkWeights(store, s, 'vision_config (embed_dim, mlp_ratio, patch_size, temporal_patch_size, spatial_merge_size, in_channels, hidden_size)');
  noExtraLayers(store, new RegExp(`^${esc(vp)}blocks\\.(\\d+)\\.`), d.depth, 'depth');
}
