// Generator ops against onnxruntime-node: every Constant attribute form, ConstantOfShape, Range,
// EyeLike and OneHot over dtypes and edge cases (empty results, negative deltas, out-of-range indices).
import { describe, expect, it } from 'vitest';
import type { DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { InferenceSession } from '../index.js';
import { f32, float, floats, GraphBuilder, i64, type AttrInput } from '../loaders/builder.js';
import { expectMatchesOrt, rng } from './helpers/oracle.js';

function model(op: string, ins: NdArray[], attrs: Record<string, AttrInput> = {}, opset = 18) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = ins.map((t, i) => ((feeds[`in${i}`] = t), g.input(`in${i}`, t.dtype, [...t.shape])));
  g.output(g.node(op, names, attrs)[0], null);
  return { bytes: g.model({ opset }), feeds };
}

const check = (op: string, ins: NdArray[], attrs: Record<string, AttrInput> = {}, opset = 18) => {
  const m = model(op, ins, attrs, opset);
  return expectMatchesOrt(m.bytes, m.feeds);
};

async function ours(op: string, ins: NdArray[], attrs: Record<string, AttrInput> = {}, opset = 18) {
  const m = model(op, ins, attrs, opset), s = await InferenceSession.create(m.bytes);
  return s.runValues(new Map(Object.entries(m.feeds)))[0] as NdArray;
}

const scalar = (dtype: DType, v: number) =>
  new NdArray(dtype, [], dtype === 'int64' ? BigInt64Array.of(BigInt(v)) : dtype === 'int32' ? Int32Array.of(v) : dtype === 'float64' ? Float64Array.of(v) : Float32Array.of(v));

describe('Constant', () => {
  it('accepts every value attribute form', async () => {
    await check('Constant', [], { value: f32([2, 2], [1, 2, 3, 4]) });
    await check('Constant', [], { value: new NdArray('string', [2], ['a', 'bc']) });
    await check('Constant', [], { value_float: float(2.5) });
    await check('Constant', [], { value_floats: floats([1, 2.5]) });
    await check('Constant', [], { value_int: 7 });
    await check('Constant', [], { value_ints: [1, -2, 3] });
    await check('Constant', [], { value_string: 'hi' });
    await check('Constant', [], { value_strings: ['x', 'y'] });
  });
  it('reports its exact type to inference and rejects two value forms', async () => {
    const s = await InferenceSession.create(model('Constant', [], { value: i64([2, 3], [1, 2, 3, 4, 5, 6]) }).bytes);
    expect(s.outputMetadata[0].typeInfo).toEqual({ kind: 'tensor', dtype: 'int64', shape: [2, 3] });
    await expect(InferenceSession.create(model('Constant', [], { value_int: 1, value_float: float(1) }).bytes)).rejects.toThrow(/exactly one value attribute/);
  });
});

describe('ConstantOfShape', () => {
  it('fills shapes with the value attribute, default float 0', async () => {
    await check('ConstantOfShape', [i64([3], [2, 3, 1])]);
    await check('ConstantOfShape', [i64([2], [2, 0])], { value: i64([1], [5]) });
    await check('ConstantOfShape', [i64([0], [])], { value: new NdArray('int32', [1], Int32Array.of(-3)) });
    await check('ConstantOfShape', [i64([1], [4])], { value: new NdArray('bool', [1], Uint8Array.of(1)) });
  });
});

describe('Range', () => {
  it('matches ORT for each dtype, negative deltas and empty ranges', async () => {
    const r = rng(3);
    for (const dtype of ['float32', 'float64', 'int32', 'int64'] as DType[]) {
      for (let t = 0; t < 6; t++) {
        const isInt = dtype.startsWith('int'), v = () => (isInt ? r.int(-20, 20) : r.float(-20, 20));
        const d = isInt ? r.pick([-3, -1, 1, 2, 5]) : r.pick([-2.5, -0.3, 0.7, 3]);
        await check('Range', [scalar(dtype, v()), scalar(dtype, v()), scalar(dtype, d)], {}, 11);
      }
    }
  });
  it('rejects a zero delta', async () => {
    await expect(ours('Range', [scalar('int64', 0), scalar('int64', 3), scalar('int64', 0)], {}, 11)).rejects.toThrow(/delta is 0/);
  });
});

describe('EyeLike / OneHot', () => {
  it('EyeLike on and off the diagonal, with and without dtype', async () => {
    for (const k of [-4, -1, 0, 2, 5]) await check('EyeLike', [f32([3, 4], new Array(12).fill(0))], { k }, 11);
    await check('EyeLike', [i64([4, 2], new Array(8).fill(0))], { dtype: 1 }, 11);
    await check('EyeLike', [f32([2, 3], new Array(6).fill(0))], { dtype: 7, k: 1 }, 11);
  });
  it('OneHot over axes, negative and out-of-range indices', async () => {
    const idx = i64([2, 3], [0, -1, 2, 5, -4, 1]);
    for (const axis of [-3, -2, -1, 0, 1, 2]) await check('OneHot', [idx, scalar('int64', 4), f32([2], [-1, 3])], { axis }, 11);
    await check('OneHot', [f32([3], [0, 1.7, -2]), scalar('int64', 3), new NdArray('string', [2], ['off', 'on'])], {}, 11);
    await check('OneHot', [f32([3], [0, 1.7, 2]), scalar('float32', 3.5), f32([2], [0, 9])], {}, 11);
  });
});
