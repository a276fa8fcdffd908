// Merge schedules: which LM layers reduce image tokens and the CUMULATIVE fraction of the original
// image span kept from each of them on (lightvlm-spec.md §3.1, §3.8, §6).
//
// A stage {layer: k, keep: ρ} means: layers ≥ k (0-based) see max(1, roundHalfEven(N_span·ρ))
// image tokens per span. Valid schedules satisfy 1 ≤ k_1 < … < k_S < L and 1 ≥ ρ_1 > … > ρ_S > 0
// (deviation: repeated keeps of exactly 1.0 are allowed — such a stage is the identity, which is
// what the "keep = 1.0 reproduces `none`" check runs through).

import { LightVLMError } from '../errors.js';
import { roundHalfEven } from '../util/topk.js';

export interface MergeStage {
  layer: number; // k_j, 0-based: layers >= k_j see the reduced sequence
  keep: number;  // ρ_j, cumulative fraction of the ORIGINAL span length
}

function checkLayers(L: number): void {
  if (!Number.isInteger(L) || L < 2) {
    throw new LightVLMError(`cannot build a merge schedule for a ${L}-layer LM: merging needs at least 2 layers (a stage layer k must satisfy 1 <= k < L)`, 'E_OPTION');
  }
}

function checkFraction(f: number, what = 'keep fraction'): void {
  if (!(Number.isFinite(f) && f > 0 && f <= 1)) {
    throw new LightVLMError(`${what} ${f} is invalid: it must lie in (0, 1]`, 'E_OPTION');
  }
}

/**
 * Turn raw (layer, keep) proposals into a valid schedule for an L-layer LM:
 *  1. each layer is raised to max(layer, 1, previous layer + 1) (strictly increasing, ≥ 1);
 *  2. layers above L-1 are clamped to L-1, and stages that now share a layer collapse into one
 *     that carries the SMALLEST keep (the latest stage), so the final keep is always preserved.
 * For the usual depths (L ≥ 8 for the spec default) step 1 and 2 change nothing.
 */
export function normalizeStages(proposed: MergeStage[], L: number): MergeStage[] {
  checkLayers(L);
  const out: MergeStage[] = [];
  let prev = 0;
  for (const s of proposed) {
    let layer = Math.max(s.layer, 1, prev + 1);
    prev = layer;
    if (layer > L - 1) layer = L - 1;
    const last = out[out.length - 1];
    if (last && last.layer === layer) last.keep = Math.min(last.keep, s.keep);
    else out.push({ layer, keep: s.keep });
  }
  return out;
}

/** Three stages with per-stage keep q = f^(1/3): cumulative keeps (q, q², f) — exactly f last. */
function geometricKeeps(f: number): [number, number, number] {
  const q = Math.pow(f, 1 / 3);
  return [q, q * q, f];
}

/**
 * LightVLM default (spec §3.8): stages at roundHalfEven(L/8), roundHalfEven(L/4), roundHalfEven(L/2)
 * with cumulative keeps (q, q², f), q = f^(1/3).
 * L=24 → 3/6/12, L=28 → 4/7/14, L=32 → 4/8/16, L=8 → 1/2/4. For L < 8 the raw layers collide or
 * hit 0; they are repaired by `normalizeStages` (e.g. L=4 → 1/2/3, L=3 → 1/2 with keeps q, f).
 */
export function defaultLightVLMSchedule(L: number, f: number): MergeStage[] {
  checkLayers(L);
  checkFraction(f);
  const [k1, k2, k3] = [L / 8, L / 4, L / 2].map(roundHalfEven);
  const [r1, r2, r3] = geometricKeeps(f);
  return normalizeStages([{ layer: k1, keep: r1 }, { layer: k2, keep: r2 }, { layer: k3, keep: r3 }], L);
}

/**
 * PyramidDrop generic rule (spec §6): stages at roundHalfEven(L/4), roundHalfEven(L/2),
 * roundHalfEven(3L/4); per-stage λ = f^(1/3), cumulative (λ, λ², f). L=32 → 8/16/24.
 * (The paper's own setting, λ = 0.5 at 8/16/24, is `[{8,.5},{16,.25},{24,.125}]` via parseStages.)
 */
export function pyramidDropSchedule(L: number, f: number): MergeStage[] {
  checkLayers(L);
  checkFraction(f);
  const [k1, k2, k3] = [L / 4, L / 2, (3 * L) / 4].map(roundHalfEven);
  const [r1, r2, r3] = geometricKeeps(f);
  return normalizeStages([{ layer: k1, keep: r1 }, { layer: k2, keep: r2 }, { layer: k3, keep: r3 }], L);
}

/**
 * FastV (spec §6): one stage at layer K (layers 0..K-1 see every token), keeping fraction f.
 * Argument order is (f, K) so that K can default to 2; validate against L with `validateStages`.
 */
