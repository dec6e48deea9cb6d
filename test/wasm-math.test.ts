// The WebAssembly SIMD math kernels (kernels/wasm/math.ts): exp and the functions built on it against
// float64 references (ulps and relative error over random and edge inputs), the chunked staging (sizes
// that are not multiples of 4, rows longer than the stage), Softmax/LogSoftmax and LayerNormalization
// rows against the TypeScript kernels, the fallbacks, and models run with the wasm kernels on and off
// against onnxruntime-node.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as K from '../kernels/cpu/elementwise.js';
import { erf } from '../kernels/cpu/math.js';
import { invStd, rowAffine, rowMoments, standardizeRows } from '../kernels/cpu/norm.js';
import { softmax } from '../kernels/cpu/softmax.js';
import { STAGE } from '../kernels/wasm/math-module.js';
import { mapWasm, MIN_ELEMENTS as MIN_UNARY, stepRow } from '../kernels/wasm/elementwise.js';
import { layerNormWasm, rowSumsWasm, softmaxWasm } from '../kernels/wasm/math.js';
import type { Unary } from '../kernels/wasm/math-vec.js';
import { hasSimd, setWasmKernels, wasmKernels } from '../kernels/wasm/simd.js';
import { GraphBuilder, float } from '../loaders/builder.js';
import { NdArray } from '../engine/tensor.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

type R = ReturnType<typeof rng>;
// One exp-based function over a row, and its Row1 with a TypeScript fallback (kernels/wasm/elementwise.ts).
const unaryWasm = (kind: Unary, out: unknown, x: unknown, n: number) => mapWasm(out, x, n, [[kind]]);
const wasmRow = (kind: Unary, fallback: K.Row1) => stepRow([kind], fallback);
// The setting this run started with (LASTMILE_NO_WASM=1 turns it off); tests that flip it restore it.
const initial = wasmKernels();
afterEach(() => { setWasmKernels(initial); });

const uniform = (n: number, r: R, lo: number, hi: number) => Float32Array.from({ length: n }, () => r.float(lo, hi));

/** Distance in float32 ulps (adjacent floats are 1 apart, across zero and into the denormals). */
const bits = new Int32Array(1), view = new Float32Array(bits.buffer);
function ordinal(v: number): number { view[0] = v; return bits[0] < 0 ? -(bits[0] & 0x7fffffff) : bits[0]; }
const ulps = (a: number, b: number) => (Number.isNaN(a) && Number.isNaN(b) ? 0 : Math.abs(ordinal(a) - ordinal(Math.fround(b))));
/** Relative error, floored at the smallest normal float32 so underflowing results compare absolutely. */
const rel = (a: number, b: number) => (Number.isNaN(a) && Number.isNaN(b) ? 0 : Math.abs(a - b) / Math.max(Math.abs(b), 2 ** -126));

// float64 references. erfc by its continued fraction from 3 on, where 1 - erf(a) would cancel.
function erfc(a: number): number {
  if (a < 3) return 1 - erf(a);
  let f = a;
  for (let k = 60; k >= 1; k--) f = a + k / 2 / f;
  return Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
}
const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const REF: Record<Unary, (x: number) => number> = {
  exp: Math.exp, sigmoid, tanh: Math.tanh, erf,
  gelu: (x) => (x >= 0 ? x * (1 - erfc(x / Math.SQRT2) / 2) : (x * erfc(-x / Math.SQRT2)) / 2),
  geluTanh: (x) => x * sigmoid(2 * Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)),
  silu: (x) => x * sigmoid(x),
};

/** kind(x) in wasm; short inputs are padded to the length from which wasm is used. */
function run(kind: Unary, x: Float32Array): Float32Array {
  const n = Math.max(x.length, MIN_UNARY), padded = new Float32Array(n), y = new Float32Array(n);
  padded.set(x);
  expect(unaryWasm(kind, y, padded, n)).toBe(true);
  return y.subarray(0, x.length);
}

/** Largest error(y, ref(x)) over x, with the x where it occurs (for the failure message). */
function worst(kind: Unary, x: Float32Array, err: (a: number, b: number) => number): { err: number; at: number } {
  const y = run(kind, x);
  let w = { err: 0, at: NaN };
  for (let i = 0; i < x.length; i++) { const e = err(y[i], REF[kind](x[i])); if (e > w.err) w = { err: e, at: x[i] }; }
  return w;
}

