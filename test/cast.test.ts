// Cast, CastLike and BitCast against onnxruntime-node: every numeric pair, strings, float8 with and
// without saturation, float8e8m0 rounding modes, 4- and 2-bit integers; hand-checked values where
// onnxruntime has no kernel (float4e2m1, Cast-1) or leaves behaviour to the platform.
import { describe, expect, it } from 'vitest';
import { GraphBuilder, type AttrInput } from '../loaders/builder.js';
import { InferenceSession } from '../index.js';
import { onnxCode, type DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { expectMatchesOrt, rng } from './helpers/oracle.js';

type Rng = ReturnType<typeof rng>;
const NUMERIC: DType[] = ['float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool'];
const FLOAT8: DType[] = ['float8e4m3fn', 'float8e4m3fnuz', 'float8e5m2', 'float8e5m2fnuz'];
const SPECIAL = [0.47892547, 0.48033667, 0.5, 1.0625, 1.125, 3.75, 448, 464, 57344, 1e6, 1e-7, 2 ** -9, 2 ** -10, 3 * 2 ** -11,
  NaN, Infinity, -Infinity, -0, -0.3, -1e6, 240, 248, 0.0001, 17.5, -17.5];
const f32 = (values: number[], shape = [values.length]) => new NdArray('float32', shape, Float32Array.from(values));

/** Values a source dtype holds; floats stay where every target type defines the conversion. */
function values(from: DType, to: DType, n: number, r: Rng): NdArray {
  const x = NdArray.zeros(from, [n]), d = x.data as Float32Array;
  for (let i = 0; i < n; i++) {
    if (from === 'bool') d[i] = r.int(0, 1);
    else if (from.startsWith('float')) d[i] = to === 'bool' && i % 3 === 0 ? [0, -0, NaN][i % 9 / 3] : r.float(to.startsWith('u') ? 0 : -100, 100);
    else if (from.endsWith('64')) (x.data as BigInt64Array)[i] = BigInt.asIntN(64, (BigInt(r.int(0, 2 ** 32 - 1)) << BigInt(r.int(0, 32))) - BigInt(r.int(0, 2 ** 20)));
    else d[i] = r.int(-(2 ** 31), 2 ** 32 - 1); // stores wrap: the whole range of the dtype
  }
  return x;
}

interface Case { input: NdArray; to: DType; attrs?: Record<string, AttrInput>; opset?: number; op?: string; widen?: boolean }

/** x -> Cast(to) -> y; `widen` casts narrow float results to float32 so outputs compare as values. */
function model({ input, to, attrs = {}, opset = 21, op = 'Cast', widen }: Case): Uint8Array {
  const g = new GraphBuilder();
  g.input('x', input.dtype, [...input.shape]);
  const like = op === 'CastLike' ? g.node('Cast', ['x'], { to: onnxCode(to) }) : [];
  const y = g.node(op, ['x', ...like], op === 'CastLike' ? attrs : { to: onnxCode(to), ...attrs }, widen ? 1 : ['y'])[0];
  if (widen) g.node('Cast', [y], { to: 1 }, ['y']);
  g.output('y', widen ? 'float32' : to);
  return g.model({ opset });
}
async function vsOrt(c: Case) {
  try { await expectMatchesOrt(model(c), { x: c.input }, { rtol: 0, atol: 0 }); } catch (e) {
    throw new Error(`${c.op ?? 'Cast'} ${c.input.dtype} -> ${c.to} ${JSON.stringify(c.attrs ?? {})}: ${(e as Error).message}`);
  }
}
async function ours(c: Case): Promise<NdArray> {
  const s = await InferenceSession.create(model(c));
  return s.runValues(new Map([['x', c.input]]))[0] as NdArray;
}
const list = (x: NdArray) => Array.from(x.data as ArrayLike<number | bigint | string>);

describe('Cast between numeric types matches onnxruntime', () => {
  const r = rng(1);
  for (const from of NUMERIC) {
    it(`from ${from} to every numeric type`, async () => {
      for (const to of [...NUMERIC, 'float16', 'bfloat16'] as DType[]) {
        await vsOrt({ input: values(from, to, 24, r), to, widen: to === 'float16' || to === 'bfloat16' });
      }
    });
  }
  it('int64 and uint64 convert exactly, and to float32 with a single rounding', async () => {
    // 2^60 + 2^36 + 1 is just above a float32 tie: rounding through float64 first would land on the tie and go to even
    const x = new NdArray('int64', [4], BigInt64Array.from([2n ** 60n + 2n ** 36n + 1n, -(2n ** 63n), 2n ** 53n + 1n, -1n]));
    await vsOrt({ input: x, to: 'float32' });
    await vsOrt({ input: x, to: 'float64' });
    expect(list(await ours({ input: x, to: 'uint64' }))).toEqual([2n ** 60n + 2n ** 36n + 1n, 2n ** 63n, 2n ** 53n + 1n, 2n ** 64n - 1n]);
    expect(list(await ours({ input: x, to: 'int32' }))).toEqual([1, 0, 1, -1]);
  });
  it('empty and rank-0 tensors', async () => {
    await vsOrt({ input: f32([], [0, 3]), to: 'int64' });
    await vsOrt({ input: f32([2.5], []), to: 'int8' });
  });
});

describe('Cast with strings matches onnxruntime', () => {
  it('numbers to strings', async () => {
    await vsOrt({ input: f32([0.47892547, 1, -2.5, 1e-7, 123456789, 1e20, NaN, Infinity, -Infinity, 0.1, 100, -0, 3.4e38, 1e-45, 65504.5, 0.0001, 0.00001]), to: 'string' });
    await vsOrt({ input: new NdArray('float64', [6], Float64Array.from([1 / 3, 12345678, 123456789012, 0.1 + 0.2, 5e-324, 99999999.5])), to: 'string' });
    await vsOrt({ input: new NdArray('int64', [3], BigInt64Array.from([-(2n ** 63n), 0n, 2n ** 62n + 7n])), to: 'string' });
    await vsOrt({ input: new NdArray('uint64', [2], BigUint64Array.from([2n ** 64n - 1n, 5n])), to: 'string' });
    await vsOrt({ input: new NdArray('int8', [2], Int8Array.from([-128, 7])), to: 'string' });
    await vsOrt({ input: new NdArray('bool', [2], Uint8Array.from([1, 0])), to: 'string' });
  });
  it('strings to numbers', async () => {
    const text = (s: string[]) => new NdArray('string', [s.length], s);
    await vsOrt({ input: text(['1.5', ' 2', 'INF', '-inf', '+INF', 'nan', 'NaN', '1e-5', '1E8', '-Infinity', '3abc', '0x10']), to: 'float32' });
    await vsOrt({ input: text(['1.5', '-0.25', '1e300', 'inf']), to: 'float64' });
    await vsOrt({ input: text(['1', '-5', '2147483648', '1.5', '1e3', ' 7', '+3', '99999999999']), to: 'int32' });
    await vsOrt({ input: text(['9223372036854775807', '-9223372036854775808', '-5', '1.5']), to: 'int64' });
    await vsOrt({ input: text(['18446744073709551615', '7']), to: 'uint64' });
    await vsOrt({ input: text(['300', '-1', '256']), to: 'uint8' });
    await vsOrt({ input: text(['0', '1', '2', '0.5', '-3']), to: 'bool' });
  });
  it('a string that is not an integer cannot become one', async () => {
    await expect(ours({ input: new NdArray('string', [1], ['abc']), to: 'int32' })).rejects.toThrow(/'abc', which is not an integer/);
  });
});

describe('Cast to narrow floats matches onnxruntime', () => {
  for (const to of FLOAT8) {
    it(`${to}, saturating and not, from float32 and float16`, async () => {
      for (const saturate of [1, 0]) {
        await vsOrt({ input: f32(SPECIAL.flatMap((v) => [v, -v])), to, attrs: { saturate }, opset: 19, widen: true });
      }
      const x = f32(SPECIAL.filter((v) => !(Math.abs(v) > 65504)));
      const g = new GraphBuilder(); // float16 source: cast to float16 first, in the graph
      g.input('x', 'float32', [x.size]);
      g.node('Cast', [g.node('Cast', [g.node('Cast', ['x'], { to: 10 })[0]], { to: onnxCode(to) })[0]], { to: 1 }, ['y']);
      g.output('y', 'float32');
      await expectMatchesOrt(g.model({ opset: 19 }), { x }, { rtol: 0, atol: 0 });
    });
  }
  // Where onnxruntime departs from the spec's tables ([x] > FLT_MAX gives NaN, or inf for e5m2), by hand.
  it('without saturation, overflow is judged on the rounded value', async () => {
    const cast = async (to: DType, x: number[]) => list(await ours({ input: f32(x), to, attrs: { saturate: 0 }, opset: 19 }));
    expect(await cast('float8e4m3fn', [464, 470, 480, 481, -480])).toEqual([448, NaN, NaN, NaN, NaN]); // onnxruntime: 448 for +-480, 481
    expect(await cast('float8e5m2', [61439, 61440, -61440])).toEqual([57344, Infinity, -Infinity]); // onnxruntime: NaN for 61440
  });
  it('float8 back to float16 and float64', async () => {
    for (const from of FLOAT8) {
      const g = new GraphBuilder();
      g.input('x', 'float32', [SPECIAL.length]);
      const y8 = g.node('Cast', ['x'], { to: onnxCode(from) })[0];
      g.output(g.node('Cast', [g.node('Cast', [y8], { to: 10 })[0]], { to: 1 }, ['a'])[0], 'float32');
      g.output(g.node('Cast', [y8], { to: 11 }, ['b'])[0], 'float64');
      await expectMatchesOrt(g.model({ opset: 19 }), { x: f32(SPECIAL) }, { rtol: 0, atol: 0 });
    }
  });
  it('float8e8m0 in each round_mode, saturating and not', async () => {
    const x = f32([0, -0, -3, -Infinity, 0.124, 0.25, 0.5, 1.1, 1.5, 1.75, 2, 3, 4, 8, 2 ** -128, 2 ** -127, 1.5 * 2 ** -127, 1.2 * 2 ** 126,
      2 ** 127, 3e38, Infinity, NaN, 0.75]);
    for (const round_mode of ['up', 'down', 'nearest']) {
      for (const saturate of [1, 0]) await vsOrt({ input: x, to: 'float8e8m0', attrs: { round_mode, saturate }, opset: 24, widen: true });
    }
  });
  it('float4e2m1 rounds to nearest even and saturates (hand-checked: no onnxruntime kernel)', async () => {
    const x = f32([0.48, 0.25, 1.05, -3.5, -8, 9, 1e6, 1e-7, Infinity, -Infinity, -4, 0.01, -0, 0.75, 2.5, 5]);
    const y = await ours({ input: x, to: 'float4e2m1', opset: 23 });
    expect(list(y)).toEqual([0.5, 0, 1, -4, -6, 6, 6, 0, 6, -6, -4, 0, -0, 1, 2, 4]);
    expect(list(await ours({ input: y, to: 'int8', opset: 23 }))).toEqual([0, 0, 1, -4, -6, 6, 6, 0, 6, -6, -4, 0, 0, 1, 2, 4]);
  });
});

describe('Cast to sub-byte integers matches onnxruntime', () => {
  // fractions and halves: onnxruntime rounds half away from zero here, where wider integers truncate
  const x = f32([...Array.from({ length: 31 }, (_, i) => i - 15 + (i % 3) * 0.4), 0.5, 1.5, 2.5, -0.5, -2.5, 7.5, 8.5, -8.5, 16.5, NaN, Infinity, 1e10]);
  for (const [to, opset] of [['int4', 21], ['uint4', 21], ['int2', 25], ['uint2', 25]] as [DType, number][]) {
    it(`${to} wraps like the other integers`, async () => {
      await vsOrt({ input: x, to, opset, widen: true });
      const g = new GraphBuilder(); // and back out to int8 and int64
      g.input('x', 'float32', [x.size]);
      const y = g.node('Cast', ['x'], { to: onnxCode(to) })[0];
      g.output(g.node('Cast', [y], { to: 3 }, ['a'])[0], 'int8');
      g.output(g.node('Cast', [y], { to: 7 }, ['b'])[0], 'int64');
      await expectMatchesOrt(g.model({ opset }), { x }, { rtol: 0, atol: 0 });
    });
  }
});

describe('CastLike', () => {
  it('takes its target type from the second input', async () => {
    const r = rng(3);
    for (const to of ['int32', 'float64', 'uint8', 'int64', 'bool'] as DType[]) await vsOrt({ input: values('float32', to, 10, r), to, op: 'CastLike', opset: 15 });
    await vsOrt({ input: f32(SPECIAL), to: 'float8e4m3fn', op: 'CastLike', attrs: { saturate: 0 }, opset: 19, widen: true });
  });
});

describe('Cast attributes', () => {
  it('Cast-1 names its target type', async () => {
    const g = new GraphBuilder();
    g.input('x', 'float32', [3]);
    g.output(g.node('Cast', ['x'], { to: 'INT32' }, ['y'])[0], 'int32');
    const s = await InferenceSession.create(g.model({ opset: 1 }));
    expect(list(s.runValues(new Map([['x', f32([1.7, -2.7, 3])]]))[0] as NdArray)).toEqual([1, -2, 3]);
  });
  it('rejects an unknown target and round_mode', async () => {
    await expect(ours({ input: f32([1]), to: 'float32', attrs: { to: 99 } })).rejects.toThrow(/attribute 'to' \(99\)/);
    await expect(ours({ input: f32([1]), to: 'float8e8m0', attrs: { round_mode: 'odd' }, opset: 24 })).rejects.toThrow(/round_mode/);
  });
});

describe('BitCast matches onnxruntime', () => {
  const r = rng(5);
  const pairs: [DType, DType][] = [['float32', 'int32'], ['int32', 'float32'], ['uint32', 'int32'], ['float64', 'int64'], ['int64', 'float64'],
    ['uint64', 'int64'], ['int8', 'uint8'], ['uint8', 'int8'], ['uint16', 'int16'], ['int16', 'uint16']];
  it('same-width pairs, values reinterpreted bit for bit', async () => {
    for (const [from, to] of pairs) {
      const x = values(from, 'int64', 12, r);
      if (from === 'float32' || from === 'float64') (x.data as Float32Array).set([NaN, -0, Infinity, 1.5e-40]);
      await vsOrt({ input: x, to, op: 'BitCast', opset: 26 });
    }
  });
  it('float16 through its bits and back', async () => {
    const g = new GraphBuilder();
    g.input('x', 'float32', [6]);
    const b = g.node('BitCast', [g.node('Cast', ['x'], { to: 10 })[0]], { to: onnxCode('int16') })[0];
    g.output(g.node('Cast', [b], { to: 1 }, ['a'])[0], 'float32');
    g.output(g.node('Cast', [g.node('BitCast', [b], { to: 10 })[0]], { to: 1 }, ['b'])[0], 'float32');
    await expectMatchesOrt(g.model({ opset: 26 }), { x: f32([1, -2.5, 0.1, -0, 65504, Infinity]) }, { rtol: 0, atol: 0 });
  });
  it('types onnxruntime has no kernel for (hand-checked bit patterns)', async () => {
    const bits = async (input: NdArray, to: DType) => list(await ours({ input, to, op: 'BitCast', opset: 26 }));
    expect(await bits(new NdArray('bool', [3], Uint8Array.from([1, 0, 1])), 'uint8')).toEqual([1, 0, 1]);
    expect(await bits(new NdArray('uint8', [3], Uint8Array.from([0, 2, 255])), 'bool')).toEqual([0, 1, 1]);
    expect(await bits(new NdArray('bfloat16', [3], Float32Array.from([1, -2, 0.5])), 'uint16')).toEqual([0x3f80, 0xc000, 0x3f00]);
    expect(await bits(new NdArray('uint8', [4], Uint8Array.from([0x38, 0x7e, 0xff, 0x80])), 'float8e4m3fn')).toEqual([1, 448, NaN, -0]);
    expect(await bits(new NdArray('float8e5m2', [2], Float32Array.from([-Infinity, 1.5])), 'int8')).toEqual([-4, 0x3e]);
    expect(await bits(new NdArray('uint8', [3], Uint8Array.from([127, 0, 254])), 'float8e8m0')).toEqual([1, 2 ** -127, 2 ** 127]);
    expect(await bits(new NdArray('int4', [3], Int8Array.from([-1, 7, -8])), 'uint4')).toEqual([15, 7, 8]);
    expect(await bits(new NdArray('uint4', [3], Uint8Array.from([15, 2, 9])), 'float4e2m1')).toEqual([-6, 1, -0.5]);
    expect(await bits(new NdArray('uint2', [2], Uint8Array.from([3, 1])), 'int2')).toEqual([-1, 1]);
    expect(await bits(new NdArray('complex64', [1], Float32Array.from([1, -2])), 'uint64')).toEqual([0xc00000003f800000n]);
  });
  it('rejects types of different widths', async () => {
    await expect(ours({ input: f32([1]), to: 'int64', op: 'BitCast', opset: 26 })).rejects.toThrow(/float32 \(32 bits\), but 'to' is int64 \(64 bits\)/);
  });
});

describe('type and shape inference', () => {
  it('Cast takes its dtype from `to`, CastLike from its second input', async () => {
    const g = new GraphBuilder();
    g.input('x', 'float32', ['b', 3]);
    g.input('like', 'int8', [1]);
    g.output(g.node('Cast', ['x'], { to: onnxCode('float8e4m3fn') }, ['a'])[0], null);
    g.output(g.node('CastLike', ['x', 'like'], {}, ['b'])[0], null);
    g.output(g.node('BitCast', ['x'], { to: onnxCode('uint32') }, ['c'])[0], null);
    const m = (await InferenceSession.create(g.model({ opset: 26 }))).outputMetadata;
    expect(m.map((o) => [o.type, o.shape])).toEqual([['float8e4m3fn', ['b', 3]], ['int8', ['b', 3]], ['uint32', ['b', 3]]]);
  });
});
