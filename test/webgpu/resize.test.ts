import { afterAll, beforeAll, it } from 'vitest';
import { float, GraphBuilder } from '../../loaders/builder.js';
import { NdArray } from '../../engine/tensor.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type R = ReturnType<typeof rng>;
const COORDS = ['half_pixel', 'half_pixel_symmetric', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn'];
const NEAREST = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];

/** Resize-19 with scales or sizes as initializers (they are CPU inputs of the GPU kernel). */
function resize(shape: number[], attrs: Record<string, unknown>, by: { scales?: number[]; sizes?: number[]; roi?: number[] }, dtype: 'float32' | 'int32' = 'float32') {
  const g = new GraphBuilder();
  const x = g.input('x', dtype, shape);
  const roi = by.roi ? g.init('roi', 'float32', [by.roi.length], by.roi) : '';
  const scales = by.scales ? g.init('scales', 'float32', [by.scales.length], by.scales) : '';
  const sizes = by.sizes ? g.init('sizes', 'int64', [by.sizes.length], by.sizes.map(BigInt)) : '';
  g.output(g.node('Resize', [x, roi, scales, sizes], attrs as never)[0], null);
  return g.model({ opset: 19 });
}

const randShape = (r: R, rank: number) => Array.from({ length: rank }, () => r.int(1, 5));
const randScale = (r: R) => r.pick([0.5, 0.6, 0.75, 1, 1.5, 2, 2.5, 3]);

describeGpu('WebGPU Resize matches the CPU backend', () => {
  // One device for the whole file, so each pipeline compiles once (sessions share the device's cache).
  let gpuCtx: GpuContext | undefined;
  beforeAll(async () => { gpuCtx = await acquireGpu(); });
  afterAll(() => { if (gpuCtx) releaseGpu(gpuCtx); });
  it('nearest: every rounding and coordinate mode, scales and sizes, ranks 1 to 5', async () => {
    const r = rng(11);
    for (let n = 0; n < 14; n++) {
      const rank = 1 + (n % 5), shape = randShape(r, rank);
      const attrs = { mode: 'nearest', nearest_mode: NEAREST[n % 4], coordinate_transformation_mode: COORDS[n % COORDS.length] };
      const by = n % 2 ? { scales: shape.map(() => randScale(r)) } : { sizes: shape.map(() => r.int(1, 7)) };
      await expectGpuMatchesCpu(resize(shape, attrs, by), { x: randomF32(shape, r) });
    }
  });
  it('linear and cubic, exclude_outside, cubic_coeff_a, antialias, axes', async () => {
    const r = rng(12);
    for (let n = 0; n < 12; n++) {
      const shape = [r.int(1, 2), r.int(1, 3), r.int(2, 7), r.int(2, 7)];
      const mode = n % 2 ? 'linear' : 'cubic';
      const attrs = {
        mode, coordinate_transformation_mode: COORDS[n % COORDS.length], exclude_outside: n % 3 === 0 ? 1 : 0,
        cubic_coeff_a: float(r.pick([-0.75, -0.5])), antialias: n % 4 === 1 ? 1 : 0, ...(n % 5 === 2 ? { axes: [3, 2] } : {}),
      };
      const k = 'axes' in attrs ? 2 : 4;
      const by = n % 3 ? { scales: Array.from({ length: k }, (_, i) => (i < k - 2 ? 1 : randScale(r))) } : { sizes: Array.from({ length: k }, (_, i) => (i < k - 2 ? shape[i] : r.int(1, 9))) };
      await expectGpuMatchesCpu(resize(shape, attrs, by), { x: randomF32(shape, r) });
    }
  });
  it('nearest copies int32 elements exactly', async () => {
    const r = rng(14), shape = [2, 3, 4];
    const x = new NdArray('int32', shape, Int32Array.from(randomF32(shape, r, -1e6, 1e6).data, Math.round));
    await expectGpuMatchesCpu(resize(shape, { mode: 'nearest' }, { scales: [1, 1.7, 0.6] }, 'int32'), { x });
  });
  it('tf_crop_and_resize with extrapolation, keep_aspect_ratio_policy, Upsample-9', async () => {
    const r = rng(13);
    const shape = [1, 2, 4, 5];
    for (const mode of ['nearest', 'linear', 'cubic']) {
      const attrs = { mode, coordinate_transformation_mode: 'tf_crop_and_resize', extrapolation_value: float(7.5) };
      await expectGpuMatchesCpu(resize(shape, attrs, { roi: [0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3], sizes: [1, 2, 5, 6] }), { x: randomF32(shape, r) });
    }
    for (const policy of ['not_larger', 'not_smaller']) {
      await expectGpuMatchesCpu(resize(shape, { mode: 'linear', keep_aspect_ratio_policy: policy, axes: [2, 3] }, { sizes: [7, 3] }), { x: randomF32(shape, r) });
    }
    const g = new GraphBuilder();
    g.output(g.node('Upsample', [g.input('x', 'float32', shape), g.init('s', 'float32', [4], [1, 1, 2, 1.5])], { mode: 'linear' })[0], null);
    await expectGpuMatchesCpu(g.model({ opset: 9 }), { x: randomF32(shape, r) });
  });
});
