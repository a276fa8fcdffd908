// `run --explain out.png`: the image once per merge stage, with the image tokens that stage kept
// left bright and the merged-away ones darkened. The first panel is the input (every token); with
// vitMerge, one panel per vision merge layer comes next.
// The drawn grid is the last image part: the whole image for LLaVA / Qwen2-VL, the thumbnail
// (whole image) for tiled InternVL prompts.
import sharp from 'sharp';
import type { GenerateResult } from '../engine/types.js';

const PANEL = 320;

/** File endings --explain can write, and the encoder each one gets (the bytes match the name). */
export const EXPLAIN_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp'] as const;
const formatOf = (out: string): 'png' | 'jpeg' | 'webp' => {
  const e = out.toLowerCase();
  return e.endsWith('.jpg') || e.endsWith('.jpeg') ? 'jpeg' : e.endsWith('.webp') ? 'webp' : 'png';
};

export async function drawExplanation(imagePath: string, result: GenerateResult, out: string): Promise<void> {
  const grid = result.grids[result.grids.length - 1]!;
  const offset = result.grids.slice(0, -1).reduce((a, g) => a + g.h * g.w, 0);
  const n = grid.h * grid.w;
  const total = offset + n;
  const panelW = PANEL;
  const panelH = Math.round((PANEL * grid.h) / grid.w);
  const base = await sharp(imagePath).removeAlpha().resize(panelW, panelH, { fit: 'fill' }).png().toBuffer();
  // vitMerge panels first: a token darkens by the fraction of its patches merged away in the tower.
  // With `reduce`, the LM's image-token indices count only the tokens the tower kept (lmKeep).
  const v = result.vision;
  const lmKeep = v?.lmKeep;
  const toOrig = (i: number) => (lmKeep ? lmKeep[i]! : i);
  type Stage = { label: string; kept: Set<number> | null; shade?: Float32Array };
  const stages: Stage[] = [{ label: `input: ${total} tokens`, kept: null }];
  v?.layers.forEach((layer, j) => stages.push({ label: `vision ${layer}: ${v.tokensPerLayer[layer + 1] ?? ''} rows (${v.mode})`, kept: null, shade: v.mergedAway[j]! }));
  for (const k of result.kept) stages.push({ label: `layer ${k.layer}: ${k.imageIndices.length} kept`, kept: new Set(k.imageIndices.map(toOrig)) });
  if (lmKeep && result.kept.length === 0) stages.push({ label: `to the LM: ${lmKeep.length} tokens`, kept: new Set(lmKeep) });
  const cw = panelW / grid.w;
  const ch = panelH / grid.h;
  const labelH = 22;
  const panels = await Promise.all(
    stages.map(async (s) => {
      const rects: string[] = [];
      for (let i = 0; i < n; i++) {
        const opacity = s.shade ? 0.72 * s.shade[offset + i]! : s.kept && !s.kept.has(offset + i) ? 0.72 : 0;
        if (opacity === 0) continue;
        const x = (i % grid.w) * cw;
        const y = Math.floor(i / grid.w) * ch;
        rects.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${cw.toFixed(1)}" height="${ch.toFixed(1)}" fill="black" fill-opacity="${opacity.toFixed(2)}"/>`);
      }
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${panelW}" height="${panelH}">${rects.join('')}</svg>`;
      return sharp(base).composite([{ input: Buffer.from(svg) }]).png().toBuffer();
    }),
  );
  const width = stages.length * (panelW + 8) + 8;
  const height = panelH + labelH + 16;
  const labels = stages
    .map((s, i) => `<text x="${8 + i * (panelW + 8)}" y="${panelH + 8 + 16}" font-family="sans-serif" font-size="14">${s.label}</text>`)
    .join('');
  await sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite([
      ...panels.map((p, i) => ({ input: p, left: 8 + i * (panelW + 8), top: 8 })),
      { input: Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${labels}</svg>`), left: 0, top: 0 },
    ])
    .toFormat(formatOf(out))
    .toFile(out);
}
