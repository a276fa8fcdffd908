// Chat-template rendering is bounded: a template that loops too long or builds too much text ends
// in E_CONFIG naming the limit (quickly, without the memory), a template that does not parse or
// fails is E_CONFIG, raise_exception is the prompt's fault (E_PROMPT); real templates render as
// the library's own Template.render does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { LightVLMError } from '../../src/errors.js';
import { renderBounded, TEMPLATE_LIMITS } from '../../src/processing/prompt.js';
import { ROOT } from '../helpers.js';

const ITEMS = { messages: [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What color?' }] }], add_generation_prompt: true, bos_token: '<s>', eos_token: '</s>' };

const refused = (src: string, code: string, re: RegExp) =>
  assert.throws(() => renderBounded(new Template(src), ITEMS), (e: unknown) => e instanceof LightVLMError && e.code === code && re.test(e.message));

test('the fixtures’ chat templates render exactly as Template.render does', () => {
  for (const f of ['tiny-llava', 'tiny-internvl', 'tiny-qwen2_vl']) {
    const t = new Template(fs.readFileSync(path.join(ROOT, 'fixtures', f, 'chat_template.jinja'), 'utf8'));
    assert.equal(renderBounded(t, ITEMS), t.render(ITEMS), f);
  }
  const t = new Template("{{ bos_token }}{% for i in range(3) %}{{ i }}{% endfor %}{% if none is none and True %}ok{% endif %}{{ strftime_now('%Y') | length }}");
  assert.equal(renderBounded(t, ITEMS), '<s>012ok4');
});

test('a template that loops or grows without bound ends in a typed error, fast', () => {
  const t0 = performance.now();
  refused('{% for i in range(10**9) %}x{% endfor %}', 'E_CONFIG', /range\(\) of 1000000000 elements/);
  refused('{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}x{% endfor %}{% endfor %}{% endfor %}', 'E_CONFIG', /evaluation steps|characters produced|ms/);
  refused("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", 'E_CONFIG', new RegExp(`more than ${TEMPLATE_LIMITS.chars} characters produced`));
  refused('{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}', 'E_CONFIG', /did not finish rendering|failed to render/);
  assert.ok(performance.now() - t0 < 60_000);
});

test('template errors: a parse error or a failure is E_CONFIG, raise_exception is E_PROMPT', () => {
  refused('{{ messages[0].content | nosuchfilter }}', 'E_CONFIG', /failed to render/);
  refused("{{ raise_exception('Only user and assistant roles are supported') }}", 'E_PROMPT', /refused the prompt: Only user/);
  assert.throws(() => new Template('{% for %}'));
});
