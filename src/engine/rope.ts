// RoPE tables per row from explicit position ids, computed the way transformers does in fp32:
// inv_freq = 1 / θ^(2i/dh) in fp32, angle = fp32(inv_freq · pos), cos/sin rounded to fp32.
// M-RoPE (Qwen2-VL): frequency i takes its position from row t, h or w by `mrope_section`.

/** Returns cos, sin: [S, dh] (full width, cat(freqs, freqs)). `pos[r][s]` is row r's position of token s. */
export function ropeTables(pos: Int32Array[], dh: number, theta: number, mropeSection?: number[]): { cos: Float32Array; sin: Float32Array } {
  const half = dh / 2;
  const S = pos[0]!.length;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = 1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / dh)));
  const rowOf = new Int32Array(half); // which position row frequency i reads
  if (mropeSection) {
    let i = 0;
    mropeSection.forEach((n, r) => {
      for (let k = 0; k < n && i < half; k++) rowOf[i++] = r;
    });
  }
  const cos = new Float32Array(S * dh);
  const sin = new Float32Array(S * dh);
  for (let s = 0; s < S; s++) {
    for (let i = 0; i < half; i++) {
      const a = Math.fround(invFreq[i]! * pos[mropeSection ? rowOf[i]! : 0]![s]!);
      const c = Math.cos(a);
      const sn = Math.sin(a);
      cos[s * dh + i] = c;
      cos[s * dh + half + i] = c;
      sin[s * dh + i] = sn;
      sin[s * dh + half + i] = sn;
    }
  }
  return { cos, sin };
}
