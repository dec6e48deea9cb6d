import { it } from 'vitest';
import { GraphBuilder, type AttrInput } from '../../loaders/builder.js';
import { NdArray } from '../../engine/tensor.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type R = ReturnType<typeof rng>;

/** One node over input x and initializers (name -> shape), with `outputs` outputs. */
function model(op: string, shape: number[], params: [string, number[]][], attrs: Record<string, AttrInput>, opset: number, r: R, outputs = 1) {
  const g = new GraphBuilder();
  const ins = [g.input('x', 'float32', shape), ...params.map(([n, s]) => (n ? g.init(n, randomF32(s, r, n === 'var' ? 0.1 : -1, 1)) : ''))];
  for (const o of g.node(op, ins, attrs, outputs)) g.output(o, null);
  return g.model({ opset });
}

describeGpu('WebGPU normalizations match the CPU backend', () => {
  it('LayerNormalization: random axes, trailing and broadcast scales, optional bias and statistics', async () => {
    const r = rng(31);
    for (let k = 0; k < 5; k++) {
      const shape = Array.from({ length: r.int(1, 4) }, () => r.int(1, 5)), axis = r.int(-shape.length, shape.length - 1);
      const a = axis < 0 ? axis + shape.length : axis, trail = shape.slice(a).slice(r.int(0, shape.length - a - 1));
      const params: [string, number[]][] = [['scale', trail], ...(k % 2 ? [['bias', trail] as [string, number[]]] : [])];
      await expectGpuMatchesCpu(model('LayerNormalization', shape, params, { axis, epsilon: 1e-3 }, 17, r, k % 3 ? 3 : 1), { x: randomF32(shape, r, -3, 3) });
    }
    // Scales broadcast over inner dims, or spread around a broadcast 1 (expanded first); long rows.
    await expectGpuMatchesCpu(model('LayerNormalization', [2, 3, 4], [['scale', [3, 1]], ['bias', [1, 4]]], { axis: 1 }, 17, r), { x: randomF32([2, 3, 4], r) });
    await expectGpuMatchesCpu(model('LayerNormalization', [2, 3, 4], [['scale', [2, 1, 4]], ['bias', [4]]], { axis: 0 }, 17, r, 3), { x: randomF32([2, 3, 4], r) });
    await expectGpuMatchesCpu(model('LayerNormalization', [2, 1200], [['scale', [1200]]], { axis: 1 }, 17, r, 3), { x: randomF32([2, 1200], r, -3, 3) });
  });
  it('BatchNormalization (inference), InstanceNormalization, GroupNormalization (opsets 18 and 21)', async () => {
    const r = rng(32);
    for (const shape of [[2, 3, 4, 5], [4, 3], [2, 3, 7]]) {
      const c = shape[1], ps: [string, number[]][] = ['scale', 'bias', 'mean', 'var'].map((n) => [n, [c]]);
      await expectGpuMatchesCpu(model('BatchNormalization', shape, ps, { epsilon: 1e-3 }, 15, r), { x: randomF32(shape, r, -2, 2) });
    }
    for (const shape of [[2, 3, 5], [1, 2, 3, 4], [1, 2, 1100]]) {
      await expectGpuMatchesCpu(model('InstanceNormalization', shape, [['scale', [shape[1]]], ['bias', [shape[1]]]], {}, 15, r), { x: randomF32(shape, r, -2, 2) });
    }
    for (const [opset, groups] of [[18, 2], [21, 3], [21, 1]]) {
      const shape = [2, 6, 3, 2], count = opset < 21 ? groups : 6;
      await expectGpuMatchesCpu(model('GroupNormalization', shape, [['scale', [count]], ['bias', [count]]], { num_groups: groups, epsilon: 1e-4 }, opset, r), { x: randomF32(shape, r, -2, 2) });
    }
  });
  it('RMSNormalization and LpNormalization over random axes', async () => {
    const r = rng(33);
    for (let k = 0; k < 3; k++) {
      const shape = Array.from({ length: r.int(1, 4) }, () => r.int(1, 5)), axis = r.int(-shape.length, shape.length - 1);
      const a = axis < 0 ? axis + shape.length : axis;
      await expectGpuMatchesCpu(model('RMSNormalization', shape, [['scale', shape.slice(a)]], { axis }, 23, r), { x: randomF32(shape, r, -3, 3) });
      await expectGpuMatchesCpu(model('LpNormalization', shape, [], { axis, p: 1 + (k % 2) }, 13, r), { x: randomF32(shape, r, -3, 3) });
    }
    // Zero rows normalise to zeros; a long row.
    await expectGpuMatchesCpu(model('LpNormalization', [3, 4], [], { axis: 1, p: 2 }, 13, r), { x: new NdArray('float32', [3, 4], new Float32Array(12)) });
    await expectGpuMatchesCpu(model('RMSNormalization', [1, 3000], [['scale', [3000]]], { axis: -1 }, 23, r), { x: randomF32([1, 3000], r) });
  });
  it('MeanVarianceNormalization over any axes, LRN with even and odd windows', async () => {
    const r = rng(34);
    for (const axes of [[0, 2, 3], [1], [0, 3]]) {
      await expectGpuMatchesCpu(model('MeanVarianceNormalization', [2, 3, 4, 5], [], { axes }, 13, r), { x: randomF32([2, 3, 4, 5], r, -2, 2) });
    }
    for (const [shape, size] of [[[2, 5, 3, 3], 3], [[1, 6, 4], 4], [[3, 4], 1]] as [number[], number][]) {
      await expectGpuMatchesCpu(model('LRN', shape, [], { size, alpha: 1e-2, beta: 0.6, bias: 1.5 }, 13, r), { x: randomF32(shape, r, -2, 2) });
    }
  });
});
