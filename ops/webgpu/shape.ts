// GPU lowerings of the view ops: Reshape, Flatten, Squeeze, Unsqueeze, Identity and Dropout share their
// input's buffer (GpuArray.view) and dispatch nothing, except Dropout's mask and training-mode output.
import { allocStorage } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { MT19937 } from '../../kernels/cpu/mt19937.js';
import { fill } from '../../kernels/webgpu/copy.js';
import { elementwise } from '../../kernels/webgpu/elementwise.js';
import type { GpuArray } from '../../kernels/webgpu/runner.js';
import { fail, gpuAt, lookup, registerGpu, type GpuCtx, type GpuOpDef } from '../registry.js';

type Ins = (GpuArray | NdArray | undefined)[];

/** The output shape, from the CPU definition run on a data-less stand-in of input 0: these ops read only
 *  its shape (and their CPU inputs), so the shape rules and their errors live in one place. */
function cpuShape(ins: Ins, attrs: unknown, ctx: GpuCtx): readonly number[] {
  const x = gpuAt(ins, 0, ctx), def = lookup(ctx.node.domain, ctx.node.opType, ctx.opset) ?? fail(ctx, 'no CPU definition');
  const args = ins.map((v, i) => (i === 0 ? new NdArray(x.dtype, x.shape, allocStorage(x.dtype, 0)) : (v as NdArray | undefined)));
  const out = def.run(args, attrs, { node: ctx.node, opset: ctx.opset, subgraph: () => fail(ctx, 'has no subgraphs') })[0];
  return (out as NdArray).shape;
}

const view = (op: string, since = 1, cpuInputs?: number[]): GpuOpDef => ({
  op, since, cpuInputs, run: (ins, a, ctx) => [gpuAt(ins, 0, ctx).view(cpuShape(ins, a, ctx))],
});

registerGpu(
  view('Reshape'), view('Reshape', 5, [1]), view('Flatten'),
  view('Squeeze'), view('Squeeze', 13, [1]), view('Unsqueeze'), view('Unsqueeze', 13, [1]),
  // Sequences and optionals (no dtype) only live on the CPU.
  { op: 'Identity', reject: (d) => (d[0] ? undefined : 'sequence or optional input: CPU only'), run: (ins, _a, ctx) => [gpuAt(ins, 0, ctx).view()] },
);

/** The mask of an inference Dropout: ones, bool from opset 10 and the data's type before. */
function ones(x: GpuArray, ctx: GpuCtx): GpuArray[] {
  return ctx.node.outputs[1] ? ctx.gpu.run(fill(ctx.opset >= 10 ? 'bool' : x.dtype, x.shape, 1)) : [];
}

/** Training-mode Dropout-12: the keep mask depends only on the seed and the shape, so it is drawn on the
 *  CPU with the generator the CPU backend uses (numpy's, as the ONNX reference) and the scaling runs here. */
function trainDropout(x: GpuArray, ratio: number, seed: number | undefined, ctx: GpuCtx): GpuArray[] {
  if (!(ratio >= 0 && ratio < 1)) fail(ctx, `ratio ${ratio} is outside [0, 1)`);
  const rng = new MT19937(seed ?? Math.floor(Math.random() * 2 ** 32));
  const keep = Uint8Array.from({ length: x.size }, () => Number(rng.nextDouble() >= ratio));
  const mask = ctx.gpu.upload(new NdArray('bool', x.shape, keep));
  const [y] = ctx.gpu.run(elementwise({ name: 'Dropout', expr: 'select(0.0, v0 * u_scale(), v1 != 0u)', inputs: [x, mask], outShape: x.shape, outDtype: x.dtype, params: { scale: 1 / (1 - ratio) } }));
  if (ctx.node.outputs[1]) return [y, mask];
  ctx.gpu.release(mask);
  return [y];
}

registerGpu(
  { op: 'Dropout', run: (ins, _a, ctx) => { const x = gpuAt(ins, 0, ctx); return [x.view(), ...ones(x, ctx)]; } },
  {
    op: 'Dropout', since: 12, cpuInputs: [1, 2],
    run: (ins, a: { seed?: number }, ctx) => {
      const x = gpuAt(ins, 0, ctx), r = ins[1] as NdArray | undefined, t = ins[2] as NdArray | undefined;
      const ratio = r ? Number(r.data[0]) : 0.5;
      if (t && t.data[0] && ratio !== 0) return trainDropout(x, ratio, a.seed, ctx);
      return [x.view(), ...ones(x, ctx)];
    },
  },
);
