// Random ops: seeded values equal numpy's RandomState draws (as ONNX's reference implementation), a seed
// repeats its values, shapes and dtypes follow the attributes and inputs, and sample moments fit the
// distributions. The reference numbers were printed by numpy 2.4 (RandomState(seed).rand/randn/binomial).
import { describe, expect, it } from 'vitest';
import type { DType } from '../engine/dtype.js';
import { onnxCode } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { InferenceSession } from '../index.js';
import { f32, float, GraphBuilder, type AttrInput } from '../loaders/builder.js';

async function session(op: string, ins: NdArray[], attrs: Record<string, AttrInput>, opset = 22) {
  const g = new GraphBuilder(), feeds = new Map<string, NdArray>();
  const names = ins.map((t, i) => (feeds.set(`in${i}`, t), g.input(`in${i}`, t.dtype, [...t.shape])));
  g.output(g.node(op, names, attrs)[0], null);
  const s = await InferenceSession.create(g.model({ opset }));
  return () => s.runValues(feeds)[0] as NdArray;
}
const once = async (op: string, ins: NdArray[], attrs: Record<string, AttrInput>) => (await session(op, ins, attrs))();
const values = (t: NdArray) => Array.from(t.data as ArrayLike<number | bigint>, Number);
const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
const variance = (v: number[]) => { const m = mean(v); return mean(v.map((x) => (x - m) ** 2)); };

describe('seeded draws match numpy RandomState', () => {
  it('RandomUniform and RandomUniformLike', async () => {
    const u = await once('RandomUniform', [], { shape: [4], dtype: onnxCode('float64'), seed: float(5) });
    expect(values(u)).toEqual([0.22199317108973948, 0.8707323061773764, 0.20671915533942642, 0.9186109079379216]);
    const like = await once('RandomUniformLike', [f32([2, 3], [0, 0, 0, 0, 0, 0])], { low: float(-5), high: float(-2), seed: float(11) });
    expect([like.dtype, like.shape, values(like)]).toEqual(['float32', [2, 3], [-4.459190845489502, -4.9415740966796875, -3.610344409942627, -2.825198173522949, -3.739389181137085, -3.5437188148498535]]);
  });

  it('RandomNormal (polar method, pairs of values)', async () => {
    const n = await once('RandomNormal', [], { shape: [5], mean: float(1), scale: float(2), seed: float(7) });
    expect(values(n)).toEqual([4.381051063537598, 0.06812524795532227, 1.0656403303146362, 1.8150324821472168, -0.5778460502624512]);
    const d = await once('RandomNormalLike', [new NdArray('float64', [3], new Float64Array(3))], { seed: float(123) });
    expect(values(d)).toEqual([-1.0856306033005612, 0.9973454465835858, 0.28297849805199204]);
  });

  it('Bernoulli (binomial with n = 1)', async () => {
    const p = f32([8], [0.1, 0.9, 0.5, 0, 1, 0.3, 0.7, 0.5]);
    expect(values(await once('Bernoulli', [p], { seed: float(3) }))).toEqual([0, 1, 0, 0, 1, 1, 1, 0]);
  });
});

describe('determinism', () => {
  it('a seed gives the same values on every run and in every session; no seed gives new ones', async () => {
    for (const [op, ins] of [['RandomUniform', []], ['RandomNormal', []], ['Bernoulli', [f32([64], new Array(64).fill(0.5))]]] as const) {
      const attrs = op === 'Bernoulli' ? {} : { shape: [64] };
      const seeded = await session(op, [...ins], { ...attrs, seed: float(42) }), again = await session(op, [...ins], { ...attrs, seed: float(42) });
      expect(values(seeded())).toEqual(values(seeded()));
      expect(values(seeded())).toEqual(values(again()));
      const free = await session(op, [...ins], attrs);
      expect(values(free())).not.toEqual(values(free()));
    }
    const logits = f32([2, 3], [0, 1, 2, 2, 1, 0]), m = await session('Multinomial', [logits], { sample_size: 50, seed: float(9) });
    expect(values(m())).toEqual(values(m()));
  });
});

