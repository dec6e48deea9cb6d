// ai.onnx.preview FlexAttention against its decomposition: the same computation written with standard ops
// (GQA by Expand, pre-scaled Q and K, Cast to the softmax precision, the modifiers inlined, Softmax, Cast
// back), both run through Lastmile over random shapes, dtypes, precisions, scales and modifiers.
import { describe, expect, it } from 'vitest';
import type { DType } from '../engine/dtype.js';
import { NdArray, toNdArray, toTensor } from '../engine/tensor.js';
import { roundInPlace } from '../kernels/cpu/minifloat.js';
import { GraphBuilder, float, type AttrInput } from '../loaders/builder.js';
import { InferenceSession, Tensor } from '../index.js';
import { compareValues } from '../conformance/compare.js';
import { randomF32, rng } from './helpers/oracle.js';

type Rng = ReturnType<typeof rng>;
/** Adds a modifier's nodes to g, reading tensor x of dtype dt; returns the name of its result. */
type Modifier = (g: GraphBuilder, x: string, dt: DType) => string;

const PREVIEW = 'ai.onnx.preview', CODES: Record<string, DType> = { 1: 'float32', 10: 'float16', 11: 'float64', 16: 'bfloat16' };
const code = (dt: DType) => Number(Object.keys(CODES).find((c) => CODES[c] === dt));

/** A tensor of dtype dt from float values, rounded to dt as the engine stores it. */
function typed(dt: DType, shape: number[], values: ArrayLike<number>): NdArray {
  const data = dt === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
  if (dt === 'float16' || dt === 'bfloat16') roundInPlace(dt, data as Float32Array);
  return new NdArray(dt, shape, data);
}
const konst = (g: GraphBuilder, t: NdArray) => g.node('Constant', [], { value: t })[0];
const scalar = (g: GraphBuilder, dt: DType, v: number) => konst(g, typed(dt, [], [v]));
const ints = (g: GraphBuilder, shape: number[], v: number[]) => konst(g, new NdArray('int64', shape, BigInt64Array.from(v, BigInt)));

/** Query and key positions of x's last two dims, shaped [L, 1] and [1, S], read from x's shape at run time. */
function positions(g: GraphBuilder, x: string): [string, string] {
  const sh = g.node('Shape', [x])[0], zero = ints(g, [], [0]), one = ints(g, [], [1]);
  const axis = (i: number, shape: number[]) =>
    g.node('Reshape', [g.node('Range', [zero, g.node('Gather', [sh, ints(g, [], [i])], { axis: 0 })[0], one])[0], ints(g, [2], shape)])[0];
  return [axis(2, [-1, 1]), axis(3, [1, -1])];
}

const SCORE_MODS: Record<string, Modifier> = {
  bias: (g, x, dt) => g.node('Add', [x, scalar(g, dt, 0.5)])[0],
  softcap: (g, x, dt) => { const c = scalar(g, dt, 0.7); return g.node('Mul', [g.node('Tanh', [g.node('Div', [x, c])[0]])[0], c])[0]; },
  causal: (g, x, dt) => { const [q, k] = positions(g, x); return g.node('Where', [g.node('GreaterOrEqual', [q, k])[0], x, scalar(g, dt, -Infinity)])[0]; },
  relative: (g, x, dt) => { const [q, k] = positions(g, x); return g.node('Add', [x, g.node('Cast', [g.node('Sub', [q, k])[0]], { to: code(dt) })[0]])[0]; },
  // Reads 'bias', a graph input of the enclosing model: the subgraph sees the node's outer scope.
  outer: (g, x) => g.node('Add', [x, 'bias'])[0],
};
const PROB_MODS: Record<string, Modifier> = {
  half: (g, x, dt) => g.node('Mul', [x, scalar(g, dt, 0.5)])[0],
  square: (g, x) => g.node('Mul', [x, x])[0],
  outer: (g, x) => g.node('Mul', [x, 'weight'])[0],
};

