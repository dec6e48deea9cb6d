// GPU lowerings of ConvInteger and QLinearConv (int8/uint8 operands): geometry and checks as on the CPU
// (ops/conv.ts, ops/quantize.ts), one implicit-GEMM dispatch (kernels/webgpu/conv-integer.ts). Zero points
// of another dtype than their operand, and float8 types, are left to the CPU by `reject`.
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { convInteger } from '../../kernels/webgpu/conv-integer.js';
import type { GpuArray } from '../../kernels/webgpu/runner.js';
import { geom3, resolveWindow, spatialOf, type WindowAttrs } from '../conv.js';
import { fail, gpuAt, registerGpu, type GpuCtx } from '../registry.js';
import { packedDot } from './quantize.js';

type Ds = (DType | undefined)[];
interface ConvIntAttrs extends WindowAttrs { group: number }

const I8 = new Set<DType | undefined>(['int8', 'uint8']);
const name = (ctx: GpuCtx, i: number) => `input ${i} ('${ctx.node.inputs[i] ?? ''}')`;

/** Channels, groups and the window of x [N, C, ...] and w [M, C/group, ...k], checked as the CPU does. */
function geometry(x: GpuArray, w: GpuArray, at: ConvIntAttrs, wi: number, ctx: GpuCtx) {
  const inS = spatialOf(x.shape, ctx), [n, c] = x.shape, m = w.shape[0], kernel = w.shape.slice(2);
  if (w.shape.length !== x.shape.length) fail(ctx, `${name(ctx, wi)} should have rank ${x.shape.length} like x, got shape [${w.shape}]`);
  if (at.kernel && at.kernel.join() !== kernel.join()) fail(ctx, `kernel_shape [${at.kernel}] does not match w's spatial dims [${kernel}]`);
  if (c % at.group !== 0 || w.shape[1] * at.group !== c) fail(ctx, `${name(ctx, wi)} should have C/group = ${c / at.group} input channels, got shape [${w.shape}] with group ${at.group}`);
  if (m % at.group !== 0) fail(ctx, `${name(ctx, wi)} has ${m} output channels, not divisible by group ${at.group}`);
  const win = resolveWindow(at, inS, kernel, ctx);
  if (n * at.group > 65535) fail(ctx, `${n} images x ${at.group} groups exceed the GPU kernel's 65535 (image, group) workgroup layers`);
  return { n, c, m, geom: geom3(inS, win), outShape: [n, m, ...win.out] };
}

/** A zero point or scale of one value, or (with `perChannel`) one per output channel: whether it is per channel. */
function perChannel(t: { size: number; shape: readonly number[] }, m: number, i: number, ctx: GpuCtx, allowChannels = true): boolean {
  if (t.size === 1) return false;
  if (!allowChannels || t.size !== m) fail(ctx, `${name(ctx, i)} should be a scalar${allowChannels ? ` or have ${m} values (one per output channel)` : ' (per-tensor)'}, got shape [${t.shape}]`);
  return true;
}

const optional = (ins: (GpuArray | NdArray | undefined)[], i: number, ctx: GpuCtx) => (ins[i] === undefined ? undefined : gpuAt(ins, i, ctx));

registerGpu({
  op: 'ConvInteger', since: 10,
  reject: (d: Ds) => {
    if (!I8.has(d[0]) || !I8.has(d[1])) return `x ${d[0]} and w ${d[1]}: the GPU kernel takes int8 and uint8`;
    if ((d[2] && d[2] !== d[0]) || (d[3] && d[3] !== d[1])) return 'zero points should have their operand\'s dtype';
    return undefined;
  },
  run: (ins, at: ConvIntAttrs, ctx) => {
    const x = gpuAt(ins, 0, ctx), w = gpuAt(ins, 1, ctx), xz = optional(ins, 2, ctx), wz = optional(ins, 3, ctx);
    const g = geometry(x, w, at, 1, ctx);
    if (xz) perChannel(xz, g.m, 2, ctx, false);
    const wzPerChannel = wz ? perChannel(wz, g.m, 3, ctx) : false;
    return ctx.gpu.run(convInteger({ x, w, xz, wz, wzPerChannel, ...g, group: at.group, packed: packedDot(ctx) }));
  },
});

/** A float32 scale read on the CPU. */
function scale(ins: (GpuArray | NdArray | undefined)[], i: number, ctx: GpuCtx): NdArray {
  const t = ins[i];
  if (!(t instanceof NdArray)) return fail(ctx, `${name(ctx, i)} is required but missing`);
  if (t.dtype !== 'float32') fail(ctx, `${name(ctx, i)} has dtype ${t.dtype}; expected float32`);
  return t;
}

registerGpu({
  op: 'QLinearConv', since: 10, cpuInputs: [1, 4, 6],
  reject: (d: Ds) => {
    if (!I8.has(d[0]) || !I8.has(d[3])) return `x ${d[0]} and w ${d[3]}: the GPU kernel takes int8 and uint8`;
    if (d[2] !== d[0] || d[5] !== d[3] || !I8.has(d[7])) return 'zero points should be present, with their operand\'s dtype (y\'s int8 or uint8)';
    return d[8] === undefined || d[8] === 'int32' ? undefined : `bias of dtype ${d[8]}`;
  },
  run: (ins, at: ConvIntAttrs, ctx) => {
    const x = gpuAt(ins, 0, ctx), w = gpuAt(ins, 3, ctx), xz = gpuAt(ins, 2, ctx), wz = gpuAt(ins, 5, ctx), yz = gpuAt(ins, 7, ctx);
    const bias = optional(ins, 8, ctx), g = geometry(x, w, at, 3, ctx);
    const xs = scale(ins, 1, ctx), ws = scale(ins, 4, ctx), ys = scale(ins, 6, ctx);
    for (const [t, i] of [[xs, 1], [ys, 6], [xz, 2], [yz, 7]] as const) perChannel(t, g.m, i, ctx, false);
    const wzPerChannel = perChannel(wz, g.m, 5, ctx), multPerChannel = perChannel(ws, g.m, 4, ctx);
    if (bias && bias.size !== g.m) fail(ctx, `${name(ctx, 8)} should be int32 with ${g.m} values, got ${bias.dtype} [${bias.shape}]`);
    // The CPU's multiplier: (x_scale * w_scale) / y_scale, each step rounded to float32.
    const f = Math.fround, sx = xs.data[0] as number, sy = ys.data[0] as number;
    const mult = ctx.gpu.upload(new NdArray('float32', [ws.size], Float32Array.from(ws.data as Float32Array, (v) => f(f(sx * v) / sy))));
    try {
      return ctx.gpu.run(convInteger({
        x, w, xz, wz, wzPerChannel, ...g, group: at.group, packed: packedDot(ctx),
        requant: { mult, multPerChannel, yz, bias, out: yz.dtype },
      }));
    } finally {
      ctx.gpu.release(mult); // the dispatch keeps its read
    }
  },
});
