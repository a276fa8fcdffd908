// q8 / q4 models against the transformers goldens (fp32), every method and KV policy under every
// dtype, and the quantized-weight disk cache (reuse, rebuild on corruption and on a changed checkpoint).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Engine } from '../../src/engine/vlm.js';
import { forwardAll } from '../../src/engine/inspect.js';
import { KV_METHODS } from '../../src/kvcache/registry.js';
import { PREFILL_METHODS } from '../../src/merge/plan.js';
import type { DType } from '../../src/graph/quant.js';
import { ints, loadGolden, MODELS, relL2 } from '../helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lightvlm-quant-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// Max over prompt positions of the logits' relative L2 error against the fp32 golden, measured
// (accuracy_level 4): q8 0.018 / 0.018 / 0.020 / 0.027, q4 0.20 / 0.20 / 0.19 / 0.20 for
// tiny-llava / tiny-internvl / tiny-qwen2_vl / synth-llava. Bounds leave ~1.5x headroom.
const BOUND: Record<Exclude<DType, 'fp32'>, number> = { q8: 0.04, q4: 0.3 };

async function goldenLogits(name: string, dtype: DType) {
  const g = loadGolden(name);
  const e = await Engine.load(MODELS[name]!.dir, { dtype, cacheDir: path.join(tmp, 'golden') });
  const pv = g.inputs.get('pixel_values')!;
  const grid = g.inputs.get('image_grid_thw');
  const img = await e.encodeInputs({ pixelValues: pv.data as Float32Array, dims: pv.dims, ...(grid ? { gridThw: ints(grid) as [number, number, number] } : {}) });
  const p = e.buildPrompt(g.question, img);
  const { logits } = await forwardAll(e.ctx, p);
  await e.dispose();
  return { logits, golden: g.outputs.get('logits')!.data as Float32Array, V: e.info.vocabSize, n: p.ids.length };
}

for (const name of ['tiny-llava', 'tiny-internvl', 'tiny-qwen2_vl', 'synth-llava']) {
  for (const dtype of ['q8', 'q4'] as const) {
    test(`${name} ${dtype}: logits at every position within ${BOUND[dtype]} (rel L2) of the fp32 golden`, async () => {
      const { logits, golden, V, n } = await goldenLogits(name, dtype);
      let worst = 0;
      for (let i = 0; i < n; i++) worst = Math.max(worst, relL2(logits.subarray(i * V, (i + 1) * V), golden.subarray(i * V, (i + 1) * V)));
      assert.ok(worst < BOUND[dtype], `worst position rel err ${worst}`);
      // and it is a real quantization error, not a silently-fp32 model
      assert.ok(worst > (dtype === 'q8' ? 1e-3 : 0.05), `suspiciously exact: ${worst}`);
    });
  }
}

test('every prefill method and KV policy runs under q8 and q4 with the same token counts as fp32', async () => {
  const g = loadGolden('tiny-llava');
  const engines = Object.fromEntries(
    await Promise.all((['fp32', 'q8', 'q4'] as const).map(async (d) => [d, await Engine.load(MODELS['tiny-llava']!.dir, { dtype: d, cacheDir: path.join(tmp, 'methods') })])),
  ) as Record<DType, Engine>;
  const imgs = Object.fromEntries(await Promise.all(Object.entries(engines).map(async ([d, e]) => [d, await e.prepareImage(g.image)])));
  for (const method of PREFILL_METHODS) {
    for (const kv of KV_METHODS) {
      const acceleration = { prefill: { method, ...(method === 'none' ? {} : { keep: 0.25 }) }, decode: kv === 'none' || kv === 'stale' ? { method: kv } : { method: kv, budget: 36 } };
      const opts = { maxNewTokens: 16, minNewTokens: 16, acceleration };
      const ref = await engines.fp32.generate({ image: imgs.fp32, prompt: g.question }, opts);
      for (const d of ['q8', 'q4'] as const) {
        const r = await engines[d].generate({ image: imgs[d], prompt: g.question }, opts);
        assert.equal(r.tokenIds.length, 16, `${method}/${kv}/${d}`);
        assert.equal(r.stats.keptImageTokens, ref.stats.keptImageTokens, `${method}/${kv}/${d}: image tokens kept`);
        assert.deepEqual(r.kept.map((k) => k.imageIndices.length), ref.kept.map((k) => k.imageIndices.length), `${method}/${kv}/${d}: per-stage counts`);
      }
    }
  }
  for (const e of Object.values(engines)) await e.dispose();
});

