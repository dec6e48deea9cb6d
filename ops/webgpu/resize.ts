// GPU lowerings of Resize and Upsample. The CPU definition's parsed attributes give the mode, coordinate
// mode and rounding; the tap tables come from the CPU's own per-axis code (kernels/cpu/resize.ts), so
// the GPU samples the same pixels with the same weights, antialias included.
import { NdArray } from '../../engine/tensor.js';
import { axisTaps, isIdentity, type AxisSpec } from '../../kernels/cpu/resize.js';
import { packTaps, resample } from '../../kernels/webgpu/resize.js';
import type { GpuArray } from '../../kernels/webgpu/runner.js';
import { filterFor, type ResizeAttrs } from '../resize.js';
import { fail, gpuAt, registerGpu, type GpuCtx, type GpuOpDef } from '../registry.js';

type Ins = (GpuArray | NdArray | undefined)[];

/** A non-empty optional CPU input as numbers. */
function listInput(ins: Ins, i: number): number[] | undefined {
  const t = i < 0 ? undefined : ins[i];
  return t instanceof NdArray && t.size ? t.numbers() : undefined;
}

// Mirrors axisSpecs in ops/resize.ts (not exported there): per-axis sizes, scales and roi for the full rank.
function axisSpecs(shape: readonly number[], a: ResizeAttrs, ins: Ins, ctx: GpuCtx): AxisSpec[] {
  const rank = shape.length, axes = (a.axes ?? [...Array(rank).keys()]).map((d) => {
    if (d < -rank || d >= rank) fail(ctx, `axes entry ${d} is out of range for rank ${rank}`);
    return d < 0 ? d + rank : d;
  });
  const [roiAt, scalesAt, sizesAt] = a.inputs, n = axes.length;
  const roi = a.coord === 'tf_crop_and_resize' ? listInput(ins, roiAt) : undefined;
  const scales = a.scales ?? listInput(ins, scalesAt), sizes = listInput(ins, sizesAt);
  if (!!scales === !!sizes) fail(ctx, `exactly one of 'scales' and 'sizes' must be given${scales ? ', got both' : ''}`);
  const given = (scales ?? sizes)!;
  if (given.length !== n) fail(ctx, `'${scales ? 'scales' : 'sizes'}' has ${given.length} entries, expected ${n} (one per resized axis)`);
  if (roi && roi.length !== 2 * n) fail(ctx, `'roi' has ${roi.length} entries, expected ${2 * n}`);
  if (a.coord === 'tf_crop_and_resize' && !roi) fail(ctx, `'roi' is required with tf_crop_and_resize`);
  const specs: AxisSpec[] = shape.map((d) => ({ inLen: d, outLen: d, scale: 1, coord: a.coord, roi: [0, 1] }));
  const ratios = sizes?.map((s, i) => s / shape[axes[i]]);
  const shared = ratios && a.policy !== 'stretch' ? (a.policy === 'not_larger' ? Math.min : Math.max)(...ratios) : undefined;
  axes.forEach((d, i) => {
    const s = specs[d];
    if (roi) s.roi = [roi[i], roi[n + i]];
    if (scales) {
      if (!(scales[i] > 0)) fail(ctx, `scale ${scales[i]} for axis ${d} should be positive`);
      s.scale = scales[i];
      s.outLen = Math.floor(Math.fround(s.inLen * s.scale));
    } else {
      if (sizes![i] < 0) fail(ctx, `size ${sizes![i]} for axis ${d} should not be negative`);
      s.scale = shared ?? ratios![i];
      s.outLen = shared === undefined ? sizes![i] : Math.floor(shared * s.inLen + 0.5);
    }
    if (s.inLen === 0 && s.outLen > 0) fail(ctx, `axis ${d} is empty and cannot be resized to ${s.outLen}`);
  });
  return specs;
}

function run(ins: Ins, a: ResizeAttrs, ctx: GpuCtx): GpuArray[] {
  const x = gpuAt(ins, 0, ctx), specs = axisSpecs(x.shape, a, ins, ctx);
  const taps = specs.map((s) => {
    const t = axisTaps(s, filterFor(a, s), a.antialias, a.exclude);
    return isIdentity(t, s.inLen) ? undefined : t;
  });
  const packed = packTaps(taps);
  // Uploading submits the recorded work first; the table is released at once, the dispatch keeps its read.
  const table = ctx.gpu.upload(new NdArray('int32', [packed.data.length], packed.data));
  const out = ctx.gpu.run(resample(x, table, packed, specs.map((s) => s.outLen), a.fill, a.mode === 'nearest'));
  ctx.gpu.release(table);
  return out;
}

const def = (op: string, since: number, cpuInputs: number[]): GpuOpDef<ResizeAttrs> => ({
  op, since, cpuInputs, run,
});

registerGpu(def('Upsample', 7, []), def('Upsample', 9, [1]), def('Resize', 10, [1]), def('Resize', 11, [1, 2, 3]));
