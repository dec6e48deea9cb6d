// Image and detection ops: GridSample, AffineGrid, RoiAlign, MaxRoiPool, NonMaxSuppression, Col2Im
// and DeformConv. Sampling follows the ONNX reference (itself PyTorch's and onnxruntime's behaviour).
import { isBigInt, isFloat, type DType } from '../engine/dtype.js';
import { NdArray, type Value } from '../engine/tensor.js';
import * as K from '../kernels/cpu/image.js';
import { dtypeOf, shapeOf, tensorType } from './infer-rules.js';
import { type Attrs, fail, optTensor, register, tensorAt, type RunCtx } from './registry.js';

type Ins = (Value | undefined)[];
type Ctx = { node: RunCtx['node'] };

const name = (ctx: Ctx, i: number) => `input ${i} ('${ctx.node.inputs[i] ?? ''}')`;
const COMPUTE_FLOATS: ReadonlySet<DType> = new Set(['float32', 'float64', 'float16', 'bfloat16']);

function floatAt(ins: Ins, i: number, ctx: Ctx): NdArray {
  const t = tensorAt(ins, i, ctx);
  if (!COMPUTE_FLOATS.has(t.dtype)) fail(ctx, `${name(ctx, i)} has dtype ${t.dtype}; expected float16, bfloat16, float or double`);
  return t;
}

function sameDtype(t: NdArray, i: number, ref: NdArray, ctx: Ctx): NdArray {
  if (t.dtype !== ref.dtype) fail(ctx, `${name(ctx, i)} has dtype ${t.dtype}; expected ${ref.dtype} like input 0`);
  return t;
}

function shapeIs(t: NdArray, i: number, want: readonly number[], ctx: Ctx, what = ''): void {
  if (t.shape.length !== want.length || t.shape.some((v, k) => v !== want[k])) fail(ctx, `${name(ctx, i)} has shape [${t.shape}]; expected [${want}]${what}`);
}

/** Numeric tensors as numbers: 64-bit integers go through float64 (exact below 2^53). */
function numericData(t: NdArray, i: number, ctx: Ctx): ArrayLike<number> {
  if (t.dtype === 'string' || t.dtype === 'bool' || t.dtype.startsWith('complex')) fail(ctx, `${name(ctx, i)} has dtype ${t.dtype}; expected a numeric type`);
  return isBigInt(t.dtype) ? Float64Array.from(t.data as BigInt64Array, Number) : (t.data as Float32Array);
}

/** Output of `dtype`: computed into float64 for 64-bit integers (truncated back), else written directly. */
function withOutput(dtype: DType, shape: number[], compute: (out: Float32Array) => void): NdArray {
  const y = NdArray.zeros(dtype, shape);
  if (!isBigInt(dtype)) { compute(y.data as Float32Array); return y; }
  const tmp = new Float64Array(y.size);
  compute(tmp as unknown as Float32Array);
  const d = y.data as BigInt64Array;
  for (let i = 0; i < tmp.length; i++) d[i] = Number.isFinite(tmp[i]) ? BigInt(Math.trunc(tmp[i])) : 0n;
  return y;
}

/** A 1-D int64 input of `len` values (or any length when len is undefined). */
function intList(ins: Ins, i: number, ctx: Ctx, len?: number): number[] {
  const t = tensorAt(ins, i, ctx);
  if (t.dtype !== 'int64' || t.shape.length !== 1 || (len !== undefined && t.size !== len)) fail(ctx, `${name(ctx, i)} should be a 1-D int64 tensor${len === undefined ? '' : ` of ${len} values`}, got ${t.dtype} [${t.shape}]`);
  return t.numbers();
}

function oneOf<T extends string>(a: Attrs, attr: string, def: T, values: readonly T[]): T {
  const v = a.string(attr, def) as T;
  if (!values.includes(v)) throw a.error(`attribute '${attr}' should be one of ${values.join(', ')}, got '${v}'`);
  return v;
}

interface GridAttrs { mode: K.GridMode; padding: K.GridPadding; alignCorners: boolean; opset: number }

