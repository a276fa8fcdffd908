// Per-layer KV cache in JS-owned, token-major buffers [rows, Hkv·dh]: appending writes rows at the
// end, every compression policy is a row gather, and the first `length` rows are fed to ORT as a
// zero-copy view. Capacity grows by doubling, so the per-token cost does not grow with the answer.
export class LayerCache {
  k: Float32Array;
  v: Float32Array;
  length = 0;
  /** Original token index of each row: prompt index (< T) or T + t for the t-th fed decode token. */
  orig: Int32Array;
  /** Accumulated attention each row has received (H2O, component B), when a policy tracks it. */
  acc: Float32Array;

  constructor(readonly rowSize: number, capacity = 64) {
    this.k = new Float32Array(capacity * rowSize);
    this.v = new Float32Array(capacity * rowSize);
    this.orig = new Int32Array(capacity);
    this.acc = new Float32Array(capacity);
  }

  get capacity(): number {
    return this.orig.length;
  }

  get bytes(): number {
    return 2 * this.length * this.rowSize * 4;
  }

  private grow(min: number): void {
    let cap = this.capacity;
    while (cap < min) cap *= 2;
    const k = new Float32Array(cap * this.rowSize);
    k.set(this.k.subarray(0, this.length * this.rowSize));
    const v = new Float32Array(cap * this.rowSize);
    v.set(this.v.subarray(0, this.length * this.rowSize));
    const o = new Int32Array(cap);
    o.set(this.orig.subarray(0, this.length));
    const a = new Float32Array(cap);
    a.set(this.acc.subarray(0, this.length));
    this.k = k;
    this.v = v;
    this.orig = o;
    this.acc = a;
  }

  /** Appends n rows of new keys/values ([n, rowSize] each) with their original indices. */
  append(k: Float32Array, v: Float32Array, orig: ArrayLike<number>): void {
    const n = orig.length;
    if (this.length + n > this.capacity) this.grow(this.length + n);
    this.k.set(k, this.length * this.rowSize);
    this.v.set(v, this.length * this.rowSize);
    for (let i = 0; i < n; i++) {
      this.orig[this.length + i] = orig[i]!;
      this.acc[this.length + i] = 0;
    }
    this.length += n;
  }

  /** Adds a per-row score (e.g. this step's head-mean attention, [length]) to `acc`. */
  accumulate(score: Float32Array): void {
    for (let i = 0; i < this.length; i++) this.acc[i]! += score[i]!;
  }

  /** Keeps only `rows` (ascending, unique): an in-place forward compaction. */
  gather(rows: ArrayLike<number>): void {
    const r = this.rowSize;
    for (let j = 0; j < rows.length; j++) {
      const i = rows[j]!;
      if (i === j) continue;
      this.k.copyWithin(j * r, i * r, (i + 1) * r);
      this.v.copyWithin(j * r, i * r, (i + 1) * r);
      this.orig[j] = this.orig[i]!;
      this.acc[j] = this.acc[i]!;
    }
    this.length = rows.length;
  }

  keyView(): Float32Array {
    return this.k.subarray(0, this.length * this.rowSize);
  }

  valueView(): Float32Array {
    return this.v.subarray(0, this.length * this.rowSize);
  }
}
