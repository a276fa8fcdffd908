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

/** Bytes per element of every dtype the safetensors format defines. */
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
};

/** The reference implementation's cap on the JSON header (a larger one is not a safetensors file). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Reads exactly `buf.length` bytes at `pos`, or throws E_CHECKPOINT (a short read never leaves zeros). */
function readFully(fd: number, buf: Buffer, pos: number, file: string): void {
  let got = 0;
  while (got < buf.length) {
    const n = fs.readSync(fd, buf, got, buf.length - got, pos + got);
    if (n === 0) throw new LightVLMError(`${file} ended after ${pos + got} bytes while reading ${buf.length} bytes at offset ${pos}: the file is truncated. Re-download the checkpoint.`, 'E_CHECKPOINT');
    got += n;
  }
}

/**
 * Parses one safetensors header and validates it as the reference implementation does: the header
 * is a JSON object; each tensor has a known dtype, a shape of whole numbers and data_offsets
 * [begin, end] with begin <= end and end - begin = elements × dtype size; the byte ranges tile the
 * data area exactly (no overlap, no gap, nothing past the end of the file). Anything else is an
 * E_CHECKPOINT error naming the file and the tensor.
 */
export function readHeader(file: string): Map<string, TensorEntry> {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const bad = (why: string): never => {
      throw new LightVLMError(`${file} is not a valid safetensors file: ${why}. Re-download the checkpoint.`, 'E_CHECKPOINT');
    };
    if (size < 8) bad(`it has ${size} bytes, fewer than the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    readFully(fd, lenBuf, 0, file);
    const len = lenBuf.readBigUInt64LE(0);
    if (len < 2n || len > BigInt(MAX_HEADER_BYTES) || 8n + len > BigInt(size)) bad(`the header length ${len} does not fit the ${size}-byte file`);
    const hdrLen = Number(len);
    const hdrBuf = Buffer.alloc(hdrLen);
    readFully(fd, hdrBuf, 8, file);
    let header: unknown;
    try {
      header = JSON.parse(hdrBuf.toString('utf8'));
    } catch (e) {
      bad(`the header is not JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('the header is not a JSON object');
    const dataStart = 8 + hdrLen;
    const dataLen = size - dataStart;
    const out = new Map<string, TensorEntry>();
    const ranges: [number, number, string][] = [];
    for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') continue;
      const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e !== 'object' || e === null || Array.isArray(e)) bad(`the entry of tensor ${name} is not an object`);
      const { dtype, shape, data_offsets: offs } = e;
      if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) bad(`tensor ${name} has unknown dtype ${JSON.stringify(dtype)}`);
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(`tensor ${name} has shape ${JSON.stringify(shape)}, not a list of whole numbers`);
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) bad(`tensor ${name} has data_offsets ${JSON.stringify(offs)}, not [begin, end]`);
      const [b, en] = offs as [number, number];
      if (b > en) bad(`tensor ${name} has data_offsets [${b}, ${en}] with begin > end`);
      const want = (shape as number[]).reduce((a, d) => a * d, 1) * DTYPE_BYTES[dtype as string]!;
      if (en - b !== want) bad(`tensor ${name} (${dtype} ${JSON.stringify(shape)}) needs ${want} bytes but data_offsets [${b}, ${en}] hold ${en - b}`);
      if (en > dataLen) bad(`tensor ${name} ends at byte ${en} of the data but the file holds only ${dataLen} data bytes (truncated download?)`);
      ranges.push([b, en, name]);
      out.set(name, { dtype: dtype as string, shape: shape as number[], file, begin: dataStart + b, end: dataStart + en });
    }
    // The ranges must tile [0, dataLen): sorted by begin, each starts where the previous ended.
    ranges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    let at = 0;
    for (const [b, en, name] of ranges) {
      if (b < at) bad(`tensor ${name} (bytes ${b}..${en}) overlaps the tensor before it (which ends at ${at})`);
      if (b > at) bad(`data bytes ${at}..${b} belong to no tensor (before ${name})`);
      at = en;
    }
    if (at !== dataLen) bad(`the tensors end at data byte ${at} but the file holds ${dataLen} data bytes`);
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
    let map: unknown;
    try {
      map = JSON.parse(fs.readFileSync(index, 'utf8')).weight_map;
    } catch (e) {
      throw new LightVLMError(`${index} is not valid JSON (${(e as Error).message}). Re-download the checkpoint.`, 'E_CHECKPOINT');
    }
    if (typeof map !== 'object' || map === null || Array.isArray(map) || !Object.values(map).every((v) => typeof v === 'string')) {
      throw new LightVLMError(`${index} has no "weight_map" object of tensor name → shard file. Re-download the checkpoint.`, 'E_CHECKPOINT');
    }
    for (const shard of new Set(Object.values(map as Record<string, string>))) {
      const f = path.join(dir, shard);
      if (!fs.existsSync(f)) throw new LightVLMError(`missing weight shard ${f} listed in ${index}.`, 'E_CHECKPOINT');
      for (const [k, v] of readHeader(f)) {
        if (entries.has(k)) throw new LightVLMError(`tensor ${k} appears in two shards (${entries.get(k)!.file} and ${f}). Re-download the checkpoint.`, 'E_CHECKPOINT');
        entries.set(k, v);
      }
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
  const out = new Float32Array(dtype === 'F32' ? buf.length / 4 : buf.length / 2);
  widenInto(dtype, buf, out, 0);
  return out;
}

/** Writes the F32 / BF16 / F16 values of `buf` as float32 into `out` from float offset `at`. */
export function widenInto(dtype: string, buf: Uint8Array, out: Float32Array, at: number): void {
  if (dtype === 'F32') {
    new Uint8Array(out.buffer, out.byteOffset + 4 * at, buf.length).set(buf);
    return;
  }
  const n = buf.length / 2;
  // A u16 view (little-endian hosts, as Node's platforms are) instead of readUInt16LE per value:
  // ~5x faster, which is most of a bf16 checkpoint's load time.
  const u16 = buf.byteOffset % 2 === 0 ? new Uint16Array(buf.buffer, buf.byteOffset, n) : new Uint16Array(Uint8Array.from(buf).buffer);
  if (dtype === 'BF16') {
    const u32 = new Uint32Array(out.buffer, out.byteOffset + 4 * at, n);
    for (let i = 0; i < n; i++) u32[i] = u16[i]! << 16; // bf16 is the upper half of an fp32
  } else {
    for (let i = 0; i < n; i++) out[at + i] = halfToFloat(u16[i]!);
  }
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
    if (!SUPPORTED.has(e.dtype)) throw new LightVLMError(`weight ${name} has dtype ${e.dtype}; supported: F32, F16, BF16 (I64, I32 for integer tensors).`, 'E_UNSUPPORTED');
    const buf = Buffer.alloc(e.end - e.begin);
    const fd = fs.openSync(e.file, 'r');
    try {
      readFully(fd, buf, e.begin, e.file);
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
