import { describe, expect, it } from 'vitest';
import { GraphBuilder, i64 } from '../loaders/builder.js';
import type { DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { InferenceSession, Tensor } from '../index.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

const REDUCE = ['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare'];
const axesInputSince = (op: string) => (op === 'ReduceSum' ? 13 : 18);

/** One-node model; `axes` goes in as an attribute or as an int64 initializer depending on the opset. */
function reduceModel(op: string, x: NdArray, opset: number, axes: number[] | undefined, attrs: Record<string, number>) {
  const g = new GraphBuilder();
  const inputs = [g.input('x', x.dtype, [...x.shape])];
  const all = { ...attrs };
  if (axes && opset >= axesInputSince(op)) inputs.push(g.init('axes', i64([axes.length], axes)));
  else if (axes) Object.assign(all, { axes });
  g.output(g.node(op, inputs, all)[0], x.dtype);
  return g.model({ opset });
}

function ints(dtype: DType, shape: number[], r: ReturnType<typeof rng>, lo = -5, hi = 5): NdArray {
  const a = NdArray.zeros(dtype, shape), d = a.data as any;
  for (let i = 0; i < a.size; i++) d[i] = dtype === 'int64' ? BigInt(r.int(lo, hi)) : r.int(lo, hi);
  return a;
}

const randomShape = (r: ReturnType<typeof rng>) => Array.from({ length: r.int(1, 4) }, () => r.int(1, 4));
const randomAxes = (r: ReturnType<typeof rng>, rank: number) =>
  [...Array(rank).keys()].filter(() => r.next() < 0.5).map((a) => (r.next() < 0.3 ? a - rank : a));

async function ours(bytes: Uint8Array, x: NdArray) {
  const s = await InferenceSession.create(bytes);
  return Object.values(await s.run({ x: new Tensor(x.dtype, x.data, x.shape) }))[0] as Tensor;
}

describe('Reduce*', () => {
  for (const op of REDUCE) {
    it(`${op} matches onnxruntime over random shapes, axes, keepdims and opsets`, async () => {
      const r = rng(op.length * 31 + 7);
      for (let i = 0; i < 12; i++) {
        const shape = randomShape(r), opset = r.pick([11, 13, 18]);
        const x = randomF32(shape, r, op === 'ReduceLogSum' ? 0.1 : -1, 1);
        const axes = r.next() < 0.2 ? undefined : randomAxes(r, shape.length);
        const attrs: Record<string, number> = { keepdims: r.int(0, 1) };
        if (opset >= axesInputSince(op) && r.next() < 0.3) attrs.noop_with_empty_axes = 1;
        await expectMatchesOrt(reduceModel(op, x, opset, axes?.length || opset >= axesInputSince(op) ? axes : undefined, attrs), { x });
      }
    });
  }

  it('reduces int32 and int64 exactly', async () => {
    const r = rng(5);
    for (const op of ['ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceMean', 'ReduceSumSquare', 'ReduceL1']) {
      for (const dtype of ['int32', 'int64'] as DType[]) {
        const x = ints(dtype, [3, 4, 2], r);
        await expectMatchesOrt(reduceModel(op, x, 18, [1], { keepdims: 0 }), { x });
      }
    }
  });

  it('reduces uint8 and int8 with ReduceMax/ReduceMin', async () => {
    const r = rng(6);
    for (const op of ['ReduceMax', 'ReduceMin']) {
      const u = ints('uint8', [4, 3], r, 0, 255), s = ints('int8', [4, 3], r, -128, 127);
      await expectMatchesOrt(reduceModel(op, u, 18, [0], {}), { x: u });
      await expectMatchesOrt(reduceModel(op, s, 18, [-1], {}), { x: s });
    }
  });

  it('reduces a rank-0 tensor to itself', async () => {
    const x = new NdArray('float32', [], Float32Array.of(-2.5));
    for (const op of REDUCE.filter((o) => o !== 'ReduceLogSum')) await expectMatchesOrt(reduceModel(op, x, 18, undefined, {}), { x });
  });

  it('gives each identity over an empty set (spec: 0, 1, -inf, +inf; mean is NaN)', async () => {
    const x = new NdArray('float32', [2, 0, 3], new Float32Array(0));
    const expected: Record<string, number> = {
      ReduceSum: 0, ReduceProd: 1, ReduceMax: -Infinity, ReduceMin: Infinity, ReduceL1: 0, ReduceL2: 0,
      ReduceLogSum: -Infinity, ReduceLogSumExp: -Infinity, ReduceSumSquare: 0, ReduceMean: NaN,
    };
    for (const op of REDUCE) {
      const y = await ours(reduceModel(op, x, 18, [1], { keepdims: 1 }), x);
      expect(y.dims, op).toEqual([2, 1, 3]);
      expect([...(y.data as Float32Array)], op).toEqual(Array(6).fill(expected[op]));
    }
  });

  it('gives the dtype extremes for integer Max/Min over an empty set, and keeps a zero-size kept axis', async () => {
    const x = new NdArray('int32', [0, 3], new Int32Array(0));
    expect([...((await ours(reduceModel('ReduceMax', x, 18, [0], {}), x)).data as Int32Array)]).toEqual(Array(3).fill(-(2 ** 31)));
    expect([...((await ours(reduceModel('ReduceMin', x, 18, [0], {}), x)).data as Int32Array)]).toEqual(Array(3).fill(2 ** 31 - 1));
    expect((await ours(reduceModel('ReduceSum', x, 18, [1], {}), x)).dims).toEqual([0, 1]);
  });

  it('treats bool as False < True in ReduceMax/ReduceMin (opset 20)', async () => {
    const x = new NdArray('bool', [3, 2], Uint8Array.of(1, 1, 1, 0, 0, 0));
    expect([...((await ours(reduceModel('ReduceMax', x, 20, [1], { keepdims: 0 }), x)).data as Uint8Array)]).toEqual([1, 1, 0]);
    expect([...((await ours(reduceModel('ReduceMin', x, 20, [1], { keepdims: 0 }), x)).data as Uint8Array)]).toEqual([1, 0, 0]);
  });

  it('accumulates float16 wider than float16 (4096 ones sum to 4096, past float16\'s 2048 + 1 limit)', async () => {
    const x = new NdArray('float16', [4096], new Float32Array(4096).fill(1));
    expect([...((await ours(reduceModel('ReduceSum', x, 18, [0], { keepdims: 0 }), x)).data as Uint16Array)]).toEqual([0x6c00]);
  });

  it('keeps ReduceLogSumExp finite for large inputs', async () => {
    const x = new NdArray('float32', [2, 3], Float32Array.of(1000, 1001, 1002, -1000, -1001, -1002));
    await expectMatchesOrt(reduceModel('ReduceLogSumExp', x, 18, [1], {}), { x });
  });

  it('rejects out-of-range and repeated axes', async () => {
    const x = randomF32([2, 3]);
    await expect(ours(reduceModel('ReduceSum', x, 18, [2], {}), x)).rejects.toThrow(/axes entry 2 is out of range for rank 2/);
    await expect(ours(reduceModel('ReduceSum', x, 18, [1, -1], {}), x)).rejects.toThrow(/repeat an axis/);
  });
});

function argModel(op: string, x: NdArray, attrs: Record<string, number>, opset = 13) {
  const g = new GraphBuilder();
  g.output(g.node(op, [g.input('x', x.dtype, [...x.shape])], attrs)[0], 'int64');
  return g.model({ opset });
}

describe('Reduce*/Arg* shape inference', () => {
  it('infers exact shapes from attribute axes, rank and ones from runtime axes, and int64 for ArgMax', async () => {
    const shapeOf = async (build: (g: GraphBuilder, x: string) => string, opset: number) => {
      const g = new GraphBuilder();
      g.output(build(g, g.input('x', 'float32', ['batch', 1, 'seq'])), null);
      return (await InferenceSession.create(g.model({ opset }))).outputMetadata[0];
    };
    expect((await shapeOf((g, x) => g.node('ReduceSum', [x], { axes: [-1], keepdims: 0 })[0], 11)).shape).toEqual(['batch', 1]);
    expect((await shapeOf((g, x) => g.node('ReduceMax', [x], {})[0], 13)).shape).toEqual([1, 1, 1]);
    expect((await shapeOf((g, x) => g.node('ReduceMean', [x, g.init('a', i64([1], [0]))], {})[0], 18)).shape).toEqual(['', 1, '']);
    expect((await shapeOf((g, x) => g.node('ReduceL2', [x], { noop_with_empty_axes: 1 })[0], 18)).shape).toEqual(['batch', 1, 'seq']);
    const arg = await shapeOf((g, x) => g.node('ArgMax', [x], { axis: 2, keepdims: 0 })[0], 13);
    expect([arg.type, arg.shape]).toEqual(['int64', ['batch', 1]]);
  });
});

describe('ArgMax/ArgMin', () => {
  it('match onnxruntime with ties, negative axes, keepdims and select_last_index', async () => {
    const r = rng(11);
    for (let i = 0; i < 24; i++) {
      const shape = randomShape(r), rank = shape.length, op = r.pick(['ArgMax', 'ArgMin']);
      const x = r.next() < 0.5 ? ints('int32', shape, r, 0, 2) : randomF32(shape, r);
      const attrs = { axis: r.int(-rank, rank - 1), keepdims: r.int(0, 1), select_last_index: r.int(0, 1) };
      await expectMatchesOrt(argModel(op, x, attrs), { x });
    }
  });

  it('handles int64 and opset 11 (no select_last_index)', async () => {
    const r = rng(12), x = ints('int64', [3, 4], r);
    await expectMatchesOrt(argModel('ArgMax', x, { axis: 1 }, 11), { x });
    await expectMatchesOrt(argModel('ArgMin', x, { axis: 0, keepdims: 0 }, 11), { x });
  });

  it('rejects an empty axis', async () => {
    const x = new NdArray('float32', [2, 0], new Float32Array(0));
    await expect(ours(argModel('ArgMax', x, { axis: 1 }), x)).rejects.toThrow(/empty axis 1/);
  });
});
