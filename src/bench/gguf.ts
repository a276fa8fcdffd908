// A small GGUF (v3) writer and header reader, and ggml's f16 / q8_0 / q4_0 block encodings, so the
// llama.cpp comparison (bench/llamacpp.ts) can run llama.cpp on the very weights lightvlm runs.
//
// File layout (llama.cpp gguf.h / docs "GGUF"): magic "GGUF", u32 version = 3, u64 tensor count,
// u64 metadata count, the metadata key/values, the tensor infos (name, n_dims, ne[0..n_dims) with
// ne[0] the contiguous dimension, ggml type, u64 offset into the data section), zero padding to
// `general.alignment` (32), then the tensor data, each tensor at an offset that is a multiple of
// the alignment. Strings are a u64 byte length + UTF-8 bytes. Everything little-endian.
import fs from 'node:fs';

/** ggml tensor types this writer encodes (ggml.h enum values). */
export const GGML_TYPE = { f32: 0, f16: 1, q4_0: 2, q8_0: 8 } as const;
export type GgmlTypeName = keyof typeof GGML_TYPE;

/** Elements per block and bytes per block of each type (ggml type traits). */
const TRAITS: Record<GgmlTypeName, { block: number; bytes: number }> = {
  f32: { block: 1, bytes: 4 },
  f16: { block: 1, bytes: 2 },
  q8_0: { block: 32, bytes: 2 + 32 },     // fp16 scale d, then 32 int8: x = q * d
  q4_0: { block: 32, bytes: 2 + 16 },     // fp16 scale d, then 32 nibbles: x = (q - 8) * d
};

/** GGUF metadata value types (gguf.h). */
const VT = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, str: 8, arr: 9, u64: 10, i64: 11, f64: 12 } as const;
type Scalar = 'u32' | 'i32' | 'f32' | 'bool' | 'str' | 'u64';

/** One metadata value; arrays hold scalars of one type. */
export type MetaValue =
  | { type: 'u32' | 'i32' | 'f32'; value: number }
  | { type: 'u64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'str'; value: string }
  | { type: 'arr'; of: 'i32' | 'f32' | 'u32'; value: ArrayLike<number> }
  | { type: 'arr'; of: 'str'; value: readonly string[] };

export interface TensorSource {
  name: string;
  ne: number[];                  // ggml order: ne[0] is the contiguous (innermost) dimension
  type: GgmlTypeName;
  data: () => Uint8Array;        // called once, while writing, so only one tensor is held at a time
}

export const ALIGNMENT = 32;

export function tensorBytes(type: GgmlTypeName, ne: readonly number[]): number {
  const t = TRAITS[type];
  if (ne[0]! % t.block !== 0) throw new Error(`gguf: ${type} needs ne[0] (${ne[0]}) divisible by ${t.block}`);
  return (ne.reduce((a, b) => a * b, 1) / t.block) * t.bytes;
}

/** Growable little-endian byte sink for the header. */
class Sink {
  private buf = Buffer.alloc(1 << 16);
  length = 0;
  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  // room() may replace this.buf, so it runs before this.buf is read (not as an argument of its method)
  u32(v: number) { const at = this.room(4); this.buf.writeUInt32LE(v, at); }
  i32(v: number) { const at = this.room(4); this.buf.writeInt32LE(v, at); }
  f32(v: number) { const at = this.room(4); this.buf.writeFloatLE(v, at); }
  u64(v: bigint | number) { const at = this.room(8); this.buf.writeBigUInt64LE(BigInt(v), at); }
  u8(v: number) { const at = this.room(1); this.buf.writeUInt8(v, at); }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    const at = this.room(b.length);
    b.copy(this.buf, at);
  }
  bytes(): Buffer { return this.buf.subarray(0, this.length); }
}

function writeScalar(s: Sink, type: Scalar, v: number | bigint | boolean | string): void {
  if (type === 'u32') s.u32(v as number);
  else if (type === 'i32') s.i32(v as number);
  else if (type === 'f32') s.f32(v as number);
  else if (type === 'u64') s.u64(v as bigint);
  else if (type === 'bool') s.u8(v ? 1 : 0);
  else s.str(v as string);
}

const alignUp = (n: number): number => Math.ceil(n / ALIGNMENT) * ALIGNMENT;

/** Writes a GGUF v3 file: metadata in insertion order, tensors in array order. Returns its size. */
export function writeGguf(file: string, meta: ReadonlyMap<string, MetaValue>, tensors: readonly TensorSource[]): number {
  const h = new Sink();
  h.u32(0x46554747); // "GGUF" read as a little-endian u32
  h.u32(3);
  h.u64(tensors.length);
  h.u64(meta.size + (meta.has('general.alignment') ? 0 : 1));
  for (const [key, v] of meta) {
    h.str(key);
    h.u32(VT[v.type]);
    if (v.type === 'arr') {
      h.u32(VT[v.of]);
      h.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) writeScalar(h, v.of, v.value[i]!);
    } else {
      writeScalar(h, v.type, v.value);
    }
  }
  if (!meta.has('general.alignment')) {
    h.str('general.alignment');
    h.u32(VT.u32);
    h.u32(ALIGNMENT);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    h.str(t.name);
    h.u32(t.ne.length);
    for (const d of t.ne) h.u64(d);
    h.u32(GGML_TYPE[t.type]);
    h.u64(offset);
    offsets.push(offset);
    offset = alignUp(offset + tensorBytes(t.type, t.ne));
  }
  const fd = fs.openSync(file, 'w');
  try {
    const header = h.bytes();
    fs.writeSync(fd, header);
    const dataStart = alignUp(header.length);
    tensors.forEach((t, i) => {
      const data = t.data();
      const want = tensorBytes(t.type, t.ne);
      if (data.length !== want) throw new Error(`gguf: tensor ${t.name} has ${data.length} bytes, its shape and type need ${want}`);
      fs.writeSync(fd, data, 0, data.length, dataStart + offsets[i]!);
    });
    const end = dataStart + offset;
    fs.ftruncateSync(fd, end); // the padding after the last tensor
    return end;
  } finally {
    fs.closeSync(fd);
  }
}

