// What follows a product folded into its fused op (engine/passes/post-affine.ts, matmul-scale.ts,
// matmul-add.ts; ops/fused.ts): a scalar Mul/Add after the activation as `post_affine`, a scalar Mul/Div
// of a MatMul as `alpha`, and FusedMatMul's addend written into the output before the GEMM accumulates
// onto it. Each graph runs optimised ('all') against the same graph unoptimised ('disabled'), with the
// WebAssembly kernels and with the TypeScript fallbacks; the folded nodes must be gone from the plan.
import { afterEach, describe, expect, it } from 'vitest';
import { compareValues } from '../conformance/compare.js';
import { compile } from '../engine/plan.js';
import { NdArray, toNdArray, toTensor } from '../engine/tensor.js';
import { InferenceSession, Tensor } from '../index.js';
import { fillBroadcast } from '../kernels/cpu/broadcast-fill.js';
import { expandTo } from '../kernels/cpu/broadcast.js';
import { setWasmKernels, wasmKernels } from '../kernels/wasm/simd.js';
import { f32, float, floats, GraphBuilder } from '../loaders/builder.js';
import { loadModel } from '../loaders/onnx.js';
import { affineInPlace } from '../ops/fused.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

type Feeds = Record<string, NdArray>;
type Tol = { rtol: number; atol: number };
const EXACT: Tol = { rtol: 0, atol: 0 };
const CLOSE: Tol = { rtol: 1e-5, atol: 1e-6 };
const INTERNAL = 'ai.lastmile';

interface PlanNode { op: string; attrs: Record<string, unknown>; inputs: number }

function plan(bytes: Uint8Array, level: 'disabled' | 'all' = 'all'): PlanNode[] {
  const m = loadModel(bytes);
  return compile(m.graph, { opsets: m.opsets, functions: m.functions }, { level }).steps
    .map((s) => ({ op: s.node.opType, attrs: Object.fromEntries([...s.node.attrs].map(([k, a]) => [k, a.value])), inputs: s.node.inputs.filter(Boolean).length }));
}

async function runAt(bytes: Uint8Array, feeds: Feeds, level: 'disabled' | 'all') {
  const s = await InferenceSession.create(bytes, { graphOptimizationLevel: level });
  return s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toTensor(v)])));
}

/** Optimised equals unoptimised within `tol`, with the WebAssembly kernels and with the TypeScript ones. */
async function sameAsDisabled(bytes: Uint8Array, feeds: Feeds, tol: Tol) {
  const was = wasmKernels();
  try {
    for (const wasm of [true, false]) {
      setWasmKernels(wasm);
      const want = await runAt(bytes, feeds, 'disabled'), got = await runAt(bytes, feeds, 'all');
      for (const [k, t] of Object.entries(want)) {
        expect(compareValues(toNdArray(t as Tensor), toNdArray(got[k] as Tensor), tol), `output '${k}' (wasm ${wasm})`).toBeUndefined();
      }
    }
  } finally { setWasmKernels(was); }
}

const w = (g: GraphBuilder, name: string, shape: number[], seed: number) => g.init(name, randomF32(shape, rng(seed)));
const scalar = (g: GraphBuilder, name: string, v: number, shape: number[] = []) => g.init(name, f32(shape, [v]));

afterEach(() => setWasmKernels(true));

