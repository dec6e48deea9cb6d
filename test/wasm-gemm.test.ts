// The WebAssembly SIMD GEMM against the TypeScript one (and a float64 reference) over edge shapes, strided
// and transposed views, alpha and accumulation into C; routing through gemm(); and MatMul, Gemm, Conv
// models run with the wasm kernels on and off, both against onnxruntime-node.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gemm, gemmJs, rowMajor, transposed, type Mat } from '../kernels/cpu/gemm.js';
import { gemmWasm, SHAPE, WasmGemm } from '../kernels/wasm/gemm.js';
import { mapWasm } from '../kernels/wasm/elementwise.js';
import { hasRelaxedSimd, hasSimd, setWasmKernels, wasmKernels } from '../kernels/wasm/simd.js';
import { withThreads } from '../kernels/wasm/threads.js';
import { GraphBuilder } from '../loaders/builder.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

type R = ReturnType<typeof rng>;
// The setting this run started with (LASTMILE_NO_WASM=1 turns it off); tests that flip it restore it.
const initial = wasmKernels();
const fill = (len: number, r: R) => Float32Array.from({ length: len }, () => r.float());

/** A rows x cols operand laid out as asked: row-major, transposed, inside a wider matrix, or strided both ways. */
function operand(rows: number, cols: number, layout: 'plain' | 'trans' | 'wide' | 'sparse' | 'strided', r: R): Mat<Float32Array> {
  switch (layout) {
    case 'plain': return rowMajor(fill(rows * cols, r), cols);
    case 'trans': return transposed(rowMajor(fill(rows * cols, r), rows));
    // Inside a matrix 3 columns wider, at an offset: the whole span is copied.
    case 'wide': return { data: fill(3 + rows * (cols + 3), r), off: 3, rs: cols + 3, cs: 1 };
    // One head among 8 interleaved: the span is 8x the matrix, so it is compacted row by row.
    case 'sparse': return { data: fill(rows * cols * 8, r), off: cols, rs: cols * 8, cs: 1 };
    // Neither stride is 1: compacted element by element.
    case 'strided': return { data: fill(rows * cols * 4, r), off: 1, rs: cols * 4, cs: 2 };
  }
}

/** c + alpha * A·B in float64, the exact product of the float32 inputs up to float64 rounding. */
function reference(m: number, n: number, k: number, a: Mat<Float32Array>, b: Mat<Float32Array>, c: Float32Array, cOff: number, ldc: number, alpha: number) {
  const out = Float64Array.from(c);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a.data[a.off + i * a.rs + p * a.cs] * b.data[b.off + p * b.rs + j * b.cs];
      out[cOff + i * ldc + j] += alpha * s;
    }
  }
  return out;
}

/**
 * Largest |x - y| / (|y| + rms(y)) over C: relative error, floored at the output's scale so entries that
 * cancel to near zero (where float32 rounding of the terms dominates) do not read as huge errors.
 */
function relErr(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let ss = 0, worst = 0;
  for (let i = 0; i < y.length; i++) ss += y[i] * y[i];
  const rms = Math.sqrt(ss / y.length);
  for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / (Math.abs(y[i]) + rms));
  return worst;
}

interface Case { m: number; n: number; k: number; la?: Parameters<typeof operand>[2]; lb?: Parameters<typeof operand>[2]; alpha?: number; ldcPad?: number }

/** Runs one case through wasm (kernel `g`) and the TypeScript path; both must match the reference and each other within 1e-5. */
function check(g: WasmGemm, t: Case, seed: number) {
  const r = rng(seed), { m, n, k, alpha = 1, ldcPad = 0 } = t;
  const a = operand(m, k, t.la ?? 'plain', r), b = operand(k, n, t.lb ?? 'plain', r);
  const ldc = n + ldcPad, cOff = ldcPad ? 5 : 0, c0 = fill(cOff + m * ldc, r);
  const ref = reference(m, n, k, a, b, c0, cOff, ldc, alpha);
  const w = c0.slice(), js = c0.slice();
  expect(g.run(m, n, k, a, b, w, cOff, ldc, alpha)).toBe(true);
  gemmJs(m, n, k, a, b, js, cOff, ldc, alpha);
  const label = JSON.stringify(t);
  expect(relErr(js, ref), label).toBeLessThan(1e-5);
  expect(relErr(w, ref), label).toBeLessThan(1e-5);
  expect(relErr(w, js), label).toBeLessThan(1e-5);
  // Padding between rows of C is never written.
  for (let i = 0; i < m; i++) for (let j = n; j < ldc && i * ldc + j + cOff < w.length; j++) expect(w[cOff + i * ldc + j]).toBe(c0[cOff + i * ldc + j]);
  for (let i = 0; i < cOff; i++) expect(w[i]).toBe(c0[i]);
}

