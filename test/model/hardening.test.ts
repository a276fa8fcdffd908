// Library lifecycle and broken checkpoints on the tiny LLaVA fixture, plus a seeded fuzz of
// structural corruptions: every case ends in the unchanged answer or a LightVLMError, never a
// crash, a hang, a raw error or a changed answer without an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { Engine } from '../../src/engine/vlm.js';
import { LightVLMError } from '../../src/errors.js';
import { loadGolden, MODELS } from '../helpers.js';
import { answer as answerIn, copyModel, readSt, writeSt } from './corruptHelpers.js';

const SRC = MODELS['tiny-llava']!.dir;
const g = loadGolden('tiny-llava');
const OPTS = { maxNewTokens: 3 };
const answer = (dir: string) => answerIn(dir, g.image, g.question);

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
  let dir = copyModel(SRC);
  const st = readSt(path.join(dir, 'model.safetensors'));
  const norm = st.header['language_model.model.norm.weight']!;
  st.data.writeFloatLE(NaN, norm.data_offsets[0]);
  writeSt(path.join(dir, 'model.safetensors'), st);
  await assert.rejects(answer(dir), (e: LightVLMError) => e.code === 'E_NONFINITE' && /logits after prefill/.test(e.message));
  // num_hidden_layers smaller than the weights
  dir = copyModel(SRC);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, text_config: { ...cfg.text_config, num_hidden_layers: cfg.text_config.num_hidden_layers - 1 } }));
  await assert.rejects(answer(dir), (e: LightVLMError) => e.code === 'E_CONFIG' && /num_hidden_layers/.test(e.message));
  // intermediate_size that the weights do not have
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, text_config: { ...cfg.text_config, intermediate_size: cfg.text_config.intermediate_size + 8 } }));
  await assert.rejects(answer(dir), (e: LightVLMError) => e.code === 'E_CONFIG' && /mlp\.gate_proj\.weight has shape/.test(e.message));
  // truncated at 90%
  dir = copyModel(SRC);
  const f = path.join(dir, 'model.safetensors');
  fs.truncateSync(f, Math.floor(fs.statSync(f).size * 0.9));
  await assert.rejects(answer(dir), (e: LightVLMError) => e.code === 'E_CHECKPOINT' && /truncated/.test(e.message));
  assert.deepEqual(await answer(SRC), want);
});

