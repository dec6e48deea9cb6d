// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss over [N, C, d1..dk] scores with [N, d1..dk]
// class targets: reduction none, sum or (weighted) mean, optional class weights and ignore_index.
import type { TypeInfo } from '../engine/graph.js';
import { NdArray, sizeOf, type Value } from '../engine/tensor.js';
import { nllLoss } from '../kernels/cpu/loss.js';
import { softmax } from '../kernels/cpu/softmax.js';
import { FLOAT, typedInput } from './elementwise.js';
import { dtypeOf, shapeOf, tensorType } from './infer-rules.js';
import { type Attrs, fail, optTensor, register, tensorAt, type RunCtx } from './registry.js';

type Floats = Float32Array | Float64Array;
interface LossAttrs { reduction: string; ignore?: number }

function lossAttrs(a: Attrs): LossAttrs {
  const reduction = a.string('reduction', 'mean');
  if (!['none', 'sum', 'mean'].includes(reduction)) throw a.error(`reduction should be 'none', 'sum' or 'mean', got '${reduction}'`);
  return { reduction, ignore: a.has('ignore_index') ? a.int('ignore_index') : undefined };
}

/** Per-sample losses of log-probabilities x [N, C, ...] against inputs 1 (targets) and 2 (weights), reduced. */
function nll(x: NdArray, ins: (Value | undefined)[], at: LossAttrs, ctx: RunCtx): NdArray {
  if (x.shape.length < 2) fail(ctx, `input 0 should be [N, C, d1, ...], got shape [${x.shape}]`);
  const t = tensorAt(ins, 1, ctx), w = optTensor(ins, 2, ctx), C = x.shape[1];
  if (t.dtype !== 'int32' && t.dtype !== 'int64') fail(ctx, `input 1 (target) should be int32 or int64, got ${t.dtype}`);
  const want = [x.shape[0], ...x.shape.slice(2)];
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) fail(ctx, `input 1 (target) should have shape [${want}], got [${t.shape}]`);
  if (w && (w.dtype !== x.dtype || w.shape.length !== 1 || w.shape[0] !== C)) fail(ctx, `input 2 (weight) should be ${x.dtype} of shape [${C}], got ${w.dtype} [${w.shape}]`);
  const target = t.numbers(), bad = target.find((c) => c !== at.ignore && !(c >= 0 && c < C));
  if (bad !== undefined) fail(ctx, `input 1 (target) holds class ${bad}, outside [0, ${C})${at.ignore === undefined ? '' : ` and not ignore_index ${at.ignore}`}`);
  const loss = new Float64Array(target.length);
  const wsum = nllLoss(x.data as Floats, target, C, sizeOf(x.shape.slice(2)), w?.data as Floats | undefined, at.ignore, loss);
  const out = NdArray.zeros(x.dtype, at.reduction === 'none' ? t.shape : []), o = out.data as Floats;
  if (at.reduction === 'none') { o.set(loss); return out; }
  let sum = 0;
  for (let i = 0; i < loss.length; i++) sum += loss[i];
  // A weighted mean divides by the weights of the counted samples (their count when unweighted).
  o[0] = at.reduction === 'sum' ? sum : sum / wsum;
  return out;
}

const lossType = (ins: (TypeInfo | undefined)[], at: LossAttrs) =>
  tensorType(dtypeOf(ins[0]), at.reduction === 'none' ? shapeOf(ins[1]) : []);

register({
  op: 'NegativeLogLikelihoodLoss', since: 12, attrs: lossAttrs,
  infer: (ins, at: LossAttrs) => [lossType(ins, at)],
  run: (ins, at: LossAttrs, ctx) => [nll(typedInput(ins, 0, FLOAT, ctx), ins, at, ctx)],
});

register({
  op: 'SoftmaxCrossEntropyLoss', since: 12, attrs: lossAttrs,
  infer: (ins, at: LossAttrs) => [lossType(ins, at), ins[0]],
  run: (ins, at: LossAttrs, ctx) => {
    const x = typedInput(ins, 0, FLOAT, ctx);
    if (x.shape.length < 2) fail(ctx, `input 0 (scores) should be [N, C, d1, ...], got shape [${x.shape}]`);
    const logp = NdArray.zeros(x.dtype, x.shape);
    softmax(x.data as Floats, logp.data as Floats, x.shape[0], x.shape[1], sizeOf(x.shape.slice(2)), true);
    return [nll(logp, ins, at, ctx), logp];
  },
});
