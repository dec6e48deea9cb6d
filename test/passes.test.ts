// Graph optimisation passes (engine/passes/): each test builds a graph the pass should rewrite, checks the
// optimised plan's ops (the pass fired, or rightly did not), and checks that the optimised session computes
// what the unoptimised one does on the same inputs (rtol 1e-4); a few models also go against onnxruntime.
import { describe, expect, it } from 'vitest';
import { compareValues } from '../conformance/compare.js';
import { compile, type Plan } from '../engine/plan.js';
import { NdArray, toNdArray, toTensor } from '../engine/tensor.js';
import { InferenceSession, Tensor } from '../index.js';
import { f32, float, GraphBuilder, i64 } from '../loaders/builder.js';
import { loadModel } from '../loaders/onnx.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

type Level = 'disabled' | 'basic' | 'all';
type Feeds = Record<string, NdArray>;
const TOL = { rtol: 1e-4, atol: 1e-5 };

/** Op types of the compiled plan at `level`. */
function planOps(bytes: Uint8Array, level: Level): string[] {
  const m = loadModel(bytes);
  return compile(m.graph, { opsets: m.opsets, functions: m.functions }, { level }).steps.map((s) => s.node.opType);
}

async function runAt(bytes: Uint8Array, feeds: Feeds, level: Level) {
  const s = await InferenceSession.create(bytes, { graphOptimizationLevel: level });
  return s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toTensor(v)])));
}

/** The optimised session's outputs equal the unoptimised session's. */
async function sameAsDisabled(bytes: Uint8Array, feeds: Feeds, level: Level = 'all') {
  const want = await runAt(bytes, feeds, 'disabled'), got = await runAt(bytes, feeds, level);
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [k, t] of Object.entries(want)) {
    expect(compareValues(toNdArray(t as Tensor), toNdArray(got[k] as Tensor), TOL), `output '${k}' at level ${level}`).toBeUndefined();
  }
}

interface Expect { has?: string[]; lacks?: string[]; level?: Level }

/** Checks the ops left at the level and the results at both optimising levels. */
async function check(g: GraphBuilder, feeds: Feeds, e: Expect, opset = 17) {
  const bytes = g.model({ opset }), ops = planOps(bytes, e.level ?? 'all');
  for (const op of e.has ?? []) expect(ops, `ops ${ops.join(' ')}`).toContain(op);
  for (const op of e.lacks ?? []) expect(ops, `ops ${ops.join(' ')}`).not.toContain(op);
  await sameAsDisabled(bytes, feeds, 'basic');
  await sameAsDisabled(bytes, feeds, 'all');
  return ops;
}

const weights = (g: GraphBuilder, name: string, shape: number[], seed: number, lo = -1, hi = 1) => g.init(name, randomF32(shape, rng(seed), lo, hi));

describe('levels', () => {
  it("'disabled' keeps the graph; 'basic' makes only standard ops; 'all' fuses into the internal domain", () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 3, 8, 8]);
    const c = g.node('Conv', [x, weights(g, 'w', [4, 3, 3, 3], 1)], { pads: [1, 1, 1, 1] })[0];
    g.output(g.node('Relu', [g.node('Identity', [c])[0]])[0], 'float32');
    const bytes = g.model();
    expect(planOps(bytes, 'disabled')).toEqual(['Conv', 'Identity', 'Relu']);
    expect(planOps(bytes, 'basic')).toEqual(['Conv', 'Relu']);
    expect(planOps(bytes, 'all')).toEqual(['FusedConv']);
  });

  it('a session defaults to all', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 3]);
    g.output(g.node('Relu', [g.node('Gemm', [x, weights(g, 'w', [3, 4], 2)])[0]])[0], 'float32');
    const s = await InferenceSession.create(g.model());
    const out = await s.run({ x: toTensor(randomF32([2, 3])) });
    expect((out[s.outputNames[0]] as Tensor).dims).toEqual([2, 4]);
    expect(s.outputMetadata[0].shape).toEqual([2, 4]); // inference still flows through the fused op
  });
});

describe('constant folding', () => {
  it('folds chains of constant arithmetic, Constant nodes and casts', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 4]);
    const k = g.node('Constant', [], { value: f32([4], [1, 2, 3, 4]) })[0];
    const scaled = g.node('Mul', [k, g.init('two', f32([], [2]))])[0];
    const shape = g.node('Cast', [g.node('Concat', [g.init('a', i64([1], [2])), g.init('b', i64([1], [4]))], { axis: 0 })[0]], { to: 7 })[0];
    const bias = g.node('Expand', [scaled, shape])[0];
    g.output(g.node('Add', [x, bias])[0], 'float32');
    const ops = await check(g, { x: randomF32([2, 4]) }, { lacks: ['Mul', 'Concat', 'Expand', 'Cast'] });
    expect(ops).toEqual(['Constant', 'Add']);
  });

  it('leaves random ops, overridable initializers and outputs over the size cap alone', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 2]), over = g.input('over', 'float32', [2, 2]);
    g.init('over', f32([2, 2], [1, 1, 1, 1])); // an initializer that is also an input can be fed
    const noise = g.node('RandomUniform', [], { shape: [2, 2], seed: float(3) })[0];
    const big = g.node('ConstantOfShape', [g.init('s', i64([2], [2048, 1024]))], { value: f32([1], [1]) })[0];
    const total = g.node('ReduceSum', [big], { keepdims: 0 })[0];
    g.output(g.node('Add', [g.node('Add', [g.node('Mul', [x, over])[0], noise])[0], total])[0], 'float32');
    const bytes = g.model({ opset: 13 }), ops = planOps(bytes, 'all');
    expect(ops).toContain('RandomUniform');
    expect(ops).toContain('ConstantOfShape');
    const feeds = { x: randomF32([2, 2]), over: f32([2, 2], [5, 6, 7, 8]) };
    const [a, b] = [await runAt(bytes, feeds, 'disabled'), await runAt(bytes, feeds, 'all')];
    expect(Array.from((b[g.outputs[0].name] as Tensor).data as Float32Array)).toEqual(Array.from((a[g.outputs[0].name] as Tensor).data as Float32Array));
  });
});

