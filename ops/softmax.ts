// Softmax, LogSoftmax, Hardmax. Before opset 13 the input is coerced to 2-D at `axis` (default 1) and
// normalised over the whole second dimension; from 13 on, along the single axis `axis` (default -1).
import { isFloat } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { hardmax, softmax } from '../kernels/cpu/softmax.js';
import { softmaxWasm } from '../kernels/wasm/math.js';
import { sameAsInput } from './infer-rules.js';
import { normAxis } from './reduce.js';
import { fail, register, tensorAt, type OpDef, type RunCtx } from './registry.js';

type Kernel = (x: Float32Array, out: Float32Array, outer: number, n: number, inner: number) => void;

/** [outer, n, inner] around `axis`: the 2-D coercion flattens everything from `axis` into n. */
function layout(shape: readonly number[], axis: number, coerce2d: boolean): [number, number, number] {
  const prod = (a: number, b: number) => shape.slice(a, b).reduce((p, d) => p * d, 1);
  return coerce2d ? [prod(0, axis), prod(axis, shape.length), 1] : [prod(0, axis), shape[axis], prod(axis + 1, shape.length)];
}

/**
 * `log` says which of Softmax/LogSoftmax an op is (undefined for Hardmax): float32 rows along the last
 * axis then run in WebAssembly SIMD; float64, narrow floats and other axes stay in TypeScript.
 */
function softmaxOp(op: string, since: number, kernel: Kernel, log?: boolean): OpDef<{ axis: number }> {
  const coerce2d = since < 13;
  return {
    op, since, infer: sameAsInput,
    attrs: (a) => ({ axis: a.int('axis', coerce2d ? 1 : -1) }),
    run: (ins, a, ctx: RunCtx) => {
      const x = tensorAt(ins, 0, ctx), rank = x.shape.length;
      if (!isFloat(x.dtype)) fail(ctx, `input 0 ('input') has dtype ${x.dtype}, expected a float tensor`);
      // The 2-D coercion accepts axis == rank (everything in the batch, rows of one element).
      const axis = coerce2d && a.axis === rank ? rank : normAxis(ctx, a.axis, rank);
      const out = NdArray.zeros(x.dtype, x.shape), [outer, n, inner] = layout(x.shape, axis, coerce2d);
      const xd = x.data as Float32Array, od = out.data as Float32Array;
      const fast = log !== undefined && x.dtype === 'float32' && inner === 1 && softmaxWasm(xd, od, outer, n, log);
      if (!fast) kernel(xd, od, outer, n, inner);
      return [out];
    },
  };
}

const kernels: [string, Kernel, boolean?][] = [
  ['Softmax', (x, o, a, n, i) => softmax(x, o, a, n, i, false), false],
  ['LogSoftmax', (x, o, a, n, i) => softmax(x, o, a, n, i, true), true],
  ['Hardmax', hardmax],
];
register(...kernels.flatMap(([op, k, log]) => [softmaxOp(op, 1, k, log), softmaxOp(op, 13, k, log)]));
