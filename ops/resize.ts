// Resize (opset 10, 11, 13, 18, 19) and the deprecated Upsample (7, 9). Opset 10 Resize and Upsample
// sample asymmetrically and pick the nearest pixel by truncation (ceiling when downscaling), as
// onnxruntime does; from 11 on every coordinate mode, nearest rounding, cubic and tf_crop_and_resize
// apply, and 18 adds axes, keep_aspect_ratio_policy and antialias.
import { isBigInt, isFloat, isInteger, lanes, type DType } from '../engine/dtype.js';
import type { Node, TypeInfo } from '../engine/graph.js';
import { NdArray } from '../engine/tensor.js';
import {
  axisTaps, cubicWeight, gatherAxis, identityTaps, isIdentity, linearWeight, nearestPlanes, resampleAxis, weightedPlanes,
  type AxisSpec, type CoordMode, type Filter, type Taps,
} from '../kernels/cpu/resize.js';
import { dtypeOf, shapeOf, tensorType } from './infer-rules.js';
import { extreme, normAxis } from './reduce.js';
import { fail, optTensor, register, tensorAt, type Attrs, type OpDef } from './registry.js';

type Ctx = { node: Node };
type Mode = 'nearest' | 'linear' | 'cubic';
type Rounding = (c: number, down: boolean) => number;

