// One decode step for many sequences at once, through the single-sequence decoder's own segment
// sessions (their batch branch, graph/batchDecode.ts): no second copy of the LM weights. Each
// sequence keeps its own JS-owned LayerCache per layer; a step copies every sequence's rows of a
// layer into a padded [B, P_max, Hkv·dh] scratch (a single sequence is fed as a zero-copy view
// instead), runs the segments, and appends each sequence's new K/V row to its own caches.
//
// The padded scratch holds the layers of one segment at a time (reused from segment to segment):
// at most B · P_max · Hkv·dh · 4 B · 2 (K and V) per layer of the longest segment.
import { IO } from '../graph/io.js';
import type { LayerCache } from '../kvcache/cache.js';
import type { TextConfig } from '../models/config.js';
import { f32, i64, type FeedValue } from '../runtime/ort.js';
import type { Decoder } from './decoder.js';
import { ropeTables } from './rope.js';

export interface BatchItem {
  caches: LayerCache[];   // [L] this sequence's caches (the new row is appended to each)
  x: Float32Array;        // [D] embedding of the token fed at this step
  position: number;       // its position id (every M-RoPE row gets the same value when decoding)
  orig: number;           // original index recorded for the new cache row
}

export interface BatchStepOutput {
  hidden: Float32Array;           // [B, D] leaving the last layer, in item order
  scores: Float32Array[][] | null; // [B][L] head-mean attention over each layer's cache (after the append), when asked
}

const NEG = -1e30;
const SCORE_FROM = i64(BigInt64Array.of(0n), [1]); // read by the one-sequence branch only (B = 1: its one row)

export class BatchDecoder {
  private scratch: { k: Float32Array; v: Float32Array; mask: Float32Array }[] = [];
  private readonly cfg: TextConfig;

  /** Steps through `decoder`'s segments as they are at each step (stage cuts may change between steps). */
  constructor(private readonly decoder: Decoder) {
    this.cfg = decoder.cfg;
  }

  /** Padded scratch for the j-th layer of a segment, grown on demand and reused across segments and steps. */
  private slot(j: number, floats: number, maskLen: number) {
    let s = this.scratch[j];
    if (!s || s.k.length < floats || s.mask.length < maskLen) {
      s = { k: new Float32Array(Math.max(floats, s?.k.length ?? 0)), v: new Float32Array(Math.max(floats, s?.v.length ?? 0)), mask: new Float32Array(Math.max(maskLen, s?.mask.length ?? 0)) };
      this.scratch[j] = s;
    }
    return s;
  }

  async step(items: BatchItem[], wantScores: boolean): Promise<BatchStepOutput> {
    const { hidden: D, headDim: dh, kvHeads: Hkv } = this.cfg;
    const row = Hkv * dh;
    const B = items.length;
    let hidden: Float32Array = new Float32Array(B * D);
    items.forEach((it, b) => hidden.set(it.x, b * D));
    const rows = this.cfg.mropeSection ? 3 : 1;
    const pos = Int32Array.from(items, (it) => it.position);
    const { cos, sin } = ropeTables(Array.from({ length: rows }, () => pos), dh, this.cfg.ropeTheta, this.cfg.mropeSection);
    const scores = wantScores ? items.map(() => new Array<Float32Array>(this.cfg.layers)) : null;
    for (const seg of this.decoder.segmentSessions) {
      const feeds: Record<string, FeedValue> = { [IO.hidden]: f32(hidden, [B, D]), [IO.cos]: f32(cos, [B, dh]), [IO.sin]: f32(sin, [B, dh]), [IO.scoreFrom]: SCORE_FROM };
      const fetch: string[] = [IO.hiddenOut];
      const pmax: number[] = [];
      for (let l = seg.from; l < seg.to; l++) {
        const P = Math.max(...items.map((it) => it.caches[l]!.length));
        pmax.push(P);
        const T = P + 1;
        if (B === 1) {
          const c = items[0]!.caches[l]!;
          feeds[IO.pastKey(l)] = f32(c.keyView(), [1, P, row]);
          feeds[IO.pastValue(l)] = f32(c.valueView(), [1, P, row]);
          feeds[IO.mask(l)] = f32(new Float32Array(T), [1, T]);
        } else {
          const s = this.slot(l - seg.from, B * P * row, B * T);
          const mask = s.mask.subarray(0, B * T);
          items.forEach((it, b) => {
            const c = it.caches[l]!;
            s.k.set(c.keyView(), b * P * row);
            s.v.set(c.valueView(), b * P * row);
            // padding rows keep whatever finite values the scratch held: their probability is exactly 0
            mask.fill(0, b * T, b * T + c.length);
            mask.fill(NEG, b * T + c.length, b * T + P);
            mask[b * T + P] = 0;
          });
          feeds[IO.pastKey(l)] = f32(s.k.subarray(0, B * P * row), [B, P, row]);
          feeds[IO.pastValue(l)] = f32(s.v.subarray(0, B * P * row), [B, P, row]);
          feeds[IO.mask(l)] = f32(mask, [B, T]);
        }
        fetch.push(IO.newKey(l), IO.newValue(l));
        if (wantScores) fetch.push(IO.score(l));
      }
      const out = await seg.session.run(feeds, fetch);
      for (let l = seg.from; l < seg.to; l++) {
        const nk = out[IO.newKey(l)]!.data;
        const nv = out[IO.newValue(l)]!.data;
        const P = pmax[l - seg.from]!;
        const sc = wantScores ? out[IO.score(l)]!.data : null;
        items.forEach((it, b) => {
          const c = it.caches[l]!;
          const len = c.length;
          if (sc && scores) {
            // this sequence's columns: its real rows [0, len) and the new key at column P
            const s = new Float32Array(len + 1);
            s.set(sc.subarray(b * (P + 1), b * (P + 1) + len));
            s[len] = sc[b * (P + 1) + P]!;
            scores[b]![l] = s;
          }
          c.append(nk.subarray(b * row, (b + 1) * row), nv.subarray(b * row, (b + 1) * row), [it.orig]);
        });
      }
      hidden = out[IO.hiddenOut]!.data;
    }
    return { hidden, scores };
  }

  /** Drops the padded scratch (the sessions belong to the decoder). */
  release(): void {
    this.scratch = [];
  }
}
