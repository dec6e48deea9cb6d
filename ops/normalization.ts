// BatchNormalization, LayerNormalization, InstanceNormalization, GroupNormalization, RMSNormalization,
// LpNormalization, MeanVarianceNormalization and LRN.
import { dtypeFromOnnx, isFloat, type DType } from '../engine/dtype.js';
import type { Dim, TypeInfo } from '../engine/graph.js';
import { NdArray, sizeOf } from '../engine/tensor.js';
import { broadcastShapes, expandTo } from '../kernels/cpu/broadcast.js';
import {
  channelAffine, channelMoments, invStd, lpNormalize, lrn, meanVarianceNormalize, rowAffine, rowMeanSquares, rowMoments, standardizeRows,
} from '../kernels/cpu/norm.js';
import { layerNormWasm } from '../kernels/wasm/math.js';
import { isComputeFloat } from './conv.js';
import { fail, optTensor, register, tensorAt, type Attrs, type RunCtx } from './registry.js';
import { dtypeOf, sameAsInput, shapeOf, tensorType } from './infer-rules.js';

type Num = { [i: number]: number; length: number };
type Ins = (TypeInfo | undefined)[];

function floatInput(ins: Parameters<typeof tensorAt>[0], i: number, what: string, ctx: RunCtx): NdArray {
  const t = tensorAt(ins, i, ctx);
  if (!isComputeFloat(t)) fail(ctx, `input ${i} (${what}) should be a float tensor, got ${t.dtype}`);
  return t;
}

/** A 1-D parameter with `count` values (one per channel or group). */
function perChannel(ins: Parameters<typeof tensorAt>[0], i: number, what: string, count: number, ctx: RunCtx): Num {
  const t = floatInput(ins, i, what, ctx);
  if (t.size !== count) fail(ctx, `input ${i} (${what}) should have ${count} values, got shape [${t.shape}]`);
  return t.data as Float32Array;
}

/** N x C x spatial view of X (a 1-D X is N samples of one channel). */
function ncs(x: NdArray): [number, number, number] {
  const n = x.shape[0] ?? 1, c = x.shape[1] ?? 1;
  return [n, c, n * c ? x.size / (n * c) : 0];
}

