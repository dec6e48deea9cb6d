// Data movement: Transpose, Concat, Split, Slice, Expand, Tile, Pad, CenterCropPad, DepthToSpace,
// SpaceToDepth, ReverseSequence, Trilu. Every op reduces to a strided copy, an axis-map gather or a
// transpose over the flat storage, so all dtypes (strings, bool, BigInt64Array, widened floats) share one path.
import { isBigInt, lanes, type DType } from '../engine/dtype.js';
import type { Dim, Node, TypeInfo } from '../engine/graph.js';
import { NdArray, type Value } from '../engine/tensor.js';
import { broadcastShapes, broadcastStrides, stridesOf } from '../kernels/cpu/broadcast.js';
import { fill, gatherAxisMaps, rowCopier, stridedCopy } from '../kernels/cpu/copy.js';
import { transpose } from '../kernels/cpu/transpose.js';
import { fail, optTensor, register, tensorAt, type RunCtx } from './registry.js';
import { dtypeOf, sameAsInput, shapeOf, tensorType } from './infer-rules.js';
import { intsAt, normAxes, normAxis, optInts } from './shape.js';

type Ins = (Value | undefined)[];
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Input i as a tensor whose storage holds one slot per element (complex pairs are not moved here). */
export function plainAt(ins: Ins, i: number, ctx: RunCtx): NdArray {
  const x = tensorAt(ins, i, ctx);
  if (lanes(x.dtype) !== 1) fail(ctx, `dtype ${x.dtype} is not supported`);
  return x;
}

/** A JS value of `dtype`'s storage from a number (pad values, fill values). */
export function storageValue(dtype: DType, v: number): number | bigint | string {
  if (dtype === 'string') return '';
  if (isBigInt(dtype)) return BigInt(Math.trunc(v));
  return dtype === 'bool' ? Number(v !== 0) : v;
}

// ---- Transpose ----

export function permOf(perm: number[] | undefined, rank: number, ctx: { node: Node }): number[] {
  const p = perm ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  if (p.length !== rank || normAxes(p, rank, ctx, 'perm').some((a, i) => a !== p[i])) fail(ctx, `perm [${p}] is not a permutation of ${rank} axes`);
  return p;
}

export function transposeArray(x: NdArray, perm: readonly number[]): NdArray {
  const out = NdArray.zeros(x.dtype, perm.map((p) => x.shape[p]));
  transpose(x.data, x.shape, perm, out.data);
  return out;
}

register({
  op: 'Transpose',
  attrs: (a) => ({ perm: a.has('perm') ? a.ints('perm') : undefined }),
  infer: (ins, a, ctx) => {
    const s = shapeOf(ins[0]);
    return [tensorType(dtypeOf(ins[0]), s && permOf(a.perm, s.length, ctx).map((p) => s[p]))];
  },
  run: (ins, a, ctx) => { const x = plainAt(ins, 0, ctx); return [transposeArray(x, permOf(a.perm, x.shape.length, ctx))]; },
});

// ---- Concat / Split ----

/** Copies `x` into `out` at offset `at` along `axis` (out's other dims equal x's). */
function placeAlong(x: NdArray, out: NdArray, axis: number, at: number): void {
  const inner = prod(x.shape.slice(axis + 1)), blk = x.shape[axis] * inner, oblk = out.shape[axis] * inner, copy = rowCopier(out.data, x.data);
  for (let o = 0, n = prod(x.shape.slice(0, axis)); o < n; o++) copy(o * oblk + at * inner, o * blk, blk);
}

/** Copies the [at, at + len) range of `x` along `axis` into a new tensor. */
function sliceAlong(x: NdArray, axis: number, at: number, len: number): NdArray {
  const shape = x.shape.map((d, i) => (i === axis ? len : d)), out = NdArray.zeros(x.dtype, shape);
  const inner = prod(x.shape.slice(axis + 1)), blk = len * inner, iblk = x.shape[axis] * inner, copy = rowCopier(out.data, x.data);
  for (let o = 0, n = prod(x.shape.slice(0, axis)); o < n; o++) copy(o * blk, o * iblk + at * inner, blk);
  return out;
}

