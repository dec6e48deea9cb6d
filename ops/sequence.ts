// Sequences (lists of tensors) and optionals. Sequences are immutable values: every op that changes one
// returns a new Seq sharing the untouched tensors.
import { dtypeFromOnnx, lanes, type DType } from '../engine/dtype.js';
import type { Graph, TypeInfo } from '../engine/graph.js';
import { NdArray, Opt, Seq, type Value } from '../engine/tensor.js';
import { concatAxis, sliceAxis } from '../kernels/cpu/axis-copy.js';
import { dtypeOf, tensorType } from './infer-rules.js';
import { fail, optTensor, register, tensorAt, type Attrs, type RunCtx } from './registry.js';

/** Joins tensors along `axis`; the caller has checked that the other dims agree. */
export function concat(parts: NdArray[], axis: number): NdArray {
  const shape = [...parts[0].shape];
  shape[axis] = parts.reduce((n, p) => n + p.shape[axis], 0);
  const out = NdArray.zeros(parts[0].dtype, shape);
  concatAxis(parts, axis, out.data, lanes(out.dtype));
  return out;
}

/** Elements [start, start + len) of `axis`; `keep` false drops the axis (len must be 1). */
export function slab(x: NdArray, axis: number, start: number, len: number, keep = true): NdArray {
  const shape = [...x.shape];
  shape[axis] = len;
  const out = NdArray.zeros(x.dtype, shape);
  sliceAxis(x.data, x.shape, axis, start, len, out.data, lanes(x.dtype));
  return keep ? out : out.reshape(shape.filter((_, i) => i !== axis));
}

/** Stacks same-shaped tensors along a new axis. */
export function stack(items: NdArray[], axis: number, ctx: RunCtx): NdArray {
  const s = items[0].shape;
  for (const t of items) {
    if (t.dtype !== items[0].dtype) fail(ctx, `cannot stack ${t.dtype} with ${items[0].dtype}`);
    if (t.shape.length !== s.length || t.shape.some((d, i) => d !== s[i])) fail(ctx, `cannot stack shapes [${t.shape}] and [${s}]`);
  }
  return concat(items.map((t) => t.reshape([...s.slice(0, axis), 1, ...s.slice(axis)])), axis);
}

