// Pooling ops against onnxruntime-node over random geometry: strides, pads, dilations, auto_pad, ceil_mode.
import { afterEach, describe, expect, it } from 'vitest';
import type { DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import type { Geom3 } from '../kernels/cpu/conv.js';
import { pool } from '../kernels/cpu/pool.js';
import { poolWasm } from '../kernels/wasm/pool.js';
import { hasSimd, setWasmKernels, wasmKernels } from '../kernels/wasm/simd.js';
import { GraphBuilder, type AttrInput } from '../loaders/builder.js';
import { InferenceSession, Tensor } from '../index.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

type R = ReturnType<typeof rng>;

function oneNode(op: string, ins: [string, NdArray][], attrs: Record<string, AttrInput>, outs: DType[], opset = 19) {
  const g = new GraphBuilder();
  const names = g.node(op, ins.map(([n, t]) => g.input(n, t.dtype, [...t.shape])), attrs, outs.length);
  names.forEach((n, i) => g.output(n, outs[i]));
  return { bytes: g.model({ opset }), feeds: Object.fromEntries(ins) };
}

/**
 * Random window attributes for input `x`; `dilate` adds dilations (not for LpPool-11). The dilated
 * kernel stays within the input: beyond it onnxruntime truncates a negative size toward zero.
 */
function window(r: R, x: NdArray, dilate: boolean) {
  const k = x.shape.slice(2).map(() => r.int(1, 3));
  const attrs: Record<string, AttrInput> = { kernel_shape: k };
  if (r.next() < 0.7) attrs.strides = k.map(() => r.int(1, 3));
  const dilated = dilate && r.next() < 0.4;
  if (dilated) attrs.dilations = k.map((v, i) => (2 * (v - 1) + 1 <= x.shape[2 + i] ? r.int(1, 2) : 1));
  const pad = r.pick(['explicit', 'none', 'SAME_UPPER', 'SAME_LOWER', 'VALID']);
  // Pads must stay below the kernel extent; onnxruntime has no dilations with SAME.
  if (pad === 'explicit') attrs.pads = [...k, ...k].map((v) => r.int(0, v - 1));
  else if (pad !== 'none' && !(dilated && pad.startsWith('SAME'))) attrs.auto_pad = pad;
  if (r.next() < 0.4 && !attrs.auto_pad) attrs.ceil_mode = 1;
  return attrs;
}

const input = (r: R, rank: number) => randomF32([r.int(1, 2), r.int(1, 3), ...Array.from({ length: rank }, () => r.int(3, rank === 3 ? 6 : 10))], r);

// The setting this run started with (LASTMILE_NO_WASM=1 turns it off); tests that flip it restore it.
const initialWasm = wasmKernels();
afterEach(() => { setWasmKernels(initialWasm); });

describe('MaxPool', () => {
  it.each([1, 2, 3])('random %i-D cases with Indices', async (rank) => {
    const r = rng(rank);
    for (let t = 0; t < 16; t++) {
      const x = input(r, rank), attrs = window(r, x, true);
      if (r.next() < 0.3) attrs.storage_order = 1;
      const { bytes, feeds } = oneNode('MaxPool', [['X', x]], attrs, ['float32', 'int64']);
      await expectMatchesOrt(bytes, feeds);
    }
  });

  // Without the Indices output, float32 1-D/2-D MaxPool runs in WebAssembly (with wasm on).
  it.each([[1, true], [2, true], [3, true], [1, false], [2, false]])('random %i-D cases without Indices (wasm %s)', async (rank, wasm) => {
    setWasmKernels(wasm);
    const r = rng(50 + rank);
    for (let t = 0; t < 12; t++) {
      const x = input(r, rank), attrs = window(r, x, true), k = attrs.kernel_shape as number[], s = attrs.strides as number[] | undefined;
      // onnxruntime's MaxPool without Indices rejects SAME padding that comes out negative (stride > kernel).
      if (String(attrs.auto_pad).startsWith('SAME') && s?.some((v, i) => v > k[i])) delete attrs.auto_pad;
      const { bytes, feeds } = oneNode('MaxPool', [['X', x]], attrs, ['float32']);
      await expectMatchesOrt(bytes, feeds);
    }
  });

  it.each(['int8', 'uint8'] as DType[])('%s', async (dtype) => {
    const r = rng(7), x = NdArray.zeros(dtype, [1, 2, 6, 7]), d = x.data as Int8Array;
    for (let i = 0; i < d.length; i++) d[i] = r.int(dtype === 'int8' ? -128 : 0, 127);
    const { bytes, feeds } = oneNode('MaxPool', [['X', x]], { kernel_shape: [3, 2], strides: [2, 1], pads: [1, 0, 1, 1] }, [dtype]);
    await expectMatchesOrt(bytes, feeds);
  });

  it('infers numeric output dims', async () => {
    const g = new GraphBuilder();
    g.output(g.node('MaxPool', [g.input('x', 'float32', ['N', 64, 112, 112])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })[0], 'float32');
    expect((await InferenceSession.create(g.model())).outputMetadata[0].shape).toEqual(['N', 64, 56, 56]);
  });
});

describe('AveragePool', () => {
  it.each([[1, true], [2, true], [3, true], [1, false], [2, false]])('random %i-D cases, count_include_pad both ways (wasm %s)', async (rank, wasm) => {
    setWasmKernels(wasm);
    const r = rng(10 + rank);
    for (let t = 0; t < 16; t++) {
      const x = input(r, rank), attrs = window(r, x, true);
      attrs.count_include_pad = r.int(0, 1);
      const { bytes, feeds } = oneNode('AveragePool', [['X', x]], attrs, ['float32']);
      await expectMatchesOrt(bytes, feeds);
    }
  });
});

describe('LpPool', () => {
  it.each([1, 2])('random %i-D cases, p = 1..3', async (rank) => {
    const r = rng(20 + rank);
    for (let t = 0; t < 10; t++) {
      const x = input(r, rank), attrs = window(r, x, false);
      delete attrs.ceil_mode;
      attrs.p = r.int(1, 3);
      const { bytes, feeds } = oneNode('LpPool', [['X', x]], attrs, ['float32'], 11);
      await expectMatchesOrt(bytes, feeds);
    }
  });
});

describe('global pools', () => {
  it.each(['GlobalAveragePool', 'GlobalMaxPool'])('%s over 1-3 spatial dims', async (op) => {
    const r = rng(30);
    for (const shape of [[2, 3, 5], [1, 4, 6, 7], [2, 2, 3, 4, 5]]) {
      const { bytes, feeds } = oneNode(op, [['X', randomF32(shape, r)]], {}, ['float32']);
      await expectMatchesOrt(bytes, feeds);
    }
  });
  it('GlobalLpPool with p = 1, 2, 3 over 1-3 spatial dims', async () => {
    const r = rng(31);
    for (const [p, shape] of [[1, [2, 3, 5]], [2, [1, 4, 6, 7]], [3, [2, 2, 3, 4, 5]]] as [number, number[]][]) {
      const { bytes, feeds } = oneNode('GlobalLpPool', [['X', randomF32(shape, r)]], { p }, ['float32']);
      await expectMatchesOrt(bytes, feeds);
    }
  });
});

describe('MaxUnpool', () => {
  it('inverts MaxPool with its indices, with and without output_shape', async () => {
    const r = rng(40), x = randomF32([1, 2, 6, 6], r);
    const pooled = await (await InferenceSession.create(oneNode('MaxPool', [['X', x]], { kernel_shape: [2, 2], strides: [2, 2] }, ['float32', 'int64']).bytes))
      .run({ X: new Tensor('float32', x.data as Float32Array, x.shape) });
    const [y, i] = Object.values(pooled) as Tensor[];
    const feeds = { X: new NdArray('float32', y.dims, y.data as Float32Array), I: new NdArray('int64', i.dims, i.data as BigInt64Array) };
    await expectMatchesOrt(oneNode('MaxUnpool', Object.entries(feeds), { kernel_shape: [2, 2], strides: [2, 2] }, ['float32'], 11).bytes, feeds);
    const shaped = { ...feeds, S: new NdArray('int64', [4], BigInt64Array.from([1n, 2n, 6n, 6n])) };
    await expectMatchesOrt(oneNode('MaxUnpool', Object.entries(shaped), { kernel_shape: [2, 2], strides: [2, 2] }, ['float32'], 11).bytes, shaped);
  });
});

describe('WebAssembly pooling against the TypeScript kernel', () => {
  /** One dim: size from `sizes`, kernel 1-5, stride 1-3, dilation 1-2, pads below the kernel, floor or ceil output count. */
  const dim = (r: R, sizes: number[]) => {
    const n = r.pick(sizes), k = r.pick([1, 2, 3, 5]), s = r.int(1, 3), d = r.pick([1, 1, 2]), pb = r.int(0, k - 1), pe = r.int(0, k - 1);
    const room = n + pb + pe - (k - 1) * d - 1;
    let out = (r.next() < 0.3 ? Math.ceil(room / s) : Math.floor(room / s)) + 1;
    if (out > 1 && (out - 1) * s >= n + pb) out--;
    return { n, k, s, d, pb, pe, out };
  };

  it.skipIf(!hasSimd).each(['max', 'avg', 'avg-count-pad'])('%s over random 1-D/2-D windows, odd and edge widths', (kind) => {
    const r = rng(kind.length + 60);
    let cases = 0;
    while (cases < 60) {
      const h = r.next() < 0.25 ? { n: 1, k: 1, s: 1, d: 1, pb: 0, pe: 0, out: 1 } : dim(r, [1, 3, 5, 17, r.int(6, 30)]), w = dim(r, [1, 3, 5, 17, r.int(6, 60)]);
      if (h.out < 1 || w.out < 1) continue;
      cases++;
      const g: Geom3 = { inS: [1, h.n, w.n], out: [1, h.out, w.out], k: [1, h.k, w.k], s: [1, h.s, w.s], d: [1, h.d, w.d], p: [0, h.pb, w.pb] };
      const planes = r.int(1, 7), x = randomF32([planes * h.n * w.n], r).data, padEnd = [0, h.pe, w.pe];
      const how = kind === 'max' ? { kind: 'max' as const, colMajor: false } : { kind: 'avg' as const, countPad: kind === 'avg-count-pad', padEnd };
      const ref = new Float32Array(planes * h.out * w.out), y = new Float32Array(ref.length);
      setWasmKernels(false);
      pool(x, ref, planes, g, how);
      setWasmKernels(true);
      expect(poolWasm(x, y, planes, g, kind === 'max' ? 'max' : 'avg', kind === 'avg-count-pad' ? padEnd : undefined)).toBe(true);
      // A window wholly in padding has no taps: -Infinity (max) or NaN (average) in both.
      const same = (a: number, b: number) => a === b || (Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= 1e-5;
      for (let i = 0; i < ref.length; i++) expect(same(y[i], ref[i]), `${JSON.stringify(g)} at ${i}: ${y[i]} vs ${ref[i]}`).toBe(true);
    }
  });

  it('leaves 3-D windows, non-float32 data and disabled wasm to TypeScript', () => {
    const g: Geom3 = { inS: [2, 3, 3], out: [2, 3, 3], k: [2, 1, 1], s: [1, 1, 1], d: [1, 1, 1], p: [1, 0, 0] };
    expect(poolWasm(new Float32Array(18), new Float32Array(18), 1, g, 'max')).toBe(false);
    const g2: Geom3 = { ...g, inS: [1, 3, 3], out: [1, 3, 3], k: [1, 1, 1], p: [0, 0, 0] };
    expect(poolWasm(new Float64Array(9) as unknown as Float32Array, new Float32Array(9), 1, g2, 'max')).toBe(false);
    setWasmKernels(false);
    expect(poolWasm(new Float32Array(9), new Float32Array(9), 1, g2, 'avg')).toBe(false);
  });
});
