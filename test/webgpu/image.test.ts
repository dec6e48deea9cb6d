// WebGPU GridSample, AffineGrid and Col2Im against the CPU backend: every mode, padding and align_corners
// combination, 2-D and N-D, random shapes, grids reaching outside the image; Col2Im over random strides,
// dilations and pads.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NdArray } from '../../engine/tensor.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { GraphBuilder, i64 } from '../../loaders/builder.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type Rng = ReturnType<typeof rng>;

async function gridSample(r: Rng, rank: number, attrs: Record<string, number | string>, opset: number, f16 = false) {
  const n = r.int(1, 2), c = r.int(1, 3), inS = Array.from({ length: rank }, () => r.int(1, 5)), outS = Array.from({ length: rank }, () => r.int(1, 4));
  const g = new GraphBuilder(), dt = f16 ? 'float16' : 'float32';
  const xs = [n, c, ...inS], gs = [n, ...outS, rank];
  g.output(g.node('GridSample', [g.input('x', dt, xs), g.input('grid', dt, gs)], attrs)[0], null);
  // Grids reach beyond [-1, 1], so the padding modes matter; float16 data is kept exactly representable.
  const make = (s: number[], lo: number, hi: number) => {
    const t = randomF32(s, r, lo, hi);
    return f16 ? new NdArray('float16', s, t.data.map((v) => Math.round(v * 64) / 64)) : t;
  };
  const x = make(xs, -2, 2), grid = make(gs, -1.4, 1.4);
  await expectGpuMatchesCpu(g.model({ opset }), { x, grid }, f16 ? { rtol: 1e-2, atol: 1e-2 } : { rtol: 1e-3, atol: 1e-4 });
}

let gpu: GpuContext;
beforeAll(async () => { gpu = await acquireGpu().catch(() => undefined as never); });
afterAll(() => { if (gpu) releaseGpu(gpu); });

describeGpu('WebGPU image sampling matches the CPU backend', () => {
  it('GridSample 2-D: every mode x padding x align_corners (opset 16 names)', async () => {
    const r = rng(81);
    for (const mode of ['bilinear', 'nearest', 'bicubic']) for (const padding_mode of ['zeros', 'border', 'reflection']) for (const align_corners of [0, 1]) {
      await gridSample(r, 2, { mode, padding_mode, align_corners }, 16);
    }
  });
  it('GridSample N-D (opset 20): 1-D, 3-D linear/nearest/cubic, float16', async () => {
    const r = rng(82);
    for (const mode of ['linear', 'nearest', 'cubic']) for (const padding_mode of ['zeros', 'border', 'reflection']) {
      await gridSample(r, 3, { mode, padding_mode, align_corners: r.int(0, 1) }, 20);
      await gridSample(r, 1, { mode, padding_mode, align_corners: r.int(0, 1) }, 20);
    }
    await gridSample(r, 2, { mode: 'linear', padding_mode: 'border' }, 20, true);
  });
  it('AffineGrid 2-D and 3-D, both align_corners, size-1 dims', async () => {
    const r = rng(83);
    for (const size of [[2, 3, 4, 5], [1, 1, 1, 3], [2, 1, 3, 2, 4], [1, 2, 1, 1, 1]]) for (const align_corners of [0, 1]) {
      const k = size.length - 2, g = new GraphBuilder(), ts = [size[0], k, k + 1];
      g.output(g.node('AffineGrid', [g.input('theta', 'float32', ts), g.init('size', i64([size.length], size))], { align_corners })[0], null);
      await expectGpuMatchesCpu(g.model({ opset: 20 }), { theta: randomF32(ts, r, -2, 2) as NdArray });
    }
  });
  it('Col2Im: 1-D to 3-D images, random strides, dilations and pads, float32 and int32', async () => {
    const r = rng(84);
    let ran = 0;
    for (let t = 0; t < 10; t++) {
      const rank = 1 + (t % 3), k = Array.from({ length: rank }, () => r.int(1, 3)), s = k.map(() => r.int(1, 3)), d = k.map(() => r.int(1, 2));
      const pads = [...k.map(() => r.int(0, 2)), ...k.map(() => r.int(0, 2))];
      const dims = k.map((kk, i) => (kk - 1) * d[i] + 1 + r.int(0, 4) - pads[i] - pads[rank + i] + 2);
      const nb = dims.map((n, i) => Math.floor((n + pads[i] + pads[rank + i] - ((k[i] - 1) * d[i] + 1)) / s[i]) + 1);
      if (dims.some((v) => v < 1) || nb.some((v) => v < 1)) continue;
      const n = r.int(1, 2), c = r.int(1, 3), xs = [n, c * k.reduce((a, b) => a * b, 1), nb.reduce((a, b) => a * b, 1)];
      const int = t % 4 === 3, g = new GraphBuilder();
      const y = g.node('Col2Im', [g.input('x', int ? 'int32' : 'float32', xs), g.init('dims', i64([rank], dims)), g.init('k', i64([rank], k))], { strides: s, dilations: d, pads })[0];
      g.output(y, null);
      const x = randomF32(xs, r, -2, 2);
      await expectGpuMatchesCpu(g.model({ opset: 18 }), { x: int ? new NdArray('int32', xs, Int32Array.from(x.data, (v) => Math.round(v * 10))) : x });
      ran++;
    }
    expect(ran).toBeGreaterThanOrEqual(6);
  });
});
