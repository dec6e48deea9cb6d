// MatMul (numpy batch broadcasting, 1-D operands), Gemm and MatMulInteger over the kernels in gemm.ts.
import { isBigInt, isFloat, type DType } from '../engine/dtype.js';
import type { Dim, Node, TypeInfo } from '../engine/graph.js';
import { NdArray, sizeOf } from '../engine/tensor.js';
import { binaryBroadcast, broadcastShapes, broadcastStrides, expandTo } from '../kernels/cpu/broadcast.js';
import { gemm, gemmBig, gemmInt32, rowMajor, transposed, type Mat } from '../kernels/cpu/gemm.js';
import { fail, optTensor, register, tensorAt, type RunCtx } from './registry.js';
import { broadcastInfer, dtypeOf, shapeOf, tensorType } from './infer-rules.js';

type Ins = (TypeInfo | undefined)[];
/** c += A·B for an m x k by k x n product; the output's typed array decides how results are stored. */
type Product = (m: number, n: number, k: number, a: Mat, b: Mat, c: any, cOff: number, ldc: number) => void;

/**
 * The kernel for a dtype: the float64-accumulating GEMM is exact for floats' needs and for 8/16-bit
 * integers; 32-bit integers wrap with Math.imul; 64-bit integers go through BigInt.
 */
function productFor(dtype: DType, ctx: RunCtx): Product {
  if (isBigInt(dtype)) return gemmBig as unknown as Product;
  if (dtype === 'int32' || dtype === 'uint32') return gemmInt32;
  if (isFloat(dtype) || ['int8', 'uint8', 'int16', 'uint16'].includes(dtype)) return gemm;
  fail(ctx, `input 0 (A) has dtype ${dtype}, expected a float or an 8/16/32/64-bit integer type`);
}

export interface Layout { m: number; k: number; n: number; batch: number[]; aBatch: number[]; bBatch: number[]; out: number[] }

/** numpy.matmul shapes: a 1-D A is a row vector, a 1-D B a column vector, and the added dim is dropped. */
export function matmulLayout(as: readonly number[], bs: readonly number[], ctx: { node: Node }): Layout {
  if (as.length === 0 || bs.length === 0) fail(ctx, `inputs should have rank >= 1, got [${as}] and [${bs}]`);
  const a2 = as.length === 1 ? [1, as[0]] : as, b2 = bs.length === 1 ? [bs[0], 1] : bs;
  const [m, k] = a2.slice(-2), [kb, n] = b2.slice(-2);
  if (k !== kb) fail(ctx, `input 1 (B) should have ${k} rows to match input 0 (A) [${as}], got [${bs}]`);
  const aBatch = a2.slice(0, -2), bBatch = b2.slice(0, -2);
  const batch = broadcastShapes(aBatch, bBatch) ?? fail(ctx, `batch dims of [${as}] and [${bs}] do not broadcast`);
  const out = [...batch, ...(as.length === 1 ? [] : [m]), ...(bs.length === 1 ? [] : [n])];
  return { m, k, n, batch, aBatch, bBatch, out };
}

/** Offsets (in matrices) of operand `shape` for each index of the broadcast batch `batch`, in order. */
function batchOffsets(shape: number[], batch: number[]): number[] {
  const strides = broadcastStrides(shape, batch), count = sizeOf(batch), offs = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    let rem = i, off = 0;
    for (let d = batch.length - 1; d >= 0; d--) { off += (rem % batch[d]) * strides[d]; rem = Math.floor(rem / batch[d]); }
    offs[i] = off;
  }
  return offs;
}

/** Batched A·B into a new tensor of `dtype`; a B without batch dims folds A's batch into its rows. */
function batchedProduct(a: { shape: readonly number[]; data: unknown }, b: { shape: readonly number[]; data: unknown }, dtype: DType, product: Product, ctx: RunCtx): NdArray {
  const { m, k, n, batch, aBatch, bBatch, out: outShape } = matmulLayout(a.shape, b.shape, ctx);
  const out = NdArray.zeros(dtype, outShape);
  if (sizeOf(bBatch) === 1) {
    product(m * sizeOf(batch), n, k, rowMajor(a.data, k) as Mat, rowMajor(b.data, n) as Mat, out.data, 0, n);
    return out;
  }
  const ao = batchOffsets(aBatch, batch), bo = batchOffsets(bBatch, batch);
  for (let i = 0; i < ao.length; i++) {
    product(m, n, k, rowMajor(a.data, k, ao[i] * m * k) as Mat, rowMajor(b.data, n, bo[i] * k * n) as Mat, out.data, i * m * n, n);
  }
  return out;
}

function matmulInfer(ins: Ins, dtype?: DType): TypeInfo[] {
  const as = shapeOf(ins[0]), bs = shapeOf(ins[1]), t = dtype ?? dtypeOf(ins[0]);
  if (!as || !bs || as.length === 0 || bs.length === 0) return [tensorType(t)];
  const a2 = as.length === 1 ? [1, as[0]] : as, b2 = bs.length === 1 ? [bs[0], 1] : bs;
  const batch = shapeOf(broadcastInfer()([tensorType(t, a2.slice(0, -2)), tensorType(t, b2.slice(0, -2))])[0]) ?? [];
  const rows: Dim[] = as.length === 1 ? [] : [a2[a2.length - 2]], cols: Dim[] = bs.length === 1 ? [] : [b2[b2.length - 1]];
  return [tensorType(t, [...batch, ...rows, ...cols])];
}

