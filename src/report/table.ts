// Text tables for stdout: aligned columns for reading in a terminal, or a markdown table for
// pasting into the README (style.md §12: benchmarks print tables).

export type Cell = string | number | null | undefined;
export type Align = 'left' | 'right';

export interface TableOptions {
  format?: 'text' | 'markdown';
  align?: Align[];   // per column; default: right for columns whose cells are all numbers, else left
  digits?: number;   // for number cells (default 3 significant decimals: 0.123, 12.3)
}

export function formatCell(c: Cell, digits?: number): string {
  if (c === null || c === undefined || (typeof c === 'number' && !Number.isFinite(c))) return '-';
  if (typeof c === 'string') return c;
  if (Number.isInteger(c)) return String(c);
  if (digits !== undefined) return c.toFixed(digits);
  return Math.abs(c) >= 100 ? c.toFixed(0) : Math.abs(c) >= 10 ? c.toFixed(1) : c.toFixed(3);
}

const width = (s: string): number => [...s].length; // code points: "–" and "×" count as one column

const pad = (s: string, w: number, a: Align): string => (a === 'right' ? ' '.repeat(w - width(s)) + s : s + ' '.repeat(w - width(s)));

export function renderTable(headers: readonly string[], rows: readonly (readonly Cell[])[], opts: TableOptions = {}): string {
  const cells = rows.map((r) => headers.map((_, i) => formatCell(r[i], opts.digits)));
  const align: Align[] = headers.map((_, i) => opts.align?.[i] ?? (rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || r[i] === null || r[i] === undefined) ? 'right' : 'left'));
  if (opts.format === 'markdown') {
    const esc = (s: string): string => s.replace(/\|/g, '\\|');
    const line = (xs: readonly string[]): string => `| ${xs.map(esc).join(' | ')} |`;
    const rule = `|${align.map((a) => (a === 'right' ? '---:' : ':---')).join('|')}|`;
    return [line(headers), rule, ...cells.map(line)].join('\n') + '\n';
  }
  const widths = headers.map((h, i) => Math.max(width(h), ...cells.map((r) => width(r[i]!))));
  const line = (xs: readonly string[]): string => xs.map((x, i) => pad(x, widths[i]!, align[i]!)).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n') + '\n';
}
