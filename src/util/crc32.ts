// CRC-32 (IEEE, zlib's) of byte arrays: zlib.crc32 where Node has it (>= 20.15 / 22.2, ~3 GB/s),
// else a table-driven JS loop. Used as the quantized-weight cache's corruption check: it must catch
// flipped bytes and truncation, not an attacker, and SHA-1 over 0.5 GB cost ~1.5 s of every load.
import zlib from 'node:zlib';

const native = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

let table: Uint32Array | undefined;
function jsCrc32(data: Uint8Array, crc: number): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC-32 of the concatenation of `parts`. */
export function crc32(...parts: Uint8Array[]): number {
  let c = 0;
  for (const p of parts) c = native ? native(p, c) : jsCrc32(p, c);
  return c >>> 0;
}

/** The JS fallback, exported so a test can check it against zlib's. */
export const crc32Js = (data: Uint8Array, crc = 0): number => jsCrc32(data, crc);
