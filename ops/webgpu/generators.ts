// GPU lowerings of generators: EyeLike, OneHot and the cosine-sum windows. Depth and window sizes are CPU
// inputs; the rules for them mirror ops/generators.ts and ops/signal.ts, which define the semantics.
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { cosineWindow, eyeLike, oneHot } from '../../kernels/webgpu/generators.js';
import { GPU_DTYPES } from '../../kernels/webgpu/runner.js';
import { fail, gpuAt, registerGpu, type GpuCtx, type GpuOpDef } from '../registry.js';
import { normAxis } from '../shape.js';

const FLOATS = new Set<DType | undefined>(['float32', 'float16']);

/** One number from a CPU input holding a single element. */
function scalarAt(ins: Parameters<GpuOpDef['run']>[0], i: number, ctx: GpuCtx, what: string): number {
  const t = ins[i];
  if (!(t instanceof NdArray) || t.size !== 1) fail(ctx, `input ${i} ('${what}') should hold one value`);
  return Number(t.data[0]);
}

function windowOp(op: string, coefs: number[]): GpuOpDef<{ dtype: DType; periodic: boolean }> {
  return {
    op, since: 17, cpuInputs: [0],
    // Integer outputs truncate values a hair below 1 differently in f32: only float windows run here.
    reject: (_d, a) => (FLOATS.has(a.dtype) ? undefined : `output dtype ${a.dtype} not supported by this GPU kernel`),
    run: (ins, a, ctx) => {
      const t = ins[0];
      if (!(t instanceof NdArray) || (t.dtype !== 'int32' && t.dtype !== 'int64') || t.size !== 1) fail(ctx, "input 0 ('size') should be an int32 or int64 scalar");
      const size = Number(t.data[0]);
      if (size < 0) fail(ctx, `size should be >= 0, got ${size}`);
      return ctx.gpu.run(cosineWindow(a.dtype, size, a.periodic ? size : size - 1, coefs));
    },
  };
}

registerGpu(
  {
    op: 'EyeLike', since: 9,
    reject: (d, a: { dtype?: DType }) => { const o = a.dtype ?? d[0]; return o && !GPU_DTYPES.has(o) ? `output dtype ${o} has no GPU storage` : undefined; },
    run: (ins, a: { dtype?: DType; k: number }, ctx) => {
      const x = gpuAt(ins, 0, ctx);
      if (x.shape.length !== 2) fail(ctx, `input should be 2-D, got [${x.shape}]`);
      return ctx.gpu.run(eyeLike(a.dtype ?? x.dtype, x.shape[0], x.shape[1], a.k));
    },
  },
  {
    op: 'OneHot', since: 9, cpuInputs: [1],
    run: (ins, a: { axis: number }, ctx) => {
      const idx = gpuAt(ins, 0, ctx), values = gpuAt(ins, 2, ctx);
      if (values.size !== 2) fail(ctx, `values should be [off_value, on_value], got shape [${values.shape}]`);
      const depth = Math.trunc(scalarAt(ins, 1, ctx, 'depth')), r = idx.shape.length, ax = normAxis(a.axis, r + 1, ctx);
      if (!(depth > 0)) fail(ctx, `depth ${depth} should be positive`);
      const inner = idx.shape.slice(ax).reduce((p, q) => p * q, 1);
      return ctx.gpu.run(oneHot(idx, values, depth, inner, [...idx.shape.slice(0, ax), depth, ...idx.shape.slice(ax)]));
    },
  },
  windowOp('HannWindow', [0.5, 0.5]),
  windowOp('HammingWindow', [25 / 46, 21 / 46]),
  windowOp('BlackmanWindow', [0.42, 0.5, 0.08]),
);
