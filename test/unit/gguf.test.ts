// GGUF writer (bench/gguf.ts): header + metadata round trip through the reader, tensor data at
// aligned offsets, and the f16 / q8_0 / q4_0 encodings against blocks computed by hand from
// ggml-quants.c's reference rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ALIGNMENT, GGML_TYPE, floatToHalf, type MetaValue, quantizeQ4_0, quantizeQ8_0, readGgufHeader, tensorBytes, writeGguf } from '../../src/bench/gguf.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lightvlm-gguf-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

test('floatToHalf: exact values, round to nearest even, subnormals, overflow', () => {
  assert.equal(floatToHalf(1), 0x3c00);
  assert.equal(floatToHalf(-2), 0xc000);
  assert.equal(floatToHalf(0), 0x0000);
  assert.equal(floatToHalf(-0), 0x8000);
  assert.equal(floatToHalf(65504), 0x7bff);           // largest half
  assert.equal(floatToHalf(65520), 0x7c00);           // rounds up to inf
  assert.equal(floatToHalf(1 / 3), 0x3555);           // 0x3555.55.. -> down
  assert.equal(floatToHalf(0.1), 0x2e66);             // 0x2e66.66.. -> nearest
  assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00);    // exact tie, even mantissa stays
  assert.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02); // exact tie, odd mantissa rounds up
  assert.equal(floatToHalf(2 ** -24), 0x0001);        // smallest subnormal
  assert.equal(floatToHalf(2 ** -25), 0x0000);        // tie between 0 and 2^-24: even (0)
  assert.equal(floatToHalf(3 * 2 ** -25), 0x0002);    // tie between 1 and 2 ulps: even (2)
  assert.equal(floatToHalf(2 ** -14), 0x0400);        // smallest normal
});

test('q8_0: d = amax/127 as fp16, q = roundf(x/d) (halves away from zero)', () => {
  // amax 127 -> d = 1 exactly (fp16 0x3c00), so q is x rounded; 2.5 -> 3 and -2.5 -> -3 (roundf).
  const x = new Float32Array(32);
  const want = new Int8Array(32);
  for (let j = 0; j < 32; j++) { x[j] = j - 16; want[j] = j - 16; }
  x[0] = 127; want[0] = 127;
  x[1] = -2.5; want[1] = -3;
  x[2] = 2.5; want[2] = 3;
  x[3] = 0.49; want[3] = 0;
  x[4] = -126.6; want[4] = -127;
  const b = quantizeQ8_0(x);
  assert.equal(b.length, 34);
  assert.deepEqual([...b.subarray(0, 2)], [0x00, 0x3c]);
  assert.deepEqual([...new Int8Array(b.buffer, 2, 32)], [...want]);
  // second block all zero: d = 0, q = 0; a block with amax 254 has d = 2 (0x4000), q = x/2
  const y = new Float32Array(64);
  y[32] = -254; y[33] = 5; // 5/2 = 2.5 -> 3
  const c = quantizeQ8_0(y);
  assert.deepEqual([...c.subarray(0, 34)], new Array(34).fill(0));
  assert.deepEqual([...c.subarray(34, 36)], [0x00, 0x40]);
  assert.deepEqual([...new Int8Array(c.buffer, 36, 2)], [-127, 3]);
});

test('q4_0: d = m/-8 with m the signed extreme, q = min(15, trunc(x/d + 8.5)), nibbles j | j+16', () => {
  // m = -8 -> d = 1 (0x3c00): q = trunc(x + 8.5) capped at 15
  const x = new Float32Array(32);
  x[0] = -8;      // 0
  x[1] = 7;       // 15
  x[2] = 7.9;     // 16.4 -> 15 (cap)
  x[3] = 0.5;     // 9
  x[4] = -0.5;    // 8
  x[5] = -0.6;    // 7.9 -> 7
  x[16] = 3;      // 11, high nibble of byte 0
  x[17] = -7.6;   // 0.9 -> 0, high nibble of byte 1
  x[31] = 1.2;    // 9.7 -> 9, high nibble of byte 15
  const b = quantizeQ4_0(x);
  assert.equal(b.length, 18);
  assert.deepEqual([...b.subarray(0, 2)], [0x00, 0x3c]);
  const q = new Array(32).fill(8);
  Object.assign(q, { 0: 0, 1: 15, 2: 15, 3: 9, 4: 8, 5: 7, 16: 11, 17: 0, 31: 9 });
  const want = Array.from({ length: 16 }, (_, j) => q[j] | (q[j + 16] << 4));
  assert.deepEqual([...b.subarray(2)], want);
  // m = +16 -> d = -2 (0xc000), x/d = -x/2: 16 -> 0, -14 -> 15, 1 -> trunc(8.0) = 8, -1 -> 9
  const y = new Float32Array(32);
  y[0] = 16; y[1] = -14; y[2] = 1; y[3] = -1;
  const c = quantizeQ4_0(y);
  assert.deepEqual([...c.subarray(0, 2)], [0x00, 0xc0]);
  assert.deepEqual([...c.subarray(2, 6)], [0x80, 0x8f, 0x88, 0x89]);
  // all-zero block: d = 0 / -8 = -0 (fp16 0x8000, as ggml writes it), every q = 8
  assert.deepEqual([...quantizeQ4_0(new Float32Array(32))], [0x00, 0x80, ...new Array(16).fill(0x88)]);
});