/** Op types of the steps of each subgraph in the plan at `level`, keyed `<node op type>.<attribute>`, nested ones too. */
function subgraphOps(bytes: Uint8Array, level: Level): Map<string, string[]> {
  const m = loadModel(bytes), out = new Map<string, string[]>();
  const walk = (p: Plan, prefix: string) => {
    for (const s of p.steps) for (const [attr, sub] of s.subgraphs) {
      const key = `${prefix}${s.node.opType}.${attr}`;
      out.set(key, sub.steps.map((t) => t.node.opType));
      walk(sub, `${key}/`);
    }
  };
  walk(compile(m.graph, { opsets: m.opsets, functions: m.functions }, { level }), '');
  return out;
}

describe('constant folding inside subgraphs', () => {
  /** An If whose branches reorder the gates of outer LSTM weights (an initializer W, a Constant node R)
   *  with Slice and Concat, as exported PyTorch LSTMs do; the LSTM reads x and h0 from the outer scope. */
  function lstmInIf(hidden: number, inputs: number, seed: number) {
    const r = rng(seed), g = new GraphBuilder(), H = hidden;
    const x = g.input('x', 'float32', [1, 1, inputs]), h0 = g.input('h0', 'float32', [1, 1, H]), cond = g.input('cond', 'bool', []);
    const w = g.init('w', randomF32([4 * H, inputs], r));
    const rw = g.node('Constant', [], { value: randomF32([4 * H, H], r) })[0];
    const b = g.init('b', randomF32([8 * H], r, -0.5, 0.5));
    const branch = (name: string, order: number[]) => {
      const br = new GraphBuilder(name);
      let n = 0;
      const k = (v: number) => br.init(`${name}_k${n++}`, i64([1], [v]));
      const gates = (src: string, n: number) => {
        const parts = order.map((q) => br.node('Slice', [src, k(q * n), k((q + 1) * n), k(0)])[0]);
        return br.node('Unsqueeze', [br.node('Concat', parts, { axis: 0 })[0], k(0)])[0];
      };
      const bias = br.node('Unsqueeze', [br.node('Concat', [0, 1].map((half) => br.node('Slice', [b, k(half * 4 * H), k((half + 1) * 4 * H), k(0)])[0]), { axis: 0 })[0], k(0)])[0];
      const [, hN] = br.node('LSTM', [x, gates(w, H), gates(rw, H), bias, '', h0], { hidden_size: H }, 2);
      br.output(br.node('Identity', [hN])[0], 'float32');
      return br;
    };
    g.output(g.node('If', [cond], { then_branch: branch('then', [0, 3, 1, 2]), else_branch: branch('else', [3, 2, 1, 0]) })[0], 'float32');
    return { bytes: g.model({ opset: 17 }), feeds: (c: boolean) => ({ x: randomF32([1, 1, inputs], r), h0: randomF32([1, 1, H], r), cond: new NdArray('bool', [], Uint8Array.of(c ? 1 : 0)) }) };
  }

  it('folds Slice/Concat/Unsqueeze of outer constants into the branch, and drops the outer Constant nothing reads now', async () => {
    const { bytes, feeds } = lstmInIf(5, 3, 21);
    for (const level of ['basic', 'all'] as const) {
      const subs = subgraphOps(bytes, level);
      for (const branch of ['If.then_branch', 'If.else_branch']) {
        const ops = subs.get(branch)!;
        expect(ops, `${level} ${branch}: ${ops.join(' ')}`).toContain('LSTM');
        for (const op of ['Slice', 'Concat', 'Unsqueeze']) expect(ops, `${level} ${branch}: ${ops.join(' ')}`).not.toContain(op);
      }
      expect(planOps(bytes, level)).toEqual(['If']);
    }
    expect(subgraphOps(bytes, 'disabled').get('If.then_branch')).toContain('Slice');
    for (const c of [true, false]) {
      await expectMatchesOrt(bytes, feeds(c));
      await sameAsDisabled(bytes, feeds(c));
    }
  });

  it('a session with folded branch weights gives the same results run after run', async () => {
    const { bytes, feeds } = lstmInIf(8, 4, 22);
    const s = await InferenceSession.create(bytes), ref = await InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled' });
    for (let i = 0; i < 4; i++) {
      const f = Object.fromEntries(Object.entries(feeds(i % 2 === 0)).map(([k, v]) => [k, toTensor(v)]));
      const [a, b] = [s.runSync(f), ref.runSync(f)];
      expect(compareValues(toNdArray(b[s.outputNames[0]] as Tensor), toNdArray(a[s.outputNames[0]] as Tensor), TOL)).toBeUndefined();
    }
  });

  it('leaves what depends on a graph input, a fed initializer, a loop-carried value or the iteration number', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [3]), over = g.input('over', 'float32', [3]);
    g.init('over', f32([3], [1, 2, 3])); // also a graph input: it can be fed
    const k = g.init('k', f32([3], [0.5, -1, 2]));
    const body = new GraphBuilder('body');
    const i = body.input('i', 'int64', []), cin = body.input('c_in', 'bool', []), acc = body.input('acc', 'float32', [3]);
    const fi = body.node('Cast', [i], { to: 1 })[0];
    const step = body.node('Mul', [body.node('Add', [k, fi])[0], x])[0]; // (k + i) x
    const fed = body.node('Mul', [over, body.node('Neg', [k])[0]])[0]; // over (-k): Neg folds, Mul does not
    body.output(body.node('Identity', [cin])[0], 'bool', []);
    body.output(body.node('Add', [body.node('Add', [acc, step])[0], fed])[0], 'float32', [3]);
    const [final] = g.node('Loop', [g.init('m', i64([], [3])), '', g.init('acc0', f32([3], [0, 0, 0]))], { body }, 1);
    g.output(final, 'float32');
    const bytes = g.model({ opset: 17 });
    const ops = subgraphOps(bytes, 'all').get('Loop.body')!;
    expect(ops, ops.join(' ')).not.toContain('Neg');
    expect(ops.filter((o) => o === 'Add'), ops.join(' ')).toHaveLength(3);
    expect(ops.filter((o) => o === 'Mul'), ops.join(' ')).toHaveLength(2);
    await expectMatchesOrt(bytes, { x: randomF32([3], rng(4)) });
    // Fed, `over` must win inside the body too (onnxruntime-node 1.x keeps the initializer there, so it is no reference).
    const feeds = { x: randomF32([3], rng(5)), over: f32([3], [-2, 0.5, 4]) };
    await sameAsDisabled(bytes, feeds);
    const out = await runAt(bytes, feeds, 'all'), xs = feeds.x.data as Float32Array;
    const want = [0.5, -1, 2].map((k, j) => [0, 1, 2].reduce((a, i) => a + (k + i) * xs[j] + [-2, 0.5, 4][j] * -k, 0));
    Array.from((out[final] as Tensor).data as Float32Array).forEach((v, j) => expect(v).toBeCloseTo(want[j], 4));
  });
});

