// Tokenizer and chat template: thin wrappers over @huggingface/tokenizers and @huggingface/jinja.
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { LightVLMError } from '../errors.js';

const readJson = (f: string): Record<string, unknown> => {
  try {
    return JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch (e) {
    throw new LightVLMError(`${f} is not valid JSON (${(e as Error).message}).`, 'E_CONFIG');
  }
};

export class TextProcessor {
  private constructor(
    private readonly tok: Tokenizer,
    private readonly template: Template,
    readonly tokenizerConfig: Record<string, unknown>,
  ) {}

  static load(dir: string): TextProcessor {
    const tj = path.join(dir, 'tokenizer.json');
    if (!fs.existsSync(tj)) throw new LightVLMError(`missing ${tj}: lightvlm needs the fast tokenizer file (tokenizer.json) of the checkpoint.`, 'E_CONFIG');
    const tcFile = path.join(dir, 'tokenizer_config.json');
    const tc = fs.existsSync(tcFile) ? readJson(tcFile) : {};
    const tok = new Tokenizer(readJson(tj), tc);
    let template: Template;
    try {
      template = new Template(findChatTemplate(dir, tc));
    } catch (e) {
      throw new LightVLMError(`the chat template of ${dir} does not parse: ${(e as Error).message}. Fix or replace chat_template.jinja.`, 'E_CONFIG');
    }
    return new TextProcessor(tok, template, tc);
  }

  /** Renders one user turn (image first, then the question) with the generation prompt. */
  renderUserTurn(question: string, withImage = true): string {
    const content: Record<string, string>[] = [];
    if (withImage) content.push({ type: 'image' });
    content.push({ type: 'text', text: question });
    const special = (k: string) => {
      const v = this.tokenizerConfig[k];
      return typeof v === 'string' ? v : (v as { content?: string } | undefined)?.content ?? '';
    };
    return renderBounded(this.template, {
      messages: [{ role: 'user', content }],
      add_generation_prompt: true,
      bos_token: special('bos_token'),
      eos_token: special('eos_token'),
    });
  }

  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: true }).ids;
  }

  decode(ids: number[], skipSpecial = true): string {
    if (ids.length === 0) return '';
    return this.tok.decode(ids, { skip_special_tokens: skipSpecial });
  }

  tokenId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }
}

/** chat_template.jinja, chat_template.json, or tokenizer_config.json's chat_template (HF's order). */
function findChatTemplate(dir: string, tc: Record<string, unknown>): string {
  const jinja = path.join(dir, 'chat_template.jinja');
  if (fs.existsSync(jinja)) return fs.readFileSync(jinja, 'utf8');
  const json = path.join(dir, 'chat_template.json');
  if (fs.existsSync(json)) {
    const t = readJson(json).chat_template;
    if (typeof t === 'string') return t;
  }
  const t = tc.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const d = t.find((x: { name?: string }) => x.name === 'default') ?? t[0];
    if (d?.template) return d.template as string;
  }
  throw new LightVLMError(`no chat template in ${dir}: expected chat_template.jinja, chat_template.json or a chat_template in tokenizer_config.json.`, 'E_CONFIG');
}

// ---------------------------------------------------------------- bounded rendering
// A chat template is code from the model folder: a loop over range(10**9), or a string doubled in
// a loop, would hang the process or exhaust memory. Rendering therefore counts evaluation steps,
// the characters produced (every string value counted once per evaluation, so nested output is
// bounded too), range() lengths and time, and stops with a typed error past any limit. Real chat
// templates render one user turn in a few hundred steps and a few KB.
export const TEMPLATE_LIMITS = { steps: 1_000_000, chars: 50_000_000, rangeLength: 100_000, ms: 5_000 };

function templateFault(what: string): never {
  throw new LightVLMError(`the chat template did not finish rendering: ${what}. The template loops too long or builds too much text; fix or replace chat_template.jinja.`, 'E_CONFIG');
}

// The package's .d.ts re-exports its runtime classes through an extension-less path that ESM type
// resolution cannot follow, so the base class is declared here with the two methods used.
interface RuntimeValue { type: string; value: unknown }
interface InterpreterLike {
  evaluate(statement: unknown, environment: unknown): RuntimeValue;
  run(program: unknown): RuntimeValue;
}
const InterpreterBase = Interpreter as unknown as new (env: unknown) => InterpreterLike;

/** Interpreter.evaluate (called for every node, recursively) with the step, time and size checks. */
class BoundedInterpreter extends InterpreterBase {
  private steps = 0;
  private chars = 0;
  private readonly t0 = performance.now();

  override evaluate(statement: unknown, environment: unknown): RuntimeValue {
    if (++this.steps > TEMPLATE_LIMITS.steps) templateFault(`more than ${TEMPLATE_LIMITS.steps} evaluation steps`);
    if ((this.steps & 1023) === 0 && performance.now() - this.t0 > TEMPLATE_LIMITS.ms) templateFault(`more than ${TEMPLATE_LIMITS.ms} ms`);
    const v = super.evaluate(statement, environment);
    if (typeof v.value === 'string') {
      this.chars += v.value.length;
      if (this.chars > TEMPLATE_LIMITS.chars) templateFault(`more than ${TEMPLATE_LIMITS.chars} characters produced`);
    }
    return v;
  }
}

/** Python's range() with at most TEMPLATE_LIMITS.rangeLength elements. */
function boundedRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('range() step must not be zero');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  if (!(n <= TEMPLATE_LIMITS.rangeLength)) templateFault(`range() of ${n} elements (limit ${TEMPLATE_LIMITS.rangeLength})`);
  return Array.from({ length: n }, (_, i) => start + i * step);
}

const pad2 = (n: number) => String(n).padStart(2, '0');
/** strftime_now(format): the subset transformers' templates use (%Y %m %d %b %B %H %M %%). */
function strftimeNow(format: string): string {
  const d = new Date();
  const month = (style: 'long' | 'short') => new Intl.DateTimeFormat('en-US', { month: style }).format(d);
  return format.replace(/%[YmdbBHM%]/g, (t) =>
    ({ '%Y': String(d.getFullYear()), '%m': pad2(d.getMonth() + 1), '%d': pad2(d.getDate()), '%b': month('short'), '%B': month('long'), '%H': pad2(d.getHours()), '%M': pad2(d.getMinutes()), '%%': '%' })[t] ?? t);
}

/** Template.render with the library's globals, through the bounded interpreter. */
export function renderBounded(template: Template, items: Record<string, unknown>): string {
  const env = new Environment();
  const globals: Record<string, unknown> = {
    false: false, true: true, none: null, False: false, True: true, None: null,
    raise_exception: (msg: unknown) => {
      throw new LightVLMError(`the chat template refused the prompt: ${String(msg)}`, 'E_PROMPT');
    },
    range: boundedRange,
    strftime_now: strftimeNow,
  };
  for (const [k, v] of Object.entries({ ...globals, ...items })) env.set(k, v);
  try {
    return new BoundedInterpreter(env).run(template.parsed).value as string;
  } catch (e) {
    if (e instanceof LightVLMError) throw e;
    throw new LightVLMError(`the chat template failed to render: ${(e as Error)?.message ?? e}. Fix or replace chat_template.jinja.`, 'E_CONFIG');
  }
}
