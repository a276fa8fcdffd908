// The eval loop. Questions are grouped by image so that each image goes through the vision encoder
// once (vlm.prepareImage) and the PreparedImage is shared by every question and every method on it:
// the methods differ only in the LM, so re-encoding would waste time and add noise.
import type { VLM, PreparedImage } from '../engine/types.js';
import { ExitCode, LightVLMError } from '../errors.js';
import { type Combo, comboLabel, findBaseline, kvLabel, toAcceleration } from '../engine/specs.js';
import type { BadRow, Question } from './dataset.js';
import { type Comparison, type SettingRef, comparisons } from './compare.js';
import { type AnswerRecord, type MatchMode, type MethodSummary, describeMatch, isCorrect, normalizeAnswer, summarize } from './score.js';

/**
 * The question is sent as written by default: synth-llava was trained that way, and an instruction
 * it never saw ruins its accuracy (first 30 synth-vqa questions: 0.57 without, 0.03 with it).
 * LLaVA-1.5-style models want LLAVA_SHORT_ANSWER_SUFFIX for short answers (--prompt-suffix).
 */
export const DEFAULT_PROMPT_SUFFIX = '';
export const LLAVA_SHORT_ANSWER_SUFFIX = '\nAnswer the question using a single word or phrase.';

export interface EvalOptions {
  combos: Combo[];
  maxNewTokens?: number;          // default 16: answers are a few words
  promptSuffix?: string;          // appended to every question
  match?: MatchMode;              // default 'exact'
  signal?: AbortSignal;           // Ctrl-C: stop between generate calls and keep what is scored
  onAnswer?: (a: AnswerRecord, done: number, total: number) => void;
  onSkip?: (row: BadRow) => void; // rows that fail at run time (undecodable image, engine refusal)
}

export interface EvalOutcome {
  answers: AnswerRecord[];
  failed: BadRow[];               // rows skipped during the run (in addition to the dataset's bad rows)
  interrupted: boolean;
  total: number;                  // planned generate calls
  match: MatchMode;
  error?: unknown;                // a non-row error (a bug, a disposed model) stopped the run; what was scored is kept
}

/** Engine errors about one input (bad image, prompt too long) skip the row; internal errors (70) are bugs. */
const isRowError = (e: unknown): e is LightVLMError => e instanceof LightVLMError && e.exitCode !== ExitCode.INTERNAL;

export async function runEval(vlm: VLM, questions: readonly Question[], opts: EvalOptions): Promise<EvalOutcome> {
  const { combos, maxNewTokens = 16, promptSuffix = DEFAULT_PROMPT_SUFFIX, match = 'exact', signal } = opts;
  const groups = new Map<string, Question[]>();
  for (const q of questions) {
    const g = groups.get(q.image);
    if (g) g.push(q);
    else groups.set(q.image, [q]);
  }
  const total = questions.length * combos.length;
  const answers: AnswerRecord[] = [];
  const failed: BadRow[] = [];
  let done = 0;
  const skip = (q: Question, reason: string, dropped: number): void => {
    // A question counts for every method or none of them, so accuracies stay comparable.
    for (let i = answers.length - 1; i >= 0 && answers[i]!.id === q.id; i--) answers.splice(i, 1);
    done += combos.length - dropped;
    const row = { line: q.line, id: q.id, reason };
    failed.push(row);
    opts.onSkip?.(row);
  };

  let error: unknown;
  let current: Question | undefined;
  try {
    for (const [image, qs] of groups) {
      if (signal?.aborted) break;
      let prepared: PreparedImage;
      try {
        prepared = await vlm.prepareImage(image);
      } catch (e) {
        if (!isRowError(e)) throw e;
        for (const q of qs) skip(q, `image '${q.imageRel}' could not be used: ${e.message}`, 0);
        continue;
      }
      for (const q of qs) {
        current = q;
        let answered = 0;
        for (const combo of combos) {
          if (signal?.aborted) break;
          const t0 = performance.now();
          let text: string;
          let stats;
          try {
            ({ text, stats } = await vlm.generate(
              { image: prepared, prompt: q.question + promptSuffix },
              { maxNewTokens, temperature: 0, acceleration: toAcceleration(combo) },
            ));
          } catch (e) {
            if (!isRowError(e)) throw e;
            skip(q, `the engine refused it: ${e.message}`, answered);
            break;
          }
          const ms = performance.now() - t0;
          const rec: AnswerRecord = {
            id: q.id, line: q.line, kind: q.kind, image: q.imageRel, question: q.question, answer: q.answers,
            label: comboLabel(combo), method: combo.prefill.method, keep: combo.prefill.keep ?? null,
            kv: combo.kv === undefined ? null : kvLabel(combo.kv),
            prediction: text, normalized: normalizeAnswer(text, match), correct: isCorrect(text, q.answers, match),
            imageTokens: stats.imageTokens, keptImageTokens: stats.keptImageTokens, ms: Math.round(ms * 10) / 10,
          };
          answers.push(rec);
          answered++;
          done++;
          opts.onAnswer?.(rec, done, total);
        }
        if (signal?.aborted) break;
      }
    }
  } catch (e) {
    // Not about one row: stop, but keep what was scored (whole questions only, as for a skip).
    error = e;
    if (current) for (let i = answers.length - 1; i >= 0 && answers[i]!.id === current.id; i--) answers.splice(i, 1);
  }
  return { answers, failed, interrupted: signal?.aborted ?? false, total, match, ...(error !== undefined ? { error } : {}) };
}

