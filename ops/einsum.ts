// Einsum. The equation is parsed once; a run takes the diagonal of labels repeated within an operand,
// sums labels that only one operand uses, then contracts operands left to right, each step one batched
// matrix product between transposed operands. Arithmetic is float64 (integers exact below 2^53).
import { isBigInt, isFloat, isInteger } from '../engine/dtype.js';
import type { Dim, Node } from '../engine/graph.js';
import { NdArray } from '../engine/tensor.js';
import { stridesOf } from '../kernels/cpu/broadcast.js';
import { batchedMatMul, stridedCopy } from '../kernels/cpu/einsum.js';
import { reduceInto, reducePlan } from '../kernels/cpu/reduce.js';
import { dtypeOf, shapeOf, tensorType } from './infer-rules.js';
import { fail, register, tensorAt, type Attrs } from './registry.js';

/** A term's labels: letters as char codes, ELLIPSIS where '...' stands. */
const ELLIPSIS = -1;
export interface Equation { terms: number[][]; output?: number[] }

function parseTerm(a: Attrs, s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s.startsWith('...', i)) { out.push(ELLIPSIS); i += 2; } else if (/[a-zA-Z]/.test(s[i])) out.push(s.charCodeAt(i));
    else throw a.error(`equation term '${s}' has '${s[i]}': only letters and '...' are allowed`);
  }
  if (out.filter((l) => l === ELLIPSIS).length > 1) throw a.error(`equation term '${s}' has more than one '...'`);
  return out;
}

function parseEquation(a: Attrs): Equation {
  const eq = a.string('equation').replace(/ /g, ''), [lhs, rhs, extra] = eq.split('->');
  if (extra !== undefined) throw a.error(`equation '${eq}' has more than one '->'`);
  const output = rhs === undefined ? undefined : parseTerm(a, rhs);
  if (output && new Set(output).size !== output.length) throw a.error(`equation '${eq}' repeats an output label`);
  return { terms: lhs.split(',').map((t) => parseTerm(a, t)), output };
}

/**
 * Concrete labels per input and for the output, given input ranks. Ellipsis dims get labels -e..-1,
 * right-aligned so shorter ellipses broadcast against longer ones.
 */
export function expand(eq: Equation, ranks: number[], ctx: { node: Node }): { ins: number[][]; out: number[] } {
  if (ranks.length !== eq.terms.length) fail(ctx, `equation has ${eq.terms.length} operand terms, got ${ranks.length} inputs`);
  const ellipsisRank = (t: number[], r: number) => (t.includes(ELLIPSIS) ? r - t.length + 1 : 0);
  const ins = eq.terms.map((t, i) => {
    const e = ellipsisRank(t, ranks[i]);
    if (e < 0 || (!t.includes(ELLIPSIS) && t.length !== ranks[i])) fail(ctx, `input ${i} has rank ${ranks[i]}, but its term has ${t.length - (t.includes(ELLIPSIS) ? 1 : 0)} labels${t.includes(ELLIPSIS) ? ' plus ...' : ''}`);
    return t.flatMap((l) => (l === ELLIPSIS ? Array.from({ length: e }, (_, k) => k - e) : [l]));
  });
  const maxE = Math.max(0, ...eq.terms.map((t, i) => ellipsisRank(t, ranks[i])));
  const ell = Array.from({ length: maxE }, (_, k) => k - maxE);
  const used = ins.flat();
  const out = eq.output
    ? eq.output.flatMap((l) => (l === ELLIPSIS ? ell : [l]))
    : [...ell, ...[...new Set(used)].filter((l) => l >= 0 && used.indexOf(l) === used.lastIndexOf(l)).sort((x, y) => x - y)];
  for (const l of out) if (!used.includes(l)) fail(ctx, `output label '${String.fromCharCode(l)}' does not appear in any input`);
  return { ins, out };
}

interface Operand { data: Float64Array; dims: number[]; labels: number[] }

/** Copies `o` with its axes in `order` (labels). */
function arrange(o: Operand, order: number[]): Operand {
  if (order.every((l, i) => o.labels[i] === l)) return o;
  const st = stridesOf(o.dims), perm = order.map((l) => o.labels.indexOf(l));
  return { data: stridedCopy(o.data, perm.map((p) => o.dims[p]), perm.map((p) => st[p])), dims: perm.map((p) => o.dims[p]), labels: order };
}

/** One axis per label: a repeated label walks the diagonal (its strides add up). */
function diagonals(o: Operand): Operand {
  const labels = [...new Set(o.labels)];
  if (labels.length === o.labels.length) return o;
  const st = stridesOf(o.dims), strides = labels.map(() => 0);
  o.labels.forEach((l, i) => { strides[labels.indexOf(l)] += st[i]; });
  const dims = labels.map((l) => o.dims[o.labels.indexOf(l)]);
  return { data: stridedCopy(o.data, dims, strides), dims, labels };
}

