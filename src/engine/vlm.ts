// loadVLM(): opens a Hugging Face model folder and returns the engine object users call.
import fs from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { CachedQuantizer } from '../checkpoint/quantCache.js';
import { LightVLMError } from '../errors.js';
import { DTYPES, type DType } from '../graph/quant.js';
import { checkGenerateOptions, checkImageSource, checkInput, checkLoadOptions } from '../options.js';
import { assertFinite } from '../util/finite.js';
import type { Family, ImageInputs } from '../models/family.js';
import { openFamily } from '../models/registry.js';
import { loadImage } from '../processing/image.js';
import { TextProcessor } from '../processing/prompt.js';
import { f32, Session } from '../runtime/ort.js';
import { BatchDecoder } from './batchDecoder.js';
import { Decoder } from './decoder.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';
import { findSpans, type LmPrompt, type Span } from '../processing/lmPrompt.js';
import { generate } from './generate.js';
import type { GenerateHooks, LmContext } from './step.js';
import { MergedTower, type VitTrace } from '../vitmerge/tower.js';
import { resolveVitMerge, vitMergeLabel } from '../vitmerge/options.js';
import type { VitMergeOptions } from '../vitmerge/policy.js';
import type { GenerateOptions, GenerateResult, ModelInfo, PreparedImage, TextStream, VLM, VLMInput } from './types.js';

/**
 * PreparedImage with what the engine needs; users treat it as opaque. own() binds it to the engine
 * that made it (another model refuses it: same token count or not, its features mean nothing
 * there) and makes it log as a summary, not as megabytes of floats.
 */
interface Prepared extends PreparedImage {
  inputs: ImageInputs;
  features: Float32Array;
  clsAttn?: Float32Array;
  vision?: VitTrace;                  // vitMerge's trace; absent without vitMerge
  vitKey: string;                     // vitMergeLabel of the setting these features were made with
  preprocessMs: number;               // decoding + preprocessing, part of every variant's visionMs
  variants: Map<string, Prepared>;    // the same pixels under other vitMerge settings, encoded on demand
}

const owners = new WeakMap<object, Engine>();

export interface LoadOptions {
  /** Extra decoder stage boundaries to build up front (others are built on first use). */
  boundaries?: number[];
  /**
   * Weights of every Linear (LM, vision tower, projector): 'fp32' (default, the reference), or
   * block-32 'q8' / 'q4' through MatMulNBits. Embeddings and norms stay fp32.
   */
  dtype?: DType;
  /** MatMulNBits accuracy_level for q8/q4: 4 = int8 activations (default, fastest), 0 = fp32 compute. */
  accuracyLevel?: 0 | 1 | 4;
  /** Keep the LM head fp32 in a quantized model (default: quantized like the rest). */
  floatHead?: boolean;
  /** Quantized-weight cache folder (default $LIGHTVLM_CACHE_DIR or ~/.cache/lightvlm); false: no cache. */
  cacheDir?: string | false;
  /** Progress of the first (uncached) quantization: parameters done of about `total`. */
  onProgress?: (p: { phase: 'quantize'; done: number; total: number }) => void;
  /** Non-fatal problems (e.g. an unwritable cache folder). Default: stderr. */
  onWarning?: (msg: string) => void;
}

function eosIds(dir: string, family: Family, text: TextProcessor): number[] {
  const ids = new Set<number>();
  const add = (v: unknown) => (Array.isArray(v) ? v : v == null ? [] : [v]).forEach((x) => typeof x === 'number' && ids.add(x));
  const gc = path.join(dir, 'generation_config.json');
  if (fs.existsSync(gc)) add(JSON.parse(fs.readFileSync(gc, 'utf8')).eos_token_id);
  if (ids.size === 0) add(family.text.configEosIds);
  if (ids.size === 0) {
    const e = text.tokenizerConfig.eos_token;
    const id = text.tokenId(typeof e === 'string' ? e : ((e as { content?: string })?.content ?? ''));
    if (id !== undefined) ids.add(id);
  }
  return [...ids];
}

export class Engine implements VLM {
  private batch: Promise<BatchDecoder> | null = null;
  private sched: Scheduler | null = null;
  private disposed = false;
  private readonly running = new Set<Promise<unknown>>();

  private constructor(
    readonly dir: string,
    readonly family: Family,
    readonly text: TextProcessor,
    readonly decoder: Decoder,
    private readonly vision: Session,
    readonly ctx: LmContext,
    readonly info: ModelInfo,
    private readonly merged: MergedTower | undefined,
  ) {}

