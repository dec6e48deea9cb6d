// WebGPU quantization kernels against the CPU backend, bit for bit: QuantizeLinear / DequantizeLinear over
// random shapes, axes, blocks, scales and zero points (with exact rounding ties and saturating values),
// DynamicQuantizeLinear, MatMulInteger and QLinearMatMul on both the dot4I8Packed and the scalar kernel,
// and small quantized models run strictly on the GPU against onnxruntime-node.
import * as ort from 'onnxruntime-node';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { allocStorage, type DType } from '../../engine/dtype.js';
import { NdArray, toNdArray, toTensor } from '../../engine/tensor.js';
import { compareValues } from '../../conformance/compare.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { GraphBuilder, type AttrInput } from '../../loaders/builder.js';
import { InferenceSession, Tensor } from '../../index.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

const RANGE: Record<string, [number, number]> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535], int4: [-8, 7], uint4: [0, 15], int2: [-2, 1], uint2: [0, 3],
  int32: [-(2 ** 31), 2 ** 31 - 1],
};
type R = ReturnType<typeof rng>;

function intTensor(d: DType, shape: number[], r: R, lo = RANGE[d][0], hi = RANGE[d][1]): NdArray {
  const n = shape.reduce((a, b) => a * b, 1), data = allocStorage(d, n) as Int32Array;
  for (let i = 0; i < n; i++) data[i] = r.int(lo, hi);
  return new NdArray(d, shape, data);
}
const floats = (d: 'float32' | 'float16', shape: number[], vals: (i: number) => number) =>
  new NdArray(d, shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => vals(i)));

interface Node { op: string; ins: (NdArray | string | undefined)[]; attrs?: Record<string, AttrInput>; outs?: number }

/** One node; NdArray inputs named in `feedsAt` are graph inputs (on the GPU), the rest initializers. */
async function run(n: Node, opset: number, feedsAt: number[] = [0]) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = n.ins.map((v, i) => {
    if (v === undefined) return '';
    if (typeof v === 'string') return v;
    if (feedsAt.includes(i)) { feeds[`x${i}`] = v; return g.input(`x${i}`, v.dtype, [...v.shape]); }
    return g.init(`c${i}`, v);
  });
  g.node(n.op, names, n.attrs ?? {}, n.outs ?? 1).forEach((o) => g.output(o, null));
  await expectGpuMatchesCpu(g.model({ opset }), feeds, { rtol: 0, atol: 0 });
}

let gpu: GpuContext | undefined;
beforeAll(async () => { gpu = await acquireGpu().catch(() => undefined); });
afterAll(() => { if (gpu) releaseGpu(gpu); });
afterEach(() => { delete process.env.LASTMILE_NO_DOT4; });

/** A random layout: per-tensor, per-axis or blocked, with the scale / zero point shapes it needs. */
function layout(shape: number[], r: R, opset: number) {
  const kind = r.pick(opset >= 21 ? ['tensor', 'axis', 'block'] : ['tensor', 'axis']);
  if (kind === 'tensor') return { attrs: {}, pshape: [] as number[] };
  const axis = r.int(0, shape.length - 1), attrs: Record<string, AttrInput> = { axis: r.next() < 0.5 ? axis : axis - shape.length };
  if (kind === 'axis') return { attrs, pshape: [shape[axis]] };
  const block = r.int(1, shape[axis] + 1);
  return { attrs: { ...attrs, block_size: block }, pshape: shape.map((d, i) => (i === axis ? Math.ceil(d / block) : d)) };
}

const SHAPES = [[1], [7], [3, 5], [2, 33, 3], [4, 1, 6, 5], [65, 17]];

