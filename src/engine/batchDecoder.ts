// One decode step for many sequences at once (graph/batchDecode.ts). Each sequence keeps its own
// JS-owned LayerCache per layer; a step copies every sequence's rows of a layer into a padded
// [B, P_max, Hkv·dh] scratch (a single sequence is fed as a zero-copy view instead), runs the
// layers, and appends each sequence's new K/V row to its own caches.
//
// The layers are cut into segments of `segmentLayers` so that the padded scratch only ever holds a
// few layers (reused from segment to segment), not a second copy of the whole batch's cache.
import { IO } from '../graph/io.js';
import { buildBatchDecode } from '../graph/batchDecode.js';
import type { GraphOptions } from '../graph/proto.js';
import type { LayerCache } from '../kvcache/cache.js';
import type { TextConfig } from '../models/config.js';
import type { LanguageModelWeights } from '../models/llm.js';
import { f32, Session, type FeedValue } from '../runtime/ort.js';
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

export class BatchDecoder {
  private segments: { from: number; to: number; session: Session }[] = [];
  private scratch: { k: Float32Array; v: Float32Array; mask: Float32Array }[] = [];

  private constructor(private readonly cfg: TextConfig) {}

  /** `graph` as the single-sequence decoder's (quantized Linear layers when the model is q8/q4). */
  static async create(lm: LanguageModelWeights, cfg: TextConfig, segmentLayers = 4, graph: GraphOptions = {}): Promise<BatchDecoder> {
    const d = new BatchDecoder(cfg);
    for (let from = 0; from < cfg.layers; from += segmentLayers) {
      const to = Math.min(cfg.layers, from + segmentLayers);
      const layers = [];
      for (let l = from; l < to; l++) layers.push({ index: l, w: lm.layer(l) });
      d.segments.push({ from, to, session: await Session.create(buildBatchDecode(cfg, layers, graph), `batch decode layers ${from}-${to - 1}`) });
    }
    return d;
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
    for (const seg of this.segments) {
      const feeds: Record<string, FeedValue> = { [IO.hidden]: f32(hidden, [B, D]), [IO.cos]: f32(cos, [B, dh]), [IO.sin]: f32(sin, [B, dh]) };
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

  async release(): Promise<void> {
    for (const s of this.segments) await s.session.release();
    this.segments = [];
  }
}
