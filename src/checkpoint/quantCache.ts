// Quantized weights cached on disk, so only the first load of a checkpoint at a dtype pays for
// quantization. One file per (checkpoint content, dtype, engine version):
//
//   <dir>/<fingerprint>-<dtype>.lvq = "LVQ1" | u32 LE header length | header JSON | payload
//   header  { format, engine, dtype, entries: { key: { bits, K, N, off, len, crc } } }
//   entry   B | scales | zeroPoints (quantSizes() bytes each), at payload offset `off`
//
// Each entry carries its own CRC-32, checked when it is read: a corrupt entry is re-quantized and
// the file rewritten (format 1 used SHA-1: ~1.5 s per cached load of a 1B model; CRC-32 ~0.1 s).
// Writers build a private temporary file and rename() it into place, so two
// processes loading at once never see a half-written file (the last rename wins; both are valid).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from '../util/crc32.js';
import { quantize, quantSizes, type LinearQuantizer, type QuantizedLinear } from '../graph/quant.js';

/** Bump when the quantized layout or rounding changes: old files then miss instead of being misread. */
export const QUANT_FORMAT = 2;
const MAGIC = 'LVQ1';

interface Entry {
  bits: 4 | 8;
  K: number;
  N: number;
  off: number;
  len: number;
  crc: number;
}
interface Header {
  format: number;
  engine: string;
  dtype: string;
  entries: Record<string, Entry>;
}

const ENGINE_VERSION = (() => {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'package.json')) && path.dirname(d) !== d) d = path.dirname(d);
  try {
    return String(JSON.parse(fs.readFileSync(path.join(d, 'package.json'), 'utf8')).version);
  } catch {
    return 'unknown';
  }
})();

/** The cache folder: option, else $LIGHTVLM_CACHE_DIR, else $XDG_CACHE_HOME/lightvlm, else ~/.cache/lightvlm. */
export function defaultCacheDir(): string {
  if (process.env.LIGHTVLM_CACHE_DIR) return process.env.LIGHTVLM_CACHE_DIR;
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'lightvlm');
}

/**
 * A content fingerprint of a model folder that costs milliseconds, not a pass over gigabytes:
 * config.json, and per safetensors file its name, size, mtime, header and 16 sampled 64 KB windows.
 */
