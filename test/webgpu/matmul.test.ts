import { afterAll, beforeAll, expect, it } from 'vitest';
import { GraphBuilder, float } from '../../loaders/builder.js';
import { NdArray } from '../../engine/tensor.js';
import { erf } from '../../kernels/cpu/math.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { ACTIVATION_DEFAULTS, type Activation } from '../../kernels/webgpu/activation.js';
import { chooseGemmVariant, matmulProgram, type GemmVariant, type MatmulSpec } from '../../kernels/webgpu/matmul.js';
import { GpuRunner } from '../../kernels/webgpu/runner.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type R = ReturnType<typeof rng>;
const count = (s: number[]) => s.reduce((x, y) => x * y, 1);

function matmulModel(as: number[], bs: number[], dtype: 'float32' | 'float16' | 'int32' = 'float32') {
  const g = new GraphBuilder();
  g.output(g.node('MatMul', [g.input('a', dtype, as), g.input('b', dtype, bs)])[0], null);
  return g.model({ opset: 17 });
}

/** A dim that is sometimes a multiple of 4 (vec4 paths), sometimes 1 (vector shapes), else ragged. */
const dim = (r: R) => r.pick([1, 4, 8, 12, r.int(2, 11), r.int(13, 40)]);

/** Batch dims for A and B that broadcast: each dim is shared, or 1 on one side; B's are often absent. */
function batches(r: R): [number[], number[]] {
  const full = Array.from({ length: r.int(0, 2) }, () => r.int(2, 3));
  const a = full.map((d) => (r.next() < 0.3 ? 1 : d)), b = full.map((d) => (r.next() < 0.3 ? 1 : d));
  return [a.slice(r.int(0, a.length)), b.slice(r.next() < 0.3 ? b.length : 0)];
}

// ---- float64 reference for the program builder ---------------------------------------------------

/** The activations in float64, with their ONNX defaults: the reference for the WGSL epilogues. */
function activationRef(act: Activation): (v: number) => number {
  const [a, b] = ACTIVATION_DEFAULTS[act.kind].map((d, i) => act.params?.[i] ?? d);
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const table: Record<Activation['kind'], (v: number) => number> = {
    Relu: (v) => Math.max(v, 0), LeakyRelu: (v) => (v < 0 ? a * v : v), Clip: (v) => Math.min(Math.max(v, a), b), Sigmoid: sig, Tanh: Math.tanh,
    HardSigmoid: (v) => Math.max(0, Math.min(1, a * v + b)), HardSwish: (v) => v * Math.max(0, Math.min(1, v / 6 + 0.5)),
    Elu: (v) => (v < 0 ? a * Math.expm1(v) : v), Gelu: (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)),
    GeluTanh: (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))), Silu: (v) => v * sig(v),
  };
  return table[act.kind];
}
const activate = (v: number, a?: Activation) => (a ? activationRef(a)(v) : v);
/** Every activation once, with non-default parameters where it has any. */
const EVERY_ACTIVATION: Activation[] = [
  { kind: 'Relu' }, { kind: 'LeakyRelu', params: [0.3] }, { kind: 'Clip', params: [-0.5, 0.75] }, { kind: 'Sigmoid' }, { kind: 'Tanh' },
  { kind: 'HardSigmoid', params: [0.3, 0.4] }, { kind: 'HardSwish' }, { kind: 'Elu', params: [0.7] }, { kind: 'Gelu' }, { kind: 'GeluTanh' }, { kind: 'Silu' },
];

interface Case { batch: number[]; aB: number[]; bB: number[]; m: number; n: number; k: number; transA: boolean; transB: boolean }

/** Matrix strides of a batch shape inside the broadcast batch (0 where broadcast). */
function stridesOf(shape: number[], batch: number[]) {
  const s = new Array<number>(batch.length).fill(0);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[batch.length - shape.length + i] = shape[i] === 1 ? 0 : acc; acc *= shape[i]; }
  return s;
}

