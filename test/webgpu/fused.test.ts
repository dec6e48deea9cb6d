// The fused internal ops (ops/fused.ts, made by graph optimisation level 'all') on WebGPU: FusedConv,
// FusedGemm, FusedMatMul (perms as strides, bias, every activation) and the adopted LayerNormalization /
// Gelu, each against the CPU session; and a fused node the GPU cannot take falls back to the CPU.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Plan } from '../../engine/plan.js';
import { NdArray } from '../../engine/tensor.js';
import { InferenceSession } from '../../index.js';
import { float, GraphBuilder } from '../../loaders/builder.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type R = ReturnType<typeof rng>;
const ops = (s: InferenceSession) => (s as unknown as { plan: Plan }).plan.steps.map((st) => st.node.opType);

/** Appends activation `kind` after `y` the way exporters write it; returns its output. */
function activation(g: GraphBuilder, y: string, kind: string): string {
  switch (kind) {
    case 'LeakyRelu': return g.node('LeakyRelu', [y], { alpha: float(0.3) })[0];
    case 'Elu': return g.node('Elu', [y], { alpha: float(0.7) })[0];
    case 'HardSigmoid': return g.node('HardSigmoid', [y], { alpha: float(0.3), beta: float(0.4) })[0];
    case 'Clip': return g.node('Clip', [y, g.init(`lo${y}`, 'float32', [], [-0.5]), g.init(`hi${y}`, 'float32', [], [0.75])])[0];
    case 'GeluTanh': return g.node('Gelu', [y], { approximate: 'tanh' })[0];
    case 'Silu': return g.node('Mul', [y, g.node('Sigmoid', [y])[0]])[0];
    default: return g.node(kind, [y])[0];
  }
}
const KINDS = ['Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'Tanh', 'HardSigmoid', 'HardSwish', 'Elu', 'Gelu', 'GeluTanh', 'Silu'];

/** Builds a model with `build`, checks the WebGPU plan holds `fused` (and none of `folded`) and matches the CPU session. */
async function check(build: (g: GraphBuilder, input: (n: string, v: NdArray) => string) => string, fused: string, opset = 20, folded: string[] = []) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const out = build(g, (n, v) => { feeds[n] = v; return g.input(n, v.dtype, [...v.shape]); });
  g.output(out, null);
  const bytes = g.model({ opset });
  const gpu = await expectGpuMatchesCpu(bytes, feeds, { rtol: 1e-3, atol: 1e-4 });
  expect(ops(gpu)).toContain(fused);
  for (const op of folded) expect(ops(gpu)).not.toContain(op);
}