describe('post_affine: a scalar Mul and Add after the activation', () => {
  // PaddleOCR's pattern: Conv -> HardSwish -> Mul([1]) -> Add([1]), and its variants.
  // Bit-identical where the fused activation is computed as its node computes it (Relu); the
  // HardSwish node may run a different kernel (WebAssembly) than the fused epilogue, so it gets a few ulps.
  it.each([
    ['HardSwish', 'Mul then Add, [1] constants', true, true, [1], false],
    ['Relu', 'Mul then Add, rank-0 constants on the left', true, true, [], true],
    ['Relu', 'Mul only, [1,1,1,1]', true, false, [1, 1, 1, 1], false],
    ['Relu', 'Add only, [1,1]', false, true, [1, 1], true],
  ] as const)('FusedConv(%s) + %s folds', async (act, _, mul, add, shape, left) => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 3, 7, 5]);
    let y = g.node(act, [g.node('Conv', [x, w(g, 'w', [4, 3, 3, 3], 1), w(g, 'b', [4], 2)], { pads: [1, 1, 1, 1] })[0]])[0];
    const bin = (op: string, c: string) => g.node(op, left ? [c, y] : [y, c])[0];
    if (mul) y = bin('Mul', scalar(g, 's', 0.4763231, [...shape]));
    if (add) y = bin('Add', scalar(g, 't', -0.0075732, [...shape]));
    g.output(y, 'float32');
    const bytes = g.model({ opset: 17 }), nodes = plan(bytes);
    expect(nodes.map((n) => n.op)).toEqual(['FusedConv']);
    expect(nodes[0].attrs.post_affine).toEqual([mul ? Math.fround(0.4763231) : 1, add ? Math.fround(-0.0075732) : -0]);
    await sameAsDisabled(bytes, { x: randomF32([1, 3, 7, 5], rng(3), -6, 6) }, act === 'HardSwish' ? { rtol: 1e-6, atol: 1e-7 } : EXACT);
  });

  it('FusedGemm and FusedMatMul take it with or without an activation; nothing fuses after it', async () => {
    const g = new GraphBuilder();
    const a = g.input('a', 'float32', [5, 7]), t = g.input('t', 'float32', [2, 3, 7]);
    const gemm = g.node('Gemm', [a, w(g, 'gw', [7, 6], 1), w(g, 'gb', [6], 2)])[0];
    g.output(g.node('Add', [g.node('Mul', [g.node('Relu', [gemm])[0], scalar(g, 's1', 1.5)])[0], scalar(g, 't1', 0.25)])[0], 'float32');
    const bare = g.node('Gemm', [a, w(g, 'gw2', [7, 3], 3)])[0];
    g.output(g.node('Mul', [scalar(g, 's2', -2), bare])[0], 'float32');
    // MatMul + bias -> FusedMatMul, then the Mul is an affine, and the Relu after it stays a node.
    const mm = g.node('Add', [g.node('MatMul', [t, w(g, 'mw', [7, 4], 4)])[0], w(g, 'mb', [4], 5)])[0];
    g.output(g.node('Relu', [g.node('Mul', [mm, scalar(g, 's3', 0.5, [1])])[0]])[0], 'float32');
    const mg = g.node('Gelu', [g.node('Add', [g.node('MatMul', [t, w(g, 'mw2', [7, 9], 6)])[0], w(g, 'mb2', [9], 7)])[0]])[0];
    g.output(g.node('Add', [g.node('Mul', [mg, scalar(g, 's4', 3)])[0], scalar(g, 't4', -1)])[0], 'float32');
    const bytes = g.model({ opset: 20 }), nodes = plan(bytes);
    expect(nodes.map((n) => n.op)).toEqual(['FusedGemm', 'FusedGemm', 'FusedMatMul', 'Relu', 'FusedMatMul']);
    expect(nodes.map((n) => n.attrs.post_affine)).toEqual([[1.5, 0.25], [-2, -0], [0.5, -0], undefined, [3, -1]]);
    await sameAsDisabled(bytes, { a: randomF32([5, 7], rng(8)), t: randomF32([2, 3, 7], rng(9)) }, CLOSE);
  });

  it('near misses are left alone', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 2, 4, 4]), s = g.input('s', 'float32', [1]);
    const conv = (i: number) => g.node('Conv', [x, w(g, `w${i}`, [2, 2, 1, 1], i)])[0];
    const act = (i: number) => g.node('Relu', [conv(i)])[0];
    g.output(g.node('Mul', [act(1), w(g, 'perc', [2, 1, 1], 9)])[0], 'float32'); // not a scalar
    g.output(g.node('Mul', [act(2), s])[0], 'float32'); // not a constant
    g.output(g.node('Mul', [act(3), scalar(g, 'grow', 2, [1, 1, 1, 1, 1])])[0], 'float32'); // grows the rank
    const shared = act(4);
    g.output(g.node('Mul', [shared, scalar(g, 'k', 2)])[0], 'float32');
    g.output(shared, 'float32'); // the activation's output has another reader
    g.output(g.node('Sub', [act(5), scalar(g, 'k5', 2)])[0], 'float32'); // not Mul or Add
    const bytes = g.model({ opset: 17 }), nodes = plan(bytes);
    expect(nodes.filter((n) => n.attrs.post_affine)).toEqual([]);
    expect(nodes.filter((n) => n.op === 'Mul')).toHaveLength(4);
    await sameAsDisabled(bytes, { x: randomF32([1, 2, 4, 4], rng(1)), s: randomF32([1], rng(2)) }, EXACT);
  });

  it('a bare Conv leaves its scalar map to the weight folding (level basic)', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 2, 4, 4]);
    const c = g.node('Conv', [x, w(g, 'w', [3, 2, 3, 3], 1), w(g, 'b', [3], 2)])[0];
    g.output(g.node('Add', [g.node('Mul', [c, scalar(g, 's', 2)])[0], scalar(g, 't', 1)])[0], 'float32');
    const nodes = plan(g.model({ opset: 17 }));
    expect(nodes.map((n) => n.op).filter((op) => op !== 'Constant')).toEqual(['Conv']);
  });

  it('float64 products fold too', async () => {
    const g = new GraphBuilder();
    const a = g.input('a', 'float64', [3, 4, 5]);
    const b = g.init('b', new NdArray('float64', [5, 2], Float64Array.from({ length: 10 }, (_, i) => i / 7 - 0.6)));
    const bias = g.init('c', new NdArray('float64', [2], Float64Array.of(0.3, -0.2)));
    const y = g.node('Tanh', [g.node('Add', [g.node('MatMul', [a, b])[0], bias])[0]])[0];
    const s = g.init('s', new NdArray('float64', [], Float64Array.of(1 / 3))), t = g.init('t', new NdArray('float64', [1], Float64Array.of(0.1)));
    g.output(g.node('Add', [g.node('Mul', [y, s])[0], t])[0], 'float64');
    const bytes = g.model({ opset: 17 }), nodes = plan(bytes);
    expect(nodes.map((n) => n.op)).toEqual(['FusedMatMul']);
    const av = new NdArray('float64', [3, 4, 5], Float64Array.from({ length: 60 }, (_, i) => Math.sin(i)));
    await sameAsDisabled(bytes, { a: av }, { rtol: 1e-12, atol: 1e-14 });
  });

  it('affineInPlace rounds twice in float32 (multiply, then add) and skips what was not folded', () => {
    const r = rng(5), n = 1001;
    const x = Float32Array.from({ length: n }, () => r.float(-5e3, 5e3)), s = Math.fround(0.3), t = Math.fround(-7.1);
    const want = x.map((v) => Math.fround(Math.fround(v * s) + t));
    const y = x.slice();
    affineInPlace(y, n, s, t, true, true);
    expect(y).toEqual(want);
    const m = x.slice(), a = x.slice();
    affineInPlace(m, n, s, t, true, false);
    affineInPlace(a, n, s, t, false, true);
    expect(m).toEqual(x.map((v) => v * s));
    expect(a).toEqual(x.map((v) => v + t));
    const z = Float32Array.of(-0, 0);
    affineInPlace(z, 2, 1, -0, true, true); // the identities keep signed zeros
    expect(Object.is(z[0], -0) && Object.is(z[1], 0)).toBe(true);
  });
});