describeGpu('WebGPU quantization matches the CPU backend exactly', () => {
  it('QuantizeLinear: layouts, output types, exact ties and saturation', async () => {
    const r = rng(41);
    for (let t = 0; t < 24; t++) {
      const opset = r.pick([13, 19, 21, 25]), shape = r.pick(SHAPES);
      const outs: DType[] = ['int8', 'uint8', ...(opset >= 21 ? ['int16', 'uint16', 'int4', 'uint4'] as DType[] : []), ...(opset >= 25 ? ['int2', 'uint2'] as DType[] : [])];
      const out = r.pick(outs), l = layout(shape, r, opset), [lo, hi] = RANGE[out];
      const half = opset >= 19 && !!gpu?.f16 && r.next() < 0.3;
      // Power-of-two scales make x / scale exact, so the k + 0.5 values below are real ties.
      const scale = floats(half ? 'float16' : 'float32', l.pshape, () => (r.next() < 0.5 ? 2 ** r.int(-3, 2) : r.float(0.01, 3)));
      const span = (hi - lo) * 4;
      const x = floats(half && r.next() < 0.5 ? 'float16' : 'float32', shape, (i) => (i % 4 === 0 ? (r.int(-span, span) + 0.5) * 0.125 : r.float(-span, span) * 0.3));
      const zp = r.next() < 0.7 ? intTensor(out, l.pshape, r) : undefined;
      const attrs = { ...l.attrs, ...(zp || out === 'uint8' ? {} : { output_dtype: { int8: 3, int16: 5, uint16: 4, int4: 22, uint4: 21, int2: 26, uint2: 25 }[out as 'int8']! }) };
      await run({ op: 'QuantizeLinear', ins: [x, scale, zp], attrs }, opset, r.next() < 0.5 ? [0] : [0, 1, 2]);
    }
  });

  it('QuantizeLinear: NaN, infinities and huge values', async () => {
    const x = floats('float32', [10], (i) => [NaN, Infinity, -Infinity, 1e30, -1e30, 2.5, -2.5, 3.5, -0.5, 0.5][i]);
    for (const zp of [intTensor('int8', [], rng(1), 3, 3), intTensor('uint8', [], rng(1), 128, 128), undefined]) {
      await run({ op: 'QuantizeLinear', ins: [x, floats('float32', [], () => 1), zp] }, 13);
    }
  });

  it('DequantizeLinear: layouts, every integer type, int32 with extreme zero points', async () => {
    const r = rng(43);
    for (let t = 0; t < 24; t++) {
      const opset = r.pick([13, 19, 21, 25]), shape = r.pick(SHAPES);
      const types: DType[] = ['int8', 'uint8', 'int32', ...(opset >= 21 ? ['int16', 'uint16', 'int4', 'uint4'] as DType[] : []), ...(opset >= 25 ? ['int2', 'uint2'] as DType[] : [])];
      const d = r.pick(types), l = layout(shape, r, opset);
      const half = opset >= 19 && !!gpu?.f16 && r.next() < 0.3;
      const scale = floats(half ? 'float16' : 'float32', l.pshape, () => r.float(0.001, 50));
      const x = intTensor(d, shape, r), zp = r.next() < 0.7 ? intTensor(d, l.pshape, r) : undefined;
      const attrs = { ...l.attrs, ...(opset >= 21 && !half && gpu?.f16 && r.next() < 0.3 ? { output_dtype: 10 } : {}) };
      await run({ op: 'DequantizeLinear', ins: [x, scale, zp], attrs }, opset, r.next() < 0.5 ? [0] : [0, 1, 2]);
    }
    // x - zp beyond the int32 range, and float16 outputs that overflow to infinity.
    const big = new NdArray('int32', [3], Int32Array.of(2 ** 31 - 1, -(2 ** 31), 16777217));
    await run({ op: 'DequantizeLinear', ins: [big, floats('float32', [], () => 0.75), new NdArray('int32', [], Int32Array.of(-(2 ** 31) + 5))] }, 13);
    if (gpu?.f16) await run({ op: 'DequantizeLinear', ins: [intTensor('int8', [9], rng(2)), floats('float16', [], () => 60000)] }, 19);
  });

  it('DynamicQuantizeLinear: ranges on one side of zero, constant input, sizes across workgroups', async () => {
    const r = rng(47);
    for (const [shape, lo, hi] of [[[1], 2, 2], [[5], -3, -1], [[7, 3], 0.5, 4], [[300], -2, 7], [[33, 129], -100, 3], [[70000], -1, 1]] as [number[], number, number][]) {
      await run({ op: 'DynamicQuantizeLinear', ins: [randomF32(shape, r, lo, hi)], outs: 3 }, 11);
    }
    await run({ op: 'DynamicQuantizeLinear', ins: [floats('float32', [4], () => 0)], outs: 3 }, 11);
  });

  // Shapes: 1s, odd sizes, sizes off the 32x32 tile and the 16-deep K chunk, batch broadcasting, 1-D operands;
  // a fixed dtype pairing per shape keeps the number of pipelines (slow to compile on lavapipe) small.
  const MM: [number[], number[], DType, DType][] = [[[1, 1], [1, 1], 'uint8', 'int8'], [[33, 17], [17, 65], 'int8', 'int8'],
    [[5, 1, 6, 19], [3, 19, 4], 'uint8', 'uint8'], [[19], [19, 6], 'int8', 'uint8'], [[4, 23], [23], 'uint8', 'int8'], [[64, 70], [70, 32], 'int8', 'uint8']];
  const SLOW = 600_000;

  for (const packed of [true, false]) {
    it(`MatMulInteger (${packed ? 'dot4I8Packed' : 'scalar'}): int8/uint8 mixes, per-tensor, per-row and per-column zero points`, async () => {
      if (!packed) process.env.LASTMILE_NO_DOT4 = '1';
      const r = rng(packed ? 51 : 52);
      for (const [as, bs, da, db] of MM) {
        const a = intTensor(da, as, r), b = intTensor(db, bs, r);
        const m = as.length >= 2 ? as[as.length - 2] : 1, n = bs.length >= 2 ? bs[bs.length - 1] : 1;
        const za = as.length >= 2 && m > 1 ? intTensor(da, [m], r) : intTensor(da, [], r);
        const zb = bs.length >= 2 && n > 1 ? intTensor(db, [n], r) : r.pick([undefined, intTensor(db, [], r)]);
        await run({ op: 'MatMulInteger', ins: [a, b, za, zb] }, 10, [0, 1, 2, 3]);
      }
    }, SLOW);

    it(`QLinearMatMul (${packed ? 'dot4I8Packed' : 'scalar'}): scales and zero points per tensor, row and column`, async () => {
      if (!packed) process.env.LASTMILE_NO_DOT4 = '1';
      const r = rng(packed ? 53 : 54);
      for (const [as, bs, da, db] of MM) {
        const a = intTensor(da, as, r), b = intTensor(db, bs, r);
        const m = as.length >= 2 ? as[as.length - 2] : 1, n = bs.length >= 2 ? bs[bs.length - 1] : 1;
        const rowShape = as.length < 2 ? [] : bs.length >= 2 ? [m, 1] : [m], colShape = bs.length >= 2 ? [n] : [];
        const sc = (s: number[]) => floats('float32', s, () => r.float(0.001, 0.05));
        // numpy broadcasting: a's zero point broadcasts onto a [.., M, K], its scale onto the output.
        const ins = [a, sc(rowShape), intTensor(da, as.length < 2 ? [] : [m, 1], r), b, sc(colShape), intTensor(db, colShape, r), sc([]), intTensor(da, [], r)];
        await run({ op: 'QLinearMatMul', ins }, 21, [0, 2, 3, 5, 7]);
      }
    }, SLOW);
  }
});

