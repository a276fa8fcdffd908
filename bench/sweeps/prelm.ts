// Why do pre-LM methods collapse on synth-llava (docs/schedule.md, "Pre-LM methods")? Builds the
// reduced prompt by hand so that the SAME selection can be fed with two position conventions:
//   renumber — kept rows get contiguous position ids (what merge/prelmPlan.ts does for 1-D RoPE models);
//   original — kept rows keep the position id of the patch they came from (what in-LM merging does).
// Selections: random (seeded), fastervlm ([CLS] attention), novelty (distance from the mean
// projector feature). Rows stay in spatial (ascending) order in every case.
// Usage: node --import tsx bench/sweeps/prelm.ts <A|B|all> [from:to] [out.json] [keep,keep]
import fs from 'node:fs';
import { Engine } from '../../src/engine/vlm.js';
import { generate } from '../../src/engine/generate.js';
import type { LmPrompt } from '../../src/processing/lmPrompt.js';
import { halfSplit, wilson, type Half } from '../../src/eval/stats.js';
import { fastervlmSelect, preLMTarget } from '../../src/merge/prelm.js';
import { noveltyScores } from '../../src/merge/importance.js';
import { mulberry32, sampleWithoutReplacement, topKAscending } from '../../src/util/topk.js';

type Select = (p: LmPrompt, keep: number, D: number) => Int32Array; // ascending indices inside the span
const sel: Record<string, Select> = {
  random: (p, keep) => { const N = p.spans[0]!.length; return Int32Array.from(sampleWithoutReplacement(N, preLMTarget(N, keep), mulberry32(0))).sort(); },
  fastervlm: (p, keep) => fastervlmSelect(p.clsAttn!, keep),
  novelty: (p, keep, D) => { const N = p.spans[0]!.length; return topKAscending(noveltyScores(p.features, D, [{ start: 0, length: N, origLength: N }], N), preLMTarget(N, keep)); },
};

function reduce(p: LmPrompt, idx: Int32Array, D: number, positions: 'renumber' | 'original'): LmPrompt {
  const s = p.spans[0]!;
  const ids = [...p.ids.slice(0, s.start), ...Array.from(idx, () => p.ids[s.start]!), ...p.ids.slice(s.start + s.length)];
  const old = [...Array(s.start).keys(), ...Array.from(idx, (i) => s.start + i), ...Array.from({ length: p.ids.length - s.start - s.length }, (_, i) => s.start + s.length + i)];
  const feats = new Float32Array(idx.length * D);
  idx.forEach((i, j) => feats.set(p.features.subarray(i * D, (i + 1) * D), j * D));
  const pos = positions === 'renumber' ? [Int32Array.from(ids, (_, i) => i)] : p.pos.map((row) => Int32Array.from(old, (i) => row[i]!));
  return { ...p, ids, features: feats, pos, spans: [{ start: s.start, length: idx.length, origLength: idx.length }] };
}

const [half = 'A', range = '0:100000', outPath, keeps = '0.35,0.1'] = process.argv.slice(2);
const dir = 'datasets/synth-vqa-2k';
let rows = fs.readFileSync(`${dir}/questions.jsonl`, 'utf8').trim().split('\n').map((l) => { const r = JSON.parse(l); return { ...r, id: String(r.id) }; });
if (half !== 'all') rows = halfSplit(rows, half as Half);
rows = rows.slice(...range.split(':').map(Number));
const e = await Engine.load('models/synth-llava');
const ctx = (e as any).ctx;
const cfgs: { name: string; sel?: string; keep?: number; positions?: 'renumber' | 'original' }[] = [{ name: 'none' }];
for (const keep of keeps.split(',').map(Number)) for (const s of ['random', 'fastervlm', 'novelty']) for (const positions of ['renumber', 'original'] as const) cfgs.push({ name: `${s} ${positions} @${keep}`, sel: s, keep, positions });
const hits = cfgs.map(() => [] as number[]);
for (const r of rows) {
  const img = await e.prepareImage(`${dir}/${r.image}`);
  const p: LmPrompt = e.buildPrompt(r.question, img as any);
  const D = p.features.length / p.spans[0]!.length;
  for (let m = 0; m < cfgs.length; m++) {
    const c = cfgs[m]!;
    const q = c.sel ? reduce(p, sel[c.sel]!(p, c.keep!, D), D, c.positions!) : p;
    const res = await generate(ctx, q, { maxNewTokens: 8 });
    hits[m]!.push(res.text.trim() === r.answer ? 1 : 0);
  }
  if (outPath && hits[0]!.length % 10 === 0) save(hits[0]!.length);
}
const n = rows.length;
cfgs.forEach((c, i) => { const k = hits[i]!.reduce((a, b) => a + b, 0); const ci = wilson(k, n); console.log(c.name.padEnd(28), (k / n).toFixed(3), `[${ci.lo.toFixed(3)}, ${ci.hi.toFixed(3)}]`); });
if (outPath) save(n);
function save(done: number): void {
  fs.writeFileSync(outPath!, JSON.stringify({ half, ids: rows.slice(0, done).map((r) => r.id), results: cfgs.map((c, i) => ({ name: c.name, hits: hits[i]!.slice(0, done) })) }));
}
