// Elementwise arithmetic, math and activation ops with numpy broadcasting. Integer results wrap as the
// storage does (typed-array stores truncate toward zero and are modular); int64/uint64 compute in
// bigint, so they stay exact. Narrow floats compute in float32; the engine rounds their outputs.
import { isBigInt, isFloat, type DType } from '../engine/dtype.js';
import { NdArray, type Value } from '../engine/tensor.js';
import { broadcastShapes } from '../kernels/cpu/broadcast.js';
import * as K from '../kernels/cpu/elementwise.js';
import { each1, each2, type Row1, type Row2 } from '../kernels/cpu/elementwise.js';
import { powC, powWrap, roundHalfEven } from '../kernels/cpu/math.js';
import { binaryWasm, stepRow, type BinaryOp } from '../kernels/wasm/elementwise.js';
import { type Attrs, fail, optTensor, register, tensorAt, type OpDef, type RunCtx } from './registry.js';
import { broadcastInfer, dtypeOf, sameAsInput, shapeOf, tensorType } from './infer-rules.js';

type Ins = (Value | undefined)[];

export const dtypes = (...groups: DType[][]): ReadonlySet<DType> => new Set(groups.flat());
export const FLOATS: DType[] = ['float32', 'float64', 'float16', 'bfloat16'];
const SINTS: DType[] = ['int8', 'int16', 'int32', 'int64'];
const UINTS: DType[] = ['uint8', 'uint16', 'uint32', 'uint64'];
export const FLOAT = dtypes(FLOATS), SIGNED = dtypes(FLOATS, SINTS), NUMERIC = dtypes(FLOATS, SINTS, UINTS);
export const INTS = dtypes(SINTS, UINTS), UINT = dtypes(UINTS), BOOL = dtypes(['bool']);

const inputName = (ctx: RunCtx, i: number) => `input ${i} ('${ctx.node.inputs[i] ?? ''}')`;

/** Input i as a tensor whose dtype is one of `types`. */
export function typedInput(ins: Ins, i: number, types: ReadonlySet<DType>, ctx: RunCtx): NdArray {
  const x = tensorAt(ins, i, ctx);
  if (!types.has(x.dtype)) fail(ctx, `${inputName(ctx, i)} has dtype ${x.dtype}; expected one of ${[...types].join(', ')}`);
  return x;
}

export function sameDtype(x: NdArray, i: number, ref: NdArray, ctx: RunCtx): void {
  if (x.dtype !== ref.dtype) fail(ctx, `${inputName(ctx, i)} has dtype ${x.dtype}; expected ${ref.dtype}, the dtype of input 0`);
}

/** `row` over the broadcast of a and b; `wasm` names the op when float32 storage may take the WebAssembly kernel. */
export function broadcast2(a: NdArray, b: NdArray, row: Row2, outDtype: DType, ctx: RunCtx, wasm?: BinaryOp): NdArray {
  const shape = broadcastShapes(a.shape, b.shape) ?? fail(ctx, `input shapes [${a.shape}] and [${b.shape}] do not broadcast`);
  const out = NdArray.uninit(outDtype, shape);
  if (!wasm || !binaryWasm(wasm, a.data, a.shape, b.data, b.shape, shape, out.data)) K.broadcastRows(a.data, a.shape, b.data, b.shape, shape, out.data, row);
  return out;
}

export function mapUnary(x: NdArray, row: Row1, outDtype = x.dtype): NdArray {
  const out = NdArray.uninit(outDtype, x.shape);
  row(out.data, x.data, x.data.length);
  return out;
}

// Before opset 7, binary ops broadcast B only when broadcast=1, with B's dims starting at A's `axis`.
interface Legacy { axis?: number }
const legacyAttrs = (a: Attrs, opset: number): Legacy => (opset < 7 && a.int('broadcast', 0) && a.has('axis') ? { axis: a.int('axis') } : {});
function alignLegacy(a: NdArray, b: NdArray, axis: number | undefined): NdArray {
  if (axis === undefined) return b;
  const trailing = a.shape.length - (axis < 0 ? axis + a.shape.length : axis) - b.shape.length;
  return b.reshape([...b.shape, ...new Array<number>(Math.max(0, trailing)).fill(1)]);
}