// ---- quantized models: strict WebGPU against onnxruntime-node ------------------------------------------

async function expectGpuMatchesOrt(bytes: Uint8Array, feeds: Record<string, NdArray>, tol: { rtol: number; atol: number }) {
  const ours = await InferenceSession.create(bytes, { executionProviders: ['webgpu'], strict: true });
  try {
    const ref = await ort.InferenceSession.create(bytes);
    const pub = Object.entries(feeds).map(([k, v]) => [k, toTensor(v)] as const);
    const mine = await ours.run(Object.fromEntries(pub));
    const theirs = await ref.run(Object.fromEntries(pub.map(([k, t]) => [k, new ort.Tensor(t.type as never, t.data as never, t.dims as number[])])));
    expect([...ours.placements.values()].every((p) => p.device === 'gpu' || !p.fallback)).toBe(true);
    for (const [k, t] of Object.entries(theirs)) {
      const diff = compareValues(toNdArray(new Tensor(t.type as never, t.data as never, t.dims)), toNdArray(mine[k] as Tensor), tol);
      expect(diff, `output '${k}'`).toBeUndefined();
    }
  } finally {
    await ours.release();
  }
}

describeGpu('quantized models run strictly on WebGPU and match onnxruntime-node', () => {
  it('QuantizeLinear -> QLinearMatMul -> DequantizeLinear', { timeout: 600_000 }, async () => {
    const r = rng(61);
    for (const [m, k, n] of [[1, 16, 8], [7, 45, 13], [32, 64, 48]]) {
      const g = new GraphBuilder(), x = g.input('x', 'float32', [m, k]);
      const xs = g.init('xs', floats('float32', [], () => 0.02)), xz = g.init('xz', intTensor('uint8', [], r, 120, 136));
      // uint8 weights: onnxruntime's uint8 x int8 kernel saturates pairs of products (pmaddubsw) for 8-bit activations.
      const w = g.init('w', intTensor('uint8', [k, n], r)), ws = g.init('ws', floats('float32', [], () => 0.01)), wz = g.init('wz', intTensor('uint8', [], r, 100, 150));
      const ys = g.init('ys', floats('float32', [], () => 0.05)), yz = g.init('yz', intTensor('uint8', [], r, 128, 128));
      const [q] = g.node('QuantizeLinear', [x, xs, xz]);
      const [y] = g.node('QLinearMatMul', [q, xs, xz, w, ws, wz, ys, yz]);
      g.output(g.node('DequantizeLinear', [y, ys, yz])[0], null);
      await expectGpuMatchesOrt(g.model({ opset: 13 }), { x: randomF32([m, k], r, -2, 2) }, { rtol: 0, atol: 0 });
    }
  });

  it('DynamicQuantizeLinear -> MatMulInteger (int32 out, exact)', { timeout: 600_000 }, async () => {
    const r = rng(62);
    for (const [m, k, n] of [[1, 3, 1], [9, 37, 21], [16, 128, 64]]) {
      const g = new GraphBuilder(), a = g.input('a', 'uint8', [m, k]);
      const b = g.init('b', intTensor('uint8', [k, n], r)), za = g.init('za', intTensor('uint8', [], r)), zb = g.init('zb', intTensor('uint8', [], r));
      g.output(g.node('MatMulInteger', [a, b, za, zb])[0], null);
      await expectGpuMatchesOrt(g.model({ opset: 10 }), { a: intTensor('uint8', [m, k], r) }, { rtol: 0, atol: 0 });
      const g2 = new GraphBuilder(), x = g2.input('x', 'float32', [m, k]);
      const [q, s, z] = g2.node('DynamicQuantizeLinear', [x], {}, 3);
      g2.output(q, null); g2.output(s, null); g2.output(z, null);
      await expectGpuMatchesOrt(g2.model({ opset: 11 }), { x: randomF32([m, k], r, -3, 1) }, { rtol: 0, atol: 0 });
    }
  });
});
