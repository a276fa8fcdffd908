// Runs a vision tower cut into segment graphs at the merge layers (models/vit.ts buildTower): each
// segment returns the hidden states [n, D] and the attention each token receives [n]; between
// segments the least-attended units are merged (policy.ts) and the next segment runs on fewer rows.
// The last segment reads `rows`: in `unmerge` every original token's current row (the merged ones
// copied back to their places), in `reduce` the kept units' rows, whole LM-token groups in order.
import { LightVLMError } from '../errors.js';
import type { GraphOptions } from '../graph/proto.js';
import { buildTower, type VitPart, type VitTower } from '../models/vit.js';
import { f32, i64, Session, type FeedValue } from '../runtime/ort.js';
import { applyMerge, leastAttended, mergeLayers, TokenTrack, unitsAfter, type VitMergeOptions } from './policy.js';

/** What the merged tower did: for stats and --explain. */
export interface VitTrace {
  mode: VitMergeOptions['mode'];
  layers: number[];              // merge layers (block indices)
  tokensPerLayer: number[];      // rows each vision block's attention saw, summed over parts
  /** Per merge layer: for each LM image token (all parts, in order), the fraction of its rows merged away by then. */
  mergedAway: Float32Array[];
  /** reduce: the LM image tokens that survive (ascending, over all parts). */
  lmKeep?: Int32Array;
}

export interface MergedOutput {
  features: Float32Array;        // [N', D_text]
  clsAttn?: Float32Array;        // [N'] LLaVA's [CLS] attention of the features' rows
  trace: VitTrace;
}

/** Segment sessions per set of cuts, built on first use; the last few sets are kept (eval and bench alternate settings). */
export class MergedTower {
  private readonly sets = new Map<string, Session[]>();

  /** `graph` as the unmerged tower's (quantized Linear layers when the model is q8/q4). */
  constructor(
    private readonly tower: () => VitTower,
    private readonly graph: GraphOptions = {},
    private readonly keepSets = 3,
  ) {}

  private async segments(cuts: number[]): Promise<Session[]> {
    const key = cuts.join(',');
    let set = this.sets.get(key);
    if (set) {
      this.sets.delete(key); // most recently used last
    } else {
      set = [];
      for (const [i, g] of buildTower(this.tower(), cuts, this.graph).entries()) set.push(await Session.create(g, `vision segment ${i}`));
      while (this.sets.size >= this.keepSets) {
        const [oldest, old] = this.sets.entries().next().value as [string, Session[]];
        this.sets.delete(oldest);
        for (const s of old) await s.release();
      }
    }
    this.sets.set(key, set);
    return set;
  }

  async release(): Promise<void> {
    for (const set of this.sets.values()) for (const s of set) await s.release();
    this.sets.clear();
  }

  /** Builds (once) the segment sessions for `o`: a load-time cost, kept out of the vision clock. */
  async ready(o: VitMergeOptions, depth: number): Promise<Session[]> {
    try {
      return await this.segments(mergeLayers(o, depth));
    } catch (e) {
      if (e instanceof RangeError) throw new LightVLMError(e.message, 'E_OPTION');
      throw e;
    }
  }

