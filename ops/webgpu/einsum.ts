// GPU lowering of Einsum. Operands stay strided views of their buffers: a repeated label is one axis whose
// stride is the sum of its dims' strides, and a transpose only reorders strides. Operands are contracted
// left to right as the CPU backend does; each contraction is one batched GEMM (kernels/webgpu/matmul.ts)
// read through strides, with labels grouped into its M, N and K dims. A view that cannot be read that
// way (labels to sum away within one operand, or a group whose strides do not chain) is first
// materialised by the strided-sum kernel, which also arranges the final result.
import type { DType } from '../../engine/dtype.js';
import { stridesOf } from '../../kernels/cpu/broadcast.js';
import { stridedSum } from '../../kernels/webgpu/einsum.js';
import { matmulProgram } from '../../kernels/webgpu/matmul.js';
import type { GpuArray } from '../../kernels/webgpu/runner.js';
import { expand, type Equation } from '../einsum.js';
import { fail, gpuAt, registerGpu, type GpuCtx } from '../registry.js';

const DTYPES = new Set<DType | undefined>(['float32', 'float16', 'int32', 'uint32']);

/** An operand: one axis per distinct label, read at `strides` from `x`. `own`: a temporary we release. */
interface View { x: GpuArray; labels: number[]; dims: number[]; strides: number[]; own: boolean }

/** Label sizes across operands; a size-1 axis whose label is larger elsewhere broadcasts: it is dropped. */
function labelSizes(views: View[], ctx: GpuCtx): Map<number, number> {
  const sizes = new Map<number, number>();
  views.forEach((v, i) => v.labels.forEach((l, k) => {
    const d = v.dims[k], s = sizes.get(l) ?? 1;
    if (d !== 1 && s !== 1 && d !== s) fail(ctx, `input ${i} has size ${d} for label '${l < 0 ? '...' : String.fromCharCode(l)}', elsewhere ${s}`);
    sizes.set(l, d === 1 ? s : d);
  }));
  for (const v of views) {
    const keep = v.labels.map((l, k) => v.dims[k] !== 1 || sizes.get(l) === 1);
    for (const key of ['labels', 'dims', 'strides'] as const) v[key] = v[key].filter((_, k) => keep[k]);
  }
  return sizes;
}

/** Repeated labels become one axis along the diagonal: their strides add up. */
function diagonal(v: View): View {
  const labels = [...new Set(v.labels)];
  const strides = labels.map((l) => v.labels.reduce((s, m, k) => (m === l ? s + v.strides[k] : s), 0));
  return { ...v, labels, dims: labels.map((l) => v.dims[v.labels.indexOf(l)]), strides };
}

const strideOf = (v: View, l: number) => v.strides[v.labels.indexOf(l)];

/** Materialises `v` contiguously as `order` (labels it keeps), summing every other label of v. */
function materialise(v: View, order: number[], ctx: GpuCtx): View {
  const sum = v.labels.filter((l) => !order.includes(l)), dimOf = (l: number) => v.dims[v.labels.indexOf(l)];
  const dims = order.map(dimOf);
  const [y] = ctx.gpu.run(stridedSum(v.x, { outShape: dims, outStrides: order.map((l) => strideOf(v, l)), sumShape: sum.map(dimOf), sumStrides: sum.map((l) => strideOf(v, l)) }));
  release(v, ctx);
  return { x: y, labels: order, dims, strides: stridesOf(dims), own: true };
}

function release(v: View, ctx: GpuCtx) { if (v.own) ctx.gpu.release(v.x); }

/** The stride of `group` read as one flat dim (row-major over its labels), or undefined when it is not. */
function chained(v: View, group: number[], size: (l: number) => number): number | undefined {
  if (!group.length) return 0;
  for (let i = 0; i + 1 < group.length; i++) if (strideOf(v, group[i]) !== strideOf(v, group[i + 1]) * size(group[i + 1])) return undefined;
  return strideOf(v, group[group.length - 1]);
}

/** Labels ordered by falling stride in `v`: the order in which they most likely chain. */
const byStride = (v: View, ls: number[]) => [...ls].sort((p, q) => strideOf(v, q) - strideOf(v, p));