const ROUNDING: Record<string, Rounding> = {
  round_prefer_floor: (c) => Math.ceil(c - 0.5),
  round_prefer_ceil: (c) => Math.floor(c + 0.5),
  floor: Math.floor,
  ceil: Math.ceil,
  // Opset 10 and Upsample: truncate, or round up when downscaling.
  legacy: (c, down) => (down ? Math.ceil(c) : Math.trunc(c)),
};
const COORDS: CoordMode[] = ['half_pixel', 'half_pixel_symmetric', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn', 'tf_crop_and_resize'];

export interface ResizeAttrs {
  mode: Mode; coord: CoordMode; round: Rounding; cubicA: number; exclude: boolean; fill: number;
  antialias: boolean; axes?: number[]; policy: string;
  /** Input indices of roi, scales and sizes (-1 when the version has none); Upsample-7 has `scales` as an attribute. */
  inputs: [number, number, number]; scales?: number[];
}

function pick<T extends string>(a: Attrs, name: string, def: T, allowed: readonly T[]): T {
  const v = a.string(name, def) as T;
  if (!allowed.includes(v)) throw a.error(`attribute '${name}' is '${v}', expected one of ${allowed.join(', ')}`);
  return v;
}

/** Opset 10 Resize, Upsample 7 and 9: nearest or linear, asymmetric, scales only. */
const legacyAttrs = (scalesAttr: boolean) => (a: Attrs): ResizeAttrs => ({
  mode: pick<Mode>(a, 'mode', 'nearest', ['nearest', 'linear']), coord: 'asymmetric', round: ROUNDING.legacy,
  cubicA: -0.75, exclude: false, fill: 0, antialias: false, policy: 'stretch',
  inputs: [-1, scalesAttr ? -1 : 1, -1], scales: scalesAttr ? a.floats('scales') : undefined,
});

function resizeAttrs(a: Attrs): ResizeAttrs {
  return {
    mode: pick<Mode>(a, 'mode', 'nearest', ['nearest', 'linear', 'cubic']),
    coord: pick(a, 'coordinate_transformation_mode', 'half_pixel', COORDS),
    round: ROUNDING[pick(a, 'nearest_mode', 'round_prefer_floor', ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'])],
    cubicA: a.float('cubic_coeff_a', -0.75),
    exclude: a.int('exclude_outside', 0) !== 0,
    fill: a.float('extrapolation_value', 0),
    antialias: a.int('antialias', 0) !== 0,
    axes: a.has('axes') ? a.ints('axes') : undefined,
    policy: pick(a, 'keep_aspect_ratio_policy', 'stretch', ['stretch', 'not_larger', 'not_smaller']),
    inputs: [1, 2, 3],
  };
}

/** A non-empty optional input, as numbers. */
function listInput(ins: Parameters<OpDef['run']>[0], i: number, ctx: Ctx): number[] | undefined {
  if (i < 0) return undefined;
  const t = optTensor(ins, i, ctx);
  return t && t.size ? t.numbers() : undefined;
}

/** Per-axis specs for the full rank: axes outside `axes` keep their size. */
function axisSpecs(x: NdArray, a: ResizeAttrs, ins: Parameters<OpDef['run']>[0], ctx: Ctx): AxisSpec[] {
  const rank = x.shape.length, axes = (a.axes ?? [...Array(rank).keys()]).map((d) => normAxis(ctx, d, rank, 'axes entry'));
  const [roiAt, scalesAt, sizesAt] = a.inputs, n = axes.length;
  const roi = a.coord === 'tf_crop_and_resize' ? listInput(ins, roiAt, ctx) : undefined;
  const scales = a.scales ?? listInput(ins, scalesAt, ctx), sizes = listInput(ins, sizesAt, ctx);
  if (!!scales === !!sizes) fail(ctx, `exactly one of 'scales' and 'sizes' must be given${scales ? ', got both' : ''}`);
  const given = (scales ?? sizes)!;
  if (given.length !== n) fail(ctx, `'${scales ? 'scales' : 'sizes'}' has ${given.length} entries, expected ${n} (one per resized axis)`);
  if (roi && roi.length !== 2 * n) fail(ctx, `'roi' has ${roi.length} entries, expected ${2 * n}`);
  if (a.coord === 'tf_crop_and_resize' && !roi) fail(ctx, `'roi' is required with tf_crop_and_resize`);
  const specs: AxisSpec[] = x.shape.map((d) => ({ inLen: d, outLen: d, scale: 1, coord: a.coord, roi: [0, 1] }));
  // keep_aspect_ratio_policy replaces the sizes with one scale shared by every resized axis.
  const ratios = sizes?.map((s, i) => s / x.shape[axes[i]]);
  const shared = ratios && a.policy !== 'stretch' ? (a.policy === 'not_larger' ? Math.min : Math.max)(...ratios) : undefined;
  axes.forEach((d, i) => {
    const s = specs[d];
    if (roi) s.roi = [roi[i], roi[n + i]];
    if (scales) {
      if (!(scales[i] > 0)) fail(ctx, `scale ${scales[i]} for axis ${d} should be positive`);
      s.scale = scales[i];
      // In float32 like onnxruntime (2.6 * 5 is 13 there, 12.99... in float64). The roi does not scale
      // the size, though the spec's formula says so: onnxruntime and the reference tests ignore it.
      s.outLen = Math.floor(Math.fround(s.inLen * s.scale));
    } else {
      if (sizes![i] < 0) fail(ctx, `size ${sizes![i]} for axis ${d} should not be negative`);
      s.scale = shared ?? ratios![i];
      s.outLen = shared === undefined ? sizes![i] : Math.floor(shared * s.inLen + 0.5);
    }
    if (s.inLen === 0 && s.outLen > 0) fail(ctx, `axis ${d} is empty and cannot be resized to ${s.outLen}`);
  });
  return specs;
}

export function filterFor(a: ResizeAttrs, s: AxisSpec): Filter {
  if (a.mode === 'nearest') return { round: (c) => a.round(c, s.scale < 1) };
  return a.mode === 'linear' ? { radius: 1, weight: linearWeight } : { radius: 2, weight: cubicWeight(a.cubicA) };
}

/** Stores float64 results in `dtype`: integers truncate toward zero like onnxruntime, saturating at the type's range. */
function storeAs(dtype: DType, src: Float64Array, shape: number[]): NdArray {
  const out = NdArray.zeros(dtype, shape);
  if (isFloat(dtype)) { (out.data as Float32Array).set(src); return out; }
  const lo = Number(extreme(dtype, false)), hi = Number(extreme(dtype, true)), d = out.data as any;
  for (let i = 0; i < src.length; i++) {
    const v = Math.min(Math.max(Math.trunc(src[i]), lo), hi);
    d[i] = isBigInt(dtype) ? BigInt(v) : v;
  }
  return out;
}

function runResize(ins: Parameters<OpDef['run']>[0], a: ResizeAttrs, ctx: Ctx): NdArray[] {
  const x = tensorAt(ins, 0, ctx), specs = axisSpecs(x, a, ins, ctx), nearest = a.mode === 'nearest';
  if (!nearest && !(isFloat(x.dtype) || isInteger(x.dtype))) fail(ctx, `input 0 ('X') has dtype ${x.dtype}: ${a.mode} mode needs numbers`);
  const shape = [...x.shape], perElem = lanes(x.dtype);
  const passes: [number, Taps][] = [];
  specs.forEach((s, d) => {
    const t = axisTaps(s, filterFor(a, s), a.antialias, a.exclude);
    if (!isIdentity(t, s.inLen)) passes.push([d, t]);
  });
  const planar = planarResize(x, specs, passes, nearest);
  if (planar) return [planar];
  // Shrinking axes first: later passes then work on less data.
  passes.sort(([d], [e]) => specs[d].outLen / (specs[d].inLen || 1) - specs[e].outLen / (specs[e].inLen || 1));
  let data: any = nearest ? x.data : Float64Array.from(x.data as ArrayLike<number | bigint>, Number);
  const fill = x.dtype === 'string' ? '' : isBigInt(x.dtype) ? BigInt(Math.trunc(a.fill)) : a.fill;
  for (const [d, t] of passes) {
    const outer = shape.slice(0, d).reduce((p, v) => p * v, 1), inner = shape.slice(d + 1).reduce((p, v) => p * v, 1) * perElem;
    const n = shape[d];
    shape[d] = specs[d].outLen;
    if (nearest) {
      const out = NdArray.zeros(x.dtype, shape).data;
      gatherAxis(data, outer, n, inner, t, fill, out);
      data = out;
    } else data = resampleAxis(data, outer, n, inner, t, a.fill);
  }
  return [nearest ? new NdArray(x.dtype, shape, data) : storeAs(x.dtype, data, shape)];
}

/**
 * The resize in one sweep over the planes of the two innermost axes, when only those are resized and
 * nothing is extrapolated: any storage for nearest, float32 storage (narrow floats included) otherwise.
 */
function planarResize(x: NdArray, specs: AxisSpec[], passes: [number, Taps][], nearest: boolean): NdArray | undefined {
  const rank = x.shape.length;
  if (rank < 2 || lanes(x.dtype) !== 1 || !passes.length || passes.some(([d, t]) => d < rank - 2 || t.outside.some((o) => o))) return undefined;
  if (!nearest && !(isFloat(x.dtype) && x.data instanceof Float32Array)) return undefined;
  const [h, w] = x.shape.slice(-2), outer = x.shape.slice(0, -2).reduce((p, v) => p * v, 1);
  const ty = passes.find(([d]) => d === rank - 2)?.[1] ?? identityTaps(h), tx = passes.find(([d]) => d === rank - 1)?.[1] ?? identityTaps(w);
  const out = NdArray.zeros(x.dtype, [...x.shape.slice(0, -2), specs[rank - 2].outLen, specs[rank - 1].outLen]);
  if (nearest) nearestPlanes(x.data, outer, h, w, ty.idx, tx.idx, out.data);
  else weightedPlanes(x.data as Float32Array, outer, h, w, ty, tx, out.data as Float32Array);
  return out;
}

/** Rank is kept; sizes are known only for axes left alone or scaled by an attribute (Upsample-7). */
function inferResize(ins: (TypeInfo | undefined)[], a: ResizeAttrs): TypeInfo[] {
  const shape = shapeOf(ins[0]), rank = shape?.length ?? 0;
  const resized = new Set((a.axes ?? [...Array(rank).keys()]).map((d) => (d < 0 ? d + rank : d)));
  return [tensorType(dtypeOf(ins[0]), shape?.map((d, i) => {
    if (a.scales) return typeof d === 'number' ? Math.floor(d * a.scales[i]) : a.scales[i] === 1 ? d : null;
    return resized.has(i) ? null : d;
  }))];
}

const def = (op: string, since: number, attrs: (a: Attrs) => ResizeAttrs): OpDef<ResizeAttrs> =>
  ({ op, since, attrs, infer: inferResize, run: runResize });

register(
  def('Upsample', 7, legacyAttrs(true)),
  def('Upsample', 9, legacyAttrs(false)),
  def('Resize', 10, legacyAttrs(false)),
  def('Resize', 11, resizeAttrs),
);
