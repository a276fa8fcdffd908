// Importance-rule sweep for merging at an EARLY first stage (docs/schedule.md, issue 14).
// Usage: node --import tsx bench/sweeps/rules.ts <set[+set]> <A|B|all> [from:to] [out.json]
//   Dataset: datasets/synth-vqa-2k, half A or B (eval/stats.halfSplit). Greedy, maxNewTokens 8,
//   exact match. One prepareImage per question, shared by every config. Writes per-question 0/1.
import fs from 'node:fs';
import { Engine } from '../../src/engine/vlm.js';
import { lightvlmPolicy } from '../../src/merge/policies.js';
import { noveltyScores } from '../../src/merge/importance.js';
import { defaultLightVLMSchedule } from '../../src/merge/schedule.js';
import { halfSplit, wilson, type Half } from '../../src/eval/stats.js';
import type { MergeDecision, MergeInput } from '../../src/merge/types.js';

type Rule = (i: MergeInput) => Float32Array;
type Cfg = { name: string; prefill: any; rule?: Rule; firstOnly?: boolean; mode?: 'recycle' | 'drop' };
const F = [0.35, 0.1, 0.03];
const spec = (f: number) => defaultLightVLMSchedule(8, f); // 1/2/4 on the 8-layer model
const first = (i: MergeInput) => i.spans.every((s) => s.length === s.origLength);
const novelty: Rule = (i) => noveltyScores(i.hidden, i.dim, i.spans, i.scores.length);
const withRule = (c: Cfg): ((i: MergeInput) => MergeDecision) | undefined => c.rule && ((i: MergeInput) =>
  lightvlmPolicy(i, { scores: !c.firstOnly || first(i) ? c.rule!(i) : i.scores, mode: c.mode ?? 'recycle', debias: 'none' }));

const at = (tag: string, mk: (f: number) => Omit<Cfg, 'name'>) => F.map((f): Cfg => ({ name: `${tag} @${f}`, ...mk(f) }));
const SETS: Record<string, Cfg[]> = {
  none: [{ name: 'none', prefill: { method: 'none' } }],
  spec124at10: [{ name: 'attn 1/2/4 @0.1', prefill: { method: 'lightvlm', stages: spec(0.1), score: 'attention' } }],
  spec124: at('attn 1/2/4', (f) => ({ prefill: { method: 'lightvlm', stages: spec(f), score: 'attention' } })),
  rand124: at('random 1/2/4', (f) => ({ prefill: { method: 'random', stages: spec(f) } })),
  nov124: at('novelty 1/2/4', (f) => ({ prefill: { method: 'lightvlm', stages: spec(f) }, rule: novelty })),
  nov1st124: at('novelty-first 1/2/4', (f) => ({ prefill: { method: 'lightvlm', stages: spec(f) }, rule: novelty, firstOnly: true })),
  novdrop124: at('novelty drop 1/2/4', (f) => ({ prefill: { method: 'lightvlm', stages: spec(f) }, rule: novelty, mode: 'drop' })),
  cand124: at('novelty-first 1/2/4', (f) => ({ prefill: { method: 'lightvlm', stages: spec(f) }, rule: novelty, firstOnly: true })),
  rand124lo: [0.1, 0.03].map((f): Cfg => ({ name: `random 1/2/4 @${f}`, prefill: { method: 'random', stages: spec(f) } })),
  dflt: at('default', (f) => ({ prefill: { method: 'lightvlm', keep: f } })),
  randdflt: at('random default', (f) => ({ prefill: { method: 'random', keep: f } })),
  fastv: at('fastv', (f) => ({ prefill: { method: 'fastv', keep: f } })),
};
const [set = 'none', half = 'A', range = '0:100000', outPath] = process.argv.slice(2);
const cfgs = set.split('+').flatMap((s) => SETS[s] ?? (() => { throw new Error(`unknown set ${s}`); })());
const dir = 'datasets/synth-vqa-2k';
let rows = fs.readFileSync(`${dir}/questions.jsonl`, 'utf8').trim().split('\n').map((l) => { const r = JSON.parse(l); return { ...r, id: String(r.id) }; });
if (half !== 'all') rows = halfSplit(rows, half as Half);
rows = rows.slice(...range.split(':').map(Number));
const e = await Engine.load('models/synth-llava');
const hits = cfgs.map(() => [] as number[]);
const ms = cfgs.map(() => 0);
const t0 = Date.now();
for (const r of rows) {
  const img = await e.prepareImage(`${dir}/${r.image}`);
  for (let m = 0; m < cfgs.length; m++) {
    const policy = withRule(cfgs[m]!);
    const res = await e.generate({ image: img, prompt: r.question }, { maxNewTokens: 8, acceleration: { prefill: cfgs[m]!.prefill } }, policy ? { policy } : {});
    hits[m]!.push(res.text.trim() === r.answer ? 1 : 0);
    ms[m] += res.stats.prefillMs;
  }
  if (outPath && hits[0]!.length % 20 === 0) save(hits[0]!.length);
}
const n = rows.length;
cfgs.forEach((c, i) => {
  const k = hits[i]!.reduce((a, b) => a + b, 0);
  const ci = wilson(k, n);
  console.log(c.name.padEnd(28), (k / n).toFixed(3), `[${ci.lo.toFixed(3)}, ${ci.hi.toFixed(3)}]`, `${(ms[i]! / n).toFixed(1)}ms`);
});
console.error(`${n} questions x ${cfgs.length} configs in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
if (outPath) save(n);
function save(done: number): void {
  fs.writeFileSync(outPath!, JSON.stringify({ set, half, ids: rows.slice(0, done).map((r) => r.id), results: cfgs.map((c, i) => ({ name: c.name, prefill: c.prefill, hits: hits[i]!.slice(0, done), prefillMs: ms[i]! })) }));
}
