// Softmax, LogSoftmax, Hardmax. Before opset 13 the input is coerced to 2-D at `axis` (default 1) and
// normalised over the whole second dimension; from 13 on, along the single axis `axis` (default -1).
import { isFloat } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { hardmax, softmax } from '../kernels/cpu/softmax.js';
import { sameAsInput } from './infer-rules.js';
import { normAxis } from './reduce.js';
import { fail, register, tensorAt, type OpDef, type RunCtx } from './registry.js';

type Kernel = (x: Float32Array, out: Float32Array, outer: number, n: number, inner: number) => void;

/** [outer, n, inner] around `axis`: the 2-D coercion flattens everything from `axis` into n. */
function layout(shape: readonly number[], axis: number, coerce2d: boolean): [number, number, number] {
  const prod = (a: number, b: number) => shape.slice(a, b).reduce((p, d) => p * d, 1);
  return coerce2d ? [prod(0, axis), prod(axis, shape.length), 1] : [prod(0, axis), shape[axis], prod(axis + 1, shape.length)];
}

function softmaxOp(op: string, since: number, kernel: Kernel): OpDef<{ axis: number }> {
  const coerce2d = since < 13;
  return {
    op, since, infer: sameAsInput,
    attrs: (a) => ({ axis: a.int('axis', coerce2d ? 1 : -1) }),
    run: (ins, a, ctx: RunCtx) => {
      const x = tensorAt(ins, 0, ctx), rank = x.shape.length;
      if (!isFloat(x.dtype)) fail(ctx, `input 0 ('input') has dtype ${x.dtype}, expected a float tensor`);
      // The 2-D coercion accepts axis == rank (everything in the batch, rows of one element).
      const axis = coerce2d && a.axis === rank ? rank : normAxis(ctx, a.axis, rank);
      const out = NdArray.zeros(x.dtype, x.shape);
      kernel(x.data as Float32Array, out.data as Float32Array, ...layout(x.shape, axis, coerce2d));
      return [out];
    },
  };
}

const kernels: [string, Kernel][] = [
  ['Softmax', (x, o, a, n, i) => softmax(x, o, a, n, i, false)],
  ['LogSoftmax', (x, o, a, n, i) => softmax(x, o, a, n, i, true)],
  ['Hardmax', hardmax],
];
register(...kernels.flatMap(([op, k]) => [softmaxOp(op, 1, k), softmaxOp(op, 13, k)]));
