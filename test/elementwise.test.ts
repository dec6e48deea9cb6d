// Elementwise arithmetic, math and activation ops against onnxruntime-node over random shapes,
// broadcasting, dtypes and attributes; hand-checked values where onnxruntime has no kernel.
import { describe, expect, it } from 'vitest';
import { float, GraphBuilder, type AttrInput } from '../loaders/builder.js';
import { InferenceSession } from '../index.js';
import { onnxCode, type DType } from '../engine/dtype.js';
import type { Dim } from '../engine/graph.js';
import { NdArray } from '../engine/tensor.js';
import { binaryBroadcast, broadcastShapes } from '../kernels/cpu/broadcast.js';
import * as K from '../kernels/cpu/elementwise.js';
import { expectMatchesOrt, rng } from './helpers/oracle.js';

type Rng = ReturnType<typeof rng>;
const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535], int32: [-(2 ** 31), 2 ** 31 - 1], uint32: [0, 2 ** 32 - 1],
};
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Random values of a dtype: floats in [lo, hi], integers over their whole range unless lo/hi narrow it. */
function rand(dtype: DType, shape: number[], r: Rng, lo = -1, hi = 1, full = true): NdArray {
  const n = size(shape);
  if (dtype === 'float32' || dtype === 'float64') {
    const values = Array.from({ length: n }, () => r.float(lo, hi));
    return new NdArray(dtype, shape, dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values));
  }
  if (dtype === 'bool') return new NdArray(dtype, shape, Uint8Array.from({ length: n }, () => r.int(0, 1)));
  if (dtype === 'int64' || dtype === 'uint64') {
    const word = () => BigInt(r.int(0, 2 ** 32 - 1));
    const v = () => (full ? (word() << 32n) | word() : BigInt(r.int(Math.ceil(lo), Math.floor(hi))));
    return new NdArray(dtype, shape, dtype === 'int64' ? BigInt64Array.from({ length: n }, () => BigInt.asIntN(64, v())) : BigUint64Array.from({ length: n }, v));
  }
  const [a, b] = full ? INT_RANGE[dtype]! : [Math.ceil(lo), Math.floor(hi)];
  const out = NdArray.zeros(dtype, shape).data as Int32Array;
  for (let i = 0; i < n; i++) out[i] = r.int(a, b);
  return new NdArray(dtype, shape, out);
}

/** Two shapes that broadcast: suffixes of one shape with some dims set to 1. */
function bcastPair(r: Rng): [number[], number[]] {
  const rank = r.int(0, 4), full = Array.from({ length: rank }, () => r.int(1, 4));
  const side = () => full.slice(r.int(0, rank)).map((d) => (r.next() < 0.3 ? 1 : d));
  return [side(), side()];
}
const randShape = (r: Rng) => Array.from({ length: r.int(0, 4) }, () => r.int(1, 5));

interface Case { op: string; inputs: (NdArray | undefined)[]; attrs?: Record<string, AttrInput>; opset?: number; out?: DType; via?: DType }

/**
 * One-node model. With `via`, inputs are cast to that dtype in the graph, the op runs on it and the
 * result is cast back: how float16 and dtypes onnxruntime lacks a kernel for get an oracle.
 */
