// Token merging inside the vision tower (lightvlm-spec.md §3.9, iLLaVA): pure decisions and their
// application to one image's (or tile's) hidden states [n, D]; no ORT here (tower.ts runs it).
//
// At a merge layer, after the attention half, every token has a score: the attention it receives
// (head mean, then mean over query rows). Tokens are grouped into units (one token, or a whole
// 2×2 group that becomes one LM token); a unit's score is its members' mean. The r+1 least-attended
// units are averaged, member by member, into the (r+1)-th least attended with weights r+1 … 1
// (the least attended gets r+1), and the other r are dropped. Protected rows ([CLS]) are never units.

export const VIT_MERGE_MODES = ['reduce', 'unmerge'] as const;
export type VitMergeMode = (typeof VIT_MERGE_MODES)[number];

export interface VitMergeOptions {
  /** reduce: fewer tokens reach the LM. unmerge: merged tokens are copied back before the projector. */
  mode: VitMergeMode;
  /** First merge layer: 0-based vision block index; merging acts after its attention half. Default: round(depth / 6). */
  layer?: number;
  /** Fraction of the mergeable units left after the last merge layer, in (0, 1]. */
  keep: number;
  /** Merge layers, consecutive from `layer` (default 1); the reduction is spread geometrically. */
  layers?: number;
}

/**
 * Merge layers for a tower of `depth` blocks: consecutive block indices in [0, depth − 2], so the
 * last segment holds at least one whole block (whose attention LLaVA's [CLS] score reads).
 */
export function mergeLayers(o: VitMergeOptions, depth: number): number[] {
  const count = o.layers ?? 1;
  const first = o.layer ?? defaultMergeLayer(depth);
  const cuts = Array.from({ length: count }, (_, j) => first + j);
  if (first < 0 || cuts[cuts.length - 1]! > depth - 2) {
    throw new RangeError(`vitMerge layers ${first}..${cuts[cuts.length - 1]} do not fit this vision tower: merge layers must lie in 0..${depth - 2} (it runs ${depth} blocks).`);
  }
  return cuts;
}

/** The first merge layer when none is given: round(depth / 6) (measured: docs/vit-merge.md). */
export const defaultMergeLayer = (depth: number): number => Math.round(depth / 6);

/** Units left after merge j (0-based) of `count`, from `initial`: round(initial · keep^((j+1)/count)), at least 1. */
export function unitsAfter(initial: number, keep: number, j: number, count: number): number {
  return Math.max(1, Math.min(initial, Math.round(initial * Math.pow(keep, (j + 1) / count))));
}

/**
 * The r+1 least-attended units (indices into `units`), least attended first; ties go to the lower
 * unit index. units[u] lists the unit's rows; scores[row] is the attention the row receives.
 */
export function leastAttended(scores: Float32Array, units: readonly Int32Array[], r: number): number[] {
  const s = units.map((rows) => rows.reduce((a, row) => a + scores[row]!, 0) / rows.length);
  const order = units.map((_, u) => u).sort((a, b) => s[a]! - s[b]! || a - b);
  return order.slice(0, r + 1);
}

export interface MergeResult {
  hidden: Float32Array; // [n', D]
  kept: Int32Array;     // [n'] old row of each new row (ascending)
  rowMap: Int32Array;   // [n] new row of each old row; a dropped row maps to its target's new row
}

/**
 * Applies one merge. chosen = leastAttended(...) (r+1 unit indices, least attended first); every
 * unit has the same size. Member i of the target becomes Σ_k w_k·x(chosen[k], i) / Σ w, w_k = r+1−k.
 */
export function applyMerge(hidden: Float32Array, D: number, units: readonly Int32Array[], chosen: readonly number[]): MergeResult {
  const n = hidden.length / D;
  const r = chosen.length - 1;
  const target = units[chosen[r]!]!;
  const out = hidden.slice();
  if (r > 0) {
    const wsum = ((r + 1) * (r + 2)) / 2;
    for (let i = 0; i < target.length; i++) {
      const acc = new Float64Array(D);
      chosen.forEach((u, k) => {
        const w = (r + 1 - k) / wsum;
        const row = units[u]![i]!;
        for (let c = 0; c < D; c++) acc[c] += w * hidden[row * D + c]!;
      });
      const o = target[i]! * D;
      for (let c = 0; c < D; c++) out[o + c] = acc[c]!;
    }
  }
  const dropped = new Int32Array(n).fill(-1); // old row → target old row, for dropped rows
  for (let k = 0; k < r; k++) units[chosen[k]!]!.forEach((row, i) => (dropped[row] = target[i]!));
  const kept = Int32Array.from({ length: n }, (_, i) => i).filter((i) => dropped[i]! < 0);
  const newRow = new Int32Array(n).fill(-1);
  kept.forEach((old, j) => (newRow[old] = j));
  const rowMap = Int32Array.from({ length: n }, (_, i) => (dropped[i]! < 0 ? newRow[i]! : newRow[dropped[i]!]!));
  const merged = new Float32Array(kept.length * D);
  kept.forEach((old, j) => merged.set(out.subarray(old * D, (old + 1) * D), j * D));
  return { hidden: merged, kept, rowMap };
}

/**
 * Where the original tokens of one image part are while its tower runs: `rowOf[orig]` is the
 * current row holding original token `orig` (its own row, or the row it was merged into), and
 * `origOf[row]` is the original token whose place (rotary position) row `row` keeps.
 */
export class TokenTrack {
  rowOf: Int32Array;
  origOf: Int32Array;
  /** Units still present, as ORIGINAL rows (kept units' rows are never merged away). */
  units: Int32Array[];
  /** Each present unit's index among the initial units (its LM token in `reduce`). */
  unitIds: number[];

  constructor(n: number, units: Int32Array[]) {
    this.rowOf = Int32Array.from({ length: n }, (_, i) => i);
    this.origOf = this.rowOf.slice();
    this.units = units;
    this.unitIds = units.map((_, u) => u);
  }

  /** Units as current rows. */
  currentUnits(): Int32Array[] {
    return this.units.map((u) => u.map((o) => this.rowOf[o]!));
  }

  /** Records a merge: `chosen` (indices into units) as decided, `m` as applied. */
  update(chosen: readonly number[], m: MergeResult): void {
    this.rowOf = this.rowOf.map((row) => m.rowMap[row]!);
    this.origOf = m.kept.map((old) => this.origOf[old]!);
    const gone = new Set(chosen.slice(0, -1));
    this.units = this.units.filter((_, u) => !gone.has(u));
    this.unitIds = this.unitIds.filter((_, u) => !gone.has(u));
  }
}
