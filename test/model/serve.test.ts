// The HTTP server under concurrency, bad input, overflow and disconnects, with the `openai` npm
// package as the client against a real server on a loopback port. tiny-llava (random weights)
// answers until max_tokens, so its sequences really overlap in the decode batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import OpenAI from 'openai';
import { MODELS, ROOT } from '../helpers.js';
import { dataUrl, startServer, until, userMessage } from './serveHelpers.js';

const tiny = MODELS['tiny-llava']!.dir;
const image = dataUrl(path.join(tiny, 'golden/image.png'));
const other = dataUrl(path.join(ROOT, 'examples/shapes.jpg'));

test('concurrent requests with mixed settings each equal their sequential answer, decoded in shared batches', async () => {
  const s = await startServer(tiny);
  try {
    const reqs: OpenAI.ChatCompletionCreateParamsNonStreaming[] = [
      { model: 'test-model', messages: userMessage(image, 'What is shown?'), max_tokens: 24 },
      { model: 'test-model', messages: userMessage(other, 'Describe it.'), max_tokens: 30, lightvlm: { prefill: { method: 'lightvlm', keep: 0.35 }, kv: { method: 'lightvlm', budget: 8 } } } as never,
      { model: 'test-model', messages: userMessage(image, 'Colors?'), max_tokens: 20, lightvlm: { prefill: { method: 'fastv', keep: 0.5 }, kv: { method: 'h2o', budget: 12 } } } as never,
      { model: 'test-model', messages: userMessage(other, 'Where is the square?'), max_tokens: 28, temperature: 0.9, top_p: 0.8, seed: 11 },
      { model: 'test-model', messages: userMessage(image, 'Count them.'), max_completion_tokens: 26, lightvlm: { kv: { method: 'streamingllm', budget: 16 } } } as never,
    ];
    const content = (r: OpenAI.ChatCompletion) => r.choices[0]!.message.content;
    const sequential: OpenAI.ChatCompletion[] = [];
    for (const r of reqs) sequential.push(await s.client.chat.completions.create(r));
    const stepsBefore = await s.metric('lightvlm_decode_batch_size_count');
    const singleBefore = await s.metric('lightvlm_decode_batch_size_bucket{le="1"}');
    const concurrent = await Promise.all(reqs.map((r) => s.client.chat.completions.create(r)));
    concurrent.forEach((r, i) => {
      assert.equal(content(r), content(sequential[i]!), `request ${i}`);
      assert.equal(r.usage!.completion_tokens, sequential[i]!.usage!.completion_tokens);
      assert.equal(r.object, 'chat.completion');
    });
    const steps = (await s.metric('lightvlm_decode_batch_size_count')) - stepsBefore;
    const single = (await s.metric('lightvlm_decode_batch_size_bucket{le="1"}')) - singleBefore;
    assert.ok(steps - single >= 15, `most concurrent decode steps batch several sequences (${steps - single} of ${steps})`);
    assert.equal(await s.metric('lightvlm_requests_total{status="200"}'), 2 * reqs.length);
  } finally {
    await s.close();
  }
});

