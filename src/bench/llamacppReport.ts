// The llama.cpp comparison's table and target verdicts, from the sections' runs (medians over rounds).
import { renderTable } from '../report/table.js';
import type { Run, SectionResult } from './llamacppSection.js';
import { median } from './stats.js';

const promptRate = (rs: readonly Run[] | undefined): number => (rs?.length ? median(rs.map((r) => (r.promptTokens * 1000) / r.promptMs)) : NaN);
const decodeRate = (rs: readonly Run[] | undefined): number => (rs?.length ? median(rs.map((r) => (r.decodeTokens * 1000) / r.decodeMs)) : NaN);
const tokens = (rs: readonly Run[] | undefined): number => (rs?.length ? rs[0]!.promptTokens : NaN);
const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : '–');
const GGUF_NAME = { fp32: 'f32', q8: 'q8_0', q4: 'q4_0' } as const;

export function llamaTable(results: readonly SectionResult[]): string {
  const first = results[0];
  const longN = tokens(first?.llama.runs.long), shortN = tokens(first?.llama.runs.short);
  const headers = ['engine', 'weights', 'GGUF MiB', 'load s', `prompt tok/s (${longN})`, `prompt tok/s (${shortN})`, 'decode tok/s (empty cache)', `decode tok/s (after ${shortN})`, `decode tok/s (after ${longN})`, 'peak RSS MB'];
  const rows: string[][] = [];
  for (const s of results) {
    const L = s.llama.runs, M = s.lightvlm.runs;
    rows.push([`llama.cpp (${s.llama.buildType === 'localBuild' ? 'native build' : 'prebuilt'})`, GGUF_NAME[s.dtype], f(s.gguf.bytes / 2 ** 20, 0), f(s.llama.loadMs / 1000),
      f(promptRate(L.long)), f(promptRate(L.short)), f(decodeRate(L.empty)), f(decodeRate(L.short)), f(decodeRate(L.long)), f(s.llama.peakRssMb, 0)]);
    rows.push(['lightvlm none', s.dtype, '–', f(s.lightvlm.loadMs / 1000), f(promptRate(M.long)), f(promptRate(M.short)), '–', f(decodeRate(M.short)), f(decodeRate(M.long)), f(s.lightvlm.peakRssMb, 0)]);
    const kv = M['long-lightvlm0.03-kvAB'];
    if (kv) rows.push(['lightvlm:0.03 + KV A+B', s.dtype, '–', '–', `${f(promptRate(kv))} (effective)`, '–', '–', '–', f(decodeRate(kv)), '–']);
  }
  return renderTable(headers, rows, { format: 'markdown', align: headers.map((_, i) => (i < 2 ? 'left' : 'right')) });
}

/** One line per issue-11 target this run can decide: met / missed with the measured bound. */
export function targetLines(results: readonly SectionResult[]): string[] {
  const by = new Map(results.map((s) => [s.dtype, s]));
  const out: string[] = [];
  const verdict = (ok: boolean) => (ok ? 'MET' : 'MISSED');
  const fp32 = by.get('fp32'), q8 = by.get('q8'), q4 = by.get('q4');
  for (const s of results) {
    const v = s.verify;
    if (v) out.push(`${s.dtype} vs llama.cpp ${GGUF_NAME[s.dtype]}, next-token distribution after ${v.tokens} text tokens: argmax ${v.argmaxEqual ? 'equal' : 'DIFFERENT'}, top-5 overlap ${v.top5Overlap}/5, rel L2 of probabilities ${v.probRelL2.toExponential(2)}, max |Δ log p| over lightvlm's top 20 ${v.maxAbsLogProbTop20.toExponential(2)}, KL ${v.klNats.toExponential(2)} nats`);
  }
  if (q4) {
    const rss = q4.lightvlm.peakRssMb;
    out.push(`peak RSS at q4 (load + 2 images + every run) <= 2.5 GB: ${verdict(rss <= 2560)} (${f(rss, 0)} MB)`);
  }
  if (fp32 && q4) {
    for (const k of ['short', 'long'] as const) {
      const r = decodeRate(q4.lightvlm.runs[k]) / decodeRate(fp32.lightvlm.runs[k]);
      out.push(`none q4 decodes >= 3x fp32 after ${tokens(q4.lightvlm.runs[k])} tokens: ${verdict(r >= 3)} (${f(r, 2)}x; sequential sections)`);
    }
  }
  if (q4) {
    for (const k of ['short', 'long'] as const) {
      const ours = decodeRate(q4.lightvlm.runs[k]), theirs = decodeRate(q4.llama.runs[k]);
      out.push(`none q4 decode within 15% of llama.cpp q4_0 after ${tokens(q4.llama.runs[k])} tokens: ${verdict(ours >= 0.85 * theirs)} (${f(ours)} vs ${f(theirs)} tok/s = ${f((100 * ours) / theirs, 0)}%)`);
    }
    const kv = q4.lightvlm.runs['long-lightvlm0.03-kvAB'];
    if (kv) {
      const ours = decodeRate(kv), theirs = decodeRate(q4.llama.runs.long);
      out.push(`lightvlm:0.03 + KV A+B at q4 decodes faster than llama.cpp q4_0 after the same ${tokens(kv)}-token prompt: ${verdict(ours > theirs)} (${f(ours)} vs ${f(theirs)} tok/s = ${f(ours / theirs, 2)}x)`);
    }
  }
  if (q8) {
    for (const k of ['long', 'short'] as const) {
      const ours = promptRate(q8.lightvlm.runs[k]), theirs = promptRate(q8.llama.runs[k]);
      out.push(`LM prompt tok/s at q8 >= llama.cpp q8_0 (${tokens(q8.llama.runs[k])} tokens): ${verdict(ours >= theirs)} (${f(ours)} vs ${f(theirs)})`);
    }
  }
  return out;
}
