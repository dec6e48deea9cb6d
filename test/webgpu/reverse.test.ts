// WebGPU ReverseSequence against the CPU backend: time/batch axes in both orders, lengths 0..T, dtypes.
import { it } from 'vitest';
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { GraphBuilder, i64 } from '../../loaders/builder.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

describeGpu('WebGPU ReverseSequence matches the CPU backend', () => {
  it('both axis orders, random lengths and trailing dims, float32/int32/float16', async () => {
    const r = rng(121);
    for (let k = 0; k < 6; k++) {
      const time = k % 2, shape = [r.int(1, 5), r.int(1, 4), ...Array.from({ length: r.int(0, 2) }, () => r.int(1, 3))];
      const T = shape[time], B = shape[1 - time], lens = Array.from({ length: B }, () => r.int(0, T));
      const d = (['float32', 'int32', 'float16'] as DType[])[k % 3], f = randomF32(shape, r, -4, 4).data;
      const x = d === 'int32' ? new NdArray(d, shape, Int32Array.from(f, Math.round)) : new NdArray(d, shape, d === 'float16' ? f.map((v) => Math.round(v * 8) / 8) : f);
      const g = new GraphBuilder();
      g.output(g.node('ReverseSequence', [g.input('x', d, shape), g.init('lens', i64([B], lens))], { time_axis: time, batch_axis: 1 - time })[0], null);
      await expectGpuMatchesCpu(g.model({ opset: 10 }), { x });
    }
  });
});
