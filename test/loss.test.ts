// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss against onnxruntime-node over random ranks,
// reductions, class weights and ignore_index.
import { describe, expect, it } from 'vitest';
import type { DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { GraphBuilder, type AttrInput } from '../loaders/builder.js';
import { InferenceSession, Tensor } from '../index.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

type Rng = ReturnType<typeof rng>;

function oneNode(op: string, ins: [string, NdArray | undefined][], attrs: Record<string, AttrInput>, outs: string[], opset: number) {
  const g = new GraphBuilder();
  g.node(op, ins.filter(([, t]) => t).map(([n, t]) => g.input(n, t!.dtype, [...t!.shape])), attrs, outs);
  outs.forEach((n) => g.output(n, null));
  return { bytes: g.model({ opset }), feeds: Object.fromEntries(ins.filter(([, t]) => t).map(([n, t]) => [n, t!])) };
}

async function ours(m: { bytes: Uint8Array; feeds: Record<string, NdArray> }): Promise<Tensor[]> {
  const s = await InferenceSession.create(m.bytes);
  return Object.values(await s.run(Object.fromEntries(Object.entries(m.feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)])))) as Tensor[];
}

const targets = (dtype: 'int32' | 'int64', shape: number[], values: number[]) =>
  new NdArray(dtype, shape, dtype === 'int64' ? BigInt64Array.from(values, BigInt) : Int32Array.from(values));
const asDtype = (t: NdArray, dtype: DType) => (dtype === 'float64' ? new NdArray('float64', t.shape, Float64Array.from(t.data as Float32Array)) : t);

/** Scores [N, C, d...], targets with some set to ignore_index (never all of them), optional weights. */
function randomLoss(r: Rng, op: string) {
  const rank = r.int(2, 5), shape = [r.int(1, 4), r.int(1, 5), ...Array.from({ length: rank - 2 }, () => r.int(1, 3))], C = shape[1];
  const dtype: DType = r.pick(['float32', 'float64']), tdtype = r.pick(['int32', 'int64'] as const);
  const ignore = r.next() < 0.5 ? r.pick([-1, -100, C > 1 ? r.int(0, C - 1) : -1]) : undefined;
  const tshape = [shape[0], ...shape.slice(2)], n = tshape.reduce((a, b) => a * b, 1);
  const t = Array.from({ length: n }, () => (ignore !== undefined && r.next() < 0.3 ? ignore : r.int(0, C - 1)));
  if (t.every((c) => c === ignore)) t[0] = ignore === 0 ? 1 : 0;
  const weight = r.next() < 0.5 ? asDtype(randomF32([C], r, 0.1, 2), dtype) : undefined;
  const attrs: Record<string, AttrInput> = r.next() < 0.2 ? {} : { reduction: r.pick(['none', 'sum', 'mean']) };
  if (ignore !== undefined) attrs.ignore_index = ignore;
  // NLL reads log-probabilities; any real scores do.
  const x = asDtype(randomF32(shape, r, -3, 1), dtype);
  const sce = op === 'SoftmaxCrossEntropyLoss';
  return oneNode(op, [['x', x], ['t', targets(tdtype, tshape, t)], ['w', weight]], attrs, sce && r.next() < 0.5 ? ['loss', 'log_prob'] : ['loss'], sce ? 13 : 22);
}

describe('NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss', () => {
  for (const op of ['NegativeLogLikelihoodLoss', 'SoftmaxCrossEntropyLoss']) {
    it(`${op} matches onnxruntime over ranks 2-5, reductions, weights, ignore_index, int32/int64 targets, float32/float64`, async () => {
      const r = rng(op.length);
      for (let i = 0; i < 40; i++) {
        const m = randomLoss(r, op);
        await expectMatchesOrt(m.bytes, m.feeds, { rtol: 1e-5, atol: 1e-6 });
      }
    });
  }

  it('follows the spec examples: unweighted none, weighted sum and weighted mean (-1.1 / 0.7, printed as -1.57)', async () => {
    const x = new NdArray('float32', [2, 3, 2], Float32Array.of(1, 2, 2, 2, 3, 2, 0, 1, 2, 2, 1, 2));
    const t = targets('int64', [2, 2], [2, 1, 0, 2]), w = new NdArray('float32', [3], Float32Array.of(0.2, 0.3, 0.1));
    const run = async (attrs: Record<string, AttrInput>, weight?: NdArray) => [...(await ours(oneNode('NegativeLogLikelihoodLoss', [['x', x], ['t', t], ['w', weight]], attrs, ['loss'], 13)))[0].data as Float32Array];
    expect(await run({ reduction: 'none' })).toEqual([-3, -2, -0, -2]);
    expect((await run({ reduction: 'sum' }, w))[0]).toBeCloseTo(-1.1, 6);
    expect((await run({}, w))[0]).toBeCloseTo(-1.1 / 0.7, 6);
    // An ignored sample neither counts nor weighs in the mean.
    expect(await run({ ignore_index: 2 })).toEqual([(-2 - 0) / 2]);
  });

  it('names the input and the expectation on bad targets, weights and reductions', async () => {
    const x = randomF32([2, 3]), t = targets('int64', [2], [0, 3]);
    await expect(ours(oneNode('NegativeLogLikelihoodLoss', [['x', x], ['t', t]], {}, ['loss'], 13))).rejects.toThrow(/input 1 \(target\) holds class 3, outside \[0, 3\)/);
    await expect(ours(oneNode('SoftmaxCrossEntropyLoss', [['x', x], ['t', targets('int64', [3], [0, 1, 2])]], {}, ['loss'], 13))).rejects.toThrow(/input 1 \(target\) should have shape \[2\]/);
    await expect(ours(oneNode('NegativeLogLikelihoodLoss', [['x', x], ['t', targets('int32', [2], [0, 1])], ['w', randomF32([2])]], {}, ['loss'], 13))).rejects.toThrow(/input 2 \(weight\) should be float32 of shape \[3\]/);
    await expect(ours(oneNode('NegativeLogLikelihoodLoss', [['x', x], ['t', targets('int32', [2], [0, 1])]], { reduction: 'max' }, ['loss'], 13))).rejects.toThrow(/reduction should be 'none', 'sum' or 'mean'/);
  });
});