export interface BinarySpec<A> {
  types: ReadonlySet<DType>;
  /** B's dtypes when B may differ from A (Pow); otherwise B must have A's dtype. */
  rhs?: ReadonlySet<DType>;
  /** Output dtype; A's by default. */
  out?: DType;
  row: (a: DType, attrs: A, b: DType) => Row2;
  attrs?: (a: Attrs, opset: number) => A;
  since?: number;
  /** The WebAssembly kernel of this op for float storage (kernels/wasm/elementwise.ts), if it has one. */
  wasm?: BinaryOp;
}

export function binaryOp<A = object>(op: string, s: BinarySpec<A>): OpDef<A & Legacy> {
  return {
    op, since: s.since,
    attrs: (a, opset) => ({ ...(s.attrs?.(a, opset) as A), ...legacyAttrs(a, opset) }),
    infer: (ins, a) => (a.axis === undefined ? broadcastInfer(s.out)(ins) : [tensorType(s.out ?? dtypeOf(ins[0]), shapeOf(ins[0]))]),
    run: (ins, a, ctx) => {
      const x = typedInput(ins, 0, s.types, ctx), y = typedInput(ins, 1, s.rhs ?? s.types, ctx);
      if (!s.rhs) sameDtype(y, 1, x, ctx);
      return [broadcast2(x, alignLegacy(x, y, a.axis), s.row(x.dtype, a, y.dtype), s.out ?? x.dtype, ctx, s.wasm)];
    },
  };
}

export interface UnarySpec<A> {
  types: ReadonlySet<DType>;
  row: (d: DType, attrs: A) => Row1;
  out?: DType;
  attrs?: (a: Attrs, opset: number) => A;
  since?: number;
}

export function unaryOp<A = object>(op: string, s: UnarySpec<A>): OpDef<A> {
  return {
    op, since: s.since, attrs: s.attrs,
    infer: s.out ? (ins) => [tensorType(s.out, shapeOf(ins[0]))] : sameAsInput,
    run: (ins, a, ctx) => {
      const x = typedInput(ins, 0, s.types, ctx);
      return [mapUnary(x, s.row(x.dtype, a), s.out)];
    },
  };
}

/** Float-only op with its own row kernel (the common ones). */
const hot = (op: string, row: Row1, since?: number) => unaryOp(op, { types: FLOAT, row: () => row, since });
/** Float-only op with an element function. */
const math = (op: string, f: (x: number) => number, since?: number) => unaryOp(op, { types: FLOAT, row: () => each1(f), since });
/** Float-only op whose element function depends on attributes. */
const act = <A>(op: string, attrs: (a: Attrs, opset: number) => A, fn: (a: A) => (x: number) => number, since?: number) =>
  unaryOp(op, { types: FLOAT, attrs, row: (_d, a) => each1(fn(a)), since });
/** Numeric op with a row for number storage and an element function for bigints. */
const numeric = (op: string, types: ReadonlySet<DType>, num: Row1, big: (x: bigint) => bigint, since?: number) =>
  unaryOp(op, { types, row: (d) => (isBigInt(d) ? each1(big) : num), since });

const softplus = (x: number) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

