// Normalization ops against onnxruntime-node over random shapes, axes and attributes.
import { describe, expect, it } from 'vitest';
import type { DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { GraphBuilder, float, type AttrInput } from '../loaders/builder.js';
import { InferenceSession, Tensor } from '../index.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

/** One-node model; an undefined input is omitted (onnxruntime crashes on LayerNormalization's trailing ''). */
function oneNode(op: string, ins: [string, NdArray | undefined][], attrs: Record<string, AttrInput>, outs: DType[], opset = 17) {
  const g = new GraphBuilder();
  const names = g.node(op, ins.filter(([, t]) => t).map(([n, t]) => g.input(n, t!.dtype, [...t!.shape])), attrs, outs.length);
  names.forEach((n, i) => g.output(n, outs[i]));
  return { bytes: g.model({ opset }), feeds: Object.fromEntries(ins.filter(([, t]) => t).map(([n, t]) => [n, t!])) };
}

const shapeOf = (r: ReturnType<typeof rng>, rank: number) => Array.from({ length: rank }, () => r.int(1, 6));
const f64 = (t: NdArray) => new NdArray('float64', t.shape, Float64Array.from(t.data as Float32Array));

describe('BatchNormalization', () => {
  it('inference over ranks 2-5', async () => {
    const r = rng(1);
    for (const rank of [2, 3, 4, 5]) {
      const s = shapeOf(r, rank), c = s[1], v = randomF32([c], r, 0.1, 2);
      const { bytes, feeds } = oneNode('BatchNormalization', [['X', randomF32(s, r)], ['s', randomF32([c], r)], ['b', randomF32([c], r)], ['m', randomF32([c], r)], ['v', v]],
        { epsilon: float(r.float(1e-5, 1e-2)) }, ['float32'], 15);
      await expectMatchesOrt(bytes, feeds);
    }
  });

  it('float64', async () => {
    const r = rng(2), c = 3, ins: [string, NdArray][] = [['X', f64(randomF32([2, c, 4], r))], ...['s', 'b', 'm'].map((n) => [n, f64(randomF32([c], r))] as [string, NdArray]), ['v', f64(randomF32([c], r, 0.5, 1))]];
    const { bytes, feeds } = oneNode('BatchNormalization', ins, {}, ['float64'], 15);
    await expectMatchesOrt(bytes, feeds, { rtol: 1e-9, atol: 1e-12 });
  });
});

describe('LayerNormalization', () => {
  it('every axis of ranks 1-4 with Mean and InvStdDev, bias optional', async () => {
    const r = rng(3);
    for (const rank of [1, 2, 3, 4]) {
      for (let axis = -rank; axis < rank; axis++) {
        const s = shapeOf(r, rank), p = s.slice(axis < 0 ? axis + rank : axis), bias = r.next() < 0.5 ? randomF32(p, r) : undefined;
        const { bytes, feeds } = oneNode('LayerNormalization', [['X', randomF32(s, r)], ['S', randomF32(p, r)], ['B', bias]], { axis, epsilon: float(1e-3) }, ['float32', 'float32', 'float32']);
        await expectMatchesOrt(bytes, feeds);
      }
    }
  });

  it('broadcasts a lower-rank scale', async () => {
    const r = rng(4);
    const { bytes, feeds } = oneNode('LayerNormalization', [['X', randomF32([2, 3, 8], r)], ['S', randomF32([8], r)], ['B', randomF32([1, 8], r)]], { axis: 1 }, ['float32']);
    await expectMatchesOrt(bytes, feeds);
  });

  it('infers statistics shapes with symbolic dims', async () => {
    const g = new GraphBuilder();
    const outs = g.node('LayerNormalization', [g.input('x', 'float32', ['batch', 'seq', 768]), g.input('s', 'float32', [768])], {}, 3);
    outs.forEach((o) => g.output(o, 'float32'));
    const meta = (await InferenceSession.create(g.model())).outputMetadata;
    expect(meta.map((m) => m.shape)).toEqual([['batch', 'seq', 768], ['batch', 'seq', 1], ['batch', 'seq', 1]]);
  });
});

describe('InstanceNormalization and GroupNormalization', () => {
  it('InstanceNormalization over 1-3 spatial dims', async () => {
    const r = rng(5);
    for (const rank of [3, 4, 5]) {
      const s = shapeOf(r, rank);
      s[rank - 1] += 1; // a single element per channel would make the variance 0
      const { bytes, feeds } = oneNode('InstanceNormalization', [['X', randomF32(s, r)], ['s', randomF32([s[1]], r)], ['b', randomF32([s[1]], r)]], { epsilon: float(1e-4) }, ['float32']);
      await expectMatchesOrt(bytes, feeds);
    }
  });

  it.each([18, 21])('GroupNormalization opset %i', async (opset) => {
    const r = rng(opset);
    for (const [c, groups] of [[6, 3], [4, 1], [4, 4], [8, 2]]) {
      const x = randomF32([2, c, 3, 5], r), p = opset < 21 ? groups : c;
      const { bytes, feeds } = oneNode('GroupNormalization', [['X', x], ['s', randomF32([p], r)], ['b', randomF32([p], r)]], { num_groups: groups, epsilon: float(1e-3) }, ['float32'], opset);
      await expectMatchesOrt(bytes, feeds);
    }
  });
});

describe('other normalizations', () => {
  it('RMSNormalization (opset 23) over every axis', async () => {
    const r = rng(6);
    for (let axis = -3; axis < 3; axis++) {
      const s = shapeOf(r, 3), p = s.slice(axis < 0 ? axis + 3 : axis);
      const { bytes, feeds } = oneNode('RMSNormalization', [['X', randomF32(s, r)], ['S', randomF32(p, r)]], { axis }, ['float32'], 23);
      await expectMatchesOrt(bytes, feeds);
    }
  });

  it('LpNormalization p=1,2 over each axis, zero vectors stay zero', async () => {
    const r = rng(7);
    for (const p of [1, 2]) {
      for (let axis = -3; axis < 3; axis++) {
        const x = randomF32([3, 4, 5], r);
        (x.data as Float32Array).fill(0, 0, 5);
        const { bytes, feeds } = oneNode('LpNormalization', [['X', x]], { axis, p }, ['float32']);
        await expectMatchesOrt(bytes, feeds);
      }
    }
  });

  it('MeanVarianceNormalization with default and custom axes', async () => {
    const r = rng(8);
    for (const axes of [undefined, [1], [0, 1], [2, 3], [-1]]) {
      const { bytes, feeds } = oneNode('MeanVarianceNormalization', [['X', randomF32([2, 3, 4, 5], r)]], axes ? { axes } : {}, ['float32'], 13);
      await expectMatchesOrt(bytes, feeds);
    }
  });

  it('LRN with odd sizes (onnxruntime has no even ones)', async () => {
    const r = rng(9);
    for (const size of [1, 3, 5]) {
      const { bytes, feeds } = oneNode('LRN', [['X', randomF32([2, 6, 4, 3], r)]], { size, alpha: float(0.01), beta: float(0.6), bias: float(1.5) }, ['float32']);
      await expectMatchesOrt(bytes, feeds);
    }
  });

  it('LRN with an even size takes the extra channel after (window [c, c+1] for size 2)', async () => {
    const { bytes } = oneNode('LRN', [['X', new NdArray('float32', [1, 2, 1, 1], Float32Array.from([1, 2]))]], { size: 2, alpha: float(1), beta: float(1), bias: float(1) }, ['float32']);
    const y = Object.values(await (await InferenceSession.create(bytes)).run({ X: new Tensor('float32', [1, 2], [1, 2, 1, 1]) }))[0] as Tensor;
    expect(Array.from(y.data as Float32Array)).toEqual([Math.fround(1 / (1 + 5 / 2)), Math.fround(2 / (1 + 4 / 2))]);
  });
});
