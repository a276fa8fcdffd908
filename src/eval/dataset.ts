// A VQA dataset folder: `questions.jsonl` (one JSON object per line: id, image, question, answer,
// optional kind) plus the images it names, relative to the folder. Bad rows are collected with their
// line number and skipped so that one broken line never costs a long run.
import fs from 'node:fs';
import path from 'node:path';
import { LightVLMError } from '../errors.js';

export interface Question {
  line: number;           // 1-based line in questions.jsonl, for messages
  id: string;             // ids may be numbers in the file; kept as text so JSON output is uniform
  image: string;          // absolute path
  imageRel: string;       // as written in the file, for the JSON report
  question: string;
  answers: string[];      // `answer` may be a string or a list of accepted strings
  kind: string;           // 'other' when the row has none
}

export interface BadRow {
  line: number;
  id?: string;
  reason: string;
}

export interface Dataset {
  dir: string;
  file: string;
  questions: Question[];
  bad: BadRow[];
}

export const DEFAULT_KIND = 'other';

/** Resolves `--dataset`: a folder holding questions.jsonl, or the .jsonl file itself. */
export function resolveDatasetFile(arg: string): { dir: string; file: string } {
  const p = path.resolve(arg);
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new LightVLMError(`dataset '${arg}' does not exist. Pass --dataset DIR, a folder holding questions.jsonl and its images (e.g. datasets/synth-vqa).`, 'E_IO');
  }
  if (st.isDirectory()) {
    const file = path.join(p, 'questions.jsonl');
    if (!fs.existsSync(file)) throw new LightVLMError(`dataset folder '${arg}' has no questions.jsonl. Each line must be a JSON object with id, image, question, answer and optional kind.`, 'E_IO');
    return { dir: p, file };
  }
  return { dir: path.dirname(p), file: p };
}

const isReadableFile = (p: string): string | undefined => {
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) return 'is not a file';
    fs.accessSync(p, fs.constants.R_OK);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read';
  }
};

const nonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

/**
 * Parses questions.jsonl text. `limit` stops after that many valid questions (bad rows before that
 * point are still reported). Image files are checked for existence and readability here; images that
 * exist but fail to decode are caught later by the eval loop.
 */
export function parseQuestions(text: string, dir: string, limit = Infinity): { questions: Question[]; bad: BadRow[] } {
  const questions: Question[] = [];
  const bad: BadRow[] = [];
  const ids = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length && questions.length < limit; i++) {
    const line = i + 1;
    const raw = lines[i]!.trim();
    if (raw === '') continue; // blank lines (and the trailing newline) are not rows
    let row: unknown;
    try {
      row = JSON.parse(raw);
    } catch (e) {
      bad.push({ line, reason: `invalid JSON (${(e as Error).message})` });
      continue;
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      bad.push({ line, reason: 'not a JSON object' });
      continue;
    }
    const r = row as Record<string, unknown>;
    const id = typeof r.id === 'number' || nonEmptyString(r.id) ? String(r.id) : undefined;
    const withId = (reason: string): BadRow => (id === undefined ? { line, reason } : { line, id, reason });
    const missing = ['id', 'image', 'question', 'answer'].filter((k) => {
      const v = r[k];
      if (k === 'id') return id === undefined;
      if (k === 'answer') return !(nonEmptyString(v) || typeof v === 'number' || (Array.isArray(v) && v.length > 0 && v.every((a) => nonEmptyString(a) || typeof a === 'number')));
      return !nonEmptyString(v);
    });
    if (missing.length > 0) {
      bad.push(withId(`missing or empty field${missing.length > 1 ? 's' : ''} ${missing.map((k) => `'${k}'`).join(', ')}`));
      continue;
    }
    if (ids.has(id!)) {
      bad.push(withId(`duplicate id ${id}`));
      continue;
    }
    const imageRel = r.image as string;
    const image = path.resolve(dir, imageRel);
    const problem = isReadableFile(image);
    if (problem !== undefined) {
      bad.push(withId(`image '${imageRel}' ${problem}`));
      continue;
    }
    if (r.kind !== undefined && !nonEmptyString(r.kind)) {
      bad.push(withId(`'kind' must be a non-empty string when present`));
      continue;
    }
    ids.add(id!);
    const answers = (Array.isArray(r.answer) ? r.answer : [r.answer]).map((a) => String(a));
    questions.push({ line, id: id!, image, imageRel, question: r.question as string, answers, kind: (r.kind as string | undefined) ?? DEFAULT_KIND });
  }
  return { questions, bad };
}

export function loadDataset(arg: string, limit = Infinity): Dataset {
  const { dir, file } = resolveDatasetFile(arg);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new LightVLMError(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). Check the path and its permissions.`, 'E_IO');
  }
  const { questions, bad } = parseQuestions(text, dir, limit);
  return { dir, file, questions, bad };
}