/** act(alpha * A·B + beta * bias[col]) with A and B read through the strides the GPU gets. */
function reference(c: Case, a: Float32Array, b: Float32Array, bias: Float32Array, alpha: number, beta: number, act?: Activation): Float32Array {
  const out = new Float32Array(count(c.batch) * c.m * c.n), as = stridesOf(c.aB, c.batch), bs = stridesOf(c.bB, c.batch);
  for (let t = 0; t < count(c.batch); t++) {
    let rem = t, ao = 0, bo = 0;
    for (let d = c.batch.length - 1; d >= 0; d--) { const i = rem % c.batch[d]; ao += i * as[d]; bo += i * bs[d]; rem = Math.floor(rem / c.batch[d]); }
    for (let i = 0; i < c.m; i++) {
      for (let j = 0; j < c.n; j++) {
        let s = 0;
        for (let p = 0; p < c.k; p++) {
          s += a[ao * c.m * c.k + (c.transA ? p * c.m + i : i * c.k + p)] * b[bo * c.k * c.n + (c.transB ? j * c.k + p : p * c.n + j)];
        }
        out[(t * c.m + i) * c.n + j] = activate(alpha * s + beta * bias[j], act);
      }
    }
  }
  return out;
}

function randomCase(r: R, m: number, n: number): Case {
  const batch = r.pick([[], [2], [2, 3]]);
  return {
    batch, aB: batch.map((d) => (r.next() < 0.3 ? 1 : d)), bB: batch.map((d) => (r.next() < 0.3 ? 1 : d)),
    m, n, k: r.pick([1, 3, 16, 37, 80]), transA: r.next() < 0.3, transB: r.next() < 0.3,
  };
}