describe('shape folding', () => {
  it('folds Shape of static shapes and the arithmetic behind a Reshape', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 3, 4]);
    const s = g.node('Shape', [x])[0];
    const d0 = g.node('Gather', [s, g.init('i0', i64([1], [0]))], { axis: 0 })[0];
    const rest = g.node('ReduceProd', [g.node('Slice', [s, g.init('st', i64([1], [1])), g.init('en', i64([1], [3]))])[0]], { keepdims: 1 })[0];
    g.output(g.node('Reshape', [x, g.node('Concat', [d0, rest], { axis: 0 })[0]])[0], 'float32');
    expect(await check(g, { x: randomF32([2, 3, 4]) }, {})).toEqual(['Constant', 'Reshape']);
  });

  it('with a symbolic batch, folds the Gathers of known dims and keeps the batch dim computed', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['batch', 3, 4]);
    const s = g.node('Shape', [x])[0];
    const pick = (i: number) => g.node('Gather', [s, g.init(`i${i}`, i64([1], [i]))], { axis: 0 })[0];
    const flat = g.node('Mul', [pick(1), pick(2)])[0];
    g.output(g.node('Reshape', [x, g.node('Concat', [pick(0), flat], { axis: 0 })[0]])[0], 'float32');
    const ops = await check(g, { x: randomF32([5, 3, 4]) }, { lacks: ['Mul'] });
    expect(ops.filter((o) => o === 'Gather')).toHaveLength(1);
    await sameAsDisabled(g.model(), { x: randomF32([2, 3, 4]) });
  });

  it('never takes an unknown dim for a known one (a broadcast with a scalar keeps it unknown)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 6]);
    const m = g.node('Mul', [g.node('Reshape', [x, g.init('s', i64([2], [3, 4]))])[0], g.init('k', f32([], [2]))])[0];
    const d = g.node('Gather', [g.node('Shape', [m])[0], g.init('i', i64([], [1]))], { axis: 0 })[0];
    g.output(g.node('Range', [g.init('z', i64([], [0])), d, g.init('one', i64([], [1]))])[0], 'int64');
    g.output(m, 'float32');
    await check(g, { x: randomF32([2, 6]) }, { has: ['Shape', 'Range'] });
  });
});

describe('dead code and redundant nodes', () => {
  it('drops unused branches, Identity, inference Dropout, no-op Cast and identity Transpose', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 3]);
    g.node('Exp', [g.node('Sin', [x])[0]]); // read by nobody
    const a = g.node('Identity', [x])[0];
    const b = g.node('Dropout', [a], {}, 1)[0];
    const c = g.node('Cast', [b], { to: 1 })[0];
    const d = g.node('Transpose', [c], { perm: [0, 1] })[0];
    const y = g.node('Transpose', [g.node('Transpose', [d], { perm: [1, 0] })[0]], { perm: [1, 0] })[0];
    g.output(g.node('Neg', [y])[0], 'float32');
    expect(await check(g, { x: randomF32([2, 3]) }, {}, 13)).toEqual(['Neg']);
  });

  it('an Identity making a graph output keeps that output, by renaming its producer', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [3]);
    g.output(g.node('Identity', [g.node('Neg', [x])[0]], {}, ['y'])[0], 'float32');
    g.output(g.node('Identity', [x], {}, ['z'])[0], 'float32'); // of a graph input: stays
    expect(await check(g, { x: randomF32([3]) }, {})).toEqual(['Neg', 'Identity']);
  });
});

