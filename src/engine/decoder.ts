// The LM decoder as a chain of segment sessions. Segments are cut at the union of every stage
// boundary any method asked for, so all schedules share one copy of the weights: a stage [a, b)
// runs the segments inside it, and the score of layer b−1 comes out of the segment ending at b.
// Batched decode steps (batchDecoder.ts) run the same sessions, so serving holds one copy too.
import { IO } from '../graph/io.js';
import { buildDecoderStage, buildHead, type TextDims } from '../graph/decoderStage.js';
import type { GraphOptions } from '../graph/proto.js';
import { f32, i64, Session, type FeedValue } from '../runtime/ort.js';
import type { TextConfig } from '../models/config.js';
import type { LanguageModelWeights } from '../models/llm.js';
import type { LayerCache } from '../kvcache/cache.js';

/** One sequence's feeds carry a dummy mask (only the batched decode branch reads mask.l). */
const NO_MASK = f32(new Float32Array(1), [1, 1]);

export interface Segment {
  from: number;
  to: number;
  session: Session;
}

export interface RangeOutputs {
  hidden: Float32Array;              // [S, D] leaving layer `to` − 1
  lastScore?: Float32Array;          // [T] attn_last of layer `to` − 1, when asked
  scores: Map<number, Float32Array>; // score.l per layer, when asked
}

export class Decoder {
  private segments: Segment[] = [];
  private head!: Session;
  readonly dims: TextDims;

  /** `graph.quant` makes every Linear MatMulNBits; `floatHead` keeps the LM head fp32 even then. */
  constructor(
    private readonly lm: LanguageModelWeights,
    readonly cfg: TextConfig,
    readonly graph: GraphOptions = {},
    private readonly floatHead = false,
  ) {
    this.dims = cfg;
  }

  async init(boundaries: number[] = []): Promise<void> {
    this.head = await Session.create(buildHead(this.cfg.hidden, this.cfg.eps, this.lm.finalNorm(), this.lm.lmHead(), this.graph, this.floatHead), 'lm_head');
    await this.ensureBoundaries(boundaries);
  }

  get boundaries(): number[] {
    return this.segments.map((s) => s.from);
  }

  /** The current segment sessions, layers [from, to) each: a batched decode step runs them in turn. */
  get segmentSessions(): readonly Segment[] {
    return this.segments;
  }

  private async build(from: number, to: number): Promise<Segment> {
    const layers = [];
    for (let l = from; l < to; l++) layers.push({ index: l, w: this.lm.layer(l) });
    return { from, to, session: await Session.create(buildDecoderStage(this.dims, layers, this.graph), `decoder layers ${from}-${to - 1}`) };
  }

  /** Splits segments so that every layer in `cuts` starts one. Rebuilds only the segments cut. */
  async ensureBoundaries(cuts: number[]): Promise<void> {
    const L = this.cfg.layers;
    const want = new Set([0, ...this.boundaries, ...cuts.filter((c) => c > 0 && c < L)]);
    const starts = [...want].sort((a, b) => a - b);
    const ranges = starts.map((from, i) => ({ from, to: starts[i + 1] ?? L }));
    // Release the segments being cut before building their pieces, so the weights of a layer
    // are never held by two sessions at once (peak memory stays at one copy).
    const keep = this.segments.filter((s) => ranges.some((r) => r.from === s.from && r.to === s.to));
    for (const s of this.segments) if (!keep.includes(s)) await s.session.release();
    const next: Segment[] = [];
    for (const r of ranges) next.push(keep.find((s) => s.from === r.from && s.to === r.to) ?? (await this.build(r.from, r.to)));
    this.segments = next;
  }

  /**
   * Runs layers [from, to) on `hidden` [S, D]. New K/V rows go straight into `caches[l]` with the
   * original indices `orig`. `scoreFrom` selects the query rows summed into score.l (see graph).
   */
  async run(
    from: number,
    to: number,
    hidden: Float32Array,
    cos: Float32Array,
    sin: Float32Array,
    caches: LayerCache[],
    orig: ArrayLike<number>,
    opts: { lastScore?: boolean; scores?: boolean; scoreFrom?: number } = {},
  ): Promise<RangeOutputs> {
    const { hidden: D, headDim: dh } = this.dims;
    const S = orig.length;
    const scores = new Map<number, Float32Array>();
    let lastScore: Float32Array | undefined;
    for (const seg of this.segments) {
      if (seg.to <= from || seg.from >= to) continue;
      if (seg.from < from || seg.to > to) throw new Error(`internal: range ${from}-${to} does not align with segment ${seg.from}-${seg.to}`);
      const feeds: Record<string, FeedValue> = {
        [IO.hidden]: f32(hidden, [S, D]),
        [IO.cos]: f32(cos, [S, dh]),
        [IO.sin]: f32(sin, [S, dh]),
        [IO.scoreFrom]: i64(BigInt64Array.of(BigInt(opts.scoreFrom ?? S - 1)), [1]),
      };
      const fetch: string[] = [IO.hiddenOut];
      for (let l = seg.from; l < seg.to; l++) {
        const c = caches[l]!;
        feeds[IO.pastKey(l)] = f32(c.keyView(), [1, c.length, c.rowSize]);
        feeds[IO.pastValue(l)] = f32(c.valueView(), [1, c.length, c.rowSize]);
        feeds[IO.mask(l)] = NO_MASK;
        fetch.push(IO.newKey(l), IO.newValue(l));
        if (opts.scores) fetch.push(IO.score(l));
      }
      if (opts.lastScore && seg.to === to) fetch.push(IO.attnLast(to - 1));
      const out = await seg.session.run(feeds, fetch);
      for (let l = seg.from; l < seg.to; l++) {
        caches[l]!.append(out[IO.newKey(l)]!.data, out[IO.newValue(l)]!.data, orig);
        if (opts.scores) scores.set(l, out[IO.score(l)]!.data);
      }
      if (opts.lastScore && seg.to === to) lastScore = out[IO.attnLast(to - 1)]!.data;
      hidden = out[IO.hiddenOut]!.data;
    }
    return { hidden, scores, ...(lastScore ? { lastScore } : {}) };
  }

  /** Final norm + LM head on rows [S, D]: logits [S, V] and the normed hidden rows. */
  async logits(hidden: Float32Array, S: number): Promise<{ logits: Float32Array; normed: Float32Array }> {
    const out = await this.head.run({ [IO.hidden]: f32(hidden, [S, this.cfg.hidden]) }, [IO.logits, IO.normed]);
    return { logits: out[IO.logits]!.data, normed: out[IO.normed]!.data };
  }

  async release(): Promise<void> {
    for (const s of this.segments) await s.session.release();
    await this.head.release();
  }
}
