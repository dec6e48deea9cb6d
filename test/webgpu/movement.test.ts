// WebGPU data movement (views, Transpose, Concat, Split, Slice, Pad, Tile, Expand, DepthToSpace,
// SpaceToDepth, Trilu, CumSum) against the CPU backend over random shapes and attributes.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { GpuRunner } from '../../kernels/webgpu/runner.js';
import { reducePerm, transpose } from '../../kernels/webgpu/transpose.js';
import { cumsum } from '../../kernels/webgpu/copy.js';
import { scan } from '../../kernels/cpu/sort.js';
import { transposeArray } from '../../ops/movement.js';
import { GraphBuilder, i64, type AttrInput } from '../../loaders/builder.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type Rng = ReturnType<typeof rng>;
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
const shapeOf = (r: Rng, rank: number, lo = 1, hi = 5) => Array.from({ length: rank }, () => r.int(lo, hi));

function data(dtype: DType, shape: number[], r: Rng): NdArray {
  const f = randomF32(shape, r, -50, 50).data;
  if (dtype === 'int32') return new NdArray(dtype, shape, Int32Array.from(f, Math.round));
  if (dtype === 'bool') return new NdArray(dtype, shape, Uint8Array.from(f, (v) => Number(v > 0)));
  return new NdArray(dtype, shape, dtype === 'float16' ? f.map((v) => Math.round(v * 8) / 8) : f);
}

/** One node: tensor inputs are graph inputs (on the GPU), int lists become int64 initializers (CPU inputs). */
async function check(op: string, ins: (NdArray | number[] | undefined)[], attrs: Record<string, AttrInput> = {}, opset = 18, outputs = 1) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = ins.map((v, i) => {
    if (v === undefined) return '';
    if (Array.isArray(v)) return g.init(`c${i}`, i64([v.length], v));
    feeds[`x${i}`] = v;
    return g.input(`x${i}`, v.dtype, [...v.shape]);
  });
  for (const o of g.node(op, names, attrs, outputs)) g.output(o, null);
  await expectGpuMatchesCpu(g.model({ opset }), feeds);
}

let gpu: GpuContext;
// Holding the device keeps its pipeline cache across the sessions below.
beforeAll(async () => { gpu = await acquireGpu().catch(() => undefined as never); });
afterAll(() => { if (gpu) releaseGpu(gpu); });

