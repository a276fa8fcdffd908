// The cached-load path: CRC-32 (cache entry check) and the file-backed embedding table.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { test } from 'node:test';
import { ArrayEmbedding, FileEmbedding } from '../../src/checkpoint/embedding.js';
import { openCheckpoint } from '../../src/checkpoint/safetensors.js';
import { crc32, crc32Js } from '../../src/util/crc32.js';

test('crc32: the IEEE check value, split input, and the JS fallback equal zlib', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  assert.equal(crc32(Buffer.from('1234'), Buffer.from('56789')), 0xcbf43926);
  const data = new Uint8Array(100_003).map((_, i) => (i * 2654435761) >>> 24);
  assert.equal(crc32Js(data), zlib.crc32 ? zlib.crc32(data) : crc32(data));
  const flipped = data.slice();
  flipped[5000]! ^= 1;
  assert.notEqual(crc32(flipped), crc32(data));
});

/** A one-file checkpoint holding [V, D] tables in F32, BF16 and F16 (values exact in all three). */
function writeTables(dir: string, V: number, D: number): Float32Array {
  const vals = Float32Array.from({ length: V * D }, (_, i) => (i % 7) * 0.25 - 0.75 + Math.floor(i / 7)); // multiples of 1/4: exact in bf16 and fp16
  const f32 = Buffer.from(vals.buffer.slice(0));
  const bf16 = Buffer.alloc(V * D * 2);
  const f16 = Buffer.alloc(V * D * 2);
  const u32 = new Uint32Array(vals.buffer);
  for (let i = 0; i < V * D; i++) {
    bf16.writeUInt16LE(u32[i]! >>> 16, 2 * i);
    // fp16 of a small exact value: sign, exponent rebased 127 → 15, top 10 mantissa bits
    const b = u32[i]!;
    const e = (b >>> 23) & 0xff;
    f16.writeUInt16LE(e === 0 ? (b >>> 16) & 0x8000 : ((b >>> 16) & 0x8000) | ((e - 112) << 10) | ((b >>> 13) & 0x3ff), 2 * i);
  }
  const header: Record<string, unknown> = {};
  let off = 0;
  const parts: Buffer[] = [];
  for (const [name, dtype, buf] of [['t.f32', 'F32', f32], ['t.bf16', 'BF16', bf16], ['t.f16', 'F16', f16]] as const) {
    header[name] = { dtype, shape: [V, D], data_offsets: [off, off + buf.length] };
    off += buf.length;
    parts.push(buf);
  }
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(path.join(dir, 'model.safetensors'), Buffer.concat([len, h, ...parts]));
  return vals;
}

test('FileEmbedding: rows read from the file equal the widened table, in F32, BF16 and F16', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvq-emb-'));
  try {
    const V = 11;
    const D = 6;
    const vals = writeTables(dir, V, D);
    const store = openCheckpoint(dir);
    const ids = [3, 0, 10, 3, 7];
    const want = new ArrayEmbedding(vals, D).rows(ids);
    for (const name of ['t.f32', 't.bf16', 't.f16']) {
      const table = new FileEmbedding(store.entries.get(name)!);
      assert.equal(table.vocab, V);
      assert.equal(table.dim, D);
      assert.deepEqual(table.rows(ids), want, name);
      assert.deepEqual(table.rows(ids), new ArrayEmbedding(store.float(name).data, D).rows(ids), name);
      const one = new Float32Array(2 * D);
      table.copyRow(10, one, D);
      assert.deepEqual(one.subarray(D), vals.subarray(10 * D, 11 * D));
      assert.throws(() => table.rows([V]), /outside the embedding table/);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
