// Qwen2-VL vision tower (`Qwen2VisionTransformerPretrainedModel`) as one ONNX graph, plus the
// per-patch 2-D rotary tables it takes as inputs. The patch count n is symbolic, so one graph
// serves every image size. Shapes: C = in_channels, tp = temporal_patch_size, ps = patch_size,
// m = spatial_merge_size, E = embed_dim, dh = E / num_heads, Dt = hidden_size (the LM width).
import type { SafetensorsStore } from '../checkpoint/safetensors.js';
import { LightVLMError } from '../errors.js';
import { activation, layerNorm, linear, readActivation, type Activation } from '../graph/ops.js';
import type { Qwen2VLVisionConfig } from './visionConfig.js';
import { checkVisionDims, visionInt } from './visionWeights.js';
import { readBlock, type BlockNames, type VitTower } from './vit.js';

export interface Qwen2VLVisionDims {
  C: number;
  tp: number;
  ps: number;
  m: number;
  E: number;
  heads: number;
  dh: number;
  mlp: number; // fc1 width = E · mlp_ratio
  depth: number;
  act: Activation;
  theta: number;
  out: number; // merger output width (= the LM hidden size)
}

export function visionDims(vc: Qwen2VLVisionConfig, textHidden: number): Qwen2VLVisionDims {
  // Defaults are Qwen2VLVisionConfig's.
  const E = visionInt('embed_dim', vc.embed_dim ?? 1280);
  const heads = visionInt('num_heads', vc.num_heads ?? 16);
  checkVisionDims(E, heads, undefined, ['embed_dim', 'num_heads']);
  const ratio = vc.mlp_ratio ?? 4;
  if (typeof ratio !== 'number' || !(ratio > 0) || !Number.isFinite(ratio)) {
    throw new LightVLMError(`config.json vision_config.mlp_ratio is ${JSON.stringify(ratio)}; it must be a positive number such as 4.`, 'E_CONFIG');
  }
  const dh = E / heads;
  if (dh % 4 !== 0) throw new LightVLMError(`Qwen2-VL vision head size ${dh} must be a multiple of 4 (2-D rotary embedding).`, 'E_CONFIG');
  const rope = vc.rope_parameters ?? {};
  return {
    C: visionInt('in_channels', vc.in_channels ?? vc.in_chans ?? 3),
    tp: visionInt('temporal_patch_size', vc.temporal_patch_size ?? 2),
    ps: visionInt('patch_size', vc.patch_size ?? 14),
    m: visionInt('spatial_merge_size', vc.spatial_merge_size ?? 2),
    E,
    heads,
    dh,
    mlp: Math.trunc(E * ratio),
    depth: visionInt('depth', vc.depth ?? 32),
    act: readActivation(vc.hidden_act ?? 'quick_gelu', 'vision_config.hidden_act'),
    theta: rope.rope_theta ?? 10000,
    out: visionInt('hidden_size', vc.hidden_size ?? textHidden),
  };
}

/**
 * rot_pos_emb for one image of grid [t, gh, gw] (patch rows in the processor's order
 * (t, gh/m, gw/m, m, m)). Per patch the angles are cat(h·inv_freq, w·inv_freq) [dh/2], and the
 * tables hold cos/sin of cat(angles, angles): [n, dh]. inv_freq = 1/θ^(2i/(dh/2)), i < dh/4, in fp32.
 */
export function visionRopeTables(grid: [number, number, number], d: Qwen2VLVisionDims): { cos: Float32Array; sin: Float32Array } {
  const [t, gh, gw] = grid;
  const { m, dh } = d;
  const dim = dh / 2; // VisionRotaryEmbedding(head_dim // 2)
  const nf = dim / 2;
  const inv = new Float32Array(nf);
  for (let i = 0; i < nf; i++) inv[i] = 1 / Math.fround(Math.pow(d.theta, Math.fround((2 * i) / dim)));
  const n = t * gh * gw;
  const cos = new Float32Array(n * dh);
  const sin = new Float32Array(n * dh);
  let row = 0;
  for (let f = 0; f < t; f++) {
    for (let bh = 0; bh < gh / m; bh++) {
      for (let bw = 0; bw < gw / m; bw++) {
        for (let mh = 0; mh < m; mh++) {
          for (let mw = 0; mw < m; mw++) {
            const hp = bh * m + mh;
            const wp = bw * m + mw;
            const o = row * dh;
            for (let i = 0; i < nf; i++) {
              const ah = Math.fround(hp * inv[i]!);
              const aw = Math.fround(wp * inv[i]!);
              for (const base of [0, dim]) {
                cos[o + base + i] = Math.cos(ah);
                sin[o + base + i] = Math.sin(ah);
                cos[o + base + nf + i] = Math.cos(aw);
                sin[o + base + nf + i] = Math.sin(aw);
              }
            }
            row++;
          }
        }
      }
    }
  }
  return { cos, sin };
}

/** Qwen2-VL vision block weights → block slots (fused qkv). */
const QWEN2VL_BLOCK: BlockNames = {
  block: (l) => `blocks.${l}.`,
  norm1: 'norm1',
  norm2: 'norm2',
  qkv: 'attn.qkv',
  o: 'attn.proj',
  fc1: 'mlp.fc1',
  fc2: 'mlp.fc2',
};

/**
 * Inputs: pixel_values [n, C·tp·ps·ps], rope_cos / rope_sin [n, dh].
 * Output: features [n/m², out]. Attention is full over the n patches (one image, t = 1).
 */
export function qwen2vlTower(store: SafetensorsStore, vp: string, d: Qwen2VLVisionDims): VitTower {
  const { E, m } = d;
  const K = d.C * d.tp * d.ps * d.ps;
  const w = (name: string) => store.float(vp + name).data;
  const eps = 1e-6; // hard-coded in HF's blocks and merger
  return {
    name: 'qwen2vl_vision',
    dims: { D: E, heads: d.heads, dh: d.dh, act: d.act, eps },
    blocks: Array.from({ length: d.depth }, (_, l) => readBlock(store, vp, QWEN2VL_BLOCK, l, 'layer')),
    tokens: 'n',
    rotary: d.dh,
    // PatchEmbed: Conv3d with kernel = stride = [tp, ps, ps] and no bias over a (C, tp, ps, ps)
    // patch is a dot product with the flattened kernel [E, K].
    embed: (g) => linear(g, g.input('pixel_values', 'float32', ['n', K]), { w: w('patch_embed.proj.weight'), out: E, in: K, key: vp + 'patch_embed.proj' }, 'patch'), // [n, E]
    head(g, h, _probs, _n, rows) {
      // PatchMerger: ln_q per patch, then each run of m² consecutive patches (one m×m window) → one
      // row. `rows` (merged towers) lists the patch rows in that order: whole windows, m² each.
      const Em = E * m * m;
      const ln = layerNorm(g, h, w('merger.ln_q.weight'), w('merger.ln_q.bias'), eps);
      const z = g.op('Reshape', [rows ? g.op('Gather', [ln, rows], { axis: 0 }) : ln, g.constI64([-1, Em])]); // [n/m², E·m²]
      const mw = (i: number, o: number, k: number) => ({ w: w(`merger.mlp.${i}.weight`), b: w(`merger.mlp.${i}.bias`), out: o, in: k, key: vp + `merger.mlp.${i}` });
      const out = linear(g, activation(g, linear(g, z, mw(0, Em, Em)), 'gelu'), mw(2, d.out, Em));
      g.output(out, 'features', 'float32', ['tokens', d.out]);
    },
  };
}