const EDGES = [0, -0, 1e-40, -1e-40, 2 ** -149, -(2 ** -149), 1e-30, -1e-30, 0.5, -0.5, 1, -1, 88.7, -88.7, 88.72283, 88.7229, -87.33, -103.9, -104, -110,
  1e30, -1e30, 3.4e38, -3.4e38, Infinity, -Infinity, NaN];

describe.runIf(hasSimd)('wasm float32 math', () => {
  beforeEach(() => { setWasmKernels(true); });

  it('exp is within 1 ulp of float64 exp over the whole range, denormal results included', () => {
    const r = rng(1);
    for (const [lo, hi] of [[-104, 89], [-1, 1], [-103.98, -87.3], [-1e-6, 1e-6]]) {
      const w = worst('exp', uniform(200_000, r, lo, hi), ulps);
      expect(w.err, `worst at ${w.at}`).toBeLessThanOrEqual(1);
    }
  });

  it('exp overflows to +inf, underflows to 0 and propagates NaN', () => {
    const x = Float32Array.from(EDGES), y = run('exp', x);
    x.forEach((v, i) => expect(ulps(y[i], Math.exp(v)), `exp(${v}) = ${y[i]}`).toBeLessThanOrEqual(1));
    expect([...run('exp', Float32Array.of(88.7229, 1e30, Infinity, -104, -1e30, -Infinity, NaN, 3.4e38))]).toEqual([Infinity, Infinity, Infinity, 0, 0, 0, NaN, Infinity]);
  });

  it('sigmoid, tanh and erf are within a few ulps; erf within 1.5e-7 absolute', () => {
    const r = rng(2);
    const bound: [Unary, number, number, number][] = [['sigmoid', -104, 89, 3], ['sigmoid', -5, 5, 3], ['tanh', -20, 20, 2], ['tanh', -0.7, 0.7, 2], ['erf', -5, 5, 2], ['erf', -1.2, 1.2, 2]];
    for (const [kind, lo, hi, max] of bound) {
      const w = worst(kind, uniform(200_000, r, lo, hi), ulps);
      expect(w.err, `${kind} on [${lo}, ${hi}]: worst at ${w.at}`).toBeLessThanOrEqual(max);
    }
    expect(worst('erf', uniform(200_000, r, -6, 6), (a, b) => Math.abs(a - b)).err).toBeLessThan(1.5e-7);
    expect(worst('tanh', uniform(10_000, r, -1e-5, 1e-5), ulps).err).toBeLessThanOrEqual(1);
  });

  it('Gelu (erf and tanh forms) and Silu keep relative accuracy, in the negative tail too', () => {
    const r = rng(3);
    // The tail's error comes from rounding the exponent's argument (a^2, or the tanh form's cubic) in
    // float32: it grows with its size, yet stays far below what float32 rounding of x already implies.
    const bound: [Unary, number, number, number][] = [
      ['gelu', -4, 10, 2e-6], ['gelu', -13, -4, 3e-5], ['geluTanh', -4, 10, 2e-6], ['geluTanh', -10, -4, 3e-5], ['silu', -87, 89, 4e-7],
    ];
    for (const [kind, lo, hi, max] of bound) {
      const w = worst(kind, uniform(200_000, r, lo, hi), rel);
      expect(w.err, `${kind} on [${lo}, ${hi}]: worst at ${w.at}`).toBeLessThan(max);
    }
  });

  it('every function is accurate on edge values (+-0, denormals, +-inf, NaN) and agrees with TypeScript on the non-finite ones', () => {
    const x = Float32Array.from(EDGES);
    const ts: Record<Unary, K.Row1> = { exp: K.exp, sigmoid: K.sigmoid, tanh: K.tanh, erf: K.erfRow, gelu: K.gelu, geluTanh: K.geluTanh, silu: (o, v, n) => { for (let i = 0; i < n; i++) o[i] = v[i] * K.sigmoidOf(v[i]); } };
    for (const kind of Object.keys(ts) as Unary[]) {
      const y = run(kind, x), want = new Float32Array(x.length);
      ts[kind](want, x, x.length);
      x.forEach((v, i) => {
        const ref = REF[kind](v);
        // Within 3 ulps, or 3e-5 relative (the tails of Gelu and Silu), or a few denormal steps where the result underflows.
        const close = ulps(y[i], ref) <= 3 || rel(y[i], ref) < 3e-5 || Math.abs(y[i] - ref) < 2 ** -145 * Math.max(1, Math.abs(v));
        expect(close, `${kind}(${v}) = ${y[i]}, float64 ${ref}`).toBe(true);
        if (!Number.isFinite(want[i])) expect(y[i], `${kind}(${v})`).toBe(want[i]);
      });
    }
    expect(Object.is(run('tanh', Float32Array.of(-0))[0], -0)).toBe(true);
    expect(Object.is(run('erf', Float32Array.of(-0))[0], -0)).toBe(true);
  });

  it('stages any length in chunks, writing exactly n outputs of a view', () => {
    const r = rng(4);
    for (const n of [MIN_UNARY, 33, 37, 4095, STAGE - 1, STAGE, STAGE + 5, 2 * STAGE + 3]) {
      const base = uniform(n + 3, r, -4, 6), x = base.subarray(1, n + 1), y = new Float32Array(n + 2).fill(7);
      expect(unaryWasm('gelu', y.subarray(1), x, n)).toBe(true);
      expect([y[0], y[n + 1]]).toEqual([7, 7]);
      for (let i = 0; i < n; i += 97) expect(rel(y[i + 1], REF.gelu(x[i]))).toBeLessThan(2e-6);
      expect(rel(y[n], REF.gelu(x[n - 1]))).toBeLessThan(2e-6);
    }
  });

  it('wasmRow falls back to the TypeScript row for float64, short rows and when switched off', () => {
    const r = rng(5), x32 = uniform(100, r, -3, 3), x64 = Float64Array.from(x32);
    const row = wasmRow('tanh', K.tanh), tsOut = new Float64Array(100), out64 = new Float64Array(100);
    K.tanh(tsOut, x64, 100);
    row(out64, x64, 100);
    expect(out64).toEqual(tsOut);
    const short = new Float32Array(MIN_UNARY - 1), shortTs = new Float32Array(MIN_UNARY - 1);
    row(short, x32, MIN_UNARY - 1); K.tanh(shortTs, x32, MIN_UNARY - 1);
    expect(short).toEqual(shortTs);
    setWasmKernels(false);
    expect(unaryWasm('tanh', new Float32Array(100), x32, 100)).toBe(false);
    expect(softmaxWasm(x32, new Float32Array(100), 1, 100, false)).toBe(false);
    expect(layerNormWasm(x32, new Float32Array(100), 1, 100, 1e-5, x32, undefined, new Float64Array(1), new Float64Array(1))).toBe(false);
    const off = new Float32Array(100), offTs = new Float32Array(100);
    row(off, x32, 100); K.tanh(offTs, x32, 100);
    expect(off).toEqual(offTs);
  });
});

