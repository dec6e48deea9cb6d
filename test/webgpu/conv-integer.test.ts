// WebGPU ConvInteger and QLinearConv against the CPU backend, bit for bit, on the dot4I8Packed and the
// scalar kernel: random 1-3-D geometries (pads, strides, dilations, auto_pad, groups up to depthwise) with
// channel, position and K counts off the 32x32 tile and the 16-deep K chunk, int8/uint8 mixes, zero
// points per tensor and per output channel, QLinearConv's bias and per-channel scales, saturating outputs.
import { afterEach, it } from 'vitest';
import { allocStorage, type DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { GraphBuilder, type AttrInput } from '../../loaders/builder.js';
import { rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type R = ReturnType<typeof rng>;
const RANGE: Record<string, [number, number]> = { int8: [-128, 127], uint8: [0, 255], int32: [-5000, 5000] };
const EXACT = { rtol: 0, atol: 0 };

function ints(d: DType, shape: number[], r: R, lo = RANGE[d][0], hi = RANGE[d][1]): NdArray {
  const n = shape.reduce((a, b) => a * b, 1), data = allocStorage(d, n) as Int32Array;
  for (let i = 0; i < n; i++) data[i] = r.int(lo, hi);
  return new NdArray(d, shape, data);
}
const f32 = (shape: number[], f: () => number) => new NdArray('float32', shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, f));

/** A random conv geometry: x and w shapes and the window attributes. */
function geometry(r: R) {
  const rank = r.int(1, 3), group = r.pick([1, 1, 2, 3, 0]); // 0: depthwise
  const cg = group === 0 ? 1 : r.int(1, rank === 3 ? 3 : 9), g = group === 0 ? r.int(2, 6) : group;
  const c = cg * g, m = g * (group === 0 ? r.int(1, 2) : r.int(1, rank === 1 ? 40 : 12));
  const k = Array.from({ length: rank }, () => r.int(1, 3)), d = k.map(() => r.int(1, 2)), s = k.map(() => r.int(1, 2));
  const inS = k.map((kk, i) => (kk - 1) * d[i] + r.int(1, rank === 1 ? 50 : rank === 2 ? 9 : 4));
  const attrs: Record<string, AttrInput> = { group: g, strides: s, dilations: d };
  if (r.next() < 0.3) attrs.auto_pad = r.pick(['SAME_UPPER', 'SAME_LOWER', 'VALID']);
  else attrs.pads = [...k.map(() => r.int(0, 2)), ...k.map(() => r.int(0, 2))];
  if (r.next() < 0.5) attrs.kernel_shape = k;
  return { x: [r.int(1, 2), c, ...inS], w: [m, cg, ...k], m, attrs };
}

async function run(op: string, ins: (NdArray | undefined)[], attrs: Record<string, AttrInput>, gpuInputs: number[]) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = ins.map((v, i) => {
    if (!v) return '';
    if (gpuInputs.includes(i)) { feeds[`x${i}`] = v; return g.input(`x${i}`, v.dtype, [...v.shape]); }
    return g.init(`c${i}`, v);
  });
  g.output(g.node(op, names, attrs)[0], null);
  await expectGpuMatchesCpu(g.model({ opset: 10 }), feeds, EXACT);
}

afterEach(() => { delete process.env.LASTMILE_NO_DOT4; });

describeGpu('WebGPU ConvInteger and QLinearConv match the CPU backend exactly', () => {
  for (const packed of [true, false]) {
    it(`ConvInteger (${packed ? 'dot4I8Packed' : 'scalar'}): geometries, groups, zero points per tensor and channel`, async () => {
      if (!packed) process.env.LASTMILE_NO_DOT4 = '1';
      const r = rng(packed ? 401 : 402);
      for (let t = 0; t < 10; t++) {
        const geo = geometry(r), dx = r.pick<DType>(['int8', 'uint8']), dw = r.pick<DType>(['int8', 'uint8']);
        const xz = r.next() < 0.8 ? ints(dx, r.pick([[], [1]]), r) : undefined;
        const wz = r.next() < 0.8 ? ints(dw, r.next() < 0.5 ? [geo.m] : [], r) : undefined;
        await run('ConvInteger', [ints(dx, geo.x, r), ints(dw, geo.w, r), xz, wz], geo.attrs, r.next() < 0.5 ? [0] : [0, 1, 2, 3]);
      }
    }, 600_000);

    it(`QLinearConv (${packed ? 'dot4I8Packed' : 'scalar'}): scales per tensor and channel, bias, saturation`, async () => {
      if (!packed) process.env.LASTMILE_NO_DOT4 = '1';
      const r = rng(packed ? 403 : 404);
      for (let t = 0; t < 8; t++) {
        const geo = geometry(r), dx = r.pick<DType>(['int8', 'uint8']), dw = r.pick<DType>(['int8', 'uint8']), dy = r.pick<DType>(['int8', 'uint8']);
        const per = r.next() < 0.5 ? [geo.m] : [];
        // Small output scales push values past the output range, so saturation is exercised too.
        const ins = [ints(dx, geo.x, r), f32([], () => r.float(0.005, 0.05)), ints(dx, [], r), ints(dw, geo.w, r), f32(per, () => r.float(0.005, 0.05)),
          ints(dw, per, r), f32([], () => r.float(0.001, 0.2)), ints(dy, [], r), r.next() < 0.6 ? ints('int32', [geo.m], r) : undefined];
        await run('QLinearConv', ins, geo.attrs, r.next() < 0.5 ? [0] : [0, 2, 3, 5, 7, 8]);
      }
    }, 600_000);
  }

  it('ConvInteger without zero points and with the extreme zero points (padding reads as the zero point)', async () => {
    const r = rng(405);
    for (const [dx, dw, zx, zw] of [['uint8', 'uint8', 255, 0], ['int8', 'int8', -128, 127], ['uint8', 'int8', 0, -128], ['int8', 'uint8', 127, 255]] as [DType, DType, number, number][]) {
      const x = ints(dx, [1, 3, 6, 7], r), w = ints(dw, [5, 3, 3, 3], r);
      await run('ConvInteger', [x, w, ints(dx, [], r, zx, zx), ints(dw, [], r, zw, zw)], { pads: [2, 1, 1, 2] }, [0]);
      await run('ConvInteger', [x, w], { pads: [1, 1, 1, 1], strides: [2, 1] }, [0, 1]);
    }
  }, 600_000);
});