describe('epilogue steps applied inside the conv kernels', () => {
  // Each conv kernel that stages its output in wasm memory (pointwise GEMM, direct, depthwise) applies the
  // activation and affine there; im2col leaves them to the epilogue pass. Shapes pick each kernel.
  const convs: [string, number[], number[], Record<string, number[] | number>][] = [
    ['pointwise', [1, 16, 20, 20], [24, 16, 1, 1], {}],
    ['direct 3x3', [1, 8, 24, 24], [12, 8, 3, 3], { pads: [1, 1, 1, 1] }],
    ['depthwise 3x3', [2, 16, 20, 20], [16, 1, 3, 3], { pads: [1, 1, 1, 1], group: 16 }],
    ['depthwise stride 2', [1, 8, 33, 33], [8, 1, 5, 5], { pads: [2, 2, 2, 2], strides: [2, 2], group: 8 }],
    ['im2col (narrow rows)', [1, 8, 6, 6], [12, 8, 3, 3], { pads: [1, 1, 1, 1] }],
  ];
  it.each(convs)('%s: Conv + HardSwish + scalar Mul/Add, and Conv + Relu without a bias', async (_name, xs, ws, attrs) => {
    for (const [act, withBias] of [['HardSwish', true], ['Relu', false]] as const) {
      const g = new GraphBuilder();
      const x = g.input('x', 'float32', xs), ins = [x, w(g, 'w', ws, 1), ...(withBias ? [w(g, 'b', [ws[0]], 2)] : [])];
      let h = g.node(act, [g.node('Conv', ins, attrs)[0]])[0];
      if (act === 'HardSwish') h = g.node('Add', [g.node('Mul', [h, scalar(g, 's', 1.5, [1])])[0], scalar(g, 't', -0.25, [1])])[0];
      g.output(h, 'float32');
      const bytes = g.model({ opset: 17 });
      expect(plan(bytes).map((n) => n.op)).toEqual(['FusedConv']);
      await sameAsDisabled(bytes, { x: randomF32(xs, rng(3), -3, 3) }, CLOSE);
    }
  });
});

