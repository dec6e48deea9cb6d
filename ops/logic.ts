// Comparisons, boolean logic, bitwise ops, Where, IsNaN and IsInf. Comparisons and tests output bool
// (Uint8Array of 0/1); bitwise ops keep the integer dtype, int64/uint64 in bigint.
import { isBigInt, type DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { broadcastShapes } from '../kernels/cpu/broadcast.js';
import * as K from '../kernels/cpu/elementwise.js';
import { each1, each2, type Row2 } from '../kernels/cpu/elementwise.js';
import { binaryOp, BOOL, dtypes, FLOATS, INTS, NUMERIC, typedInput, UINT, unaryOp } from './elementwise.js';
import { broadcastInfer, dtypeOf, shapeOf, tensorType } from './infer-rules.js';
import { fail, register } from './registry.js';

const EQUATABLE = dtypes([...NUMERIC, 'bool', 'string']);
const ANY = dtypes([...EQUATABLE, 'float8e4m3fn', 'float8e4m3fnuz', 'float8e5m2', 'float8e5m2fnuz', 'float8e8m0', 'float4e2m1',
  'int4', 'uint4', 'int2', 'uint2']);
const WITH_F8 = dtypes(FLOATS, ['float8e4m3fn', 'float8e4m3fnuz', 'float8e5m2', 'float8e5m2fnuz']);

type Fn2 = (x: any, y: any) => any;
const compare = (op: string, types: ReadonlySet<DType>, row: Row2, since?: number) => binaryOp(op, { types, out: 'bool', row: () => row, since });
const logical = (op: string, fn: Fn2) => binaryOp(op, { types: BOOL, row: () => each2(fn) });
const bitwise = (op: string, fn: Fn2) => binaryOp(op, { types: INTS, row: () => each2(fn), since: 18 });

/** Shifting by the width or more empties the value (JS would take the count modulo 32). */
function shiftFn(d: DType, left: boolean): Fn2 {
  if (isBigInt(d)) return left ? (x: bigint, s: bigint) => (s >= 64n ? 0n : x << s) : (x: bigint, s: bigint) => (s >= 64n ? 0n : x >> s);
  const bits = d === 'uint8' ? 8 : d === 'uint16' ? 16 : 32;
  return left ? (x: number, s: number) => (s >= bits ? 0 : x << s) : (x: number, s: number) => (s >= bits ? 0 : x >>> s);
}

register(
  compare('Equal', EQUATABLE, K.eq), compare('Less', NUMERIC, K.lt), compare('Greater', NUMERIC, K.gt),
  compare('LessOrEqual', NUMERIC, K.le, 12), compare('GreaterOrEqual', NUMERIC, K.ge, 12),
  // bool storage may hold any nonzero byte for true, so test truthiness rather than use bit ops
  logical('And', (x, y) => (x && y ? 1 : 0)),
  logical('Or', (x, y) => (x || y ? 1 : 0)),
  logical('Xor', (x, y) => (!x !== !y ? 1 : 0)),
  unaryOp('Not', { types: BOOL, row: () => K.not }),
  // & | ^ ~ act alike on numbers and bigints; stores wrap the result to the dtype
  bitwise('BitwiseAnd', (x, y) => x & y),
  bitwise('BitwiseOr', (x, y) => x | y),
  bitwise('BitwiseXor', (x, y) => x ^ y),
  unaryOp('BitwiseNot', { types: INTS, row: () => each1((x: any) => ~x), since: 18 }),
  binaryOp('BitShift', {
    types: UINT, since: 11,
    attrs: (a) => {
      const dir = a.string('direction');
      if (dir !== 'LEFT' && dir !== 'RIGHT') throw a.error(`attribute 'direction' should be 'LEFT' or 'RIGHT', got '${dir}'`);
      return { left: dir === 'LEFT' };
    },
    row: (d, { left }) => each2(shiftFn(d, left)),
  }),
  unaryOp('IsNaN', { types: WITH_F8, out: 'bool', row: () => each1((x: number) => (x !== x ? 1 : 0)), since: 9 }),
  unaryOp('IsInf', {
    types: WITH_F8, out: 'bool', since: 10,
    attrs: (a) => ({ pos: a.int('detect_positive', 1) !== 0, neg: a.int('detect_negative', 1) !== 0 }),
    row: (_d, { pos, neg }) => each1((x: number) => ((pos && x === Infinity) || (neg && x === -Infinity) ? 1 : 0)),
  }),
  {
    op: 'Where', since: 9,
    infer: (ins) => [tensorType(dtypeOf(ins[1]), shapeOf(broadcastInfer()(ins)[0]))],
    run: (ins, _a, ctx) => {
      const c = typedInput(ins, 0, BOOL, ctx), x = typedInput(ins, 1, ANY, ctx), y = typedInput(ins, 2, ANY, ctx);
      if (y.dtype !== x.dtype) fail(ctx, `input 2 ('${ctx.node.inputs[2]}') has dtype ${y.dtype}; expected ${x.dtype}, the dtype of input 1`);
      const shape = broadcastShapes(c.shape, x.shape, y.shape) ?? fail(ctx, `input shapes [${c.shape}], [${x.shape}] and [${y.shape}] do not broadcast`);
      const out = NdArray.zeros(x.dtype, shape);
      K.where(c.data, c.shape, x.data, x.shape, y.data, y.shape, shape, out.data);
      return [out];
    },
  },
);