describe('Conv + BatchNormalization / affine folding', () => {
  it('folds BN, then a per-channel Mul and Add, into the Conv weights and bias', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 3, 6, 6]);
    const conv = g.node('Conv', [x, weights(g, 'w', [4, 3, 3, 3], 1), weights(g, 'b', [4], 2)], { pads: [1, 1, 1, 1] })[0];
    const p = (n: string, seed: number, lo: number, hi: number) => weights(g, n, [4], seed, lo, hi);
    const bn = g.node('BatchNormalization', [conv, p('s', 3, 0.5, 1.5), p('bb', 4, -1, 1), p('m', 5, -1, 1), p('v', 6, 0.5, 2)], { epsilon: float(1e-3) })[0];
    const mul = g.node('Mul', [bn, weights(g, 'k', [4, 1, 1], 7)])[0];
    g.output(g.node('Add', [g.init('c', f32([1, 4, 1, 1], [1, 2, 3, 4])), mul])[0], 'float32');
    expect(await check(g, { x: randomF32([2, 3, 6, 6]) }, { level: 'basic' })).toEqual(['Constant', 'Constant', 'Conv']);
  });

  it('folds BN after a grouped ConvTranspose into its [C, M/group, k...] weights and bias', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 4, 5, 5]);
    const ct = g.node('ConvTranspose', [x, weights(g, 'w', [4, 3, 2, 2], 1)], { group: 2, strides: [2, 2] })[0];
    const p = (n: string, seed: number, lo: number, hi: number) => weights(g, n, [6], seed, lo, hi);
    g.output(g.node('BatchNormalization', [ct, p('s', 3, 0.5, 1.5), p('bb', 4, -1, 1), p('m', 5, -1, 1), p('v', 6, 0.5, 2)])[0], 'float32');
    expect(await check(g, { x: randomF32([1, 4, 5, 5]) }, { level: 'basic' })).toEqual(['Constant', 'Constant', 'ConvTranspose']);
  });

  it('leaves training-mode BN and non-constant parameters', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 3, 4, 4]), scale = g.input('scale', 'float32', [4]);
    const conv = g.node('Conv', [x, weights(g, 'w', [4, 3, 1, 1], 1)])[0];
    const p = (n: string, seed: number) => weights(g, n, [4], seed, 0.5, 1.5);
    g.output(g.node('BatchNormalization', [conv, scale, p('b', 2), p('m', 3), p('v', 4)])[0], 'float32');
    await check(g, { x: randomF32([2, 3, 4, 4]), scale: randomF32([4]) }, { has: ['BatchNormalization'] });
  });
});

describe('activation, bias and residual fusion', () => {
  const acts: [string, string[], number, Record<string, number | { __float: number }>][] = [
    ['Relu', [], 17, {}], ['LeakyRelu', [], 17, { alpha: float(0.2) }], ['Sigmoid', [], 17, {}], ['Tanh', [], 17, {}],
    ['HardSigmoid', [], 17, { alpha: float(0.3), beta: float(0.4) }], ['HardSwish', [], 17, {}], ['Elu', [], 17, { alpha: float(0.7) }],
    ['Clip', ['lo', 'hi'], 17, {}], ['Clip', ['', 'hi'], 17, {}], ['Clip', [], 6, { min: float(-0.5), max: float(0.5) }], ['Gelu', [], 20, {}],
  ];
  it.each(acts)('Conv + %s -> FusedConv (bound inputs %j, opset %i)', async (act, extra, opset, attrs) => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 2, 5, 5]);
    const conv = g.node('Conv', [x, weights(g, 'w', [3, 2, 3, 3], 1), weights(g, 'b', [3], 2)])[0];
    const bounds = extra.map((n) => (n ? g.init(n, f32([], [n === 'lo' ? -0.3 : 0.4])) : ''));
    g.output(g.node(act, [conv, ...bounds], attrs)[0], 'float32');
    expect(await check(g, { x: randomF32([1, 2, 5, 5], rng(3), -3, 3) }, {}, opset)).toEqual(['FusedConv']);
  });

  it('Sigmoid * x (SiLU) fuses; a Sigmoid with another reader does not', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 2, 4, 4]);
    const c1 = g.node('Conv', [x, weights(g, 'w1', [2, 2, 1, 1], 1)])[0];
    const h = g.node('Mul', [g.node('Sigmoid', [c1])[0], c1])[0];
    const c2 = g.node('Conv', [h, weights(g, 'w2', [2, 2, 1, 1], 2)])[0], s2 = g.node('Sigmoid', [c2])[0];
    g.output(g.node('Add', [g.node('Mul', [c2, s2])[0], s2])[0], 'float32');
    const ops = await check(g, { x: randomF32([1, 2, 4, 4], rng(4), -4, 4) }, {});
    expect(ops.filter((o) => o === 'Sigmoid')).toHaveLength(1);
  });

  it('Conv + residual Add + Relu -> one FusedConv, with same-shape and broadcast addends', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 3, 5, 5]), z = g.input('z', 'float32', [1, 3, 1, 5]), big = g.input('big', 'float32', [2, 2, 3, 5, 5]);
    const c1 = g.node('Conv', [x, weights(g, 'w1', [3, 3, 3, 3], 1)], { pads: [1, 1, 1, 1] })[0];
    const r1 = g.node('Relu', [g.node('Add', [x, c1])[0]])[0]; // the addend first
    const c2 = g.node('Conv', [r1, weights(g, 'w2', [3, 3, 1, 1], 2)])[0];
    const r2 = g.node('Add', [c2, z])[0];
    const c3 = g.node('Conv', [r2, weights(g, 'w3', [3, 3, 1, 1], 3)])[0];
    g.output(g.node('Add', [c3, big])[0], 'float32'); // grows the output: a new tensor, not in place
    const feeds = { x: randomF32([2, 3, 5, 5], rng(1)), z: randomF32([1, 3, 1, 5], rng(2)), big: randomF32([2, 2, 3, 5, 5], rng(3)) };
    expect(await check(g, feeds, {})).toEqual(['FusedConv', 'FusedConv', 'FusedConv']);
  });

  it('MatMul + Add -> Gemm for 2-D operands (basic), FusedMatMul with bias and activation otherwise', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [4, 6]), t = g.input('t', 'float32', ['batch', 5, 6]);
    const w = weights(g, 'w', [6, 6], 1), b = weights(g, 'b', [6], 2);
    const two = g.node('Add', [g.node('MatMul', [x, w])[0], b])[0];
    const three = g.node('Relu', [g.node('Add', [b, g.node('MatMul', [t, w])[0]])[0]])[0];
    g.output(two, 'float32');
    g.output(three, 'float32');
    const feeds = { x: randomF32([4, 6], rng(3)), t: randomF32([2, 5, 6], rng(4)) };
    expect(await check(g, feeds, { level: 'basic' })).toEqual(['Gemm', 'MatMul', 'Add', 'Relu']);
    expect(planOps(g.model(), 'all')).toEqual(['Gemm', 'FusedMatMul']);
  });

  it('Gemm + Clip and a non-float MatMul', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [3, 4]), n = g.input('n', 'int32', [2, 2]);
    const gm = g.node('Gemm', [x, weights(g, 'w', [5, 4], 1), weights(g, 'b', [5], 2)], { transB: 1, alpha: float(0.5) })[0];
    g.output(g.node('Clip', [gm, g.init('lo', f32([], [0])), g.init('hi', f32([], [0.6]))])[0], 'float32');
    g.output(g.node('Relu', [g.node('MatMul', [n, g.init('k', new NdArray('int32', [2, 2], Int32Array.of(1, -2, 3, -4)))])[0]])[0], 'int32');
    const feeds = { x: randomF32([3, 4]), n: new NdArray('int32', [2, 2], Int32Array.of(1, 2, 3, 4)) };
    expect(await check(g, feeds, {})).toEqual(['FusedGemm', 'MatMul', 'Relu']);
  });
});

