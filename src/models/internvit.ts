// InternViT (`internvl_vision`) + InternVL pixel shuffle + projector as one ONNX graph, matching
// transformers' InternVLVisionModel / InternVLModel.get_image_features. All tiles of one image go
// through together: pixel_values [tiles, 3, H, W] with a dynamic tile dimension.
import type { SafetensorsStore } from '../checkpoint/safetensors.js';
import { activation, fullAttention, layerNorm, linear, rmsNorm, type LinearW } from '../graph/ops.js';
import { GraphBuilder } from '../graph/proto.js';
import type { Json } from './config.js';

export interface InternVitSpec {
  vc: Json;                 // vision_config
  vp: string;               // vision tower weight prefix, e.g. 'vision_tower.'
  pp: string;               // projector weight prefix, e.g. 'multi_modal_projector.'
  tileH: number;
  tileW: number;
  runLayers: number;        // encoder layers to run (hidden_states[runLayers] is the feature layer)
  finalNorm: boolean;       // apply vision_tower.layernorm (feature layer −1 with use_mean_pooling false)
  shuffle: number;          // k = 1 / downsample_ratio (integer)
  projectorAct: string;
  textHidden: number;
}

export function buildInternVit(store: SafetensorsStore, s: InternVitSpec): Uint8Array {
  const { vc, vp, pp, tileH, tileW, shuffle: k } = s;
  const w = (n: string) => store.float(vp + n).data;
  const opt = (n: string) => (store.has(vp + n) ? w(n) : undefined);
  const D: number = vc.hidden_size;
  const heads: number = vc.num_attention_heads;
  const dh = D / heads;
  const inter: number = vc.intermediate_size;
  const eps: number = vc.layer_norm_eps ?? 1e-6;
  const [ph, pw] = Array.isArray(vc.patch_size) ? vc.patch_size : [vc.patch_size, vc.patch_size];
  const gh = tileH / ph;
  const gw = tileW / pw;
  const P = gh * gw; // patches per tile
  const n = P + 1; // + [CLS]
  const g = new GraphBuilder('internvit');

  const px = g.input('pixel_values', 'float32', ['tiles', 3, tileH, tileW]);
  const convB = opt('embeddings.patch_embeddings.projection.bias');
  const convIn = [px, g.weight('patch', [D, 3, ph, pw], w('embeddings.patch_embeddings.projection.weight'))];
  if (convB) convIn.push(g.weight('patch_b', [D], convB));
  const conv = g.op('Conv', convIn, { strides: [ph, pw] }); // [B, D, gh, gw]
  const patches = g.op('Transpose', [g.op('Reshape', [conv, g.constI64([0, D, P])])], { perm: [0, 2, 1] }); // [B, P, D]
  // cls_token [1,1,D] broadcast to [B,1,D]
  const bDim = g.op('Slice', [g.op('Shape', [px]), g.constI64([0]), g.constI64([1])]); // [1] = B
  const clsShape = g.op('Concat', [bDim, g.constI64([1, D])], { axis: 0 });
  const cls = g.op('Expand', [g.weight('cls', [1, 1, D], w('embeddings.cls_token')), clsShape]); // [B,1,D]
  let h = g.op('Concat', [cls, patches], { axis: 1 }); // [B, n, D]
  if (vc.use_absolute_position_embeddings ?? true) {
    h = g.op('Add', [h, g.weight('pos', [1, n, D], w('embeddings.position_embeddings'))]);
  }
  h = g.op('Reshape', [h, g.constI64([-1, D])]); // [B·n, D]

  const rmsType = (vc.norm_type ?? 'layer_norm') === 'rms_norm';
  const norm = (x: string, name: string) => (rmsType ? rmsNorm(g, x, w(name + '.weight'), eps) : layerNorm(g, x, w(name + '.weight'), w(name + '.bias'), eps));
  const lin = (name: string, o: number, i: number): LinearW => {
    const b = opt(name + '.bias');
    return { w: w(name + '.weight'), out: o, in: i, ...(b ? { b } : {}) };
  };
  for (let l = 0; l < s.runLayers; l++) {
    const p = `encoder.layer.${l}.`;
    const x = norm(h, p + 'layernorm_before'); // [B·n, D]
    let q = linear(g, x, lin(p + 'attention.q_proj', D, D));
    let kk = linear(g, x, lin(p + 'attention.k_proj', D, D));
    const v = linear(g, x, lin(p + 'attention.v_proj', D, D));
    if (vc.use_qk_norm) {
      // InternVLVisionRMSNorm(embed_dim) over all heads at once, default eps 1e-6
      q = rmsNorm(g, q, w(p + 'attention.q_norm.weight'), 1e-6);
      kk = rmsNorm(g, kk, w(p + 'attention.k_norm.weight'), 1e-6);
    }
    const att = fullAttention(g, q, kk, v, n, heads, dh).out; // [B·n, D]
    const o = linear(g, att, lin(p + 'attention.projection_layer', D, D));
    h = g.op('Add', [h, g.op('Mul', [o, g.weight('lambda1', [D], w(p + 'lambda_1'))])]);
    const y = norm(h, p + 'layernorm_after');
    const m = linear(g, activation(g, linear(g, y, lin(p + 'mlp.fc1', inter, D)), vc.hidden_act ?? 'gelu'), lin(p + 'mlp.fc2', D, inter));
    h = g.op('Add', [h, g.op('Mul', [m, g.weight('lambda2', [D], w(p + 'lambda_2'))])]);
  }
  if (s.finalNorm) h = layerNorm(g, h, w('layernorm.weight'), w('layernorm.bias'), eps);

  // Drop [CLS]: [B·n, D] → [B, n, D] → [B, P, D]
  const feats = g.op('Slice', [g.op('Reshape', [h, g.constI64([-1, n, D])]), g.constI64([1]), g.constI64([n]), g.constI64([1])]);
  // InternVLModel.pixel_shuffle on [B, W=gh, H=gw, C=D] (HF names the first spatial axis "width"):
  //   view [B, W, H/k, C·k] → permute(0,2,1,3) → view [B, H/k, W/k, C·k²] → permute(0,2,1,3)
  let ps = g.op('Reshape', [feats, g.constI64([-1, gh, gw / k, D * k])]);
  ps = g.op('Transpose', [ps], { perm: [0, 2, 1, 3] }); // [B, gw/k, gh, D·k]
  ps = g.op('Reshape', [ps, g.constI64([-1, gw / k, gh / k, D * k * k])]);
  ps = g.op('Transpose', [ps], { perm: [0, 2, 1, 3] }); // [B, gh/k, gw/k, D·k²]
  const Dk = D * k * k;
  ps = g.op('Reshape', [ps, g.constI64([-1, Dk])]); // [B·tokens, D·k²]

  // multi_modal_projector: LayerNorm (nn.LayerNorm default eps 1e-5) → linear_1 → act → linear_2
  const pwt = (nm: string) => store.float(pp + nm).data;
  const Dt = s.textHidden;
  let z = layerNorm(g, ps, pwt('layer_norm.weight'), pwt('layer_norm.bias'), 1e-5);
  z = linear(g, z, { w: pwt('linear_1.weight'), b: pwt('linear_1.bias'), out: Dt, in: Dk });
  z = linear(g, activation(g, z, s.projectorAct), { w: pwt('linear_2.weight'), b: pwt('linear_2.bias'), out: Dt, in: Dt });
  g.output(z, 'features', 'float32', ['image_tokens', Dt]);
  return g.encode();
}
