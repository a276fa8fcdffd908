// Tokenizer and chat template: thin wrappers over @huggingface/tokenizers and @huggingface/jinja.
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
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
    return new TextProcessor(tok, new Template(findChatTemplate(dir, tc)), tc);
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
    return this.template.render({
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