  static async load(dir: string, opts: LoadOptions = {}): Promise<Engine> {
    if (typeof dir !== 'string' || dir === '') throw new LightVLMError(`loadVLM() takes the model folder path as a string; got ${inspect(dir, { depth: 0 })}.`, 'E_OPTION');
    opts = checkLoadOptions(opts);
    const family = openFamily(dir);
    const text = TextProcessor.load(dir);
    const tc = family.text;
    const dtype = opts.dtype ?? 'fp32';
    if (!DTYPES.includes(dtype)) throw new LightVLMError(`unknown dtype '${String(dtype)}'. Valid: ${DTYPES.join(', ')}.`, 'E_OPTION');
    const perLayer = tc.hidden * (tc.heads + 2 * tc.kvHeads) * tc.headDim + tc.heads * tc.headDim * tc.hidden + 3 * tc.hidden * tc.intermediate;
    const lmParams = perLayer * tc.layers + tc.vocab * tc.hidden;
    const quant =
      dtype === 'fp32'
        ? undefined
        : new CachedQuantizer({
            dtype,
            accuracyLevel: opts.accuracyLevel ?? 4,
            modelDir: dir,
            ...(opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {}),
            ...(opts.onProgress ? { onProgress: (done: number) => opts.onProgress!({ phase: 'quantize', done, total: lmParams + family.visionParams }) } : {}),
            warn: opts.onWarning ?? ((m) => process.stderr.write(`warning: ${m}\n`)),
          });
    const graph = quant ? { quant } : {};
    const decoder = new Decoder(family.lm, tc, graph, opts.floatHead ?? false);
    await decoder.init(opts.boundaries ?? []);
    const vision = await Session.create(family.buildVision(graph), 'vision tower');
    quant?.flush();
    const embedding = family.lm.embeddingTable();
    const ctx: LmContext = {
      decoder,
      embedding,
      eosIds: eosIds(dir, family, text),
      maxPositions: tc.maxPositions,
      ropeTheta: tc.ropeTheta,
      ...(tc.mropeSection ? { mropeSection: tc.mropeSection } : {}),
      decode: (ids) => text.decode(ids),
    };
    const info: ModelInfo = {
      modelType: family.modelType,
      layers: tc.layers,
      hiddenSize: tc.hidden,
      heads: tc.heads,
      kvHeads: tc.kvHeads,
      headDim: tc.headDim,
      intermediateSize: tc.intermediate,
      vocabSize: tc.vocab,
      maxPositions: tc.maxPositions,
      lmParams,
      dtype,
      visionParams: family.visionParams,
    };
    const engine = new Engine(dir, family, text, decoder, vision, ctx, info, family.vit ? new MergedTower(family.vit.tower, graph) : undefined);
    if (quant) engine.quantStats = { ...quant.stats, ...(quant.file ? { file: quant.file } : {}) };
    return engine;
  }

  /** What the quantized-weight cache did during load (q8/q4 only): hits, misses, corrupt entries, written. */
  quantStats?: { hits: number; misses: number; corrupt: number; written: boolean; file?: string };

  /**
   * Runs the vision tower on preprocessed pixels (tests feed golden pixel values here); with
   * `vitMerge`, as segments with token merging between them (vitmerge/tower.ts).
   */
  async encodeInputs(inputs: ImageInputs, t0 = performance.now(), vitMerge?: Partial<VitMergeOptions>): Promise<Prepared> {
    this.live();
    const p = await this.encodeRaw(inputs, t0, vitMerge);
    assertFinite(p.features, 'the vision features of this image');
    return this.own(p);
  }

  /** Binds a PreparedImage to this engine and gives it a short summary for console.log / JSON. */
  private own(p: Prepared): Prepared {
    owners.set(p, this);
    const summary = { kind: p.kind, model: this.info.modelType, imageTokens: p.imageTokens, visionMs: p.visionMs };
    Object.defineProperty(p, 'toJSON', { value: () => summary, enumerable: false });
    Object.defineProperty(p, inspect.custom, { value: () => `PreparedImage { model: ${this.info.modelType} (${this.dir}), imageTokens: ${p.imageTokens} }`, enumerable: false });
    return p;
  }