describe('pattern recognition', () => {
  function layerNorm(g: GraphBuilder, x: string, c: number, axes: number[], sq: 'Pow' | 'Mul') {
    const d = g.node('Sub', [x, g.node('ReduceMean', [x], { axes })[0]])[0];
    const d2 = sq === 'Pow' ? g.node('Pow', [d, g.init('p2', f32([], [2]))])[0] : g.node('Mul', [d, d])[0];
    const v = g.node('ReduceMean', [d2], { axes })[0];
    const n = g.node('Div', [d, g.node('Sqrt', [g.node('Add', [v, g.init('eps', f32([], [1e-5]))])[0]])[0]])[0];
    return g.node('Add', [g.node('Mul', [n, weights(g, 'gamma', [c], 1, 0.5, 1.5)])[0], weights(g, 'beta', [c], 2)])[0];
  }
  it.each([[[-1], 'Pow', 14], [[2], 'Mul', 17], [[-2, -1], 'Pow', 14]] as const)('decomposed LayerNorm over axes %j (%s, opset %i)', async (axes, sq, opset) => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['b', 3, 8]);
    g.output(layerNorm(g, x, axes.length === 2 ? 1 : 8, [...axes], sq), 'float32');
    expect(await check(g, { x: randomF32([2, 3, 8], rng(5), -2, 3) }, {}, opset)).toEqual(['LayerNormalization']);
  });

  it('a LayerNorm whose centred value is a graph output is left alone', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 8]);
    g.output(layerNorm(g, x, 8, [-1], 'Pow'), 'float32');
    g.output(g.nodes.find((n) => n.op_type === 'Sub').output[0], 'float32');
    await check(g, { x: randomF32([2, 8]) }, { lacks: ['LayerNormalization'] }, 14);
  });

  it.each(['half-x-first', 'half-g-first', 'x-g-first', 'mul-recip'])('erf Gelu (%s), fused into the MatMul before it', async (form) => {
    const g = new GraphBuilder();
    const t = g.input('t', 'float32', [2, 3, 4]);
    const x = g.node('Add', [g.node('MatMul', [t, weights(g, 'w', [4, 4], 1)])[0], weights(g, 'b', [4], 2)])[0];
    const c = (n: string, v: number) => g.init(n, f32([], [v]));
    const arg = form === 'mul-recip' ? g.node('Mul', [x, c('r', Math.SQRT1_2)])[0] : g.node('Div', [x, c('s', Math.SQRT2)])[0];
    const gg = g.node('Add', [g.node('Erf', [arg])[0], c('one', 1)])[0];
    const half = c('half', 0.5);
    const y = form === 'half-g-first' ? g.node('Mul', [x, g.node('Mul', [gg, half])[0]])[0]
      : form === 'x-g-first' ? g.node('Mul', [g.node('Mul', [x, gg])[0], half])[0]
        : g.node('Mul', [g.node('Mul', [x, half])[0], gg])[0];
    g.output(y, 'float32');
    expect(await check(g, { t: randomF32([2, 3, 4], rng(6), -3, 3) }, {}, 13)).toEqual(['FusedMatMul']);
  });

  it.each(['pow', 'muls'])('tanh Gelu with x^3 as %s', async (cube) => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [3, 5]);
    const c = (n: string, v: number) => g.init(n, f32([], [v]));
    const x3 = cube === 'pow' ? g.node('Pow', [x, c('three', 3)])[0] : g.node('Mul', [x, g.node('Mul', [x, x])[0]])[0];
    const inner = g.node('Mul', [g.node('Add', [x, g.node('Mul', [c('k', 0.044715), x3])[0]])[0], c('s', Math.sqrt(2 / Math.PI))])[0];
    g.output(g.node('Mul', [g.node('Mul', [x, c('half', 0.5)])[0], g.node('Add', [c('one', 1), g.node('Tanh', [inner])[0]])[0]])[0], 'float32');
    expect(await check(g, { x: randomF32([3, 5], rng(7), -4, 4) }, {}, 13)).toEqual(['Gelu']);
  });
});