const shapes = hasRelaxedSimd ? [{ ...SHAPE, fma: false }, { ...SHAPE, fma: true }] : [{ ...SHAPE, fma: false }];

describe.skipIf(!hasSimd).each(shapes)('WasmGemm %j', (shape) => {
  const g = new WasmGemm(shape);

  it('sizes around the tile, the k block and the n block', () => {
    const cases: Case[] = [
      { m: 1, n: 1, k: 1 }, { m: 3, n: 7, k: 2 }, { m: 4, n: 8, k: 1 }, { m: 5, n: 9, k: 3 }, { m: 4, n: 8, k: 256 },
      { m: 13, n: 17, k: 257 }, { m: 129, n: 33, k: 19 }, { m: 127, n: 65, k: 513 }, { m: 7, n: 2049, k: 5 }, { m: 64, n: 64, k: 64 },
    ];
    cases.forEach((t, i) => check(g, t, 100 + i));
  });

  it('random shapes, layouts, alpha and strided C', () => {
    const r = rng(7), layouts = ['plain', 'trans', 'wide', 'sparse', 'strided'] as const;
    for (let i = 0; i < 40; i++) {
      const t: Case = {
        m: r.int(1, 90), n: r.int(1, 90), k: r.int(1, 300), la: layouts[r.int(0, 4)], lb: layouts[r.int(0, 4)],
        alpha: [1, -0.5, 2.25][r.int(0, 2)], ldcPad: r.int(0, 1) * r.int(1, 9),
      };
      check(g, t, 200 + i);
    }
  });

  it('long k: float32 accumulation stays within 1e-5 of the TypeScript path up to k = 4096', () => {
    check(g, { m: 64, n: 64, k: 4096 }, 1);
    check(g, { m: 37, n: 45, k: 4001, la: 'trans', lb: 'trans', alpha: 0.5 }, 2);
  });

  it('C staged in several passes of rows', () => {
    check(g, { m: 1100, n: 2100, k: 3, ldcPad: 3 }, 3);
  });

  it('reuses its memory, growing only for a larger product', () => {
    check(g, { m: 200, n: 300, k: 100 }, 4);
    check(g, { m: 8, n: 8, k: 8 }, 5);
    check(g, { m: 210, n: 310, k: 90, la: 'trans' }, 6);
  });
});

describe.skipIf(!hasSimd)('GEMM epilogue (bias and steps applied before C leaves wasm memory)', () => {
  // The reference applies the steps with mapWasm, which needs the wasm kernels on (LASTMILE_NO_WASM=1 turns them off).
  beforeEach(() => { setWasmKernels(true); });
  afterEach(() => { setWasmKernels(initial); });

  // Bias per row or column (or none), then steps, against the plain product onto a bias-filled C and the
  // same steps applied afterwards: bit for bit, as both do the same float32 operations in the same order.
  const cases: [number, number, number, boolean, boolean][] = [
    [1, 40, 3, true, false], [5, 13, 7, false, true], [32, 1000, 16, true, true], [37, 300, 600, false, true], [130, 70, 40, true, false], [4, 9, 2000, false, false],
  ];
  it.each(cases)('m %i n %i k %i, bias %s per row %s', (m, n, k, withBias, perRow) => {
    const r = rng(m + n + k), g = new WasmGemm(), a = operand(m, k, 'plain', r), b = operand(k, n, 'trans', r);
    const bias = withBias ? fill(perRow ? m : n, r) : undefined, steps = [['hardSwish'], ['mulS', 1.5], ['addS', -0.25]] as const;
    const c = new Float32Array(m * n + 3).fill(NaN), want = new Float32Array(m * n + 3).fill(NaN);
    expect(g.run(m, n, k, a, b, c, 3, n, 0.5, { bias, perRow, steps })).toBe(true);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) want[3 + i * n + j] = bias ? bias[perRow ? i : j] : 0;
    expect(g.run(m, n, k, a, b, want, 3, n, 0.5)).toBe(true);
    expect(mapWasm(want.subarray(3), want.subarray(3), m * n, steps)).toBe(true);
    expect(c).toEqual(want);
  });

  it('declines an empty depth (C would still need writing) and runs on threads bit for bit', async () => {
    const g = new WasmGemm(), r = rng(9);
    expect(g.run(4, 4, 0, operand(4, 0, 'plain', r), operand(0, 4, 'plain', r), new Float32Array(16), 0, 4, 1, { perRow: true, steps: [] })).toBe(false);
    await g.startThreads(2);
    const [m, n, k] = [256, 300, 64], a = operand(m, k, 'plain', r), b = operand(k, n, 'plain', r), bias = fill(n, r);
    const one = new Float32Array(m * n), two = new Float32Array(m * n), epi = { bias, perRow: false, steps: [['relu']] as const };
    withThreads(1, () => g.run(m, n, k, a, b, one, 0, n, 1, epi));
    withThreads(2, () => g.run(m, n, k, a, b, two, 0, n, 1, epi));
    expect(two).toEqual(one);
    g.stopThreads();
  });
});

