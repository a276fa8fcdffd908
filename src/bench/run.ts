// The benchmark loop and its rows. Every combination runs once per round, round after round
// (A B C A B C ...), after a warm-up round, so that drift of the machine hits all methods alike and
// the baseline's run i can be paired with every method's run i for the speedup ratios.
// Each run passes the image itself (not a PreparedImage) so the vision encoder is timed every time,
// unless `shareVision` is set: then one timed vision pass serves every run.
import sharp from 'sharp';
import { BYTES_PER_PARAM } from '../graph/quant.js';
import type { GenerateStats, ModelInfo, VLM } from '../engine/types.js';
import { type Combo, comboLabel, findBaseline, kvLabel, toAcceleration } from '../engine/specs.js';
import type { MachineInfo } from './machine.js';
import { type Summary, median, pairwiseRatioMedian, summarize } from './stats.js';

export const DEFAULT_BENCH_PROMPT = 'Describe this image in detail.';

export interface BenchOptions {
  image: string | Uint8Array;
  prompt: string;
  combos: Combo[];
  newTokens: number[];   // each value is forced exactly (minNewTokens = maxNewTokens)
  repeat: number;        // timed rounds
  warmup?: number;       // untimed rounds first (default 1): graph init, page-in of weights, JIT
  shareVision?: boolean; // encode the image once and share it (large models: the vision pass is timed once)
  warmupTokens?: number; // warm-up rounds generate this many tokens per setting (default: the measured counts)
  signal?: AbortSignal;
  onRun?: (done: number, total: number, label: string, warmup: boolean) => void;
}

export interface BenchSample {
  combo: number;         // index into combos
  newTokens: number;
  rep: number;
  stats: GenerateStats;
}

export async function runBench(vlm: VLM, o: BenchOptions): Promise<{ samples: BenchSample[]; interrupted: boolean }> {
  const warmup = o.warmup ?? 1;
  const total = (warmup * (o.warmupTokens !== undefined ? 1 : o.newTokens.length) + o.repeat * o.newTokens.length) * o.combos.length;
  const samples: BenchSample[] = [];
  let done = 0;
  const image = o.shareVision ? await vlm.prepareImage(o.image) : o.image;
  for (let round = 0; round < warmup + o.repeat; round++) {
    const counts = round < warmup && o.warmupTokens !== undefined ? [o.warmupTokens] : o.newTokens;
    for (const newTokens of counts) {
      for (let c = 0; c < o.combos.length; c++) {
        if (o.signal?.aborted) return { samples, interrupted: true };
        const combo = o.combos[c]!;
        const { stats } = await vlm.generate(
          { image, prompt: o.prompt },
          { maxNewTokens: newTokens, minNewTokens: newTokens, temperature: 0, acceleration: toAcceleration(combo) },
        );
        if (round >= warmup) samples.push({ combo: c, newTokens, rep: round - warmup, stats });
        o.onRun?.(++done, total, `${comboLabel(combo)} n=${newTokens}`, round < warmup);
      }
    }
  }
  return { samples, interrupted: false };
}

export interface BenchRow {
  label: string;
  method: string;
  keep: number | null;
  kv: string | null;
  newTokens: number;
  runs: number;
  imageTokens: number;
  keptImageTokens: number;
  keptPerStage: { fromLayer: number; tokens: number }[]; // image tokens the LM layers from `fromLayer` on saw
  visionMs: number;
  prefillMs: number;
  ttftMs: number;
  decodeTokensPerSecond: number;
  totalMs: number;
  peakRssMb: number;
  speedupPrefill: number | null;   // median over rounds of none.prefillMs / this.prefillMs
  speedupTtft: number | null;
  speedupTotal: number | null;
  prefillGflops: number;           // achieved, see prefillFlop()
  prefillFractionOfPeak: number | null;   // of machine.matmulGflops
  decodeGBps: number;              // achieved weight streaming, see decodeBytesPerToken()
  decodeFractionOfBandwidth: number | null; // of machine.memoryGBps
  ranges: Record<'visionMs' | 'prefillMs' | 'ttftMs' | 'decodeTokensPerSecond' | 'totalMs' | 'peakRssMb', Summary>;
}

/** Groups the per-layer image-token counts into stages: consecutive layers with the same count. */
export function stagesOf(perLayer: readonly number[]): { fromLayer: number; tokens: number }[] {
  const out: { fromLayer: number; tokens: number }[] = [];
  perLayer.forEach((tokens, layer) => {
    if (out.length === 0 || out[out.length - 1]!.tokens !== tokens) out.push({ fromLayer: layer, tokens });
  });
  return out;
}

/**
 * Prefill FLOP, kept simple on purpose: 2 × LM parameters (embeddings excluded) × tokens processed,
 * where tokens processed = image tokens averaged over layers (merging shrinks later layers) + text
 * tokens. Attention's T² term is ignored: at a few thousand tokens it is small next to the weights.
 */