function sumOut(o: Operand, drop: number[]): Operand {
  const axes = o.labels.flatMap((l, i) => (drop.includes(l) ? [i] : []));
  if (!axes.length) return o;
  const keep = o.labels.flatMap((l, i) => (drop.includes(l) ? [] : [i]));
  const data = new Float64Array(keep.reduce((p, i) => p * o.dims[i], 1));
  reduceInto(o.data, reducePlan(o.dims, axes), { init: 0, step: (acc: number, v: number) => acc + v }, data);
  return { data, dims: keep.map((i) => o.dims[i]), labels: keep.map((i) => o.labels[i]) };
}

/** Contracts labels both share and nothing later needs; shared labels still needed become batch axes. */
function contract(a: Operand, b: Operand, later: Set<number>, size: (l: number) => number): Operand {
  const inB = (l: number) => b.labels.includes(l), prod = (ls: number[]) => ls.reduce((p, l) => p * size(l), 1);
  const batch = a.labels.filter((l) => inB(l) && later.has(l)), summed = a.labels.filter((l) => inB(l) && !later.has(l));
  const aOnly = a.labels.filter((l) => !inB(l)), bOnly = b.labels.filter((l) => !a.labels.includes(l));
  const x = arrange(a, [...batch, ...aOnly, ...summed]), y = arrange(b, [...batch, ...summed, ...bOnly]);
  const labels = [...batch, ...aOnly, ...bOnly];
  return { data: batchedMatMul(x.data, y.data, prod(batch), prod(aOnly), prod(summed), prod(bOnly)), dims: labels.map(size), labels };
}

/** Label sizes; a size-1 axis whose label is larger elsewhere broadcasts, so it is dropped from its operand. */
function labelSizes(ops: Operand[], ctx: { node: Node }): Map<number, number> {
  const sizes = new Map<number, number>();
  ops.forEach((o, i) => o.labels.forEach((l, k) => {
    const d = o.dims[k], s = sizes.get(l) ?? 1;
    if (d !== 1 && s !== 1 && d !== s) fail(ctx, `input ${i} has size ${d} for label '${l < 0 ? '...' : String.fromCharCode(l)}', elsewhere ${s}`);
    sizes.set(l, d === 1 ? s : d);
  }));
  for (const o of ops) {
    const keep = o.labels.map((l, k) => o.dims[k] !== 1 || sizes.get(l) === 1);
    o.labels = o.labels.filter((_, k) => keep[k]);
    o.dims = o.dims.filter((_, k) => keep[k]);
  }
  return sizes;
}

function einsum(xs: NdArray[], eq: Equation, ctx: { node: Node }): NdArray {
  const { ins, out } = expand(eq, xs.map((x) => x.shape.length), ctx);
  let ops: Operand[] = xs.map((x, i) => ({ data: Float64Array.from(x.data as ArrayLike<number | bigint>, Number), dims: [...x.shape], labels: ins[i] }));
  const sizes = labelSizes(ops, ctx), size = (l: number) => sizes.get(l)!;
  const count = (l: number) => ops.filter((o) => o.labels.includes(l)).length;
  ops = ops.map(diagonals);
  ops = ops.map((o) => sumOut(o, o.labels.filter((l) => count(l) === 1 && !out.includes(l))));
  let acc = ops[0];
  for (let i = 1; i < ops.length; i++) acc = contract(acc, ops[i], new Set([...out, ...ops.slice(i + 1).flatMap((o) => o.labels)]), size);
  acc = arrange(sumOut(acc, acc.labels.filter((l) => !out.includes(l))), out);
  const res = NdArray.zeros(xs[0].dtype, acc.dims), d = res.data as any;
  for (let i = 0; i < acc.data.length; i++) d[i] = isBigInt(res.dtype) ? BigInt(Math.trunc(acc.data[i])) : acc.data[i];
  return res;
}

register({
  op: 'Einsum', since: 12,
  attrs: parseEquation,
  infer: (types, eq, ctx) => {
    const shapes = types.map(shapeOf);
    if (shapes.some((s) => !s)) return [tensorType(dtypeOf(types[0]))];
    const { ins, out } = expand(eq, shapes.map((s) => s!.length), ctx);
    const dim = (l: number): Dim => {
      const ds = ins.flatMap((t, i) => t.flatMap((m, k) => (m === l ? [shapes[i]![k]] : [])));
      return ds.find((d) => d !== 1) ?? 1;
    };
    return [tensorType(dtypeOf(types[0]), out.map(dim))];
  },
  run: (ins, eq, ctx) => {
    const xs = ins.map((_, i) => tensorAt(ins, i, ctx));
    xs.forEach((x, i) => {
      if (x.dtype !== xs[0].dtype) fail(ctx, `input ${i} has dtype ${x.dtype}, expected ${xs[0].dtype} like input 0`);
      if (!isFloat(x.dtype) && !isInteger(x.dtype)) fail(ctx, `input ${i} has dtype ${x.dtype}, expected a numeric tensor`);
    });
    return [einsum(xs, eq, ctx)];
  },
});
