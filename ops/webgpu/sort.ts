// GPU lowering of TopK (k from the attribute before opset 10, then from a CPU input). `sorted` needs no
// handling: unsorted order is unspecified, so the sorted order serves for both.
import { NdArray } from '../../engine/tensor.js';
import type { GpuArray, GpuRunner } from '../../kernels/webgpu/runner.js';
import { CHUNK, topkBitonicPass, topkSelect, type TopKLayout } from '../../kernels/webgpu/topk.js';
import { fail, gpuAt, registerGpu, type GpuCtx, type GpuOpDef } from '../registry.js';

interface TopKAttrs { axis: number; largest: boolean; k?: number }

/** Bitonic sorting needs a parallel GPU and pays off on long rows; it must also shrink each pass
 *  (k at most half a chunk). Software adapters run the per-row selection, which has no barriers. */
const useBitonic = (gpu: GpuRunner, l: TopKLayout) => !gpu.ctx.software && l.n > 64 && l.k <= CHUNK / 2;

function runBitonic(gpu: GpuRunner, x: GpuArray, l: TopKLayout): GpuArray[] {
  let cand: GpuArray | undefined, len = l.n;
  for (;;) {
    const outs = gpu.run(topkBitonicPass(x, cand, l, len));
    if (cand) gpu.release(cand);
    if (len <= CHUNK) return outs;
    cand = outs[0];
    len = Math.ceil(len / CHUNK) * Math.min(l.k, CHUNK);
  }
}

const outShape = (s: readonly number[], axis: number) => s.map((d, i) => (i === axis ? 0 : d));

function run(ins: (GpuArray | NdArray | undefined)[], a: TopKAttrs, ctx: GpuCtx): GpuArray[] {
  const x = gpuAt(ins, 0, ctx), rank = x.shape.length;
  if (a.axis < -rank || a.axis >= rank) fail(ctx, `axis ${a.axis} is out of range for input 0 ('X') of rank ${rank}`);
  const axis = a.axis < 0 ? a.axis + rank : a.axis, kIn = ins[1];
  if (a.k === undefined && (!(kIn instanceof NdArray) || kIn.size !== 1)) fail(ctx, `input 1 ('K') should hold one integer`);
  const k = a.k ?? (kIn as NdArray).numbers()[0], n = x.shape[axis];
  if (k < 0 || k > n) fail(ctx, `k = ${k} is outside [0, ${n}] (the size of axis ${axis})`);
  const prod = (s: number[]) => s.reduce((p, d) => p * d, 1);
  const l: TopKLayout = { outer: prod(x.shape.slice(0, axis)), n, inner: prod(x.shape.slice(axis + 1)), axis, k, largest: a.largest };
  if (k === 0) return [ctx.gpu.alloc(x.dtype, outShape(x.shape, axis)), ctx.gpu.alloc('int64', outShape(x.shape, axis))];
  return useBitonic(ctx.gpu, l) ? runBitonic(ctx.gpu, x, l) : ctx.gpu.run(topkSelect(x, l));
}

const def = (since: number): GpuOpDef<TopKAttrs> => ({ op: 'TopK', since, cpuInputs: since >= 10 ? [1] : [], run });
registerGpu(def(1), def(10));