register(
  hot('Exp', stepRow(['exp'], K.exp)), hot('Log', K.log), hot('Sqrt', K.sqrt), hot('Reciprocal', K.reciprocal),
  hot('Tanh', stepRow(['tanh'], K.tanh)), hot('Sigmoid', stepRow(['sigmoid'], K.sigmoid)), hot('Erf', stepRow(['erf'], K.erfRow), 9),
  math('Floor', Math.floor), math('Ceil', Math.ceil), math('Round', roundHalfEven, 11),
  math('Sin', Math.sin, 7), math('Cos', Math.cos, 7), math('Tan', Math.tan, 7),
  math('Asin', Math.asin, 7), math('Acos', Math.acos, 7), math('Atan', Math.atan, 7),
  math('Sinh', Math.sinh, 9), math('Cosh', Math.cosh, 9),
  math('Asinh', Math.asinh, 9), math('Acosh', Math.acosh, 9), math('Atanh', Math.atanh, 9),
  math('Softplus', softplus), math('Softsign', (x) => x / (1 + Math.abs(x))),
  math('Mish', (x) => x * Math.tanh(softplus(x)), 18), hot('HardSwish', stepRow(['hardSwish'], K.hardSwish), 14),
  unaryOp('LeakyRelu', { types: FLOAT, attrs: (a) => a.float('alpha', 0.01), row: (_d, alpha) => stepRow(['leakyRelu', alpha], K.leakyRelu(alpha)) }),
  act('Elu', (a) => a.float('alpha', 1), (alpha) => (x) => (x < 0 ? alpha * Math.expm1(x) : x)),
  act('Celu', (a) => a.float('alpha', 1), (alpha) => (x) => (x > 0 ? x : alpha * Math.expm1(x / alpha)), 12),
  act('ThresholdedRelu', (a) => a.float('alpha', 1), (alpha) => (x) => (x > alpha ? x : 0), 10),
  act('Swish', (a) => a.float('alpha', 1), (alpha) => (x) => x * K.sigmoidOf(alpha * x), 24),
  unaryOp('HardSigmoid', {
    types: FLOAT, attrs: (a) => [a.float('alpha', 0.2), a.float('beta', 0.5)] as const,
    row: (_d, [alpha, beta]) => stepRow(['hardSigmoid', alpha, beta], K.hardSigmoid(alpha, beta)),
  }),
  act('Selu', (a, opset) => (opset < 6 // Selu-1 documents rounder defaults
    ? { alpha: a.float('alpha', 1.6732), gamma: a.float('gamma', 1.0507) }
    : { alpha: a.float('alpha', 1.67326319217681884765625), gamma: a.float('gamma', 1.05070102214813232421875) }),
    ({ alpha, gamma }) => (x) => gamma * (x > 0 ? x : alpha * Math.expm1(x))),
  unaryOp('Gelu', {
    types: FLOAT, since: 20,
    attrs: (a) => {
      const mode = a.string('approximate', 'none');
      if (mode !== 'none' && mode !== 'tanh') throw a.error(`attribute 'approximate' should be 'none' or 'tanh', got '${mode}'`);
      return mode;
    },
    row: (_d, mode) => (mode === 'tanh' ? stepRow(['geluTanh'], K.geluTanh) : stepRow(['gelu'], K.gelu)),
  }),
  numeric('Abs', NUMERIC, K.abs, (x) => (x < 0n ? -x : x)),
  numeric('Neg', SIGNED, K.neg, (x) => -x),
  numeric('Relu', SIGNED, stepRow(['relu'], K.relu), (x) => (x < 0n ? 0n : x)),
  numeric('Sign', NUMERIC, each1(Math.sign), (x) => (x > 0n ? 1n : x < 0n ? -1n : 0n), 9),
  unaryOp('Shrink', {
    types: NUMERIC, since: 9,
    attrs: (a) => ({ lambd: a.float('lambd', 0.5), bias: a.float('bias', 0) }),
    row: (d, { lambd, bias }) => {
      if (!isBigInt(d)) return each1((x: number) => (x < -lambd ? x + bias : x > lambd ? x - bias : 0));
      // Exact for an integral bias; a fractional one goes through float and truncates as storage would.
      const add = (x: bigint, b: number) => (Number.isInteger(b) ? x + BigInt(b) : BigInt(Math.trunc(Number(x) + b)));
      return each1((x: bigint) => (x < -lambd ? add(x, bias) : x > lambd ? add(x, -bias) : 0n));
    },
  }),
);

// Clip-1/6 take float bounds as attributes; from 11 they are optional scalar inputs of the input's dtype.
register(
  unaryOp('Clip', { types: FLOAT, attrs: (a) => ({ lo: a.float('min', -Infinity), hi: a.float('max', Infinity) }), row: (_d, a) => stepRow(['clip', a.lo, a.hi], K.clamp(a.lo, a.hi)) }),
  {
    op: 'Clip', since: 11, infer: sameAsInput,
    run: (ins, _a, ctx) => {
      const x = typedInput(ins, 0, NUMERIC, ctx);
      const bound = (i: number, absent: number): number | bigint => {
        const t = optTensor(ins, i, ctx);
        if (!t) return absent;
        sameDtype(t, i, x, ctx);
        if (t.size !== 1) fail(ctx, `${inputName(ctx, i)} should be a scalar, got shape [${t.shape}]`);
        return t.data[0] as number | bigint;
      };
      const lo = bound(1, -Infinity), hi = bound(2, Infinity);
      return [mapUnary(x, typeof lo === 'number' && typeof hi === 'number' ? stepRow(['clip', lo, hi], K.clamp(lo, hi)) : K.clamp(lo, hi))];
    },
  },
);

