// GPU lowerings of MaxPool (with Indices), AveragePool, LpPool and the Global pools. Window geometry
// (pads, auto_pad, ceil_mode, dilations) is resolved exactly as on the CPU (ops/conv.ts).
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { poolProgram, unpoolProgram, type PoolHow } from '../../kernels/webgpu/pool.js';
import { reduceProgram } from '../../kernels/webgpu/reduce.js';
import { resolveWindow, spatialOf, to3, type WindowAttrs } from '../conv.js';
import { fail, gpuAt, registerGpu, type GpuOpDef } from '../registry.js';

const onlyFloat = (d: (DType | undefined)[]) => (!d[0] || d[0] === 'float32' || d[0] === 'float16' ? undefined : `dtype ${d[0]} is not a GPU float`);
/** MaxPool also takes int8 and uint8 (opset 12), as the CPU does; the other pools are float only. */
const maxPoolTypes = (d: (DType | undefined)[]) => (d[0] === 'int8' || d[0] === 'uint8' ? undefined : onlyFloat(d));

interface PoolAttrs extends WindowAttrs { kernel: number[]; storageOrder: number; countPad: boolean; p: number }

function windowPool(op: string, kind: PoolHow['kind']): GpuOpDef<PoolAttrs> {
  return {
    op, reject: kind === 'max' ? maxPoolTypes : onlyFloat,
    run: (ins, at, ctx) => {
      const x = gpuAt(ins, 0, ctx), inS = spatialOf(x.shape, ctx);
      if (at.kernel.length !== inS.length) fail(ctx, `kernel_shape [${at.kernel}] should have ${inS.length} dims for input 0 (X) of shape [${x.shape}]`);
      const win = resolveWindow(at, inS, at.kernel, ctx);
      const how: PoolHow = kind === 'max' ? { kind, indices: !!ctx.node.outputs[1], colMajor: at.storageOrder === 1 }
        : kind === 'avg' ? { kind, countPad: at.countPad } : { kind, p: at.p };
      const geom = {
        inS: to3(inS, 1), out: to3(win.out, 1), k: to3(win.kernel, 1), s: to3(win.strides, 1), d: to3(win.dilations, 1),
        p: to3(win.padBegin, 0), pe: to3(win.padEnd, 0),
      };
      return ctx.gpu.run(poolProgram(x, [x.shape[0], x.shape[1], ...win.out], geom, how));
    },
  };
}

/** GlobalMaxPool / GlobalAveragePool: a max or mean over every spatial dim, kept as 1s. */
const globalPool = (op: string, fold: 'max' | 'mean'): GpuOpDef => ({
  op, reject: onlyFloat,
  run: (ins, _a, ctx) => {
    const x = gpuAt(ins, 0, ctx), r = x.shape.length;
    if (r < 2) fail(ctx, `input 0 (X) should be N x C x D1..., got shape [${x.shape}]`);
    const axes = [...Array(r).keys()].slice(2);
    return ctx.gpu.run(reduceProgram(ctx.gpu.ctx, x, axes, fold, x.shape.map((d, i) => (i < 2 ? d : 1))));
  },
});

registerGpu(
  windowPool('MaxPool', 'max'), windowPool('AveragePool', 'avg'), windowPool('LpPool', 'lp'),
  globalPool('GlobalMaxPool', 'max'), globalPool('GlobalAveragePool', 'mean'),
);

/**
 * MaxUnpool: the indices (and output_shape) are read on the CPU, checked with the CPU's errors and turned
 * into each output element's source (the last x element written there, as the CPU's in-order scatter
 * leaves it); the values then move on the GPU in one gather.
 */
registerGpu({
  op: 'MaxUnpool', since: 9, cpuInputs: [1, 2], reject: onlyFloat,
  run: (ins, at: PoolAttrs, ctx) => {
    const x = gpuAt(ins, 0, ctx), ind = ins[1], os = ins[2], inS = spatialOf(x.shape, ctx), r = inS.length;
    if (!(ind instanceof NdArray) || ind.dtype !== 'int64' || ind.size !== x.size) fail(ctx, `input 1 (I) should be int64 with the shape of X [${x.shape}], got ${ind?.dtype} [${ind?.shape}]`);
    if (at.kernel.length !== r) fail(ctx, `kernel_shape [${at.kernel}] should have ${r} dims for input 0 (X) of shape [${x.shape}]`);
    const from = [x.shape[0], x.shape[1], ...inS.map((n, i) => (n - 1) * (at.strides?.[i] ?? 1) + at.kernel[i] - (at.pads?.[i] ?? 0) - (at.pads?.[r + i] ?? 0))];
    const to = os instanceof NdArray ? os.numbers() : from;
    if (to.length !== x.shape.length || to[0] !== x.shape[0] || to[1] !== x.shape[1]) fail(ctx, `input 2 (output_shape) [${to}] should be [${x.shape.slice(0, 2)}, ...] with rank ${x.shape.length}`);
    const src = unpoolSources(ind.data as BigInt64Array, from, to);
    if (typeof src === 'number') fail(ctx, `input 1 (I) holds index ${ind.data[src]}, outside the unpooled shape [${from}] or the output [${to}]`);
    const srcT = ctx.gpu.upload(new NdArray('int32', [src.length], src));
    try {
      return ctx.gpu.run(unpoolProgram(x, srcT, to));
    } finally {
      ctx.gpu.release(srcT); // the dispatch keeps its read
    }
  },
});

/** For each element of the `to`-shaped output, the last j whose index (flat in `from`) lands there, or -1;
 *  a number instead: the position of the first index outside `from` or `to` (kernels/cpu/pool.ts unpool). */
function unpoolSources(indices: BigInt64Array, from: readonly number[], to: readonly number[]): Int32Array | number {
  const total = from.reduce((a, b) => a * b, 1), same = from.every((d, i) => d === to[i]);
  const src = new Int32Array(to.reduce((a, b) => a * b, 1)).fill(-1);
  for (let j = 0; j < indices.length; j++) {
    let i = Number(indices[j]);
    if (i < 0 || i >= total) return j;
    if (!same) {
      let at = 0, stride = 1;
      for (let d = from.length - 1; d >= 0; d--) {
        const c = i % from[d];
        if (c >= to[d]) return j;
        at += c * stride; stride *= to[d]; i = (i - c) / from[d];
      }
      i = at;
    }
    src[i] = j;
  }
  return src;
}
