// QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul and QLinearConv against
// onnxruntime-node, plus the types, opsets and errors onnxruntime cannot judge.
import { describe, expect, it } from 'vitest';
import { onnxCode, type DType } from '../engine/dtype.js';
import { NdArray, toNdArray, toTensor } from '../engine/tensor.js';
import { GraphBuilder, type AttrInput } from '../loaders/builder.js';
import { InferenceSession, Tensor } from '../index.js';
import { expectMatchesOrt, rng } from './helpers/oracle.js';

type R = ReturnType<typeof rng>;
/** An input: a graph input, an initializer ('init'), or omitted (undefined tensor). */
type In = [string, NdArray | undefined, 'init'?];

/**
 * One-node model. onnxruntime-node cannot pass int4 or float8 tensors in or out, so `wide` names a
 * type per such input (fed as that type, then Cast in the graph) and `outWide` casts outputs back.
 */
function oneNode(op: string, ins: In[], attrs: Record<string, AttrInput>, outs: DType[], opset: number, wide: Record<string, DType> = {}, outWide: (DType | undefined)[] = []) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = ins.map(([n, t, how]) => {
    if (!t) return '';
    if (how === 'init') return g.init(n, t);
    const w = wide[n];
    feeds[n] = w ? new NdArray(w, t.shape, (NdArray.zeros(w, t.shape).data as Float32Array).map((_, i) => (t.data as Float32Array)[i])) : t;
    g.input(n, feeds[n].dtype, [...t.shape]);
    return w ? g.node('Cast', [n], { to: onnxCode(t.dtype) })[0] : n;
  });
  g.node(op, names, attrs, outs.map((_, i) => (outWide[i] ? `o${i}` : `y${i}`)));
  outs.forEach((d, i) => {
    const w = outWide[i];
    if (w) g.node('Cast', [`o${i}`], { to: onnxCode(w) }, [`y${i}`]);
    g.output(`y${i}`, w ?? d);
  });
  return { bytes: g.model({ opset, irVersion: 10 }), feeds };
}

/** Runs Lastmile only; outputs as internal arrays (sub-byte types unpacked, narrow floats as values). */
async function runOurs(bytes: Uint8Array, feeds: Record<string, NdArray>): Promise<NdArray[]> {
  const s = await InferenceSession.create(bytes);
  const out = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toTensor(v)])));
  return Object.values(out).map((t) => toNdArray(t as Tensor));
}