test('every bad input class gets a 4xx in the OpenAI error shape, and the server keeps serving', async () => {
  const s = await startServer(tiny, {}, { maxTokens: 64, bodyLimit: 200_000 });
  s.engine.maxImagePixels = 20_000; // the fixture image (150x100) passes, examples/shapes.jpg does not
  try {
    const good = { model: 'test-model', messages: userMessage(image, 'What?'), max_tokens: 4 };
    const txt = (t: string) => ({ type: 'text', text: t });
    const img = (u: string) => ({ type: 'image_url', image_url: { url: u } });
    const big = dataUrl(path.join(ROOT, 'examples/shapes.jpg'));
    const cases: [string, unknown, number][] = [
      ['not JSON', '{"messages": [', 400],
      ['no messages', { model: 'test-model' }, 400],
      ['messages not an array', { messages: 'hi' }, 400],
      ['empty messages', { messages: [] }, 400],
      ['unknown role', { messages: [{ role: 'robot', content: 'x' }] }, 400],
      ['content a number', { messages: [{ role: 'user', content: 5 }] }, 400],
      ['no image', { messages: [{ role: 'user', content: 'hello' }] }, 400],
      ['two images', { messages: [{ role: 'user', content: [img(image), img(image), txt('x')] }] }, 400],
      ['no text', { messages: [{ role: 'user', content: [img(image)] }] }, 400],
      ['multi-turn', { messages: [...good.messages, { role: 'assistant', content: 'a' }, ...good.messages] }, 400],
      ['system message', { messages: [{ role: 'system', content: 'be brief' }, ...good.messages] }, 400],
      ['remote URL', { messages: [{ role: 'user', content: [img('https://example.com/a.png'), txt('x')] }] }, 400],
      ['local path (disabled)', { messages: [{ role: 'user', content: [img('/etc/passwd'), txt('x')] }] }, 400],
      ['data URL not base64', { messages: [{ role: 'user', content: [img('data:image/png,abc'), txt('x')] }] }, 400],
      ['bytes that are no image', { messages: [{ role: 'user', content: [img('data:image/png;base64,aGVsbG8gd29ybGQ='), txt('x')] }] }, 400],
      ['image above the pixel limit', { messages: [{ role: 'user', content: [img(big), txt('x')] }] }, 400],
      ['max_tokens above the limit', { ...good, max_tokens: 65 }, 400],
      ['max_tokens zero', { ...good, max_tokens: 0 }, 400],
      ['max_tokens a string', { ...good, max_tokens: '8' }, 400],
      ['temperature out of range', { ...good, temperature: 3 }, 400],
      ['top_p zero', { ...good, top_p: 0 }, 400],
      ['negative seed', { ...good, seed: -1 }, 400],
      ['five stop strings', { ...good, stop: ['a', 'b', 'c', 'd', 'e'] }, 400],
      ['n = 2', { ...good, n: 2 }, 400],
      ['unknown prefill method', { ...good, lightvlm: { prefill: { method: 'magic' } } }, 400],
      ['keep above 1', { ...good, lightvlm: { prefill: { method: 'lightvlm', keep: 2 } } }, 400],
      ['unknown extension field', { ...good, lightvlm: { turbo: true } }, 400],
      ['kv none with a budget', { ...good, lightvlm: { kv: { method: 'none', budget: 5 } } }, 400],
      ['unknown vitMerge mode', { ...good, lightvlm: { vitMerge: { mode: 'fold' } } }, 400],
      ['vitMerge keep 0', { ...good, lightvlm: { vitMerge: { mode: 'reduce', keep: 0 } } }, 400],
      ['prompt beyond the context', { ...good, messages: userMessage(image, 'word '.repeat(2100)), max_tokens: 8 }, 400],
      ['image token typed in the text', { ...good, messages: userMessage(image, 'what is <image> here?') }, 400],
      ['temperature 1e999 (Infinity)', `{"messages":${JSON.stringify(good.messages)},"temperature":1e999}`, 400],
      ['max_tokens 1e999', `{"messages":${JSON.stringify(good.messages)},"max_tokens":1e999}`, 400],
      ['keep 1e-400 (zero)', `{"messages":${JSON.stringify(good.messages)},"lightvlm":{"prefill":{"method":"lightvlm","keep":1e-400}}}`, 400],
      ['extension not an object', { ...good, lightvlm: [] }, 400],
      ['keep a string', { ...good, lightvlm: { prefill: { method: 'lightvlm', keep: '0.5' } } }, 400],
      ['base64 of zero bytes', { messages: [{ role: 'user', content: [img('data:image/png;base64,' + 'A'.repeat(64)), txt('x')] }] }, 400],
      ['unknown model', { ...good, model: 'gpt-5' }, 404],
      ['body too large', { ...good, messages: userMessage(image, 'x'.repeat(300_000)) }, 413],
    ];
    for (const [name, body, status] of cases) {
      const r = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
      assert.equal(r.status, status, `${name}: status`);
      const j = (await r.json()) as { error: { message: string; type: string; code: unknown; param: unknown } };
      assert.equal(typeof j.error.message, 'string', `${name}: message`);
      assert.ok(j.error.message.length > 10 && !/\n\s+at /.test(j.error.message), `${name}: a clear message, no stack`);
      assert.equal(j.error.type, 'invalid_request_error', `${name}: type`);
      assert.ok('code' in j.error && 'param' in j.error, `${name}: code and param`);
    }
    const notFound = await fetch(`${s.url}/v1/completions`, { method: 'POST', body: '{}' });
    assert.equal(notFound.status, 404);
    assert.ok(((await notFound.json()) as { error: object }).error);
    // the openai client sees the same errors as typed exceptions
    await assert.rejects(s.client.chat.completions.create({ ...good, max_tokens: 1000 }), (e: unknown) => e instanceof OpenAI.BadRequestError && /limit of 64/.test(e.message));
    // and the server still answers
    const ok = await s.client.chat.completions.create(good);
    assert.equal(ok.choices.length, 1);
    assert.equal(await s.metric('lightvlm_requests_total{status="500"}'), 0);
  } finally {
    await s.close();
  }
});