register({
  op: 'GridSample', since: 16,
  attrs: (a, opset): GridAttrs => {
    // Opset 20 renamed bilinear/bicubic to linear/cubic when it generalized the op to N-D.
    const old = opset < 20, names = old ? ['bilinear', 'nearest', 'bicubic'] as const : ['linear', 'nearest', 'cubic'] as const;
    const mode = oneOf<string>(a, 'mode', names[0], names);
    return {
      mode: mode === 'bilinear' ? 'linear' : mode === 'bicubic' ? 'cubic' : mode as K.GridMode,
      padding: oneOf(a, 'padding_mode', 'zeros', ['zeros', 'border', 'reflection'] as const),
      alignCorners: a.int('align_corners', 0) !== 0, opset,
    };
  },
  infer: (ins) => {
    const xs = shapeOf(ins[0]), gs = shapeOf(ins[1]);
    return [tensorType(dtypeOf(ins[0]), xs && gs ? [xs[0], xs[1], ...gs.slice(1, -1)] : undefined)];
  },
  run: (ins, at: GridAttrs, ctx) => {
    const x = tensorAt(ins, 0, ctx), grid = floatAt(ins, 1, ctx), r = x.shape.length - 2;
    if (at.opset < 20 ? r !== 2 : r < 1) fail(ctx, `${name(ctx, 0)} has shape [${x.shape}]; expected ${at.opset < 20 ? 'N x C x H x W at opset < 20' : 'N x C x D1 x ... (rank >= 3)'}`);
    const [n, c] = x.shape, outS = grid.shape.slice(1, -1);
    if (grid.shape.length !== r + 2 || grid.shape[0] !== n || grid.shape[r + 1] !== r) fail(ctx, `${name(ctx, 1)} has shape [${grid.shape}]; expected [${n}, ${r} output dims, ${r}]`);
    const data = numericData(x, 0, ctx);
    return [withOutput(x.dtype, [n, c, ...outS], (out) => K.gridSample({
      x: data, n, c, inS: x.shape.slice(2), grid: grid.data as Float32Array, outS, mode: at.mode, padding: at.padding, alignCorners: at.alignCorners, out,
    }))];
  },
});

register({
  op: 'AffineGrid', since: 20,
  attrs: (a) => a.int('align_corners', 0) !== 0,
  run: (ins, align: boolean, ctx) => {
    const theta = floatAt(ins, 0, ctx), size = intList(ins, 1, ctx), r = size.length - 2;
    if (r !== 2 && r !== 3) fail(ctx, `${name(ctx, 1)} should hold (N, C, H, W) or (N, C, D, H, W), got [${size}]`);
    const n = size[0], dims = size.slice(2);
    shapeIs(theta, 0, [n, r, r + 1], ctx, ` for ${r}-D size [${size}]`);
    if (dims.some((d) => d <= 0)) fail(ctx, `${name(ctx, 1)} should have positive spatial sizes, got [${size}]`);
    const y = NdArray.zeros(theta.dtype, [n, ...dims, r]);
    K.affineGrid(theta.data as Float32Array, n, dims, align, y.data as Float32Array);
    return [y];
  },
});

interface RoiAttrs { mode: 'avg' | 'max'; oh: number; ow: number; samplingRatio: number; spatialScale: number; halfPixel: boolean }