function concat(xs: NdArray[], axis: number, ctx: RunCtx): NdArray {
  if (!xs.length) fail(ctx, 'needs at least one input');
  const first = xs[0], rank = first.shape.length;
  if (rank === 0) fail(ctx, 'cannot concatenate scalars');
  const ax = normAxis(axis, rank, ctx);
  for (const [i, x] of xs.entries()) {
    if (x.dtype !== first.dtype) fail(ctx, `input ${i} has dtype ${x.dtype}, expected ${first.dtype}`);
    if (x.shape.length !== rank || x.shape.some((d, k) => k !== ax && d !== first.shape[k])) fail(ctx, `input ${i} has shape [${x.shape}], incompatible with [${first.shape}] on axis ${ax}`);
  }
  const out = NdArray.zeros(first.dtype, first.shape.map((d, k) => (k === ax ? xs.reduce((s, x) => s + x.shape[ax], 0) : d)));
  let at = 0;
  for (const x of xs) { placeAlong(x, out, ax, at); at += x.shape[ax]; }
  return out;
}

function concatInfer(ins: (TypeInfo | undefined)[], axis: number): TypeInfo[] {
  const shapes = ins.map(shapeOf), dtype = dtypeOf(ins[0]);
  if (shapes.some((s) => !s) || !shapes.length) return [tensorType(dtype)];
  const rank = shapes[0]!.length, ax = axis < 0 ? axis + rank : axis;
  const sum = shapes.map((s) => s![ax]).reduce<Dim>((a, b) => (typeof a === 'number' && typeof b === 'number' ? a + b : null), 0);
  const dims = shapes[0]!.map((d, k) => (k === ax ? sum : shapes.map((s) => s![k]).find((x) => typeof x === 'number') ?? d));
  return [tensorType(dtype, dims)];
}

register(
  {
    op: 'Concat',
    attrs: (a, opset) => ({ axis: opset >= 4 ? a.int('axis') : a.int('axis', 1) }),
    infer: (ins, a) => concatInfer(ins, a.axis),
    run: (ins, a, ctx) => [concat(ins.map((_, i) => plainAt(ins, i, ctx)), a.axis, ctx)],
  },
);

/** Split sizes: explicit, or num_outputs chunks of ceil(dim / n) (opset 18), or equal parts. */
export function splitSizes(dim: number, n: number, split: number[] | undefined, numOutputs: number | undefined, ctx: { node: Node }): number[] {
  if (split) {
    if (split.length !== n) fail(ctx, `split has ${split.length} entries for ${n} outputs`);
    if (split.some((s) => s < 0) || split.reduce((a, b) => a + b, 0) !== dim) fail(ctx, `split [${split}] does not sum to the axis size ${dim}`);
    return split;
  }
  if (numOutputs !== undefined) {
    if (numOutputs !== n) fail(ctx, `num_outputs is ${numOutputs} but the node has ${n} outputs`);
    const chunk = Math.ceil(dim / n);
    if (chunk * (n - 1) > dim) fail(ctx, `cannot split size ${dim} into ${n} chunks of ${chunk}`);
    return Array.from({ length: n }, (_, i) => (i < n - 1 ? chunk : dim - chunk * (n - 1)));
  }
  if (dim % n !== 0) fail(ctx, `axis size ${dim} does not split evenly into ${n} outputs`);
  return new Array<number>(n).fill(dim / n);
}

function split(x: NdArray, axis: number, sizes: (dim: number) => number[], ctx: RunCtx): NdArray[] {
  const ax = normAxis(axis, x.shape.length, ctx);
  let at = 0;
  return sizes(x.shape[ax]).map((len) => { const t = sliceAlong(x, ax, at, len); at += len; return t; });
}