  private async encodeRaw(inputs: ImageInputs, t0: number, vitMerge?: Partial<VitMergeOptions>): Promise<Prepared> {
    const preprocessMs = performance.now() - t0;
    const base = { kind: 'prepared-image' as const, inputs, preprocessMs, variants: new Map<string, Prepared>() };
    if (vitMerge) {
      const vm = resolveVitMerge(vitMerge);
      if (!this.family.vit || !this.merged) throw new LightVLMError(`vitMerge is not supported for ${this.family.modelType} models.`, 'E_UNSUPPORTED');
      // segment graphs for a new setting are built once, off the clock (like the LM's stage graphs)
      const tb = performance.now();
      await this.merged.ready(vm, this.family.vit.depth);
      t0 += performance.now() - tb;
      const r = await this.merged.run(this.family.vit.parts(inputs), vm, this.family.vit.depth);
      return {
        ...base,
        features: r.features,
        ...(r.clsAttn ? { clsAttn: r.clsAttn } : {}),
        vision: r.trace,
        vitKey: vitMergeLabel(vm),
        imageTokens: r.trace.lmKeep?.length ?? this.family.imageTokens(inputs),
        visionMs: performance.now() - t0,
      };
    }
    const want = this.vision.outputNames.includes('cls_attn') ? ['features', 'cls_attn'] : ['features'];
    // Tiles [n, 3, H, W] go through the tower one at a time: the same features as one batch, but
    // the attention intermediates ([heads, tokens, tokens] per tile) are never held for all tiles.
    const tiles = inputs.dims.length === 4 ? inputs.dims[0]! : 1;
    const per = inputs.pixelValues.length / tiles;
    const parts: Record<string, Float32Array>[] = [];
    for (let t = 0; t < tiles; t++) {
      const one = tiles === 1 ? inputs : { ...inputs, pixelValues: inputs.pixelValues.subarray(t * per, (t + 1) * per), dims: [1, ...inputs.dims.slice(1)] };
      const out = await this.vision.run(this.family.visionFeeds(one), want);
      parts.push(Object.fromEntries(want.map((k) => [k, out[k]!.data])));
    }
    const cat = (k: string) => {
      if (parts.length === 1) return parts[0]![k]!;
      const all = new Float32Array(parts.reduce((a, p) => a + p[k]!.length, 0));
      let o = 0;
      for (const p of parts) (all.set(p[k]!, o), (o += p[k]!.length));
      return all;
    };
    return {
      ...base,
      features: cat('features'),
      ...(want.includes('cls_attn') ? { clsAttn: cat('cls_attn') } : {}),
      vitKey: vitMergeLabel(undefined),
      imageTokens: this.family.imageTokens(inputs),
      visionMs: performance.now() - t0,
    };
  }

  /** Largest width × height accepted by prepareImage (the server's --max-image-pixels). */
  maxImagePixels?: number;

  async prepareImage(image: string | Uint8Array, opts: { vitMerge?: Partial<VitMergeOptions> } = {}): Promise<PreparedImage> {
    return this.track(async () => {
      const src = checkImageSource(image);
      if (!(typeof src === 'string' || src instanceof Uint8Array)) throw new LightVLMError('prepareImage() takes a file path or encoded bytes; this image is already prepared.', 'E_IMAGE');
      const vitMerge = opts?.vitMerge;
      if (vitMerge !== undefined && (typeof vitMerge !== 'object' || vitMerge === null)) throw new LightVLMError('prepareImage() option vitMerge must be an object like { mode, layer, keep, layers }.', 'E_OPTION');
      const t0 = performance.now();
      const img = await loadImage(src, this.maxImagePixels !== undefined ? { maxPixels: this.maxImagePixels } : {});
      return this.encodeInputs(this.family.preprocess(img), t0, vitMerge);
    });
  }

  /** The prepared image's features under `vitMerge`: itself, a cached variant, or a new encoding of its pixels. */
  private async variant(img: Prepared, vitMerge: Partial<VitMergeOptions> | undefined): Promise<Prepared> {
    const key = vitMergeLabel(vitMerge && resolveVitMerge(vitMerge));
    if (key === img.vitKey) return img;
    let v = img.variants.get(key);
    if (!v) {
      v = await this.encodeInputs(img.inputs, performance.now() - img.preprocessMs, vitMerge);
      img.variants.set(key, v);
    }
    return v;
  }

