// A stand-in `tokenizer.json` for random checkpoints: a byte-level BPE (the 256 byte tokens plus a few
// English merges) with the family's special tokens at their real ids. Every id below the model's vocab
// size decodes to something (unused ids are filler tokens " #<id>"), so random-weight generations decode.
// It is NOT the published vocabulary: token counts of ordinary text differ from the real tokenizer;
// the special-token ids, which the engine relies on, are the real ones.
import type { TokenizerShape } from './shapes.js';

/** GPT-2's reversible byte → printable-unicode map, in GPT-2 vocabulary order. */
export function bytesToUnicode(): [number, string][] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  return bs.map((b, i) => [b, String.fromCodePoint(cs[i])]);
}

const MERGES: [string, string][] = [
  ['Ġ', 't'], ['h', 'e'], ['i', 'n'], ['e', 'r'], ['a', 'n'], ['o', 'n'], ['Ġt', 'he'], ['Ġ', 'a'], ['r', 'e'], ['Ġ', 'w'],
  ['i', 's'], ['Ġ', 's'], ['Ġ', 'c'], ['o', 'r'], ['e', 'n'], ['a', 't'], ['Ġ', 'i'], ['Ġ', 'o'], ['Ġ', 'b'], ['e', 's'],
  ['Ġ', 'f'], ['Ġ', 'p'], ['o', 'u'], ['Ġ', 'm'], ['l', 'e'], ['Ġw', 'h'], ['Ġi', 's'], ['o', 'l'], ['Ġc', 'o'], ['Ġ', 'n'],
];

export interface TokenizerFiles {
  tokenizer: Record<string, unknown>;
  config: Record<string, unknown>;
}

export function buildTokenizer(spec: TokenizerShape, vocabSize: number): TokenizerFiles {
  const vocab = new Map<string, number>();
  const taken = new Set<number>();
  const put = (tok: string, id: number) => {
    if (vocab.has(tok) || taken.has(id)) throw new Error(`tokenizer stub: duplicate token ${tok} / id ${id}`);
    vocab.set(tok, id);
    taken.add(id);
  };
  for (const s of spec.specials) put(s.content, s.id);
  let next = spec.byteOffset;
  const nextFree = () => {
    while (taken.has(next)) next++;
    return next;
  };
  for (const [, ch] of bytesToUnicode()) put(ch, nextFree());
  const merges: [string, string][] = [];
  for (const [a, b] of MERGES) {
    if (!vocab.has(a) || !vocab.has(b) || vocab.has(a + b)) continue;
    put(a + b, nextFree());
    merges.push([a, b]);
  }
  const maxSpecial = Math.max(...spec.specials.map((s) => s.id));
  const size = Math.max(vocabSize, maxSpecial + 1);
  for (let id = 0; id < size; id++) if (!taken.has(id)) put(`Ġ#${id}`, id);

  const sortedVocab: Record<string, number> = {};
  for (const [tok, id] of [...vocab.entries()].sort((x, y) => x[1] - y[1])) sortedVocab[tok] = id;
  const added = [...spec.specials]
    .sort((x, y) => x.id - y.id)
    .map((s) => ({ id: s.id, content: s.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: s.special ?? true }));
  const bosId = spec.bos === null ? null : vocab.get(spec.bos)!;
  const seqA = { Sequence: { id: 'A', type_id: 0 } };
  const seqB = { Sequence: { id: 'B', type_id: 1 } };
  const post = spec.addBos && spec.bos !== null
    ? {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: spec.bos, type_id: 0 } }, seqA],
        pair: [{ SpecialToken: { id: spec.bos, type_id: 0 } }, seqA, { SpecialToken: { id: spec.bos, type_id: 1 } }, seqB],
        special_tokens: { [spec.bos]: { id: spec.bos, ids: [bosId], tokens: [spec.bos] } },
      }
    : { type: 'TemplateProcessing', single: [seqA], pair: [seqA, seqB], special_tokens: {} };

  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: post,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: sortedVocab, merges,
    },
  };
  const config: Record<string, unknown> = {
    backend: 'tokenizers',
    bos_token: spec.bos,
    eos_token: spec.eos,
    ...(spec.unk ? { unk_token: spec.unk } : {}),
    model_max_length: spec.modelMaxLength,
    pad_token: spec.pad,
    tokenizer_class: 'TokenizersBackend',
    ...spec.extraConfig,
  };
  return { tokenizer, config: Object.fromEntries(Object.entries(config).sort(([a], [b]) => (a < b ? -1 : 1))) };
}
