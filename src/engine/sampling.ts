// Next-token choice over one row of logits, in transformers' order: min-new-tokens EOS suppression,
// then temperature, top-k, top-p, then a draw from the softmax (or argmax when greedy). Pure.

export interface SamplingOptions {
  temperature?: number; // 0 / undefined: greedy
  topK?: number;
  topP?: number;
}

export function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** Picks the next token id. `suppress` ids (EOS before minNewTokens) get −∞. `rng` returns [0, 1). */
export function chooseToken(logits: Float32Array, opts: SamplingOptions, suppress: number[], rng: () => number): number {
  const x = Float32Array.from(logits);
  for (const id of suppress) if (id < x.length) x[id] = -Infinity;
  const t = opts.temperature ?? 0;
  if (!(t > 0)) return argmax(x);
  // candidates sorted by logit, descending (ties: lower id first)
  let idx = Array.from(x.keys()).filter((i) => x[i] !== -Infinity);
  idx.sort((a, b) => x[b]! - x[a]! || a - b);
  if (opts.topK && opts.topK > 0) idx = idx.slice(0, opts.topK);
  const m = x[idx[0]!]! / t;
  let p = idx.map((i) => Math.exp(x[i]! / t - m));
  let z = p.reduce((a, b) => a + b, 0);
  p = p.map((v) => v / z);
  if (opts.topP !== undefined && opts.topP < 1) {
    // keep the smallest prefix whose mass reaches top_p (HF removes tokens with cumulative mass ≤ 1 − top_p from the low end)
    let cum = 0;
    let n = 0;
    while (n < p.length && cum < opts.topP) cum += p[n++]!;
    idx = idx.slice(0, Math.max(1, n));
    p = p.slice(0, idx.length);
    z = p.reduce((a, b) => a + b, 0);
    p = p.map((v) => v / z);
  }
  let r = rng();
  for (let i = 0; i < idx.length; i++) {
    r -= p[i]!;
    if (r < 0) return idx[i]!;
  }
  return idx[idx.length - 1]!;
}