describeGpu('WebGPU MatMul and Gemm', () => {
  // Held for the whole file: the device and its pipeline cache then outlive each test's sessions.
  let ctx: GpuContext, gpu: GpuRunner;
  beforeAll(async () => { ctx = await acquireGpu(); gpu = new GpuRunner(ctx); });
  afterAll(() => { gpu.destroy(); releaseGpu(ctx); });

  /** Runs the builder's program for case `c` (bias along columns) and compares with the reference. */
  async function check(c: Case, variant: GemmVariant, r: R, act?: Activation) {
    const a = randomF32([count(c.aB) * c.m * c.k], r), b = randomF32([count(c.bB) * c.k * c.n], r), bias = randomF32([c.n], r);
    const [ga, gb, gbias] = [a, b, bias].map((x) => gpu.upload(x)), alpha = r.pick([1, 0.5]), beta = r.pick([1, -1.5]);
    const s: MatmulSpec = {
      a: { x: ga, strides: c.transA ? [1, c.m] : [c.k, 1], batchStrides: stridesOf(c.aB, c.batch).map((v) => v * c.m * c.k) },
      b: { x: gb, strides: c.transB ? [1, c.k] : [c.n, 1], batchStrides: stridesOf(c.bB, c.batch).map((v) => v * c.k * c.n) },
      dims: { batch: count(c.batch), m: c.m, n: c.n, k: c.k }, batchShape: c.batch, biasStrides: [0, 0, 1],
      epilogue: { alpha, beta, bias: gbias, activation: act }, variant,
    };
    const [o] = gpu.run(matmulProgram(ctx, s, [...c.batch, c.m, c.n]));
    const got = (await gpu.download(o)).data as Float32Array;
    [o, ga, gb, gbias].forEach((x) => gpu.release(x));
    const expected = reference(c, a.data, b.data, bias.data, alpha, beta, act);
    const bad = expected.findIndex((e, i) => !(Math.abs(got[i] - e) <= 1e-4 + 1e-3 * Math.abs(e)));
    expect(bad, `${variant} ${act?.kind ?? ''} ${JSON.stringify(c)}: index ${bad}: ${got[bad]} vs ${expected[bad]}`).toBe(-1);
  }

  it('MatMul over broadcast batches, 1-D operands and ragged or vec4-aligned dims', async () => {
    const r = rng(11);
    for (let t = 0; t < 8; t++) {
      const [ab, bb] = batches(r), m = dim(r), n = dim(r), k = r.pick([dim(r), 70]);
      const as = r.next() < 0.15 ? [k] : [...ab, m, k], bs = r.next() < 0.15 ? [k] : [...bb, k, n];
      await expectGpuMatchesCpu(matmulModel(as, bs), { a: randomF32(as, r), b: randomF32(bs, r) });
    }
  });

  it('Gemm with transA, transB, alpha, beta and every broadcast of C', async () => {
    const r = rng(12);
    for (let t = 0; t < 6; t++) {
      const m = dim(r), n = dim(r), k = dim(r), transA = r.int(0, 1), transB = r.int(0, 1);
      const cShape = r.pick([undefined, [], [1], [n], [m, 1], [1, n], [m, n]]);
      const g = new GraphBuilder();
      const ins = [g.input('a', 'float32', transA ? [k, m] : [m, k]), g.input('b', 'float32', transB ? [n, k] : [k, n])];
      if (cShape) ins.push(g.input('c', 'float32', cShape));
      g.output(g.node('Gemm', ins, { transA, transB, alpha: float(r.pick([1, 0.5, -2])), beta: float(r.pick([1, 0, 0.25])) })[0], null);
      const feeds: Record<string, NdArray> = { a: randomF32(transA ? [k, m] : [m, k], r), b: randomF32(transB ? [n, k] : [k, n], r) };
      if (cShape) feeds.c = randomF32(cShape, r);
      await expectGpuMatchesCpu(g.model({ opset: 13 }), feeds);
    }
  });

  it('int32 MatMul wraps around like the CPU', async () => {
    const r = rng(13), as = [2, 5, 9], bs = [9, 6];
    const ints = (shape: number[]) => new NdArray('int32', shape, Int32Array.from({ length: count(shape) }, () => r.int(-60000, 60000)));
    await expectGpuMatchesCpu(matmulModel(as, bs, 'int32'), { a: ints(as), b: ints(bs) });
  });

  it('float16 MatMul computes in f32', async () => {
    if (!ctx.f16) return;
    const r = rng(14), as = [3, 8, 12], bs = [12, 5];
    const half = (shape: number[]) => new NdArray('float16', shape, randomF32(shape, r).data);
    await expectGpuMatchesCpu(matmulModel(as, bs, 'float16'), { a: half(as), b: half(bs) }, { rtol: 1e-2, atol: 1e-2 });
  });

  it('builder: reg and shared over ragged, aligned and tile-crossing shapes with bias', async () => {
    const r = rng(21);
    // The barrier kernel is llvmpipe's slowest to compile (~5-10 s): one case.
    for (const [variant, act] of [['reg', undefined], ['reg', { kind: 'Relu' }], ['shared', undefined]] as const) {
      await check(randomCase(r, r.pick([1, 5, 32, 67]), r.pick([2, 8, 33, 68])), variant, r, act);
    }
  });

  // The activation WGSL is the same in every variant: gemv, the quickest to compile, checks each once.
  it('builder: gemv for row and column vectors, with every activation', async () => {
    const r = rng(22);
    for (const [t, act] of [undefined, ...EVERY_ACTIVATION].entries()) {
      const rows = t % 2 === 0, len = r.pick([3, 64, 130]);
      await check(randomCase(r, rows ? len : 1, rows ? 1 : len), 'gemv', r, act);
    }
  });

  it('builder: a new shape of the same rank compiles no new pipeline', async () => {
    const r = rng(23), c1: Case = { batch: [2], aB: [2], bB: [1], m: 9, n: 6, k: 7, transA: false, transB: false };
    await check(c1, 'reg', r);
    const before = gpu.pipelineCount;
    await check({ ...c1, batch: [3], aB: [1], bB: [3], m: 17, n: 10, k: 5 }, 'reg', r);
    expect(gpu.pipelineCount).toBe(before);
  });

  it('the variant rule follows the adapter and the shape', () => {
    expect(chooseGemmVariant({ software: true }, 1024, 1024, 1024, true)).toBe('reg');
    expect(chooseGemmVariant({ software: true }, 1, 4096, 4096, false)).toBe('reg');
    expect(chooseGemmVariant({ software: true }, 4096, 1, 4096, true)).toBe('gemv');
    expect(chooseGemmVariant({ software: true }, 4096, 1, 256, true)).toBe('reg');
    expect(chooseGemmVariant({ software: false }, 1024, 1024, 1024, true)).toBe('shared');
    expect(chooseGemmVariant({ software: false }, 1, 4096, 4096, true)).toBe('gemv');
    expect(chooseGemmVariant({ software: false }, 1, 4096, 4096, false)).toBe('reg');
    expect(chooseGemmVariant({ software: false }, 16, 16, 16, true)).toBe('reg');
  });
});