/** NaN-aware elementwise check: |a - b| <= tol(b). */
function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: (b: number) => number, what: string) {
  for (let i = 0; i < b.length; i++) {
    const ok = Number.isNaN(b[i]) ? Number.isNaN(a[i]) : a[i] === b[i] || Math.abs(a[i] - b[i]) <= tol(b[i]);
    if (!ok) expect.fail(`${what}: element ${i} is ${a[i]}, expected ${b[i]}`);
  }
}

describe.runIf(hasSimd)('wasm row sums (GlobalAveragePool)', () => {
  beforeEach(() => { setWasmKernels(true); });

  it('scaled row sums match float64 sums for short, staged-together and longer-than-stage rows', () => {
    const r = rng(21);
    for (const [rows, n] of [[3, 32], [97, 100], [5, 4096], [2, STAGE + 37]]) {
      const x = uniform(rows * n, r, -2, 3), out = new Float32Array(rows);
      expect(rowSumsWasm(x, rows, n, out, 1 / n)).toBe(true);
      for (let i = 0; i < rows; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += x[i * n + j];
        expect(Math.abs(out[i] - s / n), `rows ${rows} n ${n}`).toBeLessThan(2e-6 * (1 + Math.abs(s / n)));
      }
    }
    expect(rowSumsWasm(new Float32Array(31), 1, 31, new Float32Array(1), 1)).toBe(false);
    expect(rowSumsWasm(new Float64Array(64), 1, 64, new Float64Array(1), 1)).toBe(false);
  });
});

