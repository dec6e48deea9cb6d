// MatMul, Gemm and MatMulInteger against onnxruntime-node over random shapes, dtypes and attributes.
import { describe, expect, it } from 'vitest';
import type { DType } from '../engine/dtype.js';
import type { Dim } from '../engine/graph.js';
import { NdArray } from '../engine/tensor.js';
import { GraphBuilder, float, type AttrInput } from '../loaders/builder.js';
import { InferenceSession, Tensor } from '../index.js';
import { f16ToNumber, numberToF16 } from '../kernels/cpu/minifloat.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

type R = ReturnType<typeof rng>;

/** One-node model whose inputs are all graph inputs ('' skips an optional one). */
function oneNode(op: string, ins: [string, NdArray | undefined][], attrs: Record<string, AttrInput>, outDtype: DType, opset = 17) {
  const g = new GraphBuilder();
  const names = ins.map(([n, t]) => (t ? g.input(n, t.dtype, [...t.shape]) : ''));
  g.output(g.node(op, names, attrs)[0], outDtype);
  const feeds = Object.fromEntries(ins.filter(([, t]) => t).map(([n, t]) => [n, t!]));
  return { bytes: g.model({ opset }), feeds };
}

const tensors = (feeds: Record<string, NdArray>) => Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)]));

const ints = (dtype: DType, shape: number[], r: R, lo: number, hi: number) => {
  const t = NdArray.zeros(dtype, shape), d = t.data as unknown as (number | bigint)[], big = dtype === 'int64' || dtype === 'uint64';
  for (let i = 0; i < d.length; i++) d[i] = big ? BigInt(r.int(lo, hi)) : r.int(lo, hi);
  return t;
};

describe('MatMul', () => {
  const shapes: [number[], number[]][] = [
    [[3, 4], [4, 5]], [[4], [4]], [[4], [4, 3]], [[2, 3, 4], [4]], [[5], [2, 5, 3]],
    [[2, 3, 4], [4, 5]], [[2, 1, 3, 4], [3, 4, 2]], [[1, 3, 4], [2, 4, 6]], [[70, 300], [300, 1030]],
    [[2, 65, 257], [2, 257, 9]], [[1, 0, 4], [4, 3]], [[3, 0], [0, 2]],
  ];
  it.each(shapes)('float32 %j x %j', async (a, b) => {
    const r = rng(a.length * 31 + b.length);
    const { bytes, feeds } = oneNode('MatMul', [['A', randomF32(a, r)], ['B', randomF32(b, r)]], {}, 'float32');
    await expectMatchesOrt(bytes, feeds);
  });

  it('random batched shapes', async () => {
    const r = rng(5);
    for (let t = 0; t < 12; t++) {
      const m = r.int(1, 40), k = r.int(1, 70), n = r.int(1, 40), batch = Array.from({ length: r.int(0, 2) }, () => r.int(1, 3));
      const bBatch = batch.map((d) => (r.next() < 0.3 ? 1 : d)).slice(r.int(0, batch.length));
      const { bytes, feeds } = oneNode('MatMul', [['A', randomF32([...batch, m, k], r)], ['B', randomF32([...bBatch, k, n], r)]], {}, 'float32');
      await expectMatchesOrt(bytes, feeds);
    }
  });

  it.each(['float64', 'int32', 'int64', 'uint32', 'uint64'] as DType[])('%s', async (dtype) => {
    const r = rng(9);
    const mk = (s: number[]) => (dtype === 'float64' ? new NdArray('float64', s, Float64Array.from(randomF32(s, r).data as Float32Array)) : ints(dtype, s, r, 0, 1000));
    const { bytes, feeds } = oneNode('MatMul', [['A', mk([2, 7, 9])], ['B', mk([9, 5])]], {}, dtype);
    await expectMatchesOrt(bytes, feeds, { rtol: 1e-9, atol: 0 });
  });

  it('int64 is exact beyond 2^53 and wraps like int64', async () => {
    const a = new NdArray('int64', [1, 2], BigInt64Array.from([2n ** 40n + 3n, -(2n ** 62n)])), b = new NdArray('int64', [2, 1], BigInt64Array.from([2n ** 20n + 1n, 8n]));
    const { bytes, feeds } = oneNode('MatMul', [['A', a], ['B', b]], {}, 'int64');
    const out = await (await InferenceSession.create(bytes)).run(tensors(feeds));
    expect((Object.values(out)[0] as any).data[0]).toBe(BigInt.asIntN(64, (2n ** 40n + 3n) * (2n ** 20n + 1n) - 8n * 2n ** 62n));
  });

  it('float16 computes wide and rounds the result once', async () => {
    const r = rng(3), a = randomF32([4, 64], r), b = randomF32([64, 6], r);
    const run = async (dtype: DType, x: number[], y: number[]) => {
      const { bytes } = oneNode('MatMul', [['A', new NdArray(dtype, a.shape, a.data)], ['B', new NdArray(dtype, b.shape, b.data)]], {}, dtype);
      const out = await (await InferenceSession.create(bytes)).run({ A: new Tensor(dtype, x, a.shape), B: new Tensor(dtype, y, b.shape) });
      return Object.values(out)[0] as Tensor;
    };
    const half = await run('float16', Array.from(a.data as Float32Array), Array.from(b.data as Float32Array));
    const toHalf = (v: number) => f16ToNumber(numberToF16(v));
    const wide = await run('float32', Array.from(a.data as Float32Array, toHalf), Array.from(b.data as Float32Array, toHalf));
    expect(Array.from(half.data as Uint16Array, f16ToNumber)).toEqual(Array.from(wide.data as Float32Array, toHalf));
  });

  it('infers symbolic batch dims', async () => {
    const g = new GraphBuilder();
    const y = g.node('MatMul', [g.input('x', 'float32', ['batch', 'seq', 768]), g.input('w', 'float32', [768, 3072])])[0];
    g.output(y, 'float32');
    const s = await InferenceSession.create(g.model());
    expect(s.outputMetadata[0].shape).toEqual(['batch', 'seq', 3072]);
  });

  it('names the mismatched dim', async () => {
    const { bytes, feeds } = oneNode('MatMul', [['A', randomF32([2, 3])], ['B', randomF32([4, 5])]], {}, 'float32');
    const s = await InferenceSession.create(bytes);
    await expect(s.run(tensors(feeds))).rejects.toThrow(/input 1 \(B\) should have 3 rows/);
  });
});

