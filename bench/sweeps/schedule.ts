// Schedule / score sweep for `--method lightvlm` on models/synth-llava + datasets/synth-vqa (docs/schedule.md).
// Usage: node --import tsx bench/sweeps/schedule.ts <set> [from] [to] [out.json]
//   set: a key of SETS below. Greedy, maxNewTokens 8, exact match of the trimmed text.
//   One prepareImage per image, shared by every config. Writes per-question 0/1 per config to out.json.
import { Engine } from '../../src/engine/vlm.js';
import fs from 'node:fs';

type Cfg = { name: string; prefill: any };
const geo = (f: number) => { const q = Math.pow(f, 1 / 3); return [q, q * q, f]; };
const st = (layers: number[], f: number) => geo(f).map((keep, j) => ({ layer: layers[j]!, keep }));
const F = [0.35, 0.1, 0.03];
const sched = (layers: number[], extra: any = { score: 'attention' }, tag = '') =>
  F.map((f): Cfg => ({ name: `lv ${layers.join('/')}${tag} @${f}`, prefill: { method: 'lightvlm', stages: st(layers, f), ...extra } }));
const SETS: Record<string, Cfg[]> = {
  base: [
    { name: 'none', prefill: { method: 'none' } },
    ...F.flatMap((f) => [
      { name: `random(def) @${f}`, prefill: { method: 'random', keep: f } },
      { name: `fastv K2 @${f}`, prefill: { method: 'fastv', keep: f } },
      { name: `pdrop @${f}`, prefill: { method: 'pdrop', keep: f } },
    ]),
  ],
  depth: [[1, 2, 4], [2, 3, 5], [2, 4, 6], [3, 4, 6], [2, 3, 4]].flatMap((l) => sched(l)),
  debias: [[1, 2, 4], [2, 3, 5], [2, 4, 6]].flatMap((l) => [...sched(l, { score: 'debiased-all' }, ' deb'), ...sched(l, { score: 'debiased' }, ' deb1')]),
  debA: [[1, 2, 4], [2, 3, 5]].flatMap((l) => sched(l, { score: 'debiased-all' }, ' deb')).concat(sched([1, 2, 4], { score: 'debiased' }, ' deb1')),
  debB: [...sched([2, 3, 5], { score: 'debiased' }, ' deb1'), ...sched([3, 4, 6], { score: 'debiased-all' }, ' deb'), ...sched([2, 4, 6], { score: 'debiased-all' }, ' deb')],
  rand: [[2, 3, 5], [3, 4, 6]].flatMap((l) => F.map((f): Cfg => ({ name: `random ${l.join('/')} @${f}`, prefill: { method: 'random', stages: st(l, f) } }))),
  rand235: F.map((f): Cfg => ({ name: `random 2/3/5 @${f}`, prefill: { method: 'random', stages: st([2, 3, 5], f) } })),
  rand235s1: F.map((f): Cfg => ({ name: `random 2/3/5 seed1 @${f}`, prefill: { method: 'random', stages: st([2, 3, 5], f), seed: 1 } })),
  confirm: [] as Cfg[],
  dflt: F.flatMap((f) => [
    { name: `lightvlm(default) @${f}`, prefill: { method: 'lightvlm', keep: f } },
  ]),
};
SETS.confirm = [
  SETS.base![0]!,
  ...F.flatMap((f) => [{ name: `fastv K2 @${f}`, prefill: { method: 'fastv', keep: f } }, { name: `pdrop @${f}`, prefill: { method: 'pdrop', keep: f } }]),
  ...SETS.rand235!, ...sched([2, 3, 5]), ...sched([2, 3, 5], { score: 'debiased' }, ' deb1'),
];
const [set = 'base', from = '0', to = '100', outPath] = process.argv.slice(2);
const cfgs = set.split('+').flatMap((s) => SETS[s] ?? (() => { throw new Error(`unknown set ${s}`); })());
const e = await Engine.load('models/synth-llava');
const rows = fs.readFileSync('datasets/synth-vqa/questions.jsonl', 'utf8').trim().split('\n').map((l) => JSON.parse(l)).slice(Number(from), Number(to));
const hits = cfgs.map(() => [] as number[]);
const ms = cfgs.map(() => 0);
const imgs = new Map<string, any>();
const t0 = Date.now();
for (const r of rows) {
  let img = imgs.get(r.image);
  if (!img) { img = await e.prepareImage('datasets/synth-vqa/' + r.image); imgs.clear(); imgs.set(r.image, img); }
  for (let m = 0; m < cfgs.length; m++) {
    const res = await e.generate({ image: img, prompt: r.question }, { maxNewTokens: 8, acceleration: { prefill: cfgs[m]!.prefill } });
    hits[m]!.push(res.text.trim() === r.answer ? 1 : 0);
    ms[m] += res.stats.prefillMs;
  }
}
const n = rows.length;
cfgs.forEach((c, i) => console.log(c.name.padEnd(28), (hits[i]!.reduce((a, b) => a + b, 0) / n).toFixed(3), `${(ms[i]! / n).toFixed(1)}ms`));
console.error(`${n} questions x ${cfgs.length} configs in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
if (outPath) fs.writeFileSync(outPath, JSON.stringify({ set, from: Number(from), to: Number(to), results: cfgs.map((c, i) => ({ name: c.name, prefill: c.prefill, hits: hits[i] })) }));