  /** Token ids, spans and positions of one user turn about this image. */
  buildPrompt(question: string, img: Prepared): LmPrompt {
    // The chat template places the image; the image token typed in the question would add a second,
    // featureless image slot (or break the family's single-placeholder rule).
    if (this.text.encode(question).includes(this.family.imageTokenId)) {
      const tok = this.text.decode([this.family.imageTokenId], false);
      throw new LightVLMError(`the prompt contains the model's image placeholder ${JSON.stringify(tok)}; remove it from the question (the image is placed for you).`, 'E_PROMPT');
    }
    const rendered = this.text.renderUserTurn(question, true);
    const ids = this.text.encode(this.family.expandPrompt(rendered, img.inputs));
    const spans = findSpans(ids, this.family.imageTokenId);
    const n = spans.reduce((a, s) => a + s.length, 0);
    const full = this.family.imageTokens(img.inputs);
    if (n !== full) throw new LightVLMError(`internal: the prompt holds ${n} image tokens but the image makes ${full}.`, 'E_INTERNAL');
    const prompt = { ids, pos: this.family.positionIds(ids, img.inputs), spans };
    const kept = img.vision?.lmKeep ? keepImageTokens(prompt, img.vision.lmKeep) : prompt;
    const m = kept.spans.reduce((a, s) => a + s.length, 0);
    if (m !== img.imageTokens || m * this.family.text.hidden !== img.features.length) {
      throw new LightVLMError(`internal: the prompt holds ${m} image tokens but the image has ${img.features.length / this.family.text.hidden} features.`, 'E_INTERNAL');
    }
    return {
      ...kept,
      features: img.features,
      ...(img.clsAttn ? { clsAttn: img.clsAttn } : {}),
      grids: this.family.tokenGrids(img.inputs),
      visionMs: img.visionMs,
    };
  }

  private async resolve(input: VLMInput, vitMerge: Partial<VitMergeOptions> | undefined): Promise<Prepared> {
    const image = input.image;
    if (typeof image === 'string' || image instanceof Uint8Array) {
      const t0 = performance.now();
      const img = await loadImage(image, this.maxImagePixels !== undefined ? { maxPixels: this.maxImagePixels } : {});
      return this.encodeInputs(this.family.preprocess(img), t0, vitMerge);
    }
    const owner = owners.get(image);
    if (!owner) throw new LightVLMError('image looks like a PreparedImage but was not made by prepareImage(); pass what prepareImage() returned.', 'E_IMAGE');
    if (owner !== this) {
      throw new LightVLMError(
        `this PreparedImage was made by another model (${owner.info.modelType} at ${owner.dir}); its features mean nothing to ${this.info.modelType} at ${this.dir}. Call prepareImage() on this model.`,
        'E_IMAGE',
      );
    }
    return this.variant(image as Prepared, vitMerge);
  }

  /** Refuses work after dispose(). */
  private live(): void {
    if (this.disposed) throw new LightVLMError(`this model (${this.dir}) was disposed; load it again with loadVLM().`, 'E_DISPOSED');
  }

  /** Runs `work` as one in-flight call: dispose() waits for it before releasing the sessions. */
  private async track<T>(work: () => Promise<T>): Promise<T> {
    this.live();
    const p = work();
    this.running.add(p);
    try {
      return await p;
    } finally {
      this.running.delete(p);
    }
  }

  /**
   * The scheduler every generate/stream call runs through (created with defaults on first use).
   * Pass options once, before the first request, to bound the batch, the queue and the KV memory.
   */
  scheduler(opts?: SchedulerOptions): Scheduler {
    if (opts && this.sched) throw new LightVLMError('scheduler options must be given before the first request.', 'E_OPTION');
    this.sched ??= new Scheduler(
      { ctx: this.ctx, batchDecoder: () => (this.batch ??= Promise.resolve(new BatchDecoder(this.decoder))) },
      opts,
    );
    return this.sched;
  }

  /** One answer through the scheduler (concurrent calls share decode batches). */
  async generate(input: VLMInput, opts: GenerateOptions = {}, hooks: GenerateHooks = {}): Promise<GenerateResult> {
    return this.track(async () => {
      const inp = checkInput(input) as VLMInput;
      const o = checkGenerateOptions(opts);
      let img: Prepared | undefined;
      const r = await this.scheduler().generate(async () => this.buildPrompt(inp.prompt, (img = await this.resolve(inp, o.acceleration?.vitMerge))), o, hooks);
      return this.withVision(img!, r);
    });
  }

