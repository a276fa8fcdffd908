// prefill → decode loop. Reads the plan (which layers merge, which KV policy), runs the decoder
// stages, hands scores to the policies and their decisions to sequence.ts, which applies them.
import { LayerCache } from '../kvcache/cache.js';
import { LightVLMError } from '../errors.js';
import type { Decoder } from './decoder.js';
import { ropeTables } from './rope.js';
import { chooseToken } from './sampling.js';
import { mulberry32 } from '../util/topk.js';
import { PromptState, type Span } from './sequence.js';
import { resolveKv, resolvePrefill, type PrefillPlan } from './accel.js';
import type { GenerateOptions, GenerateResult, GenerateStats } from './types.js';

/** A prompt ready for the LM: token ids with image features spliced in at `spans`. */
export interface LmPrompt {
  ids: number[];                 // [T] with image tokens expanded
  features: Float32Array;        // [N, D] image embeddings, in span order
  clsAttn?: Float32Array;        // [N] vision [CLS] attention (pre-LM methods)
  grids: { h: number; w: number }[];
  pos: Int32Array[];             // position-id rows, each [T]
  spans: Span[];
  visionMs: number;
}

export interface LmContext {
  decoder: Decoder;
  embedding: Float32Array;       // [V, D]
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

const rssMb = (): number => process.resourceUsage().maxRSS / 1024;

export async function generate(
  ctx: LmContext,
  prompt: LmPrompt,
  opts: GenerateOptions,
  hooks: GenerateHooks = {},
): Promise<GenerateResult> {
  const { onToken, onLogits } = hooks;
  const dec = ctx.decoder;
  const { layers: L, hidden: D, kvHeads: Hkv, headDim: dh } = dec.cfg;
  const maxNew = opts.maxNewTokens ?? 64;
  const minNew = Math.min(opts.minNewTokens ?? 0, maxNew);
  const T = prompt.ids.length;
  if (T + maxNew > ctx.maxPositions) {
    throw new LightVLMError(`the prompt (${T} tokens, image included) plus --max-new-tokens ${maxNew} exceeds the model's context of ${ctx.maxPositions} positions. Shorten the prompt or lower --max-new-tokens.`, 'E_PROMPT_TOO_LONG');
  }
  const plan: PrefillPlan = resolvePrefill(opts.acceleration?.prefill, L, dec.cfg);
  if (hooks.policy) plan.policy = hooks.policy;
  const kv = resolveKv(opts.acceleration?.decode, plan);
  // Segments for a new schedule are built once (a load-time cost, like opening the model), before
  // the clock starts: prefillMs measures the forward pass, not graph construction.
  await dec.ensureBoundaries(plan.stages.map((s) => s.layer));
  const t0 = performance.now();

  // ---- embeddings: text rows from the table, image rows from the vision features ----
  const reduced = plan.preLm ? plan.preLm(prompt) : prompt;
  const ids = reduced.ids;
  const Tp = ids.length;
  const hidden = new Float32Array(Tp * D);
  const isImage = new Uint8Array(Tp);
  let f = 0;
  for (const s of reduced.spans) for (let i = s.start; i < s.start + s.length; i++) isImage[i] = 1;
  for (let i = 0; i < Tp; i++) {
    if (isImage[i]) hidden.set(reduced.features.subarray(f * D, ++f * D), i * D);
    else hidden.set(ctx.embedding.subarray(ids[i]! * D, (ids[i]! + 1) * D), i * D);
  }
  const state = new PromptState(hidden, Int32Array.from(ids, (_, i) => i), reduced.pos, reduced.spans.map((s) => ({ ...s })), isImage, D);
  const caches = Array.from({ length: L }, () => new LayerCache(Hkv * dh, Math.max(64, Tp + Math.min(maxNew, 4096))));
  const imageTokensPerLayer: number[] = [];
  const kept: { layer: number; imageIndices: number[] }[] = [];
  const imageOrder = new Int32Array(Tp).fill(-1); // original row → index among the image tokens
  for (let i = 0, k = 0; i < Tp; i++) if (isImage[i]) imageOrder[i] = k++;

  // ---- prefill, stage by stage ----
  const bounds = [0, ...plan.stages.map((s) => s.layer), L];
  const prefillScores = new Map<number, Float32Array>();
  const rng = mulberry32(plan.seed);
  let h = state.hidden;
  for (let j = 0; j + 1 < bounds.length; j++) {
    if (hooks.beforePrefillStage) await hooks.beforePrefillStage();
    const [a, b] = [bounds[j]!, bounds[j + 1]!];
    const { cos, sin } = ropeTables(state.pos, dh, ctx.ropeTheta, ctx.mropeSection);
    const S = state.length;
    const scoreFrom = kv.prefillScoreFrom?.(S);
    const out = await dec.run(a, b, state.hidden, cos, sin, caches, state.orig, {
      lastScore: j + 2 < bounds.length,
      scores: scoreFrom !== undefined,
      scoreFrom: scoreFrom ?? S - 1,
    });
    for (const [l, s] of out.scores) prefillScores.set(l, s);
    for (let l = a; l < b; l++) imageTokensPerLayer.push(state.imageRows());
    h = out.hidden;
    state.hidden = h;
    if (j + 2 < bounds.length) {
      const origInSpan = Int32Array.from(state.orig, (o) => imageOrder[o]!);
      state.apply(plan.policy!({ keep: plan.stages[j]!.keep, spans: state.spans, scores: out.lastScore!, hidden: h, dim: D, rng, grids: reduced.grids, origInSpan }));
      h = state.hidden;
      kept.push({ layer: b, imageIndices: Array.from(state.orig).filter((o) => isImage[o]).map((o) => imageOrder[o]!) });
    }
  }
  const S = state.length;
  let { logits } = await dec.logits(h.subarray((S - 1) * D, S * D), 1);
  kv.afterPrefill(caches, prefillScores, state);
  const tPrefill = performance.now();

  // ---- decode ----
  const sampleRng = mulberry32(opts.seed ?? 0);
  const out: number[] = [];
  const nextPos0 = Math.max(...reduced.pos.map((r) => r.reduce((m, v) => Math.max(m, v), -1))) + 1;
  let decodeSteps = 0;
  let tDecode = 0;
  let text = '';
  const stopTail = Math.max(0, ...(opts.stopStrings ?? []).map((s) => s.length));
  for (;;) {
    onLogits?.(logits);
    const tok = chooseToken(logits, opts, out.length < minNew ? ctx.eosIds : [], sampleRng);
    out.push(tok);
    onToken?.(out);
    if (out.length >= maxNew || (out.length > minNew && ctx.eosIds.includes(tok))) break;
    if (opts.stopStrings?.length) {
      // a stop string completed by this token lies within the last (its length + 1) tokens:
      // decoding that tail keeps the check O(1) per token instead of O(answer)
      const tail = ctx.decode(out.slice(-(stopTail + 1)));
      if (opts.stopStrings.some((s) => tail.includes(s))) break;
    }
    const ts = performance.now();
    const t = out.length - 1; // t-th fed token
    const x = ctx.embedding.slice(tok * D, (tok + 1) * D);
    const p = nextPos0 + t;
    if (hooks.decodeStep) {
      const r = await hooks.decodeStep({ x, position: p, orig: Tp + t, caches, wantScores: kv.decodeScores });
      kv.afterStep(caches, r.scores);
      logits = r.logits;
    } else {
      const { cos, sin } = ropeTables(prompt.pos.map(() => Int32Array.of(p)), dh, ctx.ropeTheta, ctx.mropeSection);
      const r = await dec.run(0, L, x, cos, sin, caches, [Tp + t], { scores: kv.decodeScores, scoreFrom: 0 });
      kv.afterStep(caches, r.scores);
      logits = (await dec.logits(r.hidden, 1)).logits;
    }
    hooks.onStep?.({ position: p, cacheLengths: caches.map((c) => c.length) });
    tDecode += performance.now() - ts;
    decodeSteps++;
  }
  const tEnd = performance.now();
  text = ctx.decode(out);
  if (opts.stopStrings?.length) {
    const cut = Math.min(...opts.stopStrings.map((s) => text.indexOf(s)).filter((i) => i >= 0));
    if (Number.isFinite(cut)) text = text.slice(0, cut);
  }
  const stats: GenerateStats = {
    promptTokens: T,
    imageTokens: prompt.spans.reduce((a, s) => a + s.length, 0),
    keptImageTokens: state.imageRows(),
    imageTokensPerLayer,
    visionMs: prompt.visionMs,
    prefillMs: tPrefill - t0,
    ttftMs: prompt.visionMs + (tPrefill - t0),
    decodeTokens: out.length,
    decodeMs: tDecode,
    decodeTokensPerSecond: decodeSteps > 0 ? (decodeSteps * 1000) / tDecode : 0,
    totalMs: prompt.visionMs + (tEnd - t0),
    peakRssMb: rssMb(),
    cacheEntriesPerLayer: caches.map((c) => c.length),
    cacheBytes: caches.reduce((a, c) => a + c.bytes, 0),
  };
  return { text, tokenIds: out, stats, kept, grids: prompt.grids };
}