test('writeGguf -> readGgufHeader round trip: metadata of every kind, tensor infos, aligned data', () => {
  const meta = new Map<string, MetaValue>([
    ['general.architecture', { type: 'str', value: 'qwen2' }],
    ['qwen2.block_count', { type: 'u32', value: 24 }],
    ['qwen2.rope.freq_base', { type: 'f32', value: 1e6 }],
    ['qwen2.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-6 }],
    ['some.signed', { type: 'i32', value: -7 }],
    ['some.big', { type: 'u64', value: 2n ** 40n }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: false }],
    ['tokenizer.ggml.tokens', { type: 'arr', of: 'str', value: ['a', 'Ġb', '<|im_end|>', 'é'] }],
    ['tokenizer.ggml.token_type', { type: 'arr', of: 'i32', value: Int32Array.from([1, 1, 3, 4]) }],
    // larger than the writer's first 64 KB header buffer, so the header grows while being written
    ['tokenizer.ggml.merges', { type: 'arr', of: 'str', value: Array.from({ length: 20000 }, (_, i) => `Ġ${i} x${i}`) }],
  ]);
  const w = Float32Array.from({ length: 64 }, (_, i) => (i - 30) / 7);
  const tensors = [
    { name: 'norm', ne: [5], type: 'f32' as const, data: () => new Uint8Array(Float32Array.from([1, 2, 3, 4, 5]).buffer) },
    { name: 'w8', ne: [32, 2], type: 'q8_0' as const, data: () => quantizeQ8_0(w) },
    { name: 'w4', ne: [64, 1], type: 'q4_0' as const, data: () => quantizeQ4_0(w) },
  ];
  const file = path.join(tmp, 'rt.gguf');
  const size = writeGguf(file, meta, tensors);
  const h = readGgufHeader(file);
  assert.equal(h.version, 3);
  assert.equal(h.meta.get('general.architecture'), 'qwen2');
  assert.equal(h.meta.get('qwen2.block_count'), 24);
  assert.equal(h.meta.get('qwen2.rope.freq_base'), 1e6);
  assert.equal(h.meta.get('qwen2.attention.layer_norm_rms_epsilon'), Math.fround(1e-6));
  assert.equal(h.meta.get('some.signed'), -7);
  assert.equal(h.meta.get('some.big'), 2n ** 40n);
  assert.equal(h.meta.get('tokenizer.ggml.add_bos_token'), false);
  assert.deepEqual(h.meta.get('tokenizer.ggml.tokens'), ['a', 'Ġb', '<|im_end|>', 'é']);
  assert.deepEqual(h.meta.get('tokenizer.ggml.token_type'), [1, 1, 3, 4]);
  const merges = h.meta.get('tokenizer.ggml.merges') as string[];
  assert.equal(merges.length, 20000);
  assert.equal(merges[19999], 'Ġ19999 x19999');
  assert.equal(h.meta.get('general.alignment'), ALIGNMENT); // added by the writer
  assert.deepEqual(h.tensors.map((t) => [t.name, t.ne, t.type]), [['norm', [5], GGML_TYPE.f32], ['w8', [32, 2], GGML_TYPE.q8_0], ['w4', [64, 1], GGML_TYPE.q4_0]]);
  assert.deepEqual(h.tensors.map((t) => t.offset), [0, 32, 32 + 96]); // 20 B -> 32, 68 B -> 96
  assert.equal(h.dataOffset % ALIGNMENT, 0);
  assert.equal(size, h.dataOffset + 192); // 128 + 36 B of w4, padded to 32
  assert.equal(fs.statSync(file).size, size);
  const bytes = fs.readFileSync(file);
  const at = (i: number) => bytes.subarray(h.dataOffset + h.tensors[i]!.offset, h.dataOffset + h.tensors[i]!.offset + tensorBytes(tensors[i]!.type, tensors[i]!.ne));
  assert.deepEqual([...new Float32Array(Uint8Array.from(at(0)).buffer)], [1, 2, 3, 4, 5]);
  assert.deepEqual([...at(1)], [...quantizeQ8_0(w)]);
  assert.deepEqual([...at(2)], [...quantizeQ4_0(w)]);
});

test('writeGguf refuses a tensor whose bytes do not match its shape and type', () => {
  assert.throws(() => writeGguf(path.join(tmp, 'bad.gguf'), new Map(), [{ name: 'x', ne: [32, 2], type: 'q4_0', data: () => new Uint8Array(18) }]), /36/);
  assert.throws(() => tensorBytes('q8_0', [40, 1]), /divisible by 32/);
});