/** Each output keeps the input's dims except along the axis, which is known only from a split attribute. */
function splitInfer(ins: (TypeInfo | undefined)[], axis: number, n: number, sizes?: number[]): TypeInfo[] {
  const s = shapeOf(ins[0]), ax = s && (axis < 0 ? axis + s.length : axis);
  return Array.from({ length: n }, (_, i) => tensorType(dtypeOf(ins[0]), s?.map((d, k) => (k === ax ? sizes?.[i] ?? null : d))));
}

register(
  {
    op: 'Split',
    attrs: (a) => ({ axis: a.int('axis', 0), split: a.has('split') ? a.ints('split') : undefined }),
    infer: (ins, a, ctx) => splitInfer(ins, a.axis, ctx.node.outputs.length, a.split),
    run: (ins, a, ctx) => {
      const x = plainAt(ins, 0, ctx), given = a.split ?? optInts(ins, 1, ctx); // Split-1 also took split as input 1
      return split(x, a.axis, (d) => splitSizes(d, ctx.node.outputs.length, given, undefined, ctx), ctx);
    },
  },
  {
    op: 'Split', since: 13,
    attrs: (a, opset) => ({ axis: a.int('axis', 0), numOutputs: opset >= 18 && a.has('num_outputs') ? a.int('num_outputs') : undefined }),
    infer: (ins, a, ctx) => splitInfer(ins, a.axis, ctx.node.outputs.length),
    run: (ins, a, ctx) => {
      const x = plainAt(ins, 0, ctx), given = optInts(ins, 1, ctx);
      if (given && a.numOutputs !== undefined) fail(ctx, `give either the split input or num_outputs, not both`);
      return split(x, a.axis, (d) => splitSizes(d, ctx.node.outputs.length, given, a.numOutputs, ctx), ctx);
    },
  },
);

// ---- Slice ----

export interface SliceSpec { starts: number[]; ends: number[]; axes?: number[]; steps?: number[] }

/** Normalised start, step and length per axis, with the ONNX clamping rules for out-of-range bounds. */
export function sliceBounds(shape: readonly number[], s: SliceSpec, ctx: { node: Node }) {
  const r = shape.length, n = s.starts.length;
  if (s.ends.length !== n || (s.axes && s.axes.length !== n) || (s.steps && s.steps.length !== n)) fail(ctx, 'starts, ends, axes and steps must have the same length');
  const start = new Array<number>(r).fill(0), step = new Array<number>(r).fill(1), len = [...shape];
  const axes = normAxes(s.axes ?? Array.from({ length: n }, (_, i) => i), r, ctx);
  axes.forEach((ax, i) => {
    const d = shape[ax], st = s.steps?.[i] ?? 1;
    if (st === 0) fail(ctx, `step for axis ${ax} is 0`);
    let b = s.starts[i], e = s.ends[i];
    if (b < 0) b += d;
    if (e < 0) e += d;
    if (st > 0) { b = Math.min(Math.max(b, 0), d); e = Math.min(Math.max(e, 0), d); }
    else { b = Math.min(Math.max(b, 0), d - 1); e = Math.min(Math.max(e, -1), d - 1); }
    start[ax] = b; step[ax] = st; len[ax] = Math.max(0, Math.ceil((e - b) / st));
  });
  return { start, step, len };
}

function slice(x: NdArray, spec: SliceSpec, ctx: RunCtx): NdArray {
  const { start, step, len } = sliceBounds(x.shape, spec, ctx), str = stridesOf(x.shape);
  const out = NdArray.zeros(x.dtype, len);
  if (out.size === 0) return out;
  const off = start.reduce((a, b, i) => a + b * str[i], 0);
  stridedCopy(x.data, off, str.map((s, i) => s * step[i]), out.data, 0, stridesOf(len), len);
  return out;
}

