// Public option and result types of the engine. Everything the CLI, eval and bench pass in or read out.
import type { VitMergeOptions } from '../vitmerge/policy.js';
import type { VitTrace } from '../vitmerge/tower.js';

import type { DecodeAcceleration, KvMethod } from '../kvcache/registry.js';
import type { PrefillAcceleration, PrefillMethod } from '../merge/plan.js';
import type { PreLmPositions } from '../merge/prelmPlan.js';
import type { MergeMode, ScoreRule } from '../merge/types.js';

// The option types are declared by the policies that read them (merge/plan.ts, kvcache/registry.ts).
export type { DecodeAcceleration, KvMethod, MergeMode, PrefillAcceleration, PrefillMethod, PreLmPositions, ScoreRule };

export interface Acceleration {
  prefill?: PrefillAcceleration;
  decode?: DecodeAcceleration;
  /** Token merging inside the vision tower (spec §3.9); missing fields take DEFAULT_VIT_MERGE's. */
  vitMerge?: Partial<VitMergeOptions>;
}

export interface GenerateOptions {
  maxNewTokens?: number;              // default 64
  minNewTokens?: number;              // EOS suppressed until this many tokens (transformers' min_new_tokens)
  temperature?: number;               // 0 or undefined: greedy
  topK?: number;
  topP?: number;
  seed?: number;
  stopStrings?: string[];
  acceleration?: Acceleration;
  /** Cancels the generation: the sequence leaves the batch and its cache is freed at the next step. */
  signal?: AbortSignal;
}

export interface GenerateStats {
  promptTokens: number;               // T, before any reduction
  imageTokens: number;                // N
  keptImageTokens: number;            // image tokens left after the last prefill stage
  imageTokensPerLayer: number[];      // image tokens each LM layer processed in prefill
  visionMs: number;                   // image preprocessing + vision tower + projector
  prefillMs: number;                  // LM prefill (all stages, merges, LM head of the last token)
  ttftMs: number;                     // vision + prefill: time to the first generated token
  decodeTokens: number;
  decodeMs: number;
  decodeTokensPerSecond: number;
  totalMs: number;
  peakRssMb: number;
  cacheEntriesPerLayer: number[];     // KV entries per layer at the end
  cacheBytes: number;                 // bytes held by the KV cache at the end
  visionTokensPerLayer?: number[];    // tokens each vision block processed (all tiles), vitMerge or not
}

export interface GenerateResult {
  text: string;
  tokenIds: number[];
  stats: GenerateStats;
  /** Image tokens (0-based, in image-token order) kept from each merge layer on: what --explain draws. */
  kept: { layer: number; imageIndices: number[] }[];
  /** LM-token grid of each image part (one for LLaVA/Qwen2-VL; one per tile for InternVL), in token order. */
  grids: { h: number; w: number }[];
  /** What vitMerge did in the vision tower (absent without vitMerge). */
  vision?: VitTrace;
}

/** An image after preprocessing and the vision tower: reusable across questions and methods. */
export interface PreparedImage {
  readonly kind: 'prepared-image';
  readonly imageTokens: number;       // LM image tokens this image expands to
  readonly visionMs: number;          // time spent decoding, preprocessing and encoding it
}

export interface VLMInput {
  image: string | Uint8Array | PreparedImage; // file path, encoded bytes, or prepareImage()'s result
  prompt: string;                              // the user's question (the chat template is applied)
}

/** Streaming: an async iterator of text pieces; `result` resolves when generation ends. */
export interface TextStream extends AsyncIterable<string> {
  readonly result: Promise<GenerateResult>;
}

export interface ModelInfo {
  modelType: string;                  // llava | internvl | qwen2_vl
  layers: number;                     // LM decoder layers L
  hiddenSize: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  maxPositions: number;
  lmParams: number;                   // LM parameters (for GFLOP estimates)
  visionParams: number;
  dtype?: 'fp32' | 'q8' | 'q4';      // Linear weights (LoadOptions.dtype); absent = fp32
}

export interface VLM {
  readonly info: ModelInfo;
  /** Decodes, preprocesses and encodes an image once; `vitMerge` as in Acceleration. */
  prepareImage(image: string | Uint8Array, opts?: { vitMerge?: Partial<VitMergeOptions> }): Promise<PreparedImage>;
  generate(input: VLMInput, opts?: GenerateOptions): Promise<GenerateResult>;
  stream(input: VLMInput, opts?: GenerateOptions): TextStream;
  dispose(): Promise<void>;
}
