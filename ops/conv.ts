// Conv, ConvInteger and ConvTranspose, plus the sliding-window attributes and output geometry that
// the pooling ops share (kernel_shape, strides, dilations, pads, auto_pad, ceil_mode).
import { isFloat } from '../engine/dtype.js';
import type { Dim, TypeInfo } from '../engine/graph.js';
import { NdArray, type Value } from '../engine/tensor.js';
import { binaryBroadcast } from '../kernels/cpu/broadcast.js';
import { conv, convTranspose, type Geom3 } from '../kernels/cpu/conv.js';
import type { Step } from '../kernels/wasm/elementwise.js';
import { fail, optTensor, register, tensorAt, type Attrs, type RunCtx } from './registry.js';
import { dtypeOf, shapeOf, tensorType } from './infer-rules.js';

type Ctx = { node: RunCtx['node'] };
const AUTO_PADS = ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'];

export interface WindowAttrs {
  kernel?: number[]; strides?: number[]; dilations?: number[]; pads?: number[];
  autoPad: string; ceil: boolean;
}

/** Reads the window attributes; absent lists stay undefined until the spatial rank is known. */
export function readWindow(a: Attrs): WindowAttrs {
  const autoPad = a.string('auto_pad', 'NOTSET') || 'NOTSET';
  if (!AUTO_PADS.includes(autoPad)) throw a.error(`auto_pad should be one of ${AUTO_PADS.join(', ')}, got '${autoPad}'`);
  const list = (name: string, min: number) => {
    const v = a.has(name) ? a.ints(name) : undefined;
    if (v?.some((x) => x < min)) throw a.error(`${name} should all be >= ${min}, got [${v}]`);
    return v;
  };
  return {
    kernel: list('kernel_shape', 1), strides: list('strides', 1), dilations: list('dilations', 1), pads: list('pads', 0),
    autoPad, ceil: a.int('ceil_mode', 0) !== 0,
  };
}

/** The resolved window along each spatial dim. */
export interface Window { kernel: number[]; strides: number[]; dilations: number[]; padBegin: number[]; padEnd: number[]; out: number[] }

/** Output size and pads along one dim; windows that would start inside the end padding are dropped (ceil_mode). */
function dimWindow(n: number, k: number, s: number, d: number, pb: number, pe: number, autoPad: string, ceil: boolean): [number, number, number] {
  const span = (k - 1) * d + 1;
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const out = Math.ceil(n / s), total = Math.max(0, (out - 1) * s + span - n);
    const lead = autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : total - Math.floor(total / 2);
    return [out, lead, total - lead];
  }
  if (autoPad === 'VALID') pb = pe = 0;
  const room = n + pb + pe - span;
  let out = (ceil ? Math.ceil(room / s) : Math.floor(room / s)) + 1;
  if (ceil && out > 0 && (out - 1) * s >= n + pb) out--;
  return [out, pb, pe];
}

/** Checks a per-dim list attribute against the spatial rank, filling the default when absent. */
function perDim(v: number[] | undefined, rank: number, def: number, name: string, ctx: Ctx, len = rank): number[] {
  if (!v) return new Array<number>(len).fill(def);
  if (v.length !== len) fail(ctx, `attribute ${name} should have ${len} values for ${rank} spatial dims, got [${v}]`);
  return v;
}

/** Resolves strides, dilations and pads for input spatial dims `inDims` and the given kernel. */
export function resolveWindow(w: WindowAttrs, inDims: readonly number[], kernel: number[], ctx: Ctx): Window {
  const r = inDims.length;
  const strides = perDim(w.strides, r, 1, 'strides', ctx), dilations = perDim(w.dilations, r, 1, 'dilations', ctx);
  const pads = perDim(w.pads, r, 0, 'pads', ctx, 2 * r);
  const res: Window = { kernel, strides, dilations, padBegin: [], padEnd: [], out: [] };
  for (let i = 0; i < r; i++) {
    const [o, pb, pe] = dimWindow(inDims[i], kernel[i], strides[i], dilations[i], pads[i], pads[r + i], w.autoPad, w.ceil);
    if (o < 0) fail(ctx, `spatial dim ${i} of size ${inDims[i]} (pads ${pb}+${pe}) is smaller than the dilated kernel extent ${(kernel[i] - 1) * dilations[i] + 1}`);
    res.out.push(o); res.padBegin.push(pb); res.padEnd.push(pe);
  }
  return res;
}

