// Summarises sweep files written by rules.ts / prelm.ts: accuracy with its Wilson interval,
// retention against 'none', and paired comparisons (wins/losses, exact McNemar p) for pairs of
// configs given as "a|b" (names as printed). Files with the same half are concatenated by question.
// Usage: node --import tsx bench/sweeps/compare.ts file.json[,file2.json] ["cfg a|cfg b" ...]
import fs from 'node:fs';
import { mcnemarExact, wilson } from '../../src/eval/stats.js';

const [files = '', ...pairs] = process.argv.slice(2);
const hits = new Map<string, number[]>();
for (const f of files.split(',')) {
  const d = JSON.parse(fs.readFileSync(f, 'utf8'));
  const n = d.ids.length;
  for (const r of d.results) hits.set(r.name, [...(hits.get(r.name) ?? []), ...r.hits.slice(0, n)]);
}
const none = hits.get('none');
const pct = (x: number) => (100 * x).toFixed(1);
for (const [name, h] of hits) {
  const k = h.reduce((a, b) => a + b, 0), n = h.length, ci = wilson(k, n);
  const ret = none ? ` ret ${pct(k / none.slice(0, n).reduce((a, b) => a + b, 0))}%` : '';
  console.log(`${name.padEnd(28)} n=${n} ${pct(k / n)}% [${pct(ci.lo)}, ${pct(ci.hi)}]${ret}`);
}
for (const p of pairs) {
  const [a, b] = p.split('|');
  const ha = hits.get(a!), hb = hits.get(b!);
  if (!ha || !hb) { console.log(`? ${p}`); continue; }
  let w = 0, l = 0;
  for (let i = 0; i < Math.min(ha.length, hb.length); i++) { if (ha[i]! && !hb[i]!) w++; if (!ha[i]! && hb[i]!) l++; }
  console.log(`${a} vs ${b}: +${w}/−${l} p=${mcnemarExact(w, l).toPrecision(2)}`);
}