function model({ op, inputs, attrs = {}, opset = 18, out, via }: Case): Uint8Array {
  const g = new GraphBuilder();
  const names = inputs.map((x, i) => (x ? g.input(`x${i}`, x.dtype, [...x.shape]) : ''));
  const cast = (n: string, to: DType) => (n ? g.node('Cast', [n], { to: onnxCode(to) })[0] : '');
  const dtype = out ?? inputs[0]!.dtype;
  if (via) g.node('Cast', [g.node(op, names.map((n) => cast(n, via)), attrs)[0]], { to: onnxCode(dtype) }, ['y']);
  else g.node(op, names, attrs, ['y']);
  g.output('y', dtype);
  return g.model({ opset });
}
const feeds = (inputs: (NdArray | undefined)[]) => Object.fromEntries(inputs.flatMap((x, i) => (x ? [[`x${i}`, x]] : [])));
/** Compares with onnxruntime; a failure names the op, attributes and input dtypes and shapes. */
async function vsOrt(c: Case, tol?: { rtol?: number; atol?: number }) {
  try { await expectMatchesOrt(model(c), feeds(c.inputs), tol); } catch (e) {
    const ins = c.inputs.map((x) => (x ? `${x.dtype}[${x.shape}]` : '-')).join(', ');
    throw new Error(`${c.op}(${ins}) ${JSON.stringify(c.attrs ?? {})}${c.via ? ` via ${c.via}` : ''}: ${(e as Error).message}`);
  }
}

/** Our output for hand-checked cases. */
async function ours(c: Case): Promise<NdArray> {
  const s = await InferenceSession.create(model(c));
  return s.runValues(new Map(Object.entries(feeds(c.inputs))))[0] as NdArray;
}
const list = (x: NdArray) => Array.from(x.data as ArrayLike<number | bigint>);

describe('unary float ops match onnxruntime', () => {
  const ops: [string, number, number, number?][] = [
    ['Exp', -10, 10], ['Log', 0.01, 10], ['Sqrt', 0, 10], ['Reciprocal', 0.1, 3], ['Floor', -5, 5], ['Ceil', -5, 5],
    ['Tanh', -5, 5], ['Sigmoid', -20, 20], ['Erf', -4, 4, 13], ['Sin', -6, 6], ['Cos', -6, 6], ['Tan', -1.4, 1.4],
    ['Asin', -0.99, 0.99], ['Acos', -0.99, 0.99], ['Atan', -5, 5], ['Sinh', -5, 5], ['Cosh', -5, 5], ['Asinh', -5, 5],
    ['Acosh', 1, 10], ['Atanh', -0.99, 0.99], ['Softplus', -20, 20], ['Softsign', -5, 5], ['Mish', -10, 10, 18],
    ['HardSwish', -5, 5, 14], ['Relu', -2, 2], ['Abs', -2, 2], ['Neg', -2, 2], ['Sign', -2, 2],
  ];
  for (const [op, lo, hi, opset] of ops) {
    it(op, async () => {
      const r = rng(op.length * 31 + lo);
      for (let t = 0; t < 3; t++) await vsOrt({ op, inputs: [rand('float32', randShape(r), r, lo, hi)], opset }, { rtol: 1e-5, atol: 1e-6 });
    });
  }
  it('Round halves to even', async () => {
    const x = new NdArray('float32', [12], Float32Array.from([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999998, 0.9, -4.5, 1e8 + 0.5, -0, NaN]));
    await vsOrt({ op: 'Round', inputs: [x], opset: 11 });
    expect(list(await ours({ op: 'Round', inputs: [x], opset: 11 })).slice(0, 9)).toEqual([0, 2, 2, -0, -2, -2, 2, 1, -4]);
  });
  it('float64 and float16', async () => {
    const r = rng(5);
    for (const op of ['Exp', 'Log', 'Sqrt', 'Tanh', 'Sigmoid', 'Relu', 'Abs', 'Neg', 'Floor', 'Sin', 'Cos', 'Reciprocal']) {
      await vsOrt({ op, inputs: [rand('float64', [3, 4], r, 0.1, 4)] }, { rtol: 1e-12, atol: 0 });
    }
    // float16 results are rounded to float16 by both engines; allow a half-ulp's worth
    for (const op of ['Relu', 'Abs', 'Neg', 'Sigmoid', 'Tanh', 'Exp', 'Sqrt', 'Floor']) await vsOrt({ op, inputs: [rand('float32', [5, 3], r, 0.1, 4)], via: 'float16' });
  });
  it('empty and rank-0 tensors', async () => {
    for (const shape of [[0], [2, 0, 3], []]) await vsOrt({ op: 'Sigmoid', inputs: [rand('float32', shape, rng(2))] });
  });
});

