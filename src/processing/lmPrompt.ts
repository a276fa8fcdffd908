// The prompt as the language model receives it: token ids with the image features to splice in at
// the image spans, and position ids. Built by the engine (Engine.buildPrompt), read by the prefill
// plans (a pre-LM reducer maps one LmPrompt to a shorter one) and by generation. Declared here, below
// both engine/ and merge/, so that neither imports the other for it.

import type { EmbeddingTable } from '../checkpoint/embedding.js';

/** A run of image tokens in the CURRENT sequence. */
export interface Span {
  start: number;      // first row of the span in the current sequence
  length: number;     // rows of the span now
  origLength: number; // rows of the span before any reduction
}

/** LM-token grid of one image part (one for LLaVA/Qwen2-VL, one per tile for InternVL). */
export interface Grid {
  h: number;
  w: number;
}

/** A prompt ready for the LM: token ids with image features spliced in at `spans`. */
export interface LmPrompt {
  ids: number[];                 // [T] with image tokens expanded
  features: Float32Array;        // [N, D] image embeddings, in span order
  clsAttn?: Float32Array;        // [N] vision [CLS] attention (pre-LM methods)
  grids: Grid[];
  pos: Int32Array[];             // position-id rows (1, or 3 for M-RoPE), each [T]
  spans: Span[];
  visionMs: number;
}

/** Finds the contiguous runs of `imageTokenId` in the prompt. */
export function findSpans(ids: ArrayLike<number>, imageTokenId: number): Span[] {
  const spans: Span[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] !== imageTokenId) continue;
    let j = i;
    while (j < ids.length && ids[j] === imageTokenId) j++;
    spans.push({ start: i, length: j - i, origLength: j - i });
    i = j - 1;
  }
  return spans;
}

/**
 * The one embedding splice: text rows from the embedding table [V, D], image rows from the
 * features in span order. Returns hidden [T, D] and isImage [T] (1 on image rows).
 */
export function embedPrompt(prompt: Pick<LmPrompt, 'ids' | 'features' | 'spans'>, embedding: EmbeddingTable, D: number): { hidden: Float32Array; isImage: Uint8Array } {
  const T = prompt.ids.length;
  const hidden = new Float32Array(T * D);
  const isImage = new Uint8Array(T);
  for (const s of prompt.spans) isImage.fill(1, s.start, s.start + s.length);
  const textAt: number[] = [];
  for (let i = 0, f = 0; i < T; i++) {
    if (isImage[i]) hidden.set(prompt.features.subarray(f * D, ++f * D), i * D);
    else textAt.push(i);
  }
  // text rows in one pass over the table (one file open for a file-backed table)
  const rows = embedding.rows(textAt.map((i) => prompt.ids[i]!));
  textAt.forEach((i, j) => hidden.set(rows.subarray(j * D, (j + 1) * D), i * D));
  return { hidden, isImage };
}