describe('shapes and dtypes', () => {
  it('RandomUniform/RandomNormal take dtype and shape from attributes', async () => {
    for (const dtype of ['float32', 'float64', 'float16', 'bfloat16'] as DType[]) {
      const t = await once('RandomNormal', [], { shape: [2, 0, 3], dtype: onnxCode(dtype) });
      expect([t.dtype, t.shape]).toEqual([dtype, [2, 0, 3]]);
      const u = await once('RandomUniform', [], { shape: [3, 2], dtype: onnxCode(dtype), low: float(1), high: float(2) });
      expect([u.dtype, u.shape, values(u).every((v) => v >= 1 && v <= 2)]).toEqual([dtype, [3, 2], true]);
    }
  });

  it('the Like ops copy the input shape, and its dtype unless dtype is set', async () => {
    const x = new NdArray('float16', [2, 1, 2], new Float32Array(4)), ints = new NdArray('int32', [3], new Int32Array(3));
    expect((await once('RandomUniformLike', [x], {})).dtype).toBe('float16');
    const t = await once('RandomNormalLike', [ints], { dtype: onnxCode('float64') });
    expect([t.dtype, t.shape]).toEqual(['float64', [3]]);
    await expect(once('RandomUniformLike', [ints], {})).rejects.toThrow(/input 0 has dtype int32, which is no float type; set 'dtype'/);
    await expect(once('RandomNormal', [], { shape: [2], dtype: onnxCode('int32') })).rejects.toThrow(/'dtype' \(6, int32\) should be one of float32/);
  });

  it('Bernoulli outputs the input dtype or any numeric or bool dtype', async () => {
    const p = f32([2, 2], [0, 1, 1, 0]);
    for (const dtype of ['bool', 'int64', 'uint8', 'float64'] as DType[]) {
      const t = await once('Bernoulli', [p], { dtype: onnxCode(dtype) });
      expect([t.dtype, t.shape, values(t)]).toEqual([dtype, [2, 2], [0, 1, 1, 0]]);
    }
    await expect(once('Bernoulli', [f32([2], [0.5, 1.5])], {})).rejects.toThrow(/holds 1.5 at index 1; probabilities should be in \[0, 1\]/);
  });

  it('Multinomial draws [batch, sample_size] int32 (default) or int64 class indices', async () => {
    const logits = f32([3, 4], new Array(12).fill(0));
    const t = await once('Multinomial', [logits], { sample_size: 5 });
    expect([t.dtype, t.shape, values(t).every((v) => v >= 0 && v < 4)]).toEqual(['int32', [3, 5], true]);
    expect((await once('Multinomial', [logits], { dtype: onnxCode('int64') })).dtype).toBe('int64');
    await expect(once('Multinomial', [f32([4], [0, 0, 0, 0])], {})).rejects.toThrow(/should be float logits \[batch, classes\], got float32 \[4\]/);
    await expect(once('Multinomial', [f32([1, 2], [-Infinity, -Infinity])], {})).rejects.toThrow(/row 0 of input 0 has no finite logits/);
  });
});

describe('distributions', () => {
  const N = 20000;

  it('RandomUniform fills [low, high) evenly', async () => {
    const v = values(await once('RandomUniform', [], { shape: [N], low: float(-2), high: float(3), seed: float(1) }));
    expect(v.every((x) => x >= -2 && x < 3)).toBe(true);
    expect(mean(v)).toBeCloseTo(0.5, 1);
    expect(variance(v)).toBeCloseTo(25 / 12, 1);
  });

  it('RandomNormal has the given mean and scale', async () => {
    const v = values(await once('RandomNormal', [], { shape: [N], mean: float(3), scale: float(0.5), seed: float(2) }));
    expect(Math.abs(mean(v) - 3)).toBeLessThan(0.02);
    expect(Math.abs(Math.sqrt(variance(v)) - 0.5)).toBeLessThan(0.02);
  });

  it('Bernoulli draws 1 with probability p', async () => {
    const v = values(await once('Bernoulli', [f32([N], new Array(N).fill(0.3))], { seed: float(3) }));
    expect(Math.abs(mean(v) - 0.3)).toBeLessThan(0.015);
  });

  it('Multinomial draws classes with softmax probabilities, never a -inf logit', async () => {
    const p = [0.2, 0.5, 0.3], logits = f32([1, 4], [...p.map(Math.log), -Infinity]);
    const v = values(await once('Multinomial', [logits], { sample_size: N, seed: float(4) }));
    p.forEach((q, k) => expect(Math.abs(v.filter((c) => c === k).length / N - q)).toBeLessThan(0.015));
    expect(v.includes(3)).toBe(false);
  });
});
