import { expect, it } from 'vitest';
import { GraphBuilder } from '../../loaders/builder.js';
import { NdArray } from '../../engine/tensor.js';
import { compareValues } from '../../conformance/compare.js';
import { acquireGpu, releaseGpu } from '../../kernels/webgpu/device.js';
import { argProgram, reduceProgram } from '../../kernels/webgpu/reduce.js';
import { GpuRunner, type Program } from '../../kernels/webgpu/runner.js';
import { softmaxProgram } from '../../kernels/webgpu/softmax.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

const FOLDS = ['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare'];
type R = ReturnType<typeof rng>;

const randShape = (r: R, rank: number, hi = 5) => Array.from({ length: rank }, () => r.int(1, hi));
/** A random subset of axes, possibly empty, in random order and sign. */
const randAxes = (r: R, rank: number) => [...Array(rank).keys()].filter(() => r.next() < 0.5).map((a) => (r.next() < 0.3 ? a - rank : a)).reverse();

/** Reduce model (opset 18) with axes as an int64 initializer, or none. */
function reduceModel(op: string, shape: number[], axes: number[] | undefined, attrs: Record<string, number>, dtype: 'float32' | 'int32' | 'float16' = 'float32') {
  const g = new GraphBuilder(), x = g.input('x', dtype, shape);
  g.output(g.node(op, axes ? [x, g.init('axes', 'int64', [axes.length], axes)] : [x], attrs)[0], null);
  return g.model({ opset: 18 });
}

// LogSum needs positive sums; Prod stays tame near 1.
const dataFor = (op: string, shape: number[], r: R) => randomF32(shape, r, op === 'ReduceLogSum' || op === 'ReduceProd' ? 0.5 : -2, op === 'ReduceProd' ? 1.5 : 2);