export interface GgufHeader {
  version: number;
  meta: Map<string, number | bigint | boolean | string | (number | bigint | boolean | string)[]>;
  tensors: { name: string; ne: number[]; type: number; offset: number }[];
  dataOffset: number;            // absolute file offset of the data section
}

/** Reads the header of a GGUF file (metadata and tensor infos; the data is left on disk). */
export function readGgufHeader(file: string): GgufHeader {
  const fd = fs.openSync(file, 'r');
  let buf: Buffer;
  try {
    // Headers of big vocabularies are a few MB; read what is there up to 64 MB.
    buf = Buffer.alloc(Math.min(fs.fstatSync(fd).size, 64 << 20));
    fs.readSync(fd, buf, 0, buf.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  let p = 0;
  const u32 = () => { const v = buf.readUInt32LE(p); p += 4; return v; };
  const u64 = () => { const v = buf.readBigUInt64LE(p); p += 8; return v; };
  const str = () => { const n = Number(u64()); const s = buf.toString('utf8', p, p + n); p += n; return s; };
  const scalar = (t: number): number | bigint | boolean | string => {
    switch (t) {
      case VT.u8: return buf.readUInt8(p++);
      case VT.i8: return buf.readInt8(p++);
      case VT.u16: { const v = buf.readUInt16LE(p); p += 2; return v; }
      case VT.i16: { const v = buf.readInt16LE(p); p += 2; return v; }
      case VT.u32: return u32();
      case VT.i32: { const v = buf.readInt32LE(p); p += 4; return v; }
      case VT.f32: { const v = buf.readFloatLE(p); p += 4; return v; }
      case VT.bool: return buf.readUInt8(p++) !== 0;
      case VT.str: return str();
      case VT.u64: return u64();
      case VT.i64: { const v = buf.readBigInt64LE(p); p += 8; return v; }
      case VT.f64: { const v = buf.readDoubleLE(p); p += 8; return v; }
      default: throw new Error(`gguf: unknown value type ${t} at byte ${p}`);
    }
  };
  if (u32() !== 0x46554747) throw new Error(`${file} is not a GGUF file (bad magic)`);
  const version = u32();
  const nTensors = Number(u64());
  const nMeta = Number(u64());
  const meta: GgufHeader['meta'] = new Map();
  for (let i = 0; i < nMeta; i++) {
    const key = str();
    const t = u32();
    if (t === VT.arr) {
      const of = u32();
      const n = Number(u64());
      const arr: (number | bigint | boolean | string)[] = new Array(n);
      for (let j = 0; j < n; j++) arr[j] = scalar(of);
      meta.set(key, arr);
    } else {
      meta.set(key, scalar(t));
    }
  }
  const tensors: GgufHeader['tensors'] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nd = u32();
    const ne = Array.from({ length: nd }, () => Number(u64()));
    tensors.push({ name, ne, type: u32(), offset: Number(u64()) });
  }
  const align = Number(meta.get('general.alignment') ?? ALIGNMENT);
  return { version, meta, tensors, dataOffset: Math.ceil(p / align) * align };
}

// ---- block encodings (ggml-quants.c reference rows; fp32 arithmetic mirrored with Math.fround) ----

const f32 = new Float32Array(1);
const u32v = new Uint32Array(f32.buffer);

/** IEEE binary16 bits of a float, rounded to nearest even (what F16C's vcvtps2ph does). */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const b = u32v[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);        // inf / nan
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;                                 // overflow: inf
  if (e <= 0) {                                                        // subnormal half (or zero)
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && (half & 1)) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // a carry out of the mantissa rolls into the exponent, as it should
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && (half & 1)) ? 1 : 0));
}

/** C's roundf: halves away from zero (Math.round rounds -2.5 to -2). */
const roundf = (v: number): number => (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5));

/** q8_0 of a row (length a multiple of 32): per block d = amax / 127, q = roundf(x / d). */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 34);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    dv.setUint16(b * 34, floatToHalf(d), true);
    for (let j = 0; j < 32; j++) dv.setInt8(b * 34 + 2 + j, roundf(Math.fround(x[b * 32 + j]! * id)));
  }
  return out;
}

/**
 * q4_0 of a row: per block the value of largest magnitude m (sign kept), d = m / -8, and
 * q = min(15, trunc(x / d + 8.5)); byte j holds q[j] in its low nibble and q[j + 16] in its high one.
 */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 18);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[b * 32 + j]!;
      if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; }
    }
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    dv.setUint16(b * 18, floatToHalf(d), true);
    const q = (v: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(v * id) + 8.5)));
    for (let j = 0; j < 16; j++) out[b * 18 + 2 + j] = q(x[b * 32 + j]!) | (q(x[b * 32 + 16 + j]!) << 4);
  }
  return out;
}

/** Encodes fp32 values as `type` (rows of ne[0] values; blocks never straddle rows as ne[0] % 32 = 0). */
export function encode(type: GgmlTypeName, x: Float32Array): Uint8Array {
  if (type === 'f32') return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (type === 'f16') {
    const out = new Uint16Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = floatToHalf(x[i]!);
    return new Uint8Array(out.buffer);
  }
  return type === 'q8_0' ? quantizeQ8_0(x) : quantizeQ4_0(x);
}
