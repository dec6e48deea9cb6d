import { describe, expect, it } from 'vitest';
import { GraphBuilder, i64 } from '../loaders/builder.js';
import type { DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { InferenceSession, Tensor } from '../index.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

type Rng = ReturnType<typeof rng>;

function ints(dtype: DType, shape: number[], r: Rng, lo = -5, hi = 5): NdArray {
  const a = NdArray.zeros(dtype, shape), d = a.data as any;
  for (let i = 0; i < a.size; i++) d[i] = dtype.endsWith('64') ? BigInt(r.int(lo, hi)) : r.int(lo, hi);
  return a;
}

async function ours(bytes: Uint8Array, x: NdArray) {
  const s = await InferenceSession.create(bytes);
  return Object.values(await s.run({ x: new Tensor(x.dtype, x.data, x.shape) })) as Tensor[];
}

function topKModel(x: NdArray, k: number, attrs: Record<string, number>, opset = 11) {
  const g = new GraphBuilder();
  const ins = [g.input('x', x.dtype, [...x.shape])];
  if (opset >= 10) ins.push(g.init('k', i64([1], [k])));
  const [v, i] = g.node('TopK', ins, opset >= 10 ? attrs : { ...attrs, k }, 2);
  g.output(v, x.dtype);
  g.output(i, 'int64');
  return g.model({ opset });
}

describe('TopK', () => {
  it('matches onnxruntime over random shapes, axes, k, largest and dtypes (ties: lower index first)', async () => {
    const r = rng(21);
    for (let n = 0; n < 30; n++) {
      const shape = Array.from({ length: r.int(1, 3) }, () => r.int(1, 6)), rank = shape.length;
      const axis = r.int(-rank, rank - 1), len = shape[axis < 0 ? axis + rank : axis];
      const dtype = r.pick<DType>(['float32', 'float64', 'int32', 'int64']);
      const x = dtype.startsWith('float') ? new NdArray(dtype, shape, Float64Array.from(randomF32(shape, r).data, (v) => Math.round(v * 3)) as never) : ints(dtype, shape, r, -2, 2);
      const data = dtype === 'float32' ? new NdArray(dtype, shape, Float32Array.from(x.data as Float64Array)) : x;
      const opset = dtype.startsWith('int') ? 11 : r.pick([1, 10, 11]);
      await expectMatchesOrt(topKModel(data, r.int(opset < 10 ? 1 : 0, len), opset >= 11 ? { axis, largest: r.int(0, 1) } : { axis }, opset), { x: data });
    }
  });

  it('selects from long rows through the heap (k much smaller than n)', async () => {
    const r = rng(22), x = randomF32([3, 1000], r);
    await expectMatchesOrt(topKModel(x, 7, {}), { x });
    await expectMatchesOrt(topKModel(x, 5, { largest: 0 }), { x });
    await expectMatchesOrt(topKModel(x, 2, { axis: 0 }), { x });
  });

  it('sorts uint64 by value and rejects k beyond the axis', async () => {
    const x = new NdArray('uint64', [4], BigUint64Array.of(1n, 2n ** 63n + 5n, 3n, 2n ** 63n));
    const [v, i] = await ours(topKModel(x, 3, {}), x);
    expect([...(v.data as BigUint64Array)]).toEqual([2n ** 63n + 5n, 2n ** 63n, 3n]);
    expect([...(i.data as BigInt64Array)]).toEqual([1n, 3n, 2n]);
    await expect(ours(topKModel(x, 5, {}), x)).rejects.toThrow(/k = 5 is outside \[0, 4\]/);
  });
});

describe('TopK shape inference', () => {
  it('knows k from the opset 1 attribute and leaves it open when k is an input', async () => {
    const meta = async (opset: number) => {
      const g = new GraphBuilder();
      const ins = [g.input('x', 'float32', ['batch', 9])];
      if (opset >= 10) ins.push(g.init('k', i64([1], [2])));
      const [v, i] = g.node('TopK', ins, opset >= 10 ? {} : { k: 2 }, 2);
      g.output(v, null);
      g.output(i, null);
      return (await InferenceSession.create(g.model({ opset }))).outputMetadata.map((m) => [m.type, m.shape]);
    };
    expect(await meta(1)).toEqual([['float32', ['batch', 2]], ['int64', ['batch', 2]]]);
    expect(await meta(11)).toEqual([['float32', ['batch', '']], ['int64', ['batch', '']]]);
  });
});

function scanModel(op: string, x: NdArray, axis: number, attrs: Record<string, number>, opset: number) {
  const g = new GraphBuilder();
  g.output(g.node(op, [g.input('x', x.dtype, [...x.shape]), g.init('axis', new NdArray('int32', [], Int32Array.of(axis)))], attrs)[0], x.dtype);
  return g.model({ opset });
}

describe('CumSum/CumProd', () => {
  it('CumSum matches onnxruntime over shapes, axes, exclusive, reverse and dtypes', async () => {
    const r = rng(31);
    for (let n = 0; n < 24; n++) {
      const shape = Array.from({ length: r.int(1, 3) }, () => r.int(1, 5)), rank = shape.length;
      const dtype = r.pick<DType>(['float32', 'float64', 'int32', 'int64']);
      const x = dtype === 'float32' ? randomF32(shape, r) : dtype === 'float64' ? new NdArray(dtype, shape, Float64Array.from(randomF32(shape, r).data)) : ints(dtype, shape, r);
      await expectMatchesOrt(scanModel('CumSum', x, r.int(-rank, rank - 1), { exclusive: r.int(0, 1), reverse: r.int(0, 1) }, r.pick([11, 14])), { x });
    }
  });

  it('CumProd follows the spec example for every exclusive/reverse combination', async () => {
    const x = new NdArray('float32', [3], Float32Array.of(1, 2, 3));
    const cases: [number, number, number[]][] = [[0, 0, [1, 2, 6]], [1, 0, [1, 1, 2]], [0, 1, [6, 6, 3]], [1, 1, [6, 3, 1]]];
    for (const [exclusive, reverse, want] of cases) {
      expect([...((await ours(scanModel('CumProd', x, 0, { exclusive, reverse }, 26), x))[0].data as Float32Array)]).toEqual(want);
    }
  });

  it('CumProd runs along inner axes and wraps int32 like the stored type', async () => {
    const x = new NdArray('int32', [2, 3], Int32Array.of(1, 2, 3, 65536, 65536, 2));
    expect([...((await ours(scanModel('CumProd', x, -1, {}, 26), x))[0].data as Int32Array)]).toEqual([1, 2, 6, 65536, 0, 0]);
    const y = new NdArray('int64', [2, 2], BigInt64Array.of(2n, 3n, 4n, 5n));
    expect([...((await ours(scanModel('CumProd', y, 0, { reverse: 1 }, 26), y))[0].data as BigInt64Array)]).toEqual([8n, 15n, 4n, 5n]);
  });
});