const normAxis = (axis: number, rank: number, ctx: RunCtx) => {
  if (axis < -rank || axis >= rank) fail(ctx, `axis ${axis} is out of range for input 0 (X) of rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
};

/** `t` unidirectionally broadcast to `shape`; returned as is when it already has that many elements. */
function broadcastParam(t: NdArray, shape: readonly number[], what: string, ctx: RunCtx): Num {
  const s = broadcastShapes(t.shape, shape);
  if (!s || s.length !== shape.length || s.some((d, i) => d !== shape[i])) fail(ctx, `${what} of shape [${t.shape}] should broadcast to [${shape}]`);
  if (t.size === sizeOf(shape)) return t.data as Float32Array;
  const out = new Float64Array(sizeOf(shape));
  expandTo(t.data, t.shape, shape, out);
  return out;
}

/** Scale/bias for normalization over dims [axis, rank): spread over those dims, or over all of X when they have more dims. */
const trailingParam = (t: NdArray, x: NdArray, axis: number, what: string, ctx: RunCtx) =>
  broadcastParam(t, t.shape.length <= x.shape.length - axis ? x.shape.slice(axis) : x.shape, what, ctx);

interface BnAttrs { epsilon: number; momentum: number; training: boolean }

register({
  op: 'BatchNormalization',
  attrs: (a, opset): BnAttrs => {
    if (a.int('spatial', 1) !== 1) throw a.error('spatial=0 (per-element statistics) is not supported; flatten X to N x (C*D1*...) instead');
    return { epsilon: a.float('epsilon', 1e-5), momentum: a.float('momentum', 0.9), training: opset >= 14 && a.int('training_mode', 0) !== 0 };
  },
  infer: (ins, _a, ctx) => [ins[0], ...ctx.node.outputs.slice(1).map(() => ins[3])],
  run: (ins, at: BnAttrs, ctx) => {
    const x = floatInput(ins, 0, 'X', ctx), [n, c, spatial] = ncs(x);
    const scale = perChannel(ins, 1, 'scale', c, ctx), bias = perChannel(ins, 2, 'B', c, ctx);
    const mean = perChannel(ins, 3, 'input_mean', c, ctx), variance = perChannel(ins, 4, 'input_var', c, ctx);
    // Before opset 14 asking for the statistics outputs is what selects training.
    const training = at.training || (ctx.opset < 14 && ctx.node.outputs.filter(Boolean).length > 1);
    if (!training && ctx.node.outputs.filter(Boolean).length > 1) fail(ctx, 'outputs running_mean and running_var need training_mode=1');
    const batch = training ? channelMoments(x.data as Float32Array, n, c, spatial) : undefined;
    const m = batch?.mean ?? mean, v = batch?.variance ?? variance, a = new Float64Array(c), b = new Float64Array(c);
    for (let i = 0; i < c; i++) { a[i] = scale[i] / Math.sqrt(v[i] + at.epsilon); b[i] = bias[i] - m[i] * a[i]; }
    const y = NdArray.zeros(x.dtype, x.shape);
    channelAffine(x.data as Float32Array, y.data as Float32Array, n, c, spatial, a, b);
    if (!batch) return [y];
    const statDtype = tensorAt(ins, 3, ctx).dtype;
    const vec = (v: Num) => { const t = NdArray.zeros(statDtype, [c]); (t.data as Float64Array).set(v as Float64Array); return t; };
    const mix = (run: Num, cur: Float64Array) => vec(cur.map((v, i) => run[i] * at.momentum + v * (1 - at.momentum)));
    const outs = [y, mix(mean, batch.mean), mix(variance, batch.variance)];
    // Opset 9-13 also has saved_mean and saved_var: this batch's statistics.
    if (ctx.opset < 14) outs.push(vec(batch.mean), vec(batch.variance));
    return outs;
  },
});

register({
  op: 'InstanceNormalization',
  attrs: (a) => ({ epsilon: a.float('epsilon', 1e-5) }),
  infer: sameAsInput,
  run: (ins, at: { epsilon: number }, ctx) => {
    const x = floatInput(ins, 0, 'input', ctx);
    if (x.shape.length < 3) fail(ctx, `input 0 (input) should be N x C x D1..., got shape [${x.shape}]`);
    const [n, c, spatial] = ncs(x), y = NdArray.zeros(x.dtype, x.shape);
    const scale = perChannel(ins, 1, 'scale', c, ctx), bias = perChannel(ins, 2, 'B', c, ctx);
    const { mean, variance } = rowMoments(x.data as Float32Array, n * c, spatial);
    standardizeRows(x.data as Float32Array, y.data as Float32Array, n * c, spatial, mean, invStd(variance, at.epsilon));
    channelAffine(y.data as Float32Array, y.data as Float32Array, n, c, spatial, scale, bias);
    return [y];
  },
});

interface GnAttrs { epsilon: number; groups: number }

register({
  op: 'GroupNormalization',
  since: 18,
  attrs: (a): GnAttrs => ({ epsilon: a.float('epsilon', 1e-5), groups: a.int('num_groups') }),
  infer: sameAsInput,
  run: (ins, at: GnAttrs, ctx) => {
    const x = floatInput(ins, 0, 'X', ctx), [n, c, spatial] = ncs(x), g = at.groups;
    if (x.shape.length < 2 || g < 1 || c % g !== 0) fail(ctx, `num_groups ${g} should divide the ${c} channels of input 0 (X) [${x.shape}]`);
    // Opset 18 has one scale and bias per group; opset 21 one per channel.
    const count = ctx.opset < 21 ? g : c, per = c / g;
    const s = perChannel(ins, 1, 'scale', count, ctx), b = perChannel(ins, 2, 'bias', count, ctx);
    const sc = ctx.opset < 21 ? Float64Array.from({ length: c }, (_, i) => s[Math.floor(i / per)]) : s;
    const bc = ctx.opset < 21 ? Float64Array.from({ length: c }, (_, i) => b[Math.floor(i / per)]) : b;
    const y = NdArray.zeros(x.dtype, x.shape), rows = n * g, len = per * spatial;
    const { mean, variance } = rowMoments(x.data as Float32Array, rows, len);
    standardizeRows(x.data as Float32Array, y.data as Float32Array, rows, len, mean, invStd(variance, at.epsilon));
    channelAffine(y.data as Float32Array, y.data as Float32Array, n, c, spatial, sc, bc);
    return [y];
  },
});

interface LnAttrs { axis: number; epsilon: number; stash: DType }

function readLn(a: Attrs): LnAttrs {
  const code = a.int('stash_type', 1), stash = dtypeFromOnnx(code);
  if (!stash || !isFloat(stash)) throw a.error(`stash_type should be a float type code, got ${code}`);
  return { axis: a.int('axis', -1), epsilon: a.float('epsilon', 1e-5), stash };
}

/** Shape of the per-row statistics: X's dims before `axis`, then 1s. */
const statShape = <D extends Dim>(xs: readonly D[], axis: number): D[] => xs.map((d, i) => (i < axis ? d : (1 as D)));

/**
 * LayerNormalization's arithmetic over `rows` rows of `len`: float32 X with float32 statistics
 * (stash_type 1) and one scale (and bias) row in WebAssembly SIMD, in float32 throughout; otherwise in
 * TypeScript with float64 statistics.
 */
function layerNorm(x: NdArray, y: NdArray, rows: number, len: number, at: LnAttrs, scale: Num, bias: Num | undefined): { mean: Float64Array; inv: Float64Array } {
  const xd = x.data as Float32Array, yd = y.data as Float32Array, eps = at.epsilon;
  if (x.dtype === 'float32' && at.stash === 'float32' && scale instanceof Float32Array && (!bias || bias instanceof Float32Array)) {
    const mean = new Float64Array(rows), inv = new Float64Array(rows);
    if (layerNormWasm(xd, yd, rows, len, eps, scale, bias, mean, inv)) return { mean, inv };
  }
  const { mean, variance } = rowMoments(xd, rows, len), inv = invStd(variance, eps);
  standardizeRows(xd, yd, rows, len, mean, inv);
  rowAffine(yd, rows, len, scale, bias);
  return { mean, inv };
}

register({
  op: 'LayerNormalization',
  since: 17,
  attrs: readLn,
  infer: (ins: Ins, at: LnAttrs) => {
    const xs = shapeOf(ins[0]), axis = xs ? (at.axis < 0 ? at.axis + xs.length : at.axis) : 0;
    const stats = tensorType(at.stash, xs ? statShape(xs, axis) : undefined);
    return [ins[0], stats, stats];
  },
  run: (ins, at: LnAttrs, ctx) => {
    const x = floatInput(ins, 0, 'X', ctx), axis = normAxis(at.axis, x.shape.length, ctx);
    const len = sizeOf(x.shape.slice(axis)), rows = sizeOf(x.shape.slice(0, axis)), y = NdArray.zeros(x.dtype, x.shape);
    const scale = trailingParam(floatInput(ins, 1, 'Scale', ctx), x, axis, 'input 1 (Scale)', ctx);
    const b = optTensor(ins, 2, ctx), bias = b && trailingParam(b, x, axis, 'input 2 (B)', ctx);
    const { mean, inv } = layerNorm(x, y, rows, len, at, scale, bias);
    const shape = statShape(x.shape, axis);
    const stat = (v: Float64Array) => { const t = NdArray.zeros(at.stash, shape); (t.data as Float64Array).set(v); return t; };
    return [y, stat(mean), stat(inv)];
  },
});

register({
  op: 'RMSNormalization',
  since: 23,
  attrs: readLn,
  infer: (ins: Ins) => [tensorType(dtypeOf(ins[1]), shapeOf(ins[0]))],
  run: (ins, at: LnAttrs, ctx) => {
    const x = floatInput(ins, 0, 'X', ctx), s = floatInput(ins, 1, 'scale', ctx), axis = normAxis(at.axis, x.shape.length, ctx);
    const len = sizeOf(x.shape.slice(axis)), rows = sizeOf(x.shape.slice(0, axis)), y = NdArray.zeros(s.dtype, x.shape);
    const scale = trailingParam(s, x, axis, 'input 1 (scale)', ctx);
    standardizeRows(x.data as Float32Array, y.data as Float32Array, rows, len, undefined, invStd(rowMeanSquares(x.data as Float32Array, rows, len), at.epsilon));
    rowAffine(y.data as Float32Array, rows, len, scale, undefined);
    return [y];
  },
});

register({
  op: 'LpNormalization',
  attrs: (a) => {
    const p = a.int('p', 2);
    if (p !== 1 && p !== 2) throw a.error(`p should be 1 or 2, got ${p}`);
    return { axis: a.int('axis', -1), p };
  },
  infer: sameAsInput,
  run: (ins, at: { axis: number; p: number }, ctx) => {
    const x = floatInput(ins, 0, 'input', ctx), axis = normAxis(at.axis, x.shape.length, ctx), y = NdArray.zeros(x.dtype, x.shape);
    lpNormalize(x.data as Float32Array, y.data as Float32Array, sizeOf(x.shape.slice(0, axis)), x.shape[axis], sizeOf(x.shape.slice(axis + 1)), at.p);
    return [y];
  },
});

register({
  op: 'MeanVarianceNormalization',
  since: 9,
  attrs: (a) => ({ axes: a.ints('axes', [0, 2, 3]) }),
  infer: sameAsInput,
  run: (ins, at: { axes: number[] }, ctx) => {
    const x = floatInput(ins, 0, 'X', ctx), axes = at.axes.map((v) => normAxis(v, x.shape.length, ctx)), y = NdArray.zeros(x.dtype, x.shape);
    meanVarianceNormalize(x.data as Float32Array, y.data as Float32Array, x.shape, axes);
    return [y];
  },
});

interface LrnAttrs { size: number; alpha: number; beta: number; bias: number }

register({
  op: 'LRN',
  attrs: (a): LrnAttrs => {
    const size = a.int('size');
    if (size < 1) throw a.error(`size should be >= 1, got ${size}`);
    return { size, alpha: a.float('alpha', 1e-4), beta: a.float('beta', 0.75), bias: a.float('bias', 1) };
  },
  infer: sameAsInput,
  run: (ins, at: LrnAttrs, ctx) => {
    const x = floatInput(ins, 0, 'X', ctx);
    if (x.shape.length < 2) fail(ctx, `input 0 (X) should be N x C x D1..., got shape [${x.shape}]`);
    const [n, c, spatial] = ncs(x), y = NdArray.zeros(x.dtype, x.shape);
    lrn(x.data as Float32Array, y.data as Float32Array, n, c, spatial, at.size, at.alpha, at.beta, at.bias);
    return [y];
  },
});
