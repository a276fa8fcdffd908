// Qwen2-VL against transformers' golden outputs (fixtures/tiny-qwen2_vl/golden): token ids, M-RoPE
// position ids, logits at every prompt position, per-layer hidden states of the last token,
// greedy generation from the golden pixels and from the real preprocessing path.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/engine/vlm.js';
import { forwardAll } from '../../src/engine/inspect.js';
import type { LmPrompt } from '../../src/processing/lmPrompt.js';
import type { ImageInputs } from '../../src/models/family.js';
import { LightVLMError } from '../../src/errors.js';
import { qwen2vlPositionIds } from '../../src/models/qwen2vl.js';
import { visionDims, visionRopeTables } from '../../src/models/qwen2vlVision.js';
import { loadGolden, MODELS, ints, relL2, type Golden } from '../helpers.js';

const NAME = 'tiny-qwen2_vl';
let g: Golden;
let e: Engine;
let inputs: ImageInputs;
let prompt: LmPrompt;
let image: Awaited<ReturnType<Engine['encodeInputs']>>;

before(async () => {
  g = loadGolden(NAME);
  e = await Engine.load(MODELS[NAME]!.dir);
  const pv = g.inputs.get('pixel_values')!;
  inputs = { pixelValues: pv.data as Float32Array, dims: pv.dims, gridThw: ints(g.inputs.get('image_grid_thw')!) as [number, number, number] };
  image = await e.encodeInputs(inputs);
  prompt = e.buildPrompt(g.question, image);
});

after(async () => {
  await e?.dispose();
});

test('qwen2_vl: input ids match the HF processor', () => {
  assert.deepEqual(prompt.ids, ints(g.inputs.get('input_ids')!));
  assert.equal(image.imageTokens, 12); // grid 1x6x8 patches → 1x3x4 tokens
  assert.deepEqual(e.family.tokenGrids(inputs), [{ h: 3, w: 4 }]);
});

test('qwen2_vl: M-RoPE position ids (get_rope_index)', () => {
  const ids = prompt.ids;
  const s = ids.indexOf(e.family.imageTokenId); // text before the image: positions 0..s-1
  const [gt, gh, gw] = [1, 3, 4];
  const n = gt * gh * gw;
  const want: number[][] = [[], [], []];
  for (let i = 0; i < s; i++) for (const r of want) r.push(i);
  for (let ti = 0; ti < gt; ti++)
    for (let hi = 0; hi < gh; hi++)
      for (let wi = 0; wi < gw; wi++) {
        want[0]!.push(s + ti);
        want[1]!.push(s + hi);
        want[2]!.push(s + wi);
      }
  const next = s + Math.max(gt, gh, gw); // text after continues from max + 1
  for (let i = s + n; i < ids.length; i++) for (const r of want) r.push(next + i - s - n);
  assert.equal(prompt.pos.length, 3);
  assert.deepEqual(prompt.pos.map((r) => Array.from(r)), want);
  // Spot check: inside the image the w row counts 0..3 from the image start s.
  assert.deepEqual(Array.from(prompt.pos[2]!.subarray(s, s + 4)), [s, s + 1, s + 2, s + 3]);
  // Text-only prompt: plain 0..T-1 on every row; a mismatched image run is an error.
  assert.deepEqual(qwen2vlPositionIds([7, 8, 9], 5, [1, 3, 4]).map((r) => Array.from(r)), [[0, 1, 2], [0, 1, 2], [0, 1, 2]]);
  assert.throws(() => qwen2vlPositionIds([7, 5, 5, 9], 5, [1, 3, 4]), LightVLMError);
});

test('qwen2_vl: vision rotary tables follow the merge-window patch order', () => {
  const d = visionDims({ embed_dim: 32, num_heads: 4, depth: 1, spatial_merge_size: 2 }, 64);
  const { cos } = visionRopeTables([1, 2, 4], d); // dh 8: angles [h, h·0.01, w, w·0.01] twice
  // Patch rows: window (0,0): (0,0),(0,1),(1,0),(1,1); window (0,1): (0,2),(0,3),(1,2),(1,3).
  const hw = [[0, 0], [0, 1], [1, 0], [1, 1], [0, 2], [0, 3], [1, 2], [1, 3]];
  hw.forEach(([h, w], r) => {
    const row = Array.from(cos.subarray(r * 8, r * 8 + 8));
    const a = [h!, Math.fround(h! * 0.01), w!, Math.fround(w! * 0.01)].map((x) => Math.fround(Math.cos(x)));
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(row[i]! - a[i % 4]!) < 1e-6, `row ${r} col ${i}`);
  });
});

test('qwen2_vl: logits at every prompt position and last-token hidden states', async () => {
  const { logits, hiddenLast } = await forwardAll(e.ctx, prompt);
  const gl = g.outputs.get('logits')!.data as Float32Array;
  const V = e.info.vocabSize;
  const T = prompt.ids.length;
  assert.equal(gl.length, T * V);
  for (let t = 0; t < T; t++) {
    const err = relL2(logits.subarray(t * V, (t + 1) * V), gl.subarray(t * V, (t + 1) * V));
    assert.ok(err < 1e-4, `logits at position ${t}: rel L2 ${err}`);
  }
  const gh = g.outputs.get('hidden_last_token')!.data as Float32Array;
  const D = e.info.hiddenSize;
  const L = e.info.layers;
  assert.equal(gh.length, (L + 1) * D);
  for (let l = 0; l < L; l++) {
    const err = relL2(hiddenLast[l]!, gh.subarray(l * D, (l + 1) * D));
    assert.ok(err < 1e-4, `hidden state ${l}: rel L2 ${err}`);
  }
  const errNorm = relL2(hiddenLast[hiddenLast.length - 1]!, gh.subarray(L * D, (L + 1) * D));
  assert.ok(errNorm < 1e-4, `final normed hidden state: rel L2 ${errNorm}`);
});

test('qwen2_vl: greedy generation matches transformers', async () => {
  const want = ints(g.outputs.get('generated_ids')!);
  const r = await e.generate({ image, prompt: g.question }, { maxNewTokens: want.length, minNewTokens: want.length });
  assert.deepEqual(r.tokenIds, want);
});

test('qwen2_vl: real preprocessing of image.png gives the same pixels and generation', async () => {
  const prep = (await e.prepareImage(g.image)) as typeof image;
  assert.deepEqual(prep.inputs.gridThw, inputs.gridThw);
  assert.deepEqual(prep.inputs.dims, inputs.dims);
  const err = relL2(prep.inputs.pixelValues, inputs.pixelValues);
  assert.ok(err < 1e-4, `pixel_values rel L2 ${err}`);
  const want = ints(g.outputs.get('generated_ids')!);
  const r = await e.generate({ image: prep, prompt: g.question }, { maxNewTokens: want.length, minNewTokens: want.length });
  assert.deepEqual(r.tokenIds, want);
});

test('qwen2_vl: multi-frame grids are rejected clearly', () => {
  const bad = { ...inputs, gridThw: [2, 6, 8] as [number, number, number] };
  assert.throws(() => e.family.imageTokens(bad), LightVLMError);
});
