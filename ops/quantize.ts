// Linear quantization: QuantizeLinear, DequantizeLinear (per-tensor, per-axis and blocked, every
// quantized type by the opset that added it), DynamicQuantizeLinear, QLinearMatMul and QLinearConv.
// Integer results round half to even and saturate; narrow-float results are encoded with the format's
// rules (saturate or not) and stored as the value they hold. The float arithmetic follows the ONNX
// reference: the division in the scale's (or `precision`'s) type, products of scales in theirs.
import { dtypeFromOnnx, type DType } from '../engine/dtype.js';
import { NdArray, type Value } from '../engine/tensor.js';
import { binaryBroadcast, broadcastShapes, expandTo } from '../kernels/cpu/broadcast.js';
import { conv } from '../kernels/cpu/conv.js';
import { bf16ToNumber, f16ToNumber, FORMATS, numberToBf16, numberToF16, type MiniName } from '../kernels/cpu/minifloat.js';
import * as Q from '../kernels/cpu/quantize.js';
import { geom3, inferWindowDims, readWindow, resolveWindow, spatialOf, type WindowAttrs } from './conv.js';
import { dtypeOf, shapeOf, tensorType } from './infer-rules.js';
import { type Attrs, fail, optTensor, register, tensorAt, type RunCtx } from './registry.js';
import { normAxis } from './shape.js';

type Ins = (Value | undefined)[];
type Ctx = { node: RunCtx['node'] };

const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535], int4: [-8, 7], uint4: [0, 15], int2: [-2, 1], uint2: [0, 3],
};
/** The opset that added each quantized type to QuantizeLinear/DequantizeLinear. */
const QUANT_SINCE: Partial<Record<DType, number>> = {
  int8: 10, uint8: 10, float8e4m3fn: 19, float8e4m3fnuz: 19, float8e5m2: 19, float8e5m2fnuz: 19,
  int16: 21, uint16: 21, int4: 21, uint4: 21, float4e2m1: 23, int2: 25, uint2: 25,
};
const INPUT_SINCE: Partial<Record<DType, number>> = { float32: 10, int32: 10, float16: 19, bfloat16: 19 };
const Q_SCALE_SINCE: Partial<Record<DType, number>> = { float32: 10, float16: 19, bfloat16: 19, int32: 23, float8e8m0: 24 };
const DQ_SCALE_SINCE: Partial<Record<DType, number>> = { float32: 10, float16: 19, bfloat16: 19, float8e8m0: 24 };
const DQ_OUT: ReadonlySet<DType> = new Set(['float32', 'float16', 'bfloat16']);

const name = (ctx: Ctx, i: number) => `input ${i} ('${ctx.node.inputs[i] ?? ''}')`;

/** Checks t's dtype against a table of the opset each type arrived in. */
function allowed(t: NdArray, i: number, since: Partial<Record<DType, number>>, opset: number, ctx: Ctx): NdArray {
  const from = since[t.dtype];
  if (from === undefined || from > opset) {
    const ok = Object.entries(since).filter(([, v]) => v! <= opset).map(([k]) => k);
    fail(ctx, `${name(ctx, i)} has dtype ${t.dtype}; at opset ${opset} expected one of ${ok.join(', ')}`);
  }
  return t;
}

/** Rounds a float64 to the value set of a float dtype (identity for float64 and integer precisions). */
function rounder(d: DType): (v: number) => number {
  if (d === 'float32' || d === 'float8e8m0') return Math.fround;
  if (d === 'float16') return (v) => f16ToNumber(numberToF16(v));
  if (d === 'bfloat16') return (v) => bf16ToNumber(numberToBf16(v));
  return (v) => v;
}

function dtypeAttr(a: Attrs, attr: string): DType | undefined {
  const code = a.int(attr, 0);
  if (code === 0) return undefined;
  return dtypeFromOnnx(code) ?? (() => { throw a.error(`attribute '${attr}' ${code} is not an ONNX element type`); })();
}

interface QAttrs { opset: number; axis: number; block: number; saturate: boolean; outputDtype?: DType; precision?: DType }

