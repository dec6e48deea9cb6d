// Ops of the internal domain 'ai.lastmile', made only by graph optimisation (engine/passes/):
//   FusedConv(X, W, B?, Z?)       Conv, then + Z (a residual), then the activation
//   FusedGemm(A, B, C?)           Gemm, then the activation
//   FusedMatMul(A, B, bias?)      MatMul of A and B each optionally transposed by permA/permB (read in
//                                 place through strides), scaled by `alpha`, then + bias, then the activation
//   LayerNormalization, Gelu      the ONNX ops, for models whose opset predates them
// `activation` names the activation and `activation_params` holds its parameters (alpha, bounds...).
// `post_affine` = [s, t] follows the activation on all three: y * s, then + t (a scalar Mul and Add folded
// by engine/passes/post-affine.ts); a step not folded is its identity, s = 1 or t = -0, and is skipped.
// Each step happens in place on the product's fresh output; narrow floats are rounded between steps
// as the unfused nodes would have rounded them, so results match the original graph.
import { NARROW_FLOATS } from '../engine/dtype.js';
import type { Node, TypeInfo } from '../engine/graph.js';
import { INTERNAL } from '../engine/passes/view.js';
import { NdArray, sizeOf } from '../engine/tensor.js';
import { broadcastShapes, binaryBroadcast, stridesOf } from '../kernels/cpu/broadcast.js';
import { fillBroadcast } from '../kernels/cpu/broadcast-fill.js';
import * as K from '../kernels/cpu/elementwise.js';
import { gemm, type Mat } from '../kernels/cpu/gemm.js';
import { gemmWasm, type Epilogue } from '../kernels/wasm/gemm.js';
import { roundInPlace } from '../kernels/cpu/minifloat.js';
import { binaryWasm, mapWasm, type Step } from '../kernels/wasm/elementwise.js';
import { broadcastInfer } from './infer-rules.js';
import { fail, lookup, optTensor, register, tensorAt, type Attrs, type OpDef, type RunCtx } from './registry.js';
import { convForward, type ConvAttrs } from './conv.js';
import './matmul.js';
import './normalization.js';
import './elementwise.js';

type Row = K.Row1;
/** An activation: its TypeScript row, and its WebAssembly step when it has one. */
interface Act { row: Row; step?: Step }
const act = (row: Row, step?: Step): Act => ({ row, step });
/**
 * Activations by name; parameters in the order of the ONNX op's attributes (Clip: min, max). Float32
 * outputs take the WebAssembly step (kernels/wasm/elementwise.ts: with the residual add and the affine in
 * the same pass); other storage, and Elu, the TypeScript row.
 */
const ACTIVATIONS: Record<string, (p: number[]) => Act> = {
  Relu: () => act(K.relu, ['relu']),
  LeakyRelu: ([alpha = 0.01]) => act(K.leakyRelu(alpha), ['leakyRelu', alpha]),
  Clip: ([lo = -Infinity, hi = Infinity]) => act(K.clamp(lo, hi), ['clip', lo, hi]),
  Sigmoid: () => act(K.sigmoid, ['sigmoid']),
  Tanh: () => act(K.tanh, ['tanh']),
  HardSigmoid: ([alpha = 0.2, beta = 0.5]) => act(K.hardSigmoid(alpha, beta), ['hardSigmoid', alpha, beta]),
  HardSwish: () => act(K.hardSwish, ['hardSwish']),
  Elu: ([alpha = 1]) => act((o, x, n) => { for (let i = 0; i < n; i++) { const v = x[i]; o[i] = v < 0 ? alpha * Math.expm1(v) : v; } }),
  Gelu: () => act(K.gelu, ['gelu']),
  GeluTanh: () => act(K.geluTanh, ['geluTanh']),
  /** x * sigmoid(x), the Sigmoid + Mul pair exporters write for SiLU / Swish. */
  Silu: () => act((o, x, n) => { for (let i = 0; i < n; i++) { const v = x[i]; o[i] = v * K.sigmoidOf(v); } }, ['silu']),
};

