// The vision_config fields of config.json that each family reads, with HF's names. Declared so a
// misspelt field fails to compile; the values are still JSON from disk, so the families check the
// ones whose shape matters (numbers that must divide, pairs) where they read them.

/** LLaVA's CLIP tower (transformers CLIPVisionConfig). */
export interface ClipVisionConfig {
  model_type?: string;        // 'clip_vision_model'
  hidden_size: number;
  num_attention_heads: number;
  num_hidden_layers: number;
  image_size: number;
  patch_size: number;
  intermediate_size: number;  // MLP width (checked against the fc1/fc2 weights)
  num_channels?: number;      // default 3 (RGB)
  hidden_act?: string;        // default 'quick_gelu'
  layer_norm_eps?: number;    // default 1e-5
}

/** InternVL's InternViT tower (transformers InternVLVisionConfig). */
export interface InternVisionConfig {
  model_type?: string;        // 'internvl_vision'
  hidden_size: number;
  num_attention_heads: number;
  num_hidden_layers: number;
  image_size?: number | number[];   // default 448, or [height, width]
  patch_size?: number | number[];   // default 14, or [height, width]
  hidden_act?: string;              // default 'gelu'
  layer_norm_eps?: number;          // default 1e-6
  norm_type?: 'layer_norm' | 'rms_norm';
  use_qk_norm?: boolean;
  use_mask_token?: boolean;
  use_mean_pooling?: boolean;       // default true
  use_absolute_position_embeddings?: boolean; // default true
  intermediate_size: number;        // MLP width (checked against the fc1/fc2 weights)
  attention_bias?: boolean;         // default false: q/k/v without bias
}

/** Qwen2-VL's tower (transformers Qwen2VLVisionConfig; defaults are its). */
export interface Qwen2VLVisionConfig {
  model_type?: string;        // 'qwen2_vl_vision' (or 'qwen2_vl' in older exports)
  embed_dim?: number;         // 1280
  num_heads?: number;         // 16
  depth?: number;             // 32
  mlp_ratio?: number;         // 4
  hidden_size?: number;       // merger output width; default the LM hidden size
  hidden_act?: string;        // 'quick_gelu'
  in_channels?: number;       // 3 (older exports: in_chans)
  in_chans?: number;
  patch_size?: number;        // 14
  temporal_patch_size?: number; // 2
  spatial_merge_size?: number;  // 2
  rope_parameters?: { rope_theta?: number };
}
