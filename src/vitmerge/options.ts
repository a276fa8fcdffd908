// vitMerge options: the measured default, validation of library input, the CLI spec
// `--vit-merge MODE[:LAYER[:KEEP[:LAYERS]]]` and its label. Evidence for the default: docs/vit-merge.md.
import { LightVLMError } from '../errors.js';
import { VIT_MERGE_MODES, type VitMergeMode, type VitMergeOptions } from './policy.js';

/**
 * The default when only a mode (or nothing) is given; see docs/vit-merge.md for the measurements.
 * The first merge layer is left to the tower (`defaultMergeLayer`: round(depth / 6)).
 */
export const DEFAULT_VIT_MERGE: Readonly<Omit<Required<VitMergeOptions>, 'layer'>> = { mode: 'unmerge', keep: 0.4, layers: 2 };

/** Fills defaults and checks ranges; errors name the field and the valid values. */
export function resolveVitMerge(o: Partial<VitMergeOptions>, where = 'vitMerge'): VitMergeOptions & { layers: number } {
  const mode = o.mode ?? DEFAULT_VIT_MERGE.mode;
  if (!(VIT_MERGE_MODES as readonly string[]).includes(mode)) {
    throw new LightVLMError(`${where}: mode '${mode}' is not one of ${VIT_MERGE_MODES.join(', ')}.`, 'E_OPTION');
  }
  const layer = o.layer;
  const keep = o.keep ?? DEFAULT_VIT_MERGE.keep;
  const layers = o.layers ?? DEFAULT_VIT_MERGE.layers;
  if (layer !== undefined && (!Number.isInteger(layer) || layer < 0)) throw new LightVLMError(`${where}: layer must be a vision block index >= 0, got ${layer}.`, 'E_OPTION');
  if (!(keep > 0 && keep <= 1)) throw new LightVLMError(`${where}: keep must be a fraction in (0, 1], got ${keep}.`, 'E_OPTION');
  if (!Number.isInteger(layers) || layers < 1) throw new LightVLMError(`${where}: layers must be a whole number >= 1, got ${layers}.`, 'E_OPTION');
  return { mode, ...(layer !== undefined ? { layer } : {}), keep, layers };
}

/** `unmerge:2:0.5:2` → options (LAYER '' or 'auto': the tower's default); `off` / `none` → undefined. Missing fields take the default. */
export function parseVitMergeSpec(spec: string): (VitMergeOptions & { layers: number }) | undefined {
  const s = spec.trim().toLowerCase();
  if (s === 'off' || s === 'none') return undefined;
  const parts = s.split(':');
  const where = `--vit-merge ${spec}`;
  if (parts.length > 4) throw new LightVLMError(`${where}: expected MODE[:LAYER[:KEEP[:LAYERS]]], e.g. unmerge:2:0.5:2, or off.`, 'E_OPTION');
  const num = (raw: string | undefined, what: string) => {
    if (raw === undefined || raw === '') return undefined;
    const v = Number(raw);
    if (!Number.isFinite(v)) throw new LightVLMError(`${where}: ${what} '${raw}' is not a number.`, 'E_OPTION');
    return v;
  };
  const layer = parts[1] === 'auto' ? undefined : num(parts[1], 'LAYER');
  const keep = num(parts[2], 'KEEP');
  const layers = num(parts[3], 'LAYERS');
  return resolveVitMerge(
    { mode: parts[0] as VitMergeMode, ...(layer !== undefined ? { layer } : {}), ...(keep !== undefined ? { keep } : {}), ...(layers !== undefined ? { layers } : {}) },
    where,
  );
}

export const vitMergeLabel = (o: VitMergeOptions | undefined): string =>
  o === undefined ? 'off' : `${o.mode}:${o.layer ?? 'auto'}:${o.keep}:${o.layers ?? 1}`;