function readActivation(a: Attrs): Act | undefined {
  if (!a.has('activation')) return undefined;
  const name = a.string('activation'), make = ACTIVATIONS[name];
  if (!make) throw a.error(`unknown activation '${name}'`);
  return make(a.has('activation_params') ? a.floats('activation_params') : []);
}

/** The ONNX definition a fused op builds on (all registered by the imports above). */
const base = (op: string, opset: number): OpDef => lookup('', op, opset) ?? (() => { throw new Error(`op ${op} is not registered`); })();
const baseCtx = (ctx: RunCtx, opset: number): RunCtx => ({ ...ctx, opset });

const round = (y: NdArray) => { if (NARROW_FLOATS.has(y.dtype)) roundInPlace(y.dtype, y.data as Float32Array); };

/** The `post_affine` attribute: y * scale + shift after the activation. */
export interface PostAffine { scale: number; shift: number }

function readAffine(a: Attrs): PostAffine | undefined {
  if (!a.has('post_affine')) return undefined;
  const v = a.floats('post_affine');
  if (v.length !== 2) throw a.error(`post_affine should hold [scale, shift], got ${v.length} values`);
  return { scale: v[0], shift: v[1] };
}

/**
 * y = y * s, then y = y + t, in place over the first n values, each step only when asked. Two roundings
 * to float32, as the Mul and Add nodes it replaces made them (no fused multiply-add), so results are
 * bit-identical to the unfused graph; float64 storage rounds to float64 alike.
 */
export function affineInPlace(y: Float32Array | Float64Array, n: number, s: number, t: number, hasMul: boolean, hasAdd: boolean): void {
  if (y instanceof Float64Array || !hasMul || !hasAdd) {
    if (hasMul) for (let i = 0; i < n; i++) y[i] *= s;
    if (hasAdd) for (let i = 0; i < n; i++) y[i] += t;
    return;
  }
  for (let i = 0; i < n; i++) y[i] = Math.fround(y[i] * s) + t;
}

/** The affine on y, rounding narrow floats after each step as their separate nodes would. */
function applyAffine(y: NdArray, { scale, shift }: PostAffine): void {
  const d = y.data as Float32Array, hasMul = scale !== 1, hasAdd = !Object.is(shift, -0);
  if (!NARROW_FLOATS.has(y.dtype)) return affineInPlace(d, y.size, scale, shift, hasMul, hasAdd);
  round(y);
  affineInPlace(d, y.size, scale, shift, hasMul, false);
  round(y);
  affineInPlace(d, y.size, scale, shift, false, hasAdd);
}

/** What follows the product: + z unless already added, then the activation, then the affine. */
interface Post { z?: NdArray; act?: Act; affine?: PostAffine }

/** The post-ops as WebAssembly steps over float32 storage; undefined when one of them has none. */
function wasmSteps(dtype: NdArray['dtype'], { act: a, affine }: Post): Step[] | undefined {
  if (dtype !== 'float32' || (a && !a.step)) return undefined;
  const steps: Step[] = a?.step ? [a.step] : [];
  if (affine && affine.scale !== 1) steps.push(['mulS', affine.scale]);
  if (affine && !Object.is(affine.shift, -0)) steps.push(['addS', affine.shift]);
  return steps;
}

/** y, then + z (in place when z broadcasts into y's shape), then the activation and the affine in place. */
function epilogue(y: NdArray, post: Post, ctx: RunCtx): NdArray {
  const { z, act: a, affine } = post, steps = wasmSteps(y.dtype, post);
  if (z) {
    if (z.dtype !== y.dtype) fail(ctx, `the added input has dtype ${z.dtype}, expected ${y.dtype}`);
    round(y);
    const shape = broadcastShapes(y.shape, z.shape) ?? fail(ctx, `shapes [${y.shape}] and [${z.shape}] do not broadcast`);
    const out = sizeOf(shape) === y.size && shape.length === y.shape.length ? y : NdArray.uninit(y.dtype, shape);
    // One pass for the add and every step after it, where wasm applies.
    if (steps && binaryWasm('add', y.data, y.shape, z.data, z.shape, shape, out.data, steps)) return out;
    const yd = y.data as Float32Array, zd = z.data as Float32Array;
    if (out === y && z.size === y.size) for (let i = 0; i < yd.length; i++) yd[i] += zd[i];
    else binaryBroadcast(yd, y.shape, zd, z.shape, shape, out.data, (p: number, q: number) => p + q);
    y = out;
  }
  if (steps?.length && mapWasm(y.data, y.data, y.size, steps)) return y;
  if (a) { round(y); a.row(y.data as Float32Array, y.data as Float32Array, y.size); }
  if (affine) { round(y); applyAffine(y, affine); }
  return y;
}

