// Measures the machine's two ceilings in the same process as the benchmark, so a model's achieved
// prefill GFLOP/s and decode bytes/s can be read as a fraction of what this box can do:
//  - compute: ONNX Runtime fp32 MatMul of two n×n matrices (2n³ FLOP), through the same Session
//    wrapper and thread settings the engine uses;
//  - memory: a large Float64Array.set copy in JS (STREAM "copy" style, bytes read + bytes written).
import os from 'node:os';
import pkg from 'onnx-proto';
import { Session, f32 } from '../runtime/ort.js';
import { median } from './stats.js';

const { onnx } = pkg;

export interface MachineInfo {
  cpu: string;
  cores: number;            // logical CPUs reported by the OS
  platform: string;
  totalMemoryGB: number;
  node: string;
  matmulGflops: number;     // best of the timed runs: the attainable ceiling
  matmulGflopsMedian: number;
  matmulSize: number;
  memoryGBps: number;       // best of the timed copies, (read + write) bytes / s / 1e9
  memoryGBpsMedian: number;
  memoryCopyMB: number;
}

/**
 * C = A·B followed by ReduceSum(C) to a scalar: the reduction is n² adds against 2n³ for the product,
 * and it means only 4 bytes come back per run, so the timing is the MatMul and not an output copy.
 */
export function buildMatMulModel(n: number): Uint8Array {
  const DT = onnx.TensorProto.DataType;
  const tensorType = (dims: number[]) => ({ tensorType: { elemType: DT.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: onnx.GraphProto.create({
      name: 'bench.matmul',
      node: [
        { name: 'matmul', opType: 'MatMul', input: ['A', 'B'], output: ['C'] },
        { name: 'sum', opType: 'ReduceSum', input: ['C'], output: ['S'], attribute: [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] },
      ],
      input: [{ name: 'A', type: tensorType([n, n]) }, { name: 'B', type: tensorType([n, n]) }],
      output: [{ name: 'S', type: tensorType([]) }],
    }),
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Times fn until `budgetMs` has passed (at least `minRuns`, at most `maxRuns`), after one warm-up. */
async function timeRuns(fn: () => Promise<void> | void, budgetMs: number, minRuns: number, maxRuns: number): Promise<number[]> {
  await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxRuns && (times.length < minRuns || performance.now() - start < budgetMs)) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return times;
}

export async function measureMatmul(n = 2048, budgetMs = 1500): Promise<{ best: number; median: number; n: number }> {
  const session = await Session.create(buildMatMulModel(n), 'bench.matmul');
  try {
    const a = new Float32Array(n * n);
    const b = new Float32Array(n * n);
    // Non-trivial values: some BLAS paths are not faster on zeros, but denormals could be slower.
    for (let i = 0; i < a.length; i++) { a[i] = ((i % 97) - 48) / 97; b[i] = ((i % 89) - 44) / 89; }
    const feeds = { A: f32(a, [n, n]), B: f32(b, [n, n]) };
    const times = await timeRuns(async () => { await session.run(feeds, ['S']); }, budgetMs, 3, 30);
    const gflop = (2 * n ** 3) / 1e9;
    return { best: gflop / (Math.min(...times) / 1e3), median: gflop / (median(times) / 1e3), n };
  } finally {
    await session.release();
  }
}

export async function measureMemory(mb = 256, budgetMs = 1500): Promise<{ best: number; median: number; mb: number }> {
  const len = (mb * 1024 * 1024) / 8;
  const src = new Float64Array(len);
  const dst = new Float64Array(len);
  src.fill(1.5); // touch every page first, so page faults are not timed
  dst.fill(0);
  const times = await timeRuns(() => { dst.set(src); }, budgetMs, 3, 20);
  const bytes = 2 * len * 8; // each copy reads src and writes dst
  return { best: bytes / (Math.min(...times) / 1e3) / 1e9, median: bytes / (median(times) / 1e3) / 1e9, mb };
}

export async function measureMachine(opts: { matmulSize?: number; copyMB?: number } = {}): Promise<MachineInfo> {
  const mm = await measureMatmul(opts.matmulSize);
  const mem = await measureMemory(opts.copyMB);
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    platform: `${os.platform()} ${os.arch()}`,
    totalMemoryGB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    matmulGflops: mm.best,
    matmulGflopsMedian: mm.median,
    matmulSize: mm.n,
    memoryGBps: mem.best,
    memoryGBpsMedian: mem.median,
    memoryCopyMB: mem.mb,
  };
}
