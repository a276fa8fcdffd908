// A small hand-written SVG line chart (axes, ticks, grid, legend, one <path> per series plus point
// markers). Charting libraries pull in a DOM or a canvas; this needs neither and is easy to diff.

/** A data point; `lo`/`hi` (optional, in y units) draw a vertical error bar, e.g. a 95% interval. */
export interface Point { x: number; y: number; lo?: number; hi?: number }
export interface Series { name: string; points: Point[] }

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  width?: number;
  height?: number;
  xDomain?: [number, number]; // default: data range, padded
  yDomain?: [number, number];
}

// Tableau 10: distinguishable and colour-blind tolerable.
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export const escapeXml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

/** "Nice" tick values (1, 2, 5 × 10^k steps) covering [lo, hi], about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toFixed(10)));
  return ticks;
}

const fmt = (v: number): string => (Math.abs(v) >= 1000 ? v.toFixed(0) : String(Number(v.toPrecision(3))));
const r2 = (v: number): string => String(Math.round(v * 100) / 100);

/** Domain from the data, padded 5% so points are not drawn on the axes; a single value gets ±0.5. */
function domain(values: number[], given?: [number, number]): [number, number] {
  if (given) return given;
  const vs = values.filter(Number.isFinite);
  if (vs.length === 0) return [0, 1];
  let lo = Math.min(...vs);
  let hi = Math.max(...vs);
  if (lo === hi) { lo -= 0.5; hi += 0.5; }
  const padBy = (hi - lo) * 0.05;
  return [lo - padBy, hi + padBy];
}

export function lineChart(o: ChartOptions): string {
  const W = o.width ?? 720;
  const H = o.height ?? 440;
  const legendW = 190;
  const m = { left: 64, right: legendW + 20, top: 40, bottom: 52 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const all = o.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const [x0, x1] = domain(all.map((p) => p.x), o.xDomain);
  const [y0, y1] = domain(all.flatMap((p) => [p.y, p.lo ?? p.y, p.hi ?? p.y]), o.yDomain);
  const sx = (x: number): number => m.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number): number => m.top + ph - ((y - y0) / (y1 - y0)) * ph;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(o.title)}</text>`);

  // Grid and ticks first so the data lines are drawn over them.
  out.push('<g class="axes" stroke="#000" stroke-width="1">');
  out.push(`<line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${m.top + ph}"/>`);
  out.push(`<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}"/>`);
  out.push('</g>');
  out.push('<g class="ticks" fill="#333">');
  for (const t of niceTicks(x0, x1)) {
    const x = r2(sx(t));
    out.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${m.top + ph}" stroke="#eee"/>`);
    out.push(`<line x1="${x}" y1="${m.top + ph}" x2="${x}" y2="${m.top + ph + 5}" stroke="#000"/>`);
    out.push(`<text x="${x}" y="${m.top + ph + 18}" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(y0, y1)) {
    const y = r2(sy(t));
    out.push(`<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="#eee"/>`);
    out.push(`<line x1="${m.left - 5}" y1="${y}" x2="${m.left}" y2="${y}" stroke="#000"/>`);
    out.push(`<text x="${m.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`);
  }
  out.push('</g>');
  out.push(`<text x="${m.left + pw / 2}" y="${H - 12}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`);

  // One path per series (sorted by x so a sweep reads left to right), markers so single points show.
  o.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    const d = pts.map((p, j) => `${j === 0 ? 'M' : 'L'}${r2(sx(p.x))} ${r2(sy(p.y))}`).join(' ');
    out.push(`<g class="series" data-name="${escapeXml(s.name)}">`);
    out.push(`<path d="${d || 'M0 0'}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const p of pts) {
      if (p.lo === undefined || p.hi === undefined || !Number.isFinite(p.lo) || !Number.isFinite(p.hi)) continue;
      const x = sx(p.x), ylo = r2(sy(p.lo)), yhi = r2(sy(p.hi));
      out.push(`<path class="error-bar" d="M${r2(x)} ${ylo} L${r2(x)} ${yhi} M${r2(x - 4)} ${ylo} L${r2(x + 4)} ${ylo} M${r2(x - 4)} ${yhi} L${r2(x + 4)} ${yhi}" stroke="${color}" stroke-width="1.2" fill="none"/>`);
    }
    for (const p of pts) out.push(`<circle cx="${r2(sx(p.x))}" cy="${r2(sy(p.y))}" r="3.5" fill="${color}"/>`);
    out.push('</g>');
  });

  out.push('<g class="legend">');
  o.series.forEach((s, i) => {
    const y = m.top + 10 + i * 20;
    const x = W - legendW;
    out.push(`<line x1="${x}" y1="${y}" x2="${x + 22}" y2="${y}" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"/>`);
    out.push(`<text x="${x + 28}" y="${y}" dominant-baseline="middle">${escapeXml(s.name)}</text>`);
  });
  out.push('</g>');
  out.push('</svg>');
  return out.join('\n') + '\n';
}
