// Indexing: Gather, GatherElements, GatherND, ScatterND, ScatterElements, Scatter, Compress, NonZero,
// Unique. Negative indices wrap once; any index still out of range fails naming the node.
import type { DType } from '../engine/dtype.js';
import type { Dim, Node, TypeInfo } from '../engine/graph.js';
import { NdArray, type Value } from '../engine/tensor.js';
import { stridesOf } from '../kernels/cpu/broadcast.js';
import { copyRange, rowCopier, walk, type Buf } from '../kernels/cpu/copy.js';
import { fail, register, tensorAt, type RunCtx } from './registry.js';
import { dtypeOf, sameAsInput, shapeOf, tensorType } from './infer-rules.js';
import { normAxis } from './shape.js';
import { plainAt, transposeArray } from './movement.js';

type Ins = (Value | undefined)[];
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Index tensor input i, checked to be int32 or int64. */
function indicesAt(ins: Ins, i: number, ctx: RunCtx): NdArray {
  const t = tensorAt(ins, i, ctx);
  if (t.dtype !== 'int64' && t.dtype !== 'int32') fail(ctx, `indices (input ${i}) should be int32 or int64, got ${t.dtype}`);
  return t;
}

/** Index v into a dim of size n: [-n, n) wraps to [0, n); anything else fails. */
function wrap(v: number, n: number, ctx: RunCtx, axis: number): number {
  if (v < -n || v >= n) fail(ctx, `index ${v} is out of range for axis ${axis} of size ${n}`);
  return v < 0 ? v + n : v;
}

/** x's slices ids[k] along `ax`, laid out as x.shape[:ax] + idxShape + x.shape[ax+1:]. */
function takeAlong(x: NdArray, ax: number, ids: readonly number[], idxShape: readonly number[]): NdArray {
  const d = x.shape[ax], inner = prod(x.shape.slice(ax + 1)), n = ids.length;
  const out = NdArray.zeros(x.dtype, [...x.shape.slice(0, ax), ...idxShape, ...x.shape.slice(ax + 1)]);
  const copy = rowCopier(out.data, x.data);
  for (let o = 0, m = prod(x.shape.slice(0, ax)); o < m; o++) {
    for (let k = 0; k < n; k++) copy((o * n + k) * inner, (o * d + ids[k]) * inner, inner);
  }
  return out;
}

// ---- Gather / GatherElements / GatherND ----

function gather(x: NdArray, idx: NdArray, axis: number, ctx: RunCtx): NdArray {
  if (x.shape.length === 0) fail(ctx, 'cannot gather from a scalar');
  const ax = normAxis(axis, x.shape.length, ctx), d = x.shape[ax];
  return takeAlong(x, ax, idx.numbers().map((v) => wrap(v, d, ctx, ax)), idx.shape);
}

/** Walks the index tensor row by row; fn gets the data offset of the row with the axis term left out. */
function elementsWalk(x: NdArray, idx: NdArray, ax: number, ctx: RunCtx, fn: (dataBase: number, idxBase: number, n: number, step: number) => void): void {
  const r = x.shape.length;
  if (idx.shape.length !== r) fail(ctx, `indices rank ${idx.shape.length} differs from data rank ${r}`);
  idx.shape.forEach((d, k) => { if (k !== ax && d > x.shape[k]) fail(ctx, `indices shape [${idx.shape}] exceeds data shape [${x.shape}] on axis ${k}`); });
  if (idx.size === 0) return;
  const xs = stridesOf(x.shape).map((s, k) => (k === ax ? 0 : s)), is = stridesOf(idx.shape);
  walk(idx.shape.slice(0, r - 1), xs.slice(0, r - 1), is.slice(0, r - 1), 0, 0, (a, b) => fn(a, b, idx.shape[r - 1], xs[r - 1]));
}

function gatherElements(x: NdArray, idx: NdArray, axis: number, ctx: RunCtx): NdArray {
  const ax = normAxis(axis, x.shape.length, ctx), d = x.shape[ax], st = stridesOf(x.shape)[ax];
  const out = NdArray.zeros(x.dtype, idx.shape), ids = idx.data, src = x.data, dst = out.data;
  elementsWalk(x, idx, ax, ctx, (a, b, n, step) => {
    for (let j = 0; j < n; j++) dst[b + j] = src[a + j * step + wrap(Number(ids[b + j]), d, ctx, ax) * st];
  });
  return out;
}

/** Checks GatherND/ScatterND indices against the data over `b` batch dims; returns the tuple length. */
export function checkTuples(xs: readonly number[], is: readonly number[], b: number, ctx: { node: Node }): number {
  const r = xs.length, q = is.length;
  if (q < 1) fail(ctx, 'indices should have rank >= 1');
  const k = is[q - 1];
  if (b < 0 || b >= Math.min(q, r)) fail(ctx, `batch_dims ${b} should be below both ranks (${r}, ${q})`);
  if (k > r - b) fail(ctx, `index tuples of length ${k} exceed data rank ${r} minus batch_dims ${b}`);
  for (let i = 0; i < b; i++) if (is[i] !== xs[i]) fail(ctx, `batch dim ${i} differs: indices ${is[i]}, data ${xs[i]}`);
  return k;
}

