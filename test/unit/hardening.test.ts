// Bad input gets a typed LightVLMError with a stable code and a message naming the problem: one
// test per class (checkpoint file, config, numbers/options, image, prompt), on small generated files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { readHeader } from '../../src/checkpoint/safetensors.js';
import { ERROR_CODES, ExitCode, LightVLMError, isUserFault, type ErrorCode } from '../../src/errors.js';
import { readTextConfig } from '../../src/models/config.js';
import { checkGenerateOptions, checkImageSource, checkInput, checkPrompt, checkThreads, MAX_PROMPT_CHARS } from '../../src/options.js';
import { loadImage } from '../../src/processing/image.js';
import { readPrompt } from '../../src/cli/common.js';

/** Asserts `fn` throws (or rejects with) a LightVLMError with `code` whose message matches `names`. */
async function refuses(fn: () => unknown, code: ErrorCode, names: RegExp): Promise<void> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof LightVLMError, `expected a LightVLMError ${code}, got ${err === undefined ? 'no error' : String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.match(err.message, names);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lightvlm-harden-'));

test('error codes: each has an exit status; user mistakes are flagged for 4xx; legacy numbers map', () => {
  for (const [code, m] of Object.entries(ERROR_CODES)) assert.ok(Object.values(ExitCode).includes(m.exitCode), code);
  assert.equal(isUserFault('E_OPTION'), true);
  assert.equal(isUserFault('E_IMAGE'), true);
  assert.equal(isUserFault('E_CHECKPOINT'), false);
  assert.equal(isUserFault('E_INTERNAL'), false);
  assert.equal(new LightVLMError('x', 70).code, 'E_INTERNAL');
  assert.equal(new LightVLMError('x').code, 'E_INPUT');
  assert.equal(new LightVLMError('x', 'E_NONFINITE').exitCode, ExitCode.BAD_MODEL);
});

// ---- checkpoint files ----
function writeSt(file: string, header: unknown, data: Buffer, opts: { lenOverride?: bigint } = {}): string {
  let h = Buffer.from(JSON.stringify(header));
  h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(opts.lenOverride ?? BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, data]));
  return file;
}
const good = { a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, b: { dtype: 'F16', shape: [4], data_offsets: [16, 24] } };

test('checkpoint: a well-formed file reads; every structural defect is E_CHECKPOINT naming the tensor', async () => {
  const f = path.join(tmp, 'm.safetensors');
  assert.equal(readHeader(writeSt(f, good, Buffer.alloc(24))).size, 2);
  const cases: [string, unknown, Buffer, RegExp, { lenOverride?: bigint }?][] = [
    ['array header', [1, 2], Buffer.alloc(0), /not a JSON object/],
    ['begin > end', { ...good, b: { dtype: 'F16', shape: [4], data_offsets: [24, 16] } }, Buffer.alloc(24), /tensor b .*begin > end/],
    ['truncated', good, Buffer.alloc(20), /tensor b ends at byte 24 .* 20 data bytes/],
    ['overlap', { ...good, b: { dtype: 'F16', shape: [4], data_offsets: [8, 16] } }, Buffer.alloc(24), /overlaps|belong to no tensor/],
    ['size vs shape', { ...good, a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } }, Buffer.alloc(24), /tensor a .*needs 24 bytes/],
    ['unknown dtype', { ...good, a: { dtype: 'F33', shape: [2, 2], data_offsets: [0, 16] } }, Buffer.alloc(24), /tensor a has unknown dtype "F33"/],
    ['bad shape', { ...good, a: { dtype: 'F32', shape: [2, -2], data_offsets: [0, 16] } }, Buffer.alloc(24), /tensor a has shape/],
    ['gap at end', good, Buffer.alloc(32), /end at data byte 24 but the file holds 32/],
    ['header length', good, Buffer.alloc(24), /header length/, { lenOverride: 1n << 40n }],
  ];
  for (const [what, header, data, msg, o] of cases) await refuses(() => readHeader(writeSt(f, header, data, o)), 'E_CHECKPOINT', msg).catch((e) => assert.fail(`${what}: ${e.message}`));
  fs.writeFileSync(f, Buffer.alloc(5));
  await refuses(() => readHeader(f), 'E_CHECKPOINT', /fewer than the 8-byte header length/);
});

// ---- config ----
test('config: non-positive eps, non-dividing heads, non-numeric sizes are E_CONFIG naming the field', async () => {
  const tc = { num_hidden_layers: 2, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 128, vocab_size: 100, rms_norm_eps: 1e-6 };
  assert.equal(readTextConfig(tc, {}).headDim, 16);
  await refuses(() => readTextConfig({ ...tc, rms_norm_eps: -1e-6 }, {}), 'E_CONFIG', /rms_norm_eps/);
  await refuses(() => readTextConfig({ ...tc, rms_norm_eps: 0 }, {}), 'E_CONFIG', /rms_norm_eps/);
  await refuses(() => readTextConfig({ ...tc, num_key_value_heads: 3 }, {}), 'E_CONFIG', /num_key_value_heads/);
  await refuses(() => readTextConfig({ ...tc, num_hidden_layers: 0 }, {}), 'E_CONFIG', /num_hidden_layers/);
  await refuses(() => readTextConfig({ ...tc, hidden_size: '64' }, {}), 'E_CONFIG', /hidden_size/);
  await refuses(() => readTextConfig({ ...tc, hidden_size: 60 }, {}), 'E_CONFIG', /head_dim/);
});

// ---- numbers and options ----
test('options: NaN, negative, out-of-range, wrong types and unknown keys are E_OPTION in option names', async () => {
  assert.deepEqual(checkGenerateOptions({ maxNewTokens: 8, topP: 0.9, stopStrings: ['.'] }), { maxNewTokens: 8, topP: 0.9, stopStrings: ['.'] });
  await refuses(() => checkGenerateOptions({ maxNewTokens: NaN }), 'E_OPTION', /^maxNewTokens must be a whole number/);
  await refuses(() => checkGenerateOptions({ maxNewTokens: 0 }), 'E_OPTION', /maxNewTokens/);
  await refuses(() => checkGenerateOptions({ topP: 2 }), 'E_OPTION', /^topP .*<= 1/);
  await refuses(() => checkGenerateOptions({ topK: -3 }), 'E_OPTION', /^topK/);
  await refuses(() => checkGenerateOptions({ temperature: -1 }), 'E_OPTION', /^temperature/);
  await refuses(() => checkGenerateOptions({ temperature: Infinity }), 'E_OPTION', /^temperature/);
  await refuses(() => checkGenerateOptions({ seed: 1.5 }), 'E_OPTION', /^seed/);
  await refuses(() => checkGenerateOptions({ stopStrings: 'x' }), 'E_OPTION', /^stopStrings must be an array/);
  await refuses(() => checkGenerateOptions({ stopStrings: [''] }), 'E_OPTION', /stopStrings\[0\] .*non-empty/);
  await refuses(() => checkGenerateOptions({ maxNewToken: 5 }), 'E_OPTION', /unknown option maxNewToken/);
  await refuses(() => checkGenerateOptions({ acceleration: { prefill: { method: 'lightvlm', keep: 0 } } }), 'E_OPTION', /acceleration\.prefill\.keep/);
  await refuses(() => checkGenerateOptions({ acceleration: { prefill: { method: 'fastest' } } }), 'E_OPTION', /acceleration\.prefill\.method must be one of none, lightvlm/);
  await refuses(() => checkGenerateOptions({ acceleration: { decode: { method: 'streamingllm', budget: 1 } } }), 'E_OPTION', /acceleration\.decode\.budget 1 .*sinks/);
  await refuses(() => checkGenerateOptions({ acceleration: { decode: { method: 'h2o', budget: -5 } } }), 'E_OPTION', /acceleration\.decode\.budget/);
  await refuses(() => checkGenerateOptions({ signal: 'stop' }), 'E_OPTION', /^signal must be an AbortSignal/);
  await refuses(() => checkGenerateOptions(null), 'E_OPTION', /must be an object/);
  // the CLI's spelling of the same checks
  await refuses(() => checkGenerateOptions({ stopStrings: [''] }, { stopStrings: '--stop' }), 'E_OPTION', /^--stop must be/);
  await refuses(() => checkThreads(1000, '--threads'), 'E_OPTION', /^--threads .*<= \d+/);
});

// ---- images ----
test('image: wrong types, URLs, too-wide strips, broken bytes are E_IMAGE before any resize', async () => {
  await refuses(() => checkImageSource(null), 'E_IMAGE', /image must be a file path, a Buffer\/Uint8Array/);
  await refuses(() => checkImageSource(new ArrayBuffer(4)), 'E_IMAGE', /new Uint8Array\(buffer\)/);
  await refuses(() => checkImageSource('https://example.com/a.png'), 'E_IMAGE', /is a URL/);
  await refuses(() => checkImageSource(new URL('file:///a.png')), 'E_IMAGE', /URL object/);
  await refuses(() => checkInput({ image: 42, prompt: 'q' }), 'E_IMAGE', /got 42/);
  const strip = await sharp({ create: { width: 6000, height: 1, channels: 3, background: '#808080' } }).png().toBuffer();
  await refuses(() => loadImage(strip), 'E_IMAGE', /6000x1, an aspect ratio of 6000:1, above the limit of 200:1/);
  await refuses(() => loadImage(Buffer.from('not an image')), 'E_IMAGE', /not a readable image/);
  await refuses(() => loadImage(path.join(tmp, 'missing.png')), 'E_IO', /does not exist/);
});

// ---- prompts ----
test('prompt: empty, non-string, too long are E_PROMPT / E_PROMPT_TOO_LONG; --prompt-file and --prompt - read it', async () => {
  await refuses(() => checkPrompt('  '), 'E_PROMPT', /prompt is empty/);
  await refuses(() => checkPrompt(7), 'E_PROMPT', /prompt must be a string; got 7/);
  await refuses(() => checkPrompt('x'.repeat(MAX_PROMPT_CHARS + 1)), 'E_PROMPT_TOO_LONG', /limit is 100000/);
  const f = path.join(tmp, 'q.txt');
  fs.writeFileSync(f, 'What color is the square?\n');
  assert.equal(readPrompt({ 'prompt-file': f }), 'What color is the square?');
  assert.equal(readPrompt({ prompt: '-' }, () => Buffer.from('From stdin?\n')), 'From stdin?');
  await refuses(() => readPrompt({ prompt: 'a', 'prompt-file': f }), 'E_OPTION', /either --prompt or --prompt-file/);
  await refuses(() => readPrompt({ 'prompt-file': path.join(tmp, 'none.txt') }), 'E_IO', /--prompt-file .* does not exist/);
  fs.writeFileSync(f, Buffer.alloc(4 * MAX_PROMPT_CHARS + 1, 0x61));
  await refuses(() => readPrompt({ 'prompt-file': f }), 'E_PROMPT_TOO_LONG', /--prompt-file/);
});