const modFloor = (x: number, y: number) => { const r = x % y; return r !== 0 && r < 0 !== y < 0 ? r + y : r; };
const modFloorBig = (x: bigint, y: bigint) => { if (!y) return 0n; const r = x % y; return r && r < 0n !== y < 0n ? r + y : r; };
const toBigTrunc = (v: number) => (Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n);

/** Pow for a base dtype and an exponent dtype (they may differ from opset 12). */
function powFn(base: DType, exp: DType): (x: any, y: any) => any {
  if (!isBigInt(base)) return isBigInt(exp) ? (x: number, y: bigint) => powC(x, Number(y)) : powC;
  const signed = base === 'int64';
  if (!isFloat(exp)) return (x: bigint, y: number | bigint) => powWrap(x, BigInt(y), 64, signed);
  return (x: bigint, y: number) => (Number.isInteger(y) ? powWrap(x, BigInt(y), 64, signed) : toBigTrunc(powC(Number(x), y)));
}

// Number-storage integers need no special cases for Add/Sub/Div: the store truncates and wraps
// (x / 0 stores 0). 32-bit products use imul to keep their low bits; bigint division guards 0.
const imul32 = (d: DType) => d === 'int32' || d === 'uint32';
register(
  binaryOp('Add', { types: NUMERIC, row: () => K.add, wasm: 'add' }),
  binaryOp('Sub', { types: NUMERIC, row: () => K.sub, wasm: 'sub' }),
  binaryOp('Mul', { types: NUMERIC, row: (d) => (imul32(d) ? each2(Math.imul) : K.mul), wasm: 'mul' }),
  binaryOp('Div', { types: NUMERIC, row: (d) => (isBigInt(d) ? each2((x: bigint, y: bigint) => (y ? x / y : 0n)) : K.div), wasm: 'div' }),
  binaryOp('Pow', { types: dtypes(FLOATS, ['int32', 'int64']), rhs: NUMERIC, row: (d, _a, e) => each2(powFn(d, e)) }),
  binaryOp('Mod', {
    types: NUMERIC, since: 10,
    attrs: (a) => ({ fmod: a.int('fmod', 0) }),
    row: (d, { fmod }) => each2(isBigInt(d)
      ? (fmod ? (x: bigint, y: bigint) => (y ? x % y : 0n) : modFloorBig)
      : (fmod ? (x: number, y: number) => x % y : modFloor)),
  }),
  binaryOp('PRelu', {
    types: NUMERIC,
    row: (d) => each2(isBigInt(d) ? (x: bigint, s: bigint) => (x < 0n ? x * s : x)
      : imul32(d) ? (x: number, s: number) => (x < 0 ? Math.imul(x, s) : x) : (x: number, s: number) => (x < 0 ? x * s : x)),
  }),
);

/** Min/Max/Sum/Mean: any number of inputs of one dtype, folded pairwise with broadcasting. */
function variadic(op: string, types: ReadonlySet<DType>, row: Row2, mean = false): OpDef {
  return {
    op, infer: (ins) => broadcastInfer()(ins),
    run: (ins, _a, ctx) => {
      if (ins.length === 0) fail(ctx, 'needs at least one input');
      const xs = ins.map((_, i) => typedInput(ins, i, types, ctx));
      xs.forEach((x, i) => sameDtype(x, i, xs[0], ctx));
      const out = xs.length === 1 ? new NdArray(xs[0].dtype, xs[0].shape, xs[0].data.slice()) : xs.slice(1).reduce((acc, x) => broadcast2(acc, x, row, acc.dtype, ctx), xs[0]);
      if (mean && xs.length > 1) { const d = out.data as Float32Array; for (let i = 0; i < d.length; i++) d[i] /= xs.length; }
      return [out];
    },
  };
}
register(
  variadic('Max', NUMERIC, K.max), variadic('Min', NUMERIC, K.min),
  variadic('Sum', FLOAT, K.add), variadic('Mean', FLOAT, K.add, true),
);
