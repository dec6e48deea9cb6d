// The WebAssembly SIMD elementwise kernels (kernels/wasm/elementwise.ts): the four arithmetic ops over
// every broadcast layout against the TypeScript rows (bit for bit), the piecewise-linear activations
// and scalar steps against theirs, chains of steps, staging across chunk and row boundaries, in-place
// outputs, the fallbacks, and ops run with the wasm kernels on and off against onnxruntime-node.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { broadcastShapes } from '../kernels/cpu/broadcast.js';
import * as K from '../kernels/cpu/elementwise.js';
import { binaryWasm, mapWasm, MIN_ELEMENTS, STAGE, type BinaryOp, type Step } from '../kernels/wasm/elementwise.js';
import { hasSimd, setWasmKernels, wasmKernels } from '../kernels/wasm/simd.js';
import { NdArray } from '../engine/tensor.js';
import { GraphBuilder, float } from '../loaders/builder.js';
import { expectMatchesOrt, rng } from './helpers/oracle.js';

const initial = wasmKernels();
afterEach(() => { setWasmKernels(initial); });

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const random = (n: number, r: ReturnType<typeof rng>) => Float32Array.from({ length: n }, () => r.float(-3, 3));
const ROWS: Record<BinaryOp, K.Row2> = { add: K.add, sub: K.sub, mul: K.mul, div: K.div };

// Layouts the broadcast walk distinguishes: equal shapes, a scalar on either side, a repeated row, a
// value per row (channel), interleaved broadcasts that leave several outer dims, rows longer than the
// stage, and sizes that are not multiples of the vector width.
const LAYOUTS: [number[], number[]][] = [
  [[37], [37]], [[1, 128, 256], [1, 128, 256]], [[1], [3, 50]], [[3, 50], []], [[4, 33], [33]], [[4, 33], [4, 1]],
  [[1, 4, 128, 128], [1, 1, 1, 128]], [[1, 96, 9, 9], [1, 96, 1, 1]], [[2, 3, 5, 7], [3, 1, 7]], [[5, 1, 7], [2, 5, 3, 7]],
  [[3, STAGE + 5], [1, STAGE + 5]], [[3, STAGE + 5], [3, 1]], [[2 * STAGE + 3], [1]], [[7, 1, 9], [1, 11, 1]],
];