describe('HardSigmoid / HardSwish recognition', () => {
  type Form = 'x*clip/6' | 'x*clip*(1/6)' | 'x*(clip/6)' | '(clip*(1/6))*x' | '(x/6)*clip' | '(1/6*x)*clip';
  /** x * clip(x + 3, 0, 6) / 6 as exporters write it; `swap` puts constants and x first. */
  function hardSwish(g: GraphBuilder, x: string, form: Form, o: { opset: number; swap?: boolean; one?: boolean; hi?: number; add?: number }): string {
    const shape = o.one ? [1] : [];
    const c = (v: number) => g.init(`k${g.initializers.length}`, f32(shape, [v]));
    const bin = (op: string, a: string, b: string) => g.node(op, o.swap && op !== 'Div' ? [b, a] : [a, b])[0];
    const t = bin('Add', x, c(o.add ?? 3));
    const clip = o.opset < 11 ? g.node('Clip', [t], { min: float(0), max: float(o.hi ?? 6) })[0] : g.node('Clip', [t, c(0), c(o.hi ?? 6)])[0];
    switch (form) {
      case 'x*clip/6': return g.node('Div', [bin('Mul', x, clip), c(6)])[0];
      case 'x*clip*(1/6)': return bin('Mul', bin('Mul', clip, x), c(1 / 6));
      case 'x*(clip/6)': return bin('Mul', x, g.node('Div', [clip, c(6)])[0]);
      case '(clip*(1/6))*x': return bin('Mul', bin('Mul', clip, c(1 / 6)), x);
      case '(x/6)*clip': return bin('Mul', g.node('Div', [x, c(6)])[0], clip);
      case '(1/6*x)*clip': return bin('Mul', bin('Mul', x, c(1 / 6)), clip);
    }
  }
  const forms: Form[] = ['x*clip/6', 'x*clip*(1/6)', 'x*(clip/6)', '(clip*(1/6))*x', '(x/6)*clip', '(1/6*x)*clip'];
  const cases = forms.flatMap((f, i) => [[f, 14, i % 2 === 0, false], [f, 11, i % 2 === 1, true], [f, 10, false, i % 2 === 0]] as const);

  it.each(cases)('%s at opset %i (constants first: %s, 1-element constants: %s) becomes HardSwish, fused into the Conv', async (form, opset, swap, one) => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 2, 5, 5]);
    const conv = g.node('Conv', [x, weights(g, 'w', [3, 2, 3, 3], 1), weights(g, 'b', [3], 2)], { pads: [1, 1, 1, 1] })[0];
    g.output(hardSwish(g, conv, form, { opset, swap, one }), 'float32');
    const bytes = g.model({ opset });
    const m = loadModel(bytes), plan = compile(m.graph, { opsets: m.opsets, functions: m.functions }, { level: 'all' });
    expect(plan.steps.map((s) => `${s.node.opType}:${s.node.attrs.get('activation')?.value ?? ''}`)).toEqual(['FusedConv:HardSwish']);
    await sameAsDisabled(bytes, { x: randomF32([1, 2, 5, 5], rng(3), -4, 4) });
  });

  it.each([14, 11])('a HardSwish on a graph input stays a node of its own (opset %i)', async (opset) => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [3, 7]);
    g.output(hardSwish(g, x, 'x*clip/6', { opset }), 'float32');
    expect(await check(g, { x: randomF32([3, 7], rng(4), -5, 5) }, {}, opset)).toEqual(['HardSwish']);
  });

  it('a HardSigmoid node with alpha 1/6 times its input becomes HardSwish', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 9]);
    g.output(g.node('Mul', [g.node('HardSigmoid', [x], { alpha: float(1 / 6) })[0], x])[0], 'float32');
    expect(await check(g, { x: randomF32([2, 9], rng(5), -5, 5) }, {}, 11)).toEqual(['HardSwish']);
  });

  const sigmoids: [string, (g: GraphBuilder, x: string, c: (v: number) => string) => string][] = [
    ['clip(x * 0.2 + 0.5, 0, 1)', (g, x, c) => g.node('Clip', [g.node('Add', [g.node('Mul', [x, c(0.2)])[0], c(0.5)])[0], c(0), c(1)])[0]],
    ['clip(0.5 + 0.2 * x, 0, 1)', (g, x, c) => g.node('Clip', [g.node('Add', [c(0.5), g.node('Mul', [c(0.2), x])[0]])[0], c(0), c(1)])[0]],
    ['clip(x / 6 + 0.5, 0, 1)', (g, x, c) => g.node('Clip', [g.node('Add', [g.node('Div', [x, c(6)])[0], c(0.5)])[0], c(0), c(1)])[0]],
    ['clip(x + 3, 0, 6) / 6', (g, x, c) => g.node('Div', [g.node('Clip', [g.node('Add', [x, c(3)])[0], c(0), c(6)])[0], c(6)])[0]],
    ['clip(x + 1, 0, 4) * 0.25', (g, x, c) => g.node('Mul', [g.node('Clip', [g.node('Add', [x, c(1)])[0], c(0), c(4)])[0], c(0.25)])[0]],
  ];
  it.each(sigmoids)('%s becomes HardSigmoid', async (_name, build) => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [4, 6]), y = g.input('y', 'float32', [4, 6]);
    const c = (v: number) => g.init(`k${g.initializers.length}`, f32([], [v]));
    g.output(g.node('Mul', [build(g, x, c), y])[0], 'float32'); // gating another value: no HardSwish
    expect(await check(g, { x: randomF32([4, 6], rng(6), -6, 6), y: randomF32([4, 6], rng(7)) }, {}, 13)).toEqual(['HardSigmoid', 'Mul']);
  });

  describe('near misses are left alone', () => {
    const run = async (g: GraphBuilder, feeds: Feeds, opset = 14) => {
      const ops = await check(g, feeds, { lacks: ['HardSwish', 'HardSigmoid'] }, opset);
      expect(ops).toContain('Clip');
    };
    it('clip bounds 0..5', async () => {
      const g = new GraphBuilder();
      const x = g.input('x', 'float32', [2, 8]);
      g.output(hardSwish(g, x, 'x*clip/6', { opset: 14, hi: 5 }), 'float32');
      await run(g, { x: randomF32([2, 8], rng(8), -6, 6) });
    });
    it('x + 2 instead of x + 3', async () => {
      const g = new GraphBuilder();
      const x = g.input('x', 'float32', [2, 8]);
      g.output(hardSwish(g, x, '(x/6)*clip', { opset: 14, add: 2 }), 'float32');
      await run(g, { x: randomF32([2, 8], rng(9), -6, 6) });
    });
    it.each(['add', 'clip', 'product'])('the %s value read by another node', async (which) => {
      const g = new GraphBuilder();
      const x = g.input('x', 'float32', [2, 8]);
      const y = hardSwish(g, x, 'x*clip/6', { opset: 14 });
      const node = g.nodes.find((n) => n.op_type === (which === 'add' ? 'Add' : which === 'clip' ? 'Clip' : 'Mul'));
      g.output(y, 'float32');
      g.output(g.node('Neg', [node.output[0]])[0], 'float32');
      await run(g, { x: randomF32([2, 8], rng(10), -6, 6) });
    });
    it('non-constant clip bounds', async () => {
      const g = new GraphBuilder();
      const x = g.input('x', 'float32', [2, 8]), lo = g.input('lo', 'float32', []), hi = g.input('hi', 'float32', []);
      const clip = g.node('Clip', [g.node('Add', [x, g.init('three', f32([], [3]))])[0], lo, hi])[0];
      g.output(g.node('Div', [g.node('Mul', [x, clip])[0], g.init('six', f32([], [6]))])[0], 'float32');
      await run(g, { x: randomF32([2, 8], rng(11), -6, 6), lo: f32([], [0]), hi: f32([], [6]) });
    });
    it('a 1-element constant of higher rank than x (it adds dims)', async () => {
      const g = new GraphBuilder();
      const x = g.input('x', 'float32', [2, 8]);
      const clip = g.node('Clip', [g.node('Add', [x, g.init('three', f32([1, 1, 1], [3]))])[0], g.init('zero', f32([], [0])), g.init('sixc', f32([], [6]))])[0];
      g.output(g.node('Div', [g.node('Mul', [x, clip])[0], g.init('six', f32([], [6]))])[0], 'float32');
      await run(g, { x: randomF32([2, 8], rng(13), -6, 6) });
    });
    it('integer operands', async () => {
      const g = new GraphBuilder();
      const x = g.input('x', 'int32', [5]);
      const k = (n: string, v: number) => g.init(n, new NdArray('int32', [], Int32Array.of(v)));
      const clip = g.node('Clip', [g.node('Add', [x, k('three', 3)])[0], k('zero', 0), k('sixc', 6)])[0];
      g.output(g.node('Div', [g.node('Mul', [x, clip])[0], k('six', 6)])[0], 'int32');
      await run(g, { x: new NdArray('int32', [5], Int32Array.of(-4, -1, 0, 2, 5)) });
    });
  });

  it('matches onnxruntime on a decomposed HardSwish after a Conv (opset 11)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 3, 6, 6]);
    const conv = g.node('Conv', [x, weights(g, 'w', [4, 3, 3, 3], 1), weights(g, 'b', [4], 2)], { pads: [1, 1, 1, 1] })[0];
    g.output(hardSwish(g, conv, 'x*clip/6', { opset: 11 }), 'float32');
    await expectMatchesOrt(g.model({ opset: 11 }), { x: randomF32([1, 3, 6, 6], rng(12), -3, 3) }, { rtol: 1e-4, atol: 1e-5 });
  });
});

