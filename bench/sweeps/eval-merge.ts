// Joins `lightvlm eval --json` reports of the same settings on disjoint question sets (e.g. the two
// halves from --split A / --split B, run side by side, or a run cut short with Ctrl-C) into one
// report: the table (markdown), the per-kind table, the JSON and the chart, with intervals and
// paired comparisons recomputed over all questions. A question counts only when every setting
// answered it, so the comparisons stay paired.
// Usage: node --import tsx bench/sweeps/eval-merge.ts out.json out.svg a.json b.json ... [--compare-to NAME ...]
import fs from 'node:fs';
import { buildEvalReport, type EvalReport } from '../../src/eval/run.js';
import { evalChart, evalKindTable, evalTable } from '../../src/cli/eval.js';
import { expandCombos } from '../../src/engine/specs.js';
import type { AnswerRecord } from '../../src/eval/score.js';

const args = process.argv.slice(2);
const compareTo: string[] = [];
const files: string[] = [];
for (let i = 0; i < args.length; i++) if (args[i] === '--compare-to') compareTo.push(args[++i]!); else files.push(args[i]!);
const [outJson, outSvg, ...inputs] = files;
const docs: EvalReport[] = inputs.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
const labels = docs[0]!.methods.map((m) => m.label);
const answers: AnswerRecord[] = docs.flatMap((d) => d.answers);
const perId = new Map<string, Set<string>>();
for (const a of answers) perId.set(a.id, (perId.get(a.id) ?? new Set()).add(a.label));
const complete = new Set([...perId].filter(([, s]) => labels.every((l) => s.has(l))).map(([id]) => id));
const { combos } = expandCombos(labels, [], [], true);
const report = buildEvalReport(docs[0]!.model, docs[0]!.dataset, combos, docs.flatMap((d) => d.skippedRows), {
  answers: answers.filter((a) => complete.has(a.id)), failed: [], interrupted: docs.some((d) => d.interrupted), total: 0, match: docs[0]!.match,
}, compareTo.length ? compareTo : ['none']);
report.split = null;
fs.writeFileSync(outJson!, JSON.stringify(report, null, 2) + '\n');
fs.writeFileSync(outSvg!, evalChart(report, `Accuracy vs kept image tokens (${report.questions} questions, 95% Wilson intervals)`));
process.stdout.write(evalTable(report, true) + '\n' + evalKindTable(report, true));
console.log(`\n${report.questions} questions (every setting answered), from ${inputs.join(', ')}`);