describe('activations with attributes match onnxruntime', () => {
  const r = rng(11);
  const cases: [string, () => Record<string, AttrInput>, number?][] = [
    ['LeakyRelu', () => ({ alpha: r.float(0.01, 0.5) })], ['LeakyRelu', () => ({})],
    ['Elu', () => ({ alpha: r.float(0.1, 2) })], ['Elu', () => ({})],
    ['Celu', () => ({ alpha: r.float(0.5, 2) }), 12], ['Celu', () => ({}), 12],
    ['Selu', () => ({ alpha: r.float(1, 2), gamma: r.float(0.5, 1.5) })], ['Selu', () => ({})],
    ['ThresholdedRelu', () => ({ alpha: r.float(-1, 1) })], ['ThresholdedRelu', () => ({})],
    ['HardSigmoid', () => ({ alpha: r.float(0.1, 0.5), beta: r.float(0.2, 0.8) })], ['HardSigmoid', () => ({})],
    ['Shrink', () => ({ lambd: r.float(0, 1), bias: r.float(-1, 1) })], ['Shrink', () => ({})],
    ['Gelu', () => ({}), 20], ['Gelu', () => ({ approximate: 'tanh' }), 20], ['Gelu', () => ({ approximate: 'none' }), 20],
    ['Swish', () => ({}), 24], ['Swish', () => ({ alpha: r.float(0.5, 2) }), 24],
  ];
  for (const [op, attrs, opset] of cases) {
    it(`${op} ${JSON.stringify(attrs())}`, async () => {
      for (let t = 0; t < 3; t++) await vsOrt({ op, inputs: [rand('float32', randShape(r), r, -4, 4)], attrs: attrs(), opset }, { rtol: 1e-5, atol: 1e-6 });
    });
  }
  it('Gelu rejects an unknown approximation', async () => {
    await expect(ours({ op: 'Gelu', inputs: [rand('float32', [2], r)], attrs: { approximate: 'fast' }, opset: 20 })).rejects.toThrow(/approximate/);
  });
});

describe('integer unary ops', () => {
  const r = rng(13);
  it('Abs, Neg, Sign, Relu, Shrink over integer dtypes (int64 as the oracle where onnxruntime lacks a kernel)', async () => {
    for (const dtype of ['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64'] as DType[]) {
      const x = rand(dtype, [4, 5], r);
      for (const op of ['Abs', 'Sign']) await vsOrt({ op, inputs: [x] });
      // onnxruntime shrinks through float32, so only values it holds exactly can agree
      await vsOrt({ op: 'Shrink', inputs: [rand(dtype, [4, 5], r, dtype.startsWith('u') ? 0 : -1000, 1000, false)], attrs: { lambd: float(3), bias: float(2) } });
      if (dtype.startsWith('int')) for (const op of ['Neg', 'Relu']) await vsOrt({ op, inputs: [x], via: dtype === 'int64' ? undefined : 'int64' });
    }
  });
  it('int64 stays exact beyond 2^53', async () => {
    const x = new NdArray('int64', [3], BigInt64Array.from([-(2n ** 62n) - 3n, 2n ** 60n + 1n, -(2n ** 63n)]));
    expect(list(await ours({ op: 'Neg', inputs: [x] }))).toEqual([2n ** 62n + 3n, -(2n ** 60n) - 1n, -(2n ** 63n)]);
    expect(list(await ours({ op: 'Abs', inputs: [x] }))).toEqual([2n ** 62n + 3n, 2n ** 60n + 1n, -(2n ** 63n)]);
  });
  it('rejects dtypes outside the op\'s constraint, naming the input', async () => {
    await expect(ours({ op: 'Exp', inputs: [rand('int32', [2], r)] })).rejects.toThrow(/input 0 \('x0'\) has dtype int32/);
    await expect(ours({ op: 'Neg', inputs: [rand('uint8', [2], r)] })).rejects.toThrow(/dtype uint8/);
  });
});

