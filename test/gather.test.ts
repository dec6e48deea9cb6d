// Indexing ops against onnxruntime-node: random shapes, axes and (negative) indices, reductions, and
// out-of-range indices failing with a message instead of reading or writing garbage.
import { describe, expect, it } from 'vitest';
import type { DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { InferenceSession, Tensor } from '../index.js';
import { GraphBuilder, i64, type AttrInput } from '../loaders/builder.js';
import { expectMatchesOrt, rng } from './helpers/oracle.js';

type Rng = ReturnType<typeof rng>;
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

function rand(dtype: DType, shape: number[], r: Rng, lo = -9, hi = 9): NdArray {
  const v = Array.from({ length: prod(shape) }, () => r.int(lo, hi));
  if (dtype === 'string') return new NdArray(dtype, shape, v.map((x) => `v${x}`));
  if (dtype === 'int64') return new NdArray(dtype, shape, BigInt64Array.from(v, BigInt));
  if (dtype === 'int32') return new NdArray(dtype, shape, Int32Array.from(v));
  if (dtype === 'bool') return new NdArray(dtype, shape, Uint8Array.from(v, (x) => Number(x > 0)));
  return new NdArray(dtype, shape, Float32Array.from(v, (x) => x / 2));
}

function model(op: string, ins: NdArray[], attrs: Record<string, AttrInput> = {}, outputs = 1, opset = 18) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = ins.map((t, i) => ((feeds[`in${i}`] = t), g.input(`in${i}`, t.dtype, [...t.shape])));
  for (const o of g.node(op, names, attrs, outputs)) g.output(o, null);
  return { bytes: g.model({ opset }), feeds };
}

const check = (op: string, ins: NdArray[], attrs: Record<string, AttrInput> = {}, outputs = 1, opset = 18) => {
  const m = model(op, ins, attrs, outputs, opset);
  return expectMatchesOrt(m.bytes, m.feeds);
};

async function rejects(op: string, ins: NdArray[], attrs: Record<string, AttrInput>, message: RegExp, opset = 18) {
  const m = model(op, ins, attrs, 1, opset), s = await InferenceSession.create(m.bytes);
  const feeds = Object.fromEntries(Object.entries(m.feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)]));
  await expect(s.run(feeds)).rejects.toThrow(message);
}

const DTYPES: DType[] = ['float32', 'int64', 'int32', 'string', 'bool'];
const dims = (r: Rng, rank: number, lo = 1, hi = 4) => Array.from({ length: rank }, () => r.int(lo, hi));
/** Indices in [-n, n) as int64 or int32. */
const indices = (r: Rng, shape: number[], n: number) => rand(r.pick(['int64', 'int32'] as DType[]), shape, r, -n, n - 1);

describe('Gather family', () => {
  it('Gather: random axes and index shapes, negative indices', async () => {
    const r = rng(1);
    for (let t = 0; t < 20; t++) {
      const rank = r.int(1, 4), shape = dims(r, rank), axis = r.int(-rank, rank - 1);
      const n = shape[(axis + rank) % rank];
      await check('Gather', [rand(r.pick(DTYPES), shape, r), indices(r, dims(r, r.int(0, 2), 0, 3), n)], { axis });
    }
  });
  it('GatherElements: index tensors no larger than the data off the axis', async () => {
    const r = rng(2);
    for (let t = 0; t < 20; t++) {
      const rank = r.int(1, 4), shape = dims(r, rank), axis = r.int(-rank, rank - 1), ax = (axis + rank) % rank;
      const ishape = shape.map((d, i) => (i === ax ? r.int(0, 5) : r.int(1, d)));
      await check('GatherElements', [rand(r.pick(DTYPES), shape, r), indices(r, ishape, shape[ax])], { axis });
    }
  });
  it('GatherND with and without batch_dims', async () => {
    const r = rng(3);
    for (let t = 0; t < 20; t++) {
      const b = r.int(0, 1), rank = r.int(b + 1, 4), shape = dims(r, rank), k = r.int(1, rank - b);
      const lead = [...shape.slice(0, b), ...dims(r, r.int(0, 2))];
      const idx = new NdArray('int64', [...lead, k], BigInt64Array.from({ length: prod(lead) * k }, (_, i) => BigInt(r.int(-shape[b + (i % k)], shape[b + (i % k)] - 1))));
      await check('GatherND', [rand(r.pick(DTYPES), shape, r), idx], { batch_dims: b });
    }
  });
  it('fails on out-of-range indices, naming the node', async () => {
    const x = rand('float32', [3, 4], rng(4));
    await rejects('Gather', [x, i64([2], [0, 4])], { axis: 1 }, /Gather_0.*index 4 is out of range for axis 1 of size 4/);
    await rejects('GatherElements', [x, i64([1, 1], [-4])], {}, /index -4 is out of range/);
    await rejects('GatherND', [x, i64([1, 2], [2, 9])], {}, /index 9 is out of range/);
  });
});