/** Data offsets of the index tuples of GatherND/ScatterND, one per tuple, batch dims included. */
function tupleOffsets(x: NdArray, idx: NdArray, b: number, ctx: RunCtx): { offsets: number[]; slice: number; k: number } {
  const q = idx.shape.length, k = checkTuples(x.shape, idx.shape, b, ctx);
  const xs = stridesOf(x.shape), ids = idx.numbers(), batchSize = b ? xs[b - 1] : x.size;
  const perBatch = prod(idx.shape.slice(b, q - 1)), tuples = prod(idx.shape.slice(0, q - 1)), offsets: number[] = [];
  for (let t = 0; t < tuples; t++) {
    let off = Math.floor(t / perBatch) * batchSize;
    for (let j = 0; j < k; j++) off += wrap(ids[t * k + j], x.shape[b + j], ctx, b + j) * xs[b + j];
    offsets.push(off);
  }
  return { offsets, slice: prod(x.shape.slice(b + k)), k };
}

function gatherND(x: NdArray, idx: NdArray, b: number, ctx: RunCtx): NdArray {
  const { offsets, slice, k } = tupleOffsets(x, idx, b, ctx);
  const out = NdArray.zeros(x.dtype, [...idx.shape.slice(0, -1), ...x.shape.slice(b + k)]);
  const copy = rowCopier(out.data, x.data);
  offsets.forEach((off, t) => copy(t * slice, off, slice));
  return out;
}

register(
  {
    op: 'Gather',
    attrs: (a) => ({ axis: a.int('axis', 0) }),
    infer: (ins, a) => {
      const s = shapeOf(ins[0]), i = shapeOf(ins[1]);
      if (!s || !i) return [tensorType(dtypeOf(ins[0]))];
      const ax = a.axis < 0 ? a.axis + s.length : a.axis;
      return [tensorType(dtypeOf(ins[0]), [...s.slice(0, ax), ...i, ...s.slice(ax + 1)])];
    },
    run: (ins, a, ctx) => [gather(plainAt(ins, 0, ctx), indicesAt(ins, 1, ctx), a.axis, ctx)],
  },
  {
    op: 'GatherElements', since: 11,
    attrs: (a) => ({ axis: a.int('axis', 0) }),
    infer: (ins) => [tensorType(dtypeOf(ins[0]), shapeOf(ins[1]))],
    run: (ins, a, ctx) => [gatherElements(plainAt(ins, 0, ctx), indicesAt(ins, 1, ctx), a.axis, ctx)],
  },
  {
    op: 'GatherND', since: 11,
    attrs: (a, opset) => ({ b: opset >= 12 ? a.int('batch_dims', 0) : 0 }),
    infer: (ins, a) => {
      const s = shapeOf(ins[0]), i = shapeOf(ins[1]), k = i?.[i.length - 1];
      return [tensorType(dtypeOf(ins[0]), s && i && typeof k === 'number' ? [...i.slice(0, -1), ...s.slice(a.b + k)] : undefined)];
    },
    run: (ins, a, ctx) => [gatherND(plainAt(ins, 0, ctx), indicesAt(ins, 1, ctx), a.b, ctx)],
  },
);

// ---- Scatter family ----

type Reduction = 'none' | 'add' | 'mul' | 'max' | 'min';
type Combine = (old: any, upd: any) => any;

function reductionAttr(a: { string(n: string, d: string): string; error(m: string): Error }, opset: number): Reduction {
  const r = opset >= 16 ? a.string('reduction', 'none') : 'none';
  if (r === 'none' || r === 'add' || r === 'mul' || (opset >= 18 && (r === 'max' || r === 'min'))) return r;
  throw a.error(`unsupported reduction '${r}'`);
}

/** How an update merges into the existing value, in the dtype's own arithmetic. */
function combiner(r: Reduction, dtype: DType, ctx: RunCtx): Combine {
  if (r === 'none') return (_o, u) => u;
  if (dtype === 'string') fail(ctx, `reduction '${r}' is not defined for strings`);
  if (dtype === 'bool') return r === 'add' || r === 'max' ? (o, u) => o | u : (o, u) => o & u;
  switch (r) {
    case 'add': return (o, u) => o + u;
    // int32 products overflow 2^53 before wrapping; imul wraps exactly like the C++ types.
    case 'mul': return dtype === 'int32' || dtype === 'uint32' ? Math.imul : (o, u) => o * u;
    case 'max': return (o, u) => (u > o ? u : o);
    case 'min': return (o, u) => (u < o ? u : o);
  }
}

