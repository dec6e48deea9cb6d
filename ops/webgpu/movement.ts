// GPU lowerings of data movement: Transpose, Concat, Split, Slice, Expand, Tile, Pad, CenterCropPad,
// DepthToSpace, SpaceToDepth, Trilu, CumSum and CumProd. Shapes, axes, pads and sizes are CPU inputs; the ONNX rules
// for them mirror ops/movement.ts, which defines the semantics.
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { broadcastShapes, broadcastStrides, stridesOf } from '../../kernels/cpu/broadcast.js';
import { blockCopy, cumprod, cumsum, pad, pickScan, stridedCopy, tileCopy, trilu, type PadMode } from '../../kernels/webgpu/copy.js';
import type { GpuArray, GpuRunner } from '../../kernels/webgpu/runner.js';
import { reducePerm, transpose } from '../../kernels/webgpu/transpose.js';
import { fullPads, permOf, sliceBounds, splitSizes, type SliceSpec } from '../movement.js';
import { fail, gpuAt, registerGpu, type GpuCtx, type GpuOpDef } from '../registry.js';
import { normAxes, normAxis } from '../shape.js';

type Ins = (GpuArray | NdArray | undefined)[];
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** A CPU input's integers (shape, axes, pads...), or undefined when the input is omitted. */
export function optInts(ins: Ins, i: number, ctx: GpuCtx): number[] | undefined {
  const t = ins[i];
  if (t === undefined) return undefined;
  if (!(t instanceof NdArray) || (t.dtype !== 'int64' && t.dtype !== 'int32') || t.shape.length > 1) fail(ctx, `input ${i} should be a 1-D int32 or int64 tensor`);
  return t.numbers();
}
const intsAt = (ins: Ins, i: number, ctx: GpuCtx) => optInts(ins, i, ctx) ?? fail(ctx, `input ${i} is required but missing`);

/** One integer from a CPU input holding a single element (Trilu's k, CumSum's axis). */
function scalarAt(ins: Ins, i: number, ctx: GpuCtx, what: string): number | undefined {
  const t = ins[i];
  if (t === undefined) return undefined;
  if (!(t instanceof NdArray) || t.size !== 1 || (t.dtype !== 'int64' && t.dtype !== 'int32')) fail(ctx, `input ${i} ('${what}') should hold one integer`);
  return Number(t.data[0]);
}

/** `y` with another shape of the same size, dropping the reference to the original. */
function reshaped(gpu: GpuRunner, y: GpuArray, shape: readonly number[]): GpuArray {
  const v = y.view(shape);
  gpu.release(y);
  return v;
}

// ---- Transpose, DepthToSpace, SpaceToDepth ---------------------------------------------------------

/** x read as `shape`, transposed by perm, returned as `outShape`. A permutation that only moves size-1
 *  axes keeps the element order: a view, no dispatch. */
function transposeAs(x: GpuArray, shape: readonly number[], perm: number[], outShape: readonly number[], ctx: GpuCtx): GpuArray {
  if (reducePerm(shape, perm).perm.every((p, i) => p === i)) return x.view(outShape);
  const v = x.view(shape), [y] = ctx.gpu.run(transpose(v, perm, ctx.gpu.ctx.software));
  ctx.gpu.release(v);
  return reshaped(ctx.gpu, y, outShape);
}

function spaceDims(x: GpuArray, ctx: GpuCtx): number[] {
  if (x.shape.length !== 4) fail(ctx, `input should be 4-D, got [${x.shape}]`);
  return [...x.shape];
}