function readQ(a: Attrs, opset: number): QAttrs {
  const block = opset >= 21 ? a.int('block_size', 0) : 0;
  if (block < 0) throw a.error(`attribute 'block_size' should be >= 0, got ${block}`);
  return {
    opset, block,
    axis: opset >= 13 ? a.int('axis', 1) : 1,
    saturate: opset >= 19 ? a.int('saturate', 1) !== 0 : true,
    outputDtype: opset >= 21 ? dtypeAttr(a, 'output_dtype') : undefined,
    precision: opset >= 23 ? dtypeAttr(a, 'precision') : undefined,
  };
}

/** Which parameter each element of x uses, from the scale's shape: scalar, 1-D along axis, or blocked. */
function layoutOf(x: NdArray, scale: NdArray, zp: NdArray | undefined, at: QAttrs, ctx: Ctx): Q.QuantLayout {
  if (zp && zp.size !== scale.size) fail(ctx, `${name(ctx, 2)} has shape [${zp.shape}]; expected the shape of the scale [${scale.shape}]`);
  if (scale.size === 1) return Q.perTensor(x.size);
  if (at.opset < 13) fail(ctx, `${name(ctx, 1)} should be a scalar at opset ${at.opset} (per-tensor only), got shape [${scale.shape}]`);
  const axis = normAxis(at.axis, x.shape.length, ctx), d = x.shape[axis];
  if (at.block === 0) {
    if (scale.shape.length !== 1 || scale.size !== d) fail(ctx, `${name(ctx, 1)} has shape [${scale.shape}]; per-axis quantization along axis ${axis} needs [${d}]`);
    return Q.perAxis(x.shape, axis);
  }
  const want = x.shape.map((v, i) => (i === axis ? Math.ceil(v / at.block) : v));
  if (scale.shape.length !== want.length || scale.shape.some((v, i) => v !== want[i])) {
    fail(ctx, `${name(ctx, 1)} has shape [${scale.shape}]; blocks of ${at.block} along axis ${axis} of x [${x.shape}] need [${want}]`);
  }
  return Q.blocked(x.shape, axis, at.block, want[axis]);
}

/** Stores for a quantized output type: clamp to the integer range, or encode the narrow float. */
function storeFor(d: DType, saturate: boolean, ctx: Ctx): Q.Store {
  const range = INT_RANGE[d];
  if (range) return Q.intStore(range[0], range[1]);
  const fmt = FORMATS[d as MiniName];
  if (!fmt || d === 'float8e8m0') fail(ctx, `${d} is not a quantized type`);
  // float4e2m1 has neither infinity nor NaN: it always saturates.
  return Q.miniStore(fmt, saturate || d === 'float4e2m1');
}

/** QuantizeLinear's output type: the zero point's, else output_dtype, else uint8. */
function quantOut(zp: DType | undefined, at: QAttrs, ctx: Ctx): DType {
  if (zp && at.outputDtype && zp !== at.outputDtype) fail(ctx, `output_dtype ${at.outputDtype} differs from the zero point's dtype ${zp}`);
  return zp ?? at.outputDtype ?? 'uint8';
}

register({
  op: 'QuantizeLinear', since: 10,
  attrs: readQ,
  infer: (ins, at: QAttrs) => [tensorType(ins[2] ? dtypeOf(ins[2]) : at.outputDtype ?? 'uint8', shapeOf(ins[0]))],
  run: (ins, at: QAttrs, ctx) => {
    const x = allowed(tensorAt(ins, 0, ctx), 0, INPUT_SINCE, at.opset, ctx), scale = allowed(tensorAt(ins, 1, ctx), 1, Q_SCALE_SINCE, at.opset, ctx);
    const zp = optTensor(ins, 2, ctx), out = quantOut(zp?.dtype, at, ctx);
    if ((QUANT_SINCE[out] ?? Infinity) > at.opset) fail(ctx, `output type ${out} is not a QuantizeLinear type at opset ${at.opset}`);
    // int32 x divides exactly in float64 (numpy's promotion) unless a precision is named.
    const r = rounder(at.precision ?? (x.dtype === 'int32' ? 'float64' : scale.dtype));
    const y = NdArray.zeros(out, x.shape);
    Q.quantize(x.data as Float32Array, scale.data as Float32Array, zp?.data as Float32Array | undefined, layoutOf(x, scale, zp, at, ctx), y.data as Float32Array,
      (v, s) => r(r(v) / r(s)), storeFor(out, at.saturate, ctx));
    return [y];
  },
});