describe.runIf(hasSimd)('wasm Softmax and LayerNormalization rows', () => {
  beforeEach(() => { setWasmKernels(true); });

  // Row lengths around the vector width, the benchmarks' rows, and rows longer than the stage.
  const LENGTHS = [1, 2, 3, 4, 5, 7, 31, 128, 1000, 1024, STAGE, STAGE + 1, Math.floor(2.5 * STAGE)];

  it('Softmax and LogSoftmax match the float64 TypeScript kernel for every row length', () => {
    const r = rng(6);
    for (const n of LENGTHS) {
      const rows = Math.max(1, Math.min(17, Math.floor(60_000 / n)));
      const x = uniform(rows * n, r, -10, 10);
      if (n > 4) { x[3] = -Infinity; x[n + 1] += 1e4; } // a masked entry; a row far from zero
      for (const log of [false, true]) {
        const got = new Float32Array(x.length), want = new Float64Array(x.length);
        expect(softmaxWasm(x, got, rows, n, log) || rows * n < 32).toBe(true);
        if (rows * n < 32) continue;
        softmax(x, want, rows, n, 1, log);
        // float32 rounding of x - max (as onnxruntime computes it) bounds the relative error near 1e-6.
        expectClose(got, want, log ? (b) => 4e-7 * Math.max(1, Math.abs(b)) : (b) => 2e-6 * b + 1e-37, `${log ? 'LogSoftmax' : 'Softmax'} n=${n}`);
      }
    }
  });

  it('Softmax rows with NaN or all -inf give NaN, as in TypeScript', () => {
    const n = 40, x = new Float32Array(3 * n).fill(1);
    x[5] = NaN; x.fill(-Infinity, n, 2 * n);
    for (const log of [false, true]) {
      const got = new Float32Array(x.length), want = new Float32Array(x.length);
      softmaxWasm(x, got, 3, n, log); softmax(x, want, 3, n, 1, log);
      expectClose(got, want, (b) => 1e-6 * Math.max(1, Math.abs(b)), 'special rows');
      expect(got.subarray(0, 2 * n).every(Number.isNaN)).toBe(true);
    }
  });

  it('LayerNormalization matches the float64 TypeScript kernels, with and without bias', () => {
    const r = rng(7);
    for (const n of LENGTHS) {
      const rows = Math.max(1, Math.min(9, Math.floor(60_000 / n)));
      if (rows * n < 32) continue;
      const x = uniform(rows * n, r, -2, 2), s = uniform(n, r, -1, 1);
      for (const bias of [uniform(n, r, -1, 1), undefined]) {
        const y = new Float32Array(x.length), mean = new Float64Array(rows), inv = new Float64Array(rows);
        expect(layerNormWasm(x, y, rows, n, 1e-5, s, bias, mean, inv)).toBe(true);
        const m = rowMoments(x, rows, n), k = invStd(m.variance, 1e-5), want = new Float64Array(x.length);
        standardizeRows(x, want, rows, n, m.mean, k);
        rowAffine(want, rows, n, s, bias);
        expectClose(y, want, (b) => 2e-6 * (1 + Math.abs(b)) * (n < 8 ? 20 : 1), `y n=${n}`);
        expectClose(mean, m.mean, () => 1e-6, `mean n=${n}`);
        expectClose(inv, k, (b) => 1e-6 * b, `inv n=${n}`);
      }
    }
  });

  it('LayerNormalization stays accurate on rows far from zero (two passes) and constant rows', () => {
    const r = rng(8), n = 768, rows = 4;
    const x = Float32Array.from({ length: rows * n }, () => 1000 + r.float(-1, 1)), s = new Float32Array(n).fill(1);
    x.fill(5, 0, n); // constant: variance 0, so y = bias and inv = 1/sqrt(eps)
    const y = new Float32Array(x.length), mean = new Float64Array(rows), inv = new Float64Array(rows);
    expect(layerNormWasm(x, y, rows, n, 1e-5, s, undefined, mean, inv)).toBe(true);
    const m = rowMoments(x, rows, n), k = invStd(m.variance, 1e-5), want = new Float64Array(x.length);
    standardizeRows(x, want, rows, n, m.mean, k);
    // The float32 mean of values near 1000 is itself rounded by up to 3e-5, which the output inherits.
    expectClose(y, want, () => 2e-4, 'y');
    expect(y.subarray(0, n).every((v) => v === 0)).toBe(true);
    expect(Math.abs(inv[0] - 1 / Math.sqrt(1e-5))).toBeLessThan(1e-3);
  });

  it('declines scale or bias rows of the wrong length and tiny tensors', () => {
    const x = new Float32Array(64);
    expect(layerNormWasm(x, new Float32Array(64), 2, 32, 1e-5, new Float32Array(64), undefined, new Float64Array(2), new Float64Array(2))).toBe(false);
    expect(layerNormWasm(x, new Float32Array(64), 2, 32, 1e-5, new Float32Array(32), new Float32Array(3), new Float64Array(2), new Float64Array(2))).toBe(false);
    expect(softmaxWasm(x, new Float32Array(8), 2, 4, false)).toBe(false);
  });
});

