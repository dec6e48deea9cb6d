// MaxPool, AveragePool, LpPool, their Global forms, and MaxUnpool.
import type { DType } from '../engine/dtype.js';
import type { TypeInfo } from '../engine/graph.js';
import { NdArray } from '../engine/tensor.js';
import { globalPool, pool, unpool, type PoolKind } from '../kernels/cpu/pool.js';
import { rowSumsWasm } from '../kernels/wasm/math.js';
import { geom3, inferWindowDims, isComputeFloat, readWindow, resolveWindow, spatialOf, to3, type WindowAttrs } from './conv.js';
import { fail, optTensor, register, tensorAt, type Attrs, type OpDef, type RunCtx } from './registry.js';
import { dtypeOf, shapeOf, tensorType } from './infer-rules.js';

type Ins = (TypeInfo | undefined)[];
interface PoolAttrs extends WindowAttrs { kernel: number[]; storageOrder: number; countPad: boolean; p: number }

function readPool(a: Attrs): PoolAttrs {
  const w = readWindow(a);
  if (!w.kernel) throw a.error(`missing required attribute 'kernel_shape'`);
  return { ...w, kernel: w.kernel, storageOrder: a.int('storage_order', 0), countPad: a.int('count_include_pad', 0) !== 0, p: a.float('p', 2) };
}

function checkInput(x: NdArray, ints: boolean, ctx: RunCtx) {
  const ok = isComputeFloat(x) || (ints && (x.dtype === 'int8' || x.dtype === 'uint8'));
  if (!ok) fail(ctx, `input 0 (X) should be a float${ints ? ', int8 or uint8' : ''} tensor, got ${x.dtype}`);
}

function poolInfer(ins: Ins, at: PoolAttrs, outputs = 1): TypeInfo[] {
  const xs = shapeOf(ins[0]), t = dtypeOf(ins[0]);
  const shape = xs && xs.length >= 3 ? [xs[0], xs[1], ...inferWindowDims(at, xs.slice(2), at.kernel)] : undefined;
  return [tensorType(t, shape), ...(outputs > 1 ? [tensorType('int64', shape)] : [])];
}

/** Runs one pooling kind over X; `indices` asks MaxPool for its second output. */
function runPool(x: NdArray, at: PoolAttrs, kind: 'max' | 'avg' | 'lp', indices: boolean, ctx: RunCtx): NdArray[] {
  const inS = spatialOf(x.shape, ctx);
  if (at.kernel.length !== inS.length) fail(ctx, `kernel_shape [${at.kernel}] should have ${inS.length} dims for input 0 (X) of shape [${x.shape}]`);
  const win = resolveWindow(at, inS, at.kernel, ctx), shape = [x.shape[0], x.shape[1], ...win.out];
  const y = NdArray.zeros(x.dtype, shape), idx = indices ? NdArray.zeros('int64', shape) : undefined;
  const how: PoolKind = kind === 'max' ? { kind, indices: idx?.data as BigInt64Array, colMajor: at.storageOrder === 1 }
    : kind === 'avg' ? { kind, countPad: at.countPad, padEnd: to3(win.padEnd, 0) } : { kind, p: at.p };
  pool(x.data as Float32Array, y.data as Float32Array, x.shape[0] * x.shape[1], geom3(inS, win), how);
  return idx ? [y, idx] : [y];
}

const windowPool = (op: string, kind: 'max' | 'avg' | 'lp'): OpDef<PoolAttrs> => ({
  op,
  attrs: readPool,
  infer: (ins, at, ctx) => poolInfer(ins, at, ctx.node.outputs.length),
  run: (ins, at, ctx) => {
    const x = tensorAt(ins, 0, ctx);
    checkInput(x, kind === 'max', ctx);
    return runPool(x, at, kind, kind === 'max' && !!ctx.node.outputs[1], ctx);
  },
});