interface Case {
  dt: DType; sp: DType; precision?: number; scale?: number; score?: string; prob?: string;
  feeds: Record<string, NdArray>; B: number; Hq: number; Hkv: number; L: number; S: number; E: number; Dv: number;
}

function randomCase(r: Rng): Case {
  const dt = r.pick<DType>(['float32', 'float32', 'float16', 'float64', 'bfloat16']), precision = r.next() < 0.3 ? r.pick([1, 10, 11, 16]) : undefined;
  const sp = precision ? CODES[precision] : dt === 'float64' ? 'float64' : 'float32';
  const Hkv = r.int(1, 3), B = r.int(1, 2), Hq = Hkv * r.int(1, 3), L = r.int(1, 6), S = r.int(1, 7), E = r.int(1, 9), Dv = r.int(1, 9);
  const rand = (shape: number[], lo = -2, hi = 2) => typed(dt, shape, randomF32(shape, r, lo, hi).data);
  const c: Case = {
    dt, sp, precision, B, Hq, Hkv, L, S, E, Dv, scale: r.next() < 0.3 ? Math.fround(r.float(0.05, 1)) : undefined, // the attribute is a float32
    score: r.next() < 0.7 ? r.pick(Object.keys(SCORE_MODS)) : undefined, prob: r.next() < 0.4 ? r.pick(Object.keys(PROB_MODS)) : undefined,
    feeds: { Q: rand([B, Hq, L, E]), K: rand([B, Hkv, S, E]), V: rand([B, Hkv, S, Dv], -1, 1) },
  };
  const bias = [r.pick([1, B]), r.pick([1, Hq]), L, S];
  if (c.score === 'outer') c.feeds.bias = typed(sp, bias, randomF32([bias.reduce((a, b) => a * b)], r, -1, 1).data);
  if (c.prob === 'outer') c.feeds.weight = typed(sp, [1, 1, L, S], randomF32([L * S], r, 0, 2).data);
  return c;
}

/** A modifier as its own graph: one input of the softmax precision, one output. */
function modGraph(name: string, mod: Modifier, dt: DType): GraphBuilder {
  const g = new GraphBuilder(name), x = g.input('x', dt, ['B', 'H', 'L', 'S']);
  g.node('Identity', [mod(g, x, dt)], {}, ['y']);
  g.output('y', dt);
  return g;
}

function modelOf(c: Case, body: (g: GraphBuilder) => string): Uint8Array {
  const g = new GraphBuilder();
  for (const [n, t] of Object.entries(c.feeds)) g.input(n, t.dtype, [...t.shape]);
  g.node('Identity', [body(g)], {}, ['Y']);
  g.output('Y', c.dt);
  return g.model({ opset: 26, opsets: { [PREVIEW]: 1 } });
}

const opModel = (c: Case, extra: Record<string, AttrInput> = {}) => modelOf(c, (g) => g.node('FlexAttention', ['Q', 'K', 'V'], {
  scale: c.scale === undefined ? undefined : float(c.scale), softmax_precision: c.precision,
  score_mod: c.score && modGraph('score_mod', SCORE_MODS[c.score], c.sp), prob_mod: c.prob && modGraph('prob_mod', PROB_MODS[c.prob], c.sp), ...extra,
}, 1, PREVIEW)[0]);