describe('Scatter family', () => {
  it('ScatterElements with every reduction', async () => {
    const r = rng(5);
    for (const reduction of ['none', 'add', 'mul', 'max', 'min']) {
      for (let t = 0; t < 5; t++) {
        const rank = r.int(1, 3), shape = dims(r, rank, 2, 4), axis = r.int(-rank, rank - 1), ax = (axis + rank) % rank;
        const ishape = shape.map((d, i) => (i === ax ? 1 : r.int(1, d))); // one update per slot keeps 'none' well defined
        const dtype = r.pick(['float32', 'int64', 'int32'] as DType[]);
        await check('ScatterElements', [rand(dtype, shape, r), indices(r, ishape, shape[ax]), rand(dtype, ishape, r)], { axis, reduction });
      }
    }
  });
  it('ScatterND with every reduction, duplicates accumulating', async () => {
    const r = rng(6);
    for (const reduction of ['none', 'add', 'mul', 'max', 'min']) {
      const data = rand('float32', [4, 3, 2], r), k = r.int(1, 3), n = reduction === 'none' ? 1 : 3;
      const idx = new NdArray('int64', [n, k], BigInt64Array.from({ length: n * k }, (_, i) => BigInt(r.int(-[4, 3, 2][i % k], [4, 3, 2][i % k] - 1))));
      await check('ScatterND', [data, idx, rand('float32', [n, ...[4, 3, 2].slice(k)], r)], { reduction });
    }
  });
  it('deprecated Scatter (opset 10) and string data', async () => {
    const r = rng(7);
    await check('Scatter', [rand('float32', [3, 3], r), i64([1, 3], [1, 0, 2]), rand('float32', [1, 3], r)], { axis: 0 }, 1, 10);
    await check('ScatterElements', [rand('string', [2, 3], r), i64([2, 1], [2, -3]), rand('string', [2, 1], r)], { axis: 1 });
  });
  it('fails on out-of-range indices', async () => {
    const x = rand('float32', [3], rng(8));
    await rejects('ScatterND', [x, i64([1, 1], [3]), rand('float32', [1], rng(9))], {}, /index 3 is out of range/);
    await rejects('ScatterElements', [x, i64([1], [-4]), rand('float32', [1], rng(9))], {}, /index -4 is out of range/);
  });
});

describe('Compress / NonZero / Unique', () => {
  it('Compress along an axis, flattened, and with a short condition', async () => {
    const r = rng(10), x = rand('float32', [3, 4], r), cond = (v: number[]) => new NdArray('bool', [v.length], Uint8Array.from(v));
    await check('Compress', [x, cond([1, 0, 1, 1])], { axis: 1 });
    await check('Compress', [x, cond([0, 1])], { axis: -2 });
    await check('Compress', [x, cond([1, 0, 0, 1, 1, 0, 1])]);
    await check('Compress', [x, cond([1, 0, 1, 0, 0, 0])], { axis: 1 });
    await rejects('Compress', [x, cond([1, 0, 1, 0, 1])], { axis: 1 }, /condition selects index 4, past the 4 slices on axis 1/);
  });
  it('NonZero over random shapes and dtypes', async () => {
    const r = rng(11);
    for (let t = 0; t < 10; t++) {
      const x = rand(r.pick(['float32', 'int64', 'int32', 'bool'] as DType[]), dims(r, r.int(1, 4), 0, 4), r, -1, 1);
      await check('NonZero', [x]);
    }
    await check('NonZero', [rand('int32', [], r, 1, 1)]);
  });
  it('Unique sorted and unsorted, flat and along an axis', async () => {
    const r = rng(12);
    for (let t = 0; t < 16; t++) {
      const rank = r.int(1, 3), shape = dims(r, rank, 1, 5), dtype = r.pick(['float32', 'int64'] as DType[]);
      const attrs: Record<string, AttrInput> = { sorted: t % 2 };
      if (t % 4 >= 2) attrs.axis = r.int(-rank, rank - 1);
      await check('Unique', [rand(dtype, shape, r, -2, 2)], attrs, 4, 11);
    }
    await check('Unique', [new NdArray('string', [5], ['b', 'a', 'b', 'c', 'a'])], { sorted: 0 }, 4, 11);
    await check('Unique', [new NdArray('string', [5], ['b', 'a', 'b', 'c', 'a'])], {}, 4, 11);
  });
});
