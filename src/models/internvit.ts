// InternViT (`internvl_vision`) + InternVL pixel shuffle + projector as one ONNX graph, matching
// transformers' InternVLVisionModel / InternVLModel.get_image_features. All tiles of one image go
// through together: pixel_values [tiles, 3, H, W] with a dynamic tile dimension. The blocks are
// vit.ts's; this file maps the InternViT weight names to them and adds embedding and head.
import type { SafetensorsStore } from '../checkpoint/safetensors.js';
import { activation, layerNorm, linear, readActivation, type Activation } from '../graph/ops.js';
import { readBlock, type BlockNames, type VitDims, type VitTower } from './vit.js';
import type { InternVisionConfig } from './visionConfig.js';

export interface InternVitSpec {
  vc: InternVisionConfig;   // vision_config
  vp: string;               // vision tower weight prefix, e.g. 'vision_tower.'
  pp: string;               // projector weight prefix, e.g. 'multi_modal_projector.'
  tileH: number;
  tileW: number;
  runLayers: number;        // encoder layers to run (hidden_states[runLayers] is the feature layer)
  finalNorm: boolean;       // apply vision_tower.layernorm (feature layer −1 with use_mean_pooling false)
  shuffle: number;          // k = 1 / downsample_ratio (integer)
  projectorAct: Activation;
  textHidden: number;
}

/** InternViT encoder layer weights → block slots (qk-norm and layer scale included). */
const INTERNVIT_BLOCK: BlockNames = {
  block: (l) => `encoder.layer.${l}.`,
  norm1: 'layernorm_before',
  norm2: 'layernorm_after',
  qkv: ['attention.q_proj', 'attention.k_proj', 'attention.v_proj'],
  qNorm: 'attention.q_norm',
  kNorm: 'attention.k_norm',
  o: 'attention.projection_layer',
  fc1: 'mlp.fc1',
  fc2: 'mlp.fc2',
  ls1: 'lambda_1',
  ls2: 'lambda_2',
};

export function internVitTower(store: SafetensorsStore, s: InternVitSpec): VitTower {
  const { vc, vp, pp, tileH, tileW, shuffle: k } = s;
  const w = (n: string) => store.float(vp + n).data;
  const opt = (n: string) => (store.has(vp + n) ? w(n) : undefined);
  const D: number = vc.hidden_size;
  const eps: number = vc.layer_norm_eps ?? 1e-6;
  const dims: VitDims = { D, heads: vc.num_attention_heads, dh: D / vc.num_attention_heads, act: readActivation(vc.hidden_act ?? 'gelu', 'vision_config.hidden_act'), eps, qkNormEps: 1e-6 };
  // the same default as internvl.ts reads the patch size with (InternVLVisionConfig: 14)
  const patch = vc.patch_size ?? 14;
  const [ph, pw] = (Array.isArray(patch) ? patch : [patch, patch]) as [number, number];
  const gh = tileH / ph;
  const gw = tileW / pw;
  const P = gh * gw; // patches per tile
  const n = P + 1; // + [CLS]
  const normType = (vc.norm_type ?? 'layer_norm') === 'rms_norm' ? 'rms' : 'layer';
  const Dk = D * k * k;
  return {
    name: 'internvit',
    dims,
    // qk-norm: InternVLVisionRMSNorm(embed_dim) over all heads at once, default eps 1e-6
    blocks: Array.from({ length: s.runLayers }, (_, l) => readBlock(store, vp, { ...INTERNVIT_BLOCK, ...(vc.use_qk_norm ? {} : { qNorm: undefined, kNorm: undefined }) }, l, normType)),
    tokens: n,
    embed(g) {
      // pixel_values [B, 3, H, W]: B tiles (the engine feeds one at a time); h is [B·n, D]
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
      if (vc.use_absolute_position_embeddings ?? true) h = g.op('Add', [h, g.weight('pos', [1, n, D], w('embeddings.position_embeddings'))]);
      return g.op('Reshape', [h, g.constI64([-1, D])]); // [B·n, D]
    },
    head(g, h, _probs, _n, rows) {
      if (s.finalNorm) h = layerNorm(g, h, w('layernorm.weight'), w('layernorm.bias'), eps);
      let ps: string;
      if (rows) {
        // one tile; rows lists its patch rows already in pixel-shuffle order (k² per LM token)
        ps = g.op('Reshape', [g.op('Gather', [h, rows], { axis: 0 }), g.constI64([-1, Dk])]);
      } else {
        // Drop [CLS]: [B·n, D] → [B, n, D] → [B, P, D]
        const feats = g.op('Slice', [g.op('Reshape', [h, g.constI64([-1, n, D])]), g.constI64([1]), g.constI64([n]), g.constI64([1])]);
        // InternVLModel.pixel_shuffle on [B, W=gh, H=gw, C=D] (HF names the first spatial axis "width"):
        //   view [B, W, H/k, C·k] → permute(0,2,1,3) → view [B, H/k, W/k, C·k²] → permute(0,2,1,3)
        ps = g.op('Reshape', [feats, g.constI64([-1, gh, gw / k, D * k])]);
        ps = g.op('Transpose', [ps], { perm: [0, 2, 1, 3] }); // [B, gw/k, gh, D·k]
        ps = g.op('Reshape', [ps, g.constI64([-1, gw / k, gh / k, Dk])]);
        ps = g.op('Transpose', [ps], { perm: [0, 2, 1, 3] }); // [B, gh/k, gw/k, D·k²]
        ps = g.op('Reshape', [ps, g.constI64([-1, Dk])]); // [B·tokens, D·k²]
      }
      // multi_modal_projector: LayerNorm (nn.LayerNorm default eps 1e-5) → linear_1 → act → linear_2
      const pwt = (nm: string) => store.float(pp + nm).data;
      const Dt = s.textHidden;
      let z = layerNorm(g, ps, pwt('layer_norm.weight'), pwt('layer_norm.bias'), 1e-5);
      z = linear(g, z, { w: pwt('linear_1.weight'), b: pwt('linear_1.bias'), out: Dt, in: Dk, key: pp + 'linear_1' });
      z = linear(g, activation(g, z, s.projectorAct), { w: pwt('linear_2.weight'), b: pwt('linear_2.bias'), out: Dt, in: Dt, key: pp + 'linear_2' });
      g.output(z, 'features', 'float32', ['image_tokens', Dt]);
    },
  };
}

/**
 * Patch rows (of the [CLS]-first token list) in pixel-shuffle order: LM token (R, C) of the
 * (gh/k)×(gw/k) grid reads patches (R·k + dr, C·k + dc), dr, dc < k, row-major, as HF's
 * pixel_shuffle concatenates them. Entry t·k² + dr·k + dc = 1 + (R·k + dr)·gw + C·k + dc.
 */
export function pixelShuffleRows(gh: number, gw: number, k: number): Int32Array {
  const out = new Int32Array(gh * gw);
  let i = 0;
  for (let R = 0; R < gh / k; R++) for (let C = 0; C < gw / k; C++) for (let dr = 0; dr < k; dr++) for (let dc = 0; dc < k; dc++) out[i++] = 1 + (R * k + dr) * gw + C * k + dc;
  return out;
}
