// InternVL (tiny-internvl fixture) against transformers 5 goldens: prompt ids, logits at every
// position, per-layer hidden state of the last token, greedy ids; then the real preprocessing path.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { forwardAll } from '../../src/engine/inspect.js';
import { Engine } from '../../src/engine/vlm.js';
import { loadGolden, MODELS, ints, relL2, type Golden } from '../helpers.js';

const TOL = 1e-4;

describe('internvl (tiny-internvl)', () => {
  let e: Engine;
  let g: Golden;
  let img: Awaited<ReturnType<Engine['encodeInputs']>>;

  before(async () => {
    g = loadGolden('tiny-internvl');
    e = await Engine.load(MODELS['tiny-internvl']!.dir);
    const pv = g.inputs.get('pixel_values')!;
    img = await e.encodeInputs({ pixelValues: pv.data as Float32Array, dims: pv.dims, numTiles: pv.dims[0]! });
  });
  after(async () => {
    await e?.dispose();
  });

  it('expands the prompt exactly like InternVLProcessor', () => {
    const p = e.buildPrompt(g.question, img);
    assert.deepEqual(p.ids, ints(g.inputs.get('input_ids')!));
    assert.equal(e.info.modelType, 'internvl');
    const tiles = g.inputs.get('pixel_values')!.dims[0]!;
    assert.equal(p.grids.length, tiles);
    assert.equal(p.grids.reduce((a, q) => a + q.h * q.w, 0), img.imageTokens);
  });

  it('matches logits at every position and the last token hidden states', async () => {
    const p = e.buildPrompt(g.question, img);
    const { logits, hiddenLast } = await forwardAll(e.ctx, p);
    const V = e.info.vocabSize;
    const gl = g.outputs.get('logits')!.data as Float32Array;
    assert.equal(gl.length, p.ids.length * V);
    let worst = 0;
    for (let t = 0; t < p.ids.length; t++) worst = Math.max(worst, relL2(logits.subarray(t * V, (t + 1) * V), gl.subarray(t * V, (t + 1) * V)));
    assert.ok(worst < TOL, `worst per-position logits rel L2 ${worst}`);

    const D = e.info.hiddenSize;
    const L = e.info.layers;
    const gh = g.outputs.get('hidden_last_token')!;
    assert.deepEqual(gh.dims, [L + 1, D]);
    const ghd = gh.data as Float32Array;
    // golden rows 0..L-1: embeddings and outputs of layers 0..L-2; row L: after the final norm.
    for (let i = 0; i < L; i++) {
      const r = relL2(hiddenLast[i]!, ghd.subarray(i * D, (i + 1) * D));
      assert.ok(r < TOL, `hidden row ${i} rel L2 ${r}`);
    }
    const r = relL2(hiddenLast[hiddenLast.length - 1]!, ghd.subarray(L * D, (L + 1) * D));
    assert.ok(r < TOL, `final-norm hidden rel L2 ${r}`);
  });

  it('greedy generation reproduces generated_ids', async () => {
    const want = ints(g.outputs.get('generated_ids')!);
    const r = await e.generate({ image: img, prompt: g.question }, { maxNewTokens: want.length, minNewTokens: want.length });
    assert.deepEqual(r.tokenIds, want);
  });

  it('preprocesses golden/image.png into the same pixels, features and ids', async () => {
    const real = (await e.prepareImage(g.image)) as typeof img;
    const pv = g.inputs.get('pixel_values')!;
    assert.deepEqual(real.inputs.dims, pv.dims);
    assert.equal(real.inputs.numTiles, pv.dims[0]);
    const pixRel = relL2(real.inputs.pixelValues, pv.data as Float32Array);
    assert.ok(pixRel < 1e-2, `pixel rel L2 ${pixRel}`);
    const featRel = relL2(real.features, img.features);
    assert.ok(featRel < 1e-2, `feature rel L2 ${featRel}`);
    assert.deepEqual(e.buildPrompt(g.question, real).ids, ints(g.inputs.get('input_ids')!));
    const want = ints(g.outputs.get('generated_ids')!);
    const r = await e.generate({ image: real, prompt: g.question }, { maxNewTokens: want.length, minNewTokens: want.length });
    assert.deepEqual(r.tokenIds, want);
  });
});
