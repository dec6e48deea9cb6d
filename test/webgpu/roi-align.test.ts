// WebGPU RoiAlign against the CPU backend: both modes and coordinate transformations (and the opset-10
// behaviour), fixed and adaptive sampling ratios, RoIs partly and wholly outside the map, tiny maps.
import { it } from 'vitest';
import { NdArray } from '../../engine/tensor.js';
import { GraphBuilder } from '../../loaders/builder.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

describeGpu('WebGPU RoiAlign matches the CPU backend', () => {
  it('avg and max, half_pixel and output_half_pixel, sampling ratios, RoIs off the map', async () => {
    const r = rng(601);
    for (let t = 0; t < 12; t++) {
      const [n, c, h, w] = [r.int(1, 3), r.int(1, 4), r.int(1, 12), r.int(1, 12)], count = r.int(1, 5);
      const opset = r.pick([10, 16, 16]);
      const rois = Float32Array.from({ length: count * 4 }, (_, i) => {
        const dim = i % 2 ? h : w;
        return i % 4 < 2 ? r.float(-3, dim) : r.float(-1, dim + 4); // x1, y1 then x2, y2 (possibly inverted)
      });
      const attrs: Record<string, string | number> = {
        mode: r.pick(['avg', 'max']), output_height: r.int(1, 4), output_width: r.int(1, 4),
        sampling_ratio: r.pick([0, 0, 1, 2, 3]), spatial_scale: r.pick([1, 0.5, 0.25]),
      };
      if (opset >= 16) attrs.coordinate_transformation_mode = r.pick(['half_pixel', 'output_half_pixel']);
      const g = new GraphBuilder();
      const ins = [g.input('x', 'float32', [n, c, h, w]), g.input('rois', 'float32', [count, 4]), g.input('b', 'int64', [count])];
      g.output(g.node('RoiAlign', ins, attrs)[0], null);
      const b = new NdArray('int64', [count], BigInt64Array.from({ length: count }, () => BigInt(r.int(0, n - 1))));
      await expectGpuMatchesCpu(g.model({ opset }), { x: randomF32([n, c, h, w], r, -2, 2), rois: new NdArray('float32', [count, 4], rois), b }, { rtol: 1e-4, atol: 1e-5 });
    }
  });
});
