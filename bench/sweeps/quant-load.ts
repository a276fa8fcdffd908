// Load time (cold = empty quantized-weight cache, cached = second load) and peak RSS during load and
// during one answer, per dtype, each in a fresh process so RSS is not shared between runs.
// Usage: node --import tsx bench/sweeps/quant-load.ts MODEL_DIR [dtype ...] [--tokens N] [--image FILE]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);

if (args[0] === '--child') {
  const [, dir, dtype, cacheDir, tokens, image] = args;
  const { Engine } = await import('../../src/engine/vlm.js');
  const t0 = performance.now();
  const e = await Engine.load(dir!, { dtype: dtype as 'q4', cacheDir: cacheDir! });
  const loadMs = performance.now() - t0;
  const loadRss = process.resourceUsage().maxRSS / 1024;
  const r = await e.generate({ image: image!, prompt: 'Describe the image.' }, { maxNewTokens: Number(tokens), minNewTokens: Number(tokens) });
  process.stdout.write(JSON.stringify({ loadMs, loadRssMb: loadRss, answerRssMb: process.resourceUsage().maxRSS / 1024, quant: e.quantStats ?? null, prefillMs: r.stats.prefillMs, decodeTokS: r.stats.decodeTokensPerSecond }) + '\n');
  await e.dispose();
} else {
  const dir = args[0]!;
  const opt = (f: string, d: string) => (args.includes(f) ? args[args.indexOf(f) + 1]! : d);
  const tokens = opt('--tokens', '16');
  const image = opt('--image', path.join(path.dirname(self), '../../examples/shapes.jpg'));
  const dtypes = args.slice(1).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
  console.log(`model ${dir}, ${tokens}-token answer, ${os.cpus()[0]?.model}, ${new Date().toISOString()}`);
  console.log('| dtype | load | load ms | peak RSS after load MB | peak RSS after answer MB | prefill ms | decode tok/s | cache |');
  console.log('|---|---|---:|---:|---:|---:|---:|---|');
  for (const dtype of dtypes.length ? dtypes : ['fp32', 'q8', 'q4']) {
    const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvq-bench-'));
    for (const kind of dtype === 'fp32' ? ['cold'] : ['cold', 'cached']) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--child', dir, dtype, cacheDir, tokens, image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      const r = JSON.parse(out.trim().split('\n').pop()!);
      const q = r.quant ? `${r.quant.hits} hits / ${r.quant.misses} quantized` : '-';
      console.log(`| ${dtype} | ${kind} | ${r.loadMs.toFixed(0)} | ${r.loadRssMb.toFixed(0)} | ${r.answerRssMb.toFixed(0)} | ${r.prefillMs.toFixed(0)} | ${r.decodeTokS.toFixed(1)} | ${q} |`);
    }
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
}
