// The one place that mutates the prompt sequence during prefill: merge policies only return a
// decision (rows to keep, carrier rows to overwrite); PromptState.apply carries it out. (KV caches
// change only through LayerCache.append / gather, driven by the KV controllers.)
import type { MergeDecision, Span } from '../merge/types.js';

export class PromptState {
  constructor(
    public hidden: Float32Array, // [T_cur, D]
    public orig: Int32Array,     // [T_cur] original prompt index of each row
    public pos: Int32Array[],    // position-id rows (1, or 3 for M-RoPE), each [T_cur]
    public spans: Span[],
    readonly isImage: Uint8Array, // [T_orig] 1 where the ORIGINAL token is an image token
    readonly dim: number,
  ) {}

  get length(): number {
    return this.orig.length;
  }

  imageRows(): number {
    return this.spans.reduce((a, s) => a + s.length, 0);
  }

  /** Applies a stage decision: carrier rows first (they read pre-merge rows), then the gather. */
  apply(d: MergeDecision): void {
    const D = this.dim;
    for (const u of d.updates) this.hidden.set(u.row, u.index * D);
    const n = d.rows.length;
    const hidden = new Float32Array(n * D);
    const orig = new Int32Array(n);
    const pos = this.pos.map(() => new Int32Array(n));
    for (let j = 0; j < n; j++) {
      const i = d.rows[j]!;
      hidden.set(this.hidden.subarray(i * D, (i + 1) * D), j * D);
      orig[j] = this.orig[i]!;
      this.pos.forEach((row, r) => (pos[r]![j] = row[i]!));
    }
    // Spans stay contiguous because text rows are never removed: recount each span's survivors.
    const kept = new Uint8Array(this.length);
    for (const i of d.rows) kept[i] = 1;
    let shift = 0;
    let cursor = 0;
    const spans: Span[] = [];
    for (const s of this.spans) {
      for (; cursor < s.start; cursor++) if (!kept[cursor]) shift++;
      let len = 0;
      for (let i = s.start; i < s.start + s.length; i++) if (kept[i]) len++;
      spans.push({ start: s.start - shift, length: len, origLength: s.origLength });
      shift += s.length - len;
      cursor = s.start + s.length;
    }
    this.hidden = hidden;
    this.orig = orig;
    this.pos = pos;
    this.spans = spans;
  }
}
