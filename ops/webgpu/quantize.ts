// GPU lowerings of linear quantization: QuantizeLinear and DequantizeLinear (per-tensor, per-axis, blocked;
// to and from the 8-, 16- and sub-byte integers, float8 stays on the CPU), DynamicQuantizeLinear, and the
// integer products MatMulInteger and QLinearMatMul. The checks and parameter layouts mirror ops/quantize.ts
// and ops/matmul.ts; anything the GPU path does not take is left to the CPU by `reject`, which then
// raises the CPU's own error for bad input.
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { binaryBroadcast, broadcastShapes, broadcastStrides } from '../../kernels/cpu/broadcast.js';
import { bf16ToNumber, f16ToNumber, numberToBf16, numberToF16 } from '../../kernels/cpu/minifloat.js';
import * as Q from '../../kernels/cpu/quantize.js';
import { dequantizeLinear, dynamicApply, qgemm, quantizeLinear, rangeParams, rangePartials, type Param } from '../../kernels/webgpu/quantize.js';
import type { GpuArray } from '../../kernels/webgpu/runner.js';
import { fail, gpuAt, registerGpu, type GpuCtx } from '../registry.js';
import { normAxis } from '../shape.js';

type Ins = (GpuArray | NdArray | undefined)[];
interface QAttrs { opset: number; axis: number; block: number; saturate: boolean; outputDtype?: DType; precision?: DType }

/** The opset from which each type is a QuantizeLinear/DequantizeLinear type (the integer ones the GPU holds). */
const INT_SINCE: Partial<Record<DType, number>> = { int8: 10, uint8: 10, int16: 21, uint16: 21, int4: 21, uint4: 21, int2: 25, uint2: 25 };
/** Float inputs and scales the GPU takes: float16 from opset 19 (bfloat16 and float8e8m0 stay on the CPU). */
const FLOAT_SINCE: Partial<Record<DType, number>> = { float32: 10, float16: 19 };
const at = (table: Partial<Record<DType, number>>, d: DType | undefined, opset: number) => d !== undefined && (table[d] ?? Infinity) <= opset;

const name = (ctx: GpuCtx, i: number) => `input ${i} ('${ctx.node.inputs[i] ?? ''}')`;
const optional = (ins: Ins, i: number, ctx: GpuCtx) => (ins[i] === undefined ? undefined : gpuAt(ins, i, ctx));

/** Which parameter each element of x uses (ops/quantize.ts layoutOf, with its errors). */
function layoutOf(x: readonly number[], scale: readonly number[], zp: readonly number[] | undefined, a: QAttrs, ctx: GpuCtx): Q.QuantLayout {
  const size = (s: readonly number[]) => s.reduce((p, v) => p * v, 1), n = size(x);
  if (zp && size(zp) !== size(scale)) fail(ctx, `${name(ctx, 2)} has shape [${zp}]; expected the shape of the scale [${scale}]`);
  if (size(scale) === 1) return Q.perTensor(n);
  if (a.opset < 13) fail(ctx, `${name(ctx, 1)} should be a scalar at opset ${a.opset} (per-tensor only), got shape [${scale}]`);
  const axis = normAxis(a.axis, x.length, ctx), d = x[axis];
  if (a.block === 0) {
    if (scale.length !== 1 || scale[0] !== d) fail(ctx, `${name(ctx, 1)} has shape [${scale}]; per-axis quantization along axis ${axis} needs [${d}]`);
    return Q.perAxis(x, axis);
  }
  const want = x.map((v, i) => (i === axis ? Math.ceil(v / a.block) : v));
  if (scale.length !== want.length || scale.some((v, i) => v !== want[i])) {
    fail(ctx, `${name(ctx, 1)} has shape [${scale}]; blocks of ${a.block} along axis ${axis} of x [${x}] need [${want}]`);
  }
  return Q.blocked(x, axis, a.block, want[axis]);
}

