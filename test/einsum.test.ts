import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../loaders/builder.js';
import { NdArray } from '../engine/tensor.js';
import { InferenceSession, Tensor } from '../index.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

function model(equation: string, xs: NdArray[]) {
  const g = new GraphBuilder();
  const ins = xs.map((x, i) => g.input(`x${i}`, x.dtype, [...x.shape]));
  g.output(g.node('Einsum', ins, { equation })[0], xs[0].dtype);
  return g.model({ opset: 12 });
}
const feeds = (xs: NdArray[]) => Object.fromEntries(xs.map((x, i) => [`x${i}`, x]));

async function ours(equation: string, xs: NdArray[]) {
  const s = await InferenceSession.create(model(equation, xs));
  return Object.values(await s.run(Object.fromEntries(xs.map((x, i) => [`x${i}`, new Tensor(x.dtype, x.data, x.shape)]))))[0] as Tensor;
}

/** Equation and operand shapes; letters map to sizes through `dims`. */
const CASES: [string, number[][]][] = [
  ['ij,jk->ik', [[3, 4], [4, 5]]],
  ['ij,jk', [[3, 4], [4, 5]]],
  ['bij,bjk->bik', [[2, 3, 4], [2, 4, 5]]],
  ['ij->ji', [[3, 4]]],
  ['ii', [[4, 4]]],
  ['ii->i', [[4, 4]]],
  ['bii->bi', [[2, 3, 3]]],
  ['i,j->ij', [[3], [4]]],
  ['i,i', [[5], [5]]],
  ['ij->', [[3, 4]]],
  ['ij,ij->ij', [[3, 4], [3, 4]]],
  ['...ij,...jk->...ik', [[2, 3, 4], [2, 4, 5]]],
  ['...ij,...jk', [[2, 1, 3, 4], [1, 5, 4, 2]]],
  ['...ii->...i', [[2, 3, 3]]],
  ['i...->...', [[3, 2, 2]]],
  ['ij,jk,kl->il', [[2, 3], [3, 4], [4, 5]]],
  ['abc,cd,bd->a', [[2, 3, 4], [4, 5], [3, 5]]],
  ['Ab,bC->CA', [[3, 4], [4, 2]]],
  ['bhqd,bhkd->bhqk', [[1, 2, 3, 4], [1, 2, 5, 4]]],
  ['ijk,ikl->jl', [[2, 3, 4], [2, 4, 3]]],
  ['iij,jk->ik', [[3, 3, 4], [4, 2]]],
];

describe('Einsum', () => {
  for (const [eq, shapes] of CASES) {
    it(`'${eq}' matches onnxruntime`, async () => {
      const r = rng(eq.length * 7 + shapes.length);
      const xs = shapes.map((s) => randomF32(s, r));
      await expectMatchesOrt(model(eq, xs), feeds(xs), { atol: 1e-4 });
    });
  }

  it('infers the output shape, symbolic dims included', async () => {
    const g = new GraphBuilder();
    const a = g.input('a', 'float32', ['batch', 3, 4]), b = g.input('b', 'float32', ['batch', 4, 'n']);
    g.output(g.node('Einsum', [a, b], { equation: 'bij,bjk->bik' })[0], null);
    expect((await InferenceSession.create(g.model({ opset: 12 }))).outputMetadata[0].shape).toEqual(['batch', 3, 'n']);
  });

  it('computes int32, int64 and float64 exactly', async () => {
    const r = rng(3);
    const int32 = (s: number[]) => new NdArray('int32', s, Int32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => r.int(-9, 9)));
    const a = int32([3, 4]), b = int32([4, 2]);
    await expectMatchesOrt(model('ij,jk->ik', [a, b]), feeds([a, b]));
    const c = new NdArray('int64', [3, 3], BigInt64Array.from(a.data.slice(0, 9) as Int32Array, (v) => BigInt(v)));
    await expectMatchesOrt(model('ii->i', [c]), feeds([c]));
    const d = new NdArray('float64', [2, 3], Float64Array.from(randomF32([2, 3], r).data));
    await expectMatchesOrt(model('ij->j', [d]), feeds([d]));
  });

  it('handles spaces, rank 0 and empty dims', async () => {
    const s = new NdArray('float32', [], Float32Array.of(5));
    expect([...((await ours(' -> ', [s])).data as Float32Array)]).toEqual([5]);
    const e = new NdArray('float32', [0, 3], new Float32Array(0)), f = randomF32([3, 2]);
    const y = await ours('ij, jk -> ik', [e, f]);
    expect(y.dims).toEqual([0, 2]);
    const z = await ours('ji,ik->jk', [new NdArray('float32', [2, 0], new Float32Array(0)), new NdArray('float32', [0, 3], new Float32Array(0))]);
    expect([z.dims, [...(z.data as Float32Array)]]).toEqual([[2, 3], [0, 0, 0, 0, 0, 0]]);
  });

  it('rejects mismatched sizes, unknown output labels and bad characters', async () => {
    await expect(ours('ij,jk->ik', [randomF32([2, 3]), randomF32([4, 2])])).rejects.toThrow(/size 4 for label 'j', elsewhere 3/);
    await expect(ours('ij->k', [randomF32([2, 3])])).rejects.toThrow(/output label 'k' does not appear/);
    await expect(ours('i1->i', [randomF32([2, 3])])).rejects.toThrow(/only letters and '...'/);
    await expect(ours('ijk->i', [randomF32([2, 3])])).rejects.toThrow(/rank 2, but its term has 3 labels/);
  });
});
