// Generation as steps over one sequence's explicit state: `startSequence` resolves the plan,
// `prefill(seq)` runs the prompt stage by stage, `decodeStep(seq)` picks the next token and (unless
// the sequence is finished) feeds it through the decoder, `finish(seq)` assembles the result.
// Everything a sequence needs between steps lives in its `Sequence` object, so a scheduler can hold
// many and step them in any order. A decode step is `nextToken` (bookkeeping), one decoder call on
// the token's row (`forwardOne`, or a scheduler's batched call through `hooks.decodeStep`), then
// `afterDecode` (KV policy, hooks, clocks).
import { LayerCache } from '../kvcache/cache.js';
import { LightVLMError } from '../errors.js';
import { assertFinite } from '../util/finite.js';
import type { EmbeddingTable } from '../checkpoint/embedding.js';
import { embedPrompt, type LmPrompt } from '../processing/lmPrompt.js';
import { mulberry32 } from '../util/topk.js';
import { resolveKv, type KvController } from '../kvcache/registry.js';
import { resolvePrefill, type PrefillPlan } from '../merge/plan.js';
import type { Decoder } from './decoder.js';
import { ropeTables } from './rope.js';
import { chooseToken } from './sampling.js';
import { PromptState } from './sequence.js';
import type { GenerateOptions, GenerateResult, GenerateStats } from './types.js';

/** What every sequence of one model shares: the decoder sessions and the token tables. */
export interface LmContext {
  decoder: Decoder;
  embedding: EmbeddingTable;     // [V, D], rows read on demand
  eosIds: number[];
  maxPositions: number;
  ropeTheta: number;
  mropeSection?: number[];
  decode: (ids: number[]) => string;
}

/** Callbacks for streaming and verification; `policy` replaces the plan's stage policy (tests, research). */
export interface GenerateHooks {
  onToken?: (ids: number[]) => void;
  onLogits?: (logits: Float32Array) => void; // every next-token distribution
  onStep?: (step: { position: number; cacheLengths: number[] }) => void; // after each decode step
  policy?: PrefillPlan['policy'];
  /** Awaited before each prefill stage: a scheduler interleaves prefill stages with other sequences' decode steps. */
  beforePrefillStage?: () => Promise<void>;
  /** Replaces one decode forward (all layers + LM head): a scheduler batches it with other sequences. */
  decodeStep?: (step: DecodeStepInput) => Promise<{ logits: Float32Array; scores: Map<number, Float32Array> }>;
}

/** What one decode step feeds: the new token's embedding at its position; its K/V rows go into `caches`. */
export interface DecodeStepInput {
  x: Float32Array;        // [D] embedding of the fed token
  position: number;       // position id (every M-RoPE row has this value while decoding)
  orig: number;           // original index of the new cache row
  caches: LayerCache[];   // [L] this sequence's caches
  wantScores: boolean;    // the KV policy needs this step's attention (component B, H2O)
}

/** Wall-clock marks of one sequence (performance.now() ms). */
interface Clocks {
  t0: number;          // prefill start (after graph construction)
  tPrefill: number;    // first-token logits ready
  tEnd: number;        // last token chosen
  decodeMs: number;    // summed time of the decode steps' forward passes
  decodeSteps: number;
}

/** The whole state of one generating sequence. Only the step functions below mutate it. */
export interface Sequence {
  readonly ctx: LmContext;
  readonly prompt: LmPrompt;           // as built, before any pre-LM reduction (stats count it)
  readonly opts: GenerateOptions;
  readonly hooks: GenerateHooks;
  readonly maxNew: number;
  readonly minNew: number;
  readonly plan: PrefillPlan;
  readonly kv: KvController;           // this sequence's KV controller (holds per-sequence counters)
  phase: 'new' | 'decoding' | 'done';
  /** Prompt rows during prefill (after the pre-LM reduction); its final rows are what the caches hold. */
  state: PromptState | null;
  caches: LayerCache[];                // per layer; rows appended by every forward pass
  promptRows: number;                  // T' = rows entering the LM (prompt after pre-LM reduction)
  nextPos0: number;                    // position of the first generated token: max prompt position + 1
  readonly mergeRng: () => number;     // stage policies (random)
  readonly sampleRng: () => number;    // token sampling
  logits: Float32Array | null;         // [V] next-token distribution, after prefill / each step
  readonly tokens: number[];           // produced token ids
  readonly imageTokensPerLayer: number[];
  readonly kept: GenerateResult['kept'];
  readonly clocks: Clocks;
}