export function fastvSchedule(f: number, K = 2): MergeStage[] {
  checkFraction(f);
  if (!Number.isInteger(K) || K < 1) {
    throw new LightVLMError(`FastV layer K=${K} is invalid: it must be an integer >= 1 (and < the LM's layer count)`, 'E_OPTION');
  }
  return [{ layer: K, keep: f }];
}

/**
 * Throws LightVLMError unless 1 <= k_1 < k_2 < ... < k_S <= L-1 (integers) and
 * 1 >= ρ_1 > ρ_2 > ... > ρ_S > 0 (repeated 1.0 allowed). An empty schedule is valid (no merging).
 */
export function validateStages(stages: readonly MergeStage[], L: number): void {
  if (!Number.isInteger(L) || L < 1) throw new LightVLMError(`invalid LM layer count ${L}`, 'E_OPTION');
  stages.forEach((s, j) => {
    const name = `merge stage ${j + 1} (${s.layer}:${s.keep})`;
    if (!Number.isInteger(s.layer) || s.layer < 1 || s.layer >= L) {
      throw new LightVLMError(`${name}: layer must be an integer in [1, ${L - 1}] for this ${L}-layer LM`, 'E_OPTION');
    }
    if (!(Number.isFinite(s.keep) && s.keep > 0 && s.keep <= 1)) {
      throw new LightVLMError(`${name}: keep must be a fraction in (0, 1] of the original image tokens`, 'E_OPTION');
    }
    if (j > 0) {
      const p = stages[j - 1];
      if (s.layer <= p.layer) {
        throw new LightVLMError(`${name}: layers must strictly increase; the previous stage is at layer ${p.layer}, so this one must be in [${p.layer + 1}, ${L - 1}]`, 'E_OPTION');
      }
      if (s.keep >= p.keep && !(s.keep === 1 && p.keep === 1)) {
        throw new LightVLMError(`${name}: keeps are cumulative and must strictly decrease; the previous stage keeps ${p.keep}, so this one must be in (0, ${p.keep})`, 'E_OPTION');
      }
    }
  });
}

/**
 * Parse "3:0.70,6:0.50,12:0.35" (layer:keep pairs, commas, optional spaces) into stages.
 * With `L` the result is also validated (validateStages).
 */
export function parseStages(text: string, L?: number): MergeStage[] {
  const parts = text.split(',').map((p) => p.trim()).filter((p) => p.length > 0);
  if (parts.length === 0) throw new LightVLMError(`empty merge schedule "${text}": expected layer:keep pairs such as "3:0.70,6:0.50,12:0.35"`, 'E_OPTION');
  const stages = parts.map((p) => {
    const m = /^(\d+)\s*:\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)$/.exec(p);
    if (!m) throw new LightVLMError(`bad merge stage "${p}" in "${text}": expected layer:keep, e.g. "3:0.70"`, 'E_OPTION');
    return { layer: Number(m[1]), keep: Number(m[2]) };
  });
  if (L !== undefined) validateStages(stages, L);
  return stages;
}

/**
 * The default rule the engine uses for `--keep f` without explicit stages (measured: docs/schedule.md).
 *
 * Take the spec §3.8 pyramid (roundHalfEven(L/8), roundHalfEven(L/4), roundHalfEven(L/2); cumulative
 * keeps (q, q², f), q = f^(1/3)) and, when its first stage would score at layer 0 (k_1 < 2), SHIFT
 * THE WHOLE PYRAMID up by d = 2 − k_1 so that k_1 = 2 and the stage spacing is kept. Reason: the
 * layer-0 attention of the last prompt token ranks image tokens mostly by position (it favours the
 * bottom rows, nearest the question) and throws the object tokens away; layers ≥ 1 rank them well.
 * Measured on synth-llava (L = 8): 1/2/4 → 2/3/5, which beats random (same stages), FastV (K=2) and
 * PyramidDrop at keep 0.35, 0.10 and 0.03, while 2/3/4 (first stage moved alone) loses at 0.03.
 *
 * Results: L=8 → 2/3/5, L=10 → 2/3/6, L≤7 shifted then repaired by `normalizeStages`
 * (L=4 → 2/3, L=3 → 2, L=2 → 1). For L ≥ 12, roundHalfEven(L/8) ≥ 2 and the rule IS the spec
 * default: L=12 → 2/3/6, 16 → 2/4/8, 24 → 3/6/12, 28 → 4/7/14, 32 → 4/8/16.
 * `defaultLightVLMSchedule` stays the spec reference; pass it (or any schedule) via explicit stages.
 */
export function chooseDefaultSchedule(L: number, f: number): MergeStage[] {
  checkLayers(L);
  checkFraction(f);
  const raw = [L / 8, L / 4, L / 2].map(roundHalfEven);
  const shift = Math.max(0, Math.min(2, L - 1) - raw[0]!);
  const [k1, k2, k3] = raw.map((k) => k + shift);
  const [r1, r2, r3] = geometricKeeps(f);
  return normalizeStages([{ layer: k1!, keep: r1 }, { layer: k2!, keep: r2 }, { layer: k3!, keep: r3 }], L);
}