describeGpu('WebGPU reductions match the CPU backend', () => {
  it('every Reduce* over random shapes, axes and keepdims, axes as attribute or input', async () => {
    const r = rng(11);
    for (const op of FOLDS) {
      for (let k = 0; k < 3; k++) {
        const shape = randShape(r, r.int(1, 4)), axes = randAxes(r, shape.length), asInput = k !== 1;
        // ReduceSum takes axes as an input from opset 13, the others from 18.
        const opset = asInput ? 18 : op === 'ReduceSum' ? 11 : 13;
        const g = new GraphBuilder(), x = g.input('x', 'float32', shape);
        const ins = asInput ? [x, g.init('axes', 'int64', [axes.length], axes)] : [x];
        const attrs = { keepdims: r.int(0, 1), ...(asInput ? { noop_with_empty_axes: r.int(0, 1) } : axes.length ? { axes } : {}) };
        g.output(g.node(op, ins, attrs)[0], null);
        await expectGpuMatchesCpu(g.model({ opset }), { x: dataFor(op, shape, r) });
      }
    }
  });
  it('long rows fold in parallel, strided rows serially, both exact', async () => {
    const r = rng(12);
    for (const [shape, axes] of [[[3, 1500], [1]], [[2, 40, 30], [0, 2]], [[700, 3], [0]], [[5, 4, 3, 2], [1, 3]]] as [number[], number[]][]) {
      for (const op of ['ReduceSum', 'ReduceMax', 'ReduceLogSumExp']) {
        await expectGpuMatchesCpu(reduceModel(op, shape, axes, { keepdims: 0 }), { x: dataFor(op, shape, r) });
      }
    }
  });
  it('int32 data folds in integer arithmetic; float16 data in f32', async () => {
    const r = rng(13);
    for (const op of ['ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceMean', 'ReduceL1', 'ReduceSumSquare']) {
      const shape = randShape(r, 3), axes = randAxes(r, 3);
      const x = new NdArray('int32', shape, Int32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.int(-9, 9)));
      await expectGpuMatchesCpu(reduceModel(op, shape, axes, { keepdims: 1 }, 'int32'), { x });
    }
    const x = randomF32([4, 6], r);
    await expectGpuMatchesCpu(reduceModel('ReduceMean', [4, 6], [1], { keepdims: 1 }, 'float16'), { x: new NdArray('float16', [4, 6], x.data) }, { rtol: 1e-2, atol: 1e-2 });
  });
  it('empty axes: all axes, or none with noop_with_empty_axes; empty reduced sets', async () => {
    const r = rng(14);
    for (const op of ['ReduceSum', 'ReduceL2', 'ReduceLogSumExp']) {
      await expectGpuMatchesCpu(reduceModel(op, [3, 4], undefined, { keepdims: 0, noop_with_empty_axes: 1 }), { x: randomF32([3, 4], r, 0.5, 2) });
      await expectGpuMatchesCpu(reduceModel(op, [3, 4], [], { keepdims: 1 }), { x: randomF32([3, 4], r, 0.5, 2) });
    }
    for (const op of ['ReduceSum', 'ReduceProd', 'ReduceMax', 'ReduceLogSum']) {
      await expectGpuMatchesCpu(reduceModel(op, [2, 0, 3], [1], { keepdims: 1 }), { x: randomF32([2, 0, 3], r) });
    }
  });
  it('ArgMax/ArgMin with ties, select_last_index and keepdims', async () => {
    const r = rng(15);
    for (const op of ['ArgMax', 'ArgMin']) {
      for (let k = 0; k < 4; k++) {
        const shape = randShape(r, r.int(1, 4), 6), axis = r.int(-shape.length, shape.length - 1);
        const g = new GraphBuilder();
        g.output(g.node(op, [g.input('x', 'float32', shape)], { axis, keepdims: r.int(0, 1), select_last_index: k % 2 })[0], null);
        // Few distinct values, so ties are common.
        const x = randomF32(shape, r, 0, 3).data.map(Math.floor);
        await expectGpuMatchesCpu(g.model({ opset: 13 }), { x: new NdArray('float32', shape, x) });
      }
    }
    const g = new GraphBuilder();
    g.output(g.node('ArgMax', [g.input('x', 'int32', [2, 2000])], { axis: 1, select_last_index: 1 })[0], null);
    await expectGpuMatchesCpu(g.model({ opset: 13 }), { x: new NdArray('int32', [2, 2000], Int32Array.from({ length: 4000 }, () => r.int(0, 50))) });
  });
  it('the hardware variants (a 256-wide workgroup per row) are right on this adapter too', async () => {
    const dev = await acquireGpu(), ctx = { ...dev, software: false }, gpu = new GpuRunner(ctx);
    try {
      const r = rng(16), rows = 3, n = 2500, x = randomF32([rows, n], r, -3, 3), xs = gpu.upload(x);
      const row = (i: number) => Array.from(x.data.subarray(i * n, (i + 1) * n));
      const lse = (v: number[]) => { const m = Math.max(...v); return m + Math.log(v.reduce((a, b) => a + Math.exp(b - m), 0)); };
      const check = async (p: Program, expected: NdArray) => {
        const [out] = gpu.run(p), got = await gpu.download(out);
        gpu.release(out);
        expect(compareValues(expected, got, { rtol: 1e-4, atol: 1e-5 })).toBeUndefined();
      };
      const perRow = (f: (v: number[]) => number) => new NdArray('float32', [rows], Float32Array.from({ length: rows }, (_, i) => f(row(i))));
      await check(reduceProgram(ctx, xs, [1], 'sum', [rows]), perRow((v) => v.reduce((a, b) => a + b, 0)));
      await check(reduceProgram(ctx, xs, [1], 'max', [rows]), perRow((v) => Math.max(...v)));
      await check(reduceProgram(ctx, xs, [1], 'logsumexp', [rows]), perRow(lse));
      await check(argProgram(ctx, xs, 1, false, false, [rows]), new NdArray('int64', [rows], BigInt64Array.from({ length: rows }, (_, i) => BigInt(row(i).indexOf(Math.min(...row(i)))))));
      const shift = Array.from({ length: rows }, (_, i) => lse(row(i)));
      await check(softmaxProgram(ctx, xs, [rows, n], [1], 'logsoftmax'), new NdArray('float32', [rows, n], Float32Array.from(x.data, (v, i) => v - shift[Math.floor(i / n)])));
      gpu.release(xs);
    } finally {
      gpu.destroy();
      releaseGpu(dev);
    }
  });
});
