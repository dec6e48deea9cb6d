// WebGPU elementwise ops, CumProd, MaxPool and ArgMax on 8-, 16- and 32-bit integers against the CPU backend,
// bit for bit: random broadcast shapes over each type's whole range plus its edges, so sums, products and
// shifts wrap; division and Mod by zero; MIN / -1; Mod's sign rules with fmod 0 and 1; shift counts at and
// past the width; integer Pow (exact while |x^y| < 2^53, where the CPU's float64 power is exact too).
import { it } from 'vitest';
import { allocStorage, type DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { GraphBuilder, type AttrInput } from '../../loaders/builder.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type R = ReturnType<typeof rng>;
const RANGE: Record<string, [number, number]> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535], int32: [-(2 ** 31), 2 ** 31 - 1], uint32: [0, 2 ** 32 - 1],
};
const SIGNED: DType[] = ['int8', 'int16', 'int32'];
const UNSIGNED: DType[] = ['uint8', 'uint16', 'uint32'];
const INTS = [...SIGNED, ...UNSIGNED];
const EXACT = { rtol: 0, atol: 0 };

/** Random values of d in [lo, hi], with the range's ends, 0, 1 and -1 mixed in. */
function ints(d: DType, shape: number[], r: R, lo = RANGE[d][0], hi = RANGE[d][1]): NdArray {
  const n = shape.reduce((a, b) => a * b, 1), data = allocStorage(d, n) as Int32Array;
  const edges = [lo, hi, 0, 1, -1].filter((v) => v >= lo && v <= hi);
  for (let i = 0; i < n; i++) data[i] = r.next() < 0.25 ? r.pick(edges) : r.int(lo, hi);
  return new NdArray(d, shape, data);
}

/** A random output shape of rank 0-4 and a shape that broadcasts onto it. */
function shapes(r: R): [number[], number[]] {
  const out = Array.from({ length: r.int(0, 4) }, () => r.int(1, 5));
  return [out, out.slice(r.int(0, out.length)).map((d) => (r.next() < 0.3 ? 1 : d))];
}

async function check(op: string, xs: NdArray[], attrs: Record<string, AttrInput> = {}, opset = 18, tol = EXACT) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = xs.map((x, i) => { feeds[`x${i}`] = x; return g.input(`x${i}`, x.dtype, [...x.shape]); });
  g.output(g.node(op, names, attrs)[0], null);
  await expectGpuMatchesCpu(g.model({ opset }), feeds, tol);
}

