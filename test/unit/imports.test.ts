// The import rules of src/ (.dependency-cruiser.cjs, layers in scripts/layers.cjs): no import
// circle (type-only imports included) and no arrow from a lower layer back up to a higher one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../helpers.js';

test('src/ has no import circle and no back arrow (dependency-cruiser)', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/imports.mjs'), '--check'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /no circle, no back arrow/);
});