/** Output spatial dims for inference: numeric where input and kernel are known, else null. */
export function inferWindowDims(w: WindowAttrs, inDims: Dim[], kernel: (Dim | undefined)[]): Dim[] {
  const r = inDims.length, pads = w.pads ?? new Array<number>(2 * r).fill(0);
  return inDims.map((n, i) => {
    const k = kernel[i];
    if (typeof n !== 'number' || typeof k !== 'number') return null;
    const out = dimWindow(n, k, w.strides?.[i] ?? 1, w.dilations?.[i] ?? 1, pads[i] ?? 0, pads[r + i] ?? 0, w.autoPad, w.ceil)[0];
    return out >= 0 ? out : null;
  });
}

/** Pads a per-dim list to 3 dims with leading `fill`, so kernels always see (D, H, W). */
export const to3 = (v: readonly number[], fill: number) => [...new Array<number>(3 - v.length).fill(fill), ...v];

/** Checks X is N x C x spatial with 1 to 3 spatial dims; returns the spatial dims. */
export function spatialOf(shape: readonly number[], ctx: Ctx): number[] {
  if (shape.length < 3 || shape.length > 5) fail(ctx, `input 0 (X) should be N x C x D1.. with 1 to 3 spatial dims, got shape [${shape}]`);
  return shape.slice(2);
}

export interface ConvAttrs extends WindowAttrs { group: number; outputPadding?: number[]; outputShape?: number[] }

function readConv(a: Attrs): ConvAttrs {
  const group = a.int('group', 1);
  if (group < 1) throw a.error(`group should be >= 1, got ${group}`);
  return {
    ...readWindow(a), group,
    outputPadding: a.has('output_padding') ? a.ints('output_padding') : undefined,
    outputShape: a.has('output_shape') ? a.ints('output_shape') : undefined,
  };
}

/** Kernel spatial dims: from W, checked against kernel_shape when both are given. */
function kernelOf(at: ConvAttrs, w: NdArray, rank: number, ctx: Ctx): number[] {
  const k = w.shape.slice(2);
  if (w.shape.length !== rank + 2) fail(ctx, `input 1 (W) should have rank ${rank + 2} like X, got shape [${w.shape}]`);
  if (at.kernel && (at.kernel.length !== k.length || at.kernel.some((v, i) => v !== k[i]))) fail(ctx, `kernel_shape [${at.kernel}] does not match input 1 (W) spatial dims [${k}]`);
  return k;
}

/** Kernel geometry for input spatial dims `inS` and a resolved window. */
export const geom3 = (inS: number[], win: Window): Geom3 => ({
  inS: to3(inS, 1), out: to3(win.out, 1), k: to3(win.kernel, 1), s: to3(win.strides, 1), d: to3(win.dilations, 1), p: to3(win.padBegin, 0),
});

/** The per-channel bias B's values (the kernels add them to the output), checked to hold one per output channel. */
function biasOf(b: NdArray | undefined, m: number, ctx: Ctx): Float32Array | Float64Array | undefined {
  if (b && b.size !== m) fail(ctx, `input 2 (B) should have ${m} elements (one per output channel), got shape [${b.shape}]`);
  return b?.data as Float32Array | Float64Array | undefined;
}

/** float16, bfloat16, float32 or float64: the float types these ops compute (float8/float4 are storage-only). */
export const isComputeFloat = (t: NdArray) => isFloat(t.dtype) && !t.dtype.startsWith('float8') && t.dtype !== 'float4e2m1';

function checkFloat(t: NdArray, what: string, ctx: Ctx) {
  if (!isComputeFloat(t)) fail(ctx, `${what} should be a float tensor (float16, bfloat16, float or double), got ${t.dtype}`);
}

