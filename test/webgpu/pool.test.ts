import { it } from 'vitest';
import { GraphBuilder } from '../../loaders/builder.js';
import { NdArray } from '../../engine/tensor.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type Attrs = Record<string, number | number[] | string>;

function model(op: string, shape: number[], attrs: Attrs, outputs = 1, opset = 19, dtype: 'float32' | 'float16' = 'float32') {
  const g = new GraphBuilder();
  for (const o of g.node(op, [g.input('x', dtype, shape)], attrs, outputs)) g.output(o, null);
  return g.model({ opset });
}

/** Window cases over 1 to 3 spatial dims: pads, strides, dilations, ceil_mode and auto_pad. */
const CASES: [number[], Attrs][] = [
  [[1, 2, 9], { kernel_shape: [3], strides: [2], pads: [1, 1] }],
  [[2, 3, 7, 6], { kernel_shape: [3, 2], dilations: [2, 1], pads: [1, 0, 2, 1], ceil_mode: 1, strides: [2, 2] }],
  [[1, 2, 5, 5], { kernel_shape: [2, 3], auto_pad: 'SAME_UPPER', strides: [2, 1] }],
  [[1, 1, 6, 5], { kernel_shape: [3, 3], auto_pad: 'SAME_LOWER', strides: [2, 2] }],
  [[1, 2, 4, 5, 4], { kernel_shape: [2, 2, 3], strides: [1, 2, 1], pads: [0, 1, 1, 1, 0, 1] }],
];

describeGpu('WebGPU pooling matches the CPU backend', () => {
  it('MaxPool with Indices (row- and column-major), over 1 to 3 spatial dims', async () => {
    const r = rng(41);
    for (const [k, [shape, attrs]] of CASES.entries()) {
      await expectGpuMatchesCpu(model('MaxPool', shape, { ...attrs, storage_order: k % 2 }, 2), { x: randomF32(shape, r, -3, 3) });
    }
    // Ties pick the first tap; float16 storage.
    await expectGpuMatchesCpu(model('MaxPool', [1, 1, 4, 4], { kernel_shape: [2, 2] }, 2), { x: new NdArray('float32', [1, 1, 4, 4], new Float32Array(16).fill(1)) });
    const x = randomF32([1, 2, 5, 5], r);
    await expectGpuMatchesCpu(model('MaxPool', [1, 2, 5, 5], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 1, 19, 'float16'), { x: new NdArray('float16', [1, 2, 5, 5], x.data) }, { rtol: 1e-2, atol: 1e-3 });
  });
  it('AveragePool with and without count_include_pad, LpPool with several p', async () => {
    const r = rng(42);
    for (const [k, [shape, attrs]] of CASES.entries()) {
      await expectGpuMatchesCpu(model('AveragePool', shape, { ...attrs, count_include_pad: k % 2 }), { x: randomF32(shape, r, -3, 3) });
    }
    for (const [k, [shape, attrs]] of CASES.slice(0, 3).entries()) {
      // LpPool has no dilations or ceil_mode before opset 18; opset 18 has both.
      await expectGpuMatchesCpu(model('LpPool', shape, { ...attrs, p: [1, 2, 3][k] }, 1, 18), { x: randomF32(shape, r, -3, 3) });
    }
  });
  it('GlobalMaxPool and GlobalAveragePool', async () => {
    const r = rng(43);
    for (const shape of [[2, 3, 4, 5], [1, 4, 7], [1, 2, 3, 2, 2], [1, 1, 40, 40]]) {
      for (const op of ['GlobalMaxPool', 'GlobalAveragePool']) await expectGpuMatchesCpu(model(op, shape, {}), { x: randomF32(shape, r, -3, 3) });
    }
  });
});
