// WebGPU MaxUnpool against the CPU backend, bit for bit: indices from MaxPool (overlapping windows write one
// place twice), indices given directly with duplicates (the last write wins, as in the CPU's in-order
// scatter), a larger output_shape that remaps flat indices, 1-3 spatial dims.
import { expect, it } from 'vitest';
import { NdArray } from '../../engine/tensor.js';
import { GraphBuilder } from '../../loaders/builder.js';
import { InferenceSession } from '../../index.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';
import { toTensor } from '../../engine/tensor.js';

const EXACT = { rtol: 0, atol: 0 };

describeGpu('WebGPU MaxUnpool matches the CPU backend exactly', () => {
  it('after MaxPool, over 1 to 3 spatial dims, with and without output_shape', async () => {
    const r = rng(701);
    for (const [shape, k, s, pads] of [[[1, 2, 9], [3], [2], [1, 1]], [[2, 3, 6, 7], [2, 3], [1, 2], [0, 1, 0, 1]], [[1, 2, 4, 6, 4], [2, 2, 2], [2, 2, 2], [0, 0, 0, 0, 0, 0]]] as number[][][]) {
      for (const bigger of [false, true]) {
        const g = new GraphBuilder();
        const [y, i] = g.node('MaxPool', [g.input('x', 'float32', shape)], { kernel_shape: k, strides: s, pads }, 2);
        const attrs = { kernel_shape: k, strides: s, pads };
        const outShape = shape.map((d, j) => (j < 2 ? d : d + (bigger ? 2 : 0)));
        const ins = [y, i, ...(bigger ? [g.init('os', new NdArray('int64', [outShape.length], BigInt64Array.from(outShape.map(BigInt))))] : [])];
        g.output(g.node('MaxUnpool', ins, attrs)[0], null);
        await expectGpuMatchesCpu(g.model({ opset: 11 }), { x: randomF32(shape, r) }, EXACT);
      }
    }
  });

  it('indices given directly: duplicates keep the last value; out-of-range indices raise the CPU error', async () => {
    const r = rng(702);
    const g = new GraphBuilder();
    g.output(g.node('MaxUnpool', [g.input('x', 'float32', [1, 2, 2, 2]), g.input('i', 'int64', [1, 2, 2, 2])], { kernel_shape: [2, 2], strides: [2, 2] })[0], null);
    const bytes = g.model({ opset: 11 });
    const idx = new NdArray('int64', [1, 2, 2, 2], BigInt64Array.of(0n, 5n, 5n, 15n, 16n, 16n, 16n, 31n));
    await expectGpuMatchesCpu(bytes, { x: randomF32([1, 2, 2, 2], r), i: idx }, EXACT);
    const s = await InferenceSession.create(bytes, { executionProviders: ['webgpu'], strict: true });
    try {
      const bad = new NdArray('int64', [1, 2, 2, 2], BigInt64Array.of(0n, 1n, 2n, 3n, 4n, 5n, 6n, 32n));
      await expect(s.run({ x: toTensor(randomF32([1, 2, 2, 2], r)), i: toTensor(bad) })).rejects.toThrow(/holds index 32/);
    } finally {
      await s.release();
    }
  });
});
