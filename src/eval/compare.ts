// Paired comparisons for `eval --compare-to NAME`: every method against a reference method on the
// same questions (wins, losses, exact McNemar p), overall and per question kind.
import { LightVLMError } from '../errors.js';
import type { AnswerRecord } from './score.js';
import { type PairedComparison, pairedCompare } from './stats.js';

/** What a compared row needs to know about a setting. */
export interface SettingRef { label: string; method: string; keep: number | null; kv: string | null }

export interface Comparison extends PairedComparison {
  to: string;                                  // the --compare-to name as given
  ref: string;                                 // label of the setting compared against
  byKind: Record<string, PairedComparison>;
}

/**
 * The setting that `name` means for `row`: a setting whose label is `name` exactly; else, when
 * `name` is a method name, the setting of that method with the row's keep and KV policy, or its only
 * setting. Null when the row is that setting itself or nothing fits (e.g. `lightvlm` with several
 * keeps, none equal to the row's).
 */
export function resolveReference(name: string, row: SettingRef, settings: readonly SettingRef[]): SettingRef | null {
  let ref = settings.find((s) => s.label === name);
  if (!ref) {
    const same = settings.filter((s) => s.method === name);
    ref = same.find((s) => s.keep === row.keep && s.kv === row.kv) ?? (same.length === 1 ? same[0] : undefined);
  }
  return ref === undefined || ref.label === row.label ? null : ref;
}

/** Throws a usage error when a --compare-to name matches no setting at all. */
export function checkCompareNames(names: readonly string[], settings: readonly SettingRef[]): void {
  for (const n of names) {
    if (!settings.some((s) => s.label === n || s.method === n)) {
      throw new LightVLMError(`--compare-to ${n} matches no evaluated setting. Use a method name or a label among: ${settings.map((s) => s.label).join(', ')}.`, 'E_OPTION');
    }
  }
}

const correctById = (rows: readonly AnswerRecord[]): Map<string, boolean> => new Map(rows.map((r) => [r.id, r.correct]));

/** For each setting (in order), its comparison against each name in `names` (null where none fits). */
export function comparisons(answers: readonly AnswerRecord[], settings: readonly SettingRef[], names: readonly string[]): (Comparison | null)[][] {
  const byLabel = new Map<string, AnswerRecord[]>(settings.map((s) => [s.label, []]));
  for (const a of answers) byLabel.get(a.label)?.push(a);
  return settings.map((row) => names.map((to) => {
    const ref = resolveReference(to, row, settings);
    if (!ref) return null;
    const mine = byLabel.get(row.label) ?? [];
    const theirs = byLabel.get(ref.label) ?? [];
    const kinds = [...new Set(mine.map((r) => r.kind))].sort();
    const byKind: Record<string, PairedComparison> = {};
    for (const k of kinds) {
      byKind[k] = pairedCompare(correctById(mine.filter((r) => r.kind === k)), correctById(theirs.filter((r) => r.kind === k)));
    }
    return { to, ref: ref.label, ...pairedCompare(correctById(mine), correctById(theirs)), byKind };
  }));
}
