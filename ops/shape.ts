// Shape-only ops: views that share their input's storage (Reshape, Flatten, Squeeze, Unsqueeze,
// Identity, inference Dropout) and shape queries (Shape, Size). Also the axis helpers the other
// data-movement families (movement.ts, gather.ts, generators.ts) share.
import type { DType } from '../engine/dtype.js';
import type { Dim, Node, TypeInfo } from '../engine/graph.js';
import { NdArray, type Value } from '../engine/tensor.js';
import { MT19937 } from '../kernels/cpu/mt19937.js';
import { fail, optTensor, register, tensorAt, type RunCtx } from './registry.js';
import { dtypeOf, sameAsInput, shapeOf, tensorType } from './infer-rules.js';

type Where = { node: Node };

/** An axis in [-rank, rank) as an index in [0, rank); anything else fails naming the node. */
export function normAxis(axis: number, rank: number, ctx: Where, what = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) fail(ctx, `${what} ${axis} is out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

/** Distinct normalised axes. */
export function normAxes(axes: readonly number[], rank: number, ctx: Where, what = 'axes'): number[] {
  const out = axes.map((a) => normAxis(a, rank, ctx, what));
  if (new Set(out).size !== out.length) fail(ctx, `${what} [${axes}] repeat an axis`);
  return out;
}

/** An optional 1-D integer input as numbers (int64 converted); undefined when omitted. */
export function optInts(ins: (Value | undefined)[], i: number, ctx: RunCtx): number[] | undefined {
  const t = optTensor(ins, i, ctx);
  if (!t) return undefined;
  if (t.dtype !== 'int64' && t.dtype !== 'int32') fail(ctx, `input ${i} should be int32 or int64, got ${t.dtype}`);
  if (t.shape.length > 1) fail(ctx, `input ${i} should be 1-D, got shape [${t.shape}]`);
  return t.numbers();
}

/** A required 1-D integer input as numbers. */
export const intsAt = (ins: (Value | undefined)[], i: number, ctx: RunCtx): number[] =>
  optInts(ins, i, ctx) ?? fail(ctx, `input ${i} is required but missing`);

/** Product of dims, kept symbolic when a single non-1 dim remains. */
function dimProduct(dims: readonly Dim[]): Dim {
  if (dims.every((d) => typeof d === 'number')) return (dims as number[]).reduce((a, b) => a * b, 1);
  const rest = dims.filter((d) => d !== 1);
  return rest.length === 1 ? rest[0] : null;
}

const unknownDims = (rank: number | undefined): Dim[] | undefined => (rank === undefined ? undefined : new Array<Dim>(rank).fill(null));
/** Length of a 1-D input whose values are not known at inference time (e.g. Reshape's shape). */
const lengthOf = (t: TypeInfo | undefined) => { const s = shapeOf(t); return s?.length === 1 && typeof s[0] === 'number' ? s[0] : undefined; };

// ---- Reshape ----

function reshapeDims(x: NdArray, spec: readonly number[], allowzero: boolean, ctx: RunCtx): number[] {
  let free = -1, known = 1;
  const out = spec.map((d, i) => {
    if (d === 0 && !allowzero) {
      if (i >= x.shape.length) fail(ctx, `shape [${spec}] copies dim ${i} (0) but the input has rank ${x.shape.length}`);
      d = x.shape[i];
    }
    if (d === -1) {
      if (free >= 0) fail(ctx, `shape [${spec}] has more than one -1`);
      free = i;
      return d;
    }
    if (d < 0 || !Number.isInteger(d)) fail(ctx, `shape [${spec}] has invalid dim ${d}`);
    known *= d;
    return d;
  });
  if (free >= 0) {
    if (known === 0 || x.size % known !== 0) fail(ctx, `cannot reshape [${x.shape}] to [${spec}]`);
    out[free] = x.size / known;
  } else if (known !== x.size) fail(ctx, `cannot reshape [${x.shape}] (${x.size} elements) to [${spec}] (${known} elements)`);
  return out;
}

/** Reshape-1 shape attribute: dims follow symbolically when copied (0) or given. */
function reshapeInfer(x: Dim[] | undefined, spec: number[]): Dim[] {
  return spec.map((d, i) => (d === 0 ? x?.[i] ?? null : d === -1 ? null : d));
}

register(
  {
    op: 'Reshape',
    attrs: (a) => ({ shape: a.ints('shape') }),
    infer: (ins, a) => [tensorType(dtypeOf(ins[0]), reshapeInfer(shapeOf(ins[0]), a.shape))],
    run: (ins, a, ctx) => { const x = tensorAt(ins, 0, ctx); return [x.reshape(reshapeDims(x, a.shape, false, ctx))]; },
  },
  {
    op: 'Reshape', since: 5,
    attrs: (a, opset) => ({ allowzero: opset >= 14 && a.int('allowzero', 0) !== 0 }),
    infer: (ins) => [tensorType(dtypeOf(ins[0]), unknownDims(lengthOf(ins[1])))],
    run: (ins, a, ctx) => { const x = tensorAt(ins, 0, ctx); return [x.reshape(reshapeDims(x, intsAt(ins, 1, ctx), a.allowzero, ctx))]; },
  },
);

// ---- Flatten ----

/** Flatten's axis lies in [-rank, rank]: negative counts from the back of the input's rank. */
function flattenAxis(axis: number, rank: number, ctx: Where): number {
  if (axis < -rank || axis > rank) fail(ctx, `axis ${axis} is out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

register({
  op: 'Flatten',
  attrs: (a) => ({ axis: a.int('axis', 1) }),
  infer: (ins, a, ctx) => {
    const s = shapeOf(ins[0]);
    if (!s) return [tensorType(dtypeOf(ins[0]), [null, null])];
    const k = flattenAxis(a.axis, s.length, ctx);
    return [tensorType(dtypeOf(ins[0]), [dimProduct(s.slice(0, k)), dimProduct(s.slice(k))])];
  },
  run: (ins, a, ctx) => {
    const x = tensorAt(ins, 0, ctx), k = flattenAxis(a.axis, x.shape.length, ctx);
    const outer = x.shape.slice(0, k).reduce((p, d) => p * d, 1);
    return [x.reshape([outer, x.shape.slice(k).reduce((p, d) => p * d, 1)])];
  },
});

// ---- Squeeze / Unsqueeze ----

function squeezeDims<D extends Dim>(shape: readonly D[], axes: number[] | undefined, ctx: Where): D[] {
  if (!axes) return shape.filter((d) => d !== 1);
  const drop = new Set(normAxes(axes, shape.length, ctx));
  for (const i of drop) if (typeof shape[i] === 'number' && shape[i] !== 1) fail(ctx, `cannot squeeze axis ${i} of size ${shape[i]}`);
  return shape.filter((_, i) => !drop.has(i));
}

function unsqueezeDims<D extends Dim>(shape: readonly D[], axes: number[], ctx: Where): D[] {
  const rank = shape.length + axes.length, add = new Set(normAxes(axes, rank, ctx));
  const out: D[] = [];
  for (let i = 0, k = 0; i < rank; i++) out.push(add.has(i) ? (1 as D) : shape[k++]);
  return out;
}

const axesAttr = (a: { has(n: string): boolean; ints(n: string): number[] }) => (a.has('axes') ? a.ints('axes') : undefined);

register(
  {
    op: 'Squeeze',
    attrs: (a) => ({ axes: axesAttr(a) }),
    infer: (ins, a, ctx) => {
      const s = shapeOf(ins[0]);
      const known = s && (a.axes || s.every((d) => typeof d === 'number'));
      return [tensorType(dtypeOf(ins[0]), known ? squeezeDims(s, a.axes, ctx) : undefined)];
    },
    run: (ins, a, ctx) => { const x = tensorAt(ins, 0, ctx); return [x.reshape(squeezeDims(x.shape, a.axes, ctx))]; },
  },
  {
    op: 'Squeeze', since: 13,
    infer: (ins, _a, ctx) => {
      const s = shapeOf(ins[0]), n = lengthOf(ins[1]);
      if (s && !ctx.node.inputs[1] && s.every((d) => typeof d === 'number')) return [tensorType(dtypeOf(ins[0]), squeezeDims(s, undefined, ctx))];
      return [tensorType(dtypeOf(ins[0]), s && n !== undefined ? unknownDims(s.length - n) : undefined)];
    },
    run: (ins, _a, ctx) => { const x = tensorAt(ins, 0, ctx); return [x.reshape(squeezeDims(x.shape, optInts(ins, 1, ctx), ctx))]; },
  },
  {
    op: 'Unsqueeze',
    attrs: (a) => ({ axes: a.ints('axes') }),
    infer: (ins, a, ctx) => { const s = shapeOf(ins[0]); return [tensorType(dtypeOf(ins[0]), s && unsqueezeDims(s, a.axes, ctx))]; },
    run: (ins, a, ctx) => { const x = tensorAt(ins, 0, ctx); return [x.reshape(unsqueezeDims(x.shape, a.axes, ctx))]; },
  },
  {
    op: 'Unsqueeze', since: 13,
    infer: (ins) => {
      const s = shapeOf(ins[0]), n = lengthOf(ins[1]);
      return [tensorType(dtypeOf(ins[0]), s && n !== undefined ? unknownDims(s.length + n) : undefined)];
    },
    run: (ins, _a, ctx) => { const x = tensorAt(ins, 0, ctx); return [x.reshape(unsqueezeDims(x.shape, intsAt(ins, 1, ctx), ctx))]; },
  },
);

// ---- Shape / Size ----

/** Shape-15 start/end: negative counts from the back, then clamped to [0, rank]. */
const clampAxis = (v: number, rank: number) => Math.min(rank, Math.max(0, v < 0 ? v + rank : v));
const shapeRange = (rank: number, a: { start: number; end?: number }) => [clampAxis(a.start, rank), clampAxis(a.end ?? rank, rank)];

register(
  {
    op: 'Shape',
    attrs: (a, opset) => ({ start: opset >= 15 ? a.int('start', 0) : 0, end: opset >= 15 && a.has('end') ? a.int('end') : undefined }),
    infer: (ins, a) => {
      const s = shapeOf(ins[0]);
      if (!s) return [tensorType('int64', [null])];
      const [b, e] = shapeRange(s.length, a);
      return [tensorType('int64', [Math.max(0, e - b)])];
    },
    run: (ins, a, ctx) => {
      const x = tensorAt(ins, 0, ctx), [b, e] = shapeRange(x.shape.length, a);
      const dims = x.shape.slice(b, Math.max(b, e));
      return [new NdArray('int64', [dims.length], BigInt64Array.from(dims, BigInt))];
    },
  },
  {
    op: 'Size',
    infer: () => [tensorType('int64', [])],
    run: (ins, _a, ctx) => [new NdArray('int64', [], BigInt64Array.of(BigInt(tensorAt(ins, 0, ctx).size)))],
  },
);

// ---- Identity / Dropout ----

register({
  op: 'Identity',
  infer: sameAsInput,
  run: (ins, _a, ctx) => [ins[0] ?? fail(ctx, 'input 0 is required but missing')],
});

/** Dropout mask: bool from opset 10, the data's own type before. */
const maskType = (x: DType | undefined, opset: number): DType | undefined => (opset >= 10 ? 'bool' : x);

function ones(dtype: DType, shape: readonly number[]): NdArray {
  const m = NdArray.zeros(dtype, shape);
  (m.data as Float32Array).fill(1);
  return m;
}

/**
 * Training-mode dropout. With a seed, the keep mask is numpy's `uniform(0, 1, shape) >= ratio` after
 * `np.random.seed(seed)`, the generator the ONNX reference uses, so seeded runs reproduce it exactly.
 */
function trainDropout(x: NdArray, ratio: number, seed: number | undefined, ctx: RunCtx): [NdArray, NdArray] {
  if (!(ratio >= 0 && ratio < 1)) fail(ctx, `ratio ${ratio} is outside [0, 1)`);
  const rng = new MT19937(seed ?? Math.floor(Math.random() * 2 ** 32));
  const y = NdArray.zeros(x.dtype, x.shape), mask = NdArray.zeros('bool', x.shape);
  const src = x.data as Float32Array, dst = y.data as Float32Array, m = mask.data as Uint8Array, scale = 1 / (1 - ratio);
  for (let i = 0; i < src.length; i++) if (rng.nextDouble() >= ratio) { m[i] = 1; dst[i] = src[i] * scale; }
  return [y, mask];
}

register(
  {
    // Before opset 12 the ratio is an attribute and an inference engine never drops anything.
    op: 'Dropout',
    infer: (ins, _a, ctx) => [ins[0], tensorType(maskType(dtypeOf(ins[0]), ctx.opset), shapeOf(ins[0]))],
    run: (ins, _a, ctx) => {
      const x = tensorAt(ins, 0, ctx);
      return ctx.node.outputs[1] ? [x, ones(maskType(x.dtype, ctx.opset)!, x.shape)] : [x];
    },
  },
  {
    op: 'Dropout', since: 12,
    attrs: (a) => ({ seed: a.has('seed') ? a.int('seed') : undefined }),
    infer: (ins) => [ins[0], tensorType('bool', shapeOf(ins[0]))],
    run: (ins, a, ctx) => {
      const x = tensorAt(ins, 0, ctx), r = optTensor(ins, 1, ctx), t = optTensor(ins, 2, ctx);
      const ratio = r ? Number(r.data[0]) : 0.5;
      if (t && t.data[0] && ratio !== 0) return trainDropout(x, ratio, a.seed, ctx);
      return ctx.node.outputs[1] ? [x, ones('bool', x.shape)] : [x];
    },
  },
);