describeGpu('WebGPU data movement matches the CPU backend', () => {
  it('views: Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout with its mask', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 1, 3, 4]);
    const a = g.node('Reshape', [x, g.init('s', i64([3], [0, -1, 4]))])[0];
    const b = g.node('Flatten', [a], { axis: -1 })[0];
    const c = g.node('Unsqueeze', [b, g.init('ax', i64([2], [0, -1]))])[0];
    const d = g.node('Squeeze', [c, g.init('sq', i64([1], [0]))])[0];
    const [e, mask] = g.node('Dropout', [g.node('Identity', [d])[0]], {}, 2);
    g.output(e, null); g.output(mask, null);
    await expectGpuMatchesCpu(g.model({ opset: 18 }), { x: randomF32([2, 1, 3, 4], rng(1)) });
    await check('Dropout', [randomF32([3, 5], rng(2))], {}, 7, 2); // mask of the data's type before opset 10
    await check('Reshape', [data('int32', [2, 6], rng(3))], { shape: [3, -1] }, 1);
  });

  it('Transpose: random permutations, ranks 1-5, all dtypes share the copy kernels', async () => {
    const r = rng(11);
    for (let k = 0; k < 10; k++) {
      const rank = r.int(1, 5), shape = shapeOf(r, rank), perm = [...Array(rank).keys()].sort(() => r.next() - 0.5);
      await check('Transpose', [data(r.pick(['float32', 'int32', 'bool'] as DType[]), shape, r)], k % 3 ? { perm } : {});
    }
    await check('Transpose', [data('float16', [3, 17, 20], r)], { perm: [0, 2, 1] });
  });

  it('Transpose: tiled and gather variants on batched swaps, any carrier', async () => {
    const runner = new GpuRunner(gpu), r = rng(12);
    const cases: [DType, number[], number[]][] = [['float32', [3, 33, 47], [0, 2, 1]], ['float16', [16, 16], [1, 0]], ['int64', [2, 5, 19, 3], [0, 2, 3, 1]], ['int32', [1, 70, 1, 9], [3, 2, 1, 0]]];
    for (const [dtype, shape, perm] of cases) {
      const x = dtype === 'int64' ? new NdArray('int64', shape, BigInt64Array.from({ length: prod(shape) }, (_, i) => BigInt(i) * 3000000000n - 7n)) : data(dtype, shape, r);
      const want = transposeArray(x, perm);
      for (const variant of ['tiled', 'gather'] as const) {
        const xg = runner.upload(x), [y] = runner.run(transpose(xg, perm, gpu.software, variant));
        const got = await runner.download(y);
        expect(got.shape, `${dtype} [${shape}] ${variant}`).toEqual(want.shape);
        expect(Array.from(got.data as ArrayLike<unknown>), `${dtype} [${shape}] ${variant}`).toEqual(Array.from(want.data as ArrayLike<unknown>));
        runner.release(xg); runner.release(y);
      }
    }
    runner.destroy();
  });

  it('permutations reduce to merged axes; a new shape of the same rank compiles nothing', async () => {
    expect(reducePerm([2, 3, 4, 5], [0, 2, 3, 1])).toEqual({ shape: [2, 3, 20], perm: [0, 2, 1] });
    expect(reducePerm([1, 3, 1, 5], [3, 2, 1, 0])).toEqual({ shape: [3, 5], perm: [1, 0] });
    const count = () => new GpuRunner(gpu).pipelineCount;
    await check('Slice', [randomF32([4, 6, 5], rng(13))], { starts: [1, 0], ends: [3, 5], axes: [0, 2] }, 9);
    const before = count();
    await check('Slice', [randomF32([7, 3, 9], rng(14))], { starts: [-1, 1], ends: [-8, 8], axes: [0, 2] }, 9);
    expect(count()).toBe(before);
  });

  it('Concat and Split over random axes and part counts', async () => {
    const r = rng(21);
    for (let k = 0; k < 6; k++) {
      const rank = r.int(1, 4), ax = r.int(0, rank - 1), base = shapeOf(r, rank), n = r.int(1, 4);
      const parts = Array.from({ length: n }, () => data('float32', base.map((d, i) => (i === ax ? r.int(0, 3) : d)), r));
      await check('Concat', parts, { axis: k % 2 ? ax - rank : ax });
    }
    for (let k = 0; k < 6; k++) {
      const rank = r.int(1, 4), ax = r.int(0, rank - 1), shape = shapeOf(r, rank, 2, 6), n = r.int(1, 3), d = shape[ax];
      const cut = Array.from({ length: n - 1 }, () => r.int(0, d)).sort((a, b) => a - b), sizes = [...cut, d].map((c, i) => c - (i ? cut[i - 1] : 0));
      const x = data('int32', shape, r);
      if (k % 3 === 0) await check('Split', [x, sizes], { axis: ax }, 13, n);
      else if (k % 3 === 1) await check('Split', [x], { axis: ax, num_outputs: n }, 18, n);
      else await check('Split', [data('int32', shape.map((v, i) => (i === ax ? v * n : v)), r)], { axis: ax }, 13, n);
    }
  });

  it('Slice with negative steps, clamped bounds and omitted axes', async () => {
    const r = rng(31);
    for (let k = 0; k < 8; k++) {
      const rank = r.int(1, 4), shape = shapeOf(r, rank, 1, 7), axes = [...Array(rank).keys()].filter(() => r.next() < 0.7);
      const steps = axes.map(() => r.pick([1, 2, -1, -2, 3]));
      const starts = axes.map(() => r.int(-9, 9)), ends = axes.map(() => r.int(-9, 9));
      await check('Slice', [data('float32', shape, r), starts, ends, axes, steps]);
    }
    await check('Slice', [data('float32', [5, 4], r), [-1], [-1000]], {}, 13);
  });

  it('Pad in every mode, with cropping pads and axes; CenterCropPad', async () => {
    const r = rng(41);
    for (const mode of ['constant', 'reflect', 'edge', 'wrap']) {
      for (let k = 0; k < 3; k++) {
        const rank = r.int(1, 4), shape = shapeOf(r, rank, 3, 5), pads = [...shape, ...shape].map(() => r.int(-1, 4));
        const value = mode === 'constant' ? new NdArray('float32', [], Float32Array.of(2.5)) : undefined;
        await check('Pad', [data('float32', shape, r), pads, value], { mode }, 19);
      }
    }
    await check('Pad', [data('float32', [3, 4, 2], r), [1, 2, 0, 1], undefined, [2, 0]], { mode: 'edge' });
    await check('Pad', [data('int32', [3, 4], r)], { pads: [1, 0, 2, 3], value: 7 }, 2);
    await check('CenterCropPad', [data('float32', [5, 4, 3], r), [3, 7]], { axes: [0, 2] });
  });

  it('Tile, Expand, DepthToSpace, SpaceToDepth', async () => {
    const r = rng(51);
    for (let k = 0; k < 4; k++) {
      const rank = r.int(1, 4), shape = shapeOf(r, rank, 1, 4);
      await check('Tile', [data('float32', shape, r), shape.map(() => r.int(0, 3))]);
      const target = [...shapeOf(r, r.int(0, 2)), ...shape.map((d) => (d === 1 ? r.int(1, 4) : r.pick([1, d])))];
      await check('Expand', [data('float32', shape, r), target]);
    }
    for (const mode of ['DCR', 'CRD']) await check('DepthToSpace', [data('float32', [2, 12, 3, 2], r)], { blocksize: 2, mode });
    await check('DepthToSpace', [data('float32', [1, 18, 2, 3], r)], { blocksize: 3 });
    await check('SpaceToDepth', [data('float32', [2, 3, 4, 6], r)], { blocksize: 2 });
  });

  it('Trilu and CumSum over random diagonals, axes and flags', async () => {
    const r = rng(61);
    for (let k = 0; k < 6; k++) {
      const shape = shapeOf(r, r.int(2, 4), 1, 6), x = data(k % 2 ? 'float32' : 'int32', shape, r);
      await check('Trilu', [x, k === 5 ? undefined : new NdArray('int64', [], BigInt64Array.of(BigInt(r.int(-4, 4))))], { upper: k % 3 ? 1 : 0 });
    }
    for (let k = 0; k < 6; k++) {
      const rank = r.int(1, 4), shape = shapeOf(r, rank, 1, 6), axis = r.int(-rank, rank - 1);
      const x = data(r.pick(['float32', 'int32', 'float16'] as DType[]), shape, r);
      await check('CumSum', [x, new NdArray('int32', [], Int32Array.of(axis))], { exclusive: k % 2, reverse: (k >> 1) % 2 }, 14);
    }
  });

  it('CumSum: serial and workgroup variants on long and short lanes', async () => {
    const runner = new GpuRunner(gpu), r = rng(62);
    for (const [outer, n, inner] of [[1, 3001, 1], [2, 700, 3], [3, 5, 2]]) {
      const x = data('int32', [outer, n, inner], r);
      for (const [exclusive, reverse] of [[false, false], [true, true]]) {
        const want = new Int32Array(x.size);
        scan(x.data as Int32Array, want, outer, n, inner, exclusive, reverse, 0, (a: number, b: number) => a + b);
        for (const variant of ['serial', 'workgroup'] as const) {
          const xg = runner.upload(x), [y] = runner.run(cumsum(xg, { outer, n, inner, exclusive, reverse }, variant));
          expect(Array.from((await runner.download(y)).data as Int32Array), `[${outer}, ${n}, ${inner}] ${variant}`).toEqual(Array.from(want));
          runner.release(xg); runner.release(y);
        }
      }
    }
    runner.destroy();
  });
});
