// f32 MatMul GFLOP/s on the WebGPU backend for each GEMM variant (forced through the program builder),
// against plain JavaScript triple loops at the same size. Square N^3 products for reg and shared; the
// matrix-vector shapes 1xNxN and Nx1xN for gemv, with reg beside it (the measurements behind
// chooseGemmVariant), then what warm-up measurement picks for the same shapes. Each GPU iteration records
// one dispatch and awaits onSubmittedWorkDone.
// Run: node dist/bench/webgpu-matmul.js [N] [seconds]   (1024 is always measured; N adds a size)
import { Bench } from 'tinybench';
import { NdArray } from '../engine/tensor.js';
import { acquireGpu, releaseGpu } from '../kernels/webgpu/device.js';
import { gemmVariantFor, measuredVariants, shapeClass, tuneGemms, type GemmShape } from '../kernels/webgpu/gemm-tuning.js';
import { chooseGemmVariant, matmulProgram, type GemmVariant } from '../kernels/webgpu/matmul.js';
import { GpuRunner, type GpuArray } from '../kernels/webgpu/runner.js';

const extra = Number(process.argv[2] ?? 1024), seconds = Number(process.argv[3] ?? 2);
const sizes = [...new Set([1024, extra])];
const fill = (len: number, seed: number) => Float32Array.from({ length: len }, (_, i) => ((i * seed) % 1000) / 1000 - 0.5);

/** The textbook loop: one dot product per output, B read down a column. */
function ijk(a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number) {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
      c[i * n + j] = s;
    }
  }
}

/** The loop reordered so the innermost runs along rows of B and C (the cache-friendly triple loop). */
function ikj(a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number) {
  c.fill(0);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      for (let j = 0; j < n; j++) c[i * n + j] += av * b[p * n + j];
    }
  }
}

interface Case { label: string; m: number; n: number; k: number; run: GemmVariant | typeof ijk }

function cases(size: number): Case[] {
  const sq = { m: size, n: size, k: size }, row = { m: 1, n: size, k: size }, col = { m: size, n: 1, k: size };
  return [
    { label: `${size}^3 js i-j-k`, ...sq, run: ijk }, { label: `${size}^3 js i-k-j`, ...sq, run: ikj },
    { label: `${size}^3 reg`, ...sq, run: 'reg' }, { label: `${size}^3 shared`, ...sq, run: 'shared' },
    { label: `1x${size}x${size} gemv`, ...row, run: 'gemv' }, { label: `1x${size}x${size} reg`, ...row, run: 'reg' },
    { label: `${size}x1x${size} gemv`, ...col, run: 'gemv' }, { label: `${size}x1x${size} reg`, ...col, run: 'reg' },
  ];
}

const ctx = await acquireGpu();
const gpu = new GpuRunner(ctx);
const bench = new Bench({ time: seconds * 1000, iterations: 3, warmupTime: 0, warmupIterations: 1 });
const uploads: GpuArray[] = [], maxErr = new Map<string, number>(), all = sizes.flatMap(cases);
const refs = new Map<string, Float32Array>();

for (const c of all) {
  const a = fill(c.m * c.k, 7919), b = fill(c.k * c.n, 104729), dims = `${c.m}x${c.n}x${c.k}`;
  if (typeof c.run === 'function') { const f = c.run; bench.add(c.label, () => f(a, b, new Float32Array(c.m * c.n), c.m, c.n, c.k)); continue; }
  if (!refs.has(dims)) { const r = new Float32Array(c.m * c.n); ikj(a, b, r, c.m, c.n, c.k); refs.set(dims, r); }
  const ga = gpu.upload(new NdArray('float32', [c.m, c.k], a)), gb = gpu.upload(new NdArray('float32', [c.k, c.n], b));
  uploads.push(ga, gb);
  const program = matmulProgram(ctx, {
    a: { x: ga, strides: [c.k, 1], batchStrides: [] }, b: { x: gb, strides: [c.n, 1], batchStrides: [] },
    dims: { batch: 1, m: c.m, n: c.n, k: c.k }, batchShape: [], variant: c.run,
  }, [c.m, c.n]);
  // The first run compiles the pipeline and is checked against the JS product before any timing.
  const [out] = gpu.run(program);
  const got = (await gpu.download(out)).data as Float32Array, ref = refs.get(dims)!;
  gpu.release(out);
  maxErr.set(c.label, got.reduce((e, v, i) => Math.max(e, Math.abs(v - ref[i])), 0));
  bench.add(c.label, async () => {
    const [o] = gpu.run(program);
    await gpu.drain();
    gpu.submit();
    await ctx.device.queue.onSubmittedWorkDone();
    gpu.release(o);
  });
}

await bench.run();
console.log(`MatMul f32 on ${ctx.adapterName}; median of >= ${seconds} s and >= 3 runs per row\n`);
console.log('| case | median ms | GFLOP/s | max abs err vs JS |');
console.log('|---|---|---|---|');
for (const t of bench.tasks) {
  const r = t.result, c = all.find((x) => x.label === t.name)!;
  if (r.state !== 'completed') throw new Error(`${t.name}: ${r.state === 'errored' ? r.error.message : r.state}`);
  const err = maxErr.get(t.name);
  console.log(`| ${t.name} | ${r.latency.p50.toFixed(1)} | ${((2 * c.m * c.n * c.k) / r.latency.p50 / 1e6).toFixed(2)} | ${err === undefined ? '-' : err.toExponential(1)} |`);
}
// What warm-up measurement (gemm-tuning.ts) picks per shape class on this adapter, beside the rule.
const shapes: GemmShape[] = sizes.flatMap((n) => [{ m: n, n, k: n, rowsAlongK: false }, { m: 1, n, k: n, rowsAlongK: false }, { m: n, n: 1, k: n, rowsAlongK: true }]);
for (const sh of shapes) gemmVariantFor(ctx, sh);
const t0 = performance.now();
await tuneGemms(gpu);
console.log(`\nMeasured choice (${((performance.now() - t0) / 1000).toFixed(1)} s of timing, compiles included):\n`);
console.log('| shape (MxNxK) | class | measured | rule |');
console.log('|---|---|---|---|');
const won = measuredVariants(ctx.adapterName);
for (const sh of shapes) console.log(`| ${sh.m}x${sh.n}x${sh.k} | ${shapeClass(sh)} | ${won.get(shapeClass(sh))} | ${chooseGemmVariant(ctx, sh.m, sh.n, sh.k, sh.rowsAlongK)} |`);
for (const u of uploads) gpu.release(u);
gpu.destroy();
releaseGpu(ctx);