register({
  op: 'DequantizeLinear', since: 10,
  attrs: readQ,
  infer: (ins, at: QAttrs) => [tensorType(at.outputDtype ?? dtypeOf(ins[1]), shapeOf(ins[0]))],
  run: (ins, at: QAttrs, ctx) => {
    const x = tensorAt(ins, 0, ctx), scale = allowed(tensorAt(ins, 1, ctx), 1, DQ_SCALE_SINCE, at.opset, ctx), zp = optTensor(ins, 2, ctx);
    if (x.dtype !== 'int32') allowed(x, 0, QUANT_SINCE, at.opset, ctx);
    if (zp && zp.dtype !== x.dtype) fail(ctx, `${name(ctx, 2)} has dtype ${zp.dtype}; expected ${x.dtype} like x`);
    const out = at.outputDtype ?? scale.dtype;
    if (!DQ_OUT.has(out)) fail(ctx, `output type ${out} should be float32, float16 or bfloat16${at.outputDtype ? '' : ' (set output_dtype when the scale is float8e8m0)'}`);
    const y = NdArray.zeros(out, x.shape);
    Q.dequantize(x.data as Float32Array, scale.data as Float32Array, zp?.data as Float32Array | undefined, layoutOf(x, scale, zp, at, ctx), y.data as Float32Array);
    return [y];
  },
});

register({
  op: 'DynamicQuantizeLinear', since: 11,
  infer: (ins) => [tensorType('uint8', shapeOf(ins[0])), tensorType('float32', []), tensorType('uint8', [])],
  run: (ins, _a, ctx) => {
    const x = tensorAt(ins, 0, ctx);
    if (x.dtype !== 'float32') fail(ctx, `${name(ctx, 0)} has dtype ${x.dtype}; expected float32`);
    const y = NdArray.zeros('uint8', x.shape), { scale, zp } = Q.dynamicQuantize(x.data as Float32Array, y.data as Uint8Array);
    return [y, new NdArray('float32', [], Float32Array.of(scale)), new NdArray('uint8', [], Uint8Array.of(zp))];
  },
});

const FLOAT8: DType[] = ['float8e4m3fn', 'float8e4m3fnuz', 'float8e5m2', 'float8e5m2fnuz'];
const QMM_TYPES = (opset: number): ReadonlySet<DType> => new Set<DType>(['int8', 'uint8', ...(opset >= 21 ? FLOAT8 : [])]);
const QMM_SCALES = (opset: number): ReadonlySet<DType> => new Set<DType>(['float32', ...(opset >= 21 ? ['float16', 'bfloat16'] as DType[] : [])]);

function typed(ins: Ins, i: number, types: ReadonlySet<DType>, ctx: Ctx): NdArray {
  const t = tensorAt(ins, i, ctx);
  if (!types.has(t.dtype)) fail(ctx, `${name(ctx, i)} has dtype ${t.dtype}; expected one of ${[...types].join(', ')}`);
  return t;
}

/** t - zp as float64 (exact integers), zp broadcast numpy-style onto t's shape. */
function shifted(t: NdArray, zp: NdArray | undefined, i: number, ctx: Ctx): Float64Array {
  const out = Float64Array.from(t.data as Float32Array);
  if (!zp) return out;
  if (zp.dtype !== t.dtype) fail(ctx, `${name(ctx, i)} has dtype ${zp.dtype}; expected ${t.dtype} like the tensor it shifts`);
  const s = broadcastShapes(t.shape, zp.shape);
  if (!s || s.some((v, k) => v !== t.shape[k])) fail(ctx, `${name(ctx, i)} of shape [${zp.shape}] does not broadcast onto [${t.shape}]`);
  binaryBroadcast(out, t.shape, zp.data, zp.shape, t.shape, out, (v: number, z: number) => v - z);
  return out;
}

/** Dense float64 copy of `t` broadcast to `shape` (zeros when t is absent). */
function spread(t: NdArray | { data: ArrayLike<number>; shape: readonly number[] } | undefined, shape: number[], what: string, ctx: Ctx): Float64Array {
  const out = new Float64Array(shape.reduce((a, b) => a * b, 1));
  if (!t) return out;
  const s = broadcastShapes(shape, t.shape);
  if (!s || s.some((v, k) => v !== shape[k])) fail(ctx, `${what} of shape [${t.shape}] does not broadcast onto the output [${shape}]`);
  expandTo(t.data, t.shape, shape, out);
  return out;
}

