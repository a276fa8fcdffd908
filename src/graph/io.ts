// Input and output names of the decoder graphs (decoderStage.ts, batchDecode.ts), shared with the
// engine code that feeds and fetches them (engine/decoder.ts, engine/batchDecoder.ts).
export const IO = {
  hidden: 'hidden',          // in:  residual stream entering the first layer
  cos: 'cos',                // in:  RoPE tables per row
  sin: 'sin',
  scoreFrom: 'score_from',   // in:  first query row summed into score.l
  hiddenOut: 'hidden_out',   // out: residual stream leaving the last layer
  normed: 'normed',          // out (LM head graph): final-normed rows
  logits: 'logits',          // out (LM head graph)
  pastKey: (l: number) => `past_key.${l}`,    // in:  cached keys of layer l
  pastValue: (l: number) => `past_value.${l}`,
  newKey: (l: number) => `new_key.${l}`,      // out: the new rows' keys of layer l
  newValue: (l: number) => `new_value.${l}`,
  score: (l: number) => `score.${l}`,         // out: summed head-mean attention per cache row
  attnLast: (l: number) => `attn_last.${l}`,  // out: the last query's head-mean attention
  mask: (l: number) => `mask.${l}`,           // in (batched decode): additive key mask of layer l
} as const;