register(
  {
    op: 'Slice',
    attrs: (a) => ({ starts: a.ints('starts'), ends: a.ints('ends'), axes: a.has('axes') ? a.ints('axes') : undefined }),
    infer: (ins, a, ctx) => {
      const s = shapeOf(ins[0]);
      if (!s) return [tensorType(dtypeOf(ins[0]))];
      const { len } = sliceBounds(s.map((d) => (typeof d === 'number' ? d : 0)), a, ctx);
      const cut = new Set(normAxes(a.axes ?? a.starts.map((_: number, i: number) => i), s.length, ctx));
      return [tensorType(dtypeOf(ins[0]), s.map((d, k) => (!cut.has(k) ? d : typeof d === 'number' ? len[k] : null)))];
    },
    run: (ins, a, ctx) => [slice(plainAt(ins, 0, ctx), a, ctx)],
  },
  {
    op: 'Slice', since: 10,
    infer: (ins) => [tensorType(dtypeOf(ins[0]), shapeOf(ins[0])?.map(() => null))],
    run: (ins, _a, ctx) => [slice(plainAt(ins, 0, ctx), {
      starts: intsAt(ins, 1, ctx), ends: intsAt(ins, 2, ctx), axes: optInts(ins, 3, ctx), steps: optInts(ins, 4, ctx),
    }, ctx)],
  },
);

// ---- Expand / Tile ----

function expand(x: NdArray, shape: number[], ctx: RunCtx): NdArray {
  if (shape.some((d) => d < 0)) fail(ctx, `shape [${shape}] has a negative dim`);
  const outShape = broadcastShapes(x.shape, shape) ?? fail(ctx, `input shape [${x.shape}] does not broadcast to [${shape}]`);
  const out = NdArray.zeros(x.dtype, outShape);
  stridedCopy(x.data, 0, broadcastStrides(x.shape, outShape), out.data, 0, stridesOf(outShape), outShape);
  return out;
}

/** Output dim i is (repeat t, element j) = t·d_i + j: a 2·rank-dim copy where the repeat dims read with stride 0. */
function tile(x: NdArray, reps: number[], ctx: RunCtx): NdArray {
  const r = x.shape.length;
  if (reps.length !== r || reps.some((n) => n < 0)) fail(ctx, `repeats [${reps}] should be ${r} non-negative counts`);
  const outShape = x.shape.map((d, i) => d * reps[i]), out = NdArray.zeros(x.dtype, outShape);
  const is = stridesOf(x.shape), os = stridesOf(outShape);
  const shape = x.shape.flatMap((d, i) => [reps[i], d]);
  stridedCopy(x.data, 0, is.flatMap((s) => [0, s]), out.data, 0, os.flatMap((s, i) => [s * x.shape[i], s]), shape);
  return out;
}

register(
  {
    op: 'Expand', since: 8,
    infer: (ins) => {
      const s = shapeOf(ins[0]), n = shapeOf(ins[1])?.[0];
      return [tensorType(dtypeOf(ins[0]), s && typeof n === 'number' ? new Array<Dim>(Math.max(s.length, n)).fill(null) : undefined)];
    },
    run: (ins, _a, ctx) => [expand(plainAt(ins, 0, ctx), intsAt(ins, 1, ctx), ctx)],
  },
  {
    op: 'Tile',
    infer: (ins) => [tensorType(dtypeOf(ins[0]), shapeOf(ins[0])?.map(() => null))],
    run: (ins, _a, ctx) => [tile(plainAt(ins, 0, ctx), intsAt(ins, 1, ctx), ctx)],
  },
);

// ---- Pad / CenterCropPad ----

type PadMode = 'constant' | 'reflect' | 'edge' | 'wrap';

/** Index of output position j (relative to the kept region's start) inside a kept region of length n. */
const MODE_INDEX: Record<Exclude<PadMode, 'constant'>, (j: number, n: number) => number> = {
  edge: (j, n) => Math.min(Math.max(j, 0), n - 1),
  wrap: (j, n) => ((j % n) + n) % n,
  reflect: (j, n) => {
    if (n === 1) return 0;
    const p = 2 * (n - 1), m = ((j % p) + p) % p;
    return m < n ? m : p - m;
  },
};