registerGpu({
  op: 'QuantizeLinear', since: 10,
  reject: (d, a: QAttrs) => {
    if (!at(FLOAT_SINCE, d[0], a.opset) || !at(FLOAT_SINCE, d[1], a.opset)) return `x ${d[0]} / scale ${d[1]}: the GPU quantizes float32 and float16 (int32 x divides in float64 on the CPU)`;
    if (a.precision && a.precision !== 'float32') return `precision ${a.precision} runs on the CPU`;
    if (d[2] && a.outputDtype && d[2] !== a.outputDtype) return 'zero point and output_dtype disagree';
    const out = d[2] ?? a.outputDtype ?? 'uint8';
    return at(INT_SINCE, out, a.opset) ? undefined : `output type ${out}: the GPU quantizes to 8-, 16-, 4- and 2-bit integers`;
  },
  run: (ins, a: QAttrs, ctx) => {
    const x = gpuAt(ins, 0, ctx), scale = gpuAt(ins, 1, ctx), zp = optional(ins, 2, ctx);
    const layout = layoutOf(x.shape, scale.shape, zp?.shape, a, ctx);
    // The division happens in the scale's type unless precision (float32 here) names another.
    const half = scale.dtype === 'float16' && a.precision === undefined;
    return ctx.gpu.run(quantizeLinear({ x, scale, zp, layout, out: zp?.dtype ?? a.outputDtype ?? 'uint8', half }));
  },
});

registerGpu({
  op: 'DequantizeLinear', since: 10,
  reject: (d, a: QAttrs, ctx) => {
    if (d[0] !== 'int32' && !at(INT_SINCE, d[0], a.opset)) return `x of dtype ${d[0]} is dequantized on the CPU`;
    if (d[2] && d[2] !== d[0]) return 'zero point and x dtypes differ';
    if (!at(FLOAT_SINCE, d[1], a.opset)) return `scale of dtype ${d[1]} is dequantized on the CPU`;
    const out = a.outputDtype ?? d[1];
    return out === 'float32' || (out === 'float16' && ctx.f16) ? undefined : `output type ${out} has no GPU storage on this adapter`;
  },
  run: (ins, a: QAttrs, ctx) => {
    const x = gpuAt(ins, 0, ctx), scale = gpuAt(ins, 1, ctx), zp = optional(ins, 2, ctx);
    const layout = layoutOf(x.shape, scale.shape, zp?.shape, a, ctx);
    return ctx.gpu.run(dequantizeLinear({ x, scale, zp, layout, out: a.outputDtype ?? scale.dtype }));
  },
});

registerGpu({
  op: 'DynamicQuantizeLinear', since: 11,
  reject: (d) => (d[0] === 'float32' ? undefined : `x of dtype ${d[0]}: expected float32`),
  run: (ins, _a, ctx) => {
    const x = gpuAt(ins, 0, ctx);
    const [part] = ctx.gpu.run(rangePartials(x));
    const [scale, zp] = ctx.gpu.run(rangeParams(part));
    ctx.gpu.release(part);
    return [...ctx.gpu.run(dynamicApply(x, scale, zp)), scale, zp];
  },
});

// ---- MatMulInteger / QLinearMatMul ------------------------------------------------------------------

const I8: ReadonlySet<DType | undefined> = new Set<DType | undefined>(['int8', 'uint8']);

/** dot4I8Packed where the adapter's WGSL has it; LASTMILE_NO_DOT4=1 forces the scalar kernel (tests). */
export function packedDot(ctx: GpuCtx): boolean {
  if (typeof process !== 'undefined' && process.env?.LASTMILE_NO_DOT4 === '1') return false;
  return ctx.gpu.ctx.gpu.wgslLanguageFeatures?.has('packed_4x8_integer_dot_product') ?? false;
}

interface Product { m: number; k: number; n: number; batch: number[]; aBatchStrides: number[]; bBatchStrides: number[]; shape: number[] }

/** numpy matmul geometry: a 1-D a is a row, a 1-D b a column, and the added dim is dropped again. */
function product(a: GpuArray, b: GpuArray, ctx: GpuCtx): Product {
  if (a.shape.length === 0 || b.shape.length === 0) fail(ctx, 'inputs a and b should have rank >= 1');
  const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape, bs = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
  const [m, k] = as.slice(-2), [k2, n] = bs.slice(-2);
  if (k !== k2) fail(ctx, `inner dims differ: a [${a.shape}] and b [${b.shape}]`);
  const batch = broadcastShapes(as.slice(0, -2), bs.slice(0, -2)) ?? fail(ctx, `batch dims of a [${a.shape}] and b [${b.shape}] do not broadcast`);
  return {
    m, k, n, batch,
    aBatchStrides: broadcastStrides(as.slice(0, -2), batch).map((s) => s * m * k),
    bBatchStrides: broadcastStrides(bs.slice(0, -2), batch).map((s) => s * k * n),
    shape: [...batch, ...(a.shape.length === 1 ? [] : [m]), ...(b.shape.length === 1 ? [] : [n])],
  };
}

