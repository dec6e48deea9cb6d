// Elementwise unary and binary arithmetic with numpy broadcasting.
import { isBigInt } from '../engine/dtype.js';
import type { TypeInfo } from '../engine/graph.js';
import { NdArray } from '../engine/tensor.js';
import { binaryBroadcast, broadcastShapes } from '../kernels/cpu/broadcast.js';
import { fail, register, tensorAt, type OpDef, type RunCtx } from './registry.js';
import { broadcastInfer, sameAsInput } from './infer-rules.js';

type NumFn = (x: number, y: number) => number;
type BigFn = (x: bigint, y: bigint) => bigint;

/** Binary op over numbers, with an optional bigint form for int64/uint64. */
export function binaryOp(op: string, fn: NumFn, big?: BigFn, extra: Partial<OpDef> = {}): OpDef {
  return {
    op,
    infer: broadcastInfer(),
    run: (ins, _a, ctx) => [binaryKernel(tensorAt(ins, 0, ctx), tensorAt(ins, 1, ctx), ctx, fn, big)],
    ...extra,
  };
}

export function binaryKernel(a: NdArray, b: NdArray, ctx: RunCtx, fn: NumFn, big?: BigFn, outDtype = a.dtype): NdArray {
  if (a.dtype !== b.dtype) fail(ctx, `inputs must share a dtype, got ${a.dtype} and ${b.dtype}`);
  const shape = broadcastShapes(a.shape, b.shape) ?? fail(ctx, `shapes [${a.shape}] and [${b.shape}] do not broadcast`);
  const out = NdArray.zeros(outDtype, shape);
  if (isBigInt(a.dtype)) {
    if (!big) fail(ctx, `dtype ${a.dtype} is not supported`);
    binaryBroadcast(a.data, a.shape, b.data, b.shape, shape, out.data, big);
  } else binaryBroadcast(a.data, a.shape, b.data, b.shape, shape, out.data, fn);
  return out;
}

/** Unary op applied per element; integer dtypes keep their storage (results wrap as the type does). */
export function unaryOp(op: string, fn: (x: number) => number, big?: (x: bigint) => bigint, extra: Partial<OpDef> = {}): OpDef {
  return {
    op,
    infer: sameAsInput,
    run: (ins, a, ctx) => {
      const x = tensorAt(ins, 0, ctx);
      return [mapUnary(x, ctx, fn, big)];
    },
    ...extra,
  };
}

export function mapUnary(x: NdArray, ctx: RunCtx, fn: (x: number) => number, big?: (x: bigint) => bigint): NdArray {
  const out = NdArray.zeros(x.dtype, x.shape), src = x.data as ArrayLike<number>, dst = out.data as Float32Array;
  if (isBigInt(x.dtype)) {
    if (!big) fail(ctx, `dtype ${x.dtype} is not supported`);
    const s = x.data as BigInt64Array, d = out.data as BigInt64Array;
    for (let i = 0; i < s.length; i++) d[i] = big(s[i]);
  } else for (let i = 0; i < src.length; i++) dst[i] = fn(src[i]);
  return out;
}

register(
  binaryOp('Add', (x, y) => x + y, (x, y) => x + y),
  binaryOp('Sub', (x, y) => x - y, (x, y) => x - y),
  binaryOp('Mul', (x, y) => x * y, (x, y) => x * y),
  unaryOp('Relu', (x) => (x > 0 ? x : 0), (x) => (x > 0n ? x : 0n)),
  unaryOp('Sigmoid', (x) => 1 / (1 + Math.exp(-x))),
);
