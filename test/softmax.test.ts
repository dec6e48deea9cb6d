import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../loaders/builder.js';
import { NdArray } from '../engine/tensor.js';
import { InferenceSession, Tensor } from '../index.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

function model(op: string, x: NdArray, attrs: Record<string, number | undefined>, opset: number) {
  const g = new GraphBuilder();
  g.output(g.node(op, [g.input('x', x.dtype, [...x.shape])], attrs)[0], x.dtype);
  return g.model({ opset });
}

async function ours(bytes: Uint8Array, x: NdArray) {
  const s = await InferenceSession.create(bytes);
  return Object.values(await s.run({ x: new Tensor(x.dtype, x.data, x.shape) }))[0] as Tensor;
}

describe('Softmax, LogSoftmax, Hardmax', () => {
  for (const op of ['Softmax', 'LogSoftmax', 'Hardmax']) {
    it(`${op} matches onnxruntime along every axis, before (2-D coercion) and from opset 13`, async () => {
      const r = rng(op.length * 13 + 1);
      for (let i = 0; i < 16; i++) {
        const shape = Array.from({ length: r.int(1, 4) }, () => r.int(1, 5)), rank = shape.length;
        const opset = r.pick([11, 13]);
        const x = randomF32(shape, r, -4, 4);
        // Ties for Hardmax: the first maximum wins.
        if (op === 'Hardmax') for (let k = 0; k < x.size; k++) (x.data as Float32Array)[k] = Math.round((x.data as Float32Array)[k]);
        const attrs = r.next() < 0.2 ? {} : { axis: r.int(-rank, rank - 1) };
        await expectMatchesOrt(model(op, x, attrs, opset), { x });
      }
    });
  }

  it('infers the input type and shape', async () => {
    const g = new GraphBuilder();
    g.output(g.node('LogSoftmax', [g.input('x', 'float32', ['batch', 3])])[0], null);
    const m = (await InferenceSession.create(g.model({ opset: 13 }))).outputMetadata[0];
    expect([m.type, m.shape]).toEqual(['float32', ['batch', 3]]);
  });

  it('is stable for large inputs and float64', async () => {
    const x = new NdArray('float32', [2, 4], Float32Array.of(10000, 10001, 10002, 10003, -10000, -10001, -10002, -10003));
    for (const op of ['Softmax', 'LogSoftmax']) await expectMatchesOrt(model(op, x, {}, 13), { x });
    const d = new NdArray('float64', [3, 5], Float64Array.from(randomF32([3, 5], rng(4), -50, 50).data));
    for (const op of ['Softmax', 'LogSoftmax']) await expectMatchesOrt(model(op, d, { axis: 0 }, 13), { x: d });
  });

  it('normalises over the flattened tail before opset 13', async () => {
    const x = new NdArray('float32', [2, 2], Float32Array.of(0, 0, 0, 0));
    expect([...((await ours(model('Softmax', x, { axis: 0 }, 11), x)).data as Float32Array)]).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect([...((await ours(model('Softmax', x, { axis: 0 }, 13), x)).data as Float32Array)]).toEqual([0.5, 0.5, 0.5, 0.5]);
  });

  it('keeps the shape of empty inputs and rejects integer inputs and bad axes', async () => {
    const e = new NdArray('float32', [0, 3], new Float32Array(0));
    expect((await ours(model('Softmax', e, {}, 13), e)).dims).toEqual([0, 3]);
    const i = new NdArray('int32', [2], Int32Array.of(1, 2));
    await expect(ours(model('Softmax', i, {}, 13), i)).rejects.toThrow(/expected a float tensor/);
    const x = randomF32([2, 3]);
    await expect(ours(model('Softmax', x, { axis: 2 }, 13), x)).rejects.toThrow(/axis 2 is out of range for rank 2/);
  });
});
