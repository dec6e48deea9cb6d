// Attention fusion on WebGPU plans (ops/webgpu/attention-fusion.ts): the MatMul-Softmax-MatMul chains
// become one FusedAttention step, whose outputs match the unfused CPU session; the CPU plan is untouched.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { compareValues } from '../../conformance/compare.js';
import { execute } from '../../engine/execute.js';
import type { Plan } from '../../engine/plan.js';
import { NdArray, toNdArray, toTensor } from '../../engine/tensor.js';
import { InferenceSession, Tensor } from '../../index.js';
import { GraphBuilder } from '../../loaders/builder.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { bert, gpt2 } from '../models/transformer.js';
import { MODEL_TOL, type ModelCase } from '../models/common.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu } from '../helpers/gpu.js';

type R = ReturnType<typeof rng>;
const planOf = (s: InferenceSession) => (s as unknown as { plan: Plan }).plan;
const fusedCount = (s: InferenceSession) => planOf(s).steps.filter((st) => st.node.opType === 'FusedAttention').length;

interface Chain {
  B: number; H: number; S: number; T: number; D: number; Dv: number;
  /** 3-D [N, S, D] operands instead of head-split 4-D ones. */
  rank3?: boolean;
  /** Q/K/V stored [B, S, H, D] and split by Transposes (as exporters write), else stored [B, H, S, D]. */
  split?: boolean;
  scale?: 'div' | 'mul';
  mask?: 'add-keys' | 'add-full' | 'add-bcast-keys' | 'where' | 'where-inverted';
  /** The head-merge Transpose after the product with V. */
  merge?: boolean;
  kvHeads1?: boolean;
}

/** The chain as exporters write it, every input a graph input; returns the model and its feeds. */
function chainModel(c: Chain, r: R) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const input = (name: string, v: NdArray) => { feeds[name] = v; return g.input(name, v.dtype, [...v.shape]); };
  const operand = (name: string, h: number, s: number, d: number) => {
    if (c.rank3) return input(name, randomF32([c.B * h, s, d], r));
    if (!c.split) return input(name, randomF32([c.B, h, s, d], r));
    return g.node('Transpose', [input(name, randomF32([c.B, s, h, d], r))], { perm: [0, 2, 1, 3] })[0];
  };
  const kvH = c.kvHeads1 ? 1 : c.H;
  const q = operand('q', c.H, c.S, c.D), k = operand('k', kvH, c.T, c.D), v = operand('v', kvH, c.T, c.Dv);
  const kt = g.node('Transpose', [k], { perm: c.rank3 ? [0, 2, 1] : [0, 1, 3, 2] })[0];
  let s = g.node('MatMul', [q, kt])[0];
  if (c.scale === 'div') s = g.node('Div', [s, g.init('sd', 'float32', [], [Math.sqrt(c.D)])])[0];
  if (c.scale === 'mul') s = g.node('Mul', [g.init('sm', 'float32', [1], [0.35]), s])[0];
  const lead = c.rank3 ? [c.B * c.H] : [c.B, 1];
  if (c.mask === 'add-keys') s = g.node('Add', [s, input('m', randomF32([...lead.slice(0, 1), ...(c.rank3 ? [] : [1]), 1, c.T], r, -3, 0))])[0];
  if (c.mask === 'add-full') s = g.node('Add', [input('m', randomF32([c.S, c.T], r, -3, 0)), s])[0];
  if (c.mask === 'add-bcast-keys') s = g.node('Add', [s, input('m', randomF32([c.S, 1], r, -3, 0))])[0];
  if (c.mask === 'where' || c.mask === 'where-inverted') {
    const cond = input('cond', new NdArray('bool', [c.S, c.T], Uint8Array.from({ length: c.S * c.T }, (_, i) => (i % c.T <= (i / c.T | 0) + 1 ? 1 : 0))));
    const fill = g.init('fill', 'float32', [], [-3.4028234663852886e38]);
    s = g.node('Where', c.mask === 'where' ? [cond, s, fill] : [g.node('Not', [cond])[0], fill, s])[0];
  }
  let y = g.node('MatMul', [g.node('Softmax', [s], { axis: -1 })[0], v])[0];
  if (c.merge && !c.rank3) y = g.node('Transpose', [y], { perm: [0, 2, 1, 3] })[0];
  g.output(y, null);
  return { bytes: g.model({ opset: 17 }), feeds };
}

