// GEMM variant choice by measurement (kernels/webgpu/gemm-tuning.ts): warmup times the variants for the
// session's product shapes, remembers the winner per shape class, and results stay those of the CPU.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { compareValues } from '../../conformance/compare.js';
import { toNdArray, toTensor } from '../../engine/tensor.js';
import { InferenceSession, Tensor } from '../../index.js';
import { GraphBuilder } from '../../loaders/builder.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { applicableVariants, gemmVariantFor, measuredVariants, shapeClass, tuneGemms } from '../../kernels/webgpu/gemm-tuning.js';
import { chooseGemmVariant } from '../../kernels/webgpu/matmul.js';
import { GpuRunner } from '../../kernels/webgpu/runner.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu } from '../helpers/gpu.js';

describeGpu('GEMM variant choice by measurement', () => {
  let ctx: GpuContext;
  beforeAll(async () => { ctx = await acquireGpu(); });
  afterAll(() => releaseGpu(ctx));

  it('warmup measures each MatMul shape class (matrix and matrix-vector), keeps a winner, and results match the CPU', async () => {
    const r = rng(71), g = new GraphBuilder();
    const a = g.input('a', 'float32', [33, 40]), w = g.input('w', 'float32', [40, 20]), x = g.input('x', 'float32', [1, 33]);
    const y = g.node('MatMul', [a, w])[0];
    g.output(y, null);
    g.output(g.node('MatMul', [x, y])[0], null); // a 1 x 20 x 33 row-vector product
    const bytes = g.model({ opset: 17 });
    const classes = [shapeClass({ m: 33, n: 20, k: 40, rowsAlongK: false }), shapeClass({ m: 1, n: 20, k: 33, rowsAlongK: false })];
    const gpu = await InferenceSession.create(bytes, { executionProviders: ['webgpu'], strict: true });
    const cpu = await InferenceSession.create(bytes);
    try {
      await gpu.warmup();
      const won = measuredVariants(ctx.adapterName);
      expect(classes.map((c) => won.get(c))).toEqual([expect.stringMatching(/^(reg|shared)$/), expect.stringMatching(/^(reg|shared|gemv)$/)]);
      // Nothing left to measure: a second warmup times nothing and keeps the winners.
      const runner = (gpu as unknown as { gpu: { runner: GpuRunner } }).gpu.runner;
      expect(await tuneGemms(runner)).toEqual([]);
      const pipelines = runner.pipelineCount;
      const feeds = { a: randomF32([33, 40], r), w: randomF32([40, 20], r), x: randomF32([1, 33], r) };
      const pub = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toTensor(v)]));
      const [got, want] = [await gpu.run(pub), await cpu.run(pub)];
      for (const [name, t] of Object.entries(want)) expect(compareValues(toNdArray(t as Tensor), toNdArray(got[name] as Tensor), { rtol: 1e-3, atol: 1e-4 }), name).toBeUndefined();
      expect(runner.pipelineCount, 'the run after warmup compiles nothing').toBe(pipelines);
    } finally {
      await gpu.release();
    }
  });

  it('applicable variants: gemv only for matrix-vector shapes; classes bucket nearby sizes', () => {
    expect(applicableVariants({ m: 8, n: 8, k: 8, rowsAlongK: false })).toEqual(['reg', 'shared']);
    expect(applicableVariants({ m: 1, n: 8, k: 8, rowsAlongK: true })).toEqual(['reg', 'shared', 'gemv']);
    expect(shapeClass({ m: 100, n: 60, k: 64, rowsAlongK: false })).toBe(shapeClass({ m: 128, n: 33, k: 40, rowsAlongK: false }));
    expect(shapeClass({ m: 1, n: 60, k: 64, rowsAlongK: false })).not.toBe(shapeClass({ m: 2, n: 60, k: 64, rowsAlongK: false }));
  });

  it('where measuring fails the rule stands, and the class is not retried', async () => {
    const gpu = new GpuRunner(ctx), s = { m: 5000, n: 2, k: 3, rowsAlongK: false };
    try {
      expect(gemmVariantFor(ctx, s)).toBe(chooseGemmVariant(ctx, 5000, 2, 3, false)); // noted for measuring
      const broken = Object.create(gpu, { compile: { value: async () => { throw new Error('no pipeline'); } } }) as GpuRunner;
      expect(await tuneGemms(broken)).toEqual([]);
      expect(measuredVariants(ctx.adapterName).get(shapeClass(s))).toBe(chooseGemmVariant(ctx, 5000, 2, 3, false));
    } finally { gpu.destroy(); }
  });
});
