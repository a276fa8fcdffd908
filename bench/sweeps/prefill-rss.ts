// Memory during a long LM prefill, layer by layer: the prompt runs through one-layer segments
// (forwardAll), and around every session run we record RSS before, the highest RSS sampled while it
// runs (a 2 ms timer: ORT runs off the JS thread) and RSS after. A transient is peak − before; a
// leak or allocator growth shows as after − before accumulating over the layers.
// Usage: node --import tsx bench/sweeps/prefill-rss.ts MODEL_DIR DTYPE IMAGE
import { Engine } from '../../src/engine/vlm.js';
import { forwardAll } from '../../src/engine/inspect.js';
import { Session } from '../../src/runtime/ort.js';

const [dir, dtype, image] = process.argv.slice(2);
const mb = (b: number) => b / 2 ** 20;
// one-layer segments from the start (forwardAll runs layer by layer; no re-cut after load)
const e = await Engine.load(dir!, { dtype: dtype as 'fp32', boundaries: Array.from({ length: 63 }, (_, l) => l + 1) });
const img = await e.prepareImage(image!);
const prompt = e.buildPrompt('Describe the image in detail.', img as never);
console.log(`prompt ${prompt.ids.length} tokens, rss after load + vision ${mb(process.memoryUsage().rss).toFixed(0)} MB`);
const rows: { name: string; before: number; peak: number; after: number }[] = [];
const run = Session.prototype.run;
Session.prototype.run = async function (this: Session, ...args: Parameters<typeof run>) {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 2);
  try {
    return await run.apply(this, args);
  } finally {
    clearInterval(timer);
    const after = process.memoryUsage().rss;
    rows.push({ name: this.name, before: mb(before), peak: mb(Math.max(peak, after)), after: mb(after) });
  }
};
await forwardAll(e.ctx, prompt, true);
Session.prototype.run = run;
console.log('| session | RSS before MB | peak while running MB | transient MB | RSS after MB |');
console.log('|---|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.name} | ${r.before.toFixed(0)} | ${r.peak.toFixed(0)} | ${(r.peak - r.before).toFixed(0)} | ${r.after.toFixed(0)} |`);
console.log(`process peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
await e.dispose();