register({
  op: 'MatMul',
  infer: (ins) => matmulInfer(ins),
  run: (ins, _a, ctx) => {
    const a = tensorAt(ins, 0, ctx), b = tensorAt(ins, 1, ctx);
    if (a.dtype !== b.dtype) fail(ctx, `input 1 (B) should have dtype ${a.dtype} like input 0 (A), got ${b.dtype}`);
    return [batchedProduct(a, b, a.dtype, productFor(a.dtype, ctx), ctx)];
  },
});

/** x - zeroPoint as float64; a 1-D zero point of A's row count applies per row, as the spec allows. */
function shifted(x: NdArray, zp: NdArray | undefined, perRow: boolean, name: string, ctx: RunCtx): { shape: readonly number[]; data: Float64Array } {
  const data = Float64Array.from(x.data as ArrayLike<number>);
  if (!zp) return { shape: x.shape, data };
  const zs = perRow && zp.shape.length === 1 && zp.size > 1 && x.shape.length >= 2 ? [zp.size, 1] : zp.shape;
  const full = broadcastShapes(x.shape, zs);
  if (!full || full.length !== x.shape.length || full.some((d, i) => d !== x.shape[i])) fail(ctx, `${name} of shape [${zp.shape}] should broadcast to [${x.shape}]`);
  binaryBroadcast(data, x.shape, zp.data, zs, x.shape, data, (v: number, z: number) => v - z);
  return { shape: x.shape, data };
}

register({
  op: 'MatMulInteger',
  since: 10,
  infer: (ins) => matmulInfer(ins, 'int32'),
  run: (ins, _a, ctx) => {
    const a = tensorAt(ins, 0, ctx), b = tensorAt(ins, 1, ctx);
    for (const [t, name] of [[a, 'input 0 (A)'], [b, 'input 1 (B)']] as const) {
      if (t.dtype !== 'int8' && t.dtype !== 'uint8') fail(ctx, `${name} should be int8 or uint8, got ${t.dtype}`);
    }
    const sa = shifted(a, optTensor(ins, 2, ctx), true, 'input 2 (a_zero_point)', ctx);
    const sb = shifted(b, optTensor(ins, 3, ctx), false, 'input 3 (b_zero_point)', ctx);
    return [batchedProduct(sa, sb, 'int32', gemm, ctx)];
  },
});

interface GemmAttrs { alpha: number; beta: number; transA: boolean; transB: boolean }

/** Y = alpha * A'·B' + beta * C, with C unidirectionally broadcast to [M, N]. */
function runGemm(ins: Parameters<typeof tensorAt>[0], at: GemmAttrs, ctx: RunCtx): NdArray {
  const a = tensorAt(ins, 0, ctx), b = tensorAt(ins, 1, ctx), c = optTensor(ins, 2, ctx);
  if (a.shape.length !== 2) fail(ctx, `input 0 (A) should be 2-D, got [${a.shape}]`);
  if (b.shape.length !== 2) fail(ctx, `input 1 (B) should be 2-D, got [${b.shape}]`);
  if (b.dtype !== a.dtype) fail(ctx, `input 1 (B) should have dtype ${a.dtype}, got ${b.dtype}`);
  const va = rowMajor(a.data, a.shape[1]) as Mat, vb = rowMajor(b.data, b.shape[1]) as Mat;
  const [m, k] = at.transA ? [a.shape[1], a.shape[0]] : a.shape, [kb, n] = at.transB ? [b.shape[1], b.shape[0]] : b.shape;
  if (k !== kb) fail(ctx, `input 1 (B) [${b.shape}] should have K = ${k} to match input 0 (A) [${a.shape}] (transB=${+at.transB})`);
  if (isBigInt(a.dtype) && !(Number.isInteger(at.alpha) && Number.isInteger(at.beta))) fail(ctx, `${a.dtype} Gemm needs integer alpha and beta, got ${at.alpha} and ${at.beta}`);
  const out = NdArray.zeros(a.dtype, [m, n]), y = out.data as any;
  if (c && at.beta !== 0) {
    const s = broadcastShapes(c.shape, [m, n]);
    if (!s || s.length !== 2 || s[0] !== m || s[1] !== n) fail(ctx, `input 2 (C) of shape [${c.shape}] should broadcast to [${m},${n}]`);
    expandTo(c.data, c.shape, [m, n], y);
    if (at.beta !== 1) for (let i = 0; i < y.length; i++) y[i] = isBigInt(a.dtype) ? y[i] * BigInt(at.beta) : y[i] * at.beta;
  }
  const ta = at.transA ? transposed(va) : va, tb = at.transB ? transposed(vb) : vb;
  const product = productFor(a.dtype, ctx);
  if (product === gemm) { gemm(m, n, k, ta, tb, y, 0, n, at.alpha); return out; }
  // Integer types: an exact product first, then the scale (alpha is an integer in practice).
  const p = NdArray.zeros(a.dtype, [m, n]).data as any;
  product(m, n, k, ta, tb, p, 0, n);
  const alpha: any = isBigInt(a.dtype) ? BigInt(at.alpha) : at.alpha;
  for (let i = 0; i < y.length; i++) y[i] += alpha * p[i];
  return out;
}

register({
  op: 'Gemm',
  attrs: (a): GemmAttrs => ({ alpha: a.float('alpha', 1), beta: a.float('beta', 1), transA: a.int('transA', 0) !== 0, transB: a.int('transB', 0) !== 0 }),
  infer: (ins, at: GemmAttrs) => {
    const as = shapeOf(ins[0]), bs = shapeOf(ins[1]), t = dtypeOf(ins[0]);
    if (as?.length !== 2 || bs?.length !== 2) return [tensorType(t)];
    return [tensorType(t, [at.transA ? as[1] : as[0], at.transB ? bs[0] : bs[1]])];
  },
  run: (ins, at: GemmAttrs, ctx) => [runGemm(ins, at, ctx)],
});
