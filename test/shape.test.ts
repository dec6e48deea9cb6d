// Shape ops against onnxruntime-node, plus the engine-only guarantees: views share storage, symbolic
// dims flow through inference, and bad shapes fail with a message naming the node.
import { describe, expect, it } from 'vitest';
import type { DType } from '../engine/dtype.js';
import type { Dim } from '../engine/graph.js';
import { NdArray } from '../engine/tensor.js';
import { InferenceSession, Tensor } from '../index.js';
import { GraphBuilder, i64, type AttrInput } from '../loaders/builder.js';
import { expectMatchesOrt, rng } from './helpers/oracle.js';

type Rng = ReturnType<typeof rng>;
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

function rand(dtype: DType, shape: number[], r: Rng): NdArray {
  const n = prod(shape), v = Array.from({ length: n }, () => r.int(-9, 9));
  if (dtype === 'string') return new NdArray(dtype, shape, v.map(String));
  if (dtype === 'int64') return new NdArray(dtype, shape, BigInt64Array.from(v, BigInt));
  if (dtype === 'bool') return new NdArray(dtype, shape, Uint8Array.from(v, (x) => Number(x > 0)));
  return new NdArray(dtype, shape, Float32Array.from(v, (x) => x / 4));
}

/** One-node model; `dims` overrides the declared input shapes (symbolic dims for inference tests). */
function model(op: string, ins: NdArray[], attrs: Record<string, AttrInput> = {}, outputs = 1, opset = 18, dims?: Dim[][]) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = ins.map((t, i) => ((feeds[`in${i}`] = t), g.input(`in${i}`, t.dtype, dims?.[i] ?? [...t.shape])));
  for (const o of g.node(op, names, attrs, outputs)) g.output(o, null);
  return { bytes: g.model({ opset }), feeds };
}

const check = (op: string, ins: NdArray[], attrs: Record<string, AttrInput> = {}, outputs = 1, opset = 18) => {
  const m = model(op, ins, attrs, outputs, opset);
  return expectMatchesOrt(m.bytes, m.feeds);
};

/** Runs on Lastmile only and returns the raw output values. */
async function ours(op: string, ins: NdArray[], attrs: Record<string, AttrInput> = {}, outputs = 1, opset = 18) {
  const m = model(op, ins, attrs, outputs, opset), s = await InferenceSession.create(m.bytes);
  return s.runValues(new Map(Object.entries(m.feeds))) as NdArray[];
}

async function inferred(op: string, ins: NdArray[], dims: Dim[][], attrs: Record<string, AttrInput> = {}, opset = 18) {
  const s = await InferenceSession.create(model(op, ins, attrs, 1, opset, dims).bytes);
  return s.outputMetadata[0].typeInfo;
}

async function rejects(op: string, ins: NdArray[], attrs: Record<string, AttrInput>, message: RegExp, opset = 18) {
  const m = model(op, ins, attrs, 1, opset), s = await InferenceSession.create(m.bytes);
  const feeds = Object.fromEntries(Object.entries(m.feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)]));
  await expect(s.run(feeds)).rejects.toThrow(message);
}

describe('Reshape', () => {
  it('matches ORT with 0 (copy) and -1 (inferred) dims', async () => {
    const r = rng(1);
    for (let t = 0; t < 20; t++) {
      const shape = Array.from({ length: r.int(1, 4) }, () => r.int(1, 4)), x = rand(r.pick(['float32', 'int64', 'string'] as DType[]), shape, r);
      const spec = [...shape].sort(() => r.next() - 0.5).map((d, i) => (i < shape.length && d === shape[i] && r.next() < 0.5 ? 0 : d));
      spec[r.int(0, spec.length - 1)] = -1;
      await check('Reshape', [x, i64([spec.length], spec)]);
    }
  });
  it('treats 0 as a real dim with allowzero', async () => {
    await check('Reshape', [rand('float32', [0, 3], rng(2)), i64([3], [3, 0, 2])], { allowzero: 1 });
  });
  it('shares the input storage and reads the shape attribute at opset 1', async () => {
    const x = rand('float32', [2, 6], rng(3));
    expect((await ours('Reshape', [x, i64([2], [3, -1])]))[0].data).toBe(x.data);
    expect((await ours('Reshape', [x], { shape: [0, 3, 2] }, 1, 1))[0].shape).toEqual([2, 3, 2]);
  });
  it('rejects element-count mismatches', async () => {
    await rejects('Reshape', [rand('float32', [2, 3], rng(4)), i64([2], [4, -1])], {}, /Reshape.*cannot reshape \[2,3\]/);
  });
});