registerGpu(
  {
    op: 'Transpose',
    run: (ins, a: { perm?: number[] }, ctx) => {
      const x = gpuAt(ins, 0, ctx), perm = permOf(a.perm, x.shape.length, ctx);
      return [transposeAs(x, x.shape, perm, perm.map((p) => x.shape[p]), ctx)];
    },
  },
  {
    op: 'DepthToSpace',
    run: (ins, a: { b: number; mode: string }, ctx) => {
      const x = gpuAt(ins, 0, ctx), [n, c, h, w] = spaceDims(x, ctx), b = a.b;
      if (c % (b * b) !== 0) fail(ctx, `channels ${c} not divisible by blocksize² ${b * b}`);
      const c2 = c / (b * b), out = [n, c2, h * b, w * b];
      // DCR reads channels as (b1, b2, c'), CRD as (c', b1, b2); both interleave b1 into H and b2 into W.
      return [a.mode === 'DCR'
        ? transposeAs(x, [n, b, b, c2, h, w], [0, 3, 4, 1, 5, 2], out, ctx)
        : transposeAs(x, [n, c2, b, b, h, w], [0, 1, 4, 2, 5, 3], out, ctx)];
    },
  },
  {
    op: 'SpaceToDepth',
    run: (ins, a: { b: number }, ctx) => {
      const x = gpuAt(ins, 0, ctx), [n, c, h, w] = spaceDims(x, ctx), b = a.b;
      if (h % b !== 0 || w % b !== 0) fail(ctx, `spatial dims [${h}, ${w}] not divisible by blocksize ${b}`);
      return [transposeAs(x, [n, c, h / b, b, w / b, b], [0, 3, 5, 1, 2, 4], [n, c * b * b, h / b, w / b], ctx)];
    },
  },
);

// ---- Concat / Split ------------------------------------------------------------------------------

function concat(xs: GpuArray[], axis: number, ctx: GpuCtx): GpuArray {
  const first = xs[0] ?? fail(ctx, 'needs at least one input'), rank = first.shape.length;
  if (rank === 0) fail(ctx, 'cannot concatenate scalars');
  const ax = normAxis(axis, rank, ctx);
  xs.forEach((x, i) => {
    if (x.dtype !== first.dtype) fail(ctx, `input ${i} has dtype ${x.dtype}, expected ${first.dtype}`);
    if (x.shape.length !== rank || x.shape.some((d, k) => k !== ax && d !== first.shape[k])) fail(ctx, `input ${i} has shape [${x.shape}], incompatible with [${first.shape}] on axis ${ax}`);
  });
  const total = xs.reduce((s, x) => s + x.shape[ax], 0), inner = prod(first.shape.slice(ax + 1)), outer = prod(first.shape.slice(0, ax));
  const out = ctx.gpu.alloc(first.dtype, first.shape.map((d, k) => (k === ax ? total : d)));
  // One dispatch per input writes its slab of the shared output in place.
  let at = 0;
  for (const x of xs) {
    const blk = x.shape[ax] * inner;
    ctx.gpu.run(blockCopy(x, { outer, blk, srcBlk: blk, srcOff: 0, dstBlk: total * inner, dstOff: at * inner }, out));
    at += x.shape[ax];
  }
  return out;
}

function split(x: GpuArray, axis: number, given: number[] | undefined, numOutputs: number | undefined, ctx: GpuCtx): GpuArray[] {
  const ax = normAxis(axis, x.shape.length, ctx), d = x.shape[ax], inner = prod(x.shape.slice(ax + 1)), outer = prod(x.shape.slice(0, ax));
  let at = 0;
  return splitSizes(d, ctx.node.outputs.length, given, numOutputs, ctx).map((len) => {
    const b = { outer, blk: len * inner, srcBlk: d * inner, srcOff: at * inner, dstBlk: len * inner, dstOff: 0 };
    at += len;
    return ctx.gpu.run(blockCopy(x, b, x.shape.map((n, k) => (k === ax ? len : n))))[0];
  });
}

registerGpu(
  { op: 'Concat', run: (ins, a: { axis: number }, ctx) => [concat(ins.map((_, i) => gpuAt(ins, i, ctx)), a.axis, ctx)] },
  {
    // Split-1 also took the sizes as input 1.
    op: 'Split', cpuInputs: [1],
    run: (ins, a: { axis: number; split?: number[] }, ctx) => split(gpuAt(ins, 0, ctx), a.axis, a.split ?? optInts(ins, 1, ctx), undefined, ctx),
  },
  {
    op: 'Split', since: 13, cpuInputs: [1],
    run: (ins, a: { axis: number; numOutputs?: number }, ctx) => {
      const given = optInts(ins, 1, ctx);
      if (given && a.numOutputs !== undefined) fail(ctx, 'give either the split input or num_outputs, not both');
      return split(gpuAt(ins, 0, ctx), a.axis, given, a.numOutputs, ctx);
    },
  },
);

