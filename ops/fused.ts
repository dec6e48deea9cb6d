// Ops of the internal domain 'ai.lastmile', made only by graph optimisation (engine/passes/):
//   FusedConv(X, W, B?, Z?)       Conv, then + Z (a residual), then the activation
//   FusedGemm(A, B, C?)           Gemm, then the activation
//   FusedMatMul(A, B, bias?)      MatMul of A and B each optionally transposed by permA/permB (read in
//                                 place through strides), then + bias, then the activation
//   LayerNormalization, Gelu      the ONNX ops, for models whose opset predates them
// `activation` names the activation and `activation_params` holds its parameters (alpha, bounds...).
// Each step happens in place on the product's fresh output; narrow floats are rounded between steps
// as the unfused nodes would have rounded them, so results match the original graph.
import { NARROW_FLOATS } from '../engine/dtype.js';
import type { Node, TypeInfo } from '../engine/graph.js';
import { INTERNAL } from '../engine/passes/view.js';
import { NdArray, sizeOf } from '../engine/tensor.js';
import { broadcastShapes, binaryBroadcast, stridesOf } from '../kernels/cpu/broadcast.js';
import * as K from '../kernels/cpu/elementwise.js';
import { gemm, type Mat } from '../kernels/cpu/gemm.js';
import { roundInPlace } from '../kernels/cpu/minifloat.js';
import { wasmRow } from '../kernels/wasm/math.js';
import { broadcastInfer } from './infer-rules.js';
import { fail, lookup, optTensor, register, tensorAt, type Attrs, type OpDef, type RunCtx } from './registry.js';
import './conv.js';
import './matmul.js';
import './normalization.js';
import './elementwise.js';

type Row = K.Row1;
/**
 * Activations by name; parameters in the order of the ONNX op's attributes (Clip: min, max). The
 * exp-based ones run in WebAssembly SIMD on Float32Array storage (wasmRow: float32, and narrow floats,
 * whose few-ulp float32 error vanishes in their rounding), in TypeScript otherwise (float64).
 */
const ACTIVATIONS: Record<string, (p: number[]) => Row> = {
  Relu: () => K.relu,
  LeakyRelu: ([alpha = 0.01]) => K.leakyRelu(alpha),
  Clip: ([lo = -Infinity, hi = Infinity]) => K.clamp(lo, hi),
  Sigmoid: () => wasmRow('sigmoid', K.sigmoid),
  Tanh: () => wasmRow('tanh', K.tanh),
  HardSigmoid: ([alpha = 0.2, beta = 0.5]) => K.hardSigmoid(alpha, beta),
  HardSwish: () => K.hardSwish,
  Elu: ([alpha = 1]) => (o, x, n) => { for (let i = 0; i < n; i++) { const v = x[i]; o[i] = v < 0 ? alpha * Math.expm1(v) : v; } },
  Gelu: () => wasmRow('gelu', K.gelu),
  GeluTanh: () => wasmRow('geluTanh', K.geluTanh),
  /** x * sigmoid(x), the Sigmoid + Mul pair exporters write for SiLU / Swish. */
  Silu: () => wasmRow('silu', (o, x, n) => { for (let i = 0; i < n; i++) { const v = x[i]; o[i] = v * K.sigmoidOf(v); } }),
};

function readActivation(a: Attrs): Row | undefined {
  if (!a.has('activation')) return undefined;
  const name = a.string('activation'), make = ACTIVATIONS[name];
  if (!make) throw a.error(`unknown activation '${name}'`);
  return make(a.has('activation_params') ? a.floats('activation_params') : []);
}

/** The ONNX definition a fused op builds on (all registered by the imports above). */
const base = (op: string, opset: number): OpDef => lookup('', op, opset) ?? (() => { throw new Error(`op ${op} is not registered`); })();
const baseCtx = (ctx: RunCtx, opset: number): RunCtx => ({ ...ctx, opset });

const round = (y: NdArray) => { if (NARROW_FLOATS.has(y.dtype)) roundInPlace(y.dtype, y.data as Float32Array); };

