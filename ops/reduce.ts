// Reduce* (ten reductions over a set of axes) and ArgMax/ArgMin. Axes are an attribute up to opset 12
// (ReduceSum) or 17 (the others) and an optional input after. Integer inputs reduce in their own
// arithmetic (32-bit products wrap, int64 stays exact); floats, narrow ones included, in float64.
import { isBigInt, isFloat, isInteger, type DType } from '../engine/dtype.js';
import type { Dim, Node, TypeInfo } from '../engine/graph.js';
import { NdArray } from '../engine/tensor.js';
import { argReduce, reducePlan, reduceInto, type Fold } from '../kernels/cpu/reduce.js';
import { dtypeOf, shapeOf, tensorType } from './infer-rules.js';
import { fail, optTensor, register, tensorAt, type Attrs, type OpDef } from './registry.js';

type Ctx = { node: Node };

/** `axis` in [-rank, rank-1], made non-negative. */
export function normAxis(ctx: Ctx, axis: number, rank: number, what = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) fail(ctx, `${what} ${axis} is out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

const INT_BITS: Partial<Record<DType, number>> = {
  int8: 8, uint8: 8, int16: 16, uint16: 16, int32: 32, uint32: 32, int64: 64, uint64: 64, int4: 4, uint4: 4, int2: 2, uint2: 2, bool: 1,
};

/** The smallest (or largest) value of a dtype: the identity of Max (or Min) over an empty set. */
export function extreme(d: DType, high: boolean): number | bigint {
  if (isFloat(d)) return high ? Infinity : -Infinity;
  const bits = INT_BITS[d]!, signed = d.startsWith('int');
  if (isBigInt(d)) return high ? (1n << BigInt(signed ? 63 : 64)) - 1n : signed ? -(1n << 63n) : 0n;
  return high ? 2 ** (signed ? bits - 1 : bits) - 1 : signed ? -(2 ** (bits - 1)) : 0;
}

interface FoldEnv { dtype: DType; big: boolean; maxes: () => ArrayLike<number> }
interface Reducer { fold: (e: FoldEnv) => Fold; /** exact on int64/uint64 storage; otherwise bigints go through float64 */ big?: boolean; bool?: boolean }

// 32-bit and narrower ints multiply with Math.imul: the low bits are exact and the store wraps like C.
const smallInt = (e: FoldEnv) => isInteger(e.dtype) && !e.big;
const zero = (e: FoldEnv) => (e.big ? 0n : 0);
const add = (a: any, v: any) => a + v;
const abs = (v: any) => (v < 0 ? -v : v);
export const imul = (a: any, v: any) => Math.imul(a, v);
/** int64 product wrapped at every step (congruent to the wrapped result, and keeps bigints small). */
export const mul64 = (a: bigint, v: bigint) => BigInt.asIntN(64, a * v);

const REDUCERS: Record<string, Reducer> = {
  ReduceSum: { big: true, fold: (e) => ({ init: zero(e), step: add }) },
  ReduceMean: { big: true, fold: (e) => ({ init: zero(e), step: add, fin: (a: any, n: number) => (!e.big ? a / n : n ? a / BigInt(n) : 0n) }) },
  ReduceMax: { big: true, bool: true, fold: (e) => ({ init: extreme(e.dtype, false), step: (a, v) => (v > a || v !== v ? v : a) }) },
  ReduceMin: { big: true, bool: true, fold: (e) => ({ init: extreme(e.dtype, true), step: (a, v) => (v < a || v !== v ? v : a) }) },
  ReduceProd: {
    big: true,
    fold: (e) => ({ init: e.big ? 1n : 1, step: e.big ? mul64 : smallInt(e) ? imul : (a, v) => a * v }),
  },
  ReduceL1: { big: true, fold: (e) => ({ init: zero(e), step: (a, v) => a + abs(v) }) },
  ReduceSumSquare: { big: true, fold: (e) => ({ init: zero(e), step: smallInt(e) ? (a, v) => a + Math.imul(v, v) : (a, v) => a + v * v }) },
  ReduceL2: { fold: () => ({ init: 0, step: (a, v) => a + v * v, fin: Math.sqrt }) },
  ReduceLogSum: { fold: () => ({ init: 0, step: add, fin: Math.log }) },
  // Shifted by each output's max so exp cannot overflow; an infinite max is left unshifted.
  ReduceLogSumExp: {
    fold: (e) => {
      const m = e.maxes(), shift = (o: number) => (Number.isFinite(m[o]) ? m[o] : 0);
      return { init: 0, step: (a, v, o) => a + Math.exp(v - shift(o)), fin: (a, _n, o) => shift(o) + Math.log(a) };
    },
  },
};

interface ReduceAttrs { keepdims: boolean; noop: boolean; axes?: number[]; axesInput: boolean }

function checkDtype(ctx: Ctx, d: DType, bool: boolean | undefined) {
  if (!(isFloat(d) || isInteger(d) || (bool && d === 'bool'))) fail(ctx, `input 0 ('data') has dtype ${d}, expected a numeric${bool ? ' or bool' : ''} tensor`);
}

/** The axes to reduce, non-negative and sorted; [] reduces nothing (noop_with_empty_axes). */
function reduceAxes(ctx: Ctx, a: ReduceAttrs, given: number[] | undefined, rank: number): number[] {
  if (!given || !given.length) return a.noop ? [] : [...Array(rank).keys()];
  const axes = given.map((x) => normAxis(ctx, x, rank, 'axes entry'));
  if (new Set(axes).size !== axes.length) fail(ctx, `axes [${given}] repeat an axis`);
  return axes.sort((x, y) => x - y);
}

const reducedShape = (shape: readonly number[], axes: number[], keep: boolean) =>
  shape.flatMap((d, i) => (axes.includes(i) ? (keep ? [1] : []) : [d]));

function runReduce(r: Reducer, x: NdArray, axes: number[], keep: boolean, ctx: Ctx): NdArray {
  checkDtype(ctx, x.dtype, r.bool);
  const plan = reducePlan(x.shape, axes), big = isBigInt(x.dtype) && !!r.big;
  // Without exact bigint arithmetic, int64 data reduces as float64 and is truncated back.
  const src: ArrayLike<any> = isBigInt(x.dtype) && !big ? Float64Array.from(x.data as BigInt64Array, Number) : (x.data as ArrayLike<any>);
  const env: FoldEnv = {
    dtype: big || !isBigInt(x.dtype) ? x.dtype : 'float64', big,
    maxes: () => { const m = new Float64Array(plan.bases.length); reduceInto(src, plan, REDUCERS.ReduceMax.fold({ ...env, dtype: 'float64' }), m); return m; },
  };
  const out = NdArray.zeros(x.dtype, reducedShape(x.shape, axes, keep));
  if (isBigInt(x.dtype) && !big) {
    const tmp = new Float64Array(out.size);
    reduceInto(src, plan, r.fold(env), tmp);
    const d = out.data as BigInt64Array;
    for (let i = 0; i < tmp.length; i++) d[i] = Number.isFinite(tmp[i]) ? BigInt(Math.trunc(tmp[i])) : 0n;
  } else reduceInto(src, plan, r.fold(env), out.data);
  return out;
}

/** Output type: exact when the axes are known at session creation, else rank-preserving with keepdims. */
function inferReduce(ins: (TypeInfo | undefined)[], a: ReduceAttrs, ctx: Ctx): TypeInfo[] {
  const shape = shapeOf(ins[0]), dtype = dtypeOf(ins[0]);
  if (!shape) return [tensorType(dtype)];
  if (a.axesInput && ctx.node.inputs[1] && shapeOf(ins[1])?.[0] !== 0) {
    return [tensorType(dtype, a.keepdims ? shape.map((d): Dim => (d === 1 ? 1 : null)) : undefined)];
  }
  const axes = !a.axes?.length ? (a.noop && a.axesInput ? [] : shape.map((_, i) => i)) : a.axes.map((x) => (x < 0 ? x + shape.length : x));
  return [tensorType(dtype, shape.flatMap((d, i) => (axes.includes(i) ? (a.keepdims ? [1] : []) : [d])))];
}

function reduceOp(op: string, inputSince: number): OpDef<ReduceAttrs>[] {
  const r = REDUCERS[op];
  const attrs = (axesInput: boolean) => (a: Attrs): ReduceAttrs => ({
    keepdims: a.int('keepdims', 1) !== 0,
    noop: axesInput && a.int('noop_with_empty_axes', 0) !== 0,
    axes: !axesInput && a.has('axes') ? a.ints('axes') : undefined,
    axesInput,
  });
  const run = (ins: Parameters<OpDef['run']>[0], a: ReduceAttrs, ctx: Ctx) => {
    const x = tensorAt(ins, 0, ctx), given = a.axesInput ? optTensor(ins, 1, ctx)?.numbers() : a.axes;
    return [runReduce(r, x, reduceAxes(ctx, a, given, x.shape.length), a.keepdims, ctx)];
  };
  return [
    { op, since: 1, attrs: attrs(false), infer: inferReduce, run },
    { op, since: inputSince, attrs: attrs(true), infer: inferReduce, run },
  ];
}

interface ArgAttrs { axis: number; keepdims: boolean; last: boolean }

function argOp(op: 'ArgMax' | 'ArgMin'): OpDef<ArgAttrs> {
  const better = op === 'ArgMax' ? (a: any, b: any) => a > b : (a: any, b: any) => a < b;
  return {
    op,
    attrs: (a) => ({ axis: a.int('axis', 0), keepdims: a.int('keepdims', 1) !== 0, last: a.int('select_last_index', 0) !== 0 }),
    infer: (ins, a) => {
      const shape = shapeOf(ins[0]);
      if (!shape) return [tensorType('int64')];
      const axis = a.axis < 0 ? a.axis + shape.length : a.axis;
      return [tensorType('int64', shape.flatMap((d, i) => (i === axis ? (a.keepdims ? [1] : []) : [d])))];
    },
    run: (ins, a, ctx) => {
      const x = tensorAt(ins, 0, ctx), rank = x.shape.length;
      checkDtype(ctx, x.dtype, false);
      const axis = normAxis(ctx, a.axis, rank), n = x.shape[axis], prod = (ds: readonly number[]) => ds.reduce((p, d) => p * d, 1);
      if (n === 0) fail(ctx, `input 0 ('data') has an empty axis ${axis}: there is no ${op === 'ArgMax' ? 'maximum' : 'minimum'}`);
      const out = NdArray.zeros('int64', reducedShape(x.shape, [axis], a.keepdims));
      argReduce(x.data as ArrayLike<any>, prod(x.shape.slice(0, axis)), n, prod(x.shape.slice(axis + 1)), better, a.last, out.data as BigInt64Array);
      return [out];
    },
  };
}

register(
  ...reduceOp('ReduceSum', 13),
  ...['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare'].flatMap((op) => reduceOp(op, 18)),
  argOp('ArgMax'),
  argOp('ArgMin'),
);
