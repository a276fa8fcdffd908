// Qwen2-VL vision tower (`Qwen2VisionTransformerPretrainedModel`) as one ONNX graph, plus the
// per-patch 2-D rotary tables it takes as inputs. The patch count n is symbolic, so one graph
// serves every image size. Shapes: C = in_channels, tp = temporal_patch_size, ps = patch_size,
// m = spatial_merge_size, E = embed_dim, dh = E / num_heads, Dt = hidden_size (the LM width).
import type { SafetensorsStore } from '../checkpoint/safetensors.js';
import { LightVLMError } from '../errors.js';
import { activation, fullAttention, layerNorm, linear, rope } from '../graph/ops.js';
import { GraphBuilder } from '../graph/proto.js';
import type { Json } from './config.js';

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
  act: string;
  theta: number;
  out: number; // merger output width (= the LM hidden size)
}

export function visionDims(vc: Json, textHidden: number): Qwen2VLVisionDims {
  // Defaults are Qwen2VLVisionConfig's.
  const E: number = vc.embed_dim ?? 1280;
  const heads: number = vc.num_heads ?? 16;
  if (typeof E !== 'number' || typeof heads !== 'number' || E % heads !== 0) {
    throw new LightVLMError(`config.json vision_config embed_dim ${E} must be divisible by num_heads ${heads}.`);
  }
  const dh = E / heads;
  if (dh % 4 !== 0) throw new LightVLMError(`Qwen2-VL vision head size ${dh} must be a multiple of 4 (2-D rotary embedding).`);
  const rope = (vc.rope_parameters ?? {}) as Json;
  return {
    C: vc.in_channels ?? vc.in_chans ?? 3,
    tp: vc.temporal_patch_size ?? 2,
    ps: vc.patch_size ?? 14,
    m: vc.spatial_merge_size ?? 2,
    E,
    heads,
    dh,
    mlp: Math.trunc(E * (vc.mlp_ratio ?? 4)),
    depth: vc.depth ?? 32,
    act: vc.hidden_act ?? 'quick_gelu',
    theta: rope.rope_theta ?? 10000,
    out: vc.hidden_size ?? textHidden,
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

/**
 * Inputs: pixel_values [n, C·tp·ps·ps], rope_cos / rope_sin [n, dh].
 * Output: features [n/m², out]. Attention is full over the n patches (one image, t = 1).
 */
export function buildQwen2VLVision(store: SafetensorsStore, vp: string, d: Qwen2VLVisionDims): Uint8Array {
  const { E, heads, dh, m } = d;
  const K = d.C * d.tp * d.ps * d.ps;
  const w = (name: string) => store.float(vp + name).data;
  const eps = 1e-6; // hard-coded in HF's blocks and merger
  const g = new GraphBuilder('qwen2vl_vision');
  const px = g.input('pixel_values', 'float32', ['n', K]);
  const cos = g.op('Unsqueeze', [g.input('rope_cos', 'float32', ['n', dh]), g.constI64([1])]); // [n,1,dh]
  const sin = g.op('Unsqueeze', [g.input('rope_sin', 'float32', ['n', dh]), g.constI64([1])]);
  // PatchEmbed: Conv3d with kernel = stride = [tp, ps, ps] and no bias over a (C, tp, ps, ps)
  // patch is a dot product with the flattened kernel [E, K].
  let h = linear(g, px, { w: w('patch_embed.proj.weight'), out: E, in: K }, 'patch'); // [n, E]
  const heads3 = g.constI64([0, heads, dh]);
  const flat = g.constI64([0, E]);
  const rot = (x: string) => g.op('Reshape', [rope(g, g.op('Reshape', [x, heads3]), cos, sin, dh), flat]); // [n, E]
  for (let l = 0; l < d.depth; l++) {
    const p = `blocks.${l}.`;
    const lin = (name: string, o: number, i: number) => ({ w: w(p + name + '.weight'), b: w(p + name + '.bias'), out: o, in: i });
    const x = layerNorm(g, h, w(p + 'norm1.weight'), w(p + 'norm1.bias'), eps);
    const qkv = linear(g, x, lin('attn.qkv', 3 * E, E)); // [n, 3E]: q | k | v, each (heads, dh)
    const [q, k, v] = g.opN('Split', [qkv, g.constI64([E, E, E])], 3, { axis: -1 });
    const att = fullAttention(g, rot(q!), rot(k!), v!, 'n', heads, dh);
    h = g.op('Add', [h, linear(g, att.out, lin('attn.proj', E, E))]);
    const y = layerNorm(g, h, w(p + 'norm2.weight'), w(p + 'norm2.bias'), eps);
    h = g.op('Add', [h, linear(g, activation(g, linear(g, y, lin('mlp.fc1', d.mlp, E)), d.act), lin('mlp.fc2', E, d.mlp))]);
  }
  // PatchMerger: ln_q per patch, then each run of m² consecutive patches (one m×m window) → one row.
  const Em = E * m * m;
  const z = g.op('Reshape', [layerNorm(g, h, w('merger.ln_q.weight'), w('merger.ln_q.bias'), eps), g.constI64([-1, Em])]); // [n/m², E·m²]
  const mw = (i: number, o: number, k: number) => ({ w: w(`merger.mlp.${i}.weight`), b: w(`merger.mlp.${i}.bias`), out: o, in: k });
  const out = linear(g, activation(g, linear(g, z, mw(0, Em, Em)), 'gelu'), mw(2, d.out, Em));
  g.output(out, 'features', 'float32', ['tokens', d.out]);
  return g.encode();
}