/** pads = [b_0..b_r-1, e_0..e_r-1]; negative entries crop. */
export function pad(x: NdArray, pads: readonly number[], mode: PadMode, value: unknown, ctx: RunCtx): NdArray {
  const r = x.shape.length;
  const outShape = x.shape.map((d, i) => d + pads[i] + pads[i + r]);
  if (outShape.some((d) => d < 0)) fail(ctx, `pads [${pads}] crop more than the input shape [${x.shape}]`);
  const out = NdArray.zeros(x.dtype, outShape), is = stridesOf(x.shape);
  // The kept region of the input: what remains after the negative (cropping) pads.
  const from = x.shape.map((_, i) => Math.max(0, -pads[i]));
  const kept = x.shape.map((d, i) => Math.max(0, d - from[i] - Math.max(0, -pads[i + r])));
  const lead = x.shape.map((_, i) => Math.max(0, pads[i]));
  if (out.size === 0) return out;
  if (mode === 'constant') {
    if (!Object.is(value, out.data[0])) fill(out.data, value);
    const os = stridesOf(outShape), so = from.reduce((a, f, i) => a + f * is[i], 0), dO = lead.reduce((a, l, i) => a + l * os[i], 0);
    stridedCopy(x.data, so, is, out.data, dO, os, kept);
    return out;
  }
  const at = MODE_INDEX[mode];
  const maps = outShape.map((n, i) => {
    if (kept[i] === 0) fail(ctx, `${mode} padding needs a non-empty input along axis ${i}`);
    const map = new Int32Array(n); // a plain loop: Int32Array.from with a map function is ~50x slower per element
    for (let o = 0; o < n; o++) map[o] = (from[i] + at(o - lead[i], kept[i])) * is[i];
    return map;
  });
  gatherAxisMaps(x.data, maps, out.data);
  return out;
}

function padMode(a: { string(n: string, d: string): string; error(m: string): Error }, opset: number): PadMode {
  const m = a.string('mode', 'constant');
  if (m === 'constant' || m === 'reflect' || m === 'edge' || (m === 'wrap' && opset >= 19)) return m;
  throw a.error(`unsupported mode '${m}'`);
}

/** Pad-18 axes: pads for the listed axes only, zero elsewhere. */
export function fullPads(pads: number[], axes: number[] | undefined, rank: number, ctx: { node: Node }): number[] {
  const ax = axes ? normAxes(axes, rank, ctx) : Array.from({ length: rank }, (_, i) => i);
  if (pads.length !== 2 * ax.length) fail(ctx, `pads has ${pads.length} entries, expected ${2 * ax.length}`);
  const full = new Array<number>(2 * rank).fill(0);
  ax.forEach((a, i) => { full[a] = pads[i]; full[a + rank] = pads[i + ax.length]; });
  return full;
}

const padInfer = (ins: (TypeInfo | undefined)[], pads?: number[]) => {
  const s = shapeOf(ins[0]), r = s?.length ?? 0;
  const dim = (d: Dim, b: number, e: number): Dim => (b + e === 0 ? d : typeof d === 'number' ? d + b + e : null);
  return [tensorType(dtypeOf(ins[0]), s?.map((d, i) => (pads ? dim(d, pads[i], pads[i + r]) : null)))];
};

register(
  {
    op: 'Pad',
    attrs: (a, opset) => ({ mode: padMode(a, opset), pads: opset >= 2 ? a.ints('pads') : a.ints('paddings'), value: a.float('value', 0) }),
    infer: (ins, a) => padInfer(ins, a.pads),
    run: (ins, a, ctx) => {
      const x = plainAt(ins, 0, ctx);
      return [pad(x, fullPads(a.pads, undefined, x.shape.length, ctx), a.mode, storageValue(x.dtype, a.value), ctx)];
    },
  },
  {
    op: 'Pad', since: 11,
    attrs: (a, opset) => ({ mode: padMode(a, opset) }),
    infer: (ins) => padInfer(ins),
    run: (ins, a, ctx) => {
      const x = plainAt(ins, 0, ctx), cv = optTensor(ins, 2, ctx);
      if (cv && cv.dtype !== x.dtype) fail(ctx, `constant_value has dtype ${cv.dtype}, expected ${x.dtype}`);
      const pads = fullPads(intsAt(ins, 1, ctx), ctx.opset >= 18 ? optInts(ins, 3, ctx) : undefined, x.shape.length, ctx);
      return [pad(x, pads, a.mode, cv && cv.size ? cv.data[0] : storageValue(x.dtype, 0), ctx)];
    },
  },
);