/** a·b over their shared labels: those still needed later become batch dims, the rest are summed. */
function contract(a: View, b: View, later: Set<number>, size: (l: number) => number, ctx: GpuCtx): View {
  // Labels of one operand that nothing else needs are summed within it first.
  const alone = (v: View, w: View) => v.labels.filter((l) => !w.labels.includes(l) && !later.has(l));
  if (alone(a, b).length) a = materialise(a, a.labels.filter((l) => !alone(a, b).includes(l)), ctx);
  if (alone(b, a).length) b = materialise(b, b.labels.filter((l) => !alone(b, a).includes(l)), ctx);
  const batch = a.labels.filter((l) => b.labels.includes(l) && later.has(l)), k = byStride(a, a.labels.filter((l) => b.labels.includes(l) && !later.has(l)));
  const m = byStride(a, a.labels.filter((l) => !b.labels.includes(l))), n = byStride(b, b.labels.filter((l) => !a.labels.includes(l)));
  let [am, ak] = [chained(a, m, size), chained(a, k, size)];
  if (am === undefined || ak === undefined) { a = materialise(a, [...batch, ...m, ...k], ctx); [am, ak] = [chained(a, m, size)!, chained(a, k, size)!]; }
  let [bk, bn] = [chained(b, k, size), chained(b, n, size)];
  if (bk === undefined || bn === undefined) { b = materialise(b, [...batch, ...k, ...n], ctx); [bk, bn] = [chained(b, k, size)!, chained(b, n, size)!]; }
  const prod = (ls: number[]) => ls.reduce((p, l) => p * size(l), 1), batchShape = batch.map(size);
  const labels = [...batch, ...m, ...n], dims = labels.map(size);
  const [y] = ctx.gpu.run(matmulProgram(ctx.gpu.ctx, {
    a: { x: a.x, strides: [am, ak], batchStrides: batch.map((l) => strideOf(a, l)) },
    b: { x: b.x, strides: [bk, bn], batchStrides: batch.map((l) => strideOf(b, l)) },
    dims: { batch: prod(batch), m: prod(m), n: prod(n), k: prod(k) }, batchShape,
  }, [...batchShape, prod(m), prod(n)]));
  release(a, ctx); release(b, ctx);
  return { x: y, labels, dims, strides: stridesOf(dims), own: true };
}

registerGpu({
  op: 'Einsum', since: 12,
  reject: (d) => { const bad = d.find((x) => x && !DTYPES.has(x)); return bad ? `dtype ${bad} not supported by the GPU GEMM` : undefined; },
  run: (ins, eq: Equation, ctx) => {
    const xs = ins.map((_, i) => gpuAt(ins, i, ctx));
    xs.forEach((x, i) => { if (x.dtype !== xs[0].dtype) fail(ctx, `input ${i} has dtype ${x.dtype}, expected ${xs[0].dtype} like input 0`); });
    const { ins: terms, out } = expand(eq, xs.map((x) => x.shape.length), ctx);
    let views: View[] = xs.map((x, i) => ({ x, labels: terms[i], dims: [...x.shape], strides: stridesOf(x.shape), own: false }));
    const sizes = labelSizes(views, ctx), size = (l: number) => sizes.get(l)!;
    views = views.map(diagonal);
    let acc = views[0];
    for (let i = 1; i < views.length; i++) acc = contract(acc, views[i], new Set([...out, ...views.slice(i + 1).flatMap((v) => v.labels)]), size, ctx);
    const outDims = out.map(size);
    // A contraction that already produced the output's layout is the result as it stands.
    if (acc.own && acc.labels.length === out.length && acc.labels.every((l, i) => l === out[i])) {
      const y = acc.x.view(outDims);
      release(acc, ctx);
      return [y];
    }
    const sum = acc.labels.filter((l) => !out.includes(l));
    const [y] = ctx.gpu.run(stridedSum(acc.x, {
      outShape: outDims, outStrides: out.map((l) => (acc.labels.includes(l) ? strideOf(acc, l) : 0)),
      sumShape: sum.map(size), sumStrides: sum.map((l) => strideOf(acc, l)),
    }));
    release(acc, ctx);
    return [y];
  },
});
