// Comparisons, boolean logic, bitwise ops, Where and NaN/Inf tests against onnxruntime-node over random
// shapes, broadcasting and dtypes; hand-checked values where onnxruntime has no kernel.
import { describe, expect, it } from 'vitest';
import { GraphBuilder, type AttrInput } from '../loaders/builder.js';
import { InferenceSession } from '../index.js';
import type { DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { expectMatchesOrt, rng } from './helpers/oracle.js';

type Rng = ReturnType<typeof rng>;
const NUMERIC: DType[] = ['float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64'];
const INTS = NUMERIC.slice(2);
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Random values of a dtype drawn from few distinct values, so that equal pairs are common. */
function rand(dtype: DType, shape: number[], r: Rng, spread = 4): NdArray {
  const n = size(shape), out = NdArray.zeros(dtype, shape);
  if (dtype === 'string') for (let i = 0; i < n; i++) (out.data as string[])[i] = ['a', 'b', '', 'ab'][r.int(0, 3)];
  else if (dtype === 'int64' || dtype === 'uint64') for (let i = 0; i < n; i++) (out.data as BigInt64Array)[i] = BigInt(r.int(-spread, spread)) * 2n ** 40n;
  else if (dtype === 'bool') for (let i = 0; i < n; i++) (out.data as Uint8Array)[i] = r.int(0, 1);
  else for (let i = 0; i < n; i++) (out.data as Float32Array)[i] = dtype.startsWith('float') ? r.int(-spread, spread) / 2 : r.int(-spread, spread);
  return out;
}

/** Shapes that broadcast: suffixes of one shape with some dims set to 1. */
function bcast(r: Rng, k: number): number[][] {
  const rank = r.int(0, 4), full = Array.from({ length: rank }, () => r.int(1, 4));
  return Array.from({ length: k }, () => full.slice(r.int(0, rank)).map((d) => (r.next() < 0.3 ? 1 : d)));
}

interface Case { op: string; inputs: NdArray[]; attrs?: Record<string, AttrInput>; opset?: number; out: DType }
function model({ op, inputs, attrs = {}, opset = 18, out }: Case): Uint8Array {
  const g = new GraphBuilder();
  g.node(op, inputs.map((x, i) => g.input(`x${i}`, x.dtype, [...x.shape])), attrs, ['y']);
  g.output('y', out);
  return g.model({ opset });
}
const feeds = (inputs: NdArray[]) => Object.fromEntries(inputs.map((x, i) => [`x${i}`, x]));
async function vsOrt(c: Case) {
  try { await expectMatchesOrt(model(c), feeds(c.inputs)); } catch (e) {
    throw new Error(`${c.op}(${c.inputs.map((x) => `${x.dtype}[${x.shape}]`).join(', ')}): ${(e as Error).message}`);
  }
}
async function ours(c: Case): Promise<NdArray> {
  const s = await InferenceSession.create(model(c));
  return s.runValues(new Map(Object.entries(feeds(c.inputs))))[0] as NdArray;
}
const list = (x: NdArray) => Array.from(x.data as ArrayLike<number | bigint>);

describe('comparisons match onnxruntime', () => {
  for (const op of ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual']) {
    it(`${op}: every numeric dtype with broadcasting`, async () => {
      const r = rng(op.length);
      for (const dtype of NUMERIC) {
        for (let t = 0; t < 3; t++) {
          const [sa, sb] = bcast(r, 2);
          await vsOrt({ op, inputs: [rand(dtype, sa, r), rand(dtype, sb, r)], out: 'bool' });
        }
      }
    });
  }
  it('Equal on bool and string tensors', async () => {
    const r = rng(3);
    for (const dtype of ['bool', 'string'] as DType[]) {
      const [sa, sb] = bcast(r, 2);
      await vsOrt({ op: 'Equal', inputs: [rand(dtype, sa, r), rand(dtype, sb, r)], out: 'bool', opset: 19 });
    }
  });
  it('NaN compares unequal and unordered; int64 compares exactly', async () => {
    const a = new NdArray('float32', [3], Float32Array.from([NaN, 1, -0])), b = new NdArray('float32', [3], Float32Array.from([NaN, NaN, 0]));
    expect(list(await ours({ op: 'Equal', inputs: [a, b], out: 'bool' }))).toEqual([0, 0, 1]);
    expect(list(await ours({ op: 'LessOrEqual', inputs: [a, b], out: 'bool' }))).toEqual([0, 0, 1]);
    const x = new NdArray('int64', [2], BigInt64Array.from([2n ** 60n, 2n ** 60n])), y = new NdArray('int64', [2], BigInt64Array.from([2n ** 60n + 1n, 2n ** 60n]));
    expect(list(await ours({ op: 'Less', inputs: [x, y], out: 'bool' }))).toEqual([1, 0]);
  });
  it('rejects a dtype outside the constraint', async () => {
    const r = rng(5);
    await expect(ours({ op: 'Less', inputs: [rand('bool', [2], r), rand('bool', [2], r)], out: 'bool' })).rejects.toThrow(/input 0 \('x0'\) has dtype bool/);
  });
});

describe('boolean logic', () => {
  const r = rng(7);
  for (const op of ['And', 'Or', 'Xor']) {
    it(`${op} with broadcasting`, async () => {
      for (let t = 0; t < 4; t++) {
        const [sa, sb] = bcast(r, 2);
        await vsOrt({ op, inputs: [rand('bool', sa, r), rand('bool', sb, r)], out: 'bool' });
      }
    });
  }
  it('Not', async () => {
    await vsOrt({ op: 'Not', inputs: [rand('bool', [3, 4], r)], out: 'bool' });
    await vsOrt({ op: 'Not', inputs: [rand('bool', [], r)], out: 'bool' });
  });
});

describe('bitwise ops', () => {
  const r = rng(11);
  const wide = (dtype: DType, shape: number[]) => { // full-range values exercise the sign and high bits
    const x = NdArray.zeros(dtype, shape), d = x.data as Int32Array;
    for (let i = 0; i < d.length; i++) d[i] = (dtype.endsWith('64') ? BigInt.asIntN(64, BigInt(r.int(0, 2 ** 32 - 1)) << 31n | BigInt(r.int(0, 2 ** 31))) : r.int(-(2 ** 31), 2 ** 31 - 1)) as never;
    return x;
  };
  for (const op of ['BitwiseAnd', 'BitwiseOr', 'BitwiseXor']) {
    it(`${op} on every integer dtype`, async () => {
      for (const dtype of INTS) {
        const [sa, sb] = bcast(r, 2);
        await vsOrt({ op, inputs: [wide(dtype, sa), wide(dtype, sb)], out: dtype });
      }
    });
  }
  it('BitwiseNot on every integer dtype', async () => {
    for (const dtype of INTS) await vsOrt({ op: 'BitwiseNot', inputs: [wide(dtype, [2, 3])], out: dtype });
  });
  it('BitShift both ways, including shifts of the full width (uint16 by hand: onnxruntime has no kernel)', async () => {
    for (const dtype of ['uint8', 'uint32', 'uint64'] as DType[]) {
      const bits = Number(dtype.slice(4));
      for (const direction of ['LEFT', 'RIGHT']) {
        const [sa, sb] = bcast(r, 2), x = wide(dtype, sa), s = NdArray.zeros(dtype, sb), d = s.data as Uint8Array;
        for (let i = 0; i < d.length; i++) d[i] = (dtype === 'uint64' ? BigInt(r.int(0, bits - 1)) : r.int(0, bits - 1)) as never;
        await vsOrt({ op: 'BitShift', inputs: [x, s], attrs: { direction }, out: dtype, opset: 11 });
      }
    }
    const x = new NdArray('uint16', [4], Uint16Array.from([0xffff, 1, 0x8001, 7])), s = new NdArray('uint16', [4], Uint16Array.from([4, 15, 16, 40]));
    expect(list(await ours({ op: 'BitShift', inputs: [x, s], attrs: { direction: 'LEFT' }, out: 'uint16', opset: 11 }))).toEqual([0xfff0, 0x8000, 0, 0]);
    expect(list(await ours({ op: 'BitShift', inputs: [x, s], attrs: { direction: 'RIGHT' }, out: 'uint16', opset: 11 }))).toEqual([0x0fff, 0, 0, 0]);
    const big = new NdArray('uint64', [2], BigUint64Array.from([2n ** 63n + 1n, 3n])), by = new NdArray('uint64', [2], BigUint64Array.from([1n, 64n]));
    expect(list(await ours({ op: 'BitShift', inputs: [big, by], attrs: { direction: 'LEFT' }, out: 'uint64', opset: 11 }))).toEqual([2n, 0n]);
  });
});

describe('Where', () => {
  const r = rng(13);
  it('selects with three-way broadcasting', async () => {
    for (const dtype of ['float32', 'float64', 'uint8', 'int32', 'int64', 'string'] as DType[]) { // onnxruntime's kernels
      for (let t = 0; t < 3; t++) {
        const [sc, sx, sy] = bcast(r, 3);
        await vsOrt({ op: 'Where', inputs: [rand('bool', sc, r), rand(dtype, sx, r), rand(dtype, sy, r)], out: dtype, opset: 16 });
      }
    }
  });
  it('keeps every other dtype\'s values as they are', async () => {
    const c = new NdArray('bool', [2, 1], Uint8Array.from([1, 0]));
    for (const dtype of ['int8', 'int16', 'uint16', 'uint32', 'uint64', 'bool', 'float16'] as DType[]) {
      const x = new NdArray(dtype, [2], NdArray.zeros(dtype, [2]).data), y = new NdArray(dtype, [], NdArray.zeros(dtype, []).data);
      const big = dtype === 'uint64';
      (x.data as Int32Array).set((big ? [5n, 1n] : [5, 1]) as never); (y.data as Int32Array)[0] = (big ? 0n : 0) as never;
      const got = await ours({ op: 'Where', inputs: [c, x, y], out: dtype, opset: 16 });
      expect([got.dtype, got.shape, list(got)]).toEqual([dtype, [2, 2], (big ? [5n, 1n, 0n, 0n] : [5, 1, 0, 0])]);
    }
  });
  it('empty and rank-0 operands', async () => {
    await vsOrt({ op: 'Where', inputs: [rand('bool', [0, 2], r), rand('float32', [1, 2], r), rand('float32', [], r)], out: 'float32' });
    await vsOrt({ op: 'Where', inputs: [rand('bool', [], r), rand('float32', [], r), rand('float32', [], r)], out: 'float32' });
  });
});

describe('IsNaN and IsInf', () => {
  const special = (dtype: DType) => new NdArray(dtype, [2, 3], (dtype === 'float32' ? Float32Array : Float64Array).from([NaN, Infinity, -Infinity, 0, -1.5, 3e38]));
  it('IsNaN', async () => {
    for (const dtype of ['float32', 'float64'] as DType[]) await vsOrt({ op: 'IsNaN', inputs: [special(dtype)], out: 'bool', opset: 20 });
  });
  it('IsInf with each detect_positive/detect_negative combination', async () => {
    for (const dtype of ['float32', 'float64'] as DType[]) {
      for (const attrs of [{}, { detect_positive: 0 }, { detect_negative: 0 }, { detect_positive: 0, detect_negative: 0 }]) {
        await vsOrt({ op: 'IsInf', inputs: [special(dtype)], attrs, out: 'bool', opset: 20 });
      }
    }
  });
});

describe('type and shape inference', () => {
  async function inferred(op: string, ins: [DType, (number | string)[]][], opset = 18) {
    const g = new GraphBuilder();
    g.output(g.node(op, ins.map(([d, s], i) => g.input(`x${i}`, d, s)), {}, ['y'])[0], null);
    const m = (await InferenceSession.create(g.model({ opset }))).outputMetadata[0];
    return [m.type, m.typeInfo?.kind === 'tensor' ? m.typeInfo.shape : undefined];
  }
  it('comparisons and tests give bool; Where takes X\'s dtype over all three shapes', async () => {
    expect(await inferred('Less', [['int64', ['n', 1]], ['int64', [4]]])).toEqual(['bool', ['n', 4]]);
    expect(await inferred('IsNaN', [['float16', [2, 'k']]], 20)).toEqual(['bool', [2, 'k']]);
    expect(await inferred('Where', [['bool', [2, 1]], ['string', ['n']], ['string', []]])).toEqual(['string', [2, 'n']]);
    expect(await inferred('BitwiseXor', [['uint16', [3]], ['uint16', [1]]])).toEqual(['uint16', [3]]);
  });
});