/** Checks the request, resolves the plan and builds the stage segments it needs (before any clock). */
export async function startSequence(ctx: LmContext, prompt: LmPrompt, opts: GenerateOptions, hooks: GenerateHooks = {}): Promise<Sequence> {
  const dec = ctx.decoder;
  const maxNew = opts.maxNewTokens ?? 64;
  const minNew = Math.min(opts.minNewTokens ?? 0, maxNew);
  const T = prompt.ids.length;
  if (T + maxNew > ctx.maxPositions) {
    throw new LightVLMError(`the prompt (${T} tokens, image included) plus maxNewTokens ${maxNew} exceeds the model's context of ${ctx.maxPositions} positions. Shorten the prompt or lower maxNewTokens (--max-new-tokens).`, 'E_PROMPT_TOO_LONG');
  }
  const plan = resolvePrefill(opts.acceleration?.prefill, dec.cfg.layers);
  if (hooks.policy) plan.policy = hooks.policy;
  const kv = resolveKv(opts.acceleration?.decode, plan.stages.length > 0);
  // Segments for a new schedule are built once (a load-time cost, like opening the model), before
  // the clock starts: prefillMs measures the forward pass, not graph construction.
  await dec.ensureBoundaries(plan.stages.map((s) => s.layer));
  return {
    ctx, prompt, opts, hooks, maxNew, minNew, plan, kv,
    phase: 'new',
    state: null,
    caches: [],
    promptRows: 0,
    nextPos0: 0,
    mergeRng: mulberry32(plan.seed),
    sampleRng: mulberry32(opts.seed ?? 0),
    logits: null,
    tokens: [],
    imageTokensPerLayer: [],
    kept: [],
    clocks: { t0: 0, tPrefill: 0, tEnd: 0, decodeMs: 0, decodeSteps: 0 },
  };
}

/**
 * The between-stage hook: after stage j, the plan's policy decides which rows survive (from the
 * last prompt token's attention), PromptState applies it, and the kept image tokens are recorded.
 */
function mergeAfterStage(seq: Sequence, j: number, lastScore: Float32Array, imageOrder: Int32Array, grids: LmPrompt['grids']): void {
  const state = seq.state!;
  const D = state.dim;
  const origInSpan = Int32Array.from(state.orig, (o) => imageOrder[o]!);
  const stage = seq.plan.stages[j]!;
  state.apply(seq.plan.policy!({ keep: stage.keep, spans: state.spans, scores: lastScore, hidden: state.hidden, dim: D, rng: seq.mergeRng, grids, origInSpan }));
  seq.kept.push({ layer: stage.layer, imageIndices: Array.from(state.orig).filter((o) => state.isImage[o]).map((o) => imageOrder[o]!) });
}