export const normAxis = (ctx: RunCtx, axis: number, rank: number): number => {
  if (axis < -rank || axis >= rank) fail(ctx, `axis ${axis} is out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
};

function seqAt(ins: (Value | undefined)[], i: number, ctx: RunCtx): Seq {
  const v = ins[i];
  return v instanceof Seq ? v : fail(ctx, `input ${i} ('${ctx.node.inputs[i] ?? ''}') should be a sequence`);
}

/** A position input (one int), checked against [-n, hi] and made non-negative. */
function position(ctx: RunCtx, t: NdArray | undefined, n: number, hi: number, def: number): number {
  if (!t) return def;
  if (t.size !== 1 || !['int32', 'int64'].includes(t.dtype)) fail(ctx, `position must be a single int32 or int64 value, got ${t.dtype} [${t.shape}]`);
  const p = Number(t.data[0]);
  if (p < -n || p > hi) fail(ctx, `position ${p} is out of range for a sequence of length ${n}`);
  return p < 0 ? p + n : p;
}

const seqType = (elem?: TypeInfo): TypeInfo => ({ kind: 'sequence', elem });
const elemOf = (t: TypeInfo | undefined) => (t?.kind === 'sequence' || t?.kind === 'optional' ? t.elem : undefined);

function checkDtype(ctx: RunCtx, s: Seq, t: NdArray) {
  const want = s.elemType ?? s.items[0]?.dtype;
  if (want && t.dtype !== want) fail(ctx, `tensor dtype ${t.dtype} does not match the sequence's ${want}`);
}

register(
  {
    op: 'SequenceConstruct',
    infer: (ins) => [seqType(ins[0])],
    run: (ins, _a, ctx) => {
      const items = ins.map((_, i) => tensorAt(ins, i, ctx));
      for (const t of items) if (t.dtype !== items[0].dtype) fail(ctx, `all inputs must share a dtype, got ${items[0].dtype} and ${t.dtype}`);
      return [new Seq(items, items[0]?.dtype)];
    },
  },
  {
    op: 'SequenceEmpty',
    attrs: (a: Attrs) => dtypeFromOnnx(a.int('dtype', 1)) ?? (() => { throw a.error(`unknown dtype ${a.int('dtype')}`); })(),
    infer: (_ins, dt: DType) => [seqType(tensorType(dt))],
    run: (_ins, dt: DType) => [new Seq([], dt)],
  },
  {
    op: 'SequenceAt',
    infer: (ins) => [elemOf(ins[0])],
    run: (ins, _a, ctx) => {
      const s = seqAt(ins, 0, ctx), n = s.items.length;
      return [s.items[position(ctx, tensorAt(ins, 1, ctx), n, n - 1, 0)]];
    },
  },
  {
    op: 'SequenceInsert',
    infer: (ins) => [ins[0]],
    run: (ins, _a, ctx) => {
      const s = seqAt(ins, 0, ctx), t = tensorAt(ins, 1, ctx), n = s.items.length;
      checkDtype(ctx, s, t);
      const p = position(ctx, optTensor(ins, 2, ctx), n, n, n);
      return [new Seq([...s.items.slice(0, p), t, ...s.items.slice(p)], t.dtype)];
    },
  },
  {
    op: 'SequenceErase',
    infer: (ins) => [ins[0]],
    run: (ins, _a, ctx) => {
      const s = seqAt(ins, 0, ctx), n = s.items.length;
      if (n === 0) fail(ctx, 'cannot erase from an empty sequence');
      const p = position(ctx, optTensor(ins, 1, ctx), n, n - 1, n - 1);
      return [new Seq(s.items.filter((_, i) => i !== p), s.elemType ?? s.items[0].dtype)];
    },
  },
  {
    op: 'SequenceLength',
    infer: () => [tensorType('int64', [])],
    run: (ins, _a, ctx) => [new NdArray('int64', [], BigInt64Array.of(BigInt(seqAt(ins, 0, ctx).items.length)))],
  },
  {
    op: 'SplitToSequence',
    attrs: (a: Attrs) => ({ axis: a.int('axis', 0), keepdims: a.int('keepdims', 1) !== 0 }),
    infer: (ins) => [seqType(tensorType(dtypeOf(ins[0])))],
    run: (ins, at: { axis: number; keepdims: boolean }, ctx) => {
      const x = tensorAt(ins, 0, ctx), split = optTensor(ins, 1, ctx);
      const axis = normAxis(ctx, at.axis, x.shape.length), dim = x.shape[axis];
      const sizes = split ? splitSizes(ctx, split, dim) : new Array<number>(dim).fill(1);
      let start = 0;
      const items = sizes.map((len) => { const t = slab(x, axis, start, len, !!split || at.keepdims); start += len; return t; });
      return [new Seq(items, x.dtype)];
    },
  },
  {
    op: 'ConcatFromSequence',
    attrs: (a: Attrs) => ({ axis: a.int('axis'), newAxis: a.int('new_axis', 0) !== 0 }),
    infer: (ins) => [elemOf(ins[0])?.kind === 'tensor' ? tensorType(dtypeOf(elemOf(ins[0]))) : undefined],
    run: (ins, at: { axis: number; newAxis: boolean }, ctx) => {
      const { items } = seqAt(ins, 0, ctx);
      if (items.length === 0) fail(ctx, 'cannot concatenate an empty sequence');
      const rank = items[0].shape.length, axis = normAxis(ctx, at.axis, rank + (at.newAxis ? 1 : 0));
      if (at.newAxis) return [stack(items, axis, ctx)];
      for (const t of items) {
        if (t.dtype !== items[0].dtype) fail(ctx, `all tensors must share a dtype, got ${items[0].dtype} and ${t.dtype}`);
        if (t.shape.length !== rank || t.shape.some((d, i) => i !== axis && d !== items[0].shape[i])) fail(ctx, `shapes [${items[0].shape}] and [${t.shape}] differ off axis ${axis}`);
      }
      return [concat(items, axis)];
    },
  },
  {
    op: 'SequenceMap',
    attrs: (a: Attrs) => a.graph('body') ?? (() => { throw a.error(`missing required attribute 'body'`); })(),
    infer: (_ins, body: Graph) => body.outputs.map((o) => seqType(o.type)),
    run: (ins, body: Graph, ctx) => {
      const n = seqAt(ins, 0, ctx).items.length, run = ctx.subgraph('body');
      ins.forEach((v, i) => { if (v instanceof Seq && v.items.length !== n) fail(ctx, `input ${i} has ${v.items.length} items, input 0 has ${n}`); });
      const outs: NdArray[][] = body.outputs.map(() => []);
      for (let k = 0; k < n; k++) {
        run(ins.map((v) => (v instanceof Seq ? v.items[k] : v!))).forEach((v, j) => {
          outs[j].push(v instanceof NdArray ? v : fail(ctx, `body output ${j} must be a tensor`));
        });
      }
      return outs.map((items, j) => new Seq(items, items[0]?.dtype ?? dtypeOf(body.outputs[j].type)));
    },
  },
  {
    op: 'Optional',
    attrs: (a: Attrs) => a.type('type'),
    infer: (ins, t: TypeInfo | undefined) => [{ kind: 'optional', elem: ins[0] ?? t }],
    run: (ins, t: TypeInfo | undefined, ctx) => {
      const v = ins[0];
      if (v instanceof Opt) fail(ctx, 'the input cannot itself be an optional');
      if (v === undefined && !t) fail(ctx, "an empty Optional needs the 'type' attribute");
      return [new Opt(v ?? null, v instanceof Seq || t?.kind === 'sequence' ? 'sequence' : 'tensor')];
    },
  },
  {
    op: 'OptionalHasElement',
    infer: () => [tensorType('bool', [])],
    run: (ins) => [new NdArray('bool', [], Uint8Array.of(ins[0] === undefined || (ins[0] instanceof Opt && ins[0].value === null) ? 0 : 1))],
  },
  {
    op: 'OptionalGetElement',
    infer: (ins) => [ins[0]?.kind === 'optional' ? ins[0].elem : ins[0]],
    run: (ins, _a, ctx) => {
      const v = ins[0] ?? fail(ctx, 'input 0 is required but missing');
      if (!(v instanceof Opt)) return [v];
      return [v.value ?? fail(ctx, 'the optional input is empty')];
    },
  },
);

/** Chunk lengths from a split input: a scalar chunk size (last chunk may be short) or explicit lengths. */
function splitSizes(ctx: RunCtx, split: NdArray, dim: number): number[] {
  const v = split.numbers();
  if (v.some((x) => x < 0)) fail(ctx, `split values must be non-negative, got [${v}]`);
  if (split.shape.length === 0) {
    if (v[0] === 0) fail(ctx, 'a scalar split must be positive');
    return Array.from({ length: Math.ceil(dim / v[0]) }, (_, i) => Math.min(v[0], dim - i * v[0]));
  }
  if (split.shape.length !== 1) fail(ctx, `split must be a scalar or 1-D, got shape [${split.shape}]`);
  if (v.reduce((a, b) => a + b, 0) !== dim) fail(ctx, `split lengths [${v}] must sum to the axis size ${dim}`);
  return v;
}
