// GPU lowerings of MatMul (numpy batch broadcasting, 1-D operands) and Gemm (transA/transB, alpha, beta,
// broadcast C) onto the GEMM programs of kernels/webgpu/matmul.ts. The runners are shared with the fused
// ops (fused.ts): operands are strided views, so a permuted operand is read in place, and the product
// takes a scale (alpha), an addend, an activation and a post-activation affine in its epilogue.
import type { DType } from '../../engine/dtype.js';
import { sizeOf } from '../../engine/tensor.js';
import { broadcastShapes, stridesOf } from '../../kernels/cpu/broadcast.js';
import { elementwiseEpilogue, type Activation, type PostAffine } from '../../kernels/webgpu/activation.js';
import { matmulProgram, type Epilogue, type MatmulSpec } from '../../kernels/webgpu/matmul.js';
import type { GpuArray, Program } from '../../kernels/webgpu/runner.js';
import { broadcastStrides } from '../../kernels/webgpu/wgsl.js';
import { matmulLayout } from '../fused.js';
import { fail, gpuAt, registerGpu, type GpuCtx, type GpuOpDef } from '../registry.js';

// int32/uint32 products wrap as the CPU's Math.imul GEMM does; int64 needs 64-bit products and stays on the CPU.
const GEMM_DTYPES = new Set<DType | undefined>(['float32', 'float16', 'int32', 'uint32']);
const INTS = new Set<DType | undefined>(['int32', 'uint32']);
export const rejectGemmDtypes = (d: (DType | undefined)[]) => {
  const bad = d.find((x) => x && !GEMM_DTYPES.has(x));
  return bad ? `dtype ${bad} not supported by the GPU GEMM (float32, float16, int32, uint32)` : undefined;
};

/** An operand as the product reads it: logical shape and the element strides of each logical dim. */
export interface StridedView { x: GpuArray; shape: number[]; strides: number[]; permuted: boolean }

/** `x` read through `perm` (output dim i is input dim perm[i]); no copy. */
export function viewOf(x: GpuArray, perm: readonly number[] | undefined, what: string, ctx: GpuCtx): StridedView {
  const strides = stridesOf(x.shape);
  if (!perm) return { x, shape: [...x.shape], strides, permuted: false };
  if (perm.length !== x.shape.length || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) fail(ctx, `${what} [${perm}] is not a permutation of the ${x.shape.length} dims of [${x.shape}]`);
  return { x, shape: perm.map((p) => x.shape[p]), strides: perm.map((p) => strides[p]), permuted: perm.some((p, i) => p !== i) };
}

/** An addend of the product: element strides along the batch dims, rows and columns of the output. */
interface Addend { x: GpuArray; batch: number[]; row: number; col: number }

/** What FusedMatMul does after the product: act(alpha * A·B + z) * s + t. */
export interface MatMulPost { alpha?: number; activation?: Activation; affine?: PostAffine }

/** numpy.matmul of two strided views, laid out for the GPU GEMM, with the addend `z` (if any) in the epilogue. */
export function stridedMatMul(A: StridedView, B: StridedView, ctx: GpuCtx, z?: GpuArray, post: MatMulPost = {}): GpuArray {
  if (A.x.dtype !== B.x.dtype) fail(ctx, `input 1 (B) should have dtype ${A.x.dtype} like input 0 (A), got ${B.x.dtype}`);
  const { a2, b2, m, k, n, batch, out } = matmulLayout(A, B, ctx);
  if (z && z.dtype !== A.x.dtype) fail(ctx, `input 2 (the addend) should have dtype ${A.x.dtype}, got ${z.dtype}`);
  const fits = z && sameShape(broadcastShapes(out, z.shape), out);
  const add = fits ? addendOf(z, out, batch.length, A.shape.length === 1, B.shape.length === 1) : undefined;
  const spec = gemmSpec({ ...a2, x: A.x }, { ...b2, x: B.x }, { m, n, k }, batch, A.permuted, add);
  const inProgram = fits || !z;
  spec.epilogue = { alpha: post.alpha, bias: add?.x, ...(inProgram ? { activation: post.activation, affine: post.affine } : {}) };
  const [y] = runTagged(ctx, matmulProgram(ctx.gpu.ctx, spec, out));
  // An addend that grows the product's shape: added (with the activation and affine) by a broadcasting pass.
  return inProgram ? y : addThenActivate(y, z, post, ctx);
}

const sameShape = (s: readonly number[] | null | undefined, t: readonly number[]) => !!s && s.length === t.length && s.every((d, i) => d === t[i]);

function addendOf(z: GpuArray, out: number[], rank: number, rowVector: boolean, colVector: boolean): Addend {
  const zs = broadcastStrides(z.shape, out);
  return { x: z, batch: zs.slice(0, rank), row: rowVector ? 0 : zs[rank], col: colVector ? 0 : zs[zs.length - 1] };
}

type Mat = { x: GpuArray; shape: number[]; strides: number[] };

/** Element strides of the operand over the output batch (0 where it broadcasts). */
function batchStrides(op: Mat, batch: number[]): number[] {
  const lead = batch.length - (op.shape.length - 2);
  return batch.map((_, i) => (i < lead || op.shape[i - lead] === 1 ? 0 : op.strides[i - lead]));
}

