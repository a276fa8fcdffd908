// Streaming safetensors writer with seeded random fill, for `make-checkpoint`.
// Layout per file: u64 LE header length, JSON header (padded with spaces to a multiple of 8 bytes),
// then the tensors' bytes back to back in header order. Nothing larger than one staging buffer is
// held in memory; generation of the next buffer overlaps with the write of the previous one.
import fs from 'node:fs';
import os from 'node:os';
import type { Init, TensorSpec } from './shapes.js';

export type DType = 'bf16' | 'fp32';

export const dtypeBytes = (d: DType): number => (d === 'bf16' ? 2 : 4);
const ST_DTYPE: Record<DType, string> = { bf16: 'BF16', fp32: 'F32' };

export const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

export interface Shard {
  file: string; // base name, e.g. model-00001-of-00002.safetensors
  tensors: TensorSpec[];
  bytes: number; // tensor data bytes
}

/** Splits the (name-sorted) tensors into shards of at most `maxBytes` data bytes, like HF save_pretrained. */
export function planShards(tensors: TensorSpec[], dtype: DType, maxBytes: number): Shard[] {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const groups: Shard[] = [];
  let cur: Shard = { file: '', tensors: [], bytes: 0 };
  for (const t of sorted) {
    const b = numel(t.shape) * dtypeBytes(dtype);
    if (cur.tensors.length > 0 && cur.bytes + b > maxBytes) {
      groups.push(cur);
      cur = { file: '', tensors: [], bytes: 0 };
    }
    cur.tensors.push(t);
    cur.bytes += b;
  }
  if (cur.tensors.length > 0) groups.push(cur);
  const n = groups.length;
  const pad = (i: number) => String(i).padStart(5, '0');
  groups.forEach((g, i) => (g.file = n === 1 ? 'model.safetensors' : `model-${pad(i + 1)}-of-${pad(n)}.safetensors`));
  return groups;
}

/** The header bytes (length prefix included) for `tensors` in order. */
export function headerBytes(tensors: TensorSpec[], dtype: DType): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const t of tensors) {
    const b = numel(t.shape) * dtypeBytes(dtype);
    header[t.name] = { dtype: ST_DTYPE[dtype], shape: t.shape, data_offsets: [off, off + b] };
    off += b;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const body = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + body.length);
  out.writeBigUInt64LE(BigInt(body.length), 0);
  body.copy(out, 8);
  return out;
}

// ------------------------------------------------------------------ random values
// A normal distribution quantised to 65536 levels (inverse CDF at the bin centres); each output value
// takes 16 bits of an xorshift32 stream as its index, so one PRNG step yields two values.

/** Acklam's rational approximation of the standard normal quantile (rel. error < 1.2e-9). */
function normQuantile(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -normQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

let unitTable: Float32Array | null = null;
function unitNormalTable(): Float32Array {
  if (!unitTable) {
    unitTable = new Float32Array(65536);
    for (let k = 0; k < 65536; k++) unitTable[k] = normQuantile((k + 0.5) / 65536);
  }
  return unitTable;
}

/** fp32 → bf16 bits, round to nearest even. */
export function toBF16Bits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  if ((u & 0x7f800000) === 0x7f800000) return u >>> 16; // inf / nan
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

const tables = new Map<string, Uint16Array | Float32Array>();
function scaledTable(std: number, dtype: DType): Uint16Array | Float32Array {
  const key = `${dtype}:${std}`;
  let tab = tables.get(key);
  if (!tab) {
    const unit = unitNormalTable();
    if (dtype === 'fp32') {
      tab = new Float32Array(65536);
      for (let k = 0; k < 65536; k++) tab[k] = unit[k] * std;
    } else {
      tab = new Uint16Array(65536);
      for (let k = 0; k < 65536; k++) tab[k] = toBF16Bits(unit[k] * std);
    }
    tables.set(key, tab);
  }
  return tab;
}

/** Per-tensor PRNG seed: FNV-1a of the name mixed with the user seed (never 0, as xorshift needs). */
export function tensorSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ Math.imul(seed | 0, 0x9e3779b1);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0 || 0x12345678;
}

/** Fills out[0..n) from the table with the PRNG state `s`; returns the new state. */
function fillNormal(out: Uint16Array | Float32Array, tab: Uint16Array | Float32Array, s: number): number {
  const n = out.length;
  const even = n & ~1;
  let x = s | 0;
  for (let i = 0; i < even; i += 2) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = tab[x & 0xffff];
    out[i + 1] = tab[(x >>> 16) & 0xffff];
  }
  if (even < n) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[even] = tab[x & 0xffff];
  }
  return x;
}

// ------------------------------------------------------------------ writing
const STAGE_BYTES = 16 << 20;

/** Writes one safetensors file for `tensors` (already in file order). `onBytes(n)` reports data written. */
export async function writeSafetensors(file: string, tensors: TensorSpec[], dtype: DType, seed: number, onBytes?: (n: number) => void): Promise<void> {
  if (os.endianness() !== 'LE') throw new Error('make-checkpoint writes little-endian tensors and needs a little-endian host.');
  const eb = dtypeBytes(dtype);
  const fh = await fs.promises.open(file, 'w');
  try {
    await fh.write(headerBytes(tensors, dtype));
    const bufs = [new Uint8Array(new ArrayBuffer(STAGE_BYTES)), new Uint8Array(new ArrayBuffer(STAGE_BYTES))];
    let cur = 0;
    let pos = 0;
    let pending: Promise<unknown> | null = null;
    const flush = async () => {
      if (pending) await pending;
      const buf = bufs[cur];
      const len = pos;
      pending = writeAll(fh, buf, len).then(() => onBytes?.(len));
      cur ^= 1;
      pos = 0;
    };
    for (const t of tensors) {
      let remaining = numel(t.shape);
      const init: Init = t.init;
      const tab = init.kind === 'normal' ? scaledTable(init.std, dtype) : null;
      const constBits = init.kind === 'const' ? (dtype === 'bf16' ? toBF16Bits(init.value) : init.value) : 0;
      let state = tensorSeed(seed, t.name);
      while (remaining > 0) {
        const n = Math.min(remaining, (STAGE_BYTES - pos) / eb);
        const u8 = bufs[cur];
        const view = dtype === 'bf16' ? new Uint16Array(u8.buffer, pos, n) : new Float32Array(u8.buffer, pos, n);
        if (tab) state = fillNormal(view, tab, state);
        else view.fill(constBits);
        pos += n * eb;
        remaining -= n;
        if (pos === STAGE_BYTES) await flush();
      }
    }
    if (pos > 0) await flush();
    if (pending) await pending;
  } finally {
    await fh.close();
  }
}

async function writeAll(fh: fs.promises.FileHandle, buf: Uint8Array, len: number): Promise<void> {
  let off = 0;
  while (off < len) {
    const { bytesWritten } = await fh.write(buf, off, len - off);
    off += bytesWritten;
  }
}
