// config.json read once (models/config.ts): the fields the engine takes from it besides the graph
// sizes, the activation names checked when read, and the KV registry's decode-bound flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LightVLMError } from '../../src/errors.js';
import { ACTIVATIONS, readActivation } from '../../src/graph/ops.js';
import { boundsDecodeRows, KV_METHODS } from '../../src/kvcache/registry.js';
import { readTextConfig } from '../../src/models/config.js';
import { checkGenerateOptions } from '../../src/options.js';

const tc = { num_hidden_layers: 2, hidden_size: 64, num_attention_heads: 4, intermediate_size: 128, vocab_size: 100 };

test('configEosIds: text_config eos_token_id first, else the top level; a number or a list', () => {
  assert.deepEqual(readTextConfig(tc, { text_config: { eos_token_id: 7 }, eos_token_id: 9 }).configEosIds, [7]);
  assert.deepEqual(readTextConfig(tc, { text_config: {}, eos_token_id: [9, 11] }).configEosIds, [9, 11]);
  assert.deepEqual(readTextConfig(tc, { text_config: { eos_token_id: null }, eos_token_id: 9 }).configEosIds, [9]);
  assert.deepEqual(readTextConfig(tc, {}).configEosIds, []);
});

test('activations: every name the graphs build is accepted; others are E_UNSUPPORTED naming the field', () => {
  for (const a of ACTIVATIONS) assert.equal(readActivation(a, 'x'), a);
  assert.equal(readTextConfig(tc, {}).act, 'silu');
  assert.throws(() => readTextConfig({ ...tc, hidden_act: 'relu2' }, {}), (e: LightVLMError) => e.code === 'E_UNSUPPORTED' && /text_config\.hidden_act "relu2"/.test(e.message));
  assert.throws(() => readActivation(undefined, 'projector_hidden_act'), (e: LightVLMError) => e.code === 'E_UNSUPPORTED' && /projector_hidden_act/.test(e.message));
});

test('KV registry: the policies that bound the rows decoding adds (the scheduler reserves budget + every)', () => {
  assert.deepEqual(KV_METHODS.filter(boundsDecodeRows), ['lightvlm', 'streamingllm', 'h2o']);
});

test('acceleration.prefill.positions (documented on PrefillAcceleration) passes the option check; other values are E_OPTION', () => {
  const opts = (positions: unknown) => ({ acceleration: { prefill: { method: 'fastervlm', keep: 0.1, positions } } }) as never;
  assert.equal(checkGenerateOptions(opts('original')).acceleration?.prefill?.positions, 'original');
  assert.throws(() => checkGenerateOptions(opts('shifted')), (e: LightVLMError) => e.code === 'E_OPTION' && /positions/.test(e.message));
});