describe('Flatten / Squeeze / Unsqueeze', () => {
  it('flattens on every axis, negative included', async () => {
    const x = rand('float32', [2, 3, 4, 5], rng(5));
    for (let axis = -4; axis <= 4; axis++) await check('Flatten', [x], { axis });
    expect((await ours('Flatten', [x], { axis: 2 }))[0].data).toBe(x.data);
  });
  it('squeezes by attribute (opset 11), by input (13) and all ones', async () => {
    const x = rand('int64', [1, 3, 1, 2, 1], rng(6));
    await check('Squeeze', [x], { axes: [0, -1] }, 1, 11);
    await check('Squeeze', [x, i64([2], [2, -5])], {}, 1, 13);
    await check('Squeeze', [x], {}, 1, 13);
    await rejects('Squeeze', [x, i64([1], [1])], {}, /cannot squeeze axis 1 of size 3/);
  });
  it('unsqueezes unsorted and negative axes', async () => {
    const x = rand('bool', [3, 2], rng(7));
    await check('Unsqueeze', [x], { axes: [0, 3] }, 1, 11);
    await check('Unsqueeze', [x, i64([3], [-1, 0, 2])], {}, 1, 13);
    await check('Unsqueeze', [rand('float32', [], rng(8)), i64([1], [0])], {}, 1, 13);
    await rejects('Unsqueeze', [x, i64([2], [1, -3])], {}, /repeat an axis/);
  });
});

describe('Shape / Size / Identity / Dropout', () => {
  it('slices the shape with start and end', async () => {
    const x = rand('float32', [2, 3, 4], rng(9));
    for (const [start, end] of [[0, undefined], [1, undefined], [-1, undefined], [0, -1], [2, 1], [-10, 10]]) {
      await check('Shape', [x], end === undefined ? { start: start! } : { start: start!, end }, 1, 15);
    }
    await check('Size', [rand('string', [2, 0, 3], rng(10))]);
  });
  it('passes tensors through without copying', async () => {
    const x = rand('string', [2, 2], rng(11));
    await check('Identity', [x]);
    expect((await ours('Identity', [x]))[0]).toBe(x);
  });
  it('is the identity with an all-ones mask in inference mode', async () => {
    const x = rand('float32', [3, 4], rng(12));
    await check('Dropout', [x], {}, 2, 13);
    await check('Dropout', [x], { ratio: 0.3 }, 1, 7);
    const [, mask] = await ours('Dropout', [x, new NdArray('float32', [], Float32Array.of(0.4))], {}, 2, 13);
    expect([mask.dtype, ...mask.data]).toEqual(['bool', ...new Array(12).fill(1)]);
  });
  it('training mode with a seed drops with numpy\'s generator and scales the rest', async () => {
    const x = new NdArray('float32', [1000], new Float32Array(1000).fill(1));
    const [y, mask] = await ours('Dropout', [x, new NdArray('float32', [], Float32Array.of(0.25)), new NdArray('bool', [], Uint8Array.of(1))], { seed: 0 }, 2, 13);
    const kept = (mask.data as Uint8Array).reduce((a, b) => a + b, 0);
    expect(kept).toBeGreaterThan(700);
    expect(kept).toBeLessThan(800);
    (y.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(mask.data[i] ? 4 / 3 : 0, 5));
  });
});

describe('inference of output types', () => {
  const x = rand('float32', [2, 3, 4], rng(13));
  it('keeps symbolic dims through views', async () => {
    expect(await inferred('Flatten', [x], [['N', 3, 4]], { axis: 1 })).toEqual({ kind: 'tensor', dtype: 'float32', shape: ['N', 12] });
    expect(await inferred('Unsqueeze', [x], [['N', 'C', 4]], { axes: [-1, 1] }, 11)).toEqual({ kind: 'tensor', dtype: 'float32', shape: ['N', 1, 'C', 4, 1] });
    expect(await inferred('Squeeze', [rand('float32', [1, 3], rng(14))], [[1, 'C']], { axes: [0] }, 11)).toEqual({ kind: 'tensor', dtype: 'float32', shape: ['C'] });
    expect(await inferred('Shape', [x], [['N', 'C', 4]], { start: 1 })).toEqual({ kind: 'tensor', dtype: 'int64', shape: [2] });
    expect(await inferred('Reshape', [x, i64([2], [0, -1])], [['N', 3, 4], [2]])).toEqual({ kind: 'tensor', dtype: 'float32', shape: [null, null] });
  });
});
