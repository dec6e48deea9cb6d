// WebGPU NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss against the CPU backend: every reduction,
// with and without weights and ignore_index, 2-D and N-D inputs, int32 and int64 targets.
import { afterAll, beforeAll, it } from 'vitest';
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { GraphBuilder } from '../../loaders/builder.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type Rng = ReturnType<typeof rng>;

async function check(op: string, r: Rng, o: { reduction: string; weighted: boolean; ignore?: number; rank: number; tdtype: DType; logProb?: boolean }) {
  const n = r.int(1, 4), c = r.int(2, 6), rest = Array.from({ length: o.rank - 2 }, () => r.int(1, 4));
  const xs = [n, c, ...rest], ts = [n, ...rest], g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const ids = Array.from({ length: ts.reduce((a, b) => a * b, 1) }, () => (o.ignore !== undefined && r.next() < 0.3 ? o.ignore : r.int(0, c - 1)));
  feeds.x = randomF32(xs, r, op === 'NegativeLogLikelihoodLoss' ? -3 : -4, op === 'NegativeLogLikelihoodLoss' ? 0 : 4);
  feeds.t = o.tdtype === 'int64' ? new NdArray('int64', ts, BigInt64Array.from(ids, BigInt)) : new NdArray('int32', ts, Int32Array.from(ids));
  const ins = [g.input('x', 'float32', xs), g.input('t', o.tdtype, ts)];
  if (o.weighted) { feeds.w = randomF32([c], r, 0.2, 2); ins.push(g.input('w', 'float32', [c])); }
  const attrs: Record<string, number | string> = { reduction: o.reduction };
  if (o.ignore !== undefined) attrs.ignore_index = o.ignore;
  for (const y of g.node(op, ins, attrs, o.logProb ? 2 : 1)) g.output(y, null);
  await expectGpuMatchesCpu(g.model({ opset: 13 }), feeds);
}

let gpu: GpuContext;
beforeAll(async () => { gpu = await acquireGpu().catch(() => undefined as never); });
afterAll(() => { if (gpu) releaseGpu(gpu); });

describeGpu('WebGPU losses match the CPU backend', () => {
  for (const op of ['NegativeLogLikelihoodLoss', 'SoftmaxCrossEntropyLoss']) {
    it(`${op}: reductions x weights x ignore_index x rank`, async () => {
      const r = rng(op.length);
      for (const reduction of ['none', 'sum', 'mean']) for (const weighted of [false, true]) for (const ignore of [undefined, 1, -1]) {
        await check(op, r, { reduction, weighted, ignore, rank: r.int(2, 4), tdtype: r.next() < 0.5 ? 'int64' : 'int32', logProb: op !== 'NegativeLogLikelihoodLoss' && r.next() < 0.5 });
      }
    });
  }
  it('a long mean folds in parallel rows', async () => {
    await check('NegativeLogLikelihoodLoss', rng(5), { reduction: 'mean', weighted: true, rank: 3, tdtype: 'int64' });
    const r = rng(6), g = new GraphBuilder(), n = 3000, c = 3;
    const t = new NdArray('int64', [n], BigInt64Array.from({ length: n }, () => BigInt(r.int(0, c - 1))));
    g.output(g.node('NegativeLogLikelihoodLoss', [g.input('x', 'float32', [n, c]), g.input('t', 'int64', [n])], { reduction: 'mean' })[0], null);
    await expectGpuMatchesCpu(g.model({ opset: 13 }), { x: randomF32([n, c], r, -3, 0), t });
  });
});
