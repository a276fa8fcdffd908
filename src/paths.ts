// Where the package's own files live (bundled demo model, examples), from dist/src or src.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (where models/ and examples/ live), found from this file's location. */
export const PACKAGE_ROOT = (() => {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'package.json')) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
})();

/** Absolute path of the bundled demo model (models/synth-llava): `loadVLM(demoModelPath)`. */
export const demoModelPath = path.join(PACKAGE_ROOT, 'models', 'synth-llava');

/** Absolute path of the bundled example image the README asks about (`examples/shapes.jpg`). */
export const demoImagePath = path.join(PACKAGE_ROOT, 'examples', 'shapes.jpg');
