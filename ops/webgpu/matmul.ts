// GPU lowerings of MatMul (numpy batch broadcasting, 1-D operands) and Gemm (transA/transB, alpha, beta,
// broadcast C) onto the GEMM programs of kernels/webgpu/matmul.ts.
import type { DType } from '../../engine/dtype.js';
import { sizeOf } from '../../engine/tensor.js';
import { broadcastShapes } from '../../kernels/cpu/broadcast.js';
import { matmulProgram, type GemmDims } from '../../kernels/webgpu/matmul.js';
import { broadcastStrides } from '../../kernels/webgpu/wgsl.js';
import { matmulLayout as cpuLayout } from '../matmul.js';
import { fail, gpuAt, registerGpu, type GpuCtx } from '../registry.js';

// int32/uint32 products wrap as the CPU's Math.imul GEMM does; int64 needs 64-bit products and stays on the CPU.
const GEMM_DTYPES = new Set<DType | undefined>(['float32', 'float16', 'int32', 'uint32']);
const INTS = new Set<DType | undefined>(['int32', 'uint32']);
const rejectDtypes = (d: (DType | undefined)[]) => {
  const bad = d.find((x) => x && !GEMM_DTYPES.has(x));
  return bad ? `dtype ${bad} not supported by the GPU GEMM (float32, float16, int32, uint32)` : undefined;
};

interface Layout { dims: GemmDims; batchShape: number[]; aStr: number[]; bStr: number[]; out: number[] }

/** numpy.matmul shapes (ops/matmul.ts), laid out for the GPU GEMM. */
function matmulLayout(as: readonly number[], bs: readonly number[], ctx: GpuCtx): Layout {
  const { m, k, n, batch, aBatch, bBatch, out } = cpuLayout(as, bs, ctx);
  // A shared B (no batch of its own) lets A's batch fold into its rows: one tall product fills tiles better.
  if (sizeOf(bBatch) === 1) return { dims: { batch: 1, m: m * sizeOf(batch), n, k }, batchShape: [], aStr: [], bStr: [], out };
  return { dims: { batch: sizeOf(batch), m, n, k }, batchShape: batch, aStr: broadcastStrides(aBatch, batch), bStr: broadcastStrides(bBatch, batch), out };
}

registerGpu({
  op: 'MatMul',
  reject: rejectDtypes,
  run: (ins, _a, ctx) => {
    const a = gpuAt(ins, 0, ctx), b = gpuAt(ins, 1, ctx);
    if (a.dtype !== b.dtype) fail(ctx, `input 1 (B) should have dtype ${a.dtype} like input 0 (A), got ${b.dtype}`);
    const { dims, batchShape, aStr, bStr, out } = matmulLayout(a.shape, b.shape, ctx);
    return ctx.gpu.run(matmulProgram(ctx.gpu.ctx, {
      a: { x: a, strides: [dims.k, 1], batchStrides: aStr }, b: { x: b, strides: [dims.n, 1], batchStrides: bStr }, dims, batchShape,
    }, out));
  },
});

interface GemmAttrs { alpha: number; beta: number; transA: boolean; transB: boolean }

registerGpu({
  op: 'Gemm',
  // Integer Gemm scales in integers, as the CPU does: a fractional alpha or beta has no exact meaning there.
  reject: (d, at: GemmAttrs) => rejectDtypes(d) ?? (INTS.has(d[0]) && !(Number.isInteger(at.alpha) && Number.isInteger(at.beta))
    ? `integer Gemm with fractional alpha ${at.alpha} or beta ${at.beta}` : undefined),
  run: (ins, at: GemmAttrs, ctx) => {
    const a = gpuAt(ins, 0, ctx), b = gpuAt(ins, 1, ctx), c = ins[2] === undefined ? undefined : gpuAt(ins, 2, ctx);
    if (a.shape.length !== 2) fail(ctx, `input 0 (A) should be 2-D, got [${a.shape}]`);
    if (b.shape.length !== 2) fail(ctx, `input 1 (B) should be 2-D, got [${b.shape}]`);
    if (b.dtype !== a.dtype) fail(ctx, `input 1 (B) should have dtype ${a.dtype}, got ${b.dtype}`);
    const [m, k] = at.transA ? [a.shape[1], a.shape[0]] : a.shape, [kb, n] = at.transB ? [b.shape[1], b.shape[0]] : b.shape;
    if (k !== kb) fail(ctx, `input 1 (B) [${b.shape}] should have K = ${k} to match input 0 (A) [${a.shape}] (transB=${+at.transB})`);
    const bias = c && at.beta !== 0 ? c : undefined;
    if (bias) {
      const s = broadcastShapes(bias.shape, [m, n]);
      if (!s || s.length !== 2 || s[0] !== m || s[1] !== n) fail(ctx, `input 2 (C) of shape [${bias.shape}] should broadcast to [${m},${n}]`);
      if (bias.dtype !== a.dtype) fail(ctx, `input 2 (C) should have dtype ${a.dtype}, got ${bias.dtype}`);
    }
    const [cr, cc] = bias ? broadcastStrides(bias.shape, [m, n]) : [0, 0];
    return ctx.gpu.run(matmulProgram(ctx.gpu.ctx, {
      // A transposed input is the same buffer read with its two strides swapped.
      a: { x: a, strides: at.transA ? [1, m] : [k, 1], batchStrides: [] },
      b: { x: b, strides: at.transB ? [1, k] : [n, 1], batchStrides: [] },
      dims: { batch: 1, m, n, k }, batchShape: [], biasStrides: [0, cr, cc],
      epilogue: { alpha: at.alpha, beta: at.beta, bias },
    }, [m, n]));
  },
});
