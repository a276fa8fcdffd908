// Library lifecycle and broken checkpoints on the tiny LLaVA fixture, plus a seeded fuzz of
// structural corruptions: every case ends in the unchanged answer or a LightVLMError, never a
// crash, a hang, a raw error or a changed answer without an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { Engine } from '../../src/engine/vlm.js';
import { LightVLMError } from '../../src/errors.js';
import { mulberry32 } from '../../src/util/topk.js';
import { loadGolden, MODELS } from '../helpers.js';

const SRC = MODELS['tiny-llava']!.dir;
const g = loadGolden('tiny-llava');
const OPTS = { maxNewTokens: 3 };

/** A copy of tiny-llava whose model.safetensors / config.json the caller rewrites. */
function copyModel(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lightvlm-fuzz-'));
  for (const f of fs.readdirSync(SRC)) if (fs.statSync(path.join(SRC, f)).isFile()) fs.copyFileSync(path.join(SRC, f), path.join(dir, f));
  return dir;
}

interface St { header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>; data: Buffer }
function readSt(file: string): St {
  const b = fs.readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  return { header: JSON.parse(b.subarray(8, 8 + n).toString('utf8')), data: b.subarray(8 + n) };
}
function writeSt(file: string, st: { header: unknown; data: Buffer }): void {
  const h = Buffer.from(JSON.stringify(st.header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, st.data]));
}

async function answer(dir: string): Promise<number[]> {
  const e = await Engine.load(dir);
  try {
    return (await e.generate({ image: g.image, prompt: g.question }, OPTS)).tokenIds;
  } finally {
    await e.dispose();
  }
}