/** The decomposition: scores in float32 (float64 for double inputs) from Q and K each scaled by sqrt(scale). */
const decomposition = (c: Case) => modelOf(c, (g) => {
  const acc: DType = c.dt === 'float64' ? 'float64' : 'float32', rate = scalar(g, acc, Math.sqrt(c.scale ?? 1 / Math.sqrt(c.E)));
  // [B, Hkv, S, d] -> [B, Hkv, G, S, d] -> [B, Hq, S, d]: query head h reads kv head floor(h / G).
  const heads = (x: string, d: number) => g.node('Reshape', [
    g.node('Expand', [g.node('Unsqueeze', [x, ints(g, [1], [2])])[0], ints(g, [5], [c.B, c.Hkv, c.Hq / c.Hkv, c.S, d])])[0], ints(g, [4], [c.B, c.Hq, c.S, d])])[0];
  const cast = (x: string, to: DType) => g.node('Cast', [x], { to: code(to) })[0];
  const q = g.node('Mul', [cast('Q', acc), rate])[0], k = g.node('Mul', [cast(heads('K', c.E), acc), rate])[0];
  let s = cast(g.node('MatMul', [q, g.node('Transpose', [k], { perm: [0, 1, 3, 2] })[0]])[0], c.sp);
  if (c.score) s = SCORE_MODS[c.score](g, s, c.sp);
  let p = g.node('Softmax', [s], { axis: 3 })[0];
  if (c.prob) p = PROB_MODS[c.prob](g, p, c.sp);
  return cast(g.node('MatMul', [p, cast(heads('V', c.Dv), c.sp)])[0], c.dt);
});

async function run(bytes: Uint8Array, feeds: Record<string, NdArray>): Promise<NdArray> {
  const s = await InferenceSession.create(bytes);
  return toNdArray((await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toTensor(v)])))).Y as Tensor);
}

/**
 * About one unit in the last place of the narrower of the input type and the softmax precision: both sides
 * round at the same steps, and only the scaling order (sum * scale against pre-scaled Q and K) can tip one.
 */
function tolerance(c: Case) {
  const narrow = [c.dt, c.sp];
  if (narrow.includes('bfloat16')) return { rtol: 8e-3, atol: 1e-4 };
  if (narrow.includes('float16')) return { rtol: 1e-3, atol: 1e-5 };
  return c.dt === 'float64' && c.sp === 'float64' ? { rtol: 1e-10, atol: 1e-12 } : { rtol: 1e-5, atol: 1e-6 };
}