// ---- whole models, wasm kernels on and off, against onnxruntime-node ----

function oneOp(op: string, x: NdArray, extra: [string, NdArray][], attrs: Record<string, ReturnType<typeof float> | number>, opset: number, outs = 1) {
  const g = new GraphBuilder();
  const names = g.node(op, [g.input('x', 'float32', [...x.shape]), ...extra.map(([n, t]) => g.input(n, 'float32', [...t.shape]))], attrs, outs);
  names.forEach((n) => g.output(n, 'float32'));
  return { bytes: g.model({ opset }), feeds: { x, ...Object.fromEntries(extra) } };
}

/** x @ W + b, then the activation op(s): optimisation fuses them into one FusedMatMul. */
function matmulAct(act: string, x: NdArray, w: NdArray, b: NdArray, attrs: Record<string, string> = {}) {
  const g = new GraphBuilder(), xi = g.input('x', 'float32', [...x.shape]), wi = g.input('w', 'float32', [...w.shape]), bi = g.input('b', 'float32', [...b.shape]);
  const h = g.node('Add', [g.node('MatMul', [xi, wi])[0], bi])[0];
  const y = act === 'Silu' ? g.node('Mul', [h, g.node('Sigmoid', [h])[0]])[0] : g.node(act, [h], attrs)[0];
  g.output(y, 'float32');
  return { bytes: g.model({ opset: 20 }), feeds: { x, w, b } };
}

describe('Softmax, LayerNormalization and fused activations with the wasm kernels on and off', () => {
  for (const on of [true, false]) {
    it(`match onnxruntime (wasm ${on ? 'on' : 'off'})`, async () => {
      setWasmKernels(on);
      const r = rng(on ? 9 : 10);
      for (const shape of [[2, 3, 40], [5, 129], [1, 4, 1024]]) {
        const x = randomF32(shape, r, -8, 8);
        for (const op of ['Softmax', 'LogSoftmax']) { const m = oneOp(op, x, [], {}, 13); await expectMatchesOrt(m.bytes, m.feeds); }
        const n = shape[shape.length - 1], m = oneOp('LayerNormalization', x, [['s', randomF32([n], r)], ['b', randomF32([n], r)]], { epsilon: float(1e-5) }, 17, 3);
        await expectMatchesOrt(m.bytes, m.feeds);
      }
      const x = randomF32([64, 48], r, -3, 3), w = randomF32([48, 40], r, -0.5, 0.5), b = randomF32([40], r);
      for (const act of ['Sigmoid', 'Tanh', 'Gelu', 'Silu']) { const m = matmulAct(act, x, w, b); await expectMatchesOrt(m.bytes, m.feeds, { atol: 1e-5 }); }
      const m = matmulAct('Gelu', x, w, b, { approximate: 'tanh' });
      await expectMatchesOrt(m.bytes, m.feeds, { atol: 1e-5 });
    });
  }
});
