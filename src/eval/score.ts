// Scoring: exact match of the answer, then accuracy overall and per kind, and retention against the
// unreduced model on the same questions. Two match modes:
//
// 'exact' (default): the generated text with surrounding white space stripped must equal a gold
//   answer exactly. This is how synth-vqa's reference accuracy was measured (fixtures/README.md), so
//   numbers stay comparable.
// 'normalized': for chatty models ("Yes.", "There are two."), both sides are first normalised:
//   1. keep only the first non-empty line (models sometimes continue after the answer);
//   2. Unicode NFKC, lower case;
//   3. strip a leading "answer:" label;
//   4. remove punctuation except inside words (so "yes." → "yes", "t-shirt" stays);
//   5. drop the articles a / an / the as whole words;
//   6. number words zero…twenty become digits ("two" ≡ "2");
//   7. collapse runs of whitespace and trim.
// Either way a prediction is correct when it equals any gold answer, and an empty answer never is.

import { type Interval, bootstrapRetention, wilson } from './stats.js';

export type MatchMode = 'exact' | 'normalized';
export const MATCH_MODES: readonly MatchMode[] = ['exact', 'normalized'];

export const describeMatch = (mode: MatchMode): string =>
  mode === 'exact'
    ? 'exact match after stripping surrounding white space'
    : 'exact match after normalising both sides: first line, NFKC, lower case, "answer:" prefix, punctuation and articles removed, number words as digits, white space collapsed';

export interface AnswerRecord {
  id: string;
  line: number;
  kind: string;
  image: string;
  question: string;
  answer: string[];          // gold answers as written
  label: string;             // combo label, e.g. "lightvlm:0.35" or "fastv:0.1 kv=h2o:512"
  method: string;            // prefill method name
  keep: number | null;       // requested keep (null: engine default)
  kv: string | null;         // KV spec, null: engine default
  prediction: string;        // raw model output
  normalized: string;        // the prediction as compared (see the match mode)
  correct: boolean;
  imageTokens: number;
  keptImageTokens: number;
  ms: number;                // generate() wall time for this answer (vision excluded: it is shared)
}

export interface MethodSummary {
  label: string;
  keep: number | null;
  answered: number;
  correct: number;
  accuracy: number;                    // correct / answered (0 when nothing answered)
  retention: number | null;            // accuracy / baseline accuracy on the shared questions
  keptFraction: number;                // mean keptImageTokens / imageTokens actually achieved
  byKind: Record<string, number>;      // kind → accuracy
  accuracyCI: Interval;                // 95% Wilson interval of `accuracy`
  retentionCI: Interval | null;        // 95% paired percentile bootstrap of `retention` (null with it)
  kinds: Record<string, KindSummary>;  // kind → counts, accuracy and its Wilson interval
}

export interface KindSummary { n: number; correct: number; accuracy: number; ci: Interval }

const NUMBERS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven',
  'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen', 'twenty'];
const NUMBER_OF = new Map(NUMBERS.map((w, i) => [w, String(i)]));

export function normalizeAnswer(text: string, mode: MatchMode = 'normalized'): string {
  if (mode === 'exact') return text.trim();
  const first = text.split(/\r?\n/).find((l) => l.trim() !== '') ?? '';
  let s = first.normalize('NFKC').toLowerCase().trim();
  s = s.replace(/^answer\s*:\s*/, '');
  // Punctuation between two letters/digits is part of a word ("t-shirt", "3.5"); elsewhere it goes.
  s = s.replace(/[^\p{L}\p{N}\s]/gu, (ch, off: number, all: string) => {
    const prev = all[off - 1] ?? ' ';
    const next = all[off + 1] ?? ' ';
    return /[\p{L}\p{N}]/u.test(prev) && /[\p{L}\p{N}]/u.test(next) && /[-.'’/]/.test(ch) ? ch : ' ';
  });
  return s
    .split(/\s+/)
    .filter((w) => w !== '' && w !== 'a' && w !== 'an' && w !== 'the')
    .map((w) => NUMBER_OF.get(w) ?? w)
    .join(' ');
}

export const isCorrect = (prediction: string, gold: readonly string[], mode: MatchMode = 'exact'): boolean => {
  const p = normalizeAnswer(prediction, mode);
  return p !== '' && gold.some((g) => normalizeAnswer(g, mode) === p);
};

const ratio = (a: number, b: number): number => (b > 0 ? a / b : 0);

/**
 * Summaries per method, in `methods` order. Retention compares the method's accuracy with the
 * baseline's accuracy over the questions both answered, so an interrupted run stays fair.
 * Retention is null when there is no baseline or the baseline got none of those questions right.
 */
export function summarize(answers: readonly AnswerRecord[], methods: readonly { label: string; keep: number | null }[], baseline: string | undefined): MethodSummary[] {
  const byMethod = new Map<string, AnswerRecord[]>();
  for (const m of methods) byMethod.set(m.label, []);
  for (const a of answers) byMethod.get(a.label)?.push(a);
  const baseById = new Map<string, boolean>();
  for (const a of baseline === undefined ? [] : byMethod.get(baseline) ?? []) baseById.set(a.id, a.correct);

  return methods.map(({ label, keep }) => {
    const rows = byMethod.get(label) ?? [];
    const correct = rows.filter((r) => r.correct).length;
    const kinds = new Map<string, { n: number; ok: number }>();
    for (const r of rows) {
      const k = kinds.get(r.kind) ?? { n: 0, ok: 0 };
      k.n++;
      if (r.correct) k.ok++;
      kinds.set(r.kind, k);
    }
    const byKind: Record<string, number> = {};
    const kindSummaries: Record<string, KindSummary> = {};
    for (const [k, v] of [...kinds].sort(([a], [b]) => a.localeCompare(b))) {
      byKind[k] = ratio(v.ok, v.n);
      kindSummaries[k] = { n: v.n, correct: v.ok, accuracy: ratio(v.ok, v.n), ci: wilson(v.ok, v.n) };
    }

    let retention: number | null = null;
    let retentionCI: Interval | null = null;
    const shared = rows.filter((r) => baseById.has(r.id));
    const baseCorrect = shared.filter((r) => baseById.get(r.id)).length;
    if (shared.length > 0 && baseCorrect > 0) {
      retention = shared.filter((r) => r.correct).length / baseCorrect;
      retentionCI = label === baseline ? { lo: 1, hi: 1 } : bootstrapRetention(shared.map((r) => r.correct), shared.map((r) => baseById.get(r.id)!));
    }

    const fractions = rows.filter((r) => r.imageTokens > 0).map((r) => r.keptImageTokens / r.imageTokens);
    const keptFraction = fractions.length > 0 ? fractions.reduce((s, x) => s + x, 0) / fractions.length : keep ?? 1;
    return {
      label, keep, answered: rows.length, correct, accuracy: ratio(correct, rows.length), retention, keptFraction, byKind,
      accuracyCI: wilson(correct, rows.length), retentionCI, kinds: kindSummaries,
    };
  });
}