export function checkpointFingerprint(dir: string): string {
  const h = crypto.createHash('sha256');
  h.update(`lvq${QUANT_FORMAT}|${ENGINE_VERSION}|`);
  const cfg = path.join(dir, 'config.json');
  if (fs.existsSync(cfg)) h.update(fs.readFileSync(cfg));
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort();
  const win = Buffer.alloc(64 * 1024);
  for (const f of files) {
    const fd = fs.openSync(path.join(dir, f), 'r');
    try {
      const st = fs.fstatSync(fd);
      h.update(`|${f}|${st.size}|${st.mtimeMs}|`);
      const samples = 16;
      for (let i = 0; i <= samples; i++) {
        const pos = Math.max(0, Math.floor(((st.size - win.length) * i) / samples));
        const n = fs.readSync(fd, win, 0, win.length, pos);
        h.update(win.subarray(0, n));
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return h.digest('hex').slice(0, 32);
}


function unpack(buf: Uint8Array, e: Entry): QuantizedLinear {
  const sz = quantSizes(e.bits, e.N, e.K);
  return {
    bits: e.bits,
    K: e.K,
    N: e.N,
    B: buf.subarray(0, sz.b),
    scales: new Float32Array(buf.buffer, buf.byteOffset + sz.b, sz.s / 4),
    zeroPoints: buf.subarray(sz.b + sz.s, sz.b + sz.s + sz.z),
  };
}

export interface QuantizerOptions {
  dtype: 'q8' | 'q4';
  accuracyLevel: number;
  /** Checkpoint folder (fingerprinted); with `cacheDir: false` nothing is read or written. */
  modelDir: string;
  cacheDir?: string | false;
  /** Called after each weight quantized on a cache miss: parameters done so far. */
  onProgress?: (doneParams: number) => void;
  /** Warnings (an unwritable cache folder): the load carries on without the cache. */
  warn?: (msg: string) => void;
}

/** The LinearQuantizer graph builders use: cache hit, or quantize now and remember for flush(). */
export class CachedQuantizer implements LinearQuantizer {
  readonly bits: 4 | 8;
  readonly accuracyLevel: number;
  readonly file: string | undefined;
  private header: Header | undefined;
  private payloadStart = 0;
  private pending = new Map<string, QuantizedLinear>();
  private dirty = false;
  private done = 0;
  /** What the last load did, for tests and the load log. */
  readonly stats = { hits: 0, misses: 0, corrupt: 0, written: false };

  constructor(private readonly o: QuantizerOptions) {
    this.bits = o.dtype === 'q4' ? 4 : 8;
    this.accuracyLevel = o.accuracyLevel;
    if (o.cacheDir === false) return;
    const dir = o.cacheDir ?? defaultCacheDir();
    this.file = path.join(dir, `${checkpointFingerprint(o.modelDir)}-${o.dtype}.lvq`);
    this.readHeader();
  }

  private readHeader(): void {
    this.header = undefined;
    if (!this.file || !fs.existsSync(this.file)) return;
    try {
      const fd = fs.openSync(this.file, 'r');
      try {
        const pre = Buffer.alloc(8);
        fs.readSync(fd, pre, 0, 8, 0);
        if (pre.toString('latin1', 0, 4) !== MAGIC) throw new Error('bad magic');
        const len = pre.readUInt32LE(4);
        const hb = Buffer.alloc(len);
        if (fs.readSync(fd, hb, 0, len, 8) !== len) throw new Error('short header');
        const h = JSON.parse(hb.toString('utf8')) as Header;
        if (h.format !== QUANT_FORMAT || h.engine !== ENGINE_VERSION || h.dtype !== this.o.dtype) throw new Error('stale');
        this.header = h;
        this.payloadStart = 8 + len;
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      this.stats.corrupt++;
      this.dirty = true; // unreadable or stale: rebuilt from scratch at flush()
    }
  }

  private read(key: string, p: { out: number; in: number }): QuantizedLinear | undefined {
    const e = this.header?.entries[key];
    if (!e || !this.file || e.bits !== this.bits || e.N !== p.out || e.K !== p.in) return undefined;
    const buf = new Uint8Array(e.len);
    try {
      const fd = fs.openSync(this.file, 'r');
      try {
        if (fs.readSync(fd, buf, 0, e.len, this.payloadStart + e.off) !== e.len) throw new Error('short read');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return undefined;
    }
    if (crc32(buf) !== e.crc) {
      this.stats.corrupt++;
      this.dirty = true;
      delete this.header!.entries[key];
      return undefined;
    }
    return unpack(buf, e);
  }

  get(p: { w: Float32Array; out: number; in: number; key?: string }): QuantizedLinear {
    if (p.key) {
      const hit = this.read(p.key, p);
      if (hit) {
        this.stats.hits++;
        return hit;
      }
      this.stats.misses++;
    }
    const q = quantize(p.w, p.out, p.in, this.bits);
    if (p.key && this.file) {
      this.pending.set(p.key, q);
      this.dirty = true;
    }
    this.done += p.out * p.in;
    this.o.onProgress?.(this.done);
    return q;
  }

  /**
   * Writes cached + newly quantized entries to a private temporary file and renames it into place.
   * Drops the in-memory copies. A failure to write only warns: the engine works without a cache.
   */
  flush(): void {
    if (!this.dirty || !this.file) return;
    const tmp = `${this.file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      const entries: Record<string, Entry> = {};
      const sources: { key: string; q?: QuantizedLinear; from?: Entry }[] = [];
      let off = 0;
      const add = (key: string, e: Omit<Entry, 'off'>, src: { q?: QuantizedLinear; from?: Entry }) => {
        entries[key] = { ...e, off };
        sources.push({ key, ...src });
        off += e.len;
      };
      for (const [key, e] of Object.entries(this.header?.entries ?? {})) if (!this.pending.has(key)) add(key, e, { from: e });
      for (const [key, q] of this.pending) {
        const sz = quantSizes(q.bits, q.N, q.K);
        const crc = crc32(q.B, new Uint8Array(q.scales.buffer, q.scales.byteOffset, q.scales.byteLength), q.zeroPoints);
        add(key, { bits: q.bits, K: q.K, N: q.N, len: sz.b + sz.s + sz.z, crc }, { q });
      }
      const hb = Buffer.from(JSON.stringify({ format: QUANT_FORMAT, engine: ENGINE_VERSION, dtype: this.o.dtype, entries } satisfies Header));
      const pre = Buffer.alloc(8);
      pre.write(MAGIC, 0, 'latin1');
      pre.writeUInt32LE(hb.length, 4);
      const out = fs.openSync(tmp, 'w');
      const old = sources.some((s) => s.from) ? fs.openSync(this.file, 'r') : undefined;
      try {
        fs.writeSync(out, pre);
        fs.writeSync(out, hb);
        for (const s of sources) {
          if (s.q) {
            fs.writeSync(out, s.q.B);
            fs.writeSync(out, new Uint8Array(s.q.scales.buffer, s.q.scales.byteOffset, s.q.scales.byteLength));
            fs.writeSync(out, s.q.zeroPoints);
          } else {
            const buf = Buffer.alloc(s.from!.len);
            fs.readSync(old!, buf, 0, buf.length, this.payloadStart + s.from!.off);
            fs.writeSync(out, buf);
          }
        }
        fs.fsyncSync(out);
      } finally {
        fs.closeSync(out);
        if (old !== undefined) fs.closeSync(old);
      }
      fs.renameSync(tmp, this.file);
      this.stats.written = true;
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      this.o.warn?.(`could not write the quantized-weight cache ${this.file} (${(e as Error).message}); the next load quantizes again. Set LIGHTVLM_CACHE_DIR to a writable folder.`);
    }
    this.pending.clear();
    this.dirty = false;
    this.readHeader();
  }
}
