// The same LLaVA checkpoint in the other layouts Hugging Face writes: transformers-4 files
// (flat preprocessor_config.json, chat template inside tokenizer_config.json), the newer
// `model.language_model.*` weight names, sharded weights with an index, and fp16 / bf16 storage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readHeader, SafetensorsStore } from '../../src/checkpoint/safetensors.js';
import { Engine } from '../../src/engine/vlm.js';
import { ints, loadGolden, MODELS, relL2 } from '../helpers.js';

type Dtype = 'F32' | 'F16' | 'BF16';

function encode(x: Float32Array, dtype: Dtype): Buffer {
  if (dtype === 'F32') return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  const out = Buffer.alloc(x.length * 2);
  const u = new Uint32Array(Float32Array.from(x).buffer);
  for (let i = 0; i < x.length; i++) {
    if (dtype === 'BF16') out.writeUInt16LE(((u[i]! + 0x7fff + ((u[i]! >> 16) & 1)) >>> 16) & 0xffff, 2 * i);
    else out.writeUInt16LE(toHalf(x[i]!), 2 * i);
  }
  return out;
}

function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const b = new Uint32Array(f.buffer)[0]!;
  const sign = (b >>> 16) & 0x8000;
  const e = ((b >>> 23) & 0xff) - 127 + 15;
  const m = b & 0x7fffff;
  if (e <= 0) return sign | Math.round((m | 0x800000) / 2 ** (14 - e));
  if (e >= 31) return sign | 0x7c00;
  return sign | ((e << 10) + Math.round(m / 8192)); // a rounding carry moves into the exponent
}

function writeFile(file: string, tensors: [string, number[], Float32Array][], dtype: Dtype): void {
  const header: Record<string, unknown> = {};
  const bufs: Buffer[] = [];
  let off = 0;
  for (const [name, shape, data] of tensors) {
    const b = encode(data, dtype);
    header[name] = { dtype, shape, data_offsets: [off, off + b.length] };
    bufs.push(b);
    off += b.length;
  }
  let h = Buffer.from(JSON.stringify(header));
  h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, ...bufs]));
}

/** tiny-llava rewritten with the newer names, two shards, transformers-4 side files. */
function variant(dtype: Dtype): string {
  const src = MODELS['tiny-llava']!.dir;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lightvlm-layout-${dtype}-`));
  const store = new SafetensorsStore(readHeader(path.join(src, 'model.safetensors')));
  const rename = (n: string) =>
    n.startsWith('language_model.model.') ? n.replace('language_model.model.', 'model.language_model.')
    : n === 'language_model.lm_head.weight' ? 'lm_head.weight'
    : 'model.' + n;
  const all = store.names().map((n) => [rename(n), store.entries.get(n)!.shape, store.float(n).data] as [string, number[], Float32Array]);
  const half = Math.ceil(all.length / 2);
  const shards = [all.slice(0, half), all.slice(half)];
  const weightMap: Record<string, string> = {};
  shards.forEach((s, i) => {
    const f = `model-0000${i + 1}-of-00002.safetensors`;
    writeFile(path.join(dir, f), s, dtype);
    for (const [n] of s) weightMap[n] = f;
  });
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  for (const f of ['config.json', 'tokenizer.json', 'generation_config.json']) fs.copyFileSync(path.join(src, f), path.join(dir, f));
  const proc = JSON.parse(fs.readFileSync(path.join(src, 'processor_config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify(proc.image_processor));
  const tc = JSON.parse(fs.readFileSync(path.join(src, 'tokenizer_config.json'), 'utf8'));
  tc.chat_template = fs.readFileSync(path.join(src, 'chat_template.jinja'), 'utf8');
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tc));
  return dir;
}

test('transformers-4 files, model.language_model.* names and sharded fp32 weights give the golden answer', async () => {
  const g = loadGolden('tiny-llava');
  const e = await Engine.load(variant('F32'));
  const want = ints(g.outputs.get('generated_ids')!);
  const r = await e.generate({ image: g.image, prompt: g.question }, { maxNewTokens: want.length, minNewTokens: want.length });
  assert.deepEqual(r.tokenIds, want);
  await e.dispose();
});

for (const dtype of ['F16', 'BF16'] as const) {
  test(`${dtype} weights load (widened to fp32) and stay close to the fp32 model`, async () => {
    const g = loadGolden('tiny-llava');
    const e32 = await Engine.load(MODELS['tiny-llava']!.dir);
    const e16 = await Engine.load(variant(dtype));
    const first = async (e: Engine) => {
      let l: Float32Array | undefined;
      await e.generate({ image: g.image, prompt: g.question }, { maxNewTokens: 1 }, { onLogits: (x) => (l ??= x) });
      return l!;
    };
    const err = relL2(await first(e16), await first(e32));
    assert.ok(err > 0 && err < (dtype === 'F16' ? 2e-3 : 2e-2), `${dtype} rel err ${err}`);
    await e32.dispose();
    await e16.dispose();
  });
}
