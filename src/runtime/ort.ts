// The only module that imports onnxruntime-node. Everything else passes plain typed arrays and dims.
// Session options follow onnxruntime-notes.md §10: several sessions run one after another, so idle
// workers must stop spinning (force_spinning_stop), and per-session arenas are off to keep RSS flat.
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { LightVLMError } from '../errors.js';

export type FeedValue =
  | { type: 'float32'; data: Float32Array; dims: readonly number[] }
  | { type: 'int64'; data: BigInt64Array; dims: readonly number[] };

export interface Output {
  data: Float32Array;
  dims: number[];
}

export interface SessionOptions {
  threads?: number;
}

let defaultThreads = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);

/** Intra-op threads for sessions created from now on (the CLI's --threads). */
export function setDefaultThreads(n: number): void {
  defaultThreads = n;
}

export class Session {
  private constructor(private readonly s: ort.InferenceSession, readonly name: string) {}

  static async create(model: Uint8Array, name: string, opts: SessionOptions = {}): Promise<Session> {
    try {
      const s = await ort.InferenceSession.create(model, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: opts.threads ?? defaultThreads,
        enableCpuMemArena: false,
        logSeverityLevel: 3,
        extra: { session: { force_spinning_stop: '1' } },
      });
      return new Session(s, name);
    } catch (e) {
      // A failure here is a bug in a graph we built, not user input; keep ORT's text for the report.
      throw new LightVLMError(`internal error: could not build the ${name} graph (${(e as Error).message.split('\n')[0]}). Please report this with the model's config.json.`, 'E_INTERNAL');
    }
  }

  get inputNames(): readonly string[] {
    return this.s.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.s.outputNames;
  }

  /** Runs the graph. Inputs are zero-copy views; only `fetch` outputs are computed and copied back. */
  async run(feeds: Record<string, FeedValue>, fetch: readonly string[]): Promise<Record<string, Output>> {
    const t: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) t[k] = new ort.Tensor(v.type, v.data, v.dims as number[]);
    let res: ort.InferenceSession.OnnxValueMapType;
    try {
      res = await this.s.run(t, fetch as string[]);
    } catch (e) {
      throw new LightVLMError(`internal error while running the ${this.name} graph (${(e as Error).message.split('\n')[0]}).`, 'E_INTERNAL');
    }
    const out: Record<string, Output> = {};
    for (const k of fetch) {
      const v = res[k]!;
      out[k] = { data: v.data as Float32Array, dims: v.dims as number[] };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.s.release();
  }
}

export const f32 = (data: Float32Array, dims: readonly number[]): FeedValue => ({ type: 'float32', data, dims });
export const i64 = (data: BigInt64Array, dims: readonly number[]): FeedValue => ({ type: 'int64', data, dims });
