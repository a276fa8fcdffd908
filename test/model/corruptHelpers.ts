// Helpers for tests that corrupt a copy of a tiny checkpoint: copy, read/write the safetensors
// header and data, re-lay the data after dropping/reshaping tensors (so the file stays a valid
// safetensors file and only the loader's checks can catch it), and run one answer with a hang guard.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Engine } from '../../src/engine/vlm.js';
import { LightVLMError } from '../../src/errors.js';

/** A copy of the model folder (files only) whose weights / config.json the caller rewrites. */
export function copyModel(src: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lightvlm-fuzz-'));
  for (const f of fs.readdirSync(src)) if (fs.statSync(path.join(src, f)).isFile()) fs.copyFileSync(path.join(src, f), path.join(dir, f));
  return dir;
}

export type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
export interface St { header: Header; data: Buffer }

export function readSt(file: string): St {
  const b = fs.readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  return { header: JSON.parse(b.subarray(8, 8 + n).toString('utf8')), data: b.subarray(8 + n) };
}

export function writeSt(file: string, st: { header: unknown; data: Buffer }): void {
  const h = Buffer.from(JSON.stringify(st.header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, st.data]));
}

/** A valid file again after tensors were dropped from `st.header`: the kept tensors' bytes laid out back to back. */
export function relayout(st: St): St {
  const parts: Buffer[] = [];
  const header: Header = {};
  let at = 0;
  for (const [name, e] of Object.entries(st.header)) {
    if (name === '__metadata__') continue;
    const bytes = st.data.subarray(e.data_offsets[0], e.data_offsets[1]);
    header[name] = { ...e, data_offsets: [at, at + bytes.length] };
    parts.push(bytes);
    at += bytes.length;
  }
  return { header, data: Buffer.concat(parts) };
}

/** Rewrites `dir`'s config.json through `edit`. */
export function editConfig(dir: string, edit: (cfg: Record<string, any>) => void): void { // eslint-disable-line @typescript-eslint/no-explicit-any
  const file = path.join(dir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(cfg);
  fs.writeFileSync(file, JSON.stringify(cfg));
}

export async function answer(dir: string, image: string, prompt: string, maxNewTokens = 3): Promise<number[]> {
  const e = await Engine.load(dir);
  try {
    return (await e.generate({ image, prompt }, { maxNewTokens })).tokenIds;
  } finally {
    await e.dispose();
  }
}

/** Unchanged answer or a non-internal LightVLMError; returns 'unchanged' or the code. Fails on anything else or after 60 s. */
export async function outcome(run: () => Promise<number[]>, want: number[], what: string): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: no result after 60 s`)), 60_000)));
  try {
    const ids = await Promise.race([run(), hang]);
    assert.deepEqual(ids, want, `${what}: the answer changed without an error`);
    return 'unchanged';
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    assert.ok(e instanceof LightVLMError, `${what}: raw error ${(e as Error)?.stack ?? e}`);
    assert.notEqual(e.code, 'E_INTERNAL', `${what}: reported as internal: ${e.message}`);
    return e.code;
  } finally {
    clearTimeout(timer);
  }
}