/** Runs the prompt through the LM stage by stage, then the LM head on its last row: seq.logits. */
export async function prefill(seq: Sequence): Promise<void> {
  if (seq.phase !== 'new') throw new LightVLMError('internal: prefill on a sequence that already ran it', 'E_INTERNAL');
  const { ctx, plan } = seq;
  const dec = ctx.decoder;
  const { layers: L, hidden: D, kvHeads: Hkv, headDim: dh } = dec.cfg;
  seq.clocks.t0 = performance.now();
  const reduced = plan.preLm ? plan.preLm(seq.prompt) : seq.prompt;
  const Tp = reduced.ids.length;
  const { hidden, isImage } = embedPrompt(reduced, ctx.embedding, D);
  const state = new PromptState(hidden, Int32Array.from(reduced.ids, (_, i) => i), reduced.pos, reduced.spans.map((s) => ({ ...s })), isImage, D);
  seq.state = state;
  seq.promptRows = Tp;
  seq.caches = Array.from({ length: L }, () => new LayerCache(Hkv * dh, Math.max(64, Tp + Math.min(seq.maxNew, 4096))));
  const imageOrder = new Int32Array(Tp).fill(-1); // original row → index among the image tokens
  for (let i = 0, k = 0; i < Tp; i++) if (isImage[i]) imageOrder[i] = k++;

  const bounds = [0, ...plan.stages.map((s) => s.layer), L];
  const prefillScores = new Map<number, Float32Array>();
  for (let j = 0; j + 1 < bounds.length; j++) {
    if (seq.hooks.beforePrefillStage) await seq.hooks.beforePrefillStage();
    const [a, b] = [bounds[j]!, bounds[j + 1]!];
    const merges = j + 2 < bounds.length; // a stage boundary follows this range
    const { cos, sin } = ropeTables(state.pos, dh, ctx.ropeTheta, ctx.mropeSection);
    const S = state.length;
    const scoreFrom = seq.kv.prefillScoreFrom?.(S);
    const out = await dec.run(a, b, state.hidden, cos, sin, seq.caches, state.orig, {
      lastScore: merges,
      scores: scoreFrom !== undefined,
      scoreFrom: scoreFrom ?? S - 1,
    });
    for (const [l, s] of out.scores) prefillScores.set(l, s);
    for (let l = a; l < b; l++) seq.imageTokensPerLayer.push(state.imageRows());
    state.hidden = out.hidden;
    if (merges) mergeAfterStage(seq, j, out.lastScore!, imageOrder, reduced.grids);
  }
  const S = state.length;
  seq.logits = (await dec.logits(state.hidden.subarray((S - 1) * D, S * D), 1)).logits;
  seq.kv.afterPrefill(seq.caches, prefillScores, state);
  seq.nextPos0 = Math.max(...reduced.pos.map((r) => r.reduce((m, v) => Math.max(m, v), -1))) + 1;
  seq.clocks.tPrefill = performance.now();
  seq.phase = 'decoding';
}

/**
 * Bookkeeping before a forward pass: picks the next token from seq.logits, appends it, and marks
 * the sequence done at the token limit, at EOS (after minNewTokens) or when a stop string completes.
 * Returns the token, or null when the sequence is done (nothing to feed).
 */
export function nextToken(seq: Sequence): number | null {
  const { ctx, opts, tokens: out } = seq;
  // the non-finite guard: one pass over [V] per token, both for lone and batched decode
  assertFinite(seq.logits!, out.length === 0 ? 'the logits after prefill' : `the logits at decode step ${out.length}`);
  seq.hooks.onLogits?.(seq.logits!);
  const tok = chooseToken(seq.logits!, opts, out.length < seq.minNew ? ctx.eosIds : [], seq.sampleRng);
  out.push(tok);
  seq.hooks.onToken?.(out);
  let done = out.length >= seq.maxNew || (out.length > seq.minNew && ctx.eosIds.includes(tok));
  if (!done && opts.stopStrings?.length) {
    // a stop string completed by this token lies within the last (its length + 1) tokens:
    // decoding that tail keeps the check O(1) per token instead of O(answer)
    const stopTail = Math.max(0, ...opts.stopStrings.map((s) => s.length));
    const tail = ctx.decode(out.slice(-(stopTail + 1)));
    done = opts.stopStrings.some((s) => tail.includes(s));
  }
  if (!done) return tok;
  seq.phase = 'done';
  seq.clocks.tEnd = performance.now();
  return null;
}

/** The decoder input of one fed token: its embedding row, position and cache row index. */
export function decodeInput(seq: Sequence, tok: number): DecodeStepInput {
  const { ctx } = seq;
  const D = ctx.decoder.cfg.hidden;
  const t = seq.tokens.length - 1; // t-th fed token
  return { x: ctx.embedding.rows([tok]), position: seq.nextPos0 + t, orig: seq.promptRows + t, caches: seq.caches, wantScores: seq.kv.decodeScores };
}

