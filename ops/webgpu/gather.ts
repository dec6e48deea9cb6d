// GPU lowerings of indexing: Gather, GatherElements, GatherND, ScatterND, ScatterElements and Scatter.
// Indices stay on the GPU (uploaded when they come from the CPU); the checks that need only shapes happen
// here with the CPU backend's messages, and an out-of-range index value reads 0 / skips its update.
import type { DType } from '../../engine/dtype.js';
import { blockCopy } from '../../kernels/webgpu/copy.js';
import { gather, gatherElements, gatherND, scatterElements, scatterND, type Reduction, type Tuples } from '../../kernels/webgpu/gather.js';
import type { GpuArray } from '../../kernels/webgpu/runner.js';
import { checkTuples } from '../gather.js';
import { fail, gpuAt, registerGpu, type GpuCtx, type GpuOpDef } from '../registry.js';
import { normAxis } from '../shape.js';
import { stridesOf } from '../../kernels/cpu/broadcast.js';

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const INDEX = new Set<DType | undefined>(['int32', 'int64']);

function indicesAt(ins: Parameters<GpuOpDef['run']>[0], i: number, ctx: GpuCtx): GpuArray {
  const t = gpuAt(ins, i, ctx);
  if (!INDEX.has(t.dtype)) fail(ctx, `indices (input ${i}) should be int32 or int64, got ${t.dtype}`);
  return t;
}

/** GatherElements/ScatterElements: indices of the data's rank, within its shape off the axis. */
function checkElements(x: GpuArray, idx: GpuArray, ax: number, ctx: GpuCtx): void {
  if (idx.shape.length !== x.shape.length) fail(ctx, `indices rank ${idx.shape.length} differs from data rank ${x.shape.length}`);
  idx.shape.forEach((d, k) => { if (k !== ax && d > x.shape[k]) fail(ctx, `indices shape [${idx.shape}] exceeds data shape [${x.shape}] on axis ${k}`); });
}

/** Index tuples of GatherND/ScatterND over `b` batch dims. */
function tuplesOf(x: GpuArray, idx: GpuArray, b: number, ctx: GpuCtx): Tuples {
  const q = idx.shape.length, k = checkTuples(x.shape, idx.shape, b, ctx);
  const xs = stridesOf(x.shape);
  return {
    k, dims: x.shape.slice(b, b + k), strides: xs.slice(b, b + k), perBatch: prod(idx.shape.slice(b, q - 1)),
    batchSize: b ? xs[b - 1] : x.size, slice: prod(x.shape.slice(b + k)),
  };
}

registerGpu(
  {
    op: 'Gather',
    run: (ins, a: { axis: number }, ctx) => {
      const x = gpuAt(ins, 0, ctx), idx = indicesAt(ins, 1, ctx);
      if (x.shape.length === 0) fail(ctx, 'cannot gather from a scalar');
      const ax = normAxis(a.axis, x.shape.length, ctx);
      const out = [...x.shape.slice(0, ax), ...idx.shape, ...x.shape.slice(ax + 1)];
      return ctx.gpu.run(gather(x, idx, out, x.shape[ax], prod(x.shape.slice(ax + 1))));
    },
  },
  {
    op: 'GatherElements', since: 11,
    run: (ins, a: { axis: number }, ctx) => {
      const x = gpuAt(ins, 0, ctx), idx = indicesAt(ins, 1, ctx), ax = normAxis(a.axis, x.shape.length, ctx);
      checkElements(x, idx, ax, ctx);
      return ctx.gpu.run(gatherElements(x, idx, ax));
    },
  },
  {
    op: 'GatherND', since: 11,
    run: (ins, a: { b: number }, ctx) => {
      const x = gpuAt(ins, 0, ctx), idx = indicesAt(ins, 1, ctx), t = tuplesOf(x, idx, a.b, ctx);
      return ctx.gpu.run(gatherND(x, idx, [...idx.shape.slice(0, -1), ...x.shape.slice(a.b + t.k)], t));
    },
  },
);

// ---- scatters: a copy of the data, then the updates applied in place --------------------------------

function copyOf(x: GpuArray, ctx: GpuCtx): GpuArray {
  return ctx.gpu.run(blockCopy(x, { outer: 1, blk: x.size, srcBlk: 0, srcOff: 0, dstBlk: 0, dstOff: 0 }, x.shape))[0];
}

function updatesAt(ins: Parameters<GpuOpDef['run']>[0], x: GpuArray, want: readonly number[], ctx: GpuCtx): GpuArray {
  const upd = gpuAt(ins, 2, ctx);
  if (upd.dtype !== x.dtype) fail(ctx, `updates dtype ${upd.dtype} differs from data dtype ${x.dtype}`);
  if (want.length !== upd.shape.length || want.some((d, i) => d !== upd.shape[i])) fail(ctx, `updates shape [${upd.shape}] should be [${want}]`);
  return upd;
}

/** Reductions compute in the data's arithmetic: int64 would need 64-bit words, which only plain stores move. */
const rejectReduction = (d: (DType | undefined)[], a: { r: Reduction }) =>
  (d[0] === 'int64' && a.r !== 'none' ? `reduction '${a.r}' on int64 data has no GPU kernel` : undefined);

function scatterElementsOp(op: string, since: number): GpuOpDef {
  return {
    op, since, reject: rejectReduction,
    run: (ins, a: { axis: number; r?: Reduction }, ctx) => {
      const x = gpuAt(ins, 0, ctx), idx = indicesAt(ins, 1, ctx), ax = normAxis(a.axis, x.shape.length, ctx);
      const upd = updatesAt(ins, x, idx.shape, ctx);
      checkElements(x, idx, ax, ctx);
      const out = copyOf(x, ctx);
      if (idx.size) ctx.gpu.run(scatterElements(out, idx, upd, ax, a.r ?? 'none'));
      return [out];
    },
  };
}

registerGpu(
  {
    op: 'ScatterND', since: 11, reject: rejectReduction,
    run: (ins, a: { r: Reduction }, ctx) => {
      const x = gpuAt(ins, 0, ctx), idx = indicesAt(ins, 1, ctx), t = tuplesOf(x, idx, 0, ctx);
      const upd = updatesAt(ins, x, [...idx.shape.slice(0, -1), ...x.shape.slice(t.k)], ctx);
      const out = copyOf(x, ctx);
      ctx.gpu.run(scatterND(out, idx, upd, t, prod(idx.shape.slice(0, -1)), a.r));
      return [out];
    },
  },
  scatterElementsOp('ScatterElements', 11),
  // Deprecated at opset 11 in favour of ScatterElements, with the same meaning.
  scatterElementsOp('Scatter', 9),
);
