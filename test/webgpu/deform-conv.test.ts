// WebGPU DeformConv against the CPU backend: 1-3 spatial dims, groups and offset groups, with and without
// mask and bias, strides/dilations/pads, fractional offsets and offsets that move taps off the input.
import { it } from 'vitest';
import { GraphBuilder, type AttrInput } from '../../loaders/builder.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';
import type { NdArray } from '../../engine/tensor.js';

describeGpu('WebGPU DeformConv matches the CPU backend', () => {
  it('random geometries, groups, offset groups, mask and bias', async () => {
    const r = rng(801);
    for (let t = 0; t < 12; t++) {
      const rank = r.pick([1, 2, 2, 2, 3]), group = r.int(1, 2), og = r.int(1, 2);
      const c = group * og * r.int(1, 2), m = group * r.int(1, 3), n = r.int(1, 2);
      const k = Array.from({ length: rank }, () => r.int(1, 3)), s = k.map(() => r.int(1, 2)), d = k.map(() => r.int(1, 2));
      const pads = [...k.map(() => r.int(0, 1)), ...k.map(() => r.int(0, 1))];
      const inS = k.map((kk, i) => (kk - 1) * d[i] + r.int(1, rank === 3 ? 3 : 6));
      const outS = inS.map((v, i) => Math.floor((v + pads[i] + pads[rank + i] - ((k[i] - 1) * d[i] + 1)) / s[i]) + 1);
      const taps = k.reduce((a, b) => a * b, 1), withMask = r.next() < 0.5, withBias = r.next() < 0.5;
      const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
      const add = (nm: string, shape: number[], lo = -1, hi = 1) => { feeds[nm] = randomF32(shape, r, lo, hi); return g.input(nm, 'float32', shape); };
      const ins = [add('x', [n, c, ...inS]), add('w', [m, c / group, ...k]), add('off', [n, og * taps * rank, ...outS], -2.5, 2.5),
        withBias ? add('b', [m]) : '', ...(withMask ? [add('mask', [n, og * taps, ...outS], 0, 1)] : [])];
      // Whole-pixel offsets land exactly on input pixels (one corner weight 1, the rest 0).
      if (r.next() < 0.3) (feeds.off.data as Float32Array).forEach((v, i, a) => { a[i] = Math.round(v); });
      const attrs: Record<string, AttrInput> = { group, offset_group: og, strides: s, dilations: d, pads };
      if (r.next() < 0.5) attrs.kernel_shape = k;
      g.output(g.node('DeformConv', ins, attrs)[0], null);
      await expectGpuMatchesCpu(g.model({ opset: 19 }), feeds, { rtol: 1e-4, atol: 1e-5 });
    }
  });
});