describe('FlexAttention', () => {
  it('matches its decomposition over shapes, GQA, dtypes, softmax precisions, scales and modifiers', async () => {
    const r = rng(26), seen = new Set<string>();
    for (let i = 0; i < 80; i++) {
      const c = randomCase(r), tag = `#${i} ${c.dt}/${c.sp} B${c.B} Hq${c.Hq} Hkv${c.Hkv} L${c.L} S${c.S} E${c.E} Dv${c.Dv} scale=${c.scale} ${c.score}/${c.prob}`;
      const got = await run(opModel(c), c.feeds), want = await run(decomposition(c), c.feeds);
      expect(got.shape, tag).toEqual([c.B, c.Hq, c.L, c.Dv]);
      expect(compareValues(want, got, tolerance(c)), tag).toBeUndefined();
      [c.dt, c.sp, `score:${c.score}`, `prob:${c.prob}`, c.Hq > c.Hkv ? 'gqa' : 'mha'].forEach((t) => seen.add(t));
    }
    // The draw has to have covered every dtype, precision and modifier.
    for (const t of ['float32', 'float16', 'float64', 'bfloat16', 'gqa', ...Object.keys(SCORE_MODS).map((k) => `score:${k}`), ...Object.keys(PROB_MODS).map((k) => `prob:${k}`)]) {
      expect(seen.has(t), t).toBe(true);
    }
  });

  it('runs scores, softmax and the mix in a narrow softmax_precision and rounds Y to it', async () => {
    for (const [precision, sp] of [[10, 'float16'], [16, 'bfloat16']] as const) {
      const r = rng(precision), dims = { B: 1, Hq: 2, Hkv: 1, L: 4, S: 9, E: 4, Dv: 5 };
      const c: Case = { dt: 'float32', sp, precision, ...dims, feeds: { Q: randomF32([1, 2, 4, 4], r, -2, 2), K: randomF32([1, 1, 9, 4], r, -2, 2), V: randomF32([1, 1, 9, 5], r) } };
      const y = await run(opModel(c), c.feeds), data = [...(y.data as Float32Array)];
      expect(data).toEqual([...typed(sp, [data.length], data).data]);
      expect(compareValues(await run(decomposition(c), c.feeds), y, { rtol: 0, atol: 0 })).toBeUndefined();
      const wide = await run(opModel({ ...c, precision: undefined, sp: 'float32' }), c.feeds);
      expect(compareValues(wide, y, { rtol: 1e-6, atol: 0 })).toBeDefined();
    }
  });

  it('gives NaN rows where score_mod masks every key, as the Softmax of the decomposition does', async () => {
    const c = randomCase(rng(4));
    Object.assign(c, { dt: 'float32', sp: 'float32', precision: undefined, score: 'outer', prob: undefined, B: 1, Hq: 1, Hkv: 1, L: 2, S: 2, E: 2, Dv: 2, scale: undefined });
    const r = rng(5);
    c.feeds = { Q: randomF32([1, 1, 2, 2], r), K: randomF32([1, 1, 2, 2], r), V: randomF32([1, 1, 2, 2], r), bias: typed('float32', [1, 1, 2, 2], [-Infinity, -Infinity, 0, -Infinity]) };
    const y = await run(opModel(c), c.feeds);
    expect([...(y.data as Float32Array)].map(Number.isNaN)).toEqual([true, true, false, false]);
    expect([...(y.data as Float32Array)].slice(2)).toEqual([...(c.feeds.V.data as Float32Array)].slice(0, 2));
  });

  it('rejects mismatched shapes and dtypes, bad head ratios and modifiers that break the contract', async () => {
    const base = (over: Partial<Case> = {}): Case => ({ dt: 'float32', sp: 'float32', B: 1, Hq: 2, Hkv: 2, L: 2, S: 3, E: 4, Dv: 2, feeds: {
      Q: randomF32([1, 2, 2, 4]), K: randomF32([1, 2, 3, 4]), V: randomF32([1, 2, 3, 2]) }, ...over });
    const fails = (c: Case, re: RegExp, extra?: Record<string, AttrInput>) => expect(run(opModel(c, extra), c.feeds)).rejects.toThrow(re);
    const c1 = base();
    c1.feeds.K = randomF32([1, 2, 3, 5]);
    await fails(c1, /K head size 5 should equal Q head size 4/);
    const c2 = base();
    c2.feeds.K = randomF32([1, 3, 3, 4]); c2.feeds.V = randomF32([1, 3, 3, 2]);
    await fails(c2, /Q heads 2 should be a multiple of K\/V heads 3/);
    const c3 = base();
    c3.feeds.V = typed('float64', [1, 2, 3, 2], randomF32([12]).data);
    await fails(c3, /input 2 \(V\) has dtype float64; expected float32/);
    const c4 = base();
    c4.feeds.Q = randomF32([2, 2, 4]);
    await fails(c4, /input 0 \(Q\) should be rank 4/);
    const c5 = base();
    c5.feeds.V = randomF32([1, 2, 4, 2]);
    await fails(c5, /K and V should share heads and sequence length/);
    await fails(base(), /softmax_precision should be 1 \(float\), 10/, { softmax_precision: 7 });
    const reduce: Modifier = (g, x) => g.node('ReduceMax', [x, ints(g, [1], [3])], { keepdims: 1 })[0];
    await fails(base(), /score_mod should return a float32 tensor of shape \[1,2,2,3\].*got float32 \[1,2,2,1\]/, { score_mod: modGraph('score_mod', reduce, 'float32') });
    const widen: Modifier = (g, x) => g.node('Cast', [x], { to: 11 })[0];
    await fails(base(), /prob_mod should return a float32 tensor.*got float64/, { prob_mod: modGraph('prob_mod', widen, 'float32') });
    const two = new GraphBuilder('score_mod');
    two.input('a', 'float32'); two.input('b', 'float32'); two.node('Add', ['a', 'b'], {}, ['y']); two.output('y', 'float32');
    await fails(base(), /score_mod should have 1 input and 1 output/, { score_mod: two });
    await fails(base(), /'mask_mod' is not part of FlexAttention-1/, { mask_mod: modGraph('mask_mod', SCORE_MODS.bias, 'float32') });
  });
});