export interface EvalReport {
  model: string;
  dataset: string;
  questions: number;
  skipped: number;
  skippedRows: BadRow[];
  interrupted: boolean;
  error: string | null;           // why the run stopped early (not a row's fault), or null
  match: MatchMode;
  scoring: string;
  split: string | null;           // 'A' / 'B' when only one half of the dataset was scored (stats.halfSplit)
  compareTo: string[];            // the --compare-to names, in the order of each method's `comparisons`
  methods: (Omit<MethodSummary, 'label'> & { label: string; method: string; kv: string | null; comparisons: (Comparison | null)[] })[];
  answers: AnswerRecord[];
}

/** The `eval --json` document; names are part of the public contract (see the issue). */
export function buildEvalReport(model: string, dataset: string, combos: readonly Combo[], datasetBad: readonly BadRow[], outcome: EvalOutcome,
  compareTo: readonly string[] = ['none'], split: string | null = null): EvalReport {
  const labels = combos.map((c) => ({ label: comboLabel(c), keep: c.prefill.keep ?? null }));
  const b = findBaseline(combos);
  const summaries = summarize(outcome.answers, labels, b >= 0 ? labels[b]!.label : undefined);
  const settings = settingRefs(combos);
  const paired = comparisons(outcome.answers, settings, compareTo);
  const skippedRows = [...datasetBad, ...outcome.failed].sort((x, y) => x.line - y.line);
  return {
    model,
    dataset,
    questions: new Set(outcome.answers.map((a) => a.id)).size,
    skipped: skippedRows.length,
    skippedRows,
    interrupted: outcome.interrupted,
    error: outcome.error === undefined ? null : String((outcome.error as Error)?.message ?? outcome.error),
    match: outcome.match,
    scoring: describeMatch(outcome.match),
    split,
    compareTo: [...compareTo],
    methods: summaries.map((s, i) => ({
      ...s,
      label: s.label,
      method: combos[i]!.prefill.method,
      kv: combos[i]!.kv === undefined ? null : kvLabel(combos[i]!.kv),
      comparisons: paired[i]!,
    })),
    answers: outcome.answers,
  };
}

/** The label, method, keep and KV label of each combo, as --compare-to resolves names against them. */
export const settingRefs = (combos: readonly Combo[]): SettingRef[] =>
  combos.map((c) => ({ label: comboLabel(c), method: c.prefill.method, keep: c.prefill.keep ?? null, kv: c.kv === undefined ? null : kvLabel(c.kv) }));
