// The scheduler of many sequences: every generate/stream call of an Engine (the library, the CLI
// and the HTTP server alike) runs through it.
//
//  * Admission: a request waits (FIFO, at most `maxQueue` waiting) for a running slot
//    (`maxBatch`), then its image is encoded, then it waits until its KV reservation fits in
//    `kvMemory` bytes. The reservation is an upper bound of the sequence's cache computed from its
//    own acceleration settings (merged prompt rows, KV budget), and shrinks to the real rows once
//    prefill is done: compressed sequences let more requests run at once.
//  * Interleaving: ONNX Runtime blocks the event loop, so compute is serialised through one
//    lock (ComputeLock). The decode loop takes it for one batched step of every decoding sequence, a prefilling
//    sequence takes it for one unit (the vision pass, then one merge stage at a time): a new image
//    stalls running answers for at most one stage between two decode steps.
//  * Batched decode: all pending decode steps go through BatchDecoder as one batch (weights read
//    once per step); the LM head runs on the B rows together. A lone sequence uses the
//    single-sequence graphs, so one user never pays for the batch graphs.
//  * Cancellation: an aborted signal rejects the sequence at its next gate or step; its caches
//    are dropped with it and its reservation is returned.
import { LightVLMError } from '../errors.js';
import type { BatchDecoder } from './batchDecoder.js';
import { resolvePrefill } from '../merge/plan.js';
import { boundsDecodeRows } from '../kvcache/registry.js';
import type { LmPrompt } from '../processing/lmPrompt.js';
import { generate } from './generate.js';
import { forwardOne, type DecodeStepInput, type GenerateHooks, type LmContext } from './step.js';
import type { GenerateOptions, GenerateResult } from './types.js';

export interface SchedulerOptions {
  maxBatch?: number;   // sequences running at once (default 16)
  maxQueue?: number;   // requests waiting for a slot or memory before new ones are refused (default 256)
  kvMemory?: number;   // bytes of KV cache for all running sequences together (default: unbounded)
}

/** What the scheduler needs from the engine (no import of vlm.ts: no circle). */
export interface SchedulerHost {
  ctx: LmContext;
  batchDecoder(): Promise<BatchDecoder>;
}

export interface SchedulerStats {
  queued: number;      // waiting for a slot or for KV memory
  running: number;     // admitted (prefilling or decoding)
  decoding: number;    // in the decode batch
  kvBytes: number;     // bytes held by the running sequences' caches (as of the last step)
  kvReserved: number;  // bytes reserved for them
  lastBatch: number;   // sequences in the last decode step
}

/** A request refused because the waiting queue is full (HTTP 429). */
export class QueueFullError extends LightVLMError {
  constructor(readonly retryAfterSeconds: number) {
    super(`the server is at capacity (waiting queue full); retry in about ${retryAfterSeconds} s.`, 'E_BUSY');
  }
}

/** Generation stopped because the caller's AbortSignal fired. */
export class AbortedError extends LightVLMError {
  constructor() {
    super('generation was cancelled.', 'E_ABORTED');
    this.name = 'AbortError';
  }
}

/**
 * The compute lock. Prefill units wait FIFO; the decode loop (one waiter at most) and the prefill
 * line take turns: after a decode step the next prefill unit runs, after a prefill unit the next
 * decode step. So a burst of new images costs the running answers one stage per step, not all of
 * their prefills at once, and a stream of decode steps never starves a waiting prefill.
 */
class ComputeLock {
  private held = false;
  private lastDecode = false;
  private decodeWaiter: (() => void) | null = null;
  private prefills: (() => void)[] = [];

  async acquire(kind: 'decode' | 'prefill'): Promise<() => void> {
    if (this.held) await new Promise<void>((r) => (kind === 'decode' ? (this.decodeWaiter = r) : this.prefills.push(r)));
    this.held = true;
    this.lastDecode = kind === 'decode';
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const decode = this.decodeWaiter;
      if (decode && !(this.lastDecode && this.prefills.length)) {
        this.decodeWaiter = null;
        decode();
      } else if (this.prefills.length) this.prefills.shift()!();
      else this.held = false;
    };
  }
}

interface Step {
  s: DecodeStepInput;
  signal: AbortSignal | undefined;
  resolve: (r: { logits: Float32Array; scores: Map<number, Float32Array> }) => void;
  reject: (e: unknown) => void;
}

interface Waiter {
  ready: () => boolean;
  wake: () => void;
}

interface Seq {
  reserved: number;
  caches: DecodeStepInput['caches'] | null;
}