const NUMERIC: DType[] = ['float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64'];

describe('binary arithmetic matches onnxruntime', () => {
  for (const op of ['Add', 'Sub', 'Mul']) {
    it(`${op}: every numeric dtype, random broadcasting, wrapping integers`, async () => {
      const r = rng(op.length * 7);
      for (const dtype of NUMERIC) {
        for (let t = 0; t < 3; t++) {
          const [sa, sb] = bcastPair(r);
          await vsOrt({ op, inputs: [rand(dtype, sa, r, -10, 10), rand(dtype, sb, r, -10, 10)] }, { rtol: 1e-6, atol: 0 });
        }
      }
    });
  }
  it('Div: floats, integers truncating toward zero (non-zero divisors)', async () => {
    const r = rng(3);
    for (const dtype of NUMERIC) {
      for (let t = 0; t < 3; t++) {
        const [sa, sb] = bcastPair(r);
        const b = rand(dtype, sb, r, 1, 50, false), d = b.data as Int32Array;
        if (!dtype.startsWith('u')) for (let i = 0; i < d.length; i += 2) d[i] = -d[i] as never; // negative divisors too
        await vsOrt({ op: 'Div', inputs: [rand(dtype, sa, r, -1000, 1000, dtype === 'float32' || dtype === 'float64'), b] }, { rtol: 1e-6, atol: 0 });
      }
    }
  });
  it('Div int32 truncates and int64 is exact', async () => {
    const a = new NdArray('int32', [4], Int32Array.from([7, -7, 7, -7])), b = new NdArray('int32', [4], Int32Array.from([2, 2, -2, -2]));
    expect(list(await ours({ op: 'Div', inputs: [a, b] }))).toEqual([3, -3, -3, 3]);
    const big = new NdArray('int64', [2], BigInt64Array.from([2n ** 62n + 1n, -(2n ** 61n) - 5n])), two = new NdArray('int64', [], BigInt64Array.from([3n]));
    expect(list(await ours({ op: 'Div', inputs: [big, two] }))).toEqual([(2n ** 62n + 1n) / 3n, (-(2n ** 61n) - 5n) / 3n]);
  });
  it('Mod: integer sign of the divisor, fmod for floats and integers', async () => {
    const r = rng(17);
    for (const dtype of NUMERIC) {
      const [sa, sb] = bcastPair(r);
      const b = rand(dtype, sb, r, 1, 30, false), d = b.data as Int32Array;
      if (!dtype.startsWith('u')) for (let i = 0; i < d.length; i += 2) d[i] = -d[i] as never;
      // onnxruntime takes fmod of 64-bit integers through double, so keep them below 2^53 (no wrapped negatives)
      const a = rand(dtype, sa, r, dtype.startsWith('u') ? 0 : -100, 100, false);
      await vsOrt({ op: 'Mod', inputs: [a, b], attrs: { fmod: 1 } }, { rtol: 1e-6, atol: 1e-6 });
      if (!dtype.startsWith('float')) await vsOrt({ op: 'Mod', inputs: [a, b] });
    }
    // floats with fmod=0 (onnxruntime refuses them): numpy's mod, the sign of the divisor
    const x = new NdArray('float32', [4], Float32Array.from([5.5, -5.5, 5.5, -5.5])), y = new NdArray('float32', [4], Float32Array.from([2, 2, -2, -2]));
    expect(list(await ours({ op: 'Mod', inputs: [x, y] }))).toEqual([1.5, 0.5, -0.5, -1.5]);
  });
  it('Pow with every base/exponent dtype pair', async () => {
    const r = rng(19);
    for (const base of ['float32', 'float64', 'int32', 'int64'] as DType[]) {
      for (const exp of ['float32', 'float64', 'int32', 'int64'] as DType[]) {
        const [sa, sb] = bcastPair(r);
        // negative bases only with integer exponents: a NaN power has no integer value to agree on
        const intPow = exp.startsWith('int');
        const x = rand(base, sa, r, intPow && base.startsWith('int') ? -6 : 0.5, 6, false), y = rand(exp, sb, r, intPow ? 0 : -2, 5, false);
        await vsOrt({ op: 'Pow', inputs: [x, y], opset: 15 }, { rtol: 1e-5, atol: 1e-6 });
      }
    }
  });
  it('Pow int64 wraps exactly and handles negative exponents', async () => {
    const x = new NdArray('int64', [4], BigInt64Array.from([3n, 2n, -1n, 5n])), y = new NdArray('int64', [4], BigInt64Array.from([39n, 64n, -3n, -1n]));
    expect(list(await ours({ op: 'Pow', inputs: [x, y], opset: 15 }))).toEqual([3n ** 39n, 0n, -1n, 0n]);
  });
  it('PRelu broadcasts its slope (int64 as the oracle for unsigned)', async () => {
    const r = rng(23);
    for (const dtype of ['float32', 'float64', 'int32', 'int64'] as DType[]) {
      for (let t = 0; t < 3; t++) {
        const [sa, sb] = bcastPair(r);
        await vsOrt({ op: 'PRelu', inputs: [rand(dtype, sa, r, -10, 10, false), rand(dtype, sb, r, -3, 3, false)], opset: 16 });
      }
    }
  });
  it('float16 arithmetic', async () => {
    const r = rng(29);
    for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
      const [sa, sb] = bcastPair(r);
      await vsOrt({ op, inputs: [rand('float32', sa, r, 1, 8), rand('float32', sb, r, 1, 8)], via: 'float16' });
    }
  });
  it('empty tensors and broadcasting against them', async () => {
    const r = rng(31);
    await vsOrt({ op: 'Add', inputs: [rand('float32', [0, 3], r), rand('float32', [1, 3], r)] });
    await vsOrt({ op: 'Mul', inputs: [rand('float32', [2, 0], r), rand('float32', [], r)] });
  });
  it('before opset 7, broadcast=1 aligns B at axis', async () => {
    const a = new NdArray('float32', [2, 3, 2], Float32Array.from({ length: 12 }, (_, i) => i)), b = new NdArray('float32', [3], Float32Array.from([100, 200, 300]));
    const y = await ours({ op: 'Add', inputs: [a, b], attrs: { broadcast: 1, axis: 1 }, opset: 6 });
    expect(y.shape).toEqual([2, 3, 2]);
    expect(list(y)).toEqual([100, 101, 202, 203, 304, 305, 106, 107, 208, 209, 310, 311]);
  });
  it('rejects mismatched dtypes and shapes', async () => {
    const r = rng(37);
    await expect(ours({ op: 'Add', inputs: [rand('float32', [2], r), rand('float64', [2], r)] })).rejects.toThrow(/input 1 \('x1'\) has dtype float64; expected float32/);
    await expect(ours({ op: 'Add', inputs: [rand('float32', [2], r), rand('float32', [3], r)] })).rejects.toThrow(/\[2\] and \[3\] do not broadcast/);
  });
});