// ---- Slice ---------------------------------------------------------------------------------------

function slice(x: GpuArray, spec: SliceSpec, ctx: GpuCtx): GpuArray[] {
  const { start, step, len } = sliceBounds(x.shape, spec, ctx), st = stridesOf(x.shape);
  const base = len.some((d) => d === 0) ? 0 : start.reduce((a, b, i) => a + b * st[i], 0);
  return ctx.gpu.run(stridedCopy('Slice', x, len, st.map((s, i) => s * step[i]), base));
}

registerGpu(
  { op: 'Slice', run: (ins, a: SliceSpec, ctx) => slice(gpuAt(ins, 0, ctx), a, ctx) },
  {
    op: 'Slice', since: 10, cpuInputs: [1, 2, 3, 4],
    run: (ins, _a, ctx) => slice(gpuAt(ins, 0, ctx), { starts: intsAt(ins, 1, ctx), ends: intsAt(ins, 2, ctx), axes: optInts(ins, 3, ctx), steps: optInts(ins, 4, ctx) }, ctx),
  },
);

// ---- Expand / Tile -------------------------------------------------------------------------------

registerGpu(
  {
    op: 'Expand', since: 8, cpuInputs: [1],
    run: (ins, _a, ctx) => {
      const x = gpuAt(ins, 0, ctx), shape = intsAt(ins, 1, ctx);
      if (shape.some((d) => d < 0)) fail(ctx, `shape [${shape}] has a negative dim`);
      const out = broadcastShapes(x.shape, shape) ?? fail(ctx, `input shape [${x.shape}] does not broadcast to [${shape}]`);
      if (out.length === x.shape.length && out.every((d, i) => d === x.shape[i])) return [x.view()];
      return ctx.gpu.run(stridedCopy('Expand', x, out, broadcastStrides(x.shape, out)));
    },
  },
  {
    op: 'Tile', cpuInputs: [1],
    run: (ins, _a, ctx) => {
      const x = gpuAt(ins, 0, ctx), reps = intsAt(ins, 1, ctx);
      if (reps.length !== x.shape.length || reps.some((n) => n < 0)) fail(ctx, `repeats [${reps}] should be ${x.shape.length} non-negative counts`);
      return ctx.gpu.run(tileCopy(x, x.shape.map((d, i) => d * reps[i])));
    },
  },
);

// ---- Pad / CenterCropPad -------------------------------------------------------------------------

/** pads = [b_0..b_r-1, e_0..e_r-1]; negative entries crop. */
function padArray(x: GpuArray, pads: readonly number[], mode: PadMode, value: number | bigint, ctx: GpuCtx): GpuArray[] {
  const r = x.shape.length, out = x.shape.map((d, i) => d + pads[i] + pads[i + r]);
  if (out.some((d) => d < 0)) fail(ctx, `pads [${pads}] crop more than the input shape [${x.shape}]`);
  // The kept region of the input: what remains after the negative (cropping) pads.
  const from = x.shape.map((_, i) => Math.max(0, -pads[i]));
  const kept = x.shape.map((d, i) => Math.max(0, d - from[i] - Math.max(0, -pads[i + r])));
  if (mode !== 'constant' && prod(out) > 0) kept.forEach((k, i) => { if (k === 0) fail(ctx, `${mode} padding needs a non-empty input along axis ${i}`); });
  return ctx.gpu.run(pad(x, out, { mode, lead: pads.slice(0, r).map((p) => Math.max(0, p)), from, kept, value }));
}

