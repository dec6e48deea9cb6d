// GPU lowerings of MaxPool (with Indices), AveragePool, LpPool and the Global pools. Window geometry
// (pads, auto_pad, ceil_mode, dilations) is resolved exactly as on the CPU (ops/conv.ts).
import type { DType } from '../../engine/dtype.js';
import { poolProgram, type PoolHow } from '../../kernels/webgpu/pool.js';
import { reduceProgram } from '../../kernels/webgpu/reduce.js';
import { resolveWindow, spatialOf, to3, type WindowAttrs } from '../conv.js';
import { fail, gpuAt, registerGpu, type GpuOpDef } from '../registry.js';

const onlyFloat = (d: (DType | undefined)[]) => (!d[0] || d[0] === 'float32' || d[0] === 'float16' ? undefined : `dtype ${d[0]} is not a GPU float`);

interface PoolAttrs extends WindowAttrs { kernel: number[]; storageOrder: number; countPad: boolean; p: number }

function windowPool(op: string, kind: PoolHow['kind']): GpuOpDef<PoolAttrs> {
  return {
    op, reject: onlyFloat,
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