/** y, then + z (in place when z broadcasts into y's shape), then the activation in place. */
function epilogue(y: NdArray, z: NdArray | undefined, act: Row | undefined, ctx: RunCtx): NdArray {
  if (z) {
    if (z.dtype !== y.dtype) fail(ctx, `the added input has dtype ${z.dtype}, expected ${y.dtype}`);
    round(y);
    const shape = broadcastShapes(y.shape, z.shape) ?? fail(ctx, `shapes [${y.shape}] and [${z.shape}] do not broadcast`);
    const out = sizeOf(shape) === y.size && shape.length === y.shape.length ? y : NdArray.zeros(y.dtype, shape);
    const yd = y.data as Float32Array, zd = z.data as Float32Array;
    if (out === y && z.size === y.size) for (let i = 0; i < yd.length; i++) yd[i] += zd[i];
    else binaryBroadcast(yd, y.shape, zd, z.shape, shape, out.data, (p: number, q: number) => p + q);
    y = out;
  }
  if (act) { round(y); act(y.data as Float32Array, y.data as Float32Array, y.size); }
  return y;
}

const withAdded = (t: TypeInfo | undefined, z: TypeInfo | undefined) => (z ? broadcastInfer()([t, z])[0] : t);

interface ConvLike { base: unknown; act?: Row }

register({
  op: 'FusedConv', domain: INTERNAL,
  attrs: (a): ConvLike => ({ base: base('Conv', 11).attrs!(a, 11), act: readActivation(a) }),
  infer: (ins, at: ConvLike, ctx) => [withAdded(base('Conv', 11).infer!(ins.slice(0, 3), at.base, ctx)[0], ins[3])],
  run: (ins, at: ConvLike, ctx) => {
    const [y] = base('Conv', 11).run(ins.slice(0, 3), at.base, baseCtx(ctx, 11)) as NdArray[];
    return [epilogue(y, optTensor(ins, 3, ctx), at.act, ctx)];
  },
});

register({
  op: 'FusedGemm', domain: INTERNAL,
  attrs: (a): ConvLike => ({ base: base('Gemm', 13).attrs!(a, 13), act: readActivation(a) }),
  infer: (ins, at: ConvLike, ctx) => base('Gemm', 13).infer!(ins, at.base, ctx),
  run: (ins, at: ConvLike, ctx) => {
    const [y] = base('Gemm', 13).run(ins, at.base, baseCtx(ctx, 13)) as NdArray[];
    return [epilogue(y, undefined, at.act, ctx)];
  },
});

// ---- FusedMatMul ----

interface MatMulAttrs { permA?: number[]; permB?: number[]; act?: Row }

/** An operand as the product sees it: logical shape and the element strides of each logical dim. */
export interface Operand { shape: number[]; strides: number[] }

function operand(t: NdArray, perm: number[] | undefined, which: string, ctx: RunCtx): Operand {
  const strides = stridesOf(t.shape);
  if (!perm) return { shape: [...t.shape], strides };
  if (perm.length !== t.shape.length || [...perm].sort((x, y) => x - y).some((p, i) => p !== i)) fail(ctx, `${which} [${perm}] is not a permutation of the ${t.shape.length} dims of [${t.shape}]`);
  return { shape: perm.map((p) => t.shape[p]), strides: perm.map((p) => strides[p]) };
}

/** Offset of each matrix of a broadcast batch, from the operand's own batch dims and strides. */
function batchOffsets(shape: number[], strides: number[], batch: number[]): number[] {
  const lead = batch.length - shape.length;
  const full = batch.map((_, i) => (i < lead || shape[i - lead] === 1 ? 0 : strides[i - lead]));
  const count = sizeOf(batch), offs = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    let rem = i, off = 0;
    for (let d = batch.length - 1; d >= 0; d--) { off += (rem % batch[d]) * full[d]; rem = Math.floor(rem / batch[d]); }
    offs[i] = off;
  }
  return offs;
}

/** numpy.matmul's layout of two strided operands: each as a matrix stack, the dims, the broadcast batch and the output shape. */
export interface MatMulLayout { a2: Operand; b2: Operand; m: number; k: number; n: number; aBatch: number[]; bBatch: number[]; batch: number[]; out: number[] }