describe('Clip', () => {
  const r = rng(41);
  it('bounds as inputs for every numeric dtype, each bound optional, min > max', async () => {
    for (const dtype of NUMERIC) {
      const x = rand(dtype, [3, 4], r, -20, 20, false);
      const [lo, hi] = [rand(dtype, [], r, -5, 0, false), rand(dtype, [], r, 1, 6, false)];
      for (const [a, b] of [[lo, hi], [lo, undefined], [undefined, hi], [undefined, undefined], [hi, lo]]) {
        await vsOrt({ op: 'Clip', inputs: [x, a, b], opset: 13, via: dtype === 'int16' || dtype === 'uint16' ? 'int32' : undefined });
      }
    }
  });
  it('bounds as attributes before opset 11', async () => {
    const x = rand('float32', [10], r, -3, 3);
    await vsOrt({ op: 'Clip', inputs: [x], attrs: { min: -1.5, max: 0.5 }, opset: 6 });
    await vsOrt({ op: 'Clip', inputs: [x], attrs: { max: 0.5 }, opset: 6 });
  });
  it('int64 bounds compare exactly', async () => {
    const x = new NdArray('int64', [3], BigInt64Array.from([2n ** 62n, 2n ** 62n + 1n, -(2n ** 62n)]));
    expect(list(await ours({ op: 'Clip', inputs: [x, undefined, new NdArray('int64', [], BigInt64Array.from([2n ** 62n]))], opset: 13 }))).toEqual([2n ** 62n, 2n ** 62n, -(2n ** 62n)]);
  });
});