register({
  op: 'RoiAlign', since: 10,
  attrs: (a, opset): RoiAttrs => {
    const at = {
      mode: oneOf(a, 'mode', 'avg', ['avg', 'max'] as const), oh: a.int('output_height', 1), ow: a.int('output_width', 1),
      samplingRatio: a.int('sampling_ratio', 0), spatialScale: a.float('spatial_scale', 1),
      // Opset 16 added the mode and made half_pixel the default; before it the behaviour was output_half_pixel.
      halfPixel: opset >= 16 && oneOf(a, 'coordinate_transformation_mode', 'half_pixel', ['half_pixel', 'output_half_pixel'] as const) === 'half_pixel',
    };
    if (at.oh < 1 || at.ow < 1) throw a.error(`output_height and output_width should be >= 1, got ${at.oh}, ${at.ow}`);
    if (at.samplingRatio < 0) throw a.error(`sampling_ratio should be >= 0, got ${at.samplingRatio}`);
    return at;
  },
  infer: (ins, at: RoiAttrs) => [tensorType(dtypeOf(ins[0]), [shapeOf(ins[1])?.[0] ?? null, shapeOf(ins[0])?.[1] ?? null, at.oh, at.ow])],
  run: (ins, at: RoiAttrs, ctx) => {
    const x = floatAt(ins, 0, ctx), rois = sameDtype(tensorAt(ins, 1, ctx), 1, x, ctx), bi = tensorAt(ins, 2, ctx);
    if (x.shape.length !== 4) fail(ctx, `${name(ctx, 0)} has shape [${x.shape}]; expected N x C x H x W`);
    const count = rois.shape[0];
    shapeIs(rois, 1, [count, 4], ctx);
    if (bi.dtype !== 'int64') fail(ctx, `${name(ctx, 2)} has dtype ${bi.dtype}; expected int64`);
    shapeIs(bi, 2, [count], ctx, ' (one batch index per RoI)');
    const batch = bi.numbers(), [n, c, h, w] = x.shape;
    if (batch.some((b) => b < 0 || b >= n)) fail(ctx, `${name(ctx, 2)} holds a batch index outside [0, ${n})`);
    const y = NdArray.zeros(x.dtype, [count, c, at.oh, at.ow]);
    K.roiAlign({
      x: x.data as Float32Array, c, h, w, rois: rois.data as Float32Array, batch, count, ph: at.oh, pw: at.ow,
      samplingRatio: at.samplingRatio, spatialScale: at.spatialScale, halfPixel: at.halfPixel, max: at.mode === 'max', out: y.data as Float32Array,
    });
    return [y];
  },
});

register({
  op: 'MaxRoiPool',
  attrs: (a) => {
    const pooled = a.ints('pooled_shape');
    if (pooled.length !== 2 || pooled.some((v) => v < 1)) throw a.error(`pooled_shape should be two positive ints, got [${pooled}]`);
    return { pooled, scale: a.float('spatial_scale', 1) };
  },
  infer: (ins, at: { pooled: number[] }) => [tensorType(dtypeOf(ins[0]), [shapeOf(ins[1])?.[0] ?? null, shapeOf(ins[0])?.[1] ?? null, ...at.pooled])],
  run: (ins, at: { pooled: number[]; scale: number }, ctx) => {
    const x = floatAt(ins, 0, ctx), rois = sameDtype(tensorAt(ins, 1, ctx), 1, x, ctx), count = rois.shape[0];
    if (x.shape.length !== 4) fail(ctx, `${name(ctx, 0)} has shape [${x.shape}]; expected N x C x H x W`);
    shapeIs(rois, 1, [count, 5], ctx, ' ([batch_id, x1, y1, x2, y2] per RoI)');
    const [n, c, h, w] = x.shape, rd = rois.data as Float32Array;
    for (let r = 0; r < count; r++) if (!(Number.isInteger(rd[r * 5]) && rd[r * 5] >= 0 && rd[r * 5] < n)) fail(ctx, `RoI ${r} has batch id ${rd[r * 5]}, outside [0, ${n})`);
    const y = NdArray.zeros(x.dtype, [count, c, ...at.pooled]);
    K.maxRoiPool(x.data as Float32Array, c, h, w, rd, count, at.pooled[0], at.pooled[1], at.scale, y.data as Float32Array);
    return [y];
  },
});

/** An optional scalar input (or a 1-element tensor); undefined when omitted or empty. */
function scalarAt(ins: Ins, i: number, ctx: Ctx, ok: (d: DType) => boolean, what: string): number | undefined {
  const t = optTensor(ins, i, ctx);
  if (!t || t.size === 0) return undefined;
  if (!ok(t.dtype) || t.size !== 1) fail(ctx, `${name(ctx, i)} should be a ${what} scalar, got ${t.dtype} [${t.shape}]`);
  return Number(t.data[0]);
}

