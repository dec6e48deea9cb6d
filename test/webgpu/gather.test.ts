// WebGPU indexing (Gather, GatherElements, GatherND, ScatterND, ScatterElements) against the CPU backend:
// random shapes and axes, int32 and int64 indices with negative values, duplicates with every reduction.
import { afterAll, beforeAll, it } from 'vitest';
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { GraphBuilder, type AttrInput } from '../../loaders/builder.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type Rng = ReturnType<typeof rng>;
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
const shapeOf = (r: Rng, rank: number, lo = 1, hi = 5) => Array.from({ length: rank }, () => r.int(lo, hi));

function data(dtype: DType, shape: number[], r: Rng): NdArray {
  const f = randomF32(shape, r, -20, 20).data;
  if (dtype === 'int32') return new NdArray(dtype, shape, Int32Array.from(f, Math.round));
  if (dtype === 'int64') return new NdArray(dtype, shape, BigInt64Array.from(f, (v) => BigInt(Math.round(v)) * 1000000007n));
  return new NdArray(dtype, shape, f);
}

/** Indices in [-n, n) of the given dtype. */
function indices(dtype: DType, shape: number[], n: number | ((i: number) => number), r: Rng): NdArray {
  const vals = Array.from({ length: prod(shape) }, (_, i) => { const m = typeof n === 'number' ? n : n(i); return r.int(-m, m - 1); });
  return dtype === 'int64' ? new NdArray(dtype, shape, BigInt64Array.from(vals, BigInt)) : new NdArray(dtype, shape, Int32Array.from(vals));
}

async function check(op: string, ins: NdArray[], attrs: Record<string, AttrInput> = {}, opset = 18) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = ins.map((v, i) => { feeds[`x${i}`] = v; return g.input(`x${i}`, v.dtype, [...v.shape]); });
  g.output(g.node(op, names, attrs)[0], null);
  await expectGpuMatchesCpu(g.model({ opset }), feeds);
}

let gpu: GpuContext | undefined;
// Holding the device keeps its pipeline cache across the sessions below.
beforeAll(async () => { gpu = await acquireGpu().catch(() => undefined); });
afterAll(() => { if (gpu) releaseGpu(gpu); });

describeGpu('WebGPU indexing matches the CPU backend', () => {
  it('Gather over random axes with int32 and int64 indices', async () => {
    const r = rng(1);
    for (let k = 0; k < 8; k++) {
      const rank = r.int(1, 4), shape = shapeOf(r, rank, 1, 6), ax = r.int(0, rank - 1);
      const idx = indices(k % 2 ? 'int64' : 'int32', shapeOf(r, r.int(0, 2), 1, 4), shape[ax], r);
      await check('Gather', [data(k % 4 === 3 ? 'int64' : 'float32', shape, r), idx], { axis: k % 3 ? ax : ax - rank });
    }
  });

  it('GatherElements and GatherND with batch_dims', async () => {
    const r = rng(2);
    for (let k = 0; k < 6; k++) {
      const rank = r.int(1, 4), shape = shapeOf(r, rank, 1, 5), ax = r.int(0, rank - 1);
      const ishape = shape.map((d, i) => (i === ax ? r.int(1, 6) : r.int(1, d)));
      await check('GatherElements', [data('float32', shape, r), indices(k % 2 ? 'int64' : 'int32', ishape, shape[ax], r)], { axis: ax });
    }
    for (let k = 0; k < 6; k++) {
      const rank = r.int(1, 4), shape = shapeOf(r, rank, 1, 4), b = r.int(0, rank - 1), t = r.int(1, rank - b);
      const ishape = [...shape.slice(0, b), ...shapeOf(r, r.int(0, 2), 1, 3), t];
      const idx = indices(k % 2 ? 'int64' : 'int32', ishape, (i) => shape[b + (i % t)], r);
      await check('GatherND', [data(k % 3 ? 'float32' : 'int64', shape, r), idx], { batch_dims: b });
    }
  });

  it('ScatterND with duplicate tuples and every reduction', async () => {
    const r = rng(3);
    for (const reduction of ['none', 'add', 'mul', 'max', 'min']) {
      for (let k = 0; k < 2; k++) {
        const rank = r.int(1, 3), shape = shapeOf(r, rank, 1, 4), t = r.int(1, rank), n = r.int(1, 6);
        // Few distinct tuples among many: duplicates are likely.
        const idx = indices('int64', [n, t], (i) => Math.min(2, shape[i % t]), r);
        const dtype: DType = k ? 'int32' : 'float32';
        await check('ScatterND', [data(dtype, shape, r), idx, data(dtype, [n, ...shape.slice(t)], r)], { reduction });
      }
    }
  });

  it('ScatterElements with duplicates along the axis and every reduction; Scatter-9', async () => {
    const r = rng(4);
    for (const reduction of ['none', 'add', 'mul', 'max', 'min']) {
      for (let k = 0; k < 2; k++) {
        const rank = r.int(1, 3), shape = shapeOf(r, rank, 1, 4), ax = r.int(0, rank - 1);
        const ishape = shape.map((d, i) => (i === ax ? r.int(1, 6) : r.int(1, d)));
        const dtype: DType = k ? 'float32' : 'int32';
        await check('ScatterElements', [data(dtype, shape, r), indices(k ? 'int32' : 'int64', ishape, Math.min(2, shape[ax]), r), data(dtype, ishape, r)], { axis: ax, reduction });
      }
    }
    await check('Scatter', [data('float32', [3, 4], r), indices('int64', [2, 4], 3, r), data('float32', [2, 4], r)], { axis: 0 }, 10);
    await check('ScatterElements', [data('int64', [4, 3], r), indices('int32', [4, 2], 3, r), data('int64', [4, 2], r)], { axis: 1 });
  });
});
