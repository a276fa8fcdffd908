// Reading `*.safetensors` files (single or sharded through `model.safetensors.index.json`).
// Format: u64 little-endian header length, JSON header { name: { dtype, shape, data_offsets } }, raw data.
// Every tensor is handed out as float32 (bf16/fp16 widened), because the CPU graphs compute in fp32.
import fs from 'node:fs';
import path from 'node:path';
import { LightVLMError } from '../errors.js';

export interface TensorEntry {
  dtype: string;
  shape: number[];
  file: string;
  begin: number; // absolute byte offset in `file`
  end: number;
}

export interface Tensor {
  dims: number[];
  data: Float32Array | BigInt64Array | Int32Array;
}

const SUPPORTED = new Set(['F32', 'F16', 'BF16', 'I64', 'I32']);

/** Parses one safetensors header; throws a LightVLMError naming the file when it is not one. */
export function readHeader(file: string): Map<string, TensorEntry> {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const lenBuf = Buffer.alloc(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const len = Number(lenBuf.readBigUInt64LE(0));
    if (size < 8 || len <= 0 || 8 + len > size) {
      throw new LightVLMError(`${file} is not a safetensors file (bad header length). Re-download the checkpoint.`, 'E_CHECKPOINT');
    }
    const hdrBuf = Buffer.alloc(len);
    fs.readSync(fd, hdrBuf, 0, len, 8);
    let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    try {
      header = JSON.parse(hdrBuf.toString('utf8'));
    } catch {
      throw new LightVLMError(`${file} has a corrupt safetensors header. Re-download the checkpoint.`, 'E_CHECKPOINT');
    }
    const out = new Map<string, TensorEntry>();
    for (const [name, e] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      out.set(name, { dtype: e.dtype, shape: e.shape, file, begin: 8 + len + e.data_offsets[0], end: 8 + len + e.data_offsets[1] });
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/** All tensors of a model folder: `model.safetensors`, or the shards listed in the index file. */
export function openCheckpoint(dir: string): SafetensorsStore {
  const index = path.join(dir, 'model.safetensors.index.json');
  const single = path.join(dir, 'model.safetensors');
  const entries = new Map<string, TensorEntry>();
  if (fs.existsSync(index)) {
    const map = JSON.parse(fs.readFileSync(index, 'utf8')).weight_map as Record<string, string>;
    for (const shard of new Set(Object.values(map))) {
      const f = path.join(dir, shard);
      if (!fs.existsSync(f)) throw new LightVLMError(`missing weight shard ${f} listed in ${index}.`, 'E_CHECKPOINT');
      for (const [k, v] of readHeader(f)) entries.set(k, v);
    }
  } else if (fs.existsSync(single)) {
    for (const [k, v] of readHeader(single)) entries.set(k, v);
  } else {
    throw new LightVLMError(`no weights in ${dir}: expected model.safetensors or model.safetensors.index.json.`, 'E_CHECKPOINT');
  }
  return new SafetensorsStore(entries);
}

/** Widens bf16 (upper 16 bits of an fp32) and IEEE fp16 to float32. */
function toFloat32(dtype: string, buf: Buffer): Float32Array {
  const n = dtype === 'F32' ? buf.length / 4 : buf.length / 2;
  const out = new Float32Array(n);
  if (dtype === 'F32') {
    new Uint8Array(out.buffer).set(buf);
  } else {
    // A u16 view (little-endian hosts, as Node's platforms are) instead of readUInt16LE per value:
    // ~5x faster, which is most of a bf16 checkpoint's load time.
    const u16 = buf.byteOffset % 2 === 0 ? new Uint16Array(buf.buffer, buf.byteOffset, n) : new Uint16Array(Uint8Array.from(buf).buffer);
    if (dtype === 'BF16') {
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u32[i] = u16[i]! << 16; // bf16 is the upper half of an fp32
    } else {
      for (let i = 0; i < n; i++) out[i] = halfToFloat(u16[i]!);
    }
  }
  return out;
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

export class SafetensorsStore {
  constructor(readonly entries: Map<string, TensorEntry>) {}

  has(name: string): boolean {
    return this.entries.has(name);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  /** Parameters held by the tensors whose names start with any of `prefixes`. */
  paramCount(...prefixes: string[]): number {
    let n = 0;
    for (const [name, e] of this.entries) if (prefixes.some((p) => name.startsWith(p))) n += e.shape.reduce((a, b) => a * b, 1);
    return n;
  }

  private raw(name: string): { e: TensorEntry; buf: Buffer } {
    const e = this.entries.get(name);
    if (!e) throw new LightVLMError(`weight ${name} is missing from the checkpoint.`, 'E_CHECKPOINT');
    if (!SUPPORTED.has(e.dtype)) throw new LightVLMError(`weight ${name} has dtype ${e.dtype}; supported: F32, F16, BF16.`, 'E_CHECKPOINT');
    const buf = Buffer.alloc(e.end - e.begin);
    const fd = fs.openSync(e.file, 'r');
    try {
      fs.readSync(fd, buf, 0, buf.length, e.begin);
    } finally {
      fs.closeSync(fd);
    }
    return { e, buf };
  }

  /** A float tensor widened to fp32. */
  float(name: string): { dims: number[]; data: Float32Array } {
    const { e, buf } = this.raw(name);
    if (e.dtype === 'I64' || e.dtype === 'I32') throw new LightVLMError(`weight ${name} is an integer tensor.`, 'E_CHECKPOINT');
    return { dims: e.shape, data: toFloat32(e.dtype, buf) };
  }

  /** Any tensor: floats widened to fp32, I64 as BigInt64Array, I32 as Int32Array. */
  get(name: string): Tensor {
    const { e, buf } = this.raw(name);
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
    if (e.dtype === 'I64') return { dims: e.shape, data: new BigInt64Array(ab) };
    if (e.dtype === 'I32') return { dims: e.shape, data: new Int32Array(ab) };
    return { dims: e.shape, data: toFloat32(e.dtype, buf) };
  }
}

/** Reads a standalone safetensors file (goldens) into a name → tensor map. */
export function readSafetensorsFile(file: string): Map<string, Tensor> {
  const store = new SafetensorsStore(readHeader(file));
  const out = new Map<string, Tensor>();
  for (const n of store.names()) out.set(n, store.get(n));
  return out;
}
