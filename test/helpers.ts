// Shared test helpers: fixture paths, golden loading, error metrics.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { readSafetensorsFile, type Tensor } from '../src/checkpoint/safetensors.js';

/** Repository root, whether tests run from test/ (tsx) or dist/test/ (compiled). */
export const ROOT = (() => {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'package.json'))) d = path.dirname(d);
  return d;
})();

export const MODELS: Record<string, { dir: string; golden: string }> = {
  'tiny-llava': { dir: path.join(ROOT, 'fixtures/tiny-llava'), golden: path.join(ROOT, 'fixtures/tiny-llava/golden') },
  'tiny-internvl': { dir: path.join(ROOT, 'fixtures/tiny-internvl'), golden: path.join(ROOT, 'fixtures/tiny-internvl/golden') },
  'tiny-qwen2_vl': { dir: path.join(ROOT, 'fixtures/tiny-qwen2_vl'), golden: path.join(ROOT, 'fixtures/tiny-qwen2_vl/golden') },
  'synth-llava': { dir: path.join(ROOT, 'models/synth-llava'), golden: path.join(ROOT, 'fixtures/synth-llava-golden') },
};

export interface Golden {
  meta: { prompt: string; messages: { content: { type: string; text?: string }[] }[] };
  inputs: Map<string, Tensor>;
  outputs: Map<string, Tensor>;
  question: string;
  image: string;
}

export function loadGolden(name: string): Golden {
  const g = MODELS[name]!.golden;
  const meta = JSON.parse(fs.readFileSync(path.join(g, 'meta.json'), 'utf8'));
  const question = meta.messages[0].content.find((c: { type: string }) => c.type === 'text').text;
  return {
    meta,
    inputs: readSafetensorsFile(path.join(g, 'inputs.safetensors')),
    outputs: readSafetensorsFile(path.join(g, 'outputs.safetensors')),
    question,
    image: path.join(g, 'image.png'),
  };
}

export const ints = (t: Tensor): number[] => Array.from(t.data as BigInt64Array, Number);

/** Relative L2 error ||a − b|| / ||b||. */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

/** Captured stdout/stderr for commands that take an `io`. */
export function capture() {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d) => (o += d));
  err.on('data', (d) => (e += d));
  const reset = () => {
    o = '';
    e = '';
  };
  return { io: { stdout: out, stderr: err, isTTY: false }, text: () => ({ out: o, err: e }), reset };
}