test('the vitMerge extension reaches the vision tower: the answer equals the library answer with the same vitMerge', async () => {
  const synth = MODELS['synth-llava']!.dir; // a 5-block CLIP tower (tiny-llava's single block cannot merge)
  const shapes = path.join(ROOT, 'examples/shapes.jpg');
  const s = await startServer(synth);
  try {
    const vitMerge = { mode: 'reduce' as const, keep: 0.5 };
    const ask = (x?: object) => s.client.chat.completions.create({ model: 'test-model', messages: userMessage(dataUrl(shapes), 'What color is the square?'), max_tokens: 8, ...(x ? { lightvlm: x } : {}) } as never) as Promise<OpenAI.ChatCompletion>;
    const [merged, plain] = [await ask({ vitMerge }), await ask()];
    const lib = await s.engine.generate({ image: shapes, prompt: 'What color is the square?' }, { maxNewTokens: 8, temperature: 0, acceleration: { vitMerge } });
    assert.ok(lib.vision, 'the library run merged inside the tower');
    assert.equal(merged.choices[0]!.message.content, lib.text);
    assert.equal(merged.usage!.prompt_tokens, lib.stats.promptTokens, 'reduce: as many image tokens reach the LM as in the library');
    assert.ok(merged.usage!.prompt_tokens < plain.usage!.prompt_tokens, 'the request without vitMerge keeps every image token');
    // a merge layer the tower does not have is the client's mistake
    const r = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: userMessage(dataUrl(shapes), 'x'), lightvlm: { vitMerge: { mode: 'unmerge', layer: 99 } } }) });
    assert.equal(r.status, 400);
    assert.match(((await r.json()) as { error: { message: string } }).error.message, /vitMerge layers/);
  } finally {
    await s.close();
  }
});

test('a full queue answers 429 with Retry-After; the admitted requests complete', async () => {
  const s = await startServer(tiny, { maxBatch: 1, maxQueue: 1 });
  try {
    const req = { model: 'test-model', messages: userMessage(image, 'What is shown?'), max_tokens: 40 };
    const res = await Promise.all(
      Array.from({ length: 5 }, () => fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(req) })),
    );
    const codes = res.map((r) => r.status).sort();
    assert.deepEqual(codes, [200, 200, 429, 429, 429]);
    for (const r of res.filter((x) => x.status === 429)) {
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
      const j = (await r.json()) as { error: { type: string; code: string } };
      assert.equal(j.error.code, 'queue_full');
    }
  } finally {
    await s.close();
  }
});

test('a disconnected stream stops its generation and frees its cache', async () => {
  const s = await startServer(tiny);
  try {
    const req = { model: 'test-model', messages: userMessage(image, 'What is shown?'), max_tokens: 400 };
    const full = await s.client.chat.completions.create(req);
    assert.equal(full.usage!.completion_tokens, 400, 'precondition: this prompt runs to max_tokens');
    const stepsBefore = await s.metric('lightvlm_decode_batch_size_count');
    const stream = await s.client.chat.completions.create({ ...req, stream: true });
    let pieces = 0;
    for await (const c of stream) {
      if (c.choices[0]?.delta.content) pieces++;
      if (pieces === 3) break; // closes the connection
    }
    const sched = s.engine.scheduler();
    assert.ok(await until(() => sched.stats().running === 0), 'the sequence left the scheduler');
    assert.equal(sched.stats().kvBytes, 0);
    assert.equal(sched.stats().kvReserved, 0);
    const steps = (await s.metric('lightvlm_decode_batch_size_count')) - stepsBefore;
    assert.ok(steps < 200, `generation stopped early (${steps} of 400 steps)`);
    assert.equal(await s.metric('lightvlm_requests_total{status="499"}'), 1);
    // a cancelled generation leaves nothing behind: the same request still gives the same answer
    const again = await s.client.chat.completions.create(req);
    assert.equal(again.choices[0]!.message.content, full.choices[0]!.message.content);
  } finally {
    await s.close();
  }
});
