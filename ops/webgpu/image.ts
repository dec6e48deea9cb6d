// GPU lowerings of image ops: GridSample, AffineGrid and Col2Im (kernels/webgpu/image.ts). Shape checks and
// messages mirror ops/image.ts, which defines the semantics.
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { affineGrid, col2im, gridSample, type GridSpec } from '../../kernels/webgpu/image.js';
import { positions, windowOf, type WindowLists } from '../image.js';
import { fail, gpuAt, registerGpu, type GpuCtx, type GpuOpDef } from '../registry.js';

const FLOATS = new Set<DType | undefined>(['float32', 'float16']);
const floatsOnly = (d: (DType | undefined)[]) => { const bad = d.find((x) => x && !FLOATS.has(x)); return bad ? `dtype ${bad} not supported by this GPU kernel` : undefined; };

registerGpu(
  {
    op: 'GridSample', since: 16, reject: floatsOnly,
    run: (ins, at: GridSpec & { opset: number }, ctx) => {
      const x = gpuAt(ins, 0, ctx), grid = gpuAt(ins, 1, ctx), r = x.shape.length - 2;
      if (at.opset < 20 ? r !== 2 : r < 1) fail(ctx, `input 0 has shape [${x.shape}]; expected ${at.opset < 20 ? 'N x C x H x W at opset < 20' : 'N x C x D1 x ... (rank >= 3)'}`);
      if (grid.shape.length !== r + 2 || grid.shape[0] !== x.shape[0] || grid.shape[r + 1] !== r) fail(ctx, `input 1 has shape [${grid.shape}]; expected [${x.shape[0]}, ${r} output dims, ${r}]`);
      return ctx.gpu.run(gridSample(x, grid, grid.shape.slice(1, -1), at));
    },
  },
  {
    op: 'AffineGrid', since: 20, cpuInputs: [1], reject: (d) => floatsOnly(d.slice(0, 1)),
    run: (ins, align: boolean, ctx) => {
      const theta = gpuAt(ins, 0, ctx), t = ins[1];
      if (!(t instanceof NdArray) || t.dtype !== 'int64' || t.shape.length !== 1) fail(ctx, "input 1 ('size') should be a 1-D int64 tensor");
      const size = t.numbers(), r = size.length - 2, n = size[0], dims = size.slice(2);
      if (r !== 2 && r !== 3) fail(ctx, `input 1 should hold (N, C, H, W) or (N, C, D, H, W), got [${size}]`);
      if (theta.shape.join() !== [n, r, r + 1].join()) fail(ctx, `input 0 has shape [${theta.shape}]; expected [${[n, r, r + 1]}] for ${r}-D size [${size}]`);
      if (dims.some((d) => d <= 0)) fail(ctx, `input 1 should have positive spatial sizes, got [${size}]`);
      return ctx.gpu.run(affineGrid(theta, n, dims, align));
    },
  },
);

const NUMERIC = new Set<DType | undefined>(['float32', 'float16', 'int32', 'uint32']);

/** A 1-D int64 CPU input. */
function intList(ins: Parameters<GpuOpDef['run']>[0], i: number, ctx: GpuCtx, len?: number): number[] {
  const t = ins[i];
  if (!(t instanceof NdArray) || t.dtype !== 'int64' || t.shape.length !== 1 || (len !== undefined && t.size !== len)) fail(ctx, `input ${i} should be a 1-D int64 tensor${len === undefined ? '' : ` of ${len} values`}`);
  return t.numbers();
}

registerGpu({
  op: 'Col2Im', since: 18, cpuInputs: [1, 2],
  reject: (d) => (NUMERIC.has(d[0]) ? undefined : `dtype ${d[0]} not supported by this GPU kernel`),
  run: (ins, at: WindowLists, ctx) => {
    const x = gpuAt(ins, 0, ctx), dims = intList(ins, 1, ctx), k = intList(ins, 2, ctx, dims.length);
    if (dims.length < 1 || k.some((v) => v < 1) || dims.some((v) => v < 0)) fail(ctx, `image_shape [${dims}] and block_shape [${k}] should be non-empty, sizes positive`);
    if (x.shape.length !== 3) fail(ctx, `input 0 has shape [${x.shape}]; expected (N, C * prod(block_shape), L)`);
    const { g, padTotal } = windowOf(at, k, ctx), nb = positions(dims, g, padTotal), K = k.reduce((a, b) => a * b, 1);
    const [n, ck, L] = x.shape, want = nb.reduce((a, b) => a * b, 1);
    if (ck % K !== 0) fail(ctx, `input 0 dim 1 (${ck}) is not a multiple of prod(block_shape) = ${K}`);
    if (nb.some((v) => v < 1) || L !== want) fail(ctx, `input 0 has ${L} blocks; image [${dims}] with block [${k}] and these strides/pads/dilations gives [${nb}] = ${want}`);
    return ctx.gpu.run(col2im(x, { n, c: ck / K, dims, nb, k, s: g.s, d: g.d, pb: g.pb }));
  },
});