export function prefillFlop(info: Pick<ModelInfo, 'lmParams'>, s: Pick<GenerateStats, 'imageTokensPerLayer' | 'promptTokens' | 'imageTokens'>): number {
  const perLayer = s.imageTokensPerLayer;
  const meanImage = perLayer.length > 0 ? perLayer.reduce((a, b) => a + b, 0) / perLayer.length : s.imageTokens;
  return 2 * info.lmParams * (meanImage + s.promptTokens - s.imageTokens);
}

/** Decode streams every LM weight once per token: 4 bytes per parameter at fp32, 1.16 at q8, 0.64 at q4. */
export const decodeBytesPerToken = (info: Pick<ModelInfo, 'lmParams' | 'dtype'>): number => BYTES_PER_PARAM[info.dtype ?? 'fp32'] * info.lmParams;

const FIELDS = ['visionMs', 'prefillMs', 'ttftMs', 'decodeTokensPerSecond', 'totalMs', 'peakRssMb'] as const;
const orNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** One row per (combination, newTokens), medians over rounds, speedups paired against `none`. */
export function buildBenchRows(combos: readonly Combo[], newTokens: readonly number[], samples: readonly BenchSample[], info: Pick<ModelInfo, 'lmParams' | 'dtype'>, machine?: Pick<MachineInfo, 'matmulGflops' | 'memoryGBps'>): BenchRow[] {
  const base = findBaseline(combos);
  const rows: BenchRow[] = [];
  for (const nt of newTokens) {
    // Indexed by round so the pairs line up even if a round is missing (interrupted run).
    const byRep = (c: number, f: (s: GenerateStats) => number): number[] => {
      const xs: number[] = [];
      for (const s of samples) if (s.combo === c && s.newTokens === nt) xs[s.rep] = f(s.stats);
      return Array.from(xs, (x) => x ?? NaN);
    };
    combos.forEach((combo, c) => {
      const mine = samples.filter((s) => s.combo === c && s.newTokens === nt);
      if (mine.length === 0) return;
      const ranges = Object.fromEntries(FIELDS.map((f) => [f, summarize(mine.map((s) => s.stats[f]))])) as BenchRow['ranges'];
      const speedup = (f: (s: GenerateStats) => number): number | null => (base < 0 ? null : orNull(pairwiseRatioMedian(byRep(base, f), byRep(c, f))));
      const gflops = median(mine.map((s) => prefillFlop(info, s.stats) / (s.stats.prefillMs / 1e3) / 1e9));
      const decodeGBps = (ranges.decodeTokensPerSecond.median * decodeBytesPerToken(info)) / 1e9;
      rows.push({
        label: comboLabel(combo),
        method: combo.prefill.method,
        keep: combo.prefill.keep ?? null,
        kv: combo.kv === undefined ? null : kvLabel(combo.kv),
        newTokens: nt,
        runs: mine.length,
        imageTokens: median(mine.map((s) => s.stats.imageTokens)),
        keptImageTokens: median(mine.map((s) => s.stats.keptImageTokens)),
        keptPerStage: stagesOf(mine[0]!.stats.imageTokensPerLayer),
        visionMs: ranges.visionMs.median,
        prefillMs: ranges.prefillMs.median,
        ttftMs: ranges.ttftMs.median,
        decodeTokensPerSecond: ranges.decodeTokensPerSecond.median,
        totalMs: ranges.totalMs.median,
        peakRssMb: ranges.peakRssMb.median,
        speedupPrefill: speedup((s) => s.prefillMs),
        speedupTtft: speedup((s) => s.ttftMs),
        speedupTotal: speedup((s) => s.totalMs),
        prefillGflops: gflops,
        prefillFractionOfPeak: machine ? orNull(gflops / machine.matmulGflops) : null,
        decodeGBps,
        decodeFractionOfBandwidth: machine ? orNull(decodeGBps / machine.memoryGBps) : null,
        ranges,
      });
    });
  }
  return rows;
}

/**
 * The default bench image when --image is not given: a 448×448 PNG of coloured shapes drawn by sharp,
 * so `lightvlm bench --model DIR` works from any directory without shipping a file.
 */
export async function syntheticImage(): Promise<Uint8Array> {
  const shapes = [
    '<rect width="448" height="448" fill="#f4f1ea"/>',
    '<circle cx="110" cy="110" r="70" fill="#d62728"/>',
    '<rect x="260" y="50" width="140" height="120" fill="#1f77b4"/>',
    '<polygon points="110,260 40,400 180,400" fill="#2ca02c"/>',
    '<ellipse cx="330" cy="330" rx="90" ry="55" fill="#ff7f0e"/>',
  ].join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="448" height="448">${shapes}</svg>`;
  return new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer());
}
