// TopK, CumSum, CumProd: per-row selection and scans along one axis.
import { isBigInt, isFloat, isInteger, type DType } from '../engine/dtype.js';
import type { Node } from '../engine/graph.js';
import { NdArray } from '../engine/tensor.js';
import { scan, topK } from '../kernels/cpu/sort.js';
import { sameAsInput, shapeOf, dtypeOf, tensorType } from './infer-rules.js';
import { imul, mul64, normAxis } from './reduce.js';
import { fail, register, tensorAt, type OpDef } from './registry.js';

type Ctx = { node: Node };

const checkNumeric = (ctx: Ctx, d: DType, what: string) => {
  if (!isFloat(d) && !isInteger(d)) fail(ctx, `${what} has dtype ${d}, expected a numeric tensor`);
};

/** [outer, n, inner] around `axis`. */
function around(shape: readonly number[], axis: number): [number, number, number] {
  const prod = (a: number, b: number) => shape.slice(a, b).reduce((p, d) => p * d, 1);
  return [prod(0, axis), shape[axis], prod(axis + 1, shape.length)];
}

/** A single integer from a 0-D or one-element tensor input (TopK's K, CumSum's axis). */
function scalarInput(ins: Parameters<OpDef['run']>[0], i: number, ctx: Ctx, what: string): number {
  const t = tensorAt(ins, i, ctx);
  if (t.size !== 1 || !isInteger(t.dtype)) fail(ctx, `input ${i} ('${what}') should hold one integer, got ${t.dtype} [${t.shape}]`);
  return Number(t.data[0]);
}

/** `sorted` is not read: unsorted order is unspecified, so the sorted order serves for both. */
interface TopKAttrs { axis: number; largest: boolean; k?: number }

function topKOp(since: number): OpDef<TopKAttrs> {
  return {
    op: 'TopK', since,
    attrs: (a) => ({ axis: a.int('axis', -1), largest: since < 11 || a.int('largest', 1) !== 0, k: since < 10 ? a.int('k') : undefined }),
    infer: (ins, a) => {
      const shape = shapeOf(ins[0]), axis = shape && (a.axis < 0 ? a.axis + shape.length : a.axis);
      const out = shape?.map((d, i) => (i === axis ? a.k ?? null : d));
      return [tensorType(dtypeOf(ins[0]), out), tensorType('int64', out)];
    },
    run: (ins, a, ctx) => {
      const x = tensorAt(ins, 0, ctx);
      checkNumeric(ctx, x.dtype, "input 0 ('X')");
      const axis = normAxis(ctx, a.axis, x.shape.length), k = a.k ?? scalarInput(ins, 1, ctx, 'K');
      if (k < 0 || k > x.shape[axis]) fail(ctx, `k = ${k} is outside [0, ${x.shape[axis]}] (the size of axis ${axis})`);
      const shape = x.shape.map((d, i) => (i === axis ? k : d));
      const vals = NdArray.zeros(x.dtype, shape), idx = NdArray.zeros('int64', shape);
      const [outer, n, inner] = around(x.shape, axis);
      topK(x.data as ArrayLike<number>, outer, n, inner, k, a.largest, vals.data, idx.data as BigInt64Array);
      return [vals, idx];
    },
  };
}

interface ScanAttrs { exclusive: boolean; reverse: boolean }

/** CumSum/CumProd; 32-bit ints multiply with Math.imul so products wrap exactly like the stored type. */
function scanOp(op: 'CumSum' | 'CumProd', since: number): OpDef<ScanAttrs> {
  return {
    op, since, infer: sameAsInput,
    attrs: (a) => ({ exclusive: a.int('exclusive', 0) !== 0, reverse: a.int('reverse', 0) !== 0 }),
    run: (ins, a, ctx) => {
      const x = tensorAt(ins, 0, ctx), big = isBigInt(x.dtype);
      checkNumeric(ctx, x.dtype, "input 0 ('x')");
      const axis = normAxis(ctx, scalarInput(ins, 1, ctx, 'axis'), x.shape.length);
      const out = NdArray.zeros(x.dtype, x.shape);
      const [identity, fn] = op === 'CumSum'
        ? [big ? 0n : 0, (p: any, v: any) => p + v]
        : [big ? 1n : 1, big ? mul64 : isInteger(x.dtype) ? imul : (p: any, v: any) => p * v];
      scan(x.data as ArrayLike<number>, out.data, ...around(x.shape, axis), a.exclusive, a.reverse, identity, fn);
      return [out];
    },
  };
}

register(topKOp(1), topKOp(10), topKOp(11), scanOp('CumSum', 11), scanOp('CumProd', 26));