describeGpu('WebGPU integer elementwise ops match the CPU backend exactly', () => {
  it('Add, Sub, Mul, Div, Max, Min, comparisons: every integer type, broadcasting, wraparound', async () => {
    const r = rng(301);
    for (const d of INTS) {
      for (const op of ['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual']) {
        const [a, b] = shapes(r);
        const swap = r.next() < 0.5; // the broadcast operand on either side
        await check(op, swap ? [ints(d, b, r), ints(d, a, r)] : [ints(d, a, r), ints(d, b, r)]);
      }
    }
  }, 600_000);

  it('Div and Mod edges: by zero, MIN / -1, mixed signs, fmod 0 and 1', async () => {
    for (const d of INTS) {
      const [lo, hi] = RANGE[d], signed = lo < 0;
      const xs = signed ? [lo, lo, hi, 7, -7, 7, -7, 0, 5, lo, -1, 13] : [hi, 0, 7, 255, hi, 1, 3, 0, 200, 9, 10, 13];
      const ys = signed ? [-1, 0, 0, 3, 3, -3, -3, 0, lo, 1, hi, 4] : [0, 0, 3, 16, 1, hi, 2, 5, 7, 9, 0, 4];
      const x = new NdArray(d, [xs.length], Object.assign(allocStorage(d, xs.length), xs) as Int32Array);
      const y = new NdArray(d, [ys.length], Object.assign(allocStorage(d, ys.length), ys) as Int32Array);
      await check('Div', [x, y]);
      for (const fmod of [0, 1]) await check('Mod', [x, y], { fmod });
      const r = rng(302);
      const [a, b] = shapes(r);
      await check('Mod', [ints(d, a, r), ints(d, b, r)], { fmod: signed ? r.int(0, 1) : 0 });
    }
  }, 600_000);

  it('Abs, Neg, Sign, Relu, PRelu, Where on integers, including MIN', async () => {
    const r = rng(303);
    for (const d of INTS) {
      const x = ints(d, [r.int(1, 3), r.int(1, 9)], r);
      await check('Abs', [x]);
      await check('Sign', [x], {}, 13);
      if (SIGNED.includes(d)) {
        await check('Neg', [x]);
        await check('Relu', [x], {}, 14);
      }
      const [a, b] = shapes(r);
      await check('PRelu', [ints(d, a, r), ints(d, b, r, -3, 3)].map((t) => (UNSIGNED.includes(d) ? ints(d, t.shape as number[], r) : t)), {}, 16);
      const g = new GraphBuilder(), c = g.input('c', 'bool', a), v = g.input('v', d, b), w = g.input('w', d, a);
      g.output(g.node('Where', [c, v, w])[0], null);
      const cond = new NdArray('bool', a, Uint8Array.from({ length: a.reduce((p, q) => p * q, 1) }, () => (r.next() < 0.5 ? 1 : 0)));
      await expectGpuMatchesCpu(g.model({ opset: 16 }), { c: cond, v: ints(d, b, r), w: ints(d, a, r) }, EXACT);
    }
  }, 600_000);

  it('Bitwise ops on 8/16/32-bit integers; BitShift counts up to past the width', async () => {
    const r = rng(304);
    for (const d of INTS) {
      for (const op of ['BitwiseAnd', 'BitwiseOr', 'BitwiseXor']) {
        const [a, b] = shapes(r);
        await check(op, [ints(d, a, r), ints(d, b, r)]);
      }
      await check('BitwiseNot', [ints(d, [r.int(1, 4), r.int(1, 6)], r)]);
    }
    for (const d of UNSIGNED) {
      const bits = d === 'uint8' ? 8 : d === 'uint16' ? 16 : 32;
      for (const direction of ['LEFT', 'RIGHT']) {
        await check('BitShift', [ints(d, [3, 7], r), ints(d, [3, 7], r, 0, bits + 3)], { direction }, 11);
        await check('BitShift', [ints(d, [2, 5], r), ints(d, [5], r, bits - 2, bits + 1)], { direction }, 11);
      }
    }
  }, 600_000);

  it('Pow: int32 bases with integer exponents (negative ones too), float bases with integer exponents', async () => {
    const r = rng(305);
    for (const e of ['int32', 'uint32', 'int8', 'uint16'] as DType[]) {
      const [a, b] = shapes(r);
      // |x|^y < 2^53: 40^9 ~ 2.6e14 wraps int32 yet stays exact in the CPU's float64.
      const lo = RANGE[e][0] < 0 ? -3 : 0;
      await check('Pow', [ints('int32', a, r, -40, 40), ints(e, b, r, lo, 9)], {}, 15);
      await check('Pow', [randomF32(a, r, -3, 3), ints(e, b, r, lo, 6)], {}, 15, { rtol: 1e-5, atol: 1e-6 });
    }
    const x = new NdArray('int32', [8], Int32Array.of(0, 1, -1, -1, 2, -2, 0, 7));
    const y = new NdArray('int32', [8], Int32Array.of(-1, -5, -3, -4, -1, -2, 0, 0));
    await check('Pow', [x, y], {}, 15);
  }, 600_000);

  it('CumProd on narrow integers wraps like Math.imul', async () => {
    const r = rng(306);
    for (const d of ['int8', 'uint8', 'int16', 'uint16'] as DType[]) {
      for (const [exclusive, reverse] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
        const shape = [r.int(1, 4), r.int(1, 40)], axis = r.int(-2, 1);
        const g = new GraphBuilder(), x = g.input('x', d, shape), ax = g.init('axis', new NdArray('int64', [], BigInt64Array.of(BigInt(axis))));
        g.output(g.node('CumProd', [x, ax], { exclusive, reverse })[0], null);
        await expectGpuMatchesCpu(g.model({ opset: 26 }), { x: ints(d, shape, r) }, EXACT);
      }
    }
  }, 600_000);

  it('MaxPool (with indices) and ArgMax/ArgMin on int8 and uint8', async () => {
    const r = rng(307);
    for (const d of ['int8', 'uint8'] as DType[]) {
      for (const pads of [[0, 0, 0, 0], [1, 1, 1, 1]]) {
        const shape = [r.int(1, 2), r.int(1, 3), r.int(3, 8), r.int(3, 8)];
        const g = new GraphBuilder(), x = g.input('x', d, shape);
        const [y, i] = g.node('MaxPool', [x], { kernel_shape: [2, 3], strides: [1, 2], pads }, 2);
        g.output(y, null); g.output(i, null);
        // All-minimum planes make every tap tie with the start value.
        const data = r.next() < 0.5 ? ints(d, shape, r) : ints(d, shape, r, RANGE[d][0], RANGE[d][0] + 1);
        await expectGpuMatchesCpu(g.model({ opset: 12 }), { x: data }, EXACT);
      }
      for (const op of ['ArgMax', 'ArgMin']) {
        const shape = [r.int(1, 4), r.int(1, 9)];
        await check(op, [ints(d, shape, r)], { axis: r.int(0, 1), select_last_index: r.int(0, 1) }, 13);
      }
    }
  }, 600_000);
});