  /** One answer on the calling task alone, outside the scheduler (the reference the batching tests compare to). */
  async generateAlone(input: VLMInput, opts: GenerateOptions = {}, hooks: GenerateHooks = {}): Promise<GenerateResult> {
    return this.track(async () => {
      const inp = checkInput(input) as VLMInput;
      const o = checkGenerateOptions(opts);
      const img = await this.resolve(inp, o.acceleration?.vitMerge);
      return this.withVision(img, await generate(this.ctx, this.buildPrompt(inp.prompt, img), o, hooks));
    });
  }

  /** Adds what the vision tower did: tokens per vision layer, and vitMerge's trace. */
  private withVision(img: Prepared, r: GenerateResult): GenerateResult {
    const vit = this.family.vit;
    const visionTokensPerLayer = img.vision?.tokensPerLayer ?? (vit ? new Array<number>(vit.depth).fill(vit.parts(img.inputs).reduce((a, p) => a + p.layout.tokens, 0)) : undefined);
    return { ...r, stats: { ...r.stats, ...(visionTokensPerLayer ? { visionTokensPerLayer } : {}) }, ...(img.vision ? { vision: img.vision } : {}) };
  }

  /**
   * Incremental detokenisation for one answer: fed the growing token list after each token, returns
   * the new text ('' while a partial UTF-8 sequence (U+FFFD) is pending). Re-decodes from the last
   * stable offset, so the pieces concatenate to the decoded answer.
   */
  textDelta(): (ids: number[]) => string {
    let prefixOffset = 0;
    let readOffset = 0;
    return (ids) => {
      const prefix = this.text.decode(ids.slice(prefixOffset, readOffset));
      const full = this.text.decode(ids.slice(prefixOffset));
      if (full.length > prefix.length && !full.endsWith('\ufffd')) {
        prefixOffset = readOffset;
        readOffset = ids.length;
        return full.slice(prefix.length);
      }
      return '';
    };
  }

  stream(input: VLMInput, opts: GenerateOptions = {}): TextStream {
    const queue: string[] = [];
    let wake: (() => void) | null = null;
    let done = false;
    const delta = this.textDelta();
    const onToken = (ids: number[]) => {
      const piece = delta(ids);
      if (piece) {
        queue.push(piece);
        wake?.();
      }
    };
    // breaking out of the loop (or the caller's signal) aborts the sequence: it leaves the batch
    const abort = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, abort.signal]) : abort.signal;
    const result = this.generate(input, { ...opts, signal }, { onToken }).finally(() => {
      done = true;
      wake?.();
    });
    result.catch(() => {});
    return {
      result,
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            if (queue.length) yield queue.shift()!;
            else if (done) {
              await result; // surfaces errors
              return;
            } else await new Promise<void>((r) => (wake = r));
          }
        } finally {
          if (!done) abort.abort();
        }
      },
    };
  }

  /** Releases the ONNX sessions once calls in flight end. Idempotent; later calls throw E_DISPOSED. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.allSettled([...this.running]);
    if (this.batch) (await this.batch).release();
    await this.decoder.release();
    await this.vision.release();
    await this.merged?.release();
  }
}

/**
 * The prompt with only the image tokens `keep` (ascending indices over all image tokens) left:
 * vitMerge `reduce`. 1-D RoPE positions are renumbered (the shorter prompt, as pre-LM methods do);
 * M-RoPE rows keep the kept tokens' original (t, h, w) ids.
 */
function keepImageTokens(p: { ids: number[]; pos: Int32Array[]; spans: Span[] }, keep: Int32Array): { ids: number[]; pos: Int32Array[]; spans: Span[] } {
  const isKept = new Uint8Array(p.spans.reduce((a, s) => a + s.length, 0));
  for (const k of keep) isKept[k] = 1;
  const rows: number[] = [];
  const spans: Span[] = [];
  let next = 0;
  let img = 0;
  for (const s of p.spans) {
    for (let i = next; i < s.start; i++) rows.push(i);
    const start = rows.length;
    for (let i = 0; i < s.length; i++, img++) if (isKept[img]) rows.push(s.start + i);
    spans.push({ start, length: rows.length - start, origLength: rows.length - start });
    next = s.start + s.length;
  }
  for (let i = next; i < p.ids.length; i++) rows.push(i);
  const ids = rows.map((i) => p.ids[i]!);
  const pos = p.pos.length === 1 ? [Int32Array.from(ids, (_, i) => i)] : p.pos.map((r) => Int32Array.from(rows, (i) => r[i]!));
  return { ids, pos, spans };
}

export const loadVLM = (dir: string, opts?: LoadOptions): Promise<VLM> => Engine.load(dir, opts);
export { f32 };