/** Shared Conv/ConvInteger setup: validates channels and groups, returns output shape and geometry. */
function convSetup(x: NdArray, w: NdArray, at: ConvAttrs, ctx: Ctx) {
  const inS = spatialOf(x.shape, ctx), [n, c] = x.shape, m = w.shape[0];
  const kernel = kernelOf(at, w, inS.length, ctx);
  if (c % at.group !== 0 || w.shape[1] * at.group !== c) fail(ctx, `input 1 (W) should have C/group = ${c / at.group} input channels, got ${w.shape[1]} (W shape [${w.shape}], group ${at.group})`);
  if (m % at.group !== 0) fail(ctx, `input 1 (W) has ${m} output channels, not divisible by group ${at.group}`);
  const win = resolveWindow(at, inS, kernel, ctx);
  return { n, c, m, shape: [n, m, ...win.out], geom: geom3(inS, win) };
}

function convInfer(ins: (TypeInfo | undefined)[], at: ConvAttrs, dtype?: NdArray['dtype']): TypeInfo[] {
  const xs = shapeOf(ins[0]), ws = shapeOf(ins[1]), t = dtype ?? dtypeOf(ins[0]);
  if (!xs || xs.length < 3) return [tensorType(t)];
  const kernel = at.kernel ?? ws?.slice(2) ?? [];
  return [tensorType(t, [xs[0], ws?.[0] ?? null, ...inferWindowDims(at, xs.slice(2), kernel)])];
}

/**
 * Conv of the node's X, W and B. With `steps` (float32 WebAssembly epilogue steps, ops/fused.ts), a kernel
 * that can apply them as it writes the output does, and `stepped` says so.
 */
export function convForward(ins: (Value | undefined)[], at: ConvAttrs, ctx: RunCtx, steps?: readonly Step[]): { y: NdArray; stepped: boolean } {
  const x = tensorAt(ins, 0, ctx), w = tensorAt(ins, 1, ctx);
  checkFloat(x, 'input 0 (X)', ctx);
  if (w.dtype !== x.dtype) fail(ctx, `input 1 (W) should have dtype ${x.dtype} like X, got ${w.dtype}`);
  const { n, c, m, shape, geom } = convSetup(x, w, at, ctx);
  const y = NdArray.zeros(x.dtype, shape);
  const stepped = conv(x.data as Float32Array, w.data as Float32Array, y.data as Float32Array, n, c, m, at.group, geom, biasOf(optTensor(ins, 2, ctx), m, ctx), x.dtype === 'float32' ? steps : undefined);
  return { y, stepped };
}

register({
  op: 'Conv',
  attrs: readConv,
  infer: (ins, at: ConvAttrs) => convInfer(ins, at),
  run: (ins, at: ConvAttrs, ctx) => [convForward(ins, at, ctx).y],
});

/** t - zeroPoint as float64; zeroPoint is a scalar or, with `perChannel`, one value per leading index. */
function shiftedInt(t: NdArray, zp: NdArray | undefined, what: string, ctx: Ctx): Float64Array {
  const out = Float64Array.from(t.data as Int8Array);
  if (!zp) return out;
  if (zp.size !== 1 && zp.size !== t.shape[0]) fail(ctx, `${what} should be a scalar or have ${t.shape[0]} values, got shape [${zp.shape}]`);
  const zs = zp.size === 1 ? [] : [zp.size, ...new Array<number>(t.shape.length - 1).fill(1)];
  binaryBroadcast(out, t.shape, zp.data, zs, t.shape, out, (v: number, z: number) => v - z);
  return out;
}

register({
  op: 'ConvInteger',
  since: 10,
  attrs: readConv,
  infer: (ins, at: ConvAttrs) => convInfer(ins, at, 'int32'),
  run: (ins, at: ConvAttrs, ctx) => {
    const x = tensorAt(ins, 0, ctx), w = tensorAt(ins, 1, ctx);
    for (const [t, what] of [[x, 'input 0 (x)'], [w, 'input 1 (w)']] as const) {
      if (t.dtype !== 'int8' && t.dtype !== 'uint8') fail(ctx, `${what} should be int8 or uint8, got ${t.dtype}`);
    }
    const xzp = optTensor(ins, 2, ctx);
    if (xzp && xzp.size !== 1) fail(ctx, `input 2 (x_zero_point) should be a scalar, got shape [${xzp.shape}]`);
    const { n, c, m, shape, geom } = convSetup(x, w, at, ctx);
    const y = NdArray.zeros('int32', shape);
    const xs = shiftedInt(x, xzp, 'input 2 (x_zero_point)', ctx), ws = shiftedInt(w, optTensor(ins, 3, ctx), 'input 3 (w_zero_point)', ctx);
    conv(xs, ws, y.data as Int32Array, n, c, m, at.group, geom);
    return [y];
  },
});