/**
 * A zero point broadcast (numpy) onto operand x, as a per-row (A) or per-column (B) parameter of the
 * product: `kAxis` is x's K dim, `keep` its row or column dim (absent for a 1-D operand). The GPU kernel
 * takes zero points out per row and column, so one that varies along K is refused.
 */
function zeroPoint(zp: GpuArray, zs: readonly number[], x: GpuArray, kAxis: number, keep: number | undefined, side: 'row' | 'col', p: Product, what: string, ctx: GpuCtx): Param {
  const full = broadcastShapes(x.shape, zs);
  if (!full || full.length !== x.shape.length || full.some((d, i) => d !== x.shape[i])) fail(ctx, `${what} of shape [${zs}] should broadcast to [${x.shape}]`);
  const st = broadcastStrides(zs, x.shape);
  if (x.shape[kAxis] > 1 && st[kAxis] !== 0) fail(ctx, `${what} of shape [${zs}] varies along K; the GPU kernel takes zero points per row or column`);
  // x's batch dims are the trailing ones of the product's.
  const skip = p.batch.length - Math.max(0, x.shape.length - 2);
  const along = keep === undefined ? 0 : st[keep];
  return { t: zp, batch: p.batch.map((_, j) => (j >= skip ? st[j - skip] : 0)), row: side === 'row' ? along : 0, col: side === 'col' ? along : 0 };
}

const rowsOf = (x: GpuArray) => (x.shape.length >= 2 ? x.shape.length - 2 : undefined);
const colsOf = (x: GpuArray) => (x.shape.length >= 2 ? x.shape.length - 1 : undefined);
const kOfB = (x: GpuArray) => (x.shape.length >= 2 ? x.shape.length - 2 : 0);

registerGpu({
  op: 'MatMulInteger', since: 10,
  reject: (d) => (d.slice(0, 4).every((t, i) => (i < 2 ? I8.has(t) : t === undefined || I8.has(t))) ? undefined : 'operands and zero points should be int8 or uint8'),
  run: (ins, _a, ctx) => {
    const a = gpuAt(ins, 0, ctx), b = gpuAt(ins, 1, ctx), za = optional(ins, 2, ctx), zb = optional(ins, 3, ctx), p = product(a, b, ctx);
    // A 1-D a_zero_point of several values is per row (ops/matmul.ts); the rest broadcast numpy-style.
    const zas = za && za.shape.length === 1 && za.size > 1 && a.shape.length >= 2 ? [za.size, 1] : za?.shape;
    return ctx.gpu.run(qgemm({
      a, b, m: p.m, n: p.n, k: p.k, batch: p.batch, aBatchStrides: p.aBatchStrides, bBatchStrides: p.bBatchStrides, outShape: p.shape, packed: packedDot(ctx),
      za: za && zeroPoint(za, zas!, a, a.shape.length - 1, rowsOf(a), 'row', p, 'input 2 (a_zero_point)', ctx),
      zb: zb && zeroPoint(zb, zb.shape, b, kOfB(b), colsOf(b), 'col', p, 'input 3 (b_zero_point)', ctx),
    }));
  },
});

/** Rounds to the value set of a scale dtype (ops/quantize.ts rounder). */
function rounder(d: DType): (v: number) => number {
  if (d === 'float16') return (v) => f16ToNumber(numberToF16(v));
  if (d === 'bfloat16') return (v) => bf16ToNumber(numberToBf16(v));
  return Math.fround;
}

const SCALES = (opset: number): ReadonlySet<DType> => new Set<DType>(['float32', ...(opset >= 21 ? ['float16', 'bfloat16'] as DType[] : [])]);