describe('transpose elimination', () => {
  it.each([
    [[2, 4, 3, 5], [0, 2, 3, 1], 'B'], [[3, 2, 4], [1, 0, 2], 'A'], [[4, 3], [1, 0], 'A'], [[5, 2, 3], [2, 1, 0], 'B'],
  ] as const)('Transpose of shape %j by %j feeding MatMul as %s is read through strides', async (shape, perm, side) => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [...shape]);
    const t = g.node('Transpose', [x], { perm: [...perm] })[0];
    const ts = perm.map((p) => (shape as readonly number[])[p]);
    const other = side === 'B'
      ? g.input('o', 'float32', [...ts.slice(0, -2), 3, ts[ts.length - 2]])
      : g.input('o', 'float32', [ts[ts.length - 1], 2]);
    g.output(g.node('MatMul', side === 'B' ? [other, t] : [t, other])[0], 'float32');
    const os = side === 'B' ? [...ts.slice(0, -2), 3, ts[ts.length - 2]] : [ts[ts.length - 1], 2];
    expect(await check(g, { x: randomF32([...shape], rng(8)), o: randomF32(os, rng(9)) }, {})).toEqual(['FusedMatMul']);
  });

  it('attention scores: both operands transposed, batch broadcast, then a bias', async () => {
    const g = new GraphBuilder();
    const q = g.input('q', 'float32', [2, 5, 3, 4]), k = g.input('k', 'float32', [1, 5, 3, 4]), m = g.input('m', 'float32', [5, 5]);
    const qt = g.node('Transpose', [q], { perm: [0, 2, 1, 3] })[0];
    const kt = g.node('Transpose', [g.node('Transpose', [k], { perm: [0, 2, 1, 3] })[0]], { perm: [0, 1, 3, 2] })[0];
    g.output(g.node('Add', [g.node('MatMul', [qt, kt])[0], m])[0], 'float32');
    const feeds = { q: randomF32([2, 5, 3, 4], rng(1)), k: randomF32([1, 5, 3, 4], rng(2)), m: randomF32([5, 5], rng(3)) };
    expect(await check(g, feeds, {})).toEqual(['FusedMatMul']);
  });

  it('a 2-D Transpose feeding Gemm flips transA/transB (basic)', async () => {
    const g = new GraphBuilder();
    const a = g.input('a', 'float32', [4, 3]), b = g.input('b', 'float32', [4, 5]);
    g.output(g.node('Gemm', [g.node('Transpose', [a])[0], g.node('Transpose', [b])[0]], { transB: 1 })[0], 'float32');
    expect(await check(g, { a: randomF32([4, 3]), b: randomF32([4, 5]) }, { level: 'basic' })).toEqual(['Gemm']);
  });
});

