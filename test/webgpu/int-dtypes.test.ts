// 8-, 16- and sub-byte integers on the GPU (32-bit lanes): Cast between every pair of GPU dtypes, and the
// integer ops that take them wrapping (sums, products, scans, scatters) or saturating (Resize) exactly as
// the CPU backend does. Every case is bit-compared with the CPU backend in a strict WebGPU session.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { allocStorage, onnxCode, type DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { GraphBuilder, type AttrInput } from '../../loaders/builder.js';
import { InferenceSession, Tensor } from '../../index.js';
import { rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

const NARROW: DType[] = ['int8', 'uint8', 'int16', 'uint16', 'int4', 'uint4', 'int2', 'uint2'];
const RANGE: Record<string, [number, number]> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535], int4: [-8, 7], uint4: [0, 15], int2: [-2, 1], uint2: [0, 3],
};
// Ties for the sub-byte rounding (half away from zero), values that wrap every width, NaN and infinities.
const FLOATS = [0, -0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 7.5, -8.5, 0.49999997, 127.9, -128.9, 255.5, 300.7, -300.7, 32767.5, 65535.9,
  70000.2, -40000.5, 2 ** 31, 3e9, -3e9, 1e20, -1e30, NaN, Infinity, -Infinity];

function ints(d: DType, r = rng(3)): NdArray {
  const [lo, hi] = RANGE[d] ?? [-(2 ** 31), 2 ** 31 - 1];
  const vals = [lo, hi, 0, 1, lo + 1, hi - 1, ...Array.from({ length: 14 }, () => r.int(lo, hi))];
  const data = allocStorage(d, vals.length) as Int32Array;
  data.set(vals.map((v) => (d === 'uint32' ? v >>> 0 : v)));
  return new NdArray(d, [vals.length], data);
}

function sample(d: DType): NdArray {
  switch (d) {
    case 'float32': return new NdArray(d, [FLOATS.length], Float32Array.from(FLOATS));
    case 'float16': return new NdArray(d, [10], Float32Array.of(0, -1.5, 2.5, -2.5, 300.5, -129, 65504, NaN, Infinity, 7.5));
    case 'int64': return new NdArray(d, [6], BigInt64Array.of(0n, -1n, 255n, -129n, 2n ** 40n + 300n, -(2n ** 63n)));
    case 'bool': return new NdArray(d, [4], Uint8Array.of(1, 0, 1, 1));
    case 'uint32': return new NdArray(d, [6], Uint32Array.of(0, 1, 255, 256, 65535, 4294967295));
    default: return ints(d);
  }
}

async function run(op: string, ins: NdArray[], attrs: Record<string, AttrInput> = {}, opset = 21, cpu: NdArray[] = []) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = ins.map((v, i) => { feeds[`x${i}`] = v; return g.input(`x${i}`, v.dtype, [...v.shape]); });
  cpu.forEach((c, i) => names.push(g.init(`c${i}`, c)));
  g.output(g.node(op, names, attrs)[0], null);
  return expectGpuMatchesCpu(g.model({ opset }), feeds, { rtol: 0, atol: 0 });
}

const i64 = (...v: number[]) => new NdArray('int64', [v.length], BigInt64Array.from(v.map(BigInt)));

let gpu: GpuContext | undefined;
beforeAll(async () => { gpu = await acquireGpu().catch(() => undefined); });
afterAll(() => { if (gpu) releaseGpu(gpu); });