describeGpu('fused ops on WebGPU', () => {
  let ctx: GpuContext | undefined;
  beforeAll(async () => { ctx = await acquireGpu(); });
  afterAll(() => { if (ctx) releaseGpu(ctx); });

  it('FusedMatMul: every activation in the epilogue, bias along columns, odd and unit sizes', async () => {
    const r = rng(81);
    for (const [i, kind] of KINDS.entries()) {
      const m = [1, 3, 7, 13][i % 4], k = [1, 5, 16, 33][(i + 1) % 4], n = [4, 1, 9, 6][(i + 2) % 4];
      await check((g, input) => {
        const y = g.node('MatMul', [input('a', randomF32([2, m, k], r)), g.init('w', randomF32([k, n], r))])[0];
        return activation(g, g.node('Add', [y, g.init('b', randomF32([n], r))])[0], kind);
      }, 'FusedMatMul');
    }
  });

  it('FusedMatMul: permA/permB read as strides, batch-varying bias, and an addend that grows the shape', async () => {
    const r = rng(82);
    // Q·K^T with both operands head-split by Transposes, then a bias per (batch, head) row.
    await check((g, input) => {
      const q = g.node('Transpose', [input('q', randomF32([2, 5, 3, 4], r))], { perm: [0, 2, 1, 3] })[0];
      const k = g.node('Transpose', [input('k', randomF32([2, 6, 3, 4], r))], { perm: [0, 2, 3, 1] })[0];
      return g.node('Add', [g.node('MatMul', [q, k])[0], input('z', randomF32([2, 3, 5, 1], r))])[0];
    }, 'FusedMatMul');
    // A transposed A with a shared B; an addend with a leading dim the product lacks (grows the output).
    await check((g, input) => {
      const a = g.node('Transpose', [input('a', randomF32([7, 3], r))], { perm: [1, 0] })[0];
      const y = g.node('MatMul', [a, input('b', randomF32([7, 5], r))])[0];
      return activation(g, g.node('Add', [y, input('z', randomF32([2, 1, 5], r))])[0], 'Tanh');
    }, 'FusedMatMul');
    // 1-D operands on both sides.
    await check((g, input) => activation(g, g.node('Add', [g.node('MatMul', [input('a', randomF32([9], r)), input('b', randomF32([4, 9, 3], r))])[0], input('z', randomF32([3], r))])[0], 'Relu'), 'FusedMatMul');
  });

  it('FusedGemm: transposes, alpha/beta, broadcast C and activations', async () => {
    const r = rng(83);
    for (const [kind, cShape] of [['Relu', [6]], ['Sigmoid', [5, 1]], ['GeluTanh', [5, 6]], ['HardSwish', []]] as [string, number[]][]) {
      await check((g, input) => {
        const y = g.node('Gemm', [input('a', randomF32([7, 5], r)), input('b', randomF32([6, 7], r)), input('c', randomF32(cShape, r))],
          { transA: 1, transB: 1, alpha: float(0.5), beta: float(-1.5) })[0];
        return activation(g, y, kind);
      }, 'FusedGemm');
    }
  });

  it('FusedConv: residual of the output shape in the epilogue, a broadcast one after it, depthwise, activations', async () => {
    const r = rng(84);
    const conv = (g: GraphBuilder, input: (n: string, v: NdArray) => string, group: number, c: number, m: number) =>
      g.node('Conv', [input('x', randomF32([2, c, 7, 5], r)), g.init('w', randomF32([m, c / group, 3, 3], r)), g.init('b', randomF32([m], r))], { pads: [1, 1, 1, 1], group })[0];
    await check((g, input) => activation(g, g.node('Add', [conv(g, input, 1, 3, 4), input('z', randomF32([2, 4, 7, 5], r))])[0], 'Relu'), 'FusedConv');
    await check((g, input) => activation(g, g.node('Add', [input('z', randomF32([4, 1, 1], r)), conv(g, input, 1, 3, 4)])[0], 'Clip'), 'FusedConv');
    await check((g, input) => activation(g, conv(g, input, 4, 4, 8), 'HardSwish'), 'FusedConv');
    await check((g, input) => activation(g, conv(g, input, 1, 2, 5), 'LeakyRelu'), 'FusedConv');
  });

  it('post_affine (a scalar Mul/Add after the activation) on FusedConv, FusedGemm and FusedMatMul, in and after the program', async () => {
    const r = rng(87);
    const s = (g: GraphBuilder, name: string, v: number) => g.init(name, 'float32', [1], [v]);
    const affine = (g: GraphBuilder, y: string, mul: boolean, add: boolean) => {
      const m = mul ? g.node('Mul', [s(g, `s${y}`, 0.47), y])[0] : y;
      return add ? g.node('Add', [m, s(g, `t${y}`, -0.3)])[0] : m;
    };
    const conv = (g: GraphBuilder, input: (n: string, v: NdArray) => string, group: number, c: number, m: number) =>
      g.node('Conv', [input('x', randomF32([2, c, 6, 5], r, -4, 4)), g.init('w', randomF32([m, c / group, 3, 3], r)), g.init('b', randomF32([m], r))], { pads: [1, 1, 1, 1], group })[0];
    // Implicit GEMM and depthwise programs; then a residual that grows the output (the elementwise epilogue).
    await check((g, input) => affine(g, activation(g, conv(g, input, 1, 3, 4), 'HardSwish'), true, true), 'FusedConv', 20, ['Mul', 'Add']);
    await check((g, input) => affine(g, activation(g, conv(g, input, 4, 4, 8), 'Relu'), true, false), 'FusedConv', 20, ['Mul', 'Add']);
    await check((g, input) => affine(g, activation(g, g.node('Add', [conv(g, input, 1, 3, 4), input('z', randomF32([3, 2, 4, 6, 5], r))])[0], 'Sigmoid'), false, true), 'FusedConv', 20, ['Mul', 'Add']);
    // Gemm with no activation, and with one.
    await check((g, input) => affine(g, g.node('Gemm', [input('a', randomF32([7, 5], r)), g.init('w', randomF32([5, 6], r))])[0], true, true), 'FusedGemm', 20, ['Mul', 'Add']);
    await check((g, input) => affine(g, activation(g, g.node('Gemm', [input('a', randomF32([3, 9], r)), g.init('w', randomF32([9, 1], r)), g.init('c', randomF32([1], r))])[0], 'Tanh'), false, true), 'FusedGemm', 20, ['Mul', 'Add']);
    // MatMul + bias + Gelu, then the affine; and with an addend that grows the product.
    await check((g, input) => {
      const y = g.node('Add', [g.node('MatMul', [input('a', randomF32([2, 5, 8], r)), g.init('w', randomF32([8, 7], r))])[0], g.init('b', randomF32([7], r))])[0];
      return affine(g, activation(g, y, 'Gelu'), true, true);
    }, 'FusedMatMul', 20, ['Mul', 'Add', 'Div']);
    await check((g, input) => {
      const y = g.node('Add', [g.node('MatMul', [input('a', randomF32([5, 8], r)), g.init('w', randomF32([8, 3], r))])[0], input('z', randomF32([2, 5, 3], r))])[0];
      return affine(g, activation(g, y, 'Relu'), true, true);
    }, 'FusedMatMul', 20, ['Mul', 'Add', 'Div']);
  });

  it('alpha (a scalar Div/Mul of a MatMul) before the bias: attention scores with a key mask, and a growing addend', async () => {
    const r = rng(88);
    const [B, H, S, D] = [2, 3, 7, 8];
    for (const op of ['Div', 'Mul']) {
      await check((g, input) => {
        const q = g.node('Transpose', [input('q', randomF32([B, S, H, D], r))], { perm: [0, 2, 1, 3] })[0];
        const k = g.node('Transpose', [input('k', randomF32([B, S, H, D], r))], { perm: [0, 2, 3, 1] })[0];
        const scaled = g.node(op, [g.node('MatMul', [q, k])[0], g.init('c', 'float32', [], [op === 'Div' ? Math.sqrt(D) : 0.35])])[0];
        return g.node('Add', [scaled, input('mask', randomF32([B, 1, 1, S], r, -3, 0))])[0];
      }, 'FusedMatMul', 20, ['Mul', 'Add', 'Div']);
    }
    await check((g, input) => {
      const y = g.node('Div', [g.node('MatMul', [input('a', randomF32([4, 6], r)), g.init('w', randomF32([6, 5], r))])[0], g.init('c', 'float32', [1], [3])])[0];
      return g.node('Add', [y, input('z', randomF32([2, 4, 5], r))])[0];
    }, 'FusedMatMul', 20, ['Mul', 'Add', 'Div']);
  });

  it('LayerNormalization and Gelu adopted at old opsets (internal domain) run on the GPU', async () => {
    const r = rng(85);
    await check((g, input) => {
      const x = input('x', randomF32([2, 3, 8], r));
      const d = g.node('Sub', [x, g.node('ReduceMean', [x], { axes: [-1], keepdims: 1 })[0]])[0];
      const variance = g.node('ReduceMean', [g.node('Pow', [d, g.init('two', 'float32', [], [2])])[0]], { axes: [-1], keepdims: 1 })[0];
      const n = g.node('Div', [d, g.node('Sqrt', [g.node('Add', [variance, g.init('eps', 'float32', [], [1e-5])])[0]])[0]])[0];
      return g.node('Add', [g.node('Mul', [n, g.init('gamma', randomF32([8], r))])[0], g.init('beta', randomF32([8], r))])[0];
    }, 'LayerNormalization', 14);
    await check((g, input) => {
      const x = input('x', randomF32([3, 10], r));
      const e = g.node('Erf', [g.node('Div', [x, g.init('s2', 'float32', [], [Math.SQRT2])])[0]])[0];
      return g.node('Mul', [g.node('Mul', [x, g.init('half', 'float32', [], [0.5])])[0], g.node('Add', [e, g.init('one', 'float32', [], [1])])[0]])[0];
    }, 'Gelu', 14);
  });

  it('a fused node the GPU cannot take (float64) runs on the CPU, reported as a fallback', async () => {
    const r = rng(86), g = new GraphBuilder();
    const f64 = (shape: number[]) => new NdArray('float64', shape, Float64Array.from(randomF32(shape, r).data));
    const y = g.node('MatMul', [g.input('a', 'float64', [3, 4]), g.init('w', f64([4, 2]))])[0];
    g.output(g.node('Relu', [g.node('Add', [y, g.init('b', f64([2]))])[0]])[0], null);
    const gpu = await expectGpuMatchesCpu(g.model({ opset: 17 }), { a: f64([3, 4]) }, { rtol: 1e-6, atol: 1e-9 }, false);
    const placed = [...gpu.placements].find(([s]) => s.node.opType === 'FusedMatMul' || s.node.opType === 'Gemm' || s.node.opType === 'FusedGemm');
    expect(placed?.[1]).toMatchObject({ device: 'cpu', fallback: true });
    await expect(InferenceSession.create(g.model({ opset: 17 }), { executionProviders: ['webgpu'], strict: true })).rejects.toThrow(/float64/);
  });
});