const withAdded = (t: TypeInfo | undefined, z: TypeInfo | undefined) => (z ? broadcastInfer()([t, z])[0] : t);

interface ConvLike { base: unknown; act?: Act; affine?: PostAffine }

register({
  op: 'FusedConv', domain: INTERNAL,
  attrs: (a): ConvLike => ({ base: base('Conv', 11).attrs!(a, 11), act: readActivation(a), affine: readAffine(a) }),
  infer: (ins, at: ConvLike, ctx) => [withAdded(base('Conv', 11).infer!(ins.slice(0, 3), at.base, ctx)[0], ins[3])],
  run: (ins, at: ConvLike, ctx) => {
    const post = { z: optTensor(ins, 3, ctx), act: at.act, affine: at.affine };
    // Without a residual, the conv kernel may apply the activation and affine as it writes (pointwise convs).
    const steps = post.z ? undefined : wasmSteps('float32', post);
    const { y, stepped } = convForward(ins.slice(0, 3), at.base as ConvAttrs, baseCtx(ctx, 11), steps?.length ? steps : undefined);
    return [stepped ? y : epilogue(y, post, ctx)];
  },
});

register({
  op: 'FusedGemm', domain: INTERNAL,
  attrs: (a): ConvLike => ({ base: base('Gemm', 13).attrs!(a, 13), act: readActivation(a), affine: readAffine(a) }),
  infer: (ins, at: ConvLike, ctx) => base('Gemm', 13).infer!(ins, at.base, ctx),
  run: (ins, at: ConvLike, ctx) => {
    const [y] = base('Gemm', 13).run(ins, at.base, baseCtx(ctx, 13)) as NdArray[];
    return [epilogue(y, { act: at.act, affine: at.affine }, ctx)];
  },
});

// ---- FusedMatMul ----

interface MatMulAttrs { permA?: number[]; permB?: number[]; alpha: number; act?: Act; affine?: PostAffine }

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

/**
 * The product's output, holding the addend z broadcast when z fits its shape without growing it: the
 * GEMM then accumulates onto it (bias + A·B, equal to A·B + bias up to float rounding), and no pass adds
 * it afterwards. Narrow floats start from zeros: their product is rounded before the add, as unfused.
 */
function outputFor(dtype: NdArray['dtype'], out: number[], z: NdArray | undefined): { y: NdArray; added: boolean } {
  const lead = out.length - (z?.shape.length ?? 0);
  if (!z || z.dtype !== dtype || NARROW_FLOATS.has(dtype) || lead < 0 || !z.shape.every((d, i) => d === 1 || d === out[lead + i])) return { y: NdArray.zeros(dtype, out), added: false };
  const y = NdArray.uninit(dtype, out); // every element is written by the fill
  fillBroadcast(y.data as Float32Array, out, z.data as Float32Array, z.shape);
  return { y, added: true };
}

/**
 * The post-ops as an epilogue of the GEMM itself (kernels/wasm/gemm.ts): float32 with WebAssembly steps,
 * and an addend that is absent or one value per column (a bias row, or a scalar). Else undefined.
 */
function gemmEpilogue(dtype: NdArray['dtype'], post: Post, n: number, outRank: number): Epilogue | undefined {
  const steps = wasmSteps(dtype, post), z = post.z;
  if (!steps) return undefined;
  if (!z) return { perRow: false, steps };
  if (z.dtype !== 'float32' || z.shape.length > outRank || (z.size !== n && z.size !== 1) || z.shape.some((d, i) => d !== 1 && i !== z.shape.length - 1)) return undefined;
  return { bias: z.size === n ? (z.data as Float32Array) : new Float32Array(n).fill(z.data[0] as number), perRow: false, steps };
}