describe.skipIf(!hasSimd)('WebAssembly elementwise kernels', () => {
  // These test the kernels themselves: on even when the run forces the TypeScript ones (LASTMILE_NO_WASM=1).
  beforeEach(() => { setWasmKernels(true); });

  it('compute the four ops bit for bit as the TypeScript rows over every broadcast layout', () => {
    const r = rng(5);
    for (const [as, bs] of LAYOUTS) {
      const os = broadcastShapes(as, bs)!, a = random(size(as), r), b = random(size(bs), r);
      b[0] = 0; a[1 % a.length] = -0; // x / 0 and signed zeros
      for (const op of ['add', 'sub', 'mul', 'div'] as const) {
        const got = new Float32Array(size(os)), want = new Float32Array(size(os));
        expect(binaryWasm(op, a, as, b, bs, os, got)).toBe(true);
        K.broadcastRows(a, as, b, bs, os, want, ROWS[op]);
        expect(got, `${op} [${as}] [${bs}]`).toEqual(want);
      }
    }
  });

  it('apply the activations as the TypeScript rows do, within a float32 rounding or two', () => {
    const r = rng(6), n = STAGE + 37, x = random(n, r);
    x.set([NaN, Infinity, -Infinity, 0, -0, 3, -3, 1e-30], 0);
    const cases: [Step, K.Row1, number][] = [
      [['relu'], K.relu, 0], [['clip', -1, 0.5], K.clamp(-1, 0.5), 0], [['leakyRelu', Math.fround(0.1)], K.leakyRelu(Math.fround(0.1)), 0],
      [['hardSigmoid', Math.fround(0.2), 0.5], K.hardSigmoid(Math.fround(0.2), 0.5), 2 ** -23], [['hardSwish'], K.hardSwish, 2 ** -22],
    ];
    for (const [step, row, tol] of cases) {
      const got = new Float32Array(n), want = new Float32Array(n);
      expect(mapWasm(got, x, n, [step])).toBe(true);
      row(want, x, n);
      for (let i = 0; i < n; i++) {
        if (Number.isNaN(want[i])) expect(got[i], `${step[0]} at ${x[i]}`).toBeNaN();
        else if (got[i] !== want[i]) expect(Math.abs(got[i] - want[i]), `${step[0]} at ${x[i]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(want[i])));
      }
    }
  });

  it('chain a binary op, an activation and scalar steps in one pass, in place', () => {
    const r = rng(7), shape = [2, 8, 45], a = random(size(shape), r), bias = random(8 * 45, r), want = new Float32Array(a.length);
    K.broadcastRows(a, shape, bias, [8, 45], shape, want, K.add);
    K.relu(want, want, want.length);
    for (let i = 0; i < want.length; i++) want[i] = Math.fround(Math.fround(want[i] * 1.5) + 0.25);
    expect(binaryWasm('add', a, shape, bias, [8, 45], shape, a, [['relu'], ['mulS', 1.5], ['addS', 0.25]])).toBe(true);
    expect(a).toEqual(want);
    const x = random(100, r), y = new Float32Array(100);
    expect(mapWasm(y, x, 100, [['subR', 2], ['divS', 4]])).toBe(true);
    expect(y).toEqual(Float32Array.from(x, (v) => (2 - v) / 4));
  });

  it('decline what they do not handle, leaving the output untouched', () => {
    const x = new Float32Array(64), out = new Float32Array(64).fill(7);
    expect(mapWasm(out, x, MIN_ELEMENTS - 1, [['relu']])).toBe(false);
    expect(mapWasm(new Float64Array(64), new Float64Array(64), 64, [['relu']])).toBe(false);
    expect(binaryWasm('add', new Int32Array(64), [64], new Int32Array(64), [64], [64], new Int32Array(64))).toBe(false);
    setWasmKernels(false);
    expect(binaryWasm('add', x, [64], x, [64], [64], out)).toBe(false);
    expect(out[0]).toBe(7);
  });
});

describe('elementwise ops with the wasm kernels on and off', () => {
  // Binary ops over broadcasts, and the activations, as nodes: checked against onnxruntime-node either way.
  const model = () => {
    const g = new GraphBuilder('ew');
    const a = g.input('a', 'float32', [2, 24, 9, 9]), b = g.input('b', 'float32', [1, 24, 1, 1]), c = g.input('c', 'float32', [9]);
    let h = g.node('Add', [a, b])[0];
    h = g.node('Mul', [h, c])[0];
    h = g.node('Sub', [h, b])[0];
    h = g.node('Div', [h, g.node('Abs', [c])[0]])[0];
    const outs = [
      g.node('Relu', [h])[0], g.node('HardSwish', [h])[0], g.node('HardSigmoid', [h], { alpha: float(0.3), beta: float(0.4) })[0],
      g.node('LeakyRelu', [h], { alpha: float(0.2) })[0], g.node('Sigmoid', [h])[0], g.node('Tanh', [h])[0], g.node('Exp', [h])[0], g.node('Erf', [h])[0],
    ];
    outs.forEach((o) => g.output(o, 'float32'));
    return g.model({ opset: 17 });
  };
  for (const on of [true, false]) {
    it(`match onnxruntime-node with wasm ${on ? 'on' : 'off'}`, async () => {
      setWasmKernels(on);
      const r = rng(8), feeds = { a: random(2 * 24 * 81, r), b: random(24, r), c: random(9, r).map((v) => v + Math.sign(v)) };
      await expectMatchesOrt(model(), {
        a: new NdArray('float32', [2, 24, 9, 9], feeds.a), b: new NdArray('float32', [1, 24, 1, 1], feeds.b), c: new NdArray('float32', [9], feeds.c),
      }, { rtol: 1e-5, atol: 1e-6 });
    });
  }
});