describe('Gemm', () => {
  it('random transposes, alpha, beta and C shapes', async () => {
    const r = rng(11);
    for (let t = 0; t < 16; t++) {
      const m = r.int(1, 70), k = r.int(1, 300), n = r.int(1, 40), transA = r.int(0, 1), transB = r.int(0, 1);
      const cShape = r.pick([[m, n], [n], [1, n], [m, 1], [1], [], null]);
      const attrs: Record<string, AttrInput> = { transA, transB };
      if (r.next() < 0.5) attrs.alpha = float(r.float(-2, 2));
      if (r.next() < 0.5) attrs.beta = float(r.float(-2, 2));
      const { bytes, feeds } = oneNode('Gemm', [
        ['A', randomF32(transA ? [k, m] : [m, k], r)], ['B', randomF32(transB ? [n, k] : [k, n], r)],
        ['C', cShape ? randomF32(cShape, r) : undefined],
      ], attrs, 'float32');
      await expectMatchesOrt(bytes, feeds);
    }
  });

  it('float64 with C', async () => {
    const r = rng(2), f64 = (s: number[]) => new NdArray('float64', s, Float64Array.from(randomF32(s, r).data as Float32Array));
    const { bytes, feeds } = oneNode('Gemm', [['A', f64([5, 8])], ['B', f64([8, 6])], ['C', f64([6])]], { alpha: float(0.5) }, 'float64');
    await expectMatchesOrt(bytes, feeds, { rtol: 1e-9, atol: 0 });
  });

  it('infers [M, N] with symbolic dims', async () => {
    const g = new GraphBuilder();
    g.output(g.node('Gemm', [g.input('a', 'float32', [16, 'batch']), g.input('b', 'float32', [10, 16])], { transA: 1, transB: 1 })[0], 'float32');
    expect((await InferenceSession.create(g.model())).outputMetadata[0].shape).toEqual(['batch', 10]);
  });
});

describe('MatMulInteger', () => {
  const combos: [DType, DType][] = [['uint8', 'uint8'], ['uint8', 'int8'], ['int8', 'int8']];
  it.each(combos)('%s x %s with zero points', async (ta, tb) => {
    // onnxruntime's u8 x s8 kernel saturates 16-bit pair sums on AVX2, so that combination keeps values small.
    const small = ta !== tb, r = rng(13);
    const lo = (t: DType) => (t === 'int8' ? (small ? -64 : -128) : 0), hi = (t: DType) => (t === 'int8' ? (small ? 63 : 127) : small ? 127 : 255);
    for (const zp of ['none', 'scalar', 'vector'] as const) {
      const a = ints(ta, [2, 5, 33], r, lo(ta), hi(ta)), b = ints(tb, [33, 7], r, lo(tb), hi(tb));
      const ins: [string, NdArray | undefined][] = [['A', a], ['B', b]];
      if (zp === 'scalar') ins.push(['azp', ints(ta, [], r, lo(ta), hi(ta))], ['bzp', ints(tb, [], r, lo(tb), hi(tb))]);
      if (zp === 'vector') ins.push(['azp', ints(ta, [], r, lo(ta), hi(ta))], ['bzp', ints(tb, [7], r, lo(tb), hi(tb))]);
      const { bytes, feeds } = oneNode('MatMulInteger', ins, {}, 'int32', 13);
      await expectMatchesOrt(bytes, feeds);
    }
  });
});