registerGpu(
  {
    op: 'Pad',
    run: (ins, a: { mode: PadMode; pads: number[]; value: number }, ctx) => {
      const x = gpuAt(ins, 0, ctx);
      return padArray(x, fullPads(a.pads, undefined, x.shape.length, ctx), a.mode, a.value, ctx);
    },
  },
  {
    op: 'Pad', since: 11, cpuInputs: [1, 2, 3],
    run: (ins, a: { mode: PadMode }, ctx) => {
      const x = gpuAt(ins, 0, ctx), cv = ins[2] as NdArray | undefined;
      if (cv && cv.dtype !== x.dtype) fail(ctx, `constant_value has dtype ${cv.dtype}, expected ${x.dtype}`);
      const pads = fullPads(intsAt(ins, 1, ctx), ctx.opset >= 18 ? optInts(ins, 3, ctx) : undefined, x.shape.length, ctx);
      return padArray(x, pads, a.mode, cv && cv.size ? (cv.data[0] as number | bigint) : 0, ctx);
    },
  },
  {
    // Centered crop (start rounded down) or zero pad (extra element at the end) of the given axes.
    op: 'CenterCropPad', since: 18, cpuInputs: [1],
    run: (ins, a: { axes?: number[] }, ctx) => {
      const x = gpuAt(ins, 0, ctx), shape = intsAt(ins, 1, ctx), r = x.shape.length;
      const ax = normAxes(a.axes ?? Array.from({ length: r }, (_, i) => i), r, ctx);
      if (shape.length !== ax.length) fail(ctx, `shape has ${shape.length} entries for ${ax.length} axes`);
      const pads = new Array<number>(2 * r).fill(0);
      ax.forEach((k, i) => {
        if (shape[i] < 0) fail(ctx, `shape [${shape}] has a negative dim`);
        const diff = shape[i] - x.shape[k];
        pads[k] = diff >= 0 ? Math.floor(diff / 2) : -Math.floor(-diff / 2);
        pads[k + r] = diff - pads[k];
      });
      return padArray(x, pads, 'constant', 0, ctx);
    },
  },
);

// ---- Trilu / CumSum / CumProd ---------------------------------------------------------------------

const SCAN_DTYPES: DType[] = ['float32', 'float16', 'int32', 'uint32', 'int8', 'uint8', 'int16', 'uint16'];

/** CumSum and CumProd: the axis is a CPU input, the scan one program of kernels/webgpu/copy.ts. */
function axisScanOp(op: string, since: number, dtypes: ReadonlySet<DType | undefined>, program: typeof cumsum): GpuOpDef {
  return {
    op, since, cpuInputs: [1],
    reject: (d) => (dtypes.has(d[0]) ? undefined : `dtype ${d[0]} not supported by this GPU kernel`),
    run: (ins, a: { exclusive: boolean; reverse: boolean }, ctx) => {
      const x = gpuAt(ins, 0, ctx), ax = normAxis(scalarAt(ins, 1, ctx, 'axis') ?? fail(ctx, "input 1 ('axis') is required but missing"), x.shape.length, ctx);
      const spec = { outer: prod(x.shape.slice(0, ax)), n: x.shape[ax], inner: prod(x.shape.slice(ax + 1)), ...a };
      return ctx.gpu.run(program(x, spec, pickScan(ctx.gpu.ctx.software, spec)));
    },
  };
}

registerGpu(
  {
    op: 'Trilu', since: 14, cpuInputs: [1],
    run: (ins, a: { upper: boolean }, ctx) => {
      const x = gpuAt(ins, 0, ctx);
      if (x.shape.length < 2) fail(ctx, `input should have rank >= 2, got [${x.shape}]`);
      return ctx.gpu.run(trilu(x, scalarAt(ins, 1, ctx, 'k') ?? 0, a.upper));
    },
  },
  // Sub-byte ints add in their lane and keep the low bits as the CPU does; their products are left to the CPU.
  axisScanOp('CumSum', 11, new Set([...SCAN_DTYPES, 'int4', 'uint4', 'int2', 'uint2']), cumsum),
  // Narrow integers multiply in their 32-bit lane, wrapping like Math.imul; the store keeps their low bits,
  // which is what the CPU's typed-array store of the imul product keeps.
  axisScanOp('CumProd', 26, new Set(SCAN_DTYPES), cumprod),
);
