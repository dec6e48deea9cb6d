// GPU lowerings of NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (LogSoftmax over the class
// axis, then the NLL). Targets are a CPU input: they are checked against the class count with the CPU
// backend's message (a GPU kernel cannot raise one), then uploaded as int32.
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { nllReduce, nllSamples } from '../../kernels/webgpu/loss.js';
import type { GpuArray } from '../../kernels/webgpu/runner.js';
import { softmaxProgram } from '../../kernels/webgpu/softmax.js';
import { fail, gpuAt, registerGpu, type GpuCtx, type GpuOpDef } from '../registry.js';

interface LossAttrs { reduction: string; ignore?: number }
type Ins = Parameters<GpuOpDef['run']>[0];

const FLOATS = new Set<DType | undefined>(['float32', 'float16']);
const reject = (d: (DType | undefined)[]) => {
  const bad = [d[0], d[2]].find((x) => x && !FLOATS.has(x));
  return bad ? `dtype ${bad} not supported by this GPU kernel` : undefined;
};

/** Loss of log-probabilities x [N, C, ...] against inputs 1 (targets) and 2 (weights), reduced. */
function nll(x: GpuArray, ins: Ins, at: LossAttrs, ctx: GpuCtx): GpuArray {
  if (x.shape.length < 2) fail(ctx, `input 0 should be [N, C, d1, ...], got shape [${x.shape}]`);
  const t = ins[1], w = ins[2] === undefined ? undefined : gpuAt(ins, 2, ctx), C = x.shape[1];
  if (!(t instanceof NdArray)) fail(ctx, 'input 1 (target) is required but missing');
  if (t.dtype !== 'int32' && t.dtype !== 'int64') fail(ctx, `input 1 (target) should be int32 or int64, got ${t.dtype}`);
  const want = [x.shape[0], ...x.shape.slice(2)];
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) fail(ctx, `input 1 (target) should have shape [${want}], got [${t.shape}]`);
  if (w && (w.dtype !== x.dtype || w.shape.length !== 1 || w.shape[0] !== C)) fail(ctx, `input 2 (weight) should be ${x.dtype} of shape [${C}], got ${w.dtype} [${w.shape}]`);
  const target = t.numbers(), bad = target.find((c) => c !== at.ignore && !(c >= 0 && c < C));
  if (bad !== undefined) fail(ctx, `input 1 (target) holds class ${bad}, outside [0, ${C})${at.ignore === undefined ? '' : ` and not ignore_index ${at.ignore}`}`);
  // An ignore_index beyond int32 matches no int32 target: any value outside [0, C) stands in for it.
  const ignore = at.ignore === undefined ? undefined : Math.abs(at.ignore) < 2 ** 31 ? at.ignore : -1;
  const tg = ctx.gpu.upload(new NdArray('int32', t.shape, Int32Array.from(target))), spec = { c: C, d: target.length / Math.max(1, x.shape[0]), ignore };
  try {
    if (at.reduction === 'none') return ctx.gpu.run(nllSamples(x, tg, w, spec, x.dtype, false))[0];
    const [loss, wsum] = ctx.gpu.run(nllSamples(x, tg, w, spec, 'float32', at.reduction === 'mean'));
    const [y] = ctx.gpu.run(nllReduce(ctx.gpu.ctx, loss, wsum, x.dtype));
    ctx.gpu.release(loss);
    if (wsum) ctx.gpu.release(wsum);
    return y;
  } finally {
    ctx.gpu.release(tg);
  }
}

registerGpu(
  {
    op: 'NegativeLogLikelihoodLoss', since: 12, cpuInputs: [1], reject,
    run: (ins, at: LossAttrs, ctx) => [nll(gpuAt(ins, 0, ctx), ins, at, ctx)],
  },
  {
    op: 'SoftmaxCrossEntropyLoss', since: 12, cpuInputs: [1], reject,
    run: (ins, at: LossAttrs, ctx) => {
      const x = gpuAt(ins, 0, ctx);
      if (x.shape.length < 2) fail(ctx, `input 0 (scores) should be [N, C, d1, ...], got shape [${x.shape}]`);
      const [logp] = ctx.gpu.run(softmaxProgram(ctx.gpu.ctx, x, x.shape, [1], 'logsoftmax'));
      const loss = nll(logp, ins, at, ctx);
      // The executor releases only outputs the node declares: an undeclared log_prob is ours to free.
      if (ctx.node.outputs.length > 1) return [loss, logp];
      ctx.gpu.release(logp);
      return [loss];
    },
  },
);
