import { it } from 'vitest';
import { GraphBuilder } from '../../loaders/builder.js';
import { NdArray } from '../../engine/tensor.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

function model(op: string, shape: number[], axis: number | undefined, opset: number, dtype: 'float32' | 'float16' = 'float32') {
  const g = new GraphBuilder();
  g.output(g.node(op, [g.input('x', dtype, shape)], axis === undefined ? {} : { axis })[0], null);
  return g.model({ opset });
}

describeGpu('WebGPU Softmax, LogSoftmax and Hardmax match the CPU backend', () => {
  it('along one axis (opset 13) and coerced to 2-D (opset 11), random shapes and axes', async () => {
    const r = rng(21);
    for (const op of ['Softmax', 'LogSoftmax', 'Hardmax']) {
      for (const opset of [11, 13]) {
        for (let k = 0; k < 2; k++) {
          const shape = Array.from({ length: r.int(1, 4) }, () => r.int(1, 6)), rank = shape.length;
          // The 2-D coercion also takes axis == rank; the default axis is left out once.
          const axis = k === 0 ? undefined : opset < 13 ? r.int(-rank, rank) : r.int(-rank, rank - 1);
          // Integer-valued data gives Hardmax ties (the first maximum wins).
          const x = randomF32(shape, r, -4, 4);
          if (op === 'Hardmax') x.data.forEach((v, i) => { x.data[i] = Math.round(v); });
          await expectGpuMatchesCpu(model(op, shape, axis, opset), { x });
        }
      }
    }
  });
  it('large logits stay finite; long rows (the parallel variant on software adapters); float16', async () => {
    const r = rng(22);
    await expectGpuMatchesCpu(model('Softmax', [4, 7], -1, 13), { x: randomF32([4, 7], r, 500, 900) });
    for (const op of ['Softmax', 'LogSoftmax', 'Hardmax']) await expectGpuMatchesCpu(model(op, [2, 3000], 1, 13), { x: randomF32([2, 3000], r, -5, 5) });
    await expectGpuMatchesCpu(model('Softmax', [1, 2, 1500], 2, 13), { x: randomF32([1, 2, 1500], r, -5, 5) });
    const x = randomF32([3, 5], r, -3, 3);
    await expectGpuMatchesCpu(model('Softmax', [3, 5], 1, 13, 'float16'), { x: new NdArray('float16', [3, 5], x.data) }, { rtol: 1e-2, atol: 1e-3 });
  });
});