/**
 * ConvTranspose output size and leading pad per dim. With output_shape (or SAME auto_pad) the total
 * padding is derived and split: SAME_UPPER puts the odd unit at the end, otherwise at the start.
 */
export function transposeWindow(at: ConvAttrs, inS: number[], kernel: number[], ctx: Ctx): Window {
  const r = inS.length;
  const strides = perDim(at.strides, r, 1, 'strides', ctx), dilations = perDim(at.dilations, r, 1, 'dilations', ctx);
  const pads = perDim(at.pads, r, 0, 'pads', ctx, 2 * r), adj = perDim(at.outputPadding, r, 0, 'output_padding', ctx);
  const target = at.outputShape ? at.outputShape.slice(-r) : undefined;
  if (target && target.length !== r) fail(ctx, `attribute output_shape should have ${r} spatial dims, got [${at.outputShape}]`);
  const win: Window = { kernel, strides, dilations, padBegin: [], padEnd: [], out: [] };
  for (let i = 0; i < r; i++) {
    const full = strides[i] * (inS[i] - 1) + adj[i] + (kernel[i] - 1) * dilations[i] + 1;
    let pb = pads[i], pe = pads[r + i];
    const want = target?.[i] ?? (at.autoPad.startsWith('SAME') ? inS[i] * strides[i] : undefined);
    if (want !== undefined) {
      const total = Math.max(0, full - want);
      pb = at.autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : total - Math.floor(total / 2);
      pe = total - pb;
    } else if (at.autoPad === 'VALID') pb = pe = 0;
    win.padBegin.push(pb); win.padEnd.push(pe); win.out.push(want ?? full - pb - pe);
  }
  return win;
}

register({
  op: 'ConvTranspose',
  attrs: readConv,
  infer: (ins, at: ConvAttrs, ctx) => {
    const xs = shapeOf(ins[0]), ws = shapeOf(ins[1]), t = dtypeOf(ins[0]);
    if (!xs || !ws || xs.length < 3) return [tensorType(t)];
    const m = typeof ws[1] === 'number' ? ws[1] * at.group : null, inS = xs.slice(2), kernel = at.kernel ?? ws.slice(2);
    if (inS.some((d) => typeof d !== 'number') || kernel.some((d) => typeof d !== 'number')) return [tensorType(t, [xs[0], m, ...inS.map(() => null)])];
    return [tensorType(t, [xs[0], m, ...transposeWindow(at, inS as number[], kernel as number[], ctx).out])];
  },
  run: (ins, at: ConvAttrs, ctx) => {
    const x = tensorAt(ins, 0, ctx), w = tensorAt(ins, 1, ctx);
    checkFloat(x, 'input 0 (X)', ctx);
    if (w.dtype !== x.dtype) fail(ctx, `input 1 (W) should have dtype ${x.dtype} like X, got ${w.dtype}`);
    const inS = spatialOf(x.shape, ctx), [n, c] = x.shape, m = w.shape[1] * at.group;
    if (w.shape[0] !== c) fail(ctx, `input 1 (W) should have ${c} input channels (dim 0) like X, got shape [${w.shape}]`);
    if (c % at.group !== 0) fail(ctx, `input 0 (X) has ${c} channels, not divisible by group ${at.group}`);
    const win = transposeWindow(at, inS, kernelOf(at, w, inS.length, ctx), ctx);
    const y = NdArray.zeros(x.dtype, [n, m, ...win.out]);
    convTranspose(x.data as Float32Array, w.data as Float32Array, y.data as Float32Array, n, c, m, at.group, geom3(inS, win), biasOf(optTensor(ins, 2, ctx), m, ctx));
    return [y];
  },
});