/** Centered crop (start rounded down) or zero pad (extra element at the end) of the given axes to `shape`. */
function centerCropPad(x: NdArray, shape: number[], axes: number[] | undefined, ctx: RunCtx): NdArray {
  const r = x.shape.length, ax = normAxes(axes ?? Array.from({ length: r }, (_, i) => i), r, ctx);
  if (shape.length !== ax.length) fail(ctx, `shape has ${shape.length} entries for ${ax.length} axes`);
  const pads = new Array<number>(2 * r).fill(0);
  ax.forEach((a, i) => {
    const diff = shape[i] - x.shape[a];
    if (shape[i] < 0) fail(ctx, `shape [${shape}] has a negative dim`);
    pads[a] = diff >= 0 ? Math.floor(diff / 2) : -Math.floor(-diff / 2);
    pads[a + r] = diff - pads[a];
  });
  return pad(x, pads, 'constant', storageValue(x.dtype, 0), ctx);
}

register({
  op: 'CenterCropPad', since: 18,
  attrs: (a) => ({ axes: a.has('axes') ? a.ints('axes') : undefined }),
  infer: (ins) => [tensorType(dtypeOf(ins[0]), shapeOf(ins[0])?.map(() => null))],
  run: (ins, a, ctx) => [centerCropPad(plainAt(ins, 0, ctx), intsAt(ins, 1, ctx), a.axes, ctx)],
});

// ---- DepthToSpace / SpaceToDepth ----

function depthToSpace(x: NdArray, b: number, mode: string, ctx: RunCtx): NdArray {
  if (x.shape.length !== 4) fail(ctx, `input should be 4-D, got [${x.shape}]`);
  const [n, c, h, w] = x.shape;
  if (c % (b * b) !== 0) fail(ctx, `channels ${c} not divisible by blocksize² ${b * b}`);
  const c2 = c / (b * b);
  // DCR reads channels as (b1, b2, c'), CRD as (c', b1, b2); both interleave b1 into H and b2 into W.
  const y = mode === 'DCR'
    ? transposeArray(x.reshape([n, b, b, c2, h, w]), [0, 3, 4, 1, 5, 2])
    : transposeArray(x.reshape([n, c2, b, b, h, w]), [0, 1, 4, 2, 5, 3]);
  return y.reshape([n, c2, h * b, w * b]);
}

function spaceToDepth(x: NdArray, b: number, ctx: RunCtx): NdArray {
  if (x.shape.length !== 4) fail(ctx, `input should be 4-D, got [${x.shape}]`);
  const [n, c, h, w] = x.shape;
  if (h % b !== 0 || w % b !== 0) fail(ctx, `spatial dims [${h}, ${w}] not divisible by blocksize ${b}`);
  return transposeArray(x.reshape([n, c, h / b, b, w / b, b]), [0, 3, 5, 1, 2, 4]).reshape([n, c * b * b, h / b, w / b]);
}

const blocksize = (a: { int(n: string): number; error(m: string): Error }) => {
  const b = a.int('blocksize');
  if (b < 1) throw a.error(`blocksize ${b} should be positive`);
  return b;
};

const spaceInfer = (f: (c: Dim, h: Dim, w: Dim) => Dim[]) => (ins: (TypeInfo | undefined)[]) => {
  const s = shapeOf(ins[0]);
  return [tensorType(dtypeOf(ins[0]), s?.length === 4 ? [s[0], ...f(s[1], s[2], s[3])] : undefined)];
};
const mulDim = (d: Dim, k: number, div = false): Dim => (typeof d === 'number' ? (div ? d / k : d * k) : null);