/** (a_scale * b_scale) / y_scale, elementwise with broadcasting, each step rounded to the scales' type. */
function multiplier(as: NdArray, bs: NdArray, ys: NdArray, ctx: Ctx) {
  if (bs.dtype !== as.dtype || ys.dtype !== as.dtype) fail(ctx, `the scales should share one dtype, got ${as.dtype}, ${bs.dtype}, ${ys.dtype}`);
  const r = rounder(as.dtype), s1 = broadcastShapes(as.shape, bs.shape), s2 = s1 && broadcastShapes(s1, ys.shape);
  if (!s1 || !s2) fail(ctx, `scale shapes [${as.shape}], [${bs.shape}], [${ys.shape}] do not broadcast`);
  const ab = new Float64Array(s1.reduce((a, b) => a * b, 1)), data = new Float64Array(s2.reduce((a, b) => a * b, 1));
  binaryBroadcast(as.data, as.shape, bs.data, bs.shape, s1, ab, (x: number, y: number) => r(x * y));
  binaryBroadcast(ab, s1, ys.data, ys.shape, s2, data, (x: number, y: number) => r(x / y));
  return { data, shape: s2 };
}

register({
  op: 'QLinearMatMul', since: 10,
  attrs: (_a, opset) => opset,
  infer: (ins) => [tensorType(dtypeOf(ins[7]) ?? dtypeOf(ins[0]))],
  run: (ins, opset: number, ctx) => {
    const types = QMM_TYPES(opset), scales = QMM_SCALES(opset);
    const a = typed(ins, 0, types, ctx), b = typed(ins, 3, types, ctx), yz = optTensor(ins, 7, ctx);
    const mult = multiplier(typed(ins, 1, scales, ctx), typed(ins, 4, scales, ctx), typed(ins, 6, scales, ctx), ctx);
    if (a.shape.length === 0 || b.shape.length === 0) fail(ctx, 'inputs a and b should have rank >= 1');
    // numpy matmul: a 1-D a is a row, a 1-D b a column, and the added dim is dropped again.
    const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape, bs = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
    const [m, k] = as.slice(-2), [k2, n] = bs.slice(-2);
    if (k !== k2) fail(ctx, `inner dims differ: a [${a.shape}] and b [${b.shape}]`);
    const batch = broadcastShapes(as.slice(0, -2), bs.slice(0, -2)) ?? fail(ctx, `batch dims of a [${a.shape}] and b [${b.shape}] do not broadcast`);
    const shape = [...batch, ...(a.shape.length === 1 ? [] : [m]), ...(b.shape.length === 1 ? [] : [n])];
    const acc = new Float64Array(batch.reduce((x, y) => x * y, 1) * m * n);
    Q.batchedMatmul(shifted(a, optTensor(ins, 2, ctx), 2, ctx), as.slice(0, -2), shifted(b, optTensor(ins, 5, ctx), 5, ctx), bs.slice(0, -2), batch, m, k, n, acc);
    const outType = yz?.dtype ?? a.dtype;
    if (!types.has(outType)) fail(ctx, `${name(ctx, 7)} has dtype ${outType}; expected one of ${[...types].join(', ')}`);
    const y = NdArray.zeros(outType, shape);
    Q.requantize(acc, spread(mult, shape, 'the scale product', ctx), spread(yz, shape, name(ctx, 7), ctx), y.data as Float32Array, storeFor(outType, true, ctx));
    return [y];
  },
});

interface QConvAttrs extends WindowAttrs { group: number }

const U8I8: ReadonlySet<DType> = new Set(['int8', 'uint8']), F32: ReadonlySet<DType> = new Set(['float32']);

/** A scalar input or one value per output channel, as m per-channel values. */
function perChannel(ins: Ins, i: number, types: ReadonlySet<DType>, m: number, ctx: Ctx): Float64Array {
  const t = typed(ins, i, types, ctx);
  if (t.size !== 1 && t.size !== m) fail(ctx, `${name(ctx, i)} should be a scalar or have ${m} values (one per output channel), got shape [${t.shape}]`);
  return Float64Array.from({ length: m }, (_, c) => (t.data as Float32Array)[t.size === 1 ? 0 : c]);
}