function cloneData(x: NdArray): NdArray {
  const out = NdArray.zeros(x.dtype, x.shape);
  copyRange(out.data, 0, x.data, 0, x.size);
  return out;
}

function scatterND(x: NdArray, idx: NdArray, upd: NdArray, r: Reduction, ctx: RunCtx): NdArray {
  if (upd.dtype !== x.dtype) fail(ctx, `updates dtype ${upd.dtype} differs from data dtype ${x.dtype}`);
  const { offsets, slice, k } = tupleOffsets(x, idx, 0, ctx);
  const want = [...idx.shape.slice(0, -1), ...x.shape.slice(k)];
  if (want.length !== upd.shape.length || want.some((d, i) => d !== upd.shape[i])) fail(ctx, `updates shape [${upd.shape}] should be [${want}]`);
  const out = cloneData(x), dst = out.data, src = upd.data, f = combiner(r, x.dtype, ctx), copy = rowCopier(dst, src);
  offsets.forEach((off, t) => {
    if (r === 'none') copy(off, t * slice, slice);
    else for (let j = 0; j < slice; j++) dst[off + j] = f(dst[off + j], src[t * slice + j]);
  });
  return out;
}

function scatterElements(x: NdArray, idx: NdArray, upd: NdArray, axis: number, r: Reduction, ctx: RunCtx): NdArray {
  if (upd.dtype !== x.dtype) fail(ctx, `updates dtype ${upd.dtype} differs from data dtype ${x.dtype}`);
  if (upd.shape.length !== idx.shape.length || upd.shape.some((d, i) => d !== idx.shape[i])) fail(ctx, `updates shape [${upd.shape}] differs from indices shape [${idx.shape}]`);
  const ax = normAxis(axis, x.shape.length, ctx), d = x.shape[ax], st = stridesOf(x.shape)[ax];
  const out = cloneData(x), dst: Buf = out.data, src = upd.data, ids = idx.data, f = combiner(r, x.dtype, ctx);
  elementsWalk(x, idx, ax, ctx, (a, b, n, step) => {
    for (let j = 0; j < n; j++) {
      const p = a + j * step + wrap(Number(ids[b + j]), d, ctx, ax) * st;
      dst[p] = f(dst[p], src[b + j]);
    }
  });
  return out;
}

register(
  {
    op: 'ScatterND', since: 11,
    attrs: (a, opset) => ({ r: reductionAttr(a, opset) }),
    infer: sameAsInput,
    run: (ins, a, ctx) => [scatterND(plainAt(ins, 0, ctx), indicesAt(ins, 1, ctx), plainAt(ins, 2, ctx), a.r, ctx)],
  },
  {
    op: 'ScatterElements', since: 11,
    attrs: (a, opset) => ({ axis: a.int('axis', 0), r: reductionAttr(a, opset) }),
    infer: sameAsInput,
    run: (ins, a, ctx) => [scatterElements(plainAt(ins, 0, ctx), indicesAt(ins, 1, ctx), plainAt(ins, 2, ctx), a.axis, a.r, ctx)],
  },
  {
    // Deprecated at opset 11 in favour of ScatterElements, with the same meaning.
    op: 'Scatter', since: 9,
    attrs: (a) => ({ axis: a.int('axis', 0) }),
    infer: sameAsInput,
    run: (ins, a, ctx) => [scatterElements(plainAt(ins, 0, ctx), indicesAt(ins, 1, ctx), plainAt(ins, 2, ctx), a.axis, 'none', ctx)],
  },
);

// ---- Compress / NonZero ----

function compress(x: NdArray, cond: NdArray, axis: number | undefined, ctx: RunCtx): NdArray {
  if (cond.dtype !== 'bool' || cond.shape.length !== 1) fail(ctx, `condition should be a 1-D bool tensor, got ${cond.dtype} [${cond.shape}]`);
  const flat = axis === undefined, ax = flat ? 0 : normAxis(axis, x.shape.length, ctx);
  const src = flat ? x.reshape([x.size]) : x, n = src.shape[ax], c = cond.data as Uint8Array;
  const picks: number[] = [];
  for (let i = 0; i < c.length; i++) if (c[i]) picks.push(i);
  // Entries past the axis may be given but must be false: a true one would select a slice that is not there.
  if (picks.length && picks[picks.length - 1] >= n) fail(ctx, `condition selects index ${picks[picks.length - 1]}, past the ${n} ${flat ? 'elements' : `slices on axis ${ax}`}`);
  return takeAlong(src, ax, picks, [picks.length]);
}