/** Unchanged answer or a LightVLMError; returns which. Fails on anything else or after 60 s. */
async function outcome(dir: string, want: number[], what: string): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: no result after 60 s`)), 60_000)));
  try {
    const ids = await Promise.race([answer(dir), hang]);
    assert.deepEqual(ids, want, `${what}: the answer changed without an error`);
    return 'unchanged';
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    assert.ok(e instanceof LightVLMError, `${what}: raw error ${(e as Error)?.stack ?? e}`);
    assert.notEqual(e.code, 'E_INTERNAL', `${what}: reported as internal: ${e.message}`);
    return e.code;
  } finally {
    clearTimeout(timer);
  }
}

test('library lifecycle: dispose is idempotent, later calls are E_DISPOSED; PreparedImage is bound to its model and opaque', async () => {
  const a = await Engine.load(SRC);
  const b = await Engine.load(SRC);
  const img = await a.prepareImage(g.image);
  assert.match(inspect(img), /^PreparedImage \{ model: llava .*imageTokens: \d+ \}$/);
  assert.ok(JSON.stringify(img).length < 200);
  await assert.rejects(b.generate({ image: img, prompt: g.question }, OPTS), (e: LightVLMError) => e.code === 'E_IMAGE' && /made by another model/.test(e.message));
  await assert.rejects(a.generate({ image: { kind: 'prepared-image', imageTokens: 1, visionMs: 0 }, prompt: 'q' }), (e: LightVLMError) => e.code === 'E_IMAGE' && /not made by prepareImage/.test(e.message));
  await assert.rejects(a.generate({ image: img, prompt: g.question }, { maxNewTokens: NaN }), (e: LightVLMError) => e.code === 'E_OPTION' && /maxNewTokens/.test(e.message));
  await a.dispose();
  await a.dispose();
  await assert.rejects(a.generate({ image: img, prompt: g.question }, OPTS), (e: LightVLMError) => e.code === 'E_DISPOSED' && /disposed/.test(e.message));
  await assert.rejects(a.prepareImage(g.image), (e: LightVLMError) => e.code === 'E_DISPOSED');
  await b.dispose();
});

test('broken checkpoints: NaN weight, fewer layers in config, truncated file, wrong hidden size', async () => {
  const want = await answer(SRC);
  // NaN in a weight every token passes through (the final norm): E_NONFINITE naming the logits
  let dir = copyModel();
  const st = readSt(path.join(dir, 'model.safetensors'));
  const norm = st.header['language_model.model.norm.weight']!;
  st.data.writeFloatLE(NaN, norm.data_offsets[0]);
  writeSt(path.join(dir, 'model.safetensors'), st);
  await assert.rejects(answer(dir), (e: LightVLMError) => e.code === 'E_NONFINITE' && /logits after prefill/.test(e.message));
  // num_hidden_layers smaller than the weights
  dir = copyModel();
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, text_config: { ...cfg.text_config, num_hidden_layers: cfg.text_config.num_hidden_layers - 1 } }));
  await assert.rejects(answer(dir), (e: LightVLMError) => e.code === 'E_CONFIG' && /num_hidden_layers/.test(e.message));
  // intermediate_size that the weights do not have
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, text_config: { ...cfg.text_config, intermediate_size: cfg.text_config.intermediate_size + 8 } }));
  await assert.rejects(answer(dir), (e: LightVLMError) => e.code === 'E_CONFIG' && /mlp\.gate_proj\.weight has shape/.test(e.message));
  // truncated at 90%
  dir = copyModel();
  const f = path.join(dir, 'model.safetensors');
  fs.truncateSync(f, Math.floor(fs.statSync(f).size * 0.9));
  await assert.rejects(answer(dir), (e: LightVLMError) => e.code === 'E_CHECKPOINT' && /truncated/.test(e.message));
  assert.deepEqual(await answer(SRC), want);
});

// Corruptions that MUST be detected (structure, config sizes), and NaN/Inf anywhere (detected, or
// in a tensor the answer never uses). Left out on purpose: a finite value changed, two equal-size
// tensors swapped, a square matrix's dims swapped: the file stays valid, only the numbers differ.
const CASES = 40;

test(`fuzz: ${CASES} seeded corruptions of tiny-llava end in the same answer or a LightVLMError`, async () => {
  const want = await answer(SRC);
  const rng = mulberry32(20261201);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
  const base = readSt(path.join(SRC, 'model.safetensors'));
  const names = Object.keys(base.header).filter((n) => n !== '__metadata__');
  const cfg0 = JSON.parse(fs.readFileSync(path.join(SRC, 'config.json'), 'utf8'));
  const seen = new Map<string, number>();
  for (let i = 0; i < CASES; i++) {
    const dir = copyModel();
    const file = path.join(dir, 'model.safetensors');
    const st: St = { header: structuredClone(base.header), data: Buffer.from(base.data) };
    const name = pick(names);
    const e = st.header[name]!;
    const kind = pick(['truncate', 'offset', 'length', 'dtype', 'shape', 'drop', 'header', 'config', 'nan', 'inf'] as const);
    let what = `${kind} ${name}`;
    switch (kind) {
      case 'truncate':
        writeSt(file, st);
        fs.truncateSync(file, Math.floor(8 + rng() * (fs.statSync(file).size - 9)));
        break;
      case 'offset': {
        const d = pick([-4, 4, -2, 1, 8]);
        e.data_offsets = [e.data_offsets[0] + d, e.data_offsets[1] + d];
        what += ` shifted ${d}`;
        writeSt(file, st);
        break;
      }
      case 'length':
        e.data_offsets = [e.data_offsets[0], e.data_offsets[1] + pick([-4, 4, 1])];
        writeSt(file, st);
        break;
      case 'dtype':
        e.dtype = pick(['F16', 'BF16', 'I64', 'F64', 'U8', 'Q4', '']);
        what += ` → ${e.dtype}`;
        writeSt(file, st);
        break;
      case 'shape':
        e.shape = pick([[...e.shape, 2], e.shape.slice(1), e.shape.map((x, j) => (j === 0 ? x + 1 : x))]);
        writeSt(file, st);
        break;
      case 'drop':
        delete st.header[name];
        writeSt(file, st);
        break;
      case 'header':
        writeSt(file, { header: pick([[], null, 'x', { [name]: 5 }, { [name]: { ...e, data_offsets: [e.data_offsets[1], e.data_offsets[0]] } }]), data: st.data });
        break;
      case 'config': {
        const key = pick(['num_hidden_layers', 'hidden_size', 'intermediate_size', 'vocab_size', 'rms_norm_eps']);
        const v = key === 'rms_norm_eps' ? pick([-1e-5, 0, 'x']) : pick([cfg0.text_config[key] + 1, cfg0.text_config[key] - 1, 0, -3, 'x', null]);
        what = `config text_config.${key} = ${v}`;
        fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg0, text_config: { ...cfg0.text_config, [key]: v } }));
        break;
      }
      case 'nan':
      case 'inf': {
        const n = (e.data_offsets[1] - e.data_offsets[0]) / 4;
        const at = Math.floor(rng() * n);
        st.data.writeFloatLE(kind === 'nan' ? NaN : pick([Infinity, -Infinity]), e.data_offsets[0] + 4 * at);
        what += `[${at}]`;
        writeSt(file, st);
        break;
      }
    }
    const r = await outcome(dir, want, what);
    // a structural corruption must be refused; only NaN/Inf may leave the answer unchanged (an unused tensor)
    if (kind !== 'nan' && kind !== 'inf') assert.notEqual(r, 'unchanged', `${what}: not detected`);
    seen.set(r, (seen.get(r) ?? 0) + 1);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(seen.size >= 2, `outcomes: ${[...seen].join(', ')}`);
});
