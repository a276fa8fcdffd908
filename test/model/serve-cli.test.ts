// `lightvlm serve` against `lightvlm run`, and as a process: the answer over HTTP (plain and
// streamed, through the `openai` client) equals the CLI's on the same input; SIGTERM drains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import OpenAI from 'openai';
import { MODELS, ROOT } from '../helpers.js';
import { dataUrl, startServer, userMessage } from './serveHelpers.js';
import { spawnServe } from '../../src/server/spawn.js';

const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const demo = MODELS['synth-llava']!.dir;
const image = path.join(ROOT, 'examples/shapes.jpg');

test('plain and streamed completions equal `lightvlm run` on the same input (with and without acceleration)', async () => {
  const s = await startServer(demo);
  try {
    const cases = [
      { prompt: 'What color is the square?', flags: [] as string[], ext: undefined },
      { prompt: 'What shape is the yellow object?', flags: ['--method', 'lightvlm:0.1', '--kv', 'lightvlm:64'], ext: { prefill: { method: 'lightvlm', keep: 0.1 }, kv: { method: 'lightvlm', budget: 64 } } },
    ];
    for (const c of cases) {
      const cli = spawnSync(process.execPath, [CLI, 'run', '--model', demo, '--image', image, '--prompt', c.prompt, '--max-new-tokens', '12', ...c.flags], { encoding: 'utf8' });
      assert.equal(cli.status, 0, cli.stderr);
      const want = cli.stdout.replace(/\n$/, '');
      assert.ok(want.length > 0);
      const req = { model: 'test-model', messages: userMessage(dataUrl(image), c.prompt), max_tokens: 12, ...(c.ext ? { lightvlm: c.ext } : {}) };
      const plain = await s.client.chat.completions.create(req as OpenAI.ChatCompletionCreateParamsNonStreaming);
      assert.equal(plain.choices[0]!.message.content, want);
      assert.equal(plain.choices[0]!.finish_reason, 'stop');
      const stream = await s.client.chat.completions.create({ ...(req as OpenAI.ChatCompletionCreateParamsStreaming), stream: true, stream_options: { include_usage: true } });
      let text = '';
      let usage: OpenAI.CompletionUsage | undefined;
      let finish: string | null = null;
      for await (const chunk of stream) {
        assert.equal(chunk.object, 'chat.completion.chunk');
        text += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
        if (chunk.usage) usage = chunk.usage;
      }
      assert.equal(text, want);
      assert.equal(finish, 'stop');
      assert.deepEqual(usage, plain.usage, 'the final chunk carries the usage');
    }
    // stop strings end the answer before the stop text, streamed or not
    const req = { model: 'test-model', messages: userMessage(dataUrl(image), 'What color is the square?'), max_tokens: 12, stop: ['ll'] };
    const plain = await s.client.chat.completions.create(req);
    assert.equal(plain.choices[0]!.message.content, 'ye');
    let streamed = '';
    for await (const chunk of await s.client.chat.completions.create({ ...req, stream: true })) streamed += chunk.choices[0]?.delta.content ?? '';
    assert.equal(streamed, 'ye');
    const models = await s.client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ['test-model']);
    const health = await fetch(`${s.url}/health`);
    assert.equal(health.status, 200);
  } finally {
    await s.close();
  }
});

test('SIGTERM drains: the running request finishes, a new one gets 503, the process exits 0', async () => {
  const { url, proc, exited, stderr } = await spawnServe(CLI, ['--model', MODELS['tiny-llava']!.dir, '--port', '0', '--model-name', 'tiny']);
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const img = dataUrl(path.join(MODELS['tiny-llava']!.dir, 'golden/image.png'));
  const stream = await client.chat.completions.create({ model: 'tiny', messages: userMessage(img, 'What is shown?'), max_tokens: 300, stream: true, stream_options: { include_usage: true } });
  let signalled = false;
  let refused: Response | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  let finish: string | null = null;
  for await (const chunk of stream) {
    if (!signalled && chunk.choices[0]?.delta.content) {
      signalled = true;
      proc.kill('SIGTERM');
      refused = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: userMessage(img, 'x') }) });
    }
    finish = chunk.choices[0]?.finish_reason ?? finish;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(refused, 'a request was sent during the drain');
  assert.equal(refused.status, 503);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'draining');
  assert.equal(finish, 'length');
  assert.equal(usage?.completion_tokens, 300, 'the running request finished');
  assert.equal(await exited, 0);
  assert.match(stderr(), /drained/);
});
