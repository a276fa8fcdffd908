// The token-embedding table [V, D] without holding it in memory: each lookup reads the rows it
// needs straight from the safetensors file (pread of D values per row) and widens bf16/fp16 to fp32.
// A 151k × 896 bf16 table is 272 MB on disk and was 544 MB of fp32 in RSS plus ~1 s of widening at
// every load; a prompt needs a few thousand rows, a decode step one.
import fs from 'node:fs';
import { LightVLMError } from '../errors.js';
import { widenInto, type TensorEntry } from './safetensors.js';

/** What the engine needs from an embedding table: rows copied out as fp32. */
export interface EmbeddingTable {
  readonly vocab: number;
  readonly dim: number;
  /** Writes row `id` (D floats) into `out` at float offset `at`. */
  copyRow(id: number, out: Float32Array, at: number): void;
  /** Rows of `ids` as one [ids.length, D] array. */
  rows(ids: ArrayLike<number>): Float32Array;
}

/** An in-memory [V, D] fp32 table (tests, tiny models). */
export class ArrayEmbedding implements EmbeddingTable {
  readonly vocab: number;
  constructor(private readonly data: Float32Array, readonly dim: number) {
    this.vocab = data.length / dim;
  }
  copyRow(id: number, out: Float32Array, at: number): void {
    checkId(id, this.vocab);
    out.set(this.data.subarray(id * this.dim, (id + 1) * this.dim), at);
  }
  rows(ids: ArrayLike<number>): Float32Array {
    const out = new Float32Array(ids.length * this.dim);
    for (let i = 0; i < ids.length; i++) this.copyRow(ids[i]!, out, i * this.dim);
    return out;
  }
}

function checkId(id: number, V: number): void {
  if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new LightVLMError(`internal: token id ${id} is outside the embedding table (vocabulary ${V}).`, 'E_INTERNAL');
}

/**
 * Rows read on demand from a safetensors tensor entry (F32, BF16 or F16). The file is opened per
 * call (a few µs), so nothing has to be closed when the engine is disposed; a file replaced by
 * rename() while the engine runs is read from its new version, which is what a reload would do.
 */
export class FileEmbedding implements EmbeddingTable {
  readonly vocab: number;
  readonly dim: number;
  private readonly buf: Buffer;

  constructor(private readonly e: TensorEntry) {
    if (e.shape.length !== 2) throw new LightVLMError(`the embedding table ${e.file} has shape ${JSON.stringify(e.shape)}, expected [vocab, hidden].`, 'E_CHECKPOINT');
    if (!['F32', 'BF16', 'F16'].includes(e.dtype)) throw new LightVLMError(`the embedding table has dtype ${e.dtype}; supported: F32, BF16, F16.`, 'E_UNSUPPORTED');
    [this.vocab, this.dim] = e.shape as [number, number];
    this.buf = Buffer.alloc(this.dim * (e.dtype === 'F32' ? 4 : 2));
  }

  copyRow(id: number, out: Float32Array, at: number): void {
    const fd = fs.openSync(this.e.file, 'r');
    try {
      this.read(fd, id, out, at);
    } finally {
      fs.closeSync(fd);
    }
  }

  rows(ids: ArrayLike<number>): Float32Array {
    const out = new Float32Array(ids.length * this.dim);
    const fd = fs.openSync(this.e.file, 'r');
    try {
      for (let i = 0; i < ids.length; i++) this.read(fd, ids[i]!, out, i * this.dim);
    } finally {
      fs.closeSync(fd);
    }
    return out;
  }

  private read(fd: number, id: number, out: Float32Array, at: number): void {
    checkId(id, this.vocab);
    const { buf } = this;
    const pos = this.e.begin + id * buf.length;
    if (fs.readSync(fd, buf, 0, buf.length, pos) !== buf.length) throw new LightVLMError(`${this.e.file} ended while reading embedding row ${id}: the file is truncated or was changed. Re-download the checkpoint.`, 'E_CHECKPOINT');
    widenInto(this.e.dtype, buf, out, at);
  }
}
