// Options shared by run, eval and bench: model folder, threads, number parsing.
import { LightVLMError } from '../errors.js';
import { demoModelPath, PACKAGE_ROOT } from '../paths.js';

export { PACKAGE_ROOT };
export const DEMO_MODEL = demoModelPath;

export function num(raw: string | undefined, flag: string, opts: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  const bad = raw.trim() === '' || !Number.isFinite(v) || (opts.int && !Number.isInteger(v)) || (opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max);
  if (bad) {
    const range = [opts.min !== undefined ? `>= ${opts.min}` : '', opts.max !== undefined ? `<= ${opts.max}` : ''].filter(Boolean).join(' and ');
    throw new LightVLMError(`${flag} must be ${opts.int ? 'a whole number' : 'a number'}${range ? ' ' + range : ''}; got '${raw}'.`, 'E_OPTION');
  }
  return v;
}