const check = (signal: AbortSignal | undefined) => {
  if (signal?.aborted) throw new AbortedError();
};

export class Scheduler {
  private lock = new ComputeLock();
  private pending: Step[] = [];
  private running = new Set<Seq>();
  private slotLine: Waiter[] = [];
  private memoryLine: Waiter[] = [];
  private queued = 0;
  private looping = false;
  private reserved = 0;
  private kvBytes = 0;
  private lastBatch = 0;
  readonly maxBatch: number;
  readonly maxQueue: number;
  readonly kvMemory: number;
  /** Called after every decode step (server metrics). */
  onStep?: (batch: number, ms: number) => void;

  constructor(private readonly host: SchedulerHost, opts: SchedulerOptions = {}) {
    this.maxBatch = opts.maxBatch ?? 16;
    this.maxQueue = opts.maxQueue ?? 256;
    this.kvMemory = opts.kvMemory ?? Infinity;
  }

  stats(): SchedulerStats {
    const decoding = [...this.running].filter((s) => s.caches).length;
    return { queued: this.queued, running: this.running.size, decoding, kvBytes: this.kvBytes, kvReserved: this.reserved, lastBatch: this.lastBatch };
  }

  /** Bytes of one cache row of one layer (K and V). */
  private get rowBytes(): number {
    const { kvHeads, headDim } = this.host.ctx.decoder.cfg;
    return 2 * kvHeads * headDim * 4;
  }

  /**
   * Upper bound of a sequence's cache bytes from its settings: every layer holds the text rows
   * plus the image rows its merge stage keeps (all of them before the first stage), plus the
   * generated rows the KV policy lets accumulate (budget + eviction period for budgeted policies).
   */
  reservation(prompt: LmPrompt, opts: GenerateOptions): number {
    const L = this.host.ctx.decoder.cfg.layers;
    const T = prompt.ids.length;
    const N = prompt.spans.reduce((a, s) => a + s.length, 0);
    const plan = resolvePrefill(opts.acceleration?.prefill, L);
    const maxNew = opts.maxNewTokens ?? 64;
    let rows = 0;
    const preKeep = plan.preLm ? (opts.acceleration?.prefill?.keep ?? 0.35) : 1;
    for (let l = 0; l < L; l++) {
      const stage = [...plan.stages].reverse().find((s) => s.layer <= l);
      rows += T - N + Math.ceil(N * preKeep * (stage?.keep ?? 1)) + prompt.spans.length;
    }
    const d = opts.acceleration?.decode;
    const every = d?.every ?? 32;
    const capped = d && boundsDecodeRows(d.method) ? (d.budget ?? 1024) + every + 1 : Infinity;
    return (rows + L * Math.min(maxNew, capped)) * this.rowBytes;
  }