/** Coordinates of the non-zero elements, [rank, count]; a scalar counts as shape [1], as in numpy. */
function nonZero(x: NdArray): NdArray {
  const shape = x.shape.length ? x.shape : [1], src = x.data as ArrayLike<unknown>, r = shape.length, hits: number[] = [];
  for (let i = 0; i < src.length; i++) { const v = src[i]; if (v !== 0 && v !== 0n && v !== '') hits.push(i); }
  const out = NdArray.zeros('int64', [r, hits.length]), o = out.data as BigInt64Array, st = stridesOf(shape);
  hits.forEach((flat, j) => {
    for (let k = 0; k < r; k++) o[k * hits.length + j] = BigInt(Math.floor(flat / st[k]) % shape[k]);
  });
  return out;
}

register(
  {
    op: 'Compress', since: 9,
    attrs: (a) => ({ axis: a.has('axis') ? a.int('axis') : undefined }),
    run: (ins, a, ctx) => [compress(plainAt(ins, 0, ctx), tensorAt(ins, 1, ctx), a.axis, ctx)],
  },
  {
    op: 'NonZero', since: 9,
    infer: (ins) => { const s = shapeOf(ins[0]); return [tensorType('int64', [s ? Math.max(1, s.length) : null, null])]; },
    run: (ins, _a, ctx) => [nonZero(plainAt(ins, 0, ctx))],
  },
);

// ---- Unique ----

type Scalar = number | bigint | string;

/** numpy's order: ascending, NaN last. */
function cmpScalar(a: Scalar, b: Scalar): number {
  if (a < b) return -1;
  if (a > b) return 1;
  if (a === b) return 0;
  const an = Number.isNaN(a), bn = Number.isNaN(b);
  return an === bn ? 0 : an ? 1 : -1;
}

/**
 * Unique items of x: its elements (no axis) or its slices along `axis`, each compared element by element.
 * Returns Y, first-occurrence indices, inverse indices and counts, sorted ascending or in first-seen order.
 */
function unique(x: NdArray, axis: number | undefined, sorted: boolean, ctx: RunCtx): NdArray[] {
  const ax = axis === undefined ? undefined : normAxis(axis, x.shape.length, ctx);
  const n = ax === undefined ? x.size : x.shape[ax];
  // Rows: item j occupies rows[j*m .. (j+1)*m) with the axis moved to the front.
  const rows = (ax === undefined ? x.data : transposeArray(x, [ax, ...x.shape.map((_, i) => i).filter((i) => i !== ax)]).data) as ArrayLike<Scalar>;
  const m = n ? rows.length / n : 0;
  const item = (j: number) => Array.from({ length: m }, (_, k) => rows[j * m + k]);
  // A Map key per item; NaN and -0 stringify to one key each, which matches numpy's equal_nan grouping.
  const keyOf = (j: number): unknown => (m === 1 ? rows[j] : JSON.stringify(item(j), (_k, v) => (typeof v === 'bigint' ? `${v}n` : typeof v === 'number' ? String(v) : v)));
  const groups = new Map<unknown, number>(), first: number[] = [], counts: number[] = [], groupOf = new Int32Array(n);
  for (let j = 0; j < n; j++) {
    const key = keyOf(j);
    let g = groups.get(key);
    if (g === undefined) { g = first.length; groups.set(key, g); first.push(j); counts.push(0); }
    groupOf[j] = g; counts[g]++;
  }
  const order = first.map((_, g) => g);
  if (sorted) {
    order.sort((g, h) => {
      for (let k = 0; k < m; k++) { const c = cmpScalar(rows[first[g] * m + k], rows[first[h] * m + k]); if (c) return c; }
      return 0;
    });
  }
  const pos = new Int32Array(order.length);
  order.forEach((g, p) => { pos[g] = p; });
  const picks = order.map((g) => first[g]);
  const y = ax === undefined ? takeAlong(x.reshape([x.size]), 0, picks, [picks.length]) : takeAlong(x, ax, picks, [picks.length]);
  const i64 = (v: ArrayLike<number>) => new NdArray('int64', [v.length], BigInt64Array.from(Array.from(v), BigInt));
  return [y, i64(picks), i64(Array.from(groupOf, (g) => pos[g])), i64(order.map((g) => counts[g]))];
}

register({
  op: 'Unique', since: 11,
  attrs: (a) => ({ axis: a.has('axis') ? a.int('axis') : undefined, sorted: a.int('sorted', 1) !== 0 }),
  infer: (ins, a) => {
    const s = shapeOf(ins[0]), idx = tensorType('int64', [null]);
    const y: Dim[] | undefined = a.axis === undefined ? [null] : s?.map((d, i) => (i === (a.axis! < 0 ? a.axis! + s.length : a.axis) ? null : d));
    return [tensorType(dtypeOf(ins[0]), y), idx, idx, idx] as TypeInfo[];
  },
  run: (ins, a, ctx) => unique(plainAt(ins, 0, ctx), a.axis, a.sorted, ctx),
});