/** numpy rules, shared by the CPU and GPU lowerings: a 1-D A is a row vector and a 1-D B a column vector; the added dim is dropped. */
export function matmulLayout(A: Operand, B: Operand, ctx: { node: Node }): MatMulLayout {
  if (!A.shape.length || !B.shape.length) fail(ctx, `inputs should have rank >= 1, got [${A.shape}] and [${B.shape}]`);
  const a2 = A.shape.length === 1 ? { shape: [1, ...A.shape], strides: [0, ...A.strides] } : A;
  const b2 = B.shape.length === 1 ? { shape: [...B.shape, 1], strides: [...B.strides, 0] } : B;
  const [m, k] = a2.shape.slice(-2), [kb, n] = b2.shape.slice(-2);
  if (k !== kb) fail(ctx, `input 1 (B) should have ${k} rows to match input 0 (A) [${A.shape}], got [${B.shape}]`);
  const aBatch = a2.shape.slice(0, -2), bBatch = b2.shape.slice(0, -2);
  const batch = broadcastShapes(aBatch, bBatch) ?? fail(ctx, `batch dims of [${A.shape}] and [${B.shape}] do not broadcast`);
  const out = [...batch, ...(A.shape.length === 1 ? [] : [m]), ...(B.shape.length === 1 ? [] : [n])];
  return { a2, b2, m, k, n, aBatch, bBatch, batch, out };
}

/** numpy.matmul of the (possibly permuted) operands, through the float GEMM with strided views. */
function stridedMatMul(a: NdArray, b: NdArray, at: MatMulAttrs, ctx: RunCtx): NdArray {
  if (a.dtype !== b.dtype) fail(ctx, `input 1 (B) should have dtype ${a.dtype} like input 0 (A), got ${b.dtype}`);
  if (a.dtype !== 'float32' && a.dtype !== 'float64' && !NARROW_FLOATS.has(a.dtype)) fail(ctx, `expected a float dtype, got ${a.dtype}`);
  const { a2, b2, m, k, n, aBatch, bBatch, batch, out } = matmulLayout(operand(a, at.permA, 'permA', ctx), operand(b, at.permB, 'permB', ctx), ctx);
  const y = NdArray.zeros(a.dtype, out);
  const [ars, acs] = a2.strides.slice(-2), [brs, bcs] = b2.strides.slice(-2);
  const bView = (off: number): Mat => ({ data: b.data as Float32Array, off, rs: brs, cs: bcs });
  if (sizeOf(bBatch) === 1 && !at.permA) {
    // One B for every batch and A stored as it is read: A's batch folds into its rows.
    gemm(m * sizeOf(batch), n, k, { data: a.data as Float32Array, off: 0, rs: ars, cs: acs }, bView(0), y.data as Float32Array, 0, n);
    return y;
  }
  const ao = batchOffsets(aBatch, a2.strides.slice(0, -2), batch), bo = batchOffsets(bBatch, b2.strides.slice(0, -2), batch);
  for (let i = 0; i < ao.length; i++) {
    gemm(m, n, k, { data: a.data as Float32Array, off: ao[i], rs: ars, cs: acs }, bView(bo[i]), y.data as Float32Array, i * m * n, n);
  }
  return y;
}

const permuted = (t: TypeInfo | undefined, perm: number[] | undefined): TypeInfo | undefined => {
  if (!perm || t?.kind !== 'tensor') return t;
  return { kind: 'tensor', dtype: t.dtype, shape: t.shape?.length === perm.length ? perm.map((p) => t.shape![p]) : undefined };
};

register({
  op: 'FusedMatMul', domain: INTERNAL,
  attrs: (a): MatMulAttrs => ({
    permA: a.has('permA') ? a.ints('permA') : undefined, permB: a.has('permB') ? a.ints('permB') : undefined, act: readActivation(a),
  }),
  infer: (ins, at: MatMulAttrs, ctx) => [withAdded(base('MatMul', 13).infer!([permuted(ins[0], at.permA), permuted(ins[1], at.permB)], undefined, ctx)[0], ins[2])],
  run: (ins, at: MatMulAttrs, ctx) => [epilogue(stridedMatMul(tensorAt(ins, 0, ctx), tensorAt(ins, 1, ctx), at, ctx), optTensor(ins, 2, ctx), at.act, ctx)],
});

// ---- ONNX ops newer than a model's opset, which pattern recognition may produce ----

/** The ONNX definition at `opset`, registered under the internal domain unchanged. */
function adopt(op: string, opset: number): OpDef {
  return {
    op, domain: INTERNAL,
    attrs: (a) => base(op, opset).attrs?.(a, opset),
    infer: (ins, at, ctx) => base(op, opset).infer?.(ins, at, { ...ctx, opset }) ?? [ins[0]],
    run: (ins, at, ctx) => base(op, opset).run(ins, at, baseCtx(ctx, opset)),
  };
}

register(adopt('LayerNormalization', 17), adopt('Gelu', 20), adopt('HardSwish', 14));