describe('float32 row kernels against a plain broadcast loop', () => {
  const r = rng(61);
  const f32 = (shape: number[]) => rand('float32', shape, r, -4, 4).data as Float32Array;
  // The broadcast forms the driver turns into contiguous or fixed-operand rows, in both operand orders.
  const forms: [string, number[], number[]][] = [
    ['same shape', [2, 3, 5, 7], [2, 3, 5, 7]], ['scalar', [3, 17], []], ['1-element', [1], [4, 9]],
    ['per channel [C,1,1]', [1, 6, 5, 3], [6, 1, 1]], ['per channel [1,C,1,1]', [2, 5, 1, 1], [2, 5, 3, 3]],
    ['trailing [K]', [4, 3, 11], [11]], ['inner broadcast [.., 1]', [3, 7, 1], [3, 7, 5]], ['both broadcast', [3, 1, 5], [1, 4, 1]],
    ['all ones', [1, 1], [1]], ['size 1 dims', [1, 13], [1, 1]],
  ];
  const ops: [string, K.Row2, (x: number, y: number) => number][] = [
    ['add', K.add, (x, y) => x + y], ['sub', K.sub, (x, y) => x - y], ['mul', K.mul, (x, y) => x * y], ['div', K.div, (x, y) => x / y],
  ];
  for (const [name, row, fn] of ops) {
    it(`${name} over ${forms.length} broadcast forms, both operand orders`, () => {
      for (const [form, sa, sb] of forms) {
        for (const [as, bs] of [[sa, sb], [sb, sa]]) {
          const a = f32(as), b = f32(bs), shape = broadcastShapes(as, bs)!, n = shape.reduce((p, q) => p * q, 1);
          const got = new Float32Array(n), want = new Float32Array(n);
          K.broadcastRows(a, as, b, bs, shape, got, row);
          binaryBroadcast(a, as, b, bs, shape, want, fn);
          expect([...got], `${form}: [${as}] ${name} [${bs}]`).toEqual([...want]);
        }
      }
    });
  }

  it('a row with arbitrary strides, and the same rows on other storage afterwards', () => {
    const a = f32([40]), b = f32([40]), out = new Float32Array(9);
    K.mul(out, 0, a, 3, 2, b, 1, 4, 9);
    expect([...out]).toEqual([...Array(9).keys()].map((i) => Math.fround(a[3 + 2 * i] * b[1 + 4 * i])));
    const i32 = new Int32Array([7, -9, 2 ** 31 - 1]), o32 = new Int32Array(3);
    K.add(o32, 0, i32, 0, 1, Int32Array.of(1), 0, 0, 3);
    expect([...o32]).toEqual([8, -8, -(2 ** 31)]); // wraps as int32 storage does
    const big = BigInt64Array.of(2n ** 62n, -5n), ob = new BigInt64Array(2);
    K.sub(ob, 0, big, 0, 1, BigInt64Array.of(1n), 0, 0, 2);
    expect([...ob]).toEqual([2n ** 62n - 1n, -6n]);
    const f64 = Float64Array.of(1 / 3), o64 = new Float64Array(1);
    K.div(o64, 0, f64, 0, 1, Float64Array.of(3), 0, 0, 1);
    expect(o64[0]).toBe(1 / 9);
  });

  it('clamp and relu on float32 propagate NaN, take -0 and infinities, and agree with other storage', () => {
    const x = Float32Array.of(NaN, -Infinity, Infinity, -0, 0, -2.5, 0.25, 3, 7, -7, 1e-40);
    const clip = new Float32Array(x.length), wide = new Float64Array(x.length);
    K.clamp(-2, 5)(clip, x, x.length);
    K.clamp(-2, 5)(wide, Float64Array.from(x), x.length);
    expect([...clip]).toEqual([NaN, -2, 5, -0, 0, -2, 0.25, 3, 5, -2, 1e-40].map(Math.fround));
    expect([...clip]).toEqual([...Float32Array.from(wide)]);
    const inverted = new Float32Array(x.length);
    K.clamp(1, -1)(inverted, x, x.length); // min > max: every value becomes max, as onnxruntime does
    expect([...inverted].slice(1)).toEqual(new Array(x.length - 1).fill(-1));
    const relu = new Float32Array(x.length);
    K.relu(relu, x, x.length);
    expect([...relu].map((v) => (v === 0 ? 0 : v))).toEqual([NaN, 0, Infinity, 0, 0, 0, 0.25, 3, 7, 0, Math.fround(1e-40)]);
    const ri = new Int8Array(3);
    K.relu(ri, Int8Array.of(-128, 5, 0), 3);
    expect([...ri]).toEqual([0, 5, 0]);
  });

  it('branch-free relu, HardSigmoid and HardSwish rows equal the plain formulas, extremes included', () => {
    const special = [NaN, Infinity, -Infinity, 0, -0, 3, -3, 2.9999998, -2.9999998, 1e-30, -1e-30, 1e30, -1e30, 6e6, -6e6, 5e17, 1e20, -1e20, 3.4e38, -3.4e38];
    const x = Float32Array.from([...special, ...Array.from({ length: 4000 }, () => r.float(-10, 10)), ...Array.from({ length: 500 }, () => r.float(-3.01, -2.99))]);
    const clamp01 = (t: number) => Math.max(0, Math.min(1, t));
    const plain: [string, K.Row1, (v: number) => number][] = [
      ['relu', K.relu, (v) => (v < 0 ? 0 : v)],
      ['hardSigmoid(0.2, 0.5)', K.hardSigmoid(0.2, 0.5), (v) => clamp01(0.2 * v + 0.5)],
      ['hardSigmoid(1/6, 0.5)', K.hardSigmoid(1 / 6, 0.5), (v) => clamp01(v / 6 + 0.5)],
      ['hardSwish', K.hardSwish, (v) => v * clamp01((1 / 6) * v + 0.5)],
    ];
    for (const [name, row, f] of plain) {
      for (const out of [new Float32Array(x.length), new Float64Array(x.length)]) {
        row(out, out instanceof Float32Array ? x : Float64Array.from(x), x.length);
        const want = out instanceof Float32Array ? Float32Array.from(x, f) : Float64Array.from(x, f);
        for (let i = 0; i < x.length; i++) {
          const [g, w] = [out[i], want[i]], at = `${name} ${out.constructor.name} at ${x[i]}`;
          if (Number.isNaN(w) || !Number.isFinite(w) || w === 0) expect(g === 0 ? 0 : g, at).toBe(w === 0 ? 0 : w);
          else expect(Math.abs(g - w), at).toBeLessThanOrEqual(2 ** -29 * Math.abs(w));
        }
      }
    }
  });

  it('Add, Mul, Div and Clip models on large per-channel and scalar operands match onnxruntime', async () => {
    const x = rand('float32', [1, 8, 33, 31], r, -6, 6), c = rand('float32', [1, 8, 1, 1], r, 0.5, 2), s = rand('float32', [], r, 1, 3);
    await vsOrt({ op: 'Add', inputs: [x, c] }, { rtol: 1e-6, atol: 0 });
    await vsOrt({ op: 'Mul', inputs: [c, x] }, { rtol: 1e-6, atol: 0 });
    await vsOrt({ op: 'Div', inputs: [x, s] }, { rtol: 1e-6, atol: 0 });
    await vsOrt({ op: 'Sub', inputs: [rand('float32', [31], r), x] }, { rtol: 1e-6, atol: 0 });
    await vsOrt({ op: 'Clip', inputs: [x, rand('float32', [], r, -1, 0), rand('float32', [], r, 1, 6)], opset: 13 });
  });
});

