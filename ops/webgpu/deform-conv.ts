// GPU lowering of DeformConv (ops/image.ts holds the semantics): the CPU's shape checks, then one dispatch.
import type { DType } from '../../engine/dtype.js';
import { deformConv } from '../../kernels/webgpu/deform-conv.js';
import type { GpuArray } from '../../kernels/webgpu/runner.js';
import { positions, windowOf, type WindowLists } from '../image.js';
import { fail, gpuAt, registerGpu, type GpuCtx } from '../registry.js';

const FLOATS = new Set<DType | undefined>(['float32', 'float16']);
interface DeformAttrs extends WindowLists { group: number; offsetGroup: number; kernel?: number[] }

const name = (ctx: GpuCtx, i: number) => `input ${i} ('${ctx.node.inputs[i] ?? ''}')`;
function shapeIs(t: GpuArray, i: number, want: number[], ctx: GpuCtx, note = '') {
  if (t.shape.length !== want.length || t.shape.some((v, j) => v !== want[j])) fail(ctx, `${name(ctx, i)} has shape [${t.shape}]; expected [${want}]${note}`);
}

registerGpu({
  op: 'DeformConv', since: 19,
  reject: (d) => (FLOATS.has(d[0]) && d.every((t) => !t || t === d[0]) ? undefined : 'the GPU kernel takes one float type for every input'),
  run: (ins, at: DeformAttrs, ctx) => {
    const x = gpuAt(ins, 0, ctx), w = gpuAt(ins, 1, ctx), offset = gpuAt(ins, 2, ctx), r = x.shape.length - 2;
    const bias = ins[3] === undefined ? undefined : gpuAt(ins, 3, ctx), mask = ins[4] === undefined ? undefined : gpuAt(ins, 4, ctx);
    if (r < 1) fail(ctx, `${name(ctx, 0)} has shape [${x.shape}]; expected N x C x D1 x ...`);
    if (r > 3) fail(ctx, `${name(ctx, 0)} has ${r} spatial dims; the GPU kernel takes 1 to 3`);
    const [n, c] = x.shape, m = w.shape[0], k = w.shape.slice(2);
    if (w.shape.length !== r + 2 || w.shape[1] * at.group !== c || m % at.group !== 0) fail(ctx, `${name(ctx, 1)} has shape [${w.shape}]; expected (oC, C/group = ${c / at.group}, kernel...) with oC divisible by group ${at.group}`);
    if (at.kernel && at.kernel.join() !== k.join()) fail(ctx, `kernel_shape [${at.kernel}] does not match W's spatial dims [${k}]`);
    if (c % at.offsetGroup !== 0) fail(ctx, `input channels ${c} are not divisible by offset_group ${at.offsetGroup}`);
    const { g, padTotal } = windowOf(at, k, ctx), outS = positions(x.shape.slice(2), g, padTotal), taps = k.reduce((p, v) => p * v, 1);
    if (outS.some((v) => v < 1)) fail(ctx, `the dilated kernel [${k}] does not fit the padded input [${x.shape}]`);
    shapeIs(offset, 2, [n, at.offsetGroup * taps * r, ...outS], ctx, ' (N, offset_group * prod(kernel) * spatial rank, output dims...)');
    if (mask) shapeIs(mask, 4, [n, at.offsetGroup * taps, ...outS], ctx, ' (N, offset_group * prod(kernel), output dims...)');
    if (bias) shapeIs(bias, 3, [m], ctx);
    return ctx.gpu.run(deformConv({ x, w, offset, bias, mask, group: at.group, offsetGroup: at.offsetGroup, outS, k, s: g.s, d: g.d, pb: g.pb }));
  },
});
