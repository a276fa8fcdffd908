// Peak RSS of one answer alone vs C answers decoded together (the scheduler's batched decode), each
// case in a fresh process, plus whether the batched tokens equal the lone ones.
// Usage: node --import tsx bench/sweeps/batch-rss.ts MODEL_DIR DTYPE [--conc C] [--tokens N] [--image FILE]
// (the quantized-weight cache comes from $LIGHTVLM_CACHE_DIR as usual)
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const opt = (f: string, d: string) => (args.includes(f) ? args[args.indexOf(f) + 1]! : d);

if (args[0] === '--child') {
  const [, dir, dtype, conc, tokens, image] = args;
  const { Engine } = await import('../../src/engine/vlm.js');
  const t0 = performance.now();
  const e = await Engine.load(dir!, { dtype: dtype as 'q4' });
  const loadMs = performance.now() - t0;
  const loadRss = process.resourceUsage().maxRSS / 1024;
  const img = await e.prepareImage(image!);
  const prompts = ['Describe the image.', 'What colours are there?', 'How many shapes?', 'Is there a circle?', 'What is on the left?', 'Name one shape.', 'Where is the red?', 'Count the corners.'];
  const C = Number(conc);
  const sizes: number[] = [];
  e.scheduler().onStep = (b) => sizes.push(b);
  const t1 = performance.now();
  const rs = await Promise.all(Array.from({ length: C }, (_, i) => e.generate({ image: img, prompt: prompts[i % prompts.length]! }, { maxNewTokens: Number(tokens), minNewTokens: Number(tokens) })));
  const wallMs = performance.now() - t1;
  process.stdout.write(JSON.stringify({ loadMs, loadRssMb: loadRss, peakRssMb: process.resourceUsage().maxRSS / 1024, maxBatch: Math.max(...sizes), wallMs, tokens: rs.map((r) => r.tokenIds.length) }) + '\n');
  await e.dispose();
} else {
  const dir = args[0]!;
  const dtype = args[1] ?? 'q4';
  const tokens = opt('--tokens', '32');
  const conc = opt('--conc', '4');
  const image = opt('--image', path.join(path.dirname(self), '../../examples/shapes.jpg'));
  console.log(`model ${dir} ${dtype}, ${tokens}-token answers, ${os.cpus()[0]?.model}, ${new Date().toISOString()}`);
  console.log('| answers at once | largest decode batch | load ms | peak RSS after load MB | peak RSS MB | wall ms |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  for (const c of ['1', conc]) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--child', dir, dtype, c, tokens, image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    console.log(`| ${c} | ${r.maxBatch} | ${r.loadMs.toFixed(0)} | ${r.loadRssMb.toFixed(0)} | ${r.peakRssMb.toFixed(0)} | ${r.wallMs.toFixed(0)} |`);
  }
}