describe('variadic Min, Max, Sum, Mean', () => {
  const r = rng(43);
  for (const op of ['Min', 'Max', 'Sum', 'Mean']) {
    it(`${op} with 1 to 4 broadcasting inputs`, async () => {
      const dtypes: DType[] = op === 'Sum' || op === 'Mean' ? ['float32', 'float64'] : NUMERIC;
      for (const dtype of dtypes) {
        for (const k of [1, 2, 3, 4]) {
          const full = randShape(r);
          const inputs = Array.from({ length: k }, () => rand(dtype, full.slice(r.int(0, full.length)).map((d) => (r.next() < 0.3 ? 1 : d)), r, -50, 50, dtype.startsWith('float')));
          // onnxruntime lacks int16/uint16 Min/Max and float64 Mean: widen to a dtype it has
          const via: DType | undefined = dtype === 'int16' || dtype === 'uint16' ? 'int64' : op === 'Mean' && dtype === 'float64' ? 'float32' : undefined;
          await vsOrt({ op, inputs, opset: 13, via }, { rtol: 1e-6, atol: 1e-6 });
        }
      }
    });
  }
  it('Max and Min propagate NaN', async () => {
    const a = new NdArray('float32', [3], Float32Array.from([NaN, 1, 2])), b = new NdArray('float32', [3], Float32Array.from([0, NaN, 1]));
    expect(list(await ours({ op: 'Max', inputs: [a, b] }))).toEqual([NaN, NaN, 2]);
    expect(list(await ours({ op: 'Min', inputs: [a, b] }))).toEqual([NaN, NaN, 1]);
  });
});

