// WebGPU EyeLike, OneHot, the cosine windows and CumProd against the CPU backend over random shapes,
// dtypes and attributes; CumProd's serial and workgroup scans also directly against the CPU scan.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { scan } from '../../kernels/cpu/sort.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { GpuRunner } from '../../kernels/webgpu/runner.js';
import { cumprod } from '../../kernels/webgpu/copy.js';
import { GraphBuilder, type AttrInput } from '../../loaders/builder.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type Rng = ReturnType<typeof rng>;

/** One node; NdArray inputs listed in `consts` become initializers (CPU inputs), the rest graph inputs. */
async function check(op: string, ins: NdArray[], attrs: Record<string, AttrInput>, opset: number, consts: number[] = []) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = ins.map((v, i) => {
    if (consts.includes(i)) return g.init(`c${i}`, v);
    feeds[`x${i}`] = v;
    return g.input(`x${i}`, v.dtype, [...v.shape]);
  });
  g.output(g.node(op, names, attrs)[0], null);
  await expectGpuMatchesCpu(g.model({ opset }), feeds);
}

const int = (d: 'int32' | 'int64', shape: number[], vals: number[]) =>
  (d === 'int64' ? new NdArray(d, shape, BigInt64Array.from(vals, BigInt)) : new NdArray(d, shape, Int32Array.from(vals)));

let gpu: GpuContext;
beforeAll(async () => { gpu = await acquireGpu().catch(() => undefined as never); });
afterAll(() => { if (gpu) releaseGpu(gpu); });

describeGpu('WebGPU generators and CumProd match the CPU backend', () => {
  it('EyeLike: shapes, diagonals beyond the matrix, output dtypes', async () => {
    const r = rng(91);
    for (const [dtype, k] of [[undefined, 0], [1, 2], [6, -1], [7, 1], [9, 0], [10, -3], [undefined, 9]] as [number | undefined, number][]) {
      const shape = [r.int(1, 5), r.int(1, 5)], attrs: Record<string, AttrInput> = { k };
      if (dtype !== undefined) attrs.dtype = dtype;
      await check('EyeLike', [randomF32(shape, r)], attrs, 9);
    }
  });
  it('OneHot: index dtypes, negative and out-of-range indices, every axis, value dtypes', async () => {
    const r = rng(92);
    for (const idt of ['int64', 'int32', 'float32'] as const) {
      for (let k = 0; k < 4; k++) {
        const shape = Array.from({ length: r.int(1, 3) }, () => r.int(1, 4)), depth = r.int(1, 6);
        const vals = Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.int(-depth - 1, depth + 1));
        const idx = idt === 'float32' ? new NdArray('float32', shape, Float32Array.from(vals, (v) => (r.next() < 0.2 ? v + 0.5 : v))) : int(idt, shape, vals);
        const values = k % 2 ? new NdArray('float32', [2], Float32Array.of(-1.5, 3)) : int('int32', [2], [2, 7]);
        await check('OneHot', [idx, int('int64', [1], [depth]), values], { axis: r.int(-shape.length - 1, shape.length) }, 11, [1]);
      }
    }
  });
  it('Hann, Hamming and Blackman windows: periodic and symmetric, sizes 0-1 and odd/even', async () => {
    for (const op of ['HannWindow', 'HammingWindow', 'BlackmanWindow']) for (const size of [0, 1, 2, 7, 10, 257]) for (const periodic of [0, 1]) {
      await check(op, [int(size % 2 ? 'int32' : 'int64', [], [size])], { periodic, output_datatype: size === 7 ? 10 : 1 }, 17, [0]);
    }
  });
  it('CumProd: axes, flags and dtypes', async () => {
    const r = rng(93);
    for (let k = 0; k < 8; k++) {
      const rank = r.int(1, 4), shape = Array.from({ length: rank }, () => r.int(1, 6)), axis = r.int(-rank, rank - 1);
      const d = r.pick(['float32', 'int32', 'float16'] as DType[]), f = randomF32(shape, r, 0.5, 1.5).data;
      const x = d === 'int32' ? new NdArray(d, shape, Int32Array.from(f, (v) => Math.round(v * 2) - 1)) : new NdArray(d, shape, d === 'float16' ? f.map((v) => Math.round(v * 8) / 8) : f);
      await check('CumProd', [x, int('int32', [], [axis])], { exclusive: k % 2, reverse: (k >> 1) % 2 }, 26, [1]);
    }
  });
  it('CumProd: serial and workgroup scans on long and short lanes, wrapping int32 products', async () => {
    const runner = new GpuRunner(gpu), r = rng(94);
    for (const [outer, n, inner] of [[1, 3001, 1], [2, 700, 3], [3, 5, 2]]) {
      const x = new NdArray('int32', [outer, n, inner], Int32Array.from({ length: outer * n * inner }, () => r.int(-3, 3)));
      for (const [exclusive, reverse] of [[false, false], [true, true], [false, true]]) {
        const want = new Int32Array(x.size);
        scan(x.data as Int32Array, want, outer, n, inner, exclusive, reverse, 1, Math.imul);
        for (const variant of ['serial', 'workgroup'] as const) {
          const xg = runner.upload(x), [y] = runner.run(cumprod(xg, { outer, n, inner, exclusive, reverse }, variant));
          expect(Array.from((await runner.download(y)).data as Int32Array), `[${outer}, ${n}, ${inner}] ${variant}`).toEqual(Array.from(want));
          runner.release(xg); runner.release(y);
        }
      }
    }
    runner.destroy();
  });
});
