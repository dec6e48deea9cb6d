import { afterAll, beforeAll, it } from 'vitest';
import { GraphBuilder } from '../../loaders/builder.js';
import { NdArray } from '../../engine/tensor.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type R = ReturnType<typeof rng>;

function topk(shape: number[], k: number, attrs: Record<string, number>, dtype: 'float32' | 'int32' = 'float32') {
  const g = new GraphBuilder();
  const [v, i] = g.node('TopK', [g.input('x', dtype, shape), g.init('k', 'int64', [1], [BigInt(k)])], attrs, 2);
  g.output(v, null);
  g.output(i, null);
  return g.model({ opset: 11 });
}

/** Values from a few levels, so ties (lower index first) are common; a NaN now and then. */
function data(shape: number[], r: R, nan = false): NdArray {
  const x = randomF32(shape, r, -4, 4);
  x.data.forEach((v, i) => { x.data[i] = nan && r.next() < 0.05 ? NaN : Math.round(v * 2) / 2; });
  return x;
}

/** Runs `fn` with the adapter taken for a hardware GPU, so the shared-memory variants run here too. */
async function asHardware(fn: () => Promise<void>) {
  const ctx = await acquireGpu(), was = ctx.software;
  ctx.software = false;
  try { await fn(); } finally { ctx.software = was; releaseGpu(ctx); }
}

async function randomCases(seed: number, count: number, maxN: number) {
  const r = rng(seed);
  for (let c = 0; c < count; c++) {
    const rank = r.int(1, 3), shape = Array.from({ length: rank }, () => r.int(1, 4)), axis = r.int(0, rank - 1);
    shape[axis] = r.int(1, maxN);
    const k = r.int(0, Math.min(shape[axis], 12)), largest = r.int(0, 1);
    await expectGpuMatchesCpu(topk(shape, k, { axis: axis - (c % 2) * rank, largest }), { x: data(shape, r, c % 3 === 0) });
  }
}

describeGpu('WebGPU TopK matches the CPU backend', () => {
  // One device for the whole file, so each pipeline compiles once (sessions share the device's cache).
  let gpuCtx: GpuContext | undefined;
  beforeAll(async () => { gpuCtx = await acquireGpu(); });
  afterAll(() => { if (gpuCtx) releaseGpu(gpuCtx); });
  it('per-row selection: random shapes, axes, k, largest and smallest, ties and NaN', () => randomCases(21, 10, 300));
  it('bitonic shared-memory sort, one and several passes', () => asHardware(async () => {
    await randomCases(22, 6, 900);
    const r = rng(23);
    for (const [shape, k, axis] of [[[2, 3000], 7, 1], [[2500, 3], 300, 0], [[1, 70000], 40, 1]] as [number[], number, number][]) {
      await expectGpuMatchesCpu(topk(shape, k, { axis, largest: k % 2 }), { x: data(shape, r, true) });
    }
  }));
  it('int32 values', async () => {
    const r = rng(24), shape = [3, 200];
    const x = new NdArray('int32', shape, Int32Array.from(randomF32(shape, r, -1e9, 1e9).data, Math.round));
    await expectGpuMatchesCpu(topk(shape, 9, { axis: 1, largest: 0 }, 'int32'), { x });
    await asHardware(() => expectGpuMatchesCpu(topk(shape, 9, { axis: 1, largest: 1 }, 'int32'), { x }).then(() => undefined));
  });
});