/** GlobalMaxPool / GlobalAveragePool / GlobalLpPool: every spatial dim reduces to 1. */
const globalOp = (op: string, kind: 'max' | 'avg' | 'lp'): OpDef<number> => ({
  op,
  attrs: (a) => a.int('p', 2),
  infer: (ins) => {
    const xs = shapeOf(ins[0]);
    return [tensorType(dtypeOf(ins[0]), xs && xs.length >= 2 ? [xs[0], xs[1], ...xs.slice(2).map(() => 1)] : undefined)];
  },
  run: (ins, p, ctx) => {
    const x = tensorAt(ins, 0, ctx);
    checkInput(x, false, ctx);
    if (x.shape.length < 2) fail(ctx, `input 0 (X) should be N x C x D1..., got shape [${x.shape}]`);
    const planes = x.shape[0] * x.shape[1], y = NdArray.zeros(x.dtype, [x.shape[0], x.shape[1], ...x.shape.slice(2).map(() => 1)]);
    const size = planes ? x.size / planes : 0;
    if (kind !== 'avg' || !rowSumsWasm(x.data, planes, size, y.data, 1 / size)) globalPool(x.data as Float32Array, y.data as Float32Array, planes, size, kind, p);
    return [y];
  },
});

register(
  windowPool('MaxPool', 'max'), windowPool('AveragePool', 'avg'), windowPool('LpPool', 'lp'),
  globalOp('GlobalMaxPool', 'max'), globalOp('GlobalAveragePool', 'avg'), globalOp('GlobalLpPool', 'lp'),
);

/** MaxUnpool's default output size along spatial dim i: the inverse of pooling's, (in - 1) * stride + kernel - pads. */
const unpoolDim = (n: number, i: number, r: number, at: PoolAttrs) =>
  (n - 1) * (at.strides?.[i] ?? 1) + at.kernel[i] - (at.pads?.[i] ?? 0) - (at.pads?.[r + i] ?? 0);

function unpoolShape(xs: readonly number[], at: PoolAttrs, ctx: RunCtx): number[] {
  const inS = spatialOf(xs, ctx), r = inS.length;
  if (at.kernel.length !== r) fail(ctx, `kernel_shape [${at.kernel}] should have ${r} dims for input 0 (X) of shape [${xs}]`);
  return [xs[0], xs[1], ...inS.map((n, i) => unpoolDim(n, i, r, at))];
}

register({
  op: 'MaxUnpool',
  since: 9,
  attrs: readPool,
  infer: (ins, at: PoolAttrs) => {
    const xs = shapeOf(ins[0]), t = dtypeOf(ins[0]);
    if (!xs || xs.length < 3 || ins[2]) return [tensorType(t)];
    const r = xs.length - 2;
    return [tensorType(t, xs.map((n, i) => (i < 2 ? n : typeof n === 'number' ? unpoolDim(n, i - 2, r, at) : null)))];
  },
  run: (ins, at: PoolAttrs, ctx) => {
    const x = tensorAt(ins, 0, ctx), ind = tensorAt(ins, 1, ctx), os = optTensor(ins, 2, ctx);
    checkInput(x, false, ctx);
    if (ind.dtype !== 'int64' || ind.size !== x.size) fail(ctx, `input 1 (I) should be int64 with the shape of X [${x.shape}], got ${ind.dtype} [${ind.shape}]`);
    const dflt = unpoolShape(x.shape, at, ctx), shape = os ? os.numbers() : dflt;
    if (shape.length !== x.shape.length || shape[0] !== x.shape[0] || shape[1] !== x.shape[1]) fail(ctx, `input 2 (output_shape) [${shape}] should be [${x.shape.slice(0, 2)}, ...] with rank ${x.shape.length}`);
    const y = NdArray.zeros(x.dtype as DType, shape);
    const bad = unpool(x.data as Float32Array, ind.data as BigInt64Array, y.data as Float32Array, dflt, shape);
    if (bad >= 0) fail(ctx, `input 1 (I) holds index ${ind.data[bad]}, outside the unpooled shape [${dflt}] or the output [${shape}]`);
    return [y];
  },
});