async function compare(bytes: Uint8Array, feeds: Record<string, NdArray>, fused: number, what: string, tol = { rtol: 1e-3, atol: 1e-5 }) {
  const gpu = await InferenceSession.create(bytes, { executionProviders: ['webgpu'], strict: true });
  const cpu = await InferenceSession.create(bytes);
  try {
    expect(fusedCount(gpu), `${what}: fused chains`).toBe(fused);
    expect(fusedCount(cpu), `${what}: the CPU plan is not rewritten`).toBe(0);
    const pub = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toTensor(v)]));
    const [g, c] = [await gpu.run(pub), await cpu.run(pub)];
    for (const [name, t] of Object.entries(c)) expect(compareValues(toNdArray(t as Tensor), toNdArray(g[name] as Tensor), tol), `${what}: '${name}'`).toBeUndefined();
    // The fused step's CPU definition replays the chain: the fused plan on the CPU executor matches too.
    const feedMap = new Map(Object.entries(feeds));
    const [want] = execute(planOf(cpu), feedMap), [got] = execute(planOf(gpu), feedMap);
    expect(compareValues(want, got, { rtol: 1e-6, atol: 1e-7 }), `${what}: fused plan on the CPU`).toBeUndefined();
  } finally {
    await gpu.release();
  }
}

async function modelCase(c: ModelCase, what: string) {
  for (const [b, s] of [[1, 5], [2, 7]]) await compare(c.bytes, c.feeds(b, s), 2, `${what} batch ${b} seq ${s}`, MODEL_TOL);
}

describeGpu('attention fusion on WebGPU', () => {
  let ctx: GpuContext | undefined;
  beforeAll(async () => { ctx = await acquireGpu(); });
  afterAll(() => { if (ctx) releaseGpu(ctx); });

  it('BERT: both layers fused (FusedMatMul operands with perms, additive mask, head-merge Transpose), outputs as the CPU', () => modelCase(bert('op'), 'BERT'));
  it('GPT-2: both layers fused (K by perm [0,2,3,1], Where causal mask with a finite fill), outputs as the CPU', () => modelCase(gpt2('range'), 'GPT-2'));

  it('randomized chains: heads, seq 1/7/128, scalings, additive and Where masks, 3-D, broadcast K/V heads', async () => {
    const r = rng(61);
    const cases: Chain[] = [
      { B: 2, H: 3, S: 7, T: 7, D: 8, Dv: 8, split: true, scale: 'div', mask: 'add-keys', merge: true },
      { B: 1, H: 2, S: 1, T: 7, D: 4, Dv: 6, scale: 'mul', mask: 'add-full' },
      { B: 1, H: 2, S: 128, T: 128, D: 16, Dv: 16, split: true, scale: 'div', mask: 'where', merge: true },
      { B: 2, H: 4, S: 7, T: 5, D: 5, Dv: 3, mask: 'where-inverted', kvHeads1: true },
      { B: 3, H: 1, S: 7, T: 9, D: 6, Dv: 4, rank3: true, scale: 'mul', mask: 'add-full' },
      { B: 1, H: 2, S: 1, T: 1, D: 3, Dv: 2, split: true, merge: true },
    ];
    for (const c of cases) {
      const { bytes, feeds } = chainModel(c, r);
      await compare(bytes, feeds, 1, JSON.stringify(c));
    }
  });

  it('a mask the kernel cannot read (broadcast along keys) runs the chain on the GPU instead, with the same results', async () => {
    const { bytes, feeds } = chainModel({ B: 2, H: 2, S: 7, T: 6, D: 4, Dv: 4, split: true, scale: 'div', mask: 'add-bcast-keys', merge: true }, rng(62));
    await compare(bytes, feeds, 1, 'broadcast-along-keys mask');
  });

  it('shared intermediates, graph outputs and disabled optimisation stay unfused', async () => {
    const r = rng(63), g = new GraphBuilder();
    const q = g.input('q', 'float32', [1, 2, 4, 8]), k = g.input('k', 'float32', [1, 2, 4, 8]), v = g.input('v', 'float32', [1, 2, 4, 8]);
    const scores = g.node('MatMul', [q, g.node('Transpose', [k], { perm: [0, 1, 3, 2] })[0]])[0];
    g.output(g.node('MatMul', [g.node('Softmax', [scores], { axis: -1 })[0], v])[0], null);
    g.output(scores, null); // the scores are wanted: they must exist
    const feeds = { q: randomF32([1, 2, 4, 8], r), k: randomF32([1, 2, 4, 8], r), v: randomF32([1, 2, 4, 8], r) };
    await compare(g.model({ opset: 17 }), feeds, 0, 'scores as a graph output');
    const { bytes } = chainModel({ B: 1, H: 2, S: 3, T: 3, D: 4, Dv: 4, scale: 'div' }, r);
    const off = await InferenceSession.create(bytes, { executionProviders: ['webgpu'], graphOptimizationLevel: 'disabled' });
    try { expect(fusedCount(off)).toBe(0); } finally { await off.release(); }
  });
});
