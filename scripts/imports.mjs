#!/usr/bin/env node
// `npm run deps`: checks src/'s imports against .dependency-cruiser.cjs (no circle, no back arrow)
// and redraws the folder-level import diagram in docs/architecture.md (between the imports markers)
// from dependency-cruiser's analysis. --check: only check (exit 1 on a violation).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const LAYERS = require('./layers.cjs');
const bin = path.join(root, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
const out = execFileSync(process.execPath, [bin, 'src', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'], { cwd: root, maxBuffer: 1 << 28 });
const result = JSON.parse(out.toString());

const violations = result.summary.violations ?? [];
for (const v of violations) console.error(`${v.rule.name}: ${v.from} → ${v.to}${v.cycle ? ` (cycle: ${v.cycle.map((c) => c.name ?? c).join(' → ')})` : ''}`);
if (violations.length) {
  console.error(`${violations.length} import rule violation(s); see .dependency-cruiser.cjs and docs/architecture.md.`);
  process.exit(1);
}
console.log(`imports ok: ${result.summary.totalCruised} modules, no circle, no back arrow`);
if (process.argv.includes('--check')) process.exit(0);

// Folder-level graph. Edges into errors.ts and util/ are left out: every layer may use them.
const folder = (p) => { const parts = p.split('/'); return parts.length > 2 ? parts[1] : parts[1].replace(/\.ts$/, ''); };
const edges = new Set();
for (const m of result.modules) {
  if (!m.source.startsWith('src/')) continue;
  for (const d of m.dependencies) {
    if (!d.resolved.startsWith('src/')) continue;
    const [a, b] = [folder(m.source), folder(d.resolved)];
    if (a !== b && b !== 'errors' && b !== 'util') edges.add(`${a} --> ${b}`);
  }
}
const lines = ['```mermaid', 'flowchart TD'];
lines.push('  index["index.ts (public API)"]');
LAYERS.forEach((layer, i) => {
  lines.push(`  subgraph L${i}[" "]`, '    direction LR');
  for (const f of layer) lines.push(`    ${f}["${f}/"]`);
  lines.push('  end');
});
for (const e of [...edges].sort()) lines.push(`  ${e}`);
lines.push('```');
const doc = path.join(root, 'docs/architecture.md');
const text = fs.readFileSync(doc, 'utf8');
const [begin, end] = ['<!-- imports:begin (npm run deps) -->', '<!-- imports:end -->'];
const i = text.indexOf(begin);
const j = text.indexOf(end);
if (i < 0 || j < i) throw new Error(`docs/architecture.md lacks the markers ${begin} … ${end}`);
fs.writeFileSync(doc, text.slice(0, i + begin.length) + '\n' + lines.join('\n') + '\n' + text.slice(j));
console.log(`wrote the import diagram (${edges.size} folder arrows) into docs/architecture.md`);