describe('type and shape inference', () => {
  /** The output type the session reports for a one-node model whose output declares nothing. */
  async function inferred(op: string, ins: [DType, Dim[]][], attrs: Record<string, AttrInput> = {}, opset = 18) {
    const g = new GraphBuilder();
    g.output(g.node(op, ins.map(([d, s], i) => g.input(`x${i}`, d, s)), attrs, ['y'])[0], null);
    const m = (await InferenceSession.create(g.model({ opset }))).outputMetadata[0];
    return [m.type, m.typeInfo?.kind === 'tensor' ? m.typeInfo.shape : undefined];
  }
  it('broadcasts shapes, keeping symbolic dims', async () => {
    expect(await inferred('Add', [['float32', ['batch', 1, 4]], ['float32', [3, 1]]])).toEqual(['float32', ['batch', 3, 4]]);
    expect(await inferred('Pow', [['int32', ['n']], ['float32', []]], {}, 15)).toEqual(['int32', ['n']]);
    expect(await inferred('Max', [['int8', [2, 1]], ['int8', [3]], ['int8', ['k', 1, 1]]], {}, 13)).toEqual(['int8', ['k', 2, 3]]);
    expect(await inferred('Add', [['float32', [2, 3, 4]], ['float32', [3]]], { broadcast: 1, axis: 1 }, 6)).toEqual(['float32', [2, 3, 4]]);
  });
  it('unary ops keep the input type', async () => {
    expect(await inferred('Gelu', [['float16', ['b', 8]]], {}, 20)).toEqual(['float16', ['b', 8]]);
    expect(await inferred('Clip', [['int64', [5]]], {}, 13)).toEqual(['int64', [5]]);
  });
});
