// Full-sequence forward pass for verification against transformers: logits at every prompt
// position and the last token's hidden state after the embeddings and after each layer.
// Runs each layer as its own range, so it also exercises the stage split.
import { LayerCache } from '../kvcache/cache.js';
import { embedPrompt, type LmPrompt } from '../processing/lmPrompt.js';
import type { LmContext } from './step.js';
import { ropeTables } from './rope.js';

export async function forwardAll(ctx: LmContext, prompt: LmPrompt, perLayer = true): Promise<{ logits: Float32Array; hiddenLast: Float32Array[] }> {
  const dec = ctx.decoder;
  const { layers: L, hidden: D, kvHeads: Hkv, headDim: dh } = dec.cfg;
  const T = prompt.ids.length;
  let h = embedPrompt(prompt, ctx.embedding, D).hidden;
  const caches = Array.from({ length: L }, () => new LayerCache(Hkv * dh, T));
  const orig = Int32Array.from({ length: T }, (_, i) => i);
  const { cos, sin } = ropeTables(prompt.pos, dh, ctx.ropeTheta, ctx.mropeSection);
  const hiddenLast = [h.slice((T - 1) * D)];
  if (perLayer) {
    await dec.ensureBoundaries(Array.from({ length: L }, (_, l) => l));
    for (let l = 0; l < L; l++) {
      h = (await dec.run(l, l + 1, h, cos, sin, caches, orig)).hidden;
      hiddenLast.push(h.slice((T - 1) * D));
    }
  } else {
    h = (await dec.run(0, L, h, cos, sin, caches, orig)).hidden;
  }
  const { logits, normed } = await dec.logits(h, T);
  hiddenLast.push(normed.slice((T - 1) * D));
  return { logits, hiddenLast };
}
