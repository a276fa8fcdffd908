// Seeded, bounded fuzz of structural corruptions of the three tiny checkpoints (LLaVA, InternVL,
// Qwen2-VL): every case ends in the unchanged answer or a non-internal LightVLMError, never a crash,
// a hang (60 s guard per case), a raw error, or a changed answer without an error. Structural cases
// (byte ranges, dtypes, shapes, missing tensors, config sizes that the weights contradict) must be
// refused; NaN/Inf may leave the answer unchanged only when written into a tensor it never reads.
// Left out on purpose: a finite value changed, two equal-size tensors swapped, a square matrix's dims
// swapped, a head count changed to another divisor: the file stays valid, only the numbers differ.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { mulberry32 } from '../../src/util/topk.js';
import { loadGolden, MODELS } from '../helpers.js';
import { answer, copyModel, editConfig, outcome, readSt, relayout, writeSt, type St } from './corruptHelpers.js';

type V = number | string | boolean | null | number[];
/** Per family: how many cases, and vision / top-level config values the weights contradict. */
const FAMILIES: Record<string, { cases: number; vision: Record<string, V[]>; top: Record<string, V[]> }> = {
  'tiny-llava': {
    cases: 40,
    vision: { hidden_size: [64, 0, 'x'], intermediate_size: [96, 193], patch_size: [7, 28], image_size: [84, 28], num_hidden_layers: [1, 3], layer_norm_eps: [-1, 0] },
    top: { vision_feature_layer: [5, -9], multimodal_projector_bias: [false] },
  },
  'tiny-internvl': {
    cases: 20,
    vision: { hidden_size: [64, null], intermediate_size: [96], num_hidden_layers: [1, 3], patch_size: [[7, 7]], image_size: [[84, 84]], attention_bias: [true], use_qk_norm: [true], layer_norm_eps: [-1] },
    top: { downsample_ratio: [0.25, 0.3] },
  },
  'tiny-qwen2_vl': {
    cases: 20,
    vision: { embed_dim: [64, 48, null], depth: [1, 3], mlp_ratio: [3], spatial_merge_size: [1, 4], temporal_patch_size: [1], patch_size: [7], hidden_size: [32], in_channels: [1], num_heads: [5] },
    top: {},
  },
};

/** Another shape with the same element count (the header stays valid; only the loader's tables can tell). */
function reshapes(shape: number[]): number[][] {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = [[...shape].reverse(), [n], [1, ...shape], ...(n % 2 === 0 && n > 2 ? [[2, n / 2]] : [])];
  return out.filter((s) => s.length !== shape.length || s.some((d, i) => d !== shape[i]));
}

for (const [model, fam] of Object.entries(FAMILIES)) {
  test(`fuzz: ${fam.cases} seeded corruptions of ${model} end in the same answer or a LightVLMError`, async () => {
    const src = MODELS[model]!.dir;
    const g = loadGolden(model);
    const run = (dir: string) => () => answer(dir, g.image, g.question);
    const want = await run(src)();
    const rng = mulberry32(20261201 + model.length);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
    const base = readSt(path.join(src, 'model.safetensors'));
    const names = Object.keys(base.header).filter((n) => n !== '__metadata__');
    const cfg0 = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8'));
    const textKey = cfg0.text_config ? 'text_config' : undefined;
    const seen = new Map<string, number>();
    const kinds = ['truncate', 'offset', 'length', 'dtype', 'shape', 'reshape', 'drop', 'remove', 'header', 'config', 'vconfig', 'nan', 'inf'] as const;
    for (let i = 0; i < fam.cases; i++) {
      const dir = copyModel(src);
      const file = path.join(dir, 'model.safetensors');
      let st: St = { header: structuredClone(base.header), data: Buffer.from(base.data) };
      const name = pick(names);
      const e = st.header[name]!;
      const kind = pick(kinds);
      let what = `${kind} ${name}`;
      switch (kind) {
        case 'truncate':
          writeSt(file, st);
          fs.truncateSync(file, Math.floor(8 + rng() * (fs.statSync(file).size - 9)));
          break;
        case 'offset': {
          const d = pick([-4, 4, -2, 1, 8]);
          e.data_offsets = [e.data_offsets[0] + d, e.data_offsets[1] + d];
          what += ` shifted ${d}`;
          writeSt(file, st);
          break;
        }
        case 'length':
          e.data_offsets = [e.data_offsets[0], e.data_offsets[1] + pick([-4, 4, 1])];
          writeSt(file, st);
          break;
        case 'dtype':
          e.dtype = pick(['F16', 'BF16', 'I64', 'F64', 'U8', 'Q4', '']);
          what += ` → ${e.dtype}`;
          writeSt(file, st);
          break;
        case 'shape':
          e.shape = pick([[...e.shape, 2], e.shape.slice(1), e.shape.map((x, j) => (j === 0 ? x + 1 : x))]);
          writeSt(file, st);
          break;
        case 'reshape':
          e.shape = pick(reshapes(e.shape));
          what += ` → [${e.shape.join(', ')}]`;
          writeSt(file, st);
          break;
        case 'drop': // header entry gone, bytes left behind: a gap in the data area
          delete st.header[name];
          writeSt(file, st);
          break;
        case 'remove': // tensor gone and the file laid out again: a valid file without it
          delete st.header[name];
          st = relayout(st);
          writeSt(file, st);
          break;
        case 'header':
          writeSt(file, { header: pick([[], null, 'x', { [name]: 5 }, { [name]: { ...e, data_offsets: [e.data_offsets[1], e.data_offsets[0]] } }]), data: st.data });
          break;
        case 'config': {
          const key = pick(['num_hidden_layers', 'hidden_size', 'intermediate_size', 'vocab_size', 'rms_norm_eps']);
          const tc = textKey ? cfg0[textKey] : cfg0;
          const v = key === 'rms_norm_eps' ? pick([-1e-5, 0, 'x']) : pick([tc[key] + 1, tc[key] - 1, 0, -3, 'x', null]);
          what = `config text_config.${key} = ${v}`;
          editConfig(dir, (c) => void ((textKey ? c[textKey] : c)[key] = v));
          break;
        }
        case 'vconfig': {
          const top = Object.keys(fam.top).length > 0 && rng() < 0.25;
          const table = top ? fam.top : fam.vision;
          const key = pick(Object.keys(table));
          const v = pick(table[key]!);
          what = `config ${top ? '' : 'vision_config.'}${key} = ${JSON.stringify(v)}`;
          editConfig(dir, (c) => void ((top ? c : c.vision_config)[key] = v));
          break;
        }
        case 'nan':
        case 'inf': {
          const n = (e.data_offsets[1] - e.data_offsets[0]) / 4;
          const at = Math.floor(rng() * n);
          st.data.writeFloatLE(kind === 'nan' ? NaN : pick([Infinity, -Infinity]), e.data_offsets[0] + 4 * at);
          what += `[${at}]`;
          writeSt(file, st);
          break;
        }
      }
      const r = await outcome(run(dir), want, `${model}: ${what}`);
      if (kind !== 'nan' && kind !== 'inf') assert.notEqual(r, 'unchanged', `${model}: ${what}: not detected`);
      seen.set(r, (seen.get(r) ?? 0) + 1);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.ok(seen.size >= 2, `outcomes: ${[...seen].join(', ')}`);
  });
}