describe('alpha: a scalar Mul or Div of a MatMul', () => {
  it.each([
    ['Div by sqrt(8)', 'Div', Math.sqrt(8), false],
    ['Div by 8 (exact)', 'Div', 8, false],
    ['Mul, constant on the left', 'Mul', 0.125, true],
  ] as const)('%s folds into FusedMatMul, then the mask Add into its bias, Softmax stays', async (_, op, c, left) => {
    const [B, H, S, D] = [2, 3, 5, 4];
    const g = new GraphBuilder();
    const q = g.input('q', 'float32', [B, S, H, D]), k = g.input('k', 'float32', [B, S, H, D]), mask = g.input('mask', 'float32', [B, 1, 1, S]);
    const qt = g.node('Transpose', [q], { perm: [0, 2, 1, 3] })[0], kt = g.node('Transpose', [k], { perm: [0, 2, 3, 1] })[0];
    const scores = g.node('MatMul', [qt, kt])[0], cn = scalar(g, 'c', c);
    const scaled = g.node(op, left ? [cn, scores] : [scores, cn])[0];
    g.output(g.node('Softmax', [g.node('Add', [scaled, mask])[0]], { axis: -1 })[0], 'float32');
    const bytes = g.model({ opset: 17 }), nodes = plan(bytes);
    expect(nodes.map((n) => n.op)).toEqual(['FusedMatMul', 'Softmax']);
    expect(nodes[0].attrs.alpha).toBeCloseTo(op === 'Div' ? 1 / c : c, 6);
    expect(nodes[0].inputs).toBe(3);
    const feeds = { q: randomF32([B, S, H, D], rng(1)), k: randomF32([B, S, H, D], rng(2)), mask: randomF32([B, 1, 1, S], rng(3), -2, 0) };
    await sameAsDisabled(bytes, feeds, CLOSE);
    await expectMatchesOrt(bytes, feeds);
  });

  it('chains: Div then Mul is alpha then an affine; Div with the product as divisor, or by 0, does not fold', async () => {
    const g = new GraphBuilder();
    const a = g.input('a', 'float32', [3, 6]);
    const p1 = g.node('MatMul', [a, w(g, 'w1', [6, 5], 1)])[0];
    g.output(g.node('Mul', [g.node('Div', [p1, scalar(g, 'd', 3)])[0], scalar(g, 'm', 0.5)])[0], 'float32');
    g.output(g.node('Div', [scalar(g, 'n', 2), g.node('MatMul', [a, w(g, 'w2', [6, 5], 2)])[0]])[0], 'float32');
    g.output(g.node('Div', [g.node('MatMul', [a, w(g, 'w3', [6, 5], 3)])[0], scalar(g, 'z', 0)])[0], 'float32');
    const bytes = g.model({ opset: 17 }), nodes = plan(bytes);
    expect(nodes.map((n) => n.op)).toEqual(['FusedMatMul', 'MatMul', 'Div', 'MatMul', 'Div']);
    expect(nodes[0].attrs).toMatchObject({ alpha: 1 / 3, post_affine: [0.5, -0] });
    await sameAsDisabled(bytes, { a: randomF32([3, 6], rng(4)) }, CLOSE);
  });
});

