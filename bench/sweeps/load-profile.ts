// Where a cached quantized load spends its time, phase by phase, and what ORT session options change.
// Usage: node --import tsx bench/sweeps/load-profile.ts MODEL_DIR DTYPE CACHE_DIR [variant ...]
// variants: base basic extended noprepack savedopt (each creates the LM session once more)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { CachedQuantizer } from '../../src/checkpoint/quantCache.js';
import { openFamily } from '../../src/models/registry.js';
import { buildDecoderStage, buildHead } from '../../src/graph/decoderStage.js';

const [dir, dtype, cacheDir, ...variants] = process.argv.slice(2);
const rss = () => (process.memoryUsage().rss / 2 ** 20).toFixed(0);
const t = async <T>(label: string, f: () => T | Promise<T>): Promise<T> => {
  const t0 = performance.now();
  const r = await f();
  console.log(`${label.padEnd(44)} ${(performance.now() - t0).toFixed(0).padStart(7)} ms   rss ${rss()} MB`);
  return r;
};
const base = { executionProviders: ['cpu'], intraOpNumThreads: os.cpus().length, enableCpuMemArena: false, logSeverityLevel: 3 as const };
const opts = (level: 'all' | 'basic' | 'extended' | 'disabled', extra: Record<string, string> = {}) => ({
  ...base,
  graphOptimizationLevel: level,
  extra: { session: { force_spinning_stop: '1', ...extra } },
});

const family = await t('openFamily (headers, config, tokenizer-free)', () => openFamily(dir!));
const tc = family.text;
const q = await t('quantizer: fingerprint + cache header', () => new CachedQuantizer({ dtype: dtype as 'q4', accuracyLevel: 4, modelDir: dir!, cacheDir: cacheDir! }));
let getMs = 0;
const get = q.get.bind(q);
q.get = (p) => {
  const t0 = performance.now();
  const r = get(p);
  getMs += performance.now() - t0;
  return r;
};
const layers = await t('LM layer weights objects (norms read)', () => Array.from({ length: tc.layers }, (_, l) => ({ index: l, w: family.lm.layer(l) })));
const lmBytes = await t('LM graph build (24 layers, encode)', () => buildDecoderStage(tc, layers, { quant: q }));
console.log(`   of which quantizer.get (cache read + check): ${getMs.toFixed(0)} ms; graph ${(lmBytes.length / 2 ** 20).toFixed(0)} MB`);
getMs = 0;
const headBytes = await t('head graph build', () => buildHead(tc.hidden, tc.eps, family.lm.finalNorm(), family.lm.lmHead(), { quant: q }));
const visBytes = await t('vision graph build', () => family.buildVision({ quant: q }));
console.log(`   quantizer.get in head+vision: ${getMs.toFixed(0)} ms`);
await t('embedding read + widen (no longer done at load)', () => family.lm.embedding());
console.log('stats', q.stats);

const lm = await t('LM session (all)', () => ort.InferenceSession.create(lmBytes, opts('all')));
const head = await t('head session (all)', () => ort.InferenceSession.create(headBytes, opts('all')));
const vis = await t('vision session (all)', () => ort.InferenceSession.create(visBytes, opts('all')));
await lm.release();
await head.release();
await vis.release();
await t('3 sessions created concurrently (all)', () => Promise.all([lmBytes, headBytes, visBytes].map((b) => ort.InferenceSession.create(b, opts('all')))).then((ss) => Promise.all(ss.map((s) => s.release()))));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lvq-opt-'));
for (const v of variants) {
  if (v === 'external') {
    // every initializer over 1 KB moved to an external data file (4 KB-aligned offsets), the model bytes
    // carry only their location: what a cache file referenced by the graph would give
    const { onnx } = (await import('onnx-proto')).default;
    const m = onnx.ModelProto.decode(lmBytes);
    const file = path.join(tmp, 'lm.bin');
    const fd = fs.openSync(file, 'w');
    let off = 0;
    for (const init of m.graph!.initializer!) {
      const raw = init.rawData as Uint8Array | undefined;
      if (!raw || raw.length < 1024) continue;
      fs.writeSync(fd, raw, 0, raw.length, off);
      init.rawData = new Uint8Array(0);
      init.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      init.externalData = [{ key: 'location', value: 'lm.bin' }, { key: 'offset', value: String(off) }, { key: 'length', value: String(raw.length) }];
      off = Math.ceil((off + raw.length) / 4096) * 4096;
    }
    fs.closeSync(fd);
    const small = onnx.ModelProto.encode(m).finish();
    console.log(`   external: model ${(small.length / 2 ** 20).toFixed(1)} MB + data ${(off / 2 ** 20).toFixed(0)} MB`);
    for (let i = 0; i < 2; i++) {
      await t('LM session (all), external data', () =>
        ort.InferenceSession.create(small, opts('all', { model_external_initializers_file_folder_path: tmp })).then((s) => s.release()),
      );
    }
    await t('LM session (all), bytes in the proto', () => ort.InferenceSession.create(lmBytes, opts('all')).then((s) => s.release()));
  }
  if (v === 'base') await t('LM session (all) again', () => ort.InferenceSession.create(lmBytes, opts('all')).then((s) => s.release()));
  if (v === 'basic' || v === 'extended' || v === 'disabled') await t(`LM session (${v})`, () => ort.InferenceSession.create(lmBytes, opts(v)).then((s) => s.release()));
  if (v === 'noprepack') await t('LM session (all, disable_prepacking)', () => ort.InferenceSession.create(lmBytes, opts('all', { disable_prepacking: '1' })).then((s) => s.release()));
  if (v === 'savedopt') {
    const file = path.join(tmp, 'lm.onnx');
    await t('LM session (all) + save optimized w/ prepacked', () =>
      ort.InferenceSession.create(lmBytes, {
        ...opts('all', {
          save_external_prepacked_constant_initializers: '1',
          optimized_model_external_initializers_file_name: 'lm.data',
          optimized_model_external_initializers_min_size_in_bytes: '1024',
        }),
        optimizedModelFilePath: file,
      }).then((s) => s.release()),
    );
    for (const f of fs.readdirSync(tmp)) console.log(`   ${f}: ${(fs.statSync(path.join(tmp, f)).size / 2 ** 20).toFixed(1)} MB`);
    try {
      // ORT 1.30 refuses this file for our graphs ("initializer name is not unique" in the If branches)
      await t('LM session from saved optimized (all)', () => ort.InferenceSession.create(file, opts('all')).then((s) => s.release()));
      await t('LM session from saved optimized (disabled)', () => ort.InferenceSession.create(file, opts('disabled')).then((s) => s.release()));
    } catch (e) {
      console.log(`   saved optimized model does not load: ${(e as Error).message.split('\n')[0]}`);
    }
  }
}
fs.rmSync(tmp, { recursive: true, force: true });
console.log(`peak rss ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