  /**
   * Waits in `line` (FIFO) until `ready()`; throws on abort. Two lines: requests holding a slot
   * that wait for KV memory, and requests waiting for a slot; a line only moves at its head, so
   * a large request is not starved by smaller ones behind it.
   */
  private async waitFor(line: Waiter[], ready: () => boolean, signal: AbortSignal | undefined, admit: () => void): Promise<void> {
    // `admit` runs in the same tick as the check that passed: two requests never both see room for one
    if (line.length === 0 && ready()) return admit();
    await new Promise<void>((resolve, reject) => {
      const w = { ready, wake: () => (signal?.removeEventListener('abort', onAbort), admit(), resolve()) };
      const onAbort = () => {
        line.splice(line.indexOf(w), 1);
        reject(new AbortedError());
        this.pump();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      line.push(w);
    });
  }

  private pump(): void {
    for (const line of [this.memoryLine, this.slotLine]) while (line.length && line[0]!.ready()) line.shift()!.wake();
  }

  private async acquire(signal: AbortSignal | undefined): Promise<() => void> {
    const release = await this.lock.acquire('prefill');
    if (signal?.aborted) {
      release();
      throw new AbortedError();
    }
    return release;
  }

  /** Runs one request: `prepare` (image encoding + prompt) as one compute unit, then prefill and batched decode. */
  async generate(prepare: () => Promise<LmPrompt>, opts: GenerateOptions, hooks: GenerateHooks = {}): Promise<GenerateResult> {
    const signal = opts.signal;
    check(signal);
    if (this.queued >= this.maxQueue) throw new QueueFullError(Math.max(1, Math.ceil(this.queued / Math.max(1, this.maxBatch))));
    const seq: Seq = { reserved: 0, caches: null };
    let hold: (() => void) | null = null;
    // queued = waiting for a running slot or for KV memory (not yet running)
    const queue = async (line: Waiter[], ready: () => boolean, admit: () => void) => {
      this.queued++;
      try {
        await this.waitFor(line, ready, signal, admit);
      } finally {
        this.queued--;
      }
    };
    try {
      await queue(this.slotLine, () => this.running.size < this.maxBatch, () => this.running.add(seq));
      hold = await this.acquire(signal);
      const prompt = await prepare();
      hold();
      hold = null;
      const need = this.reservation(prompt, opts);
      if (need > this.kvMemory) {
        throw new LightVLMError(`this request needs up to ${(need / 2 ** 20).toFixed(1)} MiB of KV cache but the server holds at most ${(this.kvMemory / 2 ** 20).toFixed(1)} MiB (--kv-memory); lower max_tokens or use KV compression.`, 'E_PROMPT_TOO_LONG');
      }
      await queue(this.memoryLine, () => this.reserved + need <= this.kvMemory, () => {
        this.reserved += need;
        seq.reserved = need;
      });
      hold = await this.acquire(signal);
      return await generate(this.host.ctx, prompt, opts, {
        ...hooks,
        beforePrefillStage: async () => {
          hold?.();
          hold = null;
          hold = await this.acquire(signal);
        },
        decodeStep: (s) => {
          if (!seq.caches) {
            // prefill is over: the reservation shrinks to the rows held plus what decoding may add
            hold?.();
            hold = null;
            seq.caches = s.caches;
            const held = s.caches.reduce((a, c) => a + c.bytes, 0);
            const left = Math.max(0, seq.reserved - this.reservation(prompt, { ...opts, maxNewTokens: 0 }));
            const shrunk = Math.min(seq.reserved, held + left);
            this.reserved -= seq.reserved - shrunk;
            seq.reserved = shrunk;
            this.pump();
          }
          return this.enqueue(s, signal);
        },
      });
    } finally {
      hold?.();
      this.running.delete(seq);
      this.reserved -= seq.reserved;
      seq.caches = null;
      this.kvBytes = [...this.running].reduce((a, s) => a + (s.caches?.reduce((b, c) => b + c.bytes, 0) ?? 0), 0);
      this.pump();
    }
  }

  private enqueue(s: DecodeStepInput, signal: AbortSignal | undefined): Promise<{ logits: Float32Array; scores: Map<number, Float32Array> }> {
    check(signal);
    return new Promise((resolve, reject) => {
      this.pending.push({ s, signal, resolve, reject });
      if (!this.looping) {
        this.looping = true;
        setImmediate(() => void this.loop());
      }
    });
  }

  /** One batched step at a time while steps are pending; each step holds the compute lock. */
  private async loop(): Promise<void> {
    try {
      while (this.pending.length) {
        const release = await this.lock.acquire('decode');
        const batch: Step[] = [];
        for (const p of this.pending.splice(0, this.maxBatch)) {
          if (p.signal?.aborted) p.reject(new AbortedError());
          else batch.push(p);
        }
        const t0 = performance.now();
        try {
          if (batch.length) await this.step(batch);
        } catch (e) {
          for (const p of batch) p.reject(e);
        } finally {
          release();
        }
        this.lastBatch = batch.length;
        this.kvBytes = [...this.running].reduce((a, s) => a + (s.caches?.reduce((b, c) => b + c.bytes, 0) ?? 0), 0);
        if (batch.length) this.onStep?.(batch.length, performance.now() - t0);
        // let every sequence sample its token and submit its next step before the next batch forms
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.looping = false;
    }
  }

  private async step(batch: Step[]): Promise<void> {
    const { ctx } = this.host;
    const dec = ctx.decoder;
    const wantScores = batch.some((p) => p.s.wantScores);
    if (batch.length === 1) {
      batch[0]!.resolve(await forwardOne(ctx, batch[0]!.s));
      return;
    }
    const bd = await this.host.batchDecoder();
    const out = await bd.step(batch.map((p) => ({ caches: p.s.caches, x: p.s.x, position: p.s.position, orig: p.s.orig })), wantScores);
    const { logits } = await dec.logits(out.hidden, batch.length);
    const V = logits.length / batch.length;
    batch.forEach((p, b) => {
      const scores = new Map<number, Float32Array>();
      out.scores?.[b]!.forEach((sc, l) => scores.set(l, sc));
      p.resolve({ logits: logits.slice(b * V, (b + 1) * V), scores });
    });
  }
}