  /** Runs every part through the segments with merging; `depth` = blocks the tower runs. */
  async run(parts: VitPart[], o: VitMergeOptions, depth: number): Promise<MergedOutput> {
    const segs = await this.ready(o, depth);
    const cuts = mergeLayers(o, depth);
    const last = segs[segs.length - 1]!;
    const withCls = last.outputNames.includes('cls_attn');
    const feats: Float32Array[] = [];
    const cls: Float32Array[] = [];
    const perLayer = new Array<number>(depth).fill(0);
    const mergedAway = cuts.map(() => [] as number[]);
    const lmKeep: number[] = [];
    let lmOffset = 0;
    for (const part of parts) {
      const L = part.layout;
      if (o.mode === 'reduce' && L.reduceError) throw new LightVLMError(L.reduceError, 'E_UNSUPPORTED');
      const protect = new Set(L.protect);
      const g = o.mode === 'reduce' ? L.group : 1;
      // reduce: a unit is one LM token's rows; unmerge: one row. [CLS] is never a unit.
      const units: Int32Array[] = [];
      if (o.mode === 'reduce') for (let t = 0; t < L.headRows.length / g; t++) units.push(L.headRows.slice(t * g, (t + 1) * g));
      else for (let row = 0; row < L.tokens; row++) if (!protect.has(row)) units.push(Int32Array.of(row));
      const track = new TokenTrack(L.tokens, units);
      const initial = units.length;
      let out = await segs[0]!.run(part.feeds, ['hidden', 'attn_received']);
      let n = L.tokens;
      for (let l = 0; l <= cuts[0]!; l++) perLayer[l] += n;
      for (let j = 0; j < cuts.length; j++) {
        const hidden = out.hidden!.data;
        const D = hidden.length / n;
        const r = track.units.length - unitsAfter(initial, o.keep, j, cuts.length);
        if (r > 0) {
          const chosen = leastAttended(out.attn_received!.data, track.currentUnits(), r);
          const m = applyMerge(hidden, D, track.currentUnits(), chosen);
          track.update(chosen, m);
          n = m.kept.length;
          out = { ...out, hidden: { data: m.hidden, dims: [n, D] } };
        }
        // fraction of each LM token's rows merged away (a row is merged when it no longer holds its own place)
        for (let t = 0; t < L.headRows.length / L.group; t++) {
          let gone = 0;
          for (let i = 0; i < L.group; i++) {
            const o0 = L.headRows[t * L.group + i]!;
            if (track.origOf[track.rowOf[o0]!] !== o0) gone++;
          }
          mergedAway[j]!.push(gone / L.group);
        }
        const next = cuts[j + 1] ?? depth - 1;
        for (let l = cuts[j]! + 1; l <= next; l++) perLayer[l] += n;
        const feeds: Record<string, FeedValue> = { hidden_in: f32(out.hidden!.data, [n, D]) };
        if (L.rotary) {
          const { cos, sin, dh } = L.rotary;
          const gather = (t: Float32Array) => {
            const o2 = new Float32Array(n * dh);
            track.origOf.forEach((orig, row) => o2.set(t.subarray(orig * dh, (orig + 1) * dh), row * dh));
            return f32(o2, [n, dh]);
          };
          feeds.rope_cos = gather(cos);
          feeds.rope_sin = gather(sin);
        }
        if (j + 1 < cuts.length) {
          out = await segs[j + 1]!.run(feeds, ['hidden', 'attn_received']);
        } else {
          let rows: number[];
          if (o.mode === 'unmerge') rows = Array.from(L.headRows, (orig) => track.rowOf[orig]!);
          else {
            rows = track.units.flatMap((u) => Array.from(u, (orig) => track.rowOf[orig]!));
            for (const id of track.unitIds) lmKeep.push(lmOffset + id);
          }
          feeds.rows = i64(BigInt64Array.from(rows, BigInt), [rows.length]);
          const res = await last.run(feeds, withCls ? ['features', 'cls_attn'] : ['features']);
          feats.push(res.features!.data);
          if (withCls) cls.push(res.cls_attn!.data);
        }
      }
      lmOffset += L.headRows.length / L.group;
    }
    const cat = (xs: Float32Array[]) => {
      const all = new Float32Array(xs.reduce((a, x) => a + x.length, 0));
      let off = 0;
      for (const x of xs) (all.set(x, off), (off += x.length));
      return all;
    };
    return {
      features: cat(feats),
      ...(withCls ? { clsAttn: cat(cls) } : {}),
      trace: {
        mode: o.mode,
        layers: cuts,
        tokensPerLayer: perLayer,
        mergedAway: mergedAway.map((m) => Float32Array.from(m)),
        ...(o.mode === 'reduce' ? { lmKeep: Int32Array.from(lmKeep) } : {}),
      },
    };
  }
}