describe('FusedMatMul: the addend written first, the GEMM accumulating onto it', () => {
  // Addend shapes against a [2, 3, m, n] product: same shape, row, column, scalar, per-batch, and one that grows it.
  const cases: [number, number, number, number[]][] = [
    [1, 1, 1, [1]], [3, 17, 5, [5]], [7, 5, 9, [7, 1]], [4, 300, 6, [3, 4, 6]], [5, 33, 8, []], [6, 2, 3, [2, 1, 1, 3]],
    [9, 600, 20, [1, 3, 9, 20]], [4, 8, 4, [5, 1, 1, 1, 4]],
  ];
  it.each(cases)('m %i, k %i, n %i, addend %j', async (m, k, n, zs) => {
    const g = new GraphBuilder();
    const a = g.input('a', 'float32', [2, 3, m, k]), z = g.input('z', 'float32', zs);
    g.output(g.node('Add', [g.node('MatMul', [a, w(g, 'b', [k, n], 1)])[0], z])[0], 'float32');
    const alpha = g.node('Div', [g.node('MatMul', [a, w(g, 'b2', [k, n], 2)])[0], scalar(g, 'c', 3)])[0];
    g.output(g.node('Add', [z, alpha])[0], 'float32');
    const bytes = g.model({ opset: 17 });
    expect(plan(bytes).map((x) => x.op)).toEqual(['FusedMatMul', 'FusedMatMul']);
    // Up to float rounding: the addend joins the sum before its last roundings, not after.
    await sameAsDisabled(bytes, { a: randomF32([2, 3, m, k], rng(m)), z: randomF32(zs, rng(k)) }, { rtol: 1e-5, atol: 1e-5 });
  });

  it('float16: the product is rounded before alpha, the addend and the affine, as the separate nodes round it', async () => {
    const g = new GraphBuilder(), r = rng(11);
    const h = (shape: number[], lo = -1, hi = 1) => new NdArray('float16', shape, Array.from(randomF32(shape, r, lo, hi).data) as never);
    const a = g.input('a', 'float16', [2, 5, 6]), b = g.init('b', h([6, 3])), z = g.input('z', 'float16', [3]);
    const c = (v: number) => g.init(`c${v}`, new NdArray('float16', [], [v] as never));
    const unfused = g.node('Add', [g.node('Mul', [g.node('Relu', [g.node('Add', [g.node('Mul', [g.node('MatMul', [a, b])[0], c(0.3)])[0], z])[0]])[0], c(1.7)])[0], c(-0.2)])[0];
    const fused = g.node('FusedMatMul', [a, b, z], { alpha: float(Math.fround(0.3)), activation: 'Relu', post_affine: floats([1.7, -0.2]) }, 1, INTERNAL)[0];
    g.output(unfused, 'float16');
    g.output(fused, 'float16');
    const bytes = g.model({ opset: 17, opsets: { [INTERNAL]: 1 } });
    const s = await InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled' });
    const out = await s.run({ a: toTensor(h([2, 5, 6], -2, 2)), z: toTensor(h([3])) });
    const [u, f] = [unfused, fused].map((name) => toNdArray(out[name] as Tensor));
    // The constants round to float16 in the unfused graph, to float32 in the attributes: a few float16 ulps.
    expect(compareValues(u, f, { rtol: 4e-3, atol: 4e-3 })).toBeUndefined();
  });

  it('fillBroadcast writes what expandTo writes, for every kind of broadcast', () => {
    const r = rng(3);
    for (const [out, shape] of [[[4, 5], [5]], [[4, 5], [4, 1]], [[2, 3, 4], []], [[2, 3, 4], [3, 1]], [[3, 1, 4], [3, 1, 1]], [[2, 3, 4, 5], [2, 1, 4, 1]], [[0, 3], [3]], [[6], [6]]] as [number[], number[]][]) {
      const src = randomF32(shape, r), size = out.reduce((p, q) => p * q, 1);
      const got = new Float32Array(size), want = new Float32Array(size);
      fillBroadcast(got, out, src.data, shape);
      expandTo(src.data, shape, out, want);
      expect(got, `[${shape}] into [${out}]`).toEqual(want);
    }
  });
});