/** (a_scale * b_scale) / y_scale elementwise with broadcasting, each step rounded to the scales' type. */
function multiplier(ins: Ins, opset: number, ctx: GpuCtx): NdArray {
  const [as, bs, ys] = [1, 4, 6].map((i) => {
    const t = ins[i];
    if (!(t instanceof NdArray)) return fail(ctx, `${name(ctx, i)} is required but missing`);
    if (!SCALES(opset).has(t.dtype)) fail(ctx, `${name(ctx, i)} has dtype ${t.dtype}; expected one of ${[...SCALES(opset)].join(', ')}`);
    return t;
  });
  if (bs.dtype !== as.dtype || ys.dtype !== as.dtype) fail(ctx, `the scales should share one dtype, got ${as.dtype}, ${bs.dtype}, ${ys.dtype}`);
  const r = rounder(as.dtype), s1 = broadcastShapes(as.shape, bs.shape), s2 = s1 && broadcastShapes(s1, ys.shape);
  if (!s1 || !s2) fail(ctx, `scale shapes [${as.shape}], [${bs.shape}], [${ys.shape}] do not broadcast`);
  const ab = new Float64Array(s1.reduce((x, y) => x * y, 1)), out = new Float32Array(s2.reduce((x, y) => x * y, 1));
  binaryBroadcast(as.data, as.shape, bs.data, bs.shape, s1, ab, (x: number, y: number) => r(x * y));
  binaryBroadcast(ab, s1, ys.data, ys.shape, s2, out, (x: number, y: number) => r(x / y));
  return new NdArray('float32', s2, out);
}

/** A per-output parameter: broadcast onto the true output shape (dims of 1-D operands dropped). */
function perOutput(t: GpuArray, p: Product, oneDimA: boolean, oneDimB: boolean, what: string, ctx: GpuCtx): Param {
  const full = broadcastShapes(p.shape, t.shape);
  if (!full || full.length !== p.shape.length || full.some((d, i) => d !== p.shape[i])) fail(ctx, `${what} of shape [${t.shape}] does not broadcast onto the output [${p.shape}]`);
  const st = broadcastStrides(t.shape, p.shape), ob = p.batch.length;
  return { t, batch: st.slice(0, ob), row: oneDimA ? 0 : st[ob], col: oneDimB ? 0 : st[st.length - 1] };
}

registerGpu({
  op: 'QLinearMatMul', since: 10, cpuInputs: [1, 4, 6],
  reject: (d) => {
    if (!I8.has(d[0]) || !I8.has(d[3])) return `operands ${d[0]} and ${d[3]}: the GPU takes int8 and uint8 (float8 runs on the CPU)`;
    if ((d[2] && d[2] !== d[0]) || (d[5] && d[5] !== d[3])) return 'zero points should have their operand\'s dtype';
    return d[7] === undefined || I8.has(d[7]) ? undefined : `y_zero_point of dtype ${d[7]}`;
  },
  run: (ins, opset: number, ctx) => {
    const a = gpuAt(ins, 0, ctx), b = gpuAt(ins, 3, ctx), za = optional(ins, 2, ctx), zb = optional(ins, 5, ctx), yz = optional(ins, 7, ctx);
    const p = product(a, b, ctx), mult = multiplier(ins, opset, ctx);
    const oneA = a.shape.length === 1, oneB = b.shape.length === 1;
    const multT = ctx.gpu.upload(mult);
    try {
      const multP = perOutput(multT, p, oneA, oneB, 'the scale product', ctx);
      return ctx.gpu.run(qgemm({
        a, b, m: p.m, n: p.n, k: p.k, batch: p.batch, aBatchStrides: p.aBatchStrides, bBatchStrides: p.bBatchStrides, outShape: p.shape, packed: packedDot(ctx),
        za: za && zeroPoint(za, za.shape, a, a.shape.length - 1, rowsOf(a), 'row', p, name(ctx, 2), ctx),
        zb: zb && zeroPoint(zb, zb.shape, b, kOfB(b), colsOf(b), 'col', p, name(ctx, 5), ctx),
        requant: { mult: multP, yz: yz && perOutput(yz, p, oneA, oneB, name(ctx, 7), ctx), out: yz?.dtype ?? a.dtype },
      }));
    } finally {
      ctx.gpu.release(multT); // the dispatch keeps its read
    }
  },
});
