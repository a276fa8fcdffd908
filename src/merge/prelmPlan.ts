// Applies a pre-LM reduction (FasterVLM, VisionZip, Fourier) to a prompt: the image spans shrink
// before the LM, so every LM layer sees the reduced tokens. Positions (1-D RoPE models):
// 'renumber' (default, spec §6) gives the shorter prompt contiguous ids, as LLaVA-style pipelines
// do; 'original' keeps each kept row's original position id, as in-LM merging does. On synth-llava
// the convention decides the result (docs/schedule.md, "Pre-LM methods"). M-RoPE models always
// keep the original (t, h, w) ids of the kept tokens. A new pre-LM method is its
// selection (merge/prelm.ts or its own file) plus one entry in PRE_LM.
import { LightVLMError } from '../errors.js';
import type { Grid, LmPrompt, Span } from '../processing/lmPrompt.js';
import { fastervlmSelect, fourierLowPass, preLMTarget, splitVisionZipBudget, visionzipSelect } from './prelm.js';

interface Reduced {
  features: Float32Array; // [n', D]
  origIndex: Int32Array;  // [n'] index inside the span whose position id the row takes
}

/** Reduces one image span: features [N, D] (+ [CLS] attention [N], LM-token grids) → kept rows. */
type SpanReducer = (features: Float32Array, clsAttn: Float32Array | undefined, grids: Grid[], D: number) => Reduced;

function needCls(clsAttn: Float32Array | undefined, method: string): Float32Array {
  if (!clsAttn) throw new LightVLMError(`${method} ranks image tokens by the vision tower's [CLS] attention, which this model family does not have. Use lightvlm, fastv, pdrop, random or fourier.`, 'E_UNSUPPORTED');
  return clsAttn;
}

const rowsOf = (features: Float32Array, D: number, idx: Int32Array) => {
  const out = new Float32Array(idx.length * D);
  idx.forEach((i, j) => out.set(features.subarray(i * D, (i + 1) * D), j * D));
  return out;
};

/** The pre-LM methods: keep fraction → span reducer. */
export const PRE_LM = {
  fastervlm: (keep: number): SpanReducer => (features, clsAttn, _g, D) => {
    const idx = fastervlmSelect(needCls(clsAttn, 'fastervlm'), keep);
    return { features: rowsOf(features, D, idx), origIndex: idx };
  },
  visionzip: (keep: number): SpanReducer => (features, clsAttn, _g, D) => {
    const cls = needCls(clsAttn, 'visionzip');
    const { nDominant, nContext } = splitVisionZipBudget(preLMTarget(cls.length, keep));
    const r = visionzipSelect(cls, features, D, nDominant, nContext);
    const feats = new Float32Array((r.dominant.length + r.contextualTargets.length) * D);
    feats.set(rowsOf(features, D, r.dominant));
    feats.set(r.contextual, r.dominant.length * D);
    return { features: feats, origIndex: Int32Array.from([...r.dominant, ...r.contextualTargets]) };
  },
  fourier: (keep: number): SpanReducer => (features, _c, grids, D) => {
    // each grid part (InternVL tile, or the one LLaVA grid) is low-passed on its own
    const parts: Float32Array[] = [];
    const idx: number[] = [];
    let off = 0;
    for (const g of grids) {
      const n = g.h * g.w;
      const r = fourierLowPass(features.subarray(off * D, (off + n) * D), g.h, g.w, D, keep);
      parts.push(r.features);
      // position of a low-passed cell: the original cell at the same relative place
      for (let y = 0; y < r.gh; y++) for (let x = 0; x < r.gw; x++) idx.push(off + Math.floor(((y + 0.5) * g.h) / r.gh) * g.w + Math.floor(((x + 0.5) * g.w) / r.gw));
      off += n;
    }
    const feats = new Float32Array(idx.length * D);
    let o = 0;
    for (const p of parts) (feats.set(p, o), (o += p.length));
    return { features: feats, origIndex: Int32Array.from(idx) };
  },
} satisfies Record<string, (keep: number) => SpanReducer>;

export type PreLmMethod = keyof typeof PRE_LM;

/** Position ids of the kept image rows on 1-D RoPE models (PrefillAcceleration.positions). */
export const PRE_LM_POSITIONS = ['renumber', 'original'] as const;
export type PreLmPositions = (typeof PRE_LM_POSITIONS)[number];

export function preLmReducer(method: PreLmMethod, keep: number, positions: PreLmPositions = 'renumber'): (prompt: LmPrompt) => LmPrompt {
  const reduce = PRE_LM[method](keep);
  return (prompt) => {
    const D = prompt.features.length / prompt.spans.reduce((a, s) => a + s.length, 0);
    if (prompt.spans.length !== 1) throw new LightVLMError(`${method} supports one image per prompt.`, 'E_UNSUPPORTED');
    const span = prompt.spans[0]!;
    const r = reduce(prompt.features, prompt.clsAttn, prompt.grids, D);
    const n = r.origIndex.length;
    const imageId = prompt.ids[span.start]!;
    const ids = [...prompt.ids.slice(0, span.start), ...new Array<number>(n).fill(imageId), ...prompt.ids.slice(span.start + span.length)];
    const oldIdx = [...Array(span.start).keys(), ...Array.from(r.origIndex, (i) => span.start + i), ...Array.from({ length: prompt.ids.length - span.start - span.length }, (_, i) => span.start + span.length + i)];
    const pos =
      prompt.pos.length === 1 && positions === 'renumber'
        ? [Int32Array.from(ids, (_, i) => i)]
        : prompt.pos.map((row) => Int32Array.from(oldIdx, (i) => row[i]!));
    const spans: Span[] = [{ start: span.start, length: n, origLength: n }];
    return { ...prompt, ids, features: r.features, pos, spans };
  };
}