register({
  op: 'NonMaxSuppression', since: 10,
  attrs: (a) => {
    const center = a.int('center_point_box', 0);
    if (center !== 0 && center !== 1) throw a.error(`center_point_box should be 0 or 1, got ${center}`);
    return center === 1;
  },
  infer: () => [tensorType('int64', [null, 3])],
  run: (ins, center: boolean, ctx) => {
    const boxes = floatAt(ins, 0, ctx), scores = sameDtype(tensorAt(ins, 1, ctx), 1, boxes, ctx);
    const [batches, count] = boxes.shape, classes = scores.shape[1];
    shapeIs(boxes, 0, [batches, count, 4], ctx);
    shapeIs(scores, 1, [batches, classes, count], ctx, ' (batches, classes, boxes)');
    const maxPerClass = Math.max(0, scalarAt(ins, 2, ctx, (d) => d === 'int64', 'int64') ?? 0);
    const sel = K.nms({
      boxes: boxes.data as Float32Array, scores: scores.data as Float32Array, batches, classes, count, center, maxPerClass,
      iou: scalarAt(ins, 3, ctx, isFloat, 'float') ?? 0, scoreThreshold: scalarAt(ins, 4, ctx, isFloat, 'float'),
    });
    return [new NdArray('int64', [sel.length / 3, 3], BigInt64Array.from(sel, BigInt))];
  },
});

export interface WindowLists { strides?: number[]; dilations?: number[]; pads?: number[] }

const windowLists = (a: Attrs): WindowLists => {
  const list = (attr: string, min: number) => {
    const v = a.has(attr) ? a.ints(attr) : undefined;
    if (v?.some((x) => x < min)) throw a.error(`${attr} should all be >= ${min}, got [${v}]`);
    return v;
  };
  return { strides: list('strides', 1), dilations: list('dilations', 1), pads: list('pads', 0) };
};

/** Strides, dilations and leading pads per dim, with the total pad per dim; lists checked against rank r. */
export function windowOf(at: WindowLists, k: number[], ctx: Ctx) {
  const r = k.length, get = (v: number[] | undefined, def: number, attr: string, len = r) => {
    if (v && v.length !== len) fail(ctx, `attribute ${attr} should have ${len} values for ${r} spatial dims, got [${v}]`);
    return v ?? new Array<number>(len).fill(def);
  };
  const pads = get(at.pads, 0, 'pads', 2 * r);
  const g: K.WindowN = { k, s: get(at.strides, 1, 'strides'), d: get(at.dilations, 1, 'dilations'), pb: pads.slice(0, r) };
  return { g, padTotal: k.map((_, i) => pads[i] + pads[r + i]) };
}

/** Window positions along each dim: floor((n + pads - dilated extent) / stride) + 1. */
export const positions = (dims: readonly number[], g: K.WindowN, padTotal: number[]) =>
  dims.map((n, i) => Math.floor((n + padTotal[i] - ((g.k[i] - 1) * g.d[i] + 1)) / g.s[i]) + 1);

register({
  op: 'Col2Im', since: 18,
  attrs: windowLists,
  run: (ins, at: WindowLists, ctx) => {
    const x = tensorAt(ins, 0, ctx), dims = intList(ins, 1, ctx), k = intList(ins, 2, ctx, dims.length);
    if (dims.length < 1 || k.some((v) => v < 1) || dims.some((v) => v < 0)) fail(ctx, `image_shape [${dims}] and block_shape [${k}] should be non-empty, sizes positive`);
    if (x.shape.length !== 3) fail(ctx, `${name(ctx, 0)} has shape [${x.shape}]; expected (N, C * prod(block_shape), L)`);
    const { g, padTotal } = windowOf(at, k, ctx), nb = positions(dims, g, padTotal), K_ = k.reduce((a, b) => a * b, 1);
    const [n, ck, L] = x.shape, want = nb.reduce((a, b) => a * b, 1);
    if (ck % K_ !== 0) fail(ctx, `${name(ctx, 0)} dim 1 (${ck}) is not a multiple of prod(block_shape) = ${K_}`);
    if (nb.some((v) => v < 1) || L !== want) fail(ctx, `${name(ctx, 0)} has ${L} blocks; image [${dims}] with block [${k}] and these strides/pads/dilations gives [${nb}] = ${want}`);
    const c = ck / K_, data = numericData(x, 0, ctx);
    return [withOutput(x.dtype, [n, c, ...dims], (out) => K.col2im(data, n, c, dims, nb, g, out))];
  },
});