describe('values the passes must not touch', () => {
  it('a Conv output that is also a graph output is not fused with its Relu', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 2, 4, 4]);
    const c = g.node('Conv', [x, weights(g, 'w', [2, 2, 1, 1], 1)])[0];
    g.output(g.node('Relu', [c])[0], 'float32');
    g.output(c, 'float32');
    expect(await check(g, { x: randomF32([1, 2, 4, 4]) }, {})).toEqual(['Conv', 'Relu']);
  });

  it('a value read by an If branch is not fused away, and the branches are optimised too', async () => {
    const g = new GraphBuilder();
    const cond = g.input('cond', 'bool', []), x = g.input('x', 'float32', [1, 2, 4, 4]);
    const c = g.node('Conv', [x, weights(g, 'w', [2, 2, 1, 1], 1)])[0];
    const r = g.node('Relu', [c])[0];
    const then = new GraphBuilder('then'), els = new GraphBuilder('else');
    then.output(then.node('Add', [c, then.node('Mul', [then.init('k1', f32([], [2])), then.init('k2', f32([], [3]))])[0]])[0], 'float32');
    els.output(els.node('Identity', [r])[0], 'float32');
    g.output(g.node('If', [cond], { then_branch: then, else_branch: els })[0], 'float32');
    const bytes = g.model(), m = loadModel(bytes);
    const plan = compile(m.graph, { opsets: m.opsets, functions: m.functions }, { level: 'all' });
    expect(plan.steps.map((s) => s.node.opType)).toEqual(['Conv', 'Relu', 'If']);
    expect(plan.steps[2].subgraphs.get('then_branch')!.steps.map((s) => s.node.opType)).toEqual(['Constant', 'Add']);
    for (const v of [true, false]) await sameAsDisabled(bytes, { cond: new NdArray('bool', [], Uint8Array.of(+v)), x: randomF32([1, 2, 4, 4]) });
  });
});

describe('against onnxruntime-node', () => {
  it('a fused conv net with folded BN, residuals and activations', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['n', 3, 8, 8]);
    const bn = (h: string, c: number, s: number) => g.node('BatchNormalization', [h, ...[[0.5, 1.5], [-0.5, 0.5], [-0.5, 0.5], [0.5, 2]].map(([lo, hi], i) => weights(g, `bn${s}_${i}`, [c], s * 10 + i, lo, hi))])[0];
    const stem = g.node('Clip', [bn(g.node('Conv', [x, weights(g, 'w0', [4, 3, 3, 3], 1)], { pads: [1, 1, 1, 1] })[0], 4, 1), g.init('z', f32([], [0])), g.init('six', f32([], [6]))])[0];
    const body = bn(g.node('Conv', [stem, weights(g, 'w1', [4, 2, 3, 3], 2)], { pads: [1, 1, 1, 1], group: 2 })[0], 4, 2);
    const res = g.node('HardSwish', [g.node('Add', [body, stem])[0]])[0];
    const pooled = g.node('Flatten', [g.node('GlobalAveragePool', [res])[0]])[0];
    g.output(g.node('Sigmoid', [g.node('Gemm', [pooled, weights(g, 'fc', [5, 4], 3), weights(g, 'fcb', [5], 4)], { transB: 1 })[0]])[0], 'float32');
    expect(planOps(g.model(), 'all').filter((o) => o !== 'Constant')).toEqual(['FusedConv', 'FusedConv', 'GlobalAveragePool', 'Flatten', 'FusedGemm']);
    await expectMatchesOrt(g.model(), { x: randomF32([2, 3, 8, 8], rng(11)) }, { rtol: 1e-4, atol: 1e-5 });
  });

  it('a transformer block with decomposed LayerNorm and erf Gelu (opset 14)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['b', 4, 8]);
    const d = g.node('Sub', [x, g.node('ReduceMean', [x], { axes: [-1] })[0]])[0];
    const v = g.node('ReduceMean', [g.node('Pow', [d, g.init('two', f32([], [2]))])[0]], { axes: [-1] })[0];
    const n = g.node('Div', [d, g.node('Sqrt', [g.node('Add', [v, g.init('eps', f32([], [1e-5]))])[0]])[0]])[0];
    const ln = g.node('Add', [g.node('Mul', [n, weights(g, 'gamma', [8], 1, 0.5, 1.5)])[0], weights(g, 'beta', [8], 2)])[0];
    const h = g.node('Add', [g.node('MatMul', [ln, weights(g, 'w1', [8, 16], 3)])[0], weights(g, 'b1', [16], 4)])[0];
    const gelu = g.node('Mul', [g.node('Mul', [h, g.init('half', f32([], [0.5]))])[0], g.node('Add', [g.node('Erf', [g.node('Div', [h, g.init('rt2', f32([], [Math.SQRT2]))])[0]])[0], g.init('one', f32([], [1]))])[0]])[0];
    g.output(g.node('Add', [x, g.node('MatMul', [gelu, weights(g, 'w2', [16, 8], 5)])[0]])[0], 'float32');
    expect(planOps(g.model({ opset: 14 }), 'all')).toEqual(['LayerNormalization', 'FusedMatMul', 'FusedMatMul']);
    await expectMatchesOrt(g.model({ opset: 14 }), { x: randomF32([3, 4, 8], rng(12), -2, 2) }, { rtol: 1e-4, atol: 1e-5 });
  });
});
