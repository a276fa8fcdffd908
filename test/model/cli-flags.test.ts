// The CLI flags a user reaches for first, end to end through the built command: --version,
// --prompt-file / --prompt - for long prompts, refusals of empty or out-of-range flags and of bad
// --explain paths before any work, '<image>' typed in a prompt, a ~30 KB command line, a closed
// stdout (EPIPE) and the stand-alone scripts' flag errors. Each: exit status, one message line
// naming the flag or problem, no stack trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MODELS, ROOT } from '../helpers.js';

const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const node = (args: string[], input?: string) => {
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', cwd: ROOT, ...(input !== undefined ? { input } : {}), maxBuffer: 1 << 24 });
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
};
const run = (...args: string[]) => node([CLI, ...args]);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lightvlm-flags-'));
const tiny = MODELS['tiny-llava']!.dir;
const image = path.join(ROOT, 'examples/shapes.jpg');
const base = ['run', '--model', tiny, '--image', image, '--max-new-tokens', '3', '--json'];

function refused(r: ReturnType<typeof node>, code: number, pattern: RegExp, prefix = /^lightvlm: error: /m): void {
  assert.equal(r.code, code, `exit status (stderr: ${r.err})`);
  assert.match(r.err, prefix);
  assert.match(r.err, pattern);
  assert.doesNotMatch(r.err, /^\s+at /m, 'no stack trace');
}

test('--version, --prompt-file and --prompt - give the same answer as --prompt', () => {
  const v = run('--version');
  assert.equal(v.code, 0);
  assert.match(v.out, /^lightvlm \d+\.\d+\.\d+\n$/);
  const want = JSON.parse(run(...base, '--prompt', 'What color is the square?').out).tokenIds;
  const file = path.join(tmp, 'q.txt');
  fs.writeFileSync(file, 'What color is the square?\n');
  assert.deepEqual(JSON.parse(run(...base, '--prompt-file', file).out).tokenIds, want);
  assert.deepEqual(JSON.parse(node([CLI, ...base, '--prompt', '-'], 'What color is the square?\n').out).tokenIds, want);
  refused(run(...base, '--prompt', 'x', '--prompt-file', file), 2, /--prompt.*--prompt-file|--prompt-file.*--prompt/);
  refused(run(...base, '--prompt-file', path.join(tmp, 'none.txt')), 2, /none\.txt/);
});

test('empty or out-of-range flags are refused naming the flag', () => {
  const q = ['--prompt', 'hi'];
  refused(run(...base, ...q, '--method', ''), 2, /--method/);
  refused(run(...base, ...q, '--stages', ''), 2, /--stages/);
  refused(run(...base, ...q, '--stop', ''), 2, /--stop/);
  refused(run(...base, ...q, '--threads', '100000'), 2, /--threads/);
  refused(run(...base, ...q, '--threads', '0'), 2, /--threads/);
  refused(run(...base, ...q, '--bogus'), 2, /Unknown option '--bogus'/);
});

test('--explain paths are checked before the model loads', () => {
  const q = ['--prompt', 'hi', '--method', 'lightvlm'];
  refused(run(...base, ...q, '--explain', path.join(tmp, 'no', 'such', 'dir', 'x.png')), 2, /--explain/);
  refused(run(...base, ...q, '--explain', path.join(tmp, 'x.txt')), 2, /\.png|\.jpg/);
  refused(run(...base, ...q, '--explain', tmp), 2, /--explain/);
});

test("'<image>' typed in the prompt is E_PROMPT, not an internal error", () => {
  refused(run(...base, '--prompt', 'What is <image> here?'), 2, /image placeholder "<image>".*\(E_PROMPT\)/);
});

test('a command line over ~30 KB neither crashes ONNX Runtime nor changes the answer', () => {
  const r = run(...base, '--prompt', 'a'.repeat(30_000));
  assert.equal(r.signal, null, 'no signal (SIGSEGV)');
  refused(r, 2, /E_PROMPT_TOO_LONG/);
  // 36 KB of --stop strings that never match: the sessions are created and the answer is the short command line's
  const stops = Array.from({ length: 40 }, (_, i) => ['--stop', `${i}${'z'.repeat(900)}`]).flat();
  const want = JSON.parse(run(...base, '--prompt', 'What color?').out).tokenIds;
  const long = run(...base, '--prompt', 'What color?', ...stops);
  assert.equal(long.signal, null, 'no signal (SIGSEGV)');
  assert.equal(long.code, 0, long.err);
  assert.deepEqual(JSON.parse(long.out).tokenIds, want);
});

test('a closed stdout (| head -c 1) is a quiet exit 0', () => {
  const r = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" run --model "${tiny}" --image "${image}" --prompt hi --max-new-tokens 40 --min-new-tokens 40 | head -c 1 >/dev/null; echo "status=\${PIPESTATUS[0]}" >&2`], { encoding: 'utf8', cwd: ROOT });
  assert.match(r.stderr, /status=0/);
  assert.doesNotMatch(r.stderr, /EPIPE|^\s+at /m);
});

test('npm run load and the serving bench: --help exits 0, flag mistakes are one line and exit 2', () => {
  for (const script of ['load', 'serving']) {
    const js = path.join(ROOT, 'dist/src/bench', `${script}.js`);
    const h = node([js, '--help']);
    assert.equal(h.code, 0, h.err);
    assert.match(h.out, /--json FILE/);
    refused(node([js, '--bogus']), 2, /Unknown option '--bogus'.*--help/, new RegExp(`^${script}: error: `, 'm'));
    refused(node([js, '--json']), 2, /argument missing/, new RegExp(`^${script}: error: `, 'm'));
  }
  refused(node([path.join(ROOT, 'dist/src/bench/load.js'), '--requests', 'many']), 2, /--requests must be a whole number/, /^load: error: /m);
  refused(node([path.join(ROOT, 'dist/src/bench/load.js'), '--url', 'http://example.com']), 2, /loopback/, /^load: error: /m);
  refused(node([path.join(ROOT, 'dist/src/bench/serving.js')]), 2, /--model DIR is required/, /^serving: error: /m);
});