function gemmSpec(a: Mat, b: Mat, d: { m: number; n: number; k: number }, batch: number[], aPermuted: boolean, add: Addend | undefined): MatmulSpec {
  const as = a.strides.slice(-2) as [number, number], bs = b.strides.slice(-2) as [number, number];
  const aB = batchStrides(a, batch), bB = batchStrides(b, batch);
  // A shared B and an A stored as it is read (rows of consecutive batch items follow one another) let
  // A's batch fold into its rows: one tall product fills tiles better. The addend must then not vary by row.
  const fold = bB.every((s) => s === 0) && !aPermuted && as[1] === 1 && as[0] === d.k && aB.every((s, i) => batch[i] === 1 || s === d.m * d.k * sizeOf(batch.slice(i + 1)))
    && (!add || (add.row === 0 && add.batch.every((s) => s === 0)));
  if (fold) {
    return {
      a: { x: a.x, strides: as, batchStrides: [] }, b: { x: b.x, strides: bs, batchStrides: [] },
      dims: { batch: 1, m: d.m * sizeOf(batch), n: d.n, k: d.k }, batchShape: [], biasStrides: [0, 0, add?.col ?? 0],
    };
  }
  return {
    a: { x: a.x, strides: as, batchStrides: aB }, b: { x: b.x, strides: bs, batchStrides: bB },
    dims: { batch: sizeOf(batch), m: d.m, n: d.n, k: d.k }, batchShape: batch,
    biasStrides: [0, add?.row ?? 0, add?.col ?? 0], biasBatchStrides: add?.batch,
  };
}

/** y + z broadcast, then the activation and affine, as one elementwise pass; releases y. */
function addThenActivate(y: GpuArray, z: GpuArray, post: MatMulPost, ctx: GpuCtx): GpuArray {
  const out = broadcastShapes(y.shape, z.shape) ?? fail(ctx, `the product [${y.shape}] and the addend [${z.shape}] do not broadcast`);
  const [r] = ctx.gpu.run(elementwiseEpilogue([y, z], out, post.activation, post.affine));
  ctx.gpu.release(y);
  return r;
}

registerGpu({
  op: 'MatMul',
  reject: rejectGemmDtypes,
  run: (ins, _a, ctx) => {
    const a = gpuAt(ins, 0, ctx), b = gpuAt(ins, 1, ctx);
    return [stridedMatMul(viewOf(a, undefined, 'A', ctx), viewOf(b, undefined, 'B', ctx), ctx)];
  },
});

/** Runs a GEMM-family program with its variant in the profile label (`op:variant|node`), so
 *  `run --profile` and traces show which variant each product used. */
export function runTagged(ctx: GpuCtx, p: Program): GpuArray[] {
  const label = ctx.gpu.label, bar = label.indexOf('|');
  if (bar >= 0 && !label.slice(0, bar).includes(':')) ctx.gpu.label = `${label.slice(0, bar)}:${p.name}${label.slice(bar)}`;
  return ctx.gpu.run(p);
}

export interface GemmAttrs { alpha: number; beta: number; transA: boolean; transB: boolean }

/** Gemm: act(alpha * A'B' + beta * C) * s + t. */
export function runGemm(ins: Parameters<GpuOpDef['run']>[0], at: GemmAttrs, ctx: GpuCtx, activation?: Activation, affine?: PostAffine): GpuArray[] {
  const a = gpuAt(ins, 0, ctx), b = gpuAt(ins, 1, ctx), c = ins[2] === undefined ? undefined : gpuAt(ins, 2, ctx);
  if (a.shape.length !== 2) fail(ctx, `input 0 (A) should be 2-D, got [${a.shape}]`);
  if (b.shape.length !== 2) fail(ctx, `input 1 (B) should be 2-D, got [${b.shape}]`);
  if (b.dtype !== a.dtype) fail(ctx, `input 1 (B) should have dtype ${a.dtype}, got ${b.dtype}`);
  const [m, k] = at.transA ? [a.shape[1], a.shape[0]] : a.shape, [kb, n] = at.transB ? [b.shape[1], b.shape[0]] : b.shape;
  if (k !== kb) fail(ctx, `input 1 (B) [${b.shape}] should have K = ${k} to match input 0 (A) [${a.shape}] (transB=${+at.transB})`);
  const bias = c && at.beta !== 0 ? c : undefined;
  if (bias) {
    if (!sameShape(broadcastShapes(bias.shape, [m, n]), [m, n])) fail(ctx, `input 2 (C) of shape [${bias.shape}] should broadcast to [${m},${n}]`);
    if (bias.dtype !== a.dtype) fail(ctx, `input 2 (C) should have dtype ${a.dtype}, got ${bias.dtype}`);
  }
  const [cr, cc] = bias ? broadcastStrides(bias.shape, [m, n]) : [0, 0];
  const ep: Epilogue = { alpha: at.alpha, beta: at.beta, bias, activation, affine };
  const spec: MatmulSpec = {
    // A transposed input is the same buffer read with its two strides swapped.
    a: { x: a, strides: at.transA ? [1, m] : [k, 1], batchStrides: [] },
    b: { x: b, strides: at.transB ? [1, k] : [n, 1], batchStrides: [] },
    dims: { batch: 1, m, n, k }, batchShape: [], biasStrides: [0, cr, cc], epilogue: ep,
  };
  return runTagged(ctx, matmulProgram(ctx.gpu.ctx, spec, [m, n]));
}

registerGpu({
  op: 'Gemm',
  // Integer Gemm scales in integers, as the CPU does: a fractional alpha or beta has no exact meaning there.
  reject: (d, at: GemmAttrs) => rejectGemmDtypes(d) ?? (INTS.has(d[0]) && !(Number.isInteger(at.alpha) && Number.isInteger(at.beta))
    ? `integer Gemm with fractional alpha ${at.alpha} or beta ${at.beta}` : undefined),
  run: (ins, at: GemmAttrs, ctx) => runGemm(ins, at, ctx),
});
