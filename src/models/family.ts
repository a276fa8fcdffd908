// What a model family (one module per HF `model_type`) provides to the shared engine.
import type { GraphOptions } from '../graph/proto.js';
import type { FeedValue } from '../runtime/ort.js';
import type { RgbImage } from '../processing/image.js';
import type { TextConfig } from './config.js';
import type { LanguageModelWeights } from './llm.js';
import type { VitSupport } from './vit.js';

/** Preprocessed pixels, as the HF image processor returns them. */
export interface ImageInputs {
  pixelValues: Float32Array;
  dims: number[];                     // e.g. [1,3,H,W], [tiles,3,H,W], [patches, C·tp·ps·ps]
  gridThw?: [number, number, number]; // Qwen2-VL
  numTiles?: number;                  // InternVL
}

export interface Family {
  readonly modelType: string;
  readonly text: TextConfig;
  readonly lm: LanguageModelWeights;
  readonly imageTokenId: number;
  readonly visionParams: number;
  preprocess(img: RgbImage): ImageInputs;
  /** The rendered chat prompt with the image placeholder expanded into its image tokens. */
  expandPrompt(rendered: string, inputs: ImageInputs): string;
  /** Image tokens the LM sees for these inputs. */
  imageTokens(inputs: ImageInputs): number;
  /** LM-token grid of each image part (tiles for InternVL), row-major in the LM sequence. */
  tokenGrids(inputs: ImageInputs): { h: number; w: number }[];
  /** Vision tower + projector graph: outputs `features` [N, D_text], optionally `cls_attn` [N]. */
  buildVision(opts?: GraphOptions): Uint8Array;
  visionFeeds(inputs: ImageInputs): Record<string, FeedValue>;
  /** Vision-side token merging (vitMerge): the tower as segments and each image part's layout. */
  readonly vit?: VitSupport<ImageInputs>;
  /** Position ids [rows, T] for the prompt: 1 row (1-D RoPE) or 3 rows (M-RoPE t, h, w). */
  positionIds(ids: number[], inputs: ImageInputs): Int32Array[];
}
