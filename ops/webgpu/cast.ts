// GPU lowerings of Cast and CastLike between the GPU dtypes, and Clip (bounds as attributes before opset
// 11, as scalar CPU inputs from 11).
import type { DType } from '../../engine/dtype.js';
import type { NdArray } from '../../engine/tensor.js';
import { cast, clip } from '../../kernels/webgpu/cast.js';
import { GPU_DTYPES, type GpuArray } from '../../kernels/webgpu/runner.js';
import { Attrs, fail, gpuAt, registerGpu, type GpuCtx } from '../registry.js';

/** A target dtype the GPU can hold on this adapter, or why not. */
const rejectTarget = (to: DType | undefined, f16: boolean) =>
  (to && (!GPU_DTYPES.has(to) || (to === 'float16' && !f16)) ? `cast to ${to}: no GPU storage for it on this adapter` : undefined);

function castTo(x: GpuArray, to: DType, ctx: GpuCtx): GpuArray[] {
  return x.dtype === to ? [x.view()] : ctx.gpu.run(cast(x, to));
}

registerGpu(
  {
    op: 'Cast',
    reject: (_d, a: { to: DType }, ctx) => rejectTarget(a.to, ctx.f16),
    run: (ins, a: { to: DType }, ctx) => castTo(gpuAt(ins, 0, ctx), a.to, ctx),
  },
  {
    op: 'CastLike', since: 15,
    reject: (d, _a, ctx) => rejectTarget(d[1], ctx.f16),
    run: (ins, _a, ctx) => castTo(gpuAt(ins, 0, ctx), gpuAt(ins, 1, ctx).dtype, ctx),
  },
);

const NUMERIC = new Set<DType | undefined>(['float32', 'float16', 'int32', 'uint32', 'int8', 'uint8', 'int16', 'uint16', 'int4', 'uint4', 'int2', 'uint2']);
const rejectClip = (d: (DType | undefined)[]) => (NUMERIC.has(d[0]) ? undefined : `dtype ${d[0]} not supported by this GPU kernel`);

/** Clip-11 bound i: a scalar of x's dtype, or `absent`. */
function bound(ins: (GpuArray | NdArray | undefined)[], i: number, x: GpuArray, absent: number, ctx: GpuCtx): number {
  const t = ins[i] as NdArray | undefined;
  if (!t) return absent;
  if (t.dtype !== x.dtype) fail(ctx, `input ${i} has dtype ${t.dtype}, expected ${x.dtype} like input 0`);
  if (t.size !== 1) fail(ctx, `input ${i} should be a scalar, got shape [${t.shape}]`);
  return Number(t.data[0]);
}

registerGpu(
  {
    op: 'Clip', reject: rejectClip,
    run: (ins, _a, ctx) => {
      const a = new Attrs(ctx.node);
      return ctx.gpu.run(clip(gpuAt(ins, 0, ctx), a.float('min', -Infinity), a.float('max', Infinity)));
    },
  },
  {
    op: 'Clip', since: 11, cpuInputs: [1, 2], reject: rejectClip,
    run: (ins, _a, ctx) => {
      const x = gpuAt(ins, 0, ctx);
      return ctx.gpu.run(clip(x, bound(ins, 1, x, -Infinity, ctx), bound(ins, 2, x, Infinity, ctx)));
    },
  },
);