/** One token of one sequence through all layers + the LM head (a lone sequence's decode forward). */
export async function forwardOne(ctx: LmContext, s: DecodeStepInput): Promise<{ logits: Float32Array; scores: Map<number, Float32Array> }> {
  const dec = ctx.decoder;
  // every position row (1, or 3 for M-RoPE) holds the same id while decoding
  const rows = Array.from({ length: ctx.mropeSection?.length ?? 1 }, () => Int32Array.of(s.position));
  const { cos, sin } = ropeTables(rows, dec.cfg.headDim, ctx.ropeTheta, ctx.mropeSection);
  const r = await dec.run(0, dec.cfg.layers, s.x, cos, sin, s.caches, [s.orig], { scores: s.wantScores, scoreFrom: 0 });
  const { logits } = await dec.logits(r.hidden, 1);
  return { logits, scores: r.scores };
}

/** Bookkeeping after a forward pass: KV policy, hooks, the new next-token distribution, clocks. */
export function afterDecode(seq: Sequence, scores: Map<number, Float32Array>, logits: Float32Array, position: number, startedAt: number): void {
  seq.kv.afterStep(seq.caches, scores);
  seq.hooks.onStep?.({ position, cacheLengths: seq.caches.map((c) => c.length) });
  seq.logits = logits;
  seq.clocks.decodeMs += performance.now() - startedAt;
  seq.clocks.decodeSteps++;
}

/**
 * One decode step: choose a token; unless that finished the sequence, run it through all layers
 * (alone, or through `hooks.decodeStep`, where a scheduler batches it with other sequences).
 */
export async function decodeStep(seq: Sequence): Promise<void> {
  if (seq.phase !== 'decoding') throw new LightVLMError(`internal: decodeStep on a sequence in phase ${seq.phase}`, 'E_INTERNAL');
  const tok = nextToken(seq);
  if (tok === null) return;
  const ts = performance.now();
  const input = decodeInput(seq, tok);
  const r = seq.hooks.decodeStep ? await seq.hooks.decodeStep(input) : await forwardOne(seq.ctx, input);
  afterDecode(seq, r.scores, r.logits, input.position, ts);
}

const rssMb = (): number => process.resourceUsage().maxRSS / 1024;

/** The answer (stop strings cut off) and the statistics of a finished sequence. */
export function finish(seq: Sequence): GenerateResult {
  if (seq.phase !== 'done') throw new LightVLMError(`internal: finish on a sequence in phase ${seq.phase}`, 'E_INTERNAL');
  const { prompt, opts, clocks: c, tokens } = seq;
  let text = seq.ctx.decode(tokens);
  if (opts.stopStrings?.length) {
    const cut = Math.min(...opts.stopStrings.map((s) => text.indexOf(s)).filter((i) => i >= 0));
    if (Number.isFinite(cut)) text = text.slice(0, cut);
  }
  const stats: GenerateStats = {
    promptTokens: prompt.ids.length,
    imageTokens: prompt.spans.reduce((a, s) => a + s.length, 0),
    keptImageTokens: seq.state!.imageRows(),
    imageTokensPerLayer: seq.imageTokensPerLayer,
    visionMs: prompt.visionMs,
    prefillMs: c.tPrefill - c.t0,
    ttftMs: prompt.visionMs + (c.tPrefill - c.t0),
    decodeTokens: tokens.length,
    decodeMs: c.decodeMs,
    decodeTokensPerSecond: c.decodeSteps > 0 ? (c.decodeSteps * 1000) / c.decodeMs : 0,
    totalMs: prompt.visionMs + (c.tEnd - c.t0),
    peakRssMb: rssMb(),
    cacheEntriesPerLayer: seq.caches.map((x) => x.length),
    cacheBytes: seq.caches.reduce((a, x) => a + x.bytes, 0),
  };
  return { text, tokenIds: tokens, stats, kept: seq.kept, grids: prompt.grids };
}
