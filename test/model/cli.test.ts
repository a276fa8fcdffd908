// The CLI as a user meets it: --json output, help, and bad input → one clear line, non-zero exit,
// no stack trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MODELS, ROOT, loadGolden, ints } from '../helpers.js';

const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const run = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lightvlm-cli-'));
const tiny = MODELS['tiny-llava']!.dir;
const image = path.join(ROOT, 'examples/shapes.jpg');

function expectError(r: { code: number | null; err: string }, pattern: RegExp) {
  assert.notEqual(r.code, 0, 'exit code must be non-zero');
  assert.match(r.err, /^lightvlm: error: /m);
  assert.match(r.err, pattern);
  assert.doesNotMatch(r.err, /^\s+at /m, 'no stack trace');
}

test('run --json reproduces the golden greedy ids and reports stats', () => {
  const g = loadGolden('tiny-llava');
  const want = ints(g.outputs.get('generated_ids')!);
  const r = run('run', '--json', '--model', tiny, '--image', g.image, '--prompt', g.question, '--min-new-tokens', String(want.length), '--max-new-tokens', String(want.length));
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual(j.tokenIds, want);
  for (const k of ['promptTokens', 'imageTokens', 'visionMs', 'prefillMs', 'decodeTokens', 'decodeTokensPerSecond', 'peakRssMb', 'imageTokensPerLayer', 'cacheEntriesPerLayer', 'cacheBytes']) {
    assert.ok(k in j.stats, `stats.${k}`);
  }
  assert.equal(j.stats.imageTokens, 16);
});

test('run on the bundled demo model answers correctly by default', () => {
  const r = run('run', '--image', image, '--prompt', 'What color is the square?');
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.trim(), 'yellow');
});

test('help texts are complete', () => {
  const top = run('--help');
  assert.equal(top.code, 0);
  for (const c of ['run', 'eval', 'bench', 'make-checkpoint']) assert.match(top.out, new RegExp(`\\b${c}\\b`));
  const r = run('run', '--help');
  for (const f of ['--model', '--image', '--prompt', '--max-new-tokens', '--min-new-tokens', '--temperature', '--top-p', '--top-k', '--seed', '--json', '--method', '--stages', '--merge', '--score', '--kv', '--explain']) {
    assert.ok(r.out.includes(f), `run --help mentions ${f}`);
  }
});

test('missing model folder', () => expectError(run('run', '--model', path.join(tmp, 'nope'), '--image', image, '--prompt', 'hi'), /does not exist/));

test('unknown model_type names the type and the supported ones', () => {
  const dir = path.join(tmp, 'weird');
  fs.cpSync(tiny, dir, { recursive: true });
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, model_type: 'blip2' }));
  expectError(run('run', '--model', dir, '--image', image, '--prompt', 'hi'), /unsupported model_type "blip2".*llava/);
});

test('missing weights file', () => {
  const dir = path.join(tmp, 'noweights');
  fs.cpSync(tiny, dir, { recursive: true });
  fs.rmSync(path.join(dir, 'model.safetensors'));
  expectError(run('run', '--model', dir, '--image', image, '--prompt', 'hi'), /model\.safetensors/);
});

test('corrupt image file', () => {
  const f = path.join(tmp, 'broken.jpg');
  const bytes = fs.readFileSync(image);
  fs.writeFileSync(f, bytes.subarray(0, 200));
  expectError(run('run', '--model', tiny, '--image', f, '--prompt', 'hi'), /broken\.jpg/);
});

test('non-image file', () => {
  const f = path.join(tmp, 'notes.txt');
  fs.writeFileSync(f, 'this is text, not an image\n');
  expectError(run('run', '--model', tiny, '--image', f, '--prompt', 'hi'), /notes\.txt.*image/);
});

test('missing image file', () => expectError(run('run', '--model', tiny, '--image', path.join(tmp, 'none.png'), '--prompt', 'hi'), /does not exist/));

test('prompt longer than the context', () => {
  expectError(run('run', '--model', tiny, '--image', image, '--prompt', 'circle '.repeat(2100)), /exceeds the model's context of 2048/);
});

test('invalid options', () => {
  expectError(run('run', '--image', image, '--prompt', 'hi', '--method', 'magic:0.5'), /unknown method 'magic'/);
  expectError(run('run', '--image', image, '--prompt', 'hi', '--method', 'lightvlm:1.5'), /keep must be a fraction/);
  expectError(run('run', '--image', image, '--prompt', 'hi', '--max-new-tokens', 'many'), /--max-new-tokens must be a whole number/);
  expectError(run('run', '--image', image, '--prompt', 'hi', '--stages', '4:0.5,2:0.3'), /stage|layer/i);
  expectError(run('run', '--image', image, '--prompt', 'hi', '--kv', 'h2o:-3'), /budget/);
  expectError(run('run', '--image', image, '--prompt', 'hi', '--frobnicate'), /frobnicate/);
  expectError(run('run', '--prompt', 'hi'), /--image is required/);
  expectError(run('fly'), /unknown command "fly"/);
});

test('--explain draws one panel per merge stage', () => {
  const out = path.join(tmp, 'explain.png');
  const r = run('run', '--image', image, '--prompt', 'What color is the square?', '--method', 'lightvlm:0.1', '--explain', out, '--max-new-tokens', '2');
  assert.equal(r.code, 0, r.err);
  const png = fs.readFileSync(out);
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  assert.ok(png.readUInt32BE(16) > 3 * 320, 'several panels wide');
});
