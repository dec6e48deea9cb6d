// Generators: Constant, ConstantOfShape, Range, EyeLike, OneHot. Outputs built from attributes,
// shapes and scalars rather than from another tensor's elements.
import { dtypeFromOnnx, isBigInt, isFloat, type DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { fill } from '../kernels/cpu/copy.js';
import { Attrs, fail, register, tensorAt, type RunCtx } from './registry.js';
import { dtypeOf, shapeOf, tensorType } from './infer-rules.js';
import { intsAt, normAxis } from './shape.js';
import { storageValue } from './movement.js';

// ---- Constant ----

const CONSTANT_FORMS = ['value', 'sparse_value', 'value_float', 'value_floats', 'value_int', 'value_ints', 'value_string', 'value_strings'];

/** The one value attribute of a Constant node as a tensor (sparse values arrive densified from the loader). */
function constantValue(a: Attrs): NdArray {
  const forms = CONSTANT_FORMS.filter((n) => a.has(n));
  if (forms.length !== 1) throw a.error(`needs exactly one value attribute, got ${forms.length ? forms.join(', ') : 'none'}`);
  const f = forms[0];
  switch (f) {
    case 'value_float': return new NdArray('float32', [], Float32Array.of(a.float(f)));
    case 'value_floats': { const v = a.floats(f); return new NdArray('float32', [v.length], Float32Array.from(v)); }
    case 'value_int': return new NdArray('int64', [], BigInt64Array.of(BigInt(a.int(f))));
    case 'value_ints': { const v = a.ints(f); return new NdArray('int64', [v.length], BigInt64Array.from(v, BigInt)); }
    case 'value_string': return new NdArray('string', [], [a.string(f)]);
    case 'value_strings': { const v = a.strings(f); return new NdArray('string', [v.length], [...v]); }
    default: return a.tensor(f) ?? (() => { throw a.error(`attribute '${f}' holds no tensor`); })();
  }
}

register({
  op: 'Constant',
  attrs: (a) => ({ value: constantValue(a) }),
  infer: (_ins, a) => [tensorType(a.value.dtype, [...a.value.shape])],
  run: (_ins, a) => [a.value],
});

// ---- ConstantOfShape ----

register({
  op: 'ConstantOfShape', since: 9,
  attrs: (a) => {
    const v = a.tensor('value') ?? new NdArray('float32', [1], new Float32Array(1));
    if (v.size !== 1) throw a.error(`value should hold one element, got shape [${v.shape}]`);
    return { value: v };
  },
  infer: (ins, a) => {
    const n = shapeOf(ins[0])?.[0];
    return [tensorType(a.value.dtype, typeof n === 'number' ? new Array(n).fill(null) : undefined)];
  },
  run: (ins, a, ctx) => {
    const shape = intsAt(ins, 0, ctx);
    if (shape.some((d) => d < 0)) fail(ctx, `shape [${shape}] has a negative dim`);
    const out = NdArray.zeros(a.value.dtype, shape), v = a.value.data[0];
    if (!Object.is(v, out.data[0]) && out.size) fill(out.data, v);
    return [out];
  },
});

// ---- Range ----

function scalarAt(ins: Parameters<typeof tensorAt>[0], i: number, ctx: RunCtx): NdArray {
  const t = tensorAt(ins, i, ctx);
  if (t.size !== 1) fail(ctx, `input ${i} should be a scalar, got shape [${t.shape}]`);
  return t;
}

/**
 * ceil((limit - start) / delta) elements, start + i·delta. Floats accumulate in the tensor's own
 * precision (float32 via fround), as the reference kernels do, so long ranges drift the same way.
 */
function range(start: NdArray, limit: NdArray, delta: NdArray, ctx: RunCtx): NdArray {
  const dtype = start.dtype;
  if (limit.dtype !== dtype || delta.dtype !== dtype) fail(ctx, `start, limit and delta should share a dtype, got ${dtype}, ${limit.dtype}, ${delta.dtype}`);
  if (dtype === 'string' || dtype === 'bool') fail(ctx, `dtype ${dtype} is not supported`);
  if (isBigInt(dtype)) {
    const s = start.data[0] as bigint, l = limit.data[0] as bigint, d = delta.data[0] as bigint;
    if (d === 0n) fail(ctx, 'delta is 0');
    const n = Math.max(0, Math.ceil(Number(l - s) / Number(d))), out = NdArray.zeros(dtype, [n]), o = out.data as BigInt64Array;
    for (let i = 0; i < n; i++) o[i] = s + BigInt(i) * d;
    return out;
  }
  const s = start.data[0] as number, l = limit.data[0] as number, d = delta.data[0] as number;
  if (d === 0) fail(ctx, 'delta is 0');
  const f32 = isFloat(dtype) && dtype !== 'float64' ? Math.fround : (x: number) => x;
  const n = Math.max(0, Math.ceil(f32(l - s) / d));
  const out = NdArray.zeros(dtype, [n]), o = out.data as Float32Array;
  for (let i = 0, v = s; i < n; i++, v = f32(v + d)) o[i] = v;
  return out;
}

register({
  op: 'Range', since: 11,
  infer: (ins) => [tensorType(dtypeOf(ins[0]), [null])],
  run: (ins, _a, ctx) => [range(scalarAt(ins, 0, ctx), scalarAt(ins, 1, ctx), scalarAt(ins, 2, ctx), ctx)],
});

// ---- EyeLike / OneHot ----

function dtypeAttr(a: Attrs, name: string): DType | undefined {
  if (!a.has(name)) return undefined;
  return dtypeFromOnnx(a.int(name)) ?? (() => { throw a.error(`unknown ${name} ${a.int(name)}`); })();
}

function eyeLike(x: NdArray, dtype: DType, k: number, ctx: RunCtx): NdArray {
  if (x.shape.length !== 2) fail(ctx, `input should be 2-D, got [${x.shape}]`);
  if (dtype === 'string') fail(ctx, 'dtype string is not supported');
  const [rows, cols] = x.shape, out = NdArray.zeros(dtype, x.shape), one = storageValue(dtype, 1);
  for (let i = Math.max(0, -k); i < rows && i + k < cols; i++) out.data[i * cols + i + k] = one;
  return out;
}

/** One-hot along `axis` of the output: position idx (negative counts from depth) gets on, the rest off. */
function oneHot(idx: NdArray, depthT: NdArray, values: NdArray, axis: number, ctx: RunCtx): NdArray {
  if (depthT.size !== 1) fail(ctx, `depth should hold one value, got shape [${depthT.shape}]`);
  if (values.size !== 2) fail(ctx, `values should be [off_value, on_value], got shape [${values.shape}]`);
  const depth = Math.trunc(Number(depthT.data[0])), r = idx.shape.length, ax = normAxis(axis, r + 1, ctx);
  if (!(depth > 0)) fail(ctx, `depth ${depth} should be positive`);
  const out = NdArray.zeros(values.dtype, [...idx.shape.slice(0, ax), depth, ...idx.shape.slice(ax)]);
  const inner = idx.shape.slice(ax).reduce((a, b) => a * b, 1), ids = idx.data, dst = out.data;
  fill(dst, values.data[0]);
  for (let p = 0; p < idx.size; p++) {
    let v = Number(ids[p]);
    if (v < 0) v += depth;
    // Out-of-range (and, as in the reference, non-integral) indices give an all-off row.
    if (Number.isInteger(v) && v >= 0 && v < depth) dst[(Math.floor(p / inner) * depth + v) * inner + (p % inner)] = values.data[1];
  }
  return out;
}

register(
  {
    op: 'EyeLike', since: 9,
    attrs: (a) => ({ dtype: dtypeAttr(a, 'dtype'), k: a.int('k', 0) }),
    infer: (ins, a) => [tensorType(a.dtype ?? dtypeOf(ins[0]), shapeOf(ins[0]))],
    run: (ins, a, ctx) => { const x = tensorAt(ins, 0, ctx); return [eyeLike(x, a.dtype ?? x.dtype, a.k, ctx)]; },
  },
  {
    op: 'OneHot', since: 9,
    attrs: (a) => ({ axis: a.int('axis', -1) }),
    infer: (ins, a) => {
      const s = shapeOf(ins[0]), ax = s && (a.axis < 0 ? a.axis + s.length + 1 : a.axis);
      return [tensorType(dtypeOf(ins[2]), s && [...s.slice(0, ax), null, ...s.slice(ax)])];
    },
    run: (ins, a, ctx) => [oneHot(tensorAt(ins, 0, ctx), tensorAt(ins, 1, ctx), tensorAt(ins, 2, ctx), a.axis, ctx)],
  },
);