const tensor = (dtype: DType, shape: number[], values: ArrayLike<number>) => {
  const t = NdArray.zeros(dtype, shape);
  (t.data as Float32Array).set(values);
  return t;
};
const floats = (shape: number[], r: R, lo: number, hi: number) => tensor('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.float(lo, hi)));
const ints = (dtype: DType, shape: number[], r: R, lo: number, hi: number) => tensor(dtype, shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.int(lo, hi)));
/** Positive scales that are powers of two, so x / scale hits exact halves (ties) often. */
const scales = (shape: number[], r: R) => tensor('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 2 ** r.int(-3, 2)));
/** Values on a half-integer grid of `step`: many exact ties after division. */
const halves = (shape: number[], r: R, step: number, span: number) => tensor('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (r.int(-span, span) / 2) * step));

const RANGES: [DType, number, number][] = [['int8', -128, 127], ['uint8', 0, 255], ['int16', -32768, 32767], ['uint16', 0, 65535], ['int4', -8, 7], ['uint4', 0, 15]];

/** The three granularities for x of `shape`: per-tensor, per-axis along `axis`, blocked along it. */
function granularities(shape: number[], axis: number, block: number) {
  return [
    { attrs: {}, pshape: [] as number[] },
    { attrs: { axis }, pshape: [shape[axis]] },
    { attrs: { axis, block_size: block }, pshape: shape.map((d, i) => (i === axis ? Math.ceil(d / block) : d)) },
  ];
}

describe('QuantizeLinear', () => {
  it.each(RANGES)('%s per-tensor, per-axis and blocked, ties to even and saturation', async (dtype, lo, hi) => {
    const r = rng(dtype.length * 7 + lo), shape = [2, 6, 5];
    const sub = dtype.endsWith('4') ? 'init' : undefined, wide: DType = dtype.startsWith('u') ? 'uint8' : 'int8';
    for (const { attrs, pshape } of granularities(shape, 1, 4)) {
      const x = halves(shape, r, 0.25, Math.min(2 * (hi - lo), 400)), scale = scales(pshape, r), zp = ints(dtype, pshape, r, lo, hi);
      const { bytes, feeds } = oneNode('QuantizeLinear', [['x', x], ['s', scale], ['z', zp, sub]], attrs, [dtype], 21, {}, [sub && wide]);
      await expectMatchesOrt(bytes, feeds);
    }
  });

  it('omitted zero point gives uint8; output_dtype picks the type; negative axis', async () => {
    const r = rng(3), x = floats([3, 4], r, -300, 300);
    let m = oneNode('QuantizeLinear', [['x', x], ['s', scales([], r)]], {}, ['uint8'], 21);
    await expectMatchesOrt(m.bytes, m.feeds);
    m = oneNode('QuantizeLinear', [['x', x], ['s', scales([4], r)]], { axis: -1, output_dtype: 3 }, ['int8'], 21);
    await expectMatchesOrt(m.bytes, m.feeds);
  });

  it.each([['float8e4m3fn', 1], ['float8e4m3fn', 0], ['float8e5m2', 1], ['float8e5m2', 0]] as [DType, number][])('%s saturate=%i', async (dtype, saturate) => {
    const r = rng(saturate + dtype.length), x = floats([40], r, -3000, 3000);
    (x.data as Float32Array).set([0, -0, 1e6, -1e6, Infinity, -Infinity, 0.001, 448 * 3, 57344 * 3]);
    const m = oneNode('QuantizeLinear', [['x', x], ['s', tensor('float32', [], [2])], ['z', tensor(dtype, [], [0]), 'init']], { saturate }, [dtype], 21, {}, ['float32']);
    await expectMatchesOrt(m.bytes, m.feeds);
  });

  it('float16 input and scale (opset 19)', async () => {
    // A power-of-two scale: onnxruntime divides in float32 where the spec says float16, so only exact quotients agree.
    const r = rng(5), x = floats([50], r, -100, 100), s = tensor('float16', [], [0.5]);
    const xh = new NdArray('float16', x.shape, x.data);
    const m = oneNode('QuantizeLinear', [['x', xh], ['s', s], ['z', tensor('int8', [], [3])]], {}, ['int8'], 19);
    await expectMatchesOrt(m.bytes, m.feeds);
  });

  it.each([10, 13])('opset %i', async (opset) => {
    const r = rng(opset), x = floats([2, 3, 4], r, -200, 200);
    const pshape = opset === 10 ? [] : [3];
    const m = oneNode('QuantizeLinear', [['x', x], ['s', scales(pshape, r)], ['z', ints('int8', pshape, r, -5, 5)]], {}, ['int8'], opset);
    await expectMatchesOrt(m.bytes, m.feeds);
  });

  it('int2 and uint2 (opset 25) and float4e2m1 (opset 23) by hand', async () => {
    const x = tensor('float32', [8], [0, 0.9, 1.1, 2.5, 3.5, 6, -2.5, -9]), s = tensor('float32', [], [1]);
    const [i2] = await runOurs(...Object.values(oneNode('QuantizeLinear', [['x', x], ['s', s], ['z', tensor('int2', [], [0])]], {}, ['int2'], 25)) as [Uint8Array, Record<string, NdArray>]);
    expect(Array.from(i2.data as Int8Array)).toEqual([0, 1, 1, 1, 1, 1, -2, -2]);
    const [u2] = await runOurs(...Object.values(oneNode('QuantizeLinear', [['x', x], ['s', s], ['z', tensor('uint2', [], [1])]], {}, ['uint2'], 25)) as [Uint8Array, Record<string, NdArray>]);
    expect(Array.from(u2.data as Uint8Array)).toEqual([1, 2, 2, 3, 3, 3, 0, 0]);
    const [f4] = await runOurs(...Object.values(oneNode('QuantizeLinear', [['x', x], ['s', s], ['z', tensor('float4e2m1', [], [0])]], {}, ['float4e2m1'], 23)) as [Uint8Array, Record<string, NdArray>]);
    expect(Array.from(f4.data as Float32Array)).toEqual([0, 1, 1, 2, 4, 6, -2, -6]);
  });

  it('precision attribute rounds the division to its type; NaN goes to the low end', async () => {
    // In float16 1000.6 becomes 1000.5, a tie that goes to the even 1000 (float32 would give 1001).
    const x = tensor('float32', [3], [1000.6, 1001, NaN]), s = tensor('float32', [], [1]);
    const [y] = await runOurs(...Object.values(oneNode('QuantizeLinear', [['x', x], ['s', s], ['z', tensor('int16', [], [0])]], { precision: 10 }, ['int16'], 23)) as [Uint8Array, Record<string, NdArray>]);
    expect(Array.from(y.data as Int16Array)).toEqual([1000, 1001, -32768]);
  });

  it.each([
    [{ axis: 1 }, [3], 21, /per-axis quantization along axis 1 needs \[4\]/],
    [{ axis: 1, block_size: 2 }, [2, 3], 21, /blocks of 2 along axis 1 of x \[2,4\] need \[2,2\]/],
    [{}, [4], 10, /should be a scalar at opset 10/],
  ] as [Record<string, number>, number[], number, RegExp][])('rejects scale shape %j %j at opset %i', async (attrs, pshape, opset, msg) => {
    const r = rng(1), m = oneNode('QuantizeLinear', [['x', floats([2, 4], r, -1, 1)], ['s', scales(pshape, r)]], attrs, ['uint8'], opset);
    await expect(runOurs(m.bytes, m.feeds)).rejects.toThrow(msg);
  });

  it('rejects types newer than the opset and a mismatched output_dtype', async () => {
    const x = tensor('float32', [2], [1, 2]), s = tensor('float32', [], [1]);
    let m = oneNode('QuantizeLinear', [['x', x], ['s', s], ['z', tensor('int4', [], [0])]], {}, ['int4'], 19);
    await expect(runOurs(m.bytes, m.feeds)).rejects.toThrow(/output type int4 is not a QuantizeLinear type at opset 19/);
    m = oneNode('QuantizeLinear', [['x', x], ['s', s], ['z', tensor('int8', [], [0])]], { output_dtype: 2 }, ['int8'], 21);
    await expect(runOurs(m.bytes, m.feeds)).rejects.toThrow(/output_dtype uint8 differs from the zero point's dtype int8/);
  });
});

describe('DequantizeLinear', () => {
  it.each(RANGES)('%s per-tensor, per-axis and blocked', async (dtype, lo, hi) => {
    const r = rng(dtype.length * 3 + hi), shape = [3, 7, 2];
    const sub = dtype.endsWith('4'), wide: Record<string, DType> = sub ? { x: dtype.startsWith('u') ? 'uint8' : 'int8' } : {};
    for (const { attrs, pshape } of granularities(shape, 1, 3)) {
      const x = ints(dtype, shape, r, lo, hi), scale = floats(pshape, r, 0.01, 2), zp = ints(dtype, pshape, r, lo, hi);
      const m = oneNode('DequantizeLinear', [['x', x], ['s', scale], ['z', zp, sub ? 'init' : undefined]], attrs, ['float32'], 21, wide);
      await expectMatchesOrt(m.bytes, m.feeds);
    }
  });

  it('int32 without a zero point, float8 inputs, opset 10', async () => {
    const r = rng(8);
    let m = oneNode('DequantizeLinear', [['x', ints('int32', [20], r, -1e6, 1e6)], ['s', floats([], r, 0.001, 1)]], {}, ['float32'], 13);
    await expectMatchesOrt(m.bytes, m.feeds);
    m = oneNode('DequantizeLinear', [['x', ints('uint8', [20], r, 0, 255)], ['s', floats([], r, 0.001, 1)], ['z', ints('uint8', [], r, 0, 255)]], {}, ['float32'], 10);
    await expectMatchesOrt(m.bytes, m.feeds);
    for (const dtype of ['float8e4m3fn', 'float8e5m2'] as DType[]) {
      const x = floats([30], r, -400, 400);
      m = oneNode('DequantizeLinear', [['x', toNdArray(toTensor(new NdArray(dtype, x.shape, x.data)))], ['s', floats([], r, 0.1, 2)]], {}, ['float32'], 21, { x: 'float32' });
      await expectMatchesOrt(m.bytes, m.feeds);
    }
  });

  it('output_dtype (opset 23) and a float16 scale', async () => {
    const x = tensor('int8', [4], [-128, -1, 0, 127]);
    let [y] = await runOurs(...Object.values(oneNode('DequantizeLinear', [['x', x], ['s', tensor('float32', [], [0.1])]], { output_dtype: 10 }, ['float16'], 23)) as [Uint8Array, Record<string, NdArray>]);
    expect(y.dtype).toBe('float16');
    expect(Array.from(y.data as Float32Array)).toEqual([-12.796875, -0.0999755859375, 0, 12.703125]);
    [y] = await runOurs(...Object.values(oneNode('DequantizeLinear', [['x', x], ['s', tensor('float16', [], [0.5])], ['z', tensor('int8', [], [1])]], {}, ['float16'], 21)) as [Uint8Array, Record<string, NdArray>]);
    expect(Array.from(y.data as Float32Array)).toEqual([-64.5, -1, -0.5, 63]);
  });

  it('sub-byte and float4 inputs by hand; rejects a zero point of another type', async () => {
    const s = tensor('float32', [], [2]);
    for (const [dtype, vals, zp, want] of [
      ['int2', [-2, -1, 0, 1], 1, [-6, -4, -2, 0]], ['uint2', [0, 1, 2, 3], 1, [-2, 0, 2, 4]], ['float4e2m1', [-6, 0.5, 1.5, 4], 0, [-12, 1, 3, 8]],
    ] as [DType, number[], number, number[]][]) {
      const [y] = await runOurs(...Object.values(oneNode('DequantizeLinear', [['x', tensor(dtype, [4], vals)], ['s', s], ['z', tensor(dtype, [], [zp])]], {}, ['float32'], 25)) as [Uint8Array, Record<string, NdArray>]);
      expect(Array.from(y.data as Float32Array)).toEqual(want);
    }
    const m = oneNode('DequantizeLinear', [['x', tensor('int8', [2], [1, 2])], ['s', s], ['z', tensor('uint8', [], [0])]], {}, ['float32'], 21);
    await expect(runOurs(m.bytes, m.feeds)).rejects.toThrow(/has dtype uint8; expected int8 like x/);
  });
});

describe('DynamicQuantizeLinear', () => {
  it.each([[-3, 7], [0.5, 9], [-8, -1], [0, 0]])('range [%d, %d]', async (lo, hi) => {
    const r = rng(hi - lo + 11), x = floats([5, 13], r, lo, hi);
    const m = oneNode('DynamicQuantizeLinear', [['x', x]], {}, ['uint8', 'float32', 'uint8'], 11);
    await expectMatchesOrt(m.bytes, m.feeds);
  });
});

describe('QLinearMatMul', () => {
  const cases: [string, number[], number[], DType, DType, number][] = [
    ['2-D', [5, 7], [7, 3], 'uint8', 'uint8', 10], ['2-D int8', [4, 9], [9, 6], 'int8', 'int8', 21],
    ['batched', [2, 3, 4, 8], [2, 3, 8, 5], 'uint8', 'int8', 21], ['broadcast batch', [3, 4, 6], [6, 2], 'uint8', 'int8', 21],
    ['a large K', [6, 300], [300, 17], 'uint8', 'uint8', 21],
  ];
  it.each(cases)('%s', async (_label, as, bs, ta, tb, opset) => {
    const r = rng(as.length * 13 + bs[bs.length - 1]), lim = (t: DType): [number, number] => (t === 'int8' ? [-128, 127] : [0, 255]);
    // As in QLinearConv: onnxruntime's uint8 x int8 path saturates pairs of products above 7-bit activations.
    const n = bs[bs.length - 1], ar: [number, number] = ta === 'uint8' && tb === 'int8' ? [0, 127] : lim(ta);
    const m = oneNode('QLinearMatMul', [
      ['a', ints(ta, as, r, ...ar)], ['as', floats([], r, 0.001, 0.05)], ['az', ints(ta, [], r, ...ar)],
      ['b', ints(tb, bs, r, ...lim(tb))], ['bs', floats(opset >= 21 ? [...bs.slice(0, -2), 1, n] : [], r, 0.001, 0.05)], ['bz', ints(tb, [], r, ...lim(tb))],
      ['ys', floats([], r, 0.5, 4)], ['yz', ints(ta, [], r, ...lim(ta))],
    ], {}, [ta], opset);
    await expectMatchesOrt(m.bytes, m.feeds);
  });

  it('1-D operands follow numpy matmul', async () => {
    const r = rng(77), s = tensor('float32', [], [0.02]), z = tensor('uint8', [], [3]);
    const m = oneNode('QLinearMatMul', [['a', ints('uint8', [6], r, 0, 255)], ['as', s], ['az', z], ['b', ints('uint8', [6, 4], r, 0, 255)], ['bs', s], ['bz', z], ['ys', s], ['yz', z]], {}, ['uint8'], 21);
    const [y] = await runOurs(m.bytes, m.feeds);
    expect(y.shape).toEqual([4]);
  });
});

describe('QLinearConv', () => {
  it.each([
    ['uint8', 'uint8', false, 1], ['uint8', 'int8', true, 1], ['int8', 'int8', true, 2], ['uint8', 'uint8', true, 3],
  ] as [DType, DType, boolean, number][])('x %s, w %s, per-channel %s, group %i', async (tx, tw, perCh, group) => {
    const r = rng(group * 5 + (perCh ? 1 : 0) + tw.length), lim = (t: DType): [number, number] => (t === 'int8' ? [-128, 127] : [0, 255]);
    const m = 2 * group, cg = 2, pshape = perCh ? [m] : [];
    // uint8 x int8 on x86 without VNNI sums pairs of products in saturating int16 (pmaddubsw):
    // onnxruntime is only exact there for 7-bit activations (zero-point padding included).
    const xr: [number, number] = tx === 'uint8' && tw === 'int8' ? [0, 127] : lim(tx);
    const model = oneNode('QLinearConv', [
      ['x', ints(tx, [2, cg * group, 9, 8], r, ...xr)], ['xs', floats([], r, 0.01, 0.05)], ['xz', ints(tx, [], r, ...xr)],
      ['w', ints(tw, [m, cg, 3, 2], r, ...lim(tw)), 'init'], ['ws', floats(pshape, r, 0.01, 0.05), 'init'],
      // onnxruntime only takes a zero weight zero point for int8 weights
      ['wz', tw === 'int8' ? tensor(tw, pshape, new Array(m).fill(0)) : ints(tw, pshape, r, ...lim(tw)), 'init'],
      ['ys', floats([], r, 0.5, 2)], ['yz', ints(tx, [], r, ...lim(tx))], ['B', ints('int32', [m], r, -2000, 2000), 'init'],
    ], { group, pads: [1, 0, 2, 1], strides: [2, 1], dilations: [1, 2] }, [tx], 10);
    await expectMatchesOrt(model.bytes, model.feeds);
  });

  it('1-D and 3-D convolutions with SAME padding', async () => {
    const r = rng(31);
    for (const spatial of [[11], [4, 5, 6]]) {
      const k = spatial.map(() => 3);
      const model = oneNode('QLinearConv', [
        ['x', ints('uint8', [1, 3, ...spatial], r, 0, 255)], ['xs', floats([], r, 0.01, 0.05)], ['xz', ints('uint8', [], r, 0, 255)],
        ['w', ints('uint8', [4, 3, ...k], r, 0, 255), 'init'], ['ws', floats([], r, 0.01, 0.05), 'init'], ['wz', ints('uint8', [], r, 0, 255), 'init'],
        ['ys', floats([], r, 1, 4)], ['yz', ints('uint8', [], r, 0, 255)],
      ], { auto_pad: 'SAME_UPPER' }, ['uint8'], 10);
      await expectMatchesOrt(model.bytes, model.feeds);
    }
  });
});
