// Options shared by run, eval and bench: model folder, threads, number parsing.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LightVLMError } from '../errors.js';

/** The package root (where models/ and examples/ live), from dist/src/cli or src/cli. */
export const PACKAGE_ROOT = (() => {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'package.json')) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
})();

export const DEMO_MODEL = path.join(PACKAGE_ROOT, 'models', 'synth-llava');

export function num(raw: string | undefined, flag: string, opts: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  const bad = raw.trim() === '' || !Number.isFinite(v) || (opts.int && !Number.isInteger(v)) || (opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max);
  if (bad) {
    const range = [opts.min !== undefined ? `>= ${opts.min}` : '', opts.max !== undefined ? `<= ${opts.max}` : ''].filter(Boolean).join(' and ');
    throw new LightVLMError(`${flag} must be ${opts.int ? 'a whole number' : 'a number'}${range ? ' ' + range : ''}; got '${raw}'.`);
  }
  return v;
}