register(
  {
    op: 'DepthToSpace',
    attrs: (a) => {
      const mode = a.string('mode', 'DCR');
      if (mode !== 'DCR' && mode !== 'CRD') throw a.error(`unsupported mode '${mode}'`);
      return { b: blocksize(a), mode };
    },
    infer: (ins, a) => spaceInfer((c, h, w) => [mulDim(c, a.b * a.b, true), mulDim(h, a.b), mulDim(w, a.b)])(ins),
    run: (ins, a, ctx) => [depthToSpace(plainAt(ins, 0, ctx), a.b, a.mode, ctx)],
  },
  {
    op: 'SpaceToDepth',
    attrs: (a) => ({ b: blocksize(a) }),
    infer: (ins, a) => spaceInfer((c, h, w) => [mulDim(c, a.b * a.b), mulDim(h, a.b, true), mulDim(w, a.b, true)])(ins),
    run: (ins, a, ctx) => [spaceToDepth(plainAt(ins, 0, ctx), a.b, ctx)],
  },
);

// ---- ReverseSequence / Trilu ----

function reverseSequence(x: NdArray, lens: number[], timeAxis: number, batchAxis: number, ctx: RunCtx): NdArray {
  if (x.shape.length < 2) fail(ctx, `input should have rank >= 2, got [${x.shape}]`);
  if (![0, 1].includes(timeAxis) || ![0, 1].includes(batchAxis) || timeAxis === batchAxis) fail(ctx, 'time_axis and batch_axis should be 0 and 1 in some order');
  const str = stridesOf(x.shape), T = x.shape[timeAxis], B = x.shape[batchAxis], inner = str[1];
  if (lens.length !== B) fail(ctx, `sequence_lens has ${lens.length} entries for batch size ${B}`);
  const out = NdArray.zeros(x.dtype, x.shape);
  const copy = rowCopier(out.data, x.data);
  copy(0, 0, x.size);
  lens.forEach((n, b) => {
    if (n < 0 || n > T) fail(ctx, `sequence_lens[${b}] = ${n} is outside [0, ${T}]`);
    const base = b * str[batchAxis], ts = str[timeAxis];
    for (let t = 0; t < n; t++) copy(base + t * ts, base + (n - 1 - t) * ts, inner);
  });
  return out;
}

/** Keeps column j of row i when j - i >= k (upper) or j - i <= k (lower); zero elsewhere. */
function trilu(x: NdArray, k: number, upper: boolean, ctx: RunCtx): NdArray {
  const r = x.shape.length;
  if (r < 2) fail(ctx, `input should have rank >= 2, got [${x.shape}]`);
  const rows = x.shape[r - 2], cols = x.shape[r - 1], out = NdArray.zeros(x.dtype, x.shape), copy = rowCopier(out.data, x.data);
  for (let m = 0, n = prod(x.shape.slice(0, r - 2)); m < n; m++) {
    for (let i = 0; i < rows; i++) {
      const lo = upper ? Math.max(0, i + k) : 0, hi = upper ? cols : Math.min(cols, i + k + 1);
      const at = (m * rows + i) * cols;
      if (hi > lo) copy(at + lo, at + lo, hi - lo);
    }
  }
  return out;
}

register(
  {
    op: 'ReverseSequence', since: 10,
    attrs: (a) => ({ time: a.int('time_axis', 0), batch: a.int('batch_axis', 1) }),
    infer: sameAsInput,
    run: (ins, a, ctx) => [reverseSequence(plainAt(ins, 0, ctx), intsAt(ins, 1, ctx), a.time, a.batch, ctx)],
  },
  {
    op: 'Trilu', since: 14,
    attrs: (a) => ({ upper: a.int('upper', 1) !== 0 }),
    infer: sameAsInput,
    run: (ins, a, ctx) => {
      const k = optTensor(ins, 1, ctx);
      if (k && k.size !== 1) fail(ctx, `k should be a scalar, got shape [${k.shape}]`);
      return [trilu(plainAt(ins, 0, ctx), k ? Number(k.data[0]) : 0, a.upper, ctx)];
    },
  },
);