/**
 * numpy.matmul of the (possibly permuted) operands scaled by alpha, through the float GEMM with strided
 * views. When it is one product (B shared by every batch, A read as stored) whose post-ops the GEMM can
 * apply, it does: the bias, activation and affine cost no pass over the output of their own (`stepped`).
 * Otherwise onto the addend z where it fits (`added`).
 */
function stridedMatMul(a: NdArray, b: NdArray, at: MatMulAttrs, post: Post, ctx: RunCtx): { y: NdArray; added: boolean; stepped: boolean } {
  if (a.dtype !== b.dtype) fail(ctx, `input 1 (B) should have dtype ${a.dtype} like input 0 (A), got ${b.dtype}`);
  if (a.dtype !== 'float32' && a.dtype !== 'float64' && !NARROW_FLOATS.has(a.dtype)) fail(ctx, `expected a float dtype, got ${a.dtype}`);
  const { a2, b2, m, k, n, aBatch, bBatch, batch, out } = matmulLayout(operand(a, at.permA, 'permA', ctx), operand(b, at.permB, 'permB', ctx), ctx);
  const [ars, acs] = a2.strides.slice(-2), [brs, bcs] = b2.strides.slice(-2);
  const aView = (off: number): Mat => ({ data: a.data as Float32Array, off, rs: ars, cs: acs });
  const bView = (off: number): Mat => ({ data: b.data as Float32Array, off, rs: brs, cs: bcs });
  // One B for every batch and A stored as it is read: A's batch folds into its rows.
  const fold = sizeOf(bBatch) === 1 && !at.permA, epi = fold ? gemmEpilogue(a.dtype, post, n, out.length) : undefined;
  if (epi) {
    const y = NdArray.uninit('float32', out);
    if (gemmWasm(m * sizeOf(batch), n, k, aView(0), bView(0), y.data, 0, n, at.alpha, epi)) return { y, added: true, stepped: true };
  }
  const r = outputFor(a.dtype, out, post.z), yd = r.y.data as Float32Array;
  // Narrow floats round the product before scaling it, as a separate Mul would see it.
  const narrow = NARROW_FLOATS.has(a.dtype), alpha = narrow ? 1 : at.alpha;
  if (fold) {
    gemm(m * sizeOf(batch), n, k, aView(0), bView(0), yd, 0, n, alpha);
  } else {
    const ao = batchOffsets(aBatch, a2.strides.slice(0, -2), batch), bo = batchOffsets(bBatch, b2.strides.slice(0, -2), batch);
    for (let i = 0; i < ao.length; i++) gemm(m, n, k, aView(ao[i]), bView(bo[i]), yd, i * m * n, n, alpha);
  }
  if (narrow && at.alpha !== 1) { round(r.y); affineInPlace(yd, yd.length, at.alpha, 0, true, false); }
  return { ...r, stepped: false };
}

const permuted = (t: TypeInfo | undefined, perm: number[] | undefined): TypeInfo | undefined => {
  if (!perm || t?.kind !== 'tensor') return t;
  return { kind: 'tensor', dtype: t.dtype, shape: t.shape?.length === perm.length ? perm.map((p) => t.shape![p]) : undefined };
};

register({
  op: 'FusedMatMul', domain: INTERNAL,
  attrs: (a): MatMulAttrs => ({
    permA: a.has('permA') ? a.ints('permA') : undefined, permB: a.has('permB') ? a.ints('permB') : undefined,
    alpha: a.has('alpha') ? a.float('alpha') : 1, act: readActivation(a), affine: readAffine(a),
  }),
  infer: (ins, at: MatMulAttrs, ctx) => [withAdded(base('MatMul', 13).infer!([permuted(ins[0], at.permA), permuted(ins[1], at.permB)], undefined, ctx)[0], ins[2])],
  run: (ins, at: MatMulAttrs, ctx) => {
    const post = { z: optTensor(ins, 2, ctx), act: at.act, affine: at.affine };
    const { y, added, stepped } = stridedMatMul(tensorAt(ins, 0, ctx), tensorAt(ins, 1, ctx), at, post, ctx);
    return [stepped ? y : epilogue(y, { ...post, z: added ? undefined : post.z }, ctx)];
  },
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
