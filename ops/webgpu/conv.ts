// GPU lowerings of Conv (implicit GEMM, or a direct depthwise kernel) and ConvTranspose (direct gather),
// 1 to 3 spatial dims, groups, auto_pad, dilations, bias; ConvTranspose also output_padding/output_shape.
// runConv also takes FusedConv's residual, activation and post-activation affine (fused.ts).
import { broadcastShapes } from '../../kernels/cpu/broadcast.js';
import { elementwiseEpilogue, type Activation, type PostAffine } from '../../kernels/webgpu/activation.js';
import { convProgram, convTransposeProgram, depthwiseProgram } from '../../kernels/webgpu/conv.js';
import type { Epilogue } from '../../kernels/webgpu/matmul.js';
import type { GpuArray } from '../../kernels/webgpu/runner.js';
import { geom3, resolveWindow, spatialOf, transposeWindow, type ConvAttrs } from '../conv.js';
import { fail, gpuAt, registerGpu, type GpuCtx, type GpuOpDef } from '../registry.js';
import { runTagged } from './matmul.js';

export const rejectNonFloat: GpuOpDef['reject'] = (d) => {
  const bad = d.find((x) => x && x !== 'float32' && x !== 'float16');
  return bad ? `dtype ${bad} not supported by the GPU convolution (float32, float16)` : undefined;
};

/** X, W (same dtype, same rank, kernel_shape agreeing with W) and the optional per-channel bias B of `m` values. */
function operands(ins: Parameters<GpuOpDef['run']>[0], at: ConvAttrs, ctx: GpuCtx, m: (w: GpuArray) => number) {
  const x = gpuAt(ins, 0, ctx), w = gpuAt(ins, 1, ctx), bias = ins[2] === undefined ? undefined : gpuAt(ins, 2, ctx);
  const inS = spatialOf(x.shape, ctx), kernel = w.shape.slice(2);
  if (w.dtype !== x.dtype) fail(ctx, `input 1 (W) should have dtype ${x.dtype} like X, got ${w.dtype}`);
  if (w.shape.length !== x.shape.length) fail(ctx, `input 1 (W) should have rank ${x.shape.length} like X, got shape [${w.shape}]`);
  if (at.kernel && (at.kernel.length !== kernel.length || at.kernel.some((v, i) => v !== kernel[i]))) fail(ctx, `kernel_shape [${at.kernel}] does not match input 1 (W) spatial dims [${kernel}]`);
  if (bias && (bias.size !== m(w) || bias.dtype !== x.dtype)) fail(ctx, `input 2 (B) should be ${m(w)} ${x.dtype} values (one per output channel), got ${bias.dtype} [${bias.shape}]`);
  return { x, w, bias, inS, kernel, n: x.shape[0], c: x.shape[1] };
}

/** Conv, then + z (a residual of the output's shape, in the epilogue), then the activation, then the affine. */
export function runConv(ins: Parameters<GpuOpDef['run']>[0], at: ConvAttrs, ctx: GpuCtx, z?: GpuArray, activation?: Activation, affine?: PostAffine): GpuArray[] {
  const { x, w, bias, inS, kernel, n, c } = operands(ins, at, ctx, (wt) => wt.shape[0]);
  const m = w.shape[0], group = at.group;
  if (c % group !== 0 || w.shape[1] * group !== c) fail(ctx, `input 1 (W) should have C/group = ${c / group} input channels, got ${w.shape[1]} (W shape [${w.shape}], group ${group})`);
  if (m % group !== 0) fail(ctx, `input 1 (W) has ${m} output channels, not divisible by group ${group}`);
  if (z && z.dtype !== x.dtype) fail(ctx, `input 3 (Z) should have dtype ${x.dtype} like X, got ${z.dtype}`);
  const win = resolveWindow(at, inS, kernel, ctx), s = { n, c, m, group, g: geom3(inS, win) };
  const out = [n, m, ...win.out], inPlace = z && z.shape.length === out.length && z.shape.every((d, i) => d === out[i]);
  const ep: Epilogue = { bias, residual: inPlace ? z : undefined, ...(!z || inPlace ? { activation, affine } : {}) };
  // One input channel per group is a sliding window per output, not a product worth tiling.
  const p = c === group && group > 1 ? depthwiseProgram(x, w, s, win.out, ep) : convProgram(ctx.gpu.ctx, x, w, s, win.out, ep);
  const [y] = runTagged(ctx, p);
  if (!z || inPlace) return [y];
  // A residual that broadcasts into (or grows) the output: one elementwise pass adds it.
  const shape = broadcastShapes(y.shape, z.shape) ?? fail(ctx, `input 3 (Z) of shape [${z.shape}] does not broadcast with the output [${y.shape}]`);
  const [r] = ctx.gpu.run(elementwiseEpilogue([y, z], shape, activation, affine));
  ctx.gpu.release(y);
  return [r];
}

registerGpu({ op: 'Conv', reject: rejectNonFloat, run: (ins, at: ConvAttrs, ctx) => runConv(ins, at, ctx) });

registerGpu({
  op: 'ConvTranspose',
  reject: rejectNonFloat,
  run: (ins, at: ConvAttrs, ctx) => {
    const { x, w, bias, inS, kernel, n, c } = operands(ins, at, ctx, (wt) => wt.shape[1] * at.group);
    const m = w.shape[1] * at.group;
    if (w.shape[0] !== c) fail(ctx, `input 1 (W) should have ${c} input channels (dim 0) like X, got shape [${w.shape}]`);
    if (c % at.group !== 0) fail(ctx, `input 0 (X) has ${c} channels, not divisible by group ${at.group}`);
    const win = transposeWindow(at, inS, kernel, ctx);
    return ctx.gpu.run(convTransposeProgram(x, w, { n, c, m, group: at.group, g: geom3(inS, win) }, win.out, { bias }));
  },
});