describe('gemm routing', () => {
  afterEach(() => setWasmKernels(initial));
  const r = rng(11), m = 48, n = 40, k = 33;
  const a = rowMajor(fill(m * k, r), k), b = transposed(rowMajor(fill(n * k, r), k)), c0 = fill(m * n, r);
  const run = (f: typeof gemm, x = a, y = b, c = c0.slice()) => { f(m, n, k, x, y, c, 0, n, 0.5); return c; };

  it('LASTMILE_NO_WASM or setWasmKernels(false) gives exactly the TypeScript result', () => {
    expect(initial).toBe(hasSimd && !['1', 'true'].includes(process.env.LASTMILE_NO_WASM ?? ''));
    setWasmKernels(false);
    expect(run(gemm)).toEqual(run(gemmJs));
  });

  it.skipIf(!hasSimd)('float32 products big enough go to wasm, others stay in TypeScript', () => {
    setWasmKernels(true);
    const viaWasm = c0.slice();
    expect(gemmWasm(m, n, k, a, b, viaWasm, 0, n, 0.5)).toBe(true);
    expect(run(gemm)).toEqual(viaWasm);
    expect(relErr(viaWasm, run(gemmJs))).toBeLessThan(1e-5);
    // float64 operands or too little work: TypeScript.
    expect(gemmWasm(m, n, k, { ...a, data: Float64Array.from(a.data) }, b, c0.slice(), 0, n)).toBe(false);
    expect(gemmWasm(8, 8, 8, a, b, c0.slice(), 0, n)).toBe(false);
  });
});

// Whole models through the public API, once per path, each against onnxruntime-node.
describe.each([['wasm', true], ['typescript', false]] as const)('models on the %s kernels', (_name, on) => {
  afterEach(() => setWasmKernels(initial));
  const model = (build: (g: GraphBuilder) => string) => { const g = new GraphBuilder(); g.output(build(g), 'float32'); return g.model({ opset: 17 }); };

  it('MatMul, Gemm (transA, transB, alpha, beta) and Conv', async () => {
    setWasmKernels(on);
    const r = rng(on ? 1 : 2);
    const mm = model((g) => g.node('MatMul', [g.input('A', 'float32', [2, 70, 130]), g.input('B', 'float32', [130, 45])])[0]);
    await expectMatchesOrt(mm, { A: randomF32([2, 70, 130], r), B: randomF32([130, 45], r) });
    const gm = model((g) => g.node('Gemm', [g.input('A', 'float32', [60, 50]), g.input('B', 'float32', [33, 60]), g.input('C', 'float32', [33])],
      { transA: 1, transB: 1, alpha: 0.75, beta: 1.5 })[0]);
    await expectMatchesOrt(gm, { A: randomF32([60, 50], r), B: randomF32([33, 60], r), C: randomF32([33], r) });
    const cv = model((g) => g.node('Conv', [g.input('X', 'float32', [1, 8, 19, 17]), g.input('W', 'float32', [12, 8, 3, 3])], { pads: [1, 1, 1, 1], strides: [1, 2] })[0]);
    await expectMatchesOrt(cv, { X: randomF32([1, 8, 19, 17], r), W: randomF32([12, 8, 3, 3], r) });
  });
});
