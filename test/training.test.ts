// ai.onnx.preview.training optimizers against the spec's pseudo code, written out per element here:
// several tensors per node, regularisation, decay, the first step (T = 0), float64, and bad operands.
import { describe, expect, it } from 'vitest';
import { NdArray } from '../engine/tensor.js';
import { InferenceSession } from '../index.js';
import { float, GraphBuilder, type AttrInput } from '../loaders/builder.js';
import { randomF32, rng } from './helpers/oracle.js';

const scalarR = (v: number) => new NdArray('float32', [], Float32Array.of(v));
const scalarT = (v: number) => new NdArray('int64', [], BigInt64Array.of(BigInt(v)));

async function run(op: string, ins: NdArray[], attrs: Record<string, AttrInput>, outputs: number): Promise<number[][]> {
  const g = new GraphBuilder(), feeds = new Map<string, NdArray>();
  const names = ins.map((t, i) => (feeds.set(`in${i}`, t), g.input(`in${i}`, t.dtype, [...t.shape])));
  for (const o of g.node(op, names, attrs, outputs, 'ai.onnx.preview.training')) g.output(o, null);
  const s = await InferenceSession.create(g.model({ opset: 17, opsets: { 'ai.onnx.preview.training': 1 } }));
  return (s.runValues(feeds) as NdArray[]).map((v) => [...(v.data as Float32Array)]);
}

function near(actual: number[][], expected: number[][]) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => a.forEach((v, j) => expect(v).toBeCloseTo(expected[i][j], 5)));
}

const vals = (t: NdArray) => [...(t.data as Float32Array)];
/** n tensors of each role, shaped alike per position. */
function operands(roles: number, shapes: number[][], seed: number) {
  const r = rng(seed);
  return Array.from({ length: roles }, (_, k) => shapes.map((s) => randomF32(s, r, k === roles - 1 ? 0 : -1, 1)));
}

describe('Adagrad', () => {
  for (const t of [0, 3]) {
    it(`updates several tensors with decay and regularisation (T = ${t})`, async () => {
      const [X, G, H] = operands(3, [[3], [2, 2]], 1 + t), a = { decay_factor: 0.1, epsilon: 1e-6, norm_coefficient: 0.01 };
      const out = await run('Adagrad', [scalarR(0.5), scalarT(t), ...X, ...G, ...H], { decay_factor: float(0.1), epsilon: float(1e-6), norm_coefficient: float(0.01) }, 4);
      const r = 0.5 / (1 + t * a.decay_factor), xs: number[][] = [], hs: number[][] = [];
      X.forEach((x, i) => {
        const g = vals(G[i]).map((v, j) => a.norm_coefficient * vals(x)[j] + v), h = vals(H[i]).map((v, j) => v + g[j] * g[j]);
        xs.push(vals(x).map((v, j) => v - (r * g[j]) / (Math.sqrt(h[j]) + a.epsilon)));
        hs.push(h);
      });
      near(out, [...xs, ...hs]);
    });
  }
});

describe('Adam', () => {
  for (const t of [0, 2]) {
    it(`updates several tensors with bias correction and post-update decay (T = ${t})`, async () => {
      const [X, G, V, H] = operands(4, [[2], [3]], 5 + t), a = { alpha: 0.8, beta: 0.95, epsilon: 1e-7, norm: 0.02, post: 0.1 };
      const attrs = { alpha: float(a.alpha), beta: float(a.beta), epsilon: float(a.epsilon), norm_coefficient: float(a.norm), norm_coefficient_post: float(a.post) };
      const out = await run('Adam', [scalarR(0.1), scalarT(t), ...X, ...G, ...V, ...H], attrs, 6);
      const r = t > 0 ? (0.1 * Math.sqrt(1 - a.beta ** t)) / (1 - a.alpha ** t) : 0.1, xs: number[][] = [], vs: number[][] = [], hs: number[][] = [];
      X.forEach((x, i) => {
        const g = vals(G[i]).map((v, j) => a.norm * vals(x)[j] + v);
        const v = vals(V[i]).map((m, j) => a.alpha * m + (1 - a.alpha) * g[j]), h = vals(H[i]).map((m, j) => a.beta * m + (1 - a.beta) * g[j] * g[j]);
        xs.push(vals(x).map((m, j) => (1 - a.post) * (m - (r * v[j]) / (Math.sqrt(h[j]) + a.epsilon))));
        vs.push(v); hs.push(h);
      });
      near(out, [...xs, ...vs, ...hs]);
    });
  }

  it('defaults alpha 0.9, beta 0.999 and computes float64 tensors in float64', async () => {
    const d = (...v: number[]) => new NdArray('float64', [v.length], Float64Array.from(v));
    const out = await run('Adam', [scalarR(1), scalarT(1), d(1), d(0.5), d(0), d(0)], {}, 3);
    const v = 0.05, h = 0.001 * 0.25, r = Math.sqrt(1 - 0.999) / (1 - 0.9);
    expect(out[0][0]).toBeCloseTo(1 - (r * v) / Math.sqrt(h), 12);
    expect(out[1][0]).toBeCloseTo(v, 15);
    expect(out[2][0]).toBeCloseTo(h, 15);
  });
});

describe('Momentum', () => {
  for (const mode of ['standard', 'nesterov']) {
    for (const t of [0, 4]) {
      it(`${mode} momentum over several tensors (T = ${t})`, async () => {
        const [X, G, V] = operands(3, [[4], [1, 3]], 9 + t), a = { alpha: 0.9, beta: 0.5, norm: 0.1 };
        const out = await run('Momentum', [scalarR(0.2), scalarT(t), ...X, ...G, ...V], { alpha: float(a.alpha), beta: float(a.beta), norm_coefficient: float(a.norm), mode }, 4);
        const beta = t > 0 ? a.beta : 1, xs: number[][] = [], vs: number[][] = [];
        X.forEach((x, i) => {
          const g = vals(G[i]).map((v, j) => a.norm * vals(x)[j] + v), v = vals(V[i]).map((m, j) => a.alpha * m + beta * g[j]);
          xs.push(vals(x).map((m, j) => m - 0.2 * (mode === 'nesterov' ? g[j] + a.alpha * v[j] : v[j])));
          vs.push(v);
        });
        near(out, [...xs, ...vs]);
      });
    }
  }

  it('rejects bad modes, operand counts, shapes and scalars', async () => {
    const x = randomF32([2]), attrs = { alpha: float(0.9), beta: float(1), norm_coefficient: float(0) };
    await expect(run('Momentum', [scalarR(1), scalarT(0), x, x, x], { ...attrs, mode: 'heavy' }, 2)).rejects.toThrow(/'mode' should be 'standard' or 'nesterov', got 'heavy'/);
    await expect(run('Momentum', [scalarR(1), scalarT(0), x, x], { ...attrs, mode: 'standard' }, 2)).rejects.toThrow(/expected a positive multiple of 3 \(X, G, V\)/);
    await expect(run('Momentum', [scalarR(1), scalarT(0), x, randomF32([3]), x], { ...attrs, mode: 'standard' }, 2)).rejects.toThrow(/G_1 is float32 \[3\]; expected float32 \[2\], as X_1/);
    await expect(run('Momentum', [randomF32([2]), scalarT(0), x, x, x], { ...attrs, mode: 'standard' }, 2)).rejects.toThrow(/input 0 \(R\) should be a float scalar/);
    await expect(run('Adagrad', [scalarR(1), scalarR(0), x, x, x], {}, 2)).rejects.toThrow(/input 1 \(T\) should be an int64 scalar/);
  });
});
