// Random generators: RandomUniform(Like), RandomNormal(Like), Bernoulli and Multinomial. A node with a
// seed restarts numpy's legacy stream from that seed on every run (kernels/cpu/random.ts), so a seed always
// gives the same values (for the uniform, normal and Bernoulli ops, those of ONNX's reference
// implementation, which draws from numpy's RandomState(seed)); without one, each run picks a seed.
import { dtypeFromOnnx, isBigInt, type DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { Draws, sampleRows } from '../kernels/cpu/random.js';
import { type Attrs, fail, type OpDef, register, tensorAt } from './registry.js';
import { dtypeOf, shapeOf, tensorType } from './infer-rules.js';

const set = (...d: DType[]): ReadonlySet<DType> => new Set(d);
const FLOATS = set('float32', 'float64', 'float16', 'bfloat16');

// numpy takes int(seed) into MT19937's 32-bit state, so a seed is truncated and wrapped.
const seedOf = (a: Attrs) => (a.has('seed') ? Math.trunc(a.float('seed')) >>> 0 : undefined);
const draws = (seed: number | undefined) => new Draws(seed ?? Math.floor(Math.random() * 2 ** 32));

/** The 'dtype' attribute (or `def`), which must name one of `allowed`; undefined when absent without default. */
function dtypeAttr(a: Attrs, allowed: ReadonlySet<DType>, def?: number): DType | undefined {
  if (!a.has('dtype') && def === undefined) return undefined;
  const code = a.int('dtype', def), d = dtypeFromOnnx(code);
  if (!d || !allowed.has(d)) throw a.error(`attribute 'dtype' (${code}${d ? `, ${d}` : ''}) should be one of ${[...allowed].join(', ')}`);
  return d;
}

interface Dist { normal: boolean; scale: number; shift: number; seed?: number }
const uniform = (a: Attrs): Dist => ({ normal: false, scale: a.float('high', 1) - a.float('low', 0), shift: a.float('low', 0), seed: seedOf(a) });
const normal = (a: Attrs): Dist => ({ normal: true, scale: a.float('scale', 1), shift: a.float('mean', 0), seed: seedOf(a) });

/** Draws cast to dtype, times scale, plus shift, each step rounded as the reference's float32 arithmetic. */
function generate(d: Dist, dtype: DType, shape: readonly number[]): NdArray {
  const out = NdArray.zeros(dtype, shape), o = out.data as Float32Array | Float64Array, g = draws(d.seed);
  const r = dtype === 'float64' ? (v: number) => v : Math.fround, scale = r(d.scale), shift = r(d.shift);
  for (let i = 0; i < o.length; i++) o[i] = r(r(r(d.normal ? g.normal() : g.uniform()) * scale) + shift);
  return out;
}

function fixed(op: string, dist: (a: Attrs) => Dist): OpDef {
  return {
    op,
    attrs: (a) => {
      const shape = a.ints('shape');
      if (shape.some((d) => d < 0)) throw a.error(`attribute 'shape' [${shape}] has a negative dim`);
      return { ...dist(a), dtype: dtypeAttr(a, FLOATS, 1)!, shape };
    },
    infer: (_ins, a) => [tensorType(a.dtype, a.shape)],
    run: (_ins, a) => [generate(a, a.dtype, a.shape)],
  };
}

function like(op: string, dist: (a: Attrs) => Dist): OpDef {
  return {
    op,
    attrs: (a) => ({ ...dist(a), dtype: dtypeAttr(a, FLOATS) }),
    infer: (ins, a) => [tensorType(a.dtype ?? dtypeOf(ins[0]), shapeOf(ins[0]))],
    run: (ins, a, ctx) => {
      const x = tensorAt(ins, 0, ctx), dtype = a.dtype ?? x.dtype;
      if (!FLOATS.has(dtype)) fail(ctx, `input 0 has dtype ${dtype}, which is no float type; set 'dtype' to choose the output's`);
      return [generate(a, dtype, x.shape)];
    },
  };
}

register(fixed('RandomUniform', uniform), fixed('RandomNormal', normal), like('RandomUniformLike', uniform), like('RandomNormalLike', normal));

const BERNOULLI_OUT = set(...FLOATS, 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'bool');

register({
  op: 'Bernoulli', since: 15,
  attrs: (a) => ({ seed: seedOf(a), dtype: dtypeAttr(a, BERNOULLI_OUT) }),
  infer: (ins, a) => [tensorType(a.dtype ?? dtypeOf(ins[0]), shapeOf(ins[0]))],
  run: (ins, a, ctx) => {
    const x = tensorAt(ins, 0, ctx);
    if (!FLOATS.has(x.dtype)) fail(ctx, `input 0 has dtype ${x.dtype}; expected probabilities of a float type`);
    const out = NdArray.zeros(a.dtype ?? x.dtype, x.shape), p = x.data as Float32Array, o = out.data as { [i: number]: unknown };
    const g = draws(a.seed), one = isBigInt(out.dtype) ? 1n : 1;
    for (let i = 0; i < p.length; i++) {
      if (!(p[i] >= 0 && p[i] <= 1)) fail(ctx, `input 0 holds ${p[i]} at index ${i}; probabilities should be in [0, 1]`);
      if (g.bernoulli(p[i])) o[i] = one;
    }
    return [out];
  },
});

register({
  op: 'Multinomial', since: 7,
  attrs: (a) => {
    const samples = a.int('sample_size', 1);
    if (samples < 0) throw a.error(`attribute 'sample_size' should not be negative, got ${samples}`);
    return { seed: seedOf(a), dtype: dtypeAttr(a, set('int32', 'int64'), 6)!, samples };
  },
  infer: (ins, a) => { const s = shapeOf(ins[0]); return [tensorType(a.dtype, s && [s[0], a.samples])]; },
  run: (ins, a, ctx) => {
    const x = tensorAt(ins, 0, ctx);
    if (!FLOATS.has(x.dtype) || x.shape.length !== 2) fail(ctx, `input 0 should be float logits [batch, classes], got ${x.dtype} [${x.shape}]`);
    const [rows, k] = x.shape, l = x.data as Float32Array, cdf = new Float64Array(rows * k);
    if (k === 0 && rows * a.samples > 0) fail(ctx, 'input 0 has no classes to draw from');
    for (let r = 0; r < rows; r++) {
      // Weights exp(logit - max): the shift keeps large logits from overflowing.
      let max = -Infinity, acc = 0;
      for (let j = 0; j < k; j++) max = Math.max(max, l[r * k + j]);
      for (let j = 0; j < k; j++) cdf[r * k + j] = acc += Math.exp(l[r * k + j] - max);
      if (k && !(acc > 0 && acc < Infinity)) fail(ctx, `row ${r} of input 0 has no finite logits to draw from`);
    }
    const out = NdArray.zeros(a.dtype, [rows, a.samples]), o = out.data;
    const put = o instanceof BigInt64Array ? (i: number, v: number) => { o[i] = BigInt(v); } : (i: number, v: number) => { (o as Int32Array)[i] = v; };
    sampleRows(draws(a.seed), cdf, rows, k, a.samples, put);
    return [out];
  },
});
