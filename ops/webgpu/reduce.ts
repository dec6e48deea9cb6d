// GPU lowerings of Reduce* and ArgMax/ArgMin: the axes (attribute, or input 1 read on the CPU) decide the
// row geometry; the kernel does the rest (kernels/webgpu/reduce.ts).
import type { DType } from '../../engine/dtype.js';
import { argProgram, reduceProgram, type Fold } from '../../kernels/webgpu/reduce.js';
import { NdArray } from '../../engine/tensor.js';
import { normAxis } from '../reduce.js';
import { fail, gpuAt, registerGpu, type GpuCtx, type GpuOpDef } from '../registry.js';

const NUMERIC = new Set<DType | undefined>(['float32', 'float16', 'int32', 'uint32', 'int8', 'uint8', 'int16', 'uint16', 'int4', 'uint4', 'int2', 'uint2']);
const numericData = (d: (DType | undefined)[]) => (!d[0] || NUMERIC.has(d[0]) ? undefined : `dtype ${d[0]} has no 32-bit GPU arithmetic for this op`);

interface ReduceAttrs { keepdims: boolean; noop: boolean; axes?: number[]; axesInput: boolean }

/** Sorted non-negative axes; none given reduces all of them, or none with noop_with_empty_axes. */
function reduceAxes(ctx: GpuCtx, a: ReduceAttrs, given: number[] | undefined, rank: number): number[] {
  if (!given?.length) return a.noop ? [] : [...Array(rank).keys()];
  const axes = given.map((x) => normAxis(ctx, x, rank, 'axes entry'));
  if (new Set(axes).size !== axes.length) fail(ctx, `axes [${given}] repeat an axis`);
  return axes.sort((x, y) => x - y);
}

const reducedShape = (shape: readonly number[], axes: number[], keep: boolean) => shape.flatMap((d, i) => (axes.includes(i) ? (keep ? [1] : []) : [d]));

function reduceOp(op: string, fold: Fold): GpuOpDef<ReduceAttrs> {
  return {
    op, cpuInputs: [1], reject: numericData,
    run: (ins, a, ctx) => {
      const x = gpuAt(ins, 0, ctx), axesIn = ins[1];
      if (axesIn !== undefined && !(axesIn instanceof NdArray)) fail(ctx, 'input 1 (axes) should be a CPU tensor');
      const axes = reduceAxes(ctx, a, a.axesInput ? axesIn?.numbers() : a.axes, x.shape.length);
      return ctx.gpu.run(reduceProgram(ctx.gpu.ctx, x, axes, fold, reducedShape(x.shape, axes, a.keepdims)));
    },
  };
}

const FOLDS: [string, Fold][] = [
  ['ReduceSum', 'sum'], ['ReduceMean', 'mean'], ['ReduceMax', 'max'], ['ReduceMin', 'min'], ['ReduceProd', 'prod'], ['ReduceL1', 'l1'],
  ['ReduceL2', 'l2'], ['ReduceLogSum', 'logsum'], ['ReduceLogSumExp', 'logsumexp'], ['ReduceSumSquare', 'sumsquare'],
];

interface ArgAttrs { axis: number; keepdims: boolean; last: boolean }

const argOp = (op: 'ArgMax' | 'ArgMin'): GpuOpDef<ArgAttrs> => ({
  op, reject: numericData,
  run: (ins, a, ctx) => {
    const x = gpuAt(ins, 0, ctx), axis = normAxis(ctx, a.axis, x.shape.length);
    if (x.shape[axis] === 0) fail(ctx, `input 0 ('data') has an empty axis ${axis}: there is no ${op === 'ArgMax' ? 'maximum' : 'minimum'}`);
    return ctx.gpu.run(argProgram(ctx.gpu.ctx, x, axis, op === 'ArgMax', a.last, reducedShape(x.shape, [axis], a.keepdims)));
  },
});

registerGpu(...FOLDS.map(([op, fold]) => reduceOp(op, fold)), argOp('ArgMax'), argOp('ArgMin'));
