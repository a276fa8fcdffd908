// LLaVA against transformers goldens: inputs, every-position logits, per-layer hidden states,
// greedy ids, through both the golden pixel values and our own preprocessing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/engine/vlm.js';
import { forwardAll } from '../../src/engine/inspect.js';
import { ints, loadGolden, MODELS, relL2 } from '../helpers.js';

for (const name of ['tiny-llava', 'synth-llava']) {
  test(`${name} matches transformers`, async (t) => {
    const g = loadGolden(name);
    const e = await Engine.load(MODELS[name]!.dir);
    const pv = g.inputs.get('pixel_values')!;
    const img = await e.encodeInputs({ pixelValues: pv.data as Float32Array, dims: pv.dims });
    const p = e.buildPrompt(g.question, img);

    await t.test('input_ids identical', () => {
      assert.deepEqual(p.ids, ints(g.inputs.get('input_ids')!));
      assert.equal(e.text.renderUserTurn(g.question), g.meta.prompt);
    });

    await t.test('logits at every position (rel L2 < 1e-4) and hidden states per layer', async () => {
      const { logits, hiddenLast } = await forwardAll(e.ctx, p);
      const gl = g.outputs.get('logits')!.data as Float32Array;
      const V = e.info.vocabSize;
      for (let i = 0; i < p.ids.length; i++) {
        const err = relL2(logits.subarray(i * V, (i + 1) * V), gl.subarray(i * V, (i + 1) * V));
        assert.ok(err < 1e-4, `position ${i}: rel err ${err}`);
      }
      const gh = g.outputs.get('hidden_last_token')!;
      const D = e.info.hiddenSize;
      const L = e.info.layers;
      assert.equal(gh.dims[0], L + 1);
      // golden rows 0..L-1: embeddings and layers 1..L-1; row L: after the final norm
      for (let r = 0; r < L; r++) assert.ok(relL2(hiddenLast[r]!, (gh.data as Float32Array).subarray(r * D, (r + 1) * D)) < 1e-4, `hidden row ${r}`);
      assert.ok(relL2(hiddenLast[L + 1]!, (gh.data as Float32Array).subarray(L * D, (L + 1) * D)) < 1e-4, 'final norm row');
    });

    await t.test('greedy ids identical, from golden pixels and from our preprocessing', async () => {
      const want = ints(g.outputs.get('generated_ids')!);
      const opts = { maxNewTokens: want.length, minNewTokens: want.length };
      assert.deepEqual((await e.generate({ image: img, prompt: g.question }, opts)).tokenIds, want);
      assert.deepEqual((await e.generate({ image: g.image, prompt: g.question }, opts)).tokenIds, want);
    });
    await e.dispose();
  });
}