interface DeformAttrs extends WindowLists { group: number; offsetGroup: number; kernel?: number[] }

register({
  op: 'DeformConv', since: 19,
  attrs: (a): DeformAttrs => {
    const at = { ...windowLists(a), group: a.int('group', 1), offsetGroup: a.int('offset_group', 1), kernel: a.has('kernel_shape') ? a.ints('kernel_shape') : undefined };
    if (at.group < 1 || at.offsetGroup < 1) throw a.error(`group and offset_group should be >= 1, got ${at.group}, ${at.offsetGroup}`);
    return at;
  },
  infer: (ins) => {
    const xs = shapeOf(ins[0]), ws = shapeOf(ins[1]), os = shapeOf(ins[2]);
    return [tensorType(dtypeOf(ins[0]), xs && os ? [xs[0], ws?.[0] ?? null, ...os.slice(2)] : undefined)];
  },
  run: (ins, at: DeformAttrs, ctx) => {
    const x = floatAt(ins, 0, ctx), w = sameDtype(tensorAt(ins, 1, ctx), 1, x, ctx), offset = sameDtype(tensorAt(ins, 2, ctx), 2, x, ctx);
    const b = optTensor(ins, 3, ctx), mask = optTensor(ins, 4, ctx), r = x.shape.length - 2;
    if (r < 1) fail(ctx, `${name(ctx, 0)} has shape [${x.shape}]; expected N x C x D1 x ...`);
    const [n, c] = x.shape, m = w.shape[0], k = w.shape.slice(2);
    if (w.shape.length !== r + 2 || w.shape[1] * at.group !== c || m % at.group !== 0) fail(ctx, `${name(ctx, 1)} has shape [${w.shape}]; expected (oC, C/group = ${c / at.group}, kernel...) with oC divisible by group ${at.group}`);
    if (at.kernel && at.kernel.join() !== k.join()) fail(ctx, `kernel_shape [${at.kernel}] does not match W's spatial dims [${k}]`);
    if (c % at.offsetGroup !== 0) fail(ctx, `input channels ${c} are not divisible by offset_group ${at.offsetGroup}`);
    const { g, padTotal } = windowOf(at, k, ctx), outS = positions(x.shape.slice(2), g, padTotal), taps = k.reduce((p, v) => p * v, 1);
    if (outS.some((v) => v < 1)) fail(ctx, `the dilated kernel [${k}] does not fit the padded input [${x.shape}]`);
    shapeIs(offset, 2, [n, at.offsetGroup * taps * r, ...outS], ctx, ' (N, offset_group * prod(kernel) * spatial rank, output dims...)');
    if (mask) shapeIs(sameDtype(mask, 4, x, ctx), 4, [n, at.offsetGroup * taps, ...outS], ctx, ' (N, offset_group * prod(kernel), output dims...)');
    const y = NdArray.zeros(x.dtype, [n, m, ...outS]), yd = y.data as Float32Array, plane = y.size / Math.max(1, n * m);
    if (b) {
      shapeIs(sameDtype(b, 3, x, ctx), 3, [m], ctx);
      for (let i = 0; i < n * m; i++) yd.fill((b.data as Float32Array)[i % m], i * plane, (i + 1) * plane);
    }
    K.deformConv({
      x: x.data as Float32Array, n, c, inS: x.shape.slice(2), w: w.data as Float32Array, m, group: at.group, offsetGroup: at.offsetGroup,
      offset: offset.data as Float32Array, mask: mask?.data as Float32Array | undefined, outS, g, y: yd,
    });
    return [y];
  },
});