describeGpu('WebGPU 8-, 16- and sub-byte integers match the CPU backend exactly', () => {
  const ALL: DType[] = ['float32', 'float16', 'int32', 'uint32', 'bool', 'int64', ...NARROW];

  it('Cast between every pair of GPU dtypes, narrow integers on either side', async () => {
    for (const from of ALL) for (const to of ALL) {
      if (from === to || (!NARROW.includes(from) && !NARROW.includes(to))) continue;
      if ((from === 'float16' || to === 'float16') && !gpu?.f16) continue;
      await run('Cast', [sample(from)], { to: onnxCode(to) }, 25);
    }
  });

  it('CastLike to narrow integers', async () => {
    for (const to of NARROW) await run('CastLike', [sample('float32'), new NdArray(to, [1], allocStorage(to, 1))], {}, 25);
  });

  it('narrow integers stay on the GPU and come back unchanged through data movement', async () => {
    for (const d of NARROW) {
      const x = ints(d, rng(11));
      const s = await run('Transpose', [new NdArray(d, [4, 5], x.data)], { perm: [1, 0] });
      expect([...s.placements.values()].every((p) => p.device === 'gpu')).toBe(true);
      await run('Concat', [x, ints(d, rng(12))], { axis: 0 });
      await run('Gather', [x], { axis: 0 }, 13, [i64(0, 19, 3, -1)]);
    }
  });

  it('reductions and scans wrap to the dtype width as typed-array stores do', async () => {
    const r = rng(5);
    for (const d of NARROW) {
      const [lo, hi] = RANGE[d], n = 3 * 7 * 5;
      const x = new NdArray(d, [3, 7, 5], Int32Array.from({ length: n }, () => r.int(lo, hi)));
      const data = allocStorage(d, n) as Int32Array; data.set(x.data as Int32Array);
      const t = new NdArray(d, [3, 7, 5], data);
      for (const op of ['ReduceSum', 'ReduceProd', 'ReduceMax', 'ReduceMin', 'ReduceMean', 'ReduceSumSquare', 'ReduceL1']) {
        await run(op, [t], { keepdims: 0 }, 18, [i64(1)]);
      }
      await run('ArgMax', [t], { axis: 2 });
      await run('CumSum', [t], {}, 14, [i64(1)]);
      await run('CumSum', [t], { exclusive: 1, reverse: 1 }, 14, [i64(2)]);
    }
  });

  it('Clip and scatter reductions on narrow integers', async () => {
    for (const d of ['int8', 'uint8', 'int16', 'uint16'] as DType[]) {
      const x = ints(d, rng(21)), [lo, hi] = RANGE[d];
      const b = (v: number) => { const s = allocStorage(d, 1) as Int32Array; s[0] = v; return new NdArray(d, [], s); };
      await run('Clip', [x], {}, 13, [b(lo + 3), b(hi - 5)]);
      const upd = ints(d, rng(22));
      for (const reduction of ['add', 'mul', 'max', 'min']) {
        const idx = new NdArray('int64', [upd.size], BigInt64Array.from({ length: upd.size }, (_, i) => BigInt((i * 7) % x.size)));
        const g = new GraphBuilder();
        const xi = g.input('x', d, [...x.shape]), ui = g.input('u', d, [...upd.shape]);
        g.output(g.node('ScatterElements', [xi, g.init('i', idx), ui], { axis: 0, reduction })[0], null);
        await expectGpuMatchesCpu(g.model({ opset: 18 }), { x, u: upd }, { rtol: 0, atol: 0 });
      }
    }
  });

  it('Resize (linear) saturates narrow integers like the CPU', async () => {
    const r = rng(9);
    for (const d of ['uint8', 'int8', 'int16'] as DType[]) {
      const [lo, hi] = RANGE[d];
      const data = allocStorage(d, 2 * 6 * 6) as Int32Array;
      data.set(Array.from({ length: data.length }, (_, i) => (i % 5 === 0 ? hi : i % 7 === 0 ? lo : r.int(lo, hi))));
      const scales = new NdArray('float32', [4], Float32Array.of(1, 1, 1.7, 2.3));
      // Cubic overshoots past the range: that is where saturation (not wrapping) shows.
      for (const mode of ['linear', 'cubic']) await run('Resize', [new NdArray(d, [1, 2, 6, 6], data)], { mode }, 13, [new NdArray('float32', [0], new Float32Array(0)), scales]);
    }
  });

  it('IO: narrow integer graph inputs and outputs cross to the GPU and back unchanged', async () => {
    const g = new GraphBuilder(), x = g.input('x', 'int8', [20]);
    g.output(g.node('Identity', [g.node('Reshape', [x, g.init('s', i64(4, 5))])[0]])[0], null);
    const s = await InferenceSession.create(g.model({ opset: 13 }), { executionProviders: ['webgpu'], strict: true });
    try {
      const feed = ints('int8', rng(2));
      const out = await s.run({ x: new Tensor('int8', feed.data as Int8Array, [20]) });
      expect([...(Object.values(out)[0] as { data: Int8Array }).data]).toEqual([...(feed.data as Int8Array)]);
    } finally { await s.release(); }
  });
});
