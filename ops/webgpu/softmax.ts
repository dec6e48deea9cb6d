// GPU lowerings of Softmax, LogSoftmax and Hardmax. Before opset 13 the input is coerced to 2-D at `axis`
// and normalised over the whole second dimension; from 13 on, along the one axis.
import type { DType } from '../../engine/dtype.js';
import { softmaxProgram, type SoftmaxKind } from '../../kernels/webgpu/softmax.js';
import { normAxis } from '../reduce.js';
import { gpuAt, registerGpu, type GpuOpDef } from '../registry.js';

const onlyFloat = (d: (DType | undefined)[]) => (!d[0] || d[0] === 'float32' || d[0] === 'float16' ? undefined : `dtype ${d[0]} is not a GPU float`);

function softmaxOp(op: string, kind: SoftmaxKind, since: number): GpuOpDef<{ axis: number }> {
  return {
    op, since, reject: onlyFloat,
    run: (ins, a, ctx) => {
      const x = gpuAt(ins, 0, ctx), rank = x.shape.length;
      if (since >= 13) return ctx.gpu.run(softmaxProgram(ctx.gpu.ctx, x, x.shape, [normAxis(ctx, a.axis, rank)], kind));
      // The 2-D coercion accepts axis == rank (rows of one element).
      const axis = a.axis === rank ? rank : normAxis(ctx, a.axis, rank), prod = (s: number[]) => s.reduce((p, q) => p * q, 1);
      return ctx.gpu.run(softmaxProgram(ctx.gpu.ctx, x, [prod(x.shape.slice(0, axis)), prod(x.shape.slice(axis))], [1], kind));
    },
  };
}

registerGpu(...([['Softmax', 'softmax'], ['LogSoftmax', 'logsoftmax'], ['Hardmax', 'hardmax']] as const)
  .flatMap(([op, kind]) => [softmaxOp(op, kind, 1), softmaxOp(op, kind, 13)]));