test('quantized-weight cache: reused on the second load, rebuilt after corruption and after a checkpoint change', async () => {
  const cacheDir = path.join(tmp, 'cache');
  const ck = path.join(tmp, 'ckpt');
  fs.cpSync(MODELS['tiny-llava']!.dir, ck, { recursive: true });
  const g = loadGolden('tiny-llava');
  const logits = async (e: Engine) => {
    const img = await e.prepareImage(g.image);
    const r = await e.generate({ image: img, prompt: g.question }, { maxNewTokens: 4, minNewTokens: 4 }, {});
    return r.tokenIds;
  };
  let progress = 0;
  const first = await Engine.load(ck, { dtype: 'q4', cacheDir, onProgress: () => progress++ });
  const s1 = first.quantStats!;
  assert.ok(s1.misses > 0 && s1.hits === 0 && s1.written, JSON.stringify(s1));
  assert.ok(progress >= s1.misses, 'first load reports progress');
  const want = await logits(first);
  await first.dispose();

  progress = 0;
  const second = await Engine.load(ck, { dtype: 'q4', cacheDir, onProgress: () => progress++ });
  assert.deepEqual({ ...second.quantStats!, file: undefined }, { hits: s1.misses, misses: 0, corrupt: 0, written: false, file: undefined });
  assert.equal(progress, 0, 'nothing quantized on a cached load');
  assert.deepEqual(await logits(second), want);
  await second.dispose();

  // flip bytes in the middle of the payload: that entry fails its checksum and is rebuilt
  const file = s1.file!;
  const buf = fs.readFileSync(file);
  for (let i = 0; i < 16; i++) buf[Math.floor(buf.length * 0.6) + i]! ^= 0xff;
  fs.writeFileSync(file, buf);
  const third = await Engine.load(ck, { dtype: 'q4', cacheDir });
  assert.ok(third.quantStats!.corrupt >= 1 && third.quantStats!.misses >= 1 && third.quantStats!.written, JSON.stringify(third.quantStats));
  assert.deepEqual(await logits(third), want);
  await third.dispose();
  const fourth = await Engine.load(ck, { dtype: 'q4', cacheDir });
  assert.equal(fourth.quantStats!.misses, 0, 'the rebuilt file is whole again');
  await fourth.dispose();

  // a garbage file (truncated header) is replaced, not trusted
  fs.writeFileSync(file, Buffer.from('LVQ1garbage'));
  const fifth = await Engine.load(ck, { dtype: 'q4', cacheDir });
  assert.ok(fifth.quantStats!.corrupt >= 1 && fifth.quantStats!.hits === 0 && fifth.quantStats!.written);
  assert.deepEqual(await logits(fifth), want);
  await fifth.dispose();

  // a changed checkpoint gets its own entry: new weights, new file, nothing reused
  const st = path.join(ck, 'model.safetensors');
  const w = fs.readFileSync(st);
  for (let i = w.length - 4096; i < w.length; i += 4) w.writeFloatLE(0.01 * ((i >> 2) % 7), i);
  fs.writeFileSync(st, w);
  const changed = await Engine.load(ck, { dtype: 'q4', cacheDir });
  assert.notEqual(changed.quantStats!.file, file);
  assert.equal(changed.quantStats!.hits, 0);
  assert.ok(changed.quantStats!.misses > 0 && changed.quantStats!.written);
  await changed.dispose();
  // and no temporary files are left behind
  assert.deepEqual(fs.readdirSync(cacheDir).filter((f) => f.endsWith('.tmp')), []);
});