function scalarOf(ins: Ins, i: number, types: ReadonlySet<DType>, ctx: Ctx): number {
  const t = typed(ins, i, types, ctx);
  if (t.size !== 1) fail(ctx, `${name(ctx, i)} should be a scalar (per-tensor), got shape [${t.shape}]`);
  return (t.data as Float32Array)[0];
}

register({
  op: 'QLinearConv', since: 10,
  attrs: (a): QConvAttrs => {
    const group = a.int('group', 1);
    if (group < 1) throw a.error(`group should be >= 1, got ${group}`);
    return { ...readWindow(a), group };
  },
  infer: (ins, at: QConvAttrs) => {
    const xs = shapeOf(ins[0]), ws = shapeOf(ins[3]), t = dtypeOf(ins[7]);
    if (!xs || xs.length < 3) return [tensorType(t)];
    return [tensorType(t, [xs[0], ws?.[0] ?? null, ...inferWindowDims(at, xs.slice(2), at.kernel ?? ws?.slice(2) ?? [])])];
  },
  run: (ins, at: QConvAttrs, ctx) => {
    const x = typed(ins, 0, U8I8, ctx), w = typed(ins, 3, U8I8, ctx), yzT = typed(ins, 7, U8I8, ctx);
    const inS = spatialOf(x.shape, ctx), [n, c] = x.shape, m = w.shape[0], kernel = w.shape.slice(2);
    if (w.shape.length !== x.shape.length) fail(ctx, `${name(ctx, 3)} should have rank ${x.shape.length} like x, got shape [${w.shape}]`);
    if (at.kernel && at.kernel.join() !== kernel.join()) fail(ctx, `kernel_shape [${at.kernel}] does not match w's spatial dims [${kernel}]`);
    if (c % at.group !== 0 || w.shape[1] * at.group !== c) fail(ctx, `${name(ctx, 3)} should have C/group = ${c / at.group} input channels, got shape [${w.shape}] with group ${at.group}`);
    if (m % at.group !== 0) fail(ctx, `${name(ctx, 3)} has ${m} output channels, not divisible by group ${at.group}`);
    const win = resolveWindow(at, inS, kernel, ctx), plane = win.out.reduce((a, b) => a * b, 1);
    const xz = scalarOf(ins, 2, new Set([x.dtype]), ctx), wz = perChannel(ins, 5, new Set([w.dtype]), m, ctx);
    const xs = scalarOf(ins, 1, F32, ctx), ws = perChannel(ins, 4, F32, m, ctx), ys = scalarOf(ins, 6, F32, ctx);
    if (yzT.size !== 1) fail(ctx, `${name(ctx, 7)} should be a scalar (per-tensor), got shape [${yzT.shape}]`);
    const xd = Float64Array.from(x.data as Uint8Array, (v) => v - xz), per = w.size / Math.max(1, m);
    const wd = Float64Array.from(w.data as Uint8Array, (v, i) => v - wz[Math.floor(i / per)]);
    const acc = new Float64Array(n * m * plane), bias = optTensor(ins, 8, ctx);
    if (bias) {
      if (bias.dtype !== 'int32' || bias.size !== m) fail(ctx, `${name(ctx, 8)} should be int32 with ${m} values, got ${bias.dtype} [${bias.shape}]`);
      for (let i = 0; i < n * m; i++) acc.fill((bias.data as Int32Array)[i % m], i * plane, (i + 1) * plane);
    }
    conv(xd, wd, acc, n, c, m, at.group, geom3(inS, win));
    const shape = [n, m, ...win.out], y = NdArray.zeros(yzT.dtype, shape), ones = win.out.map(() => 1);
    const mult = { data: Float64Array.from(ws, (s) => Math.fround(Math.fround(xs * s) / ys)), shape: [1, m, ...ones] };
    Q.requantize(acc, spread(mult, shape, 'w_scale', ctx), spread(yzT, shape, name(ctx, 7), ctx), y.data as Uint8Array, storeFor(yzT.dtype, true, ctx));
    return [y];
  },
});
