import { describe, expect, it } from 'vitest';
import { GraphBuilder, i64, type AttrInput } from '../loaders/builder.js';
import type { DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { InferenceSession, Tensor } from '../index.js';
import { fftPlan, ifft } from '../kernels/cpu/fft.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

type In = [string, DType, number[]];

/** One node over graph inputs; an input named '' is an omitted optional one. */
function model(op: string, ins: In[], attrs: Record<string, AttrInput>, opset: number) {
  const g = new GraphBuilder();
  for (const o of g.node(op, ins.map(([n, d, s]) => (n ? g.input(n, d, s) : '')), attrs)) g.output(o, null);
  return g.model({ opset });
}

async function ours(bytes: Uint8Array, feeds: Record<string, NdArray>) {
  const s = await InferenceSession.create(bytes);
  const out = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)])));
  return Object.values(out) as Tensor[];
}

const scalarI64 = (v: number) => i64([], [v]);
const f64 = (x: NdArray) => new NdArray('float64', x.shape, Float64Array.from(x.data as Float32Array));

describe('FFT kernel', () => {
  it('matches a direct float64 DFT for every length path (radix-2, table, Bluestein) and inverts', () => {
    const r = rng(3);
    for (const n of [1, 2, 3, 5, 8, 12, 31, 32, 33, 37, 64, 100, 127, 1024, 1009]) {
      const re = Float64Array.from({ length: n }, () => r.float()), im = Float64Array.from({ length: n }, () => r.float());
      const [er, ei] = [new Float64Array(n), new Float64Array(n)];
      for (let k = 0; k < n; k++) {
        for (let j = 0; j < n; j++) {
          const a = (-2 * Math.PI * ((j * k) % n)) / n;
          er[k] += re[j] * Math.cos(a) - im[j] * Math.sin(a); ei[k] += re[j] * Math.sin(a) + im[j] * Math.cos(a);
        }
      }
      const [xr, xi] = [re.slice(), im.slice()];
      fftPlan(n)(xr, xi);
      for (let k = 0; k < n; k++) expect(Math.abs(xr[k] - er[k]) + Math.abs(xi[k] - ei[k]), `n=${n} k=${k}`).toBeLessThan(1e-9 * n);
      ifft(xr, xi);
      for (let k = 0; k < n; k++) expect(Math.abs(xr[k] - re[k]) + Math.abs(xi[k] - im[k]), `inverse n=${n}`).toBeLessThan(1e-12 * n);
    }
  });
});

describe('DFT', () => {
  it('matches onnxruntime over random shapes, axes, directions, one-sidedness, lengths and opsets', async () => {
    const r = rng(11);
    for (let t = 0; t < 60; t++) {
      const rank = r.int(2, 4), shape = Array.from({ length: rank - 1 }, () => r.pick([1, 2, 3, 4, 5, 8, 12, 16, 37])), axis = r.int(0, rank - 2);
      const inverse = r.int(0, 1), onesided = r.int(0, 1), irfft = inverse && onesided;
      const parts = irfft ? 2 : onesided ? 1 : r.int(1, 2);
      if (irfft && shape[axis] < 2) shape[axis] = 2;
      // onnxruntime's IRFFT departs from numpy's irfft when dft_length is given (see the next test).
      const len = r.next() < 0.4 && !irfft ? r.pick([1, 2, 6, 8, 9, 16, 40]) : undefined;
      const x32 = randomF32([...shape, parts], r), x = r.next() < 0.3 ? f64(x32) : x32;
      const opset = r.pick([17, 20]), ins: In[] = [['x', x.dtype, [...x.shape]], [len === undefined ? '' : 'n', 'int64', []]];
      const feeds: Record<string, NdArray> = { x, ...(len === undefined ? {} : { n: scalarI64(len) }) };
      const negative = r.next() < 0.5 ? axis - rank : axis;
      if (opset === 20) { ins.push(['axis', 'int64', []]); feeds.axis = scalarI64(negative); }
      const attrs = { inverse, onesided, ...(opset === 17 ? { axis: negative } : {}) };
      await expectMatchesOrt(model('DFT', ins, attrs, opset), feeds, { atol: 2e-4 });
    }
  });

  it('truncates or zero-pads a one-sided spectrum to dft_length / 2 + 1 bins for IRFFT, as numpy.fft.irfft does', async () => {
    const x = new NdArray('float32', [1, 4, 2], Float32Array.of(10, 1, -2, 2, -2, 3, -2, -2));
    const numpy: [number, number[]][] = [ // numpy.fft.irfft([10+1j, -2+2j, -2+3j, -2-2j], n)
      [1, [10]], [3, [2, 2.845299, 5.154701]], [5, [0.4, 0.933812, 3.07104, 1.72896, 3.866188]],
      [8, [-0.25, 0.5, 0.75, 2, 1.75, 0.5, 2.75, 2]], [10, [-0.2, 0.251068, 0.555399, 0.860741, 1.792336, 1.4, 0.360451, 1.386472, 2.491815, 1.101719]],
    ];
    for (const [n, want] of numpy) {
      const [y] = await ours(model('DFT', [['x', 'float32', [1, 4, 2]], ['n', 'int64', []]], { inverse: 1, onesided: 1 }, 20), { x, n: scalarI64(n) });
      expect(y.dims).toEqual([1, n, 1]);
      [...(y.data as Float32Array)].forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
    }
  });

  it('rejects the parts dim as axis, a real IRFFT or complex RFFT input and a zero length', async () => {
    const x = randomF32([2, 4, 1]), run = (attrs: Record<string, AttrInput>, n?: number) =>
      ours(model('DFT', [['x', 'float32', [2, 4, 1]], [n === undefined ? '' : 'n', 'int64', []]], attrs, 17), { x, ...(n === undefined ? {} : { n: scalarI64(n) }) });
    await expect(run({ axis: 2 })).rejects.toThrow(/axis 2 should be in \[-3, -2\] or \[0, 1\]/);
    await expect(run({ axis: 1, inverse: 1, onesided: 1 })).rejects.toThrow(/IRFFT\) needs a complex input/);
    const c = randomF32([2, 4, 2]);
    await expect(ours(model('DFT', [['x', 'float32', [2, 4, 2]]], { onesided: 1 }, 17), { x: c })).rejects.toThrow(/RFFT\) needs a real input \(last dim 1\)/);
    await expect(run({ axis: 1 }, 0)).rejects.toThrow(/dft_length should be >= 1, got 0/);
  });
});

describe('STFT', () => {
  it('matches onnxruntime with and without a window, frame_length and onesided output', async () => {
    const r = rng(12);
    for (let t = 0; t < 24; t++) {
      const batch = r.int(1, 2), n = r.pick([4, 5, 8, 16]), len = n + r.int(0, 40), step = r.int(1, 6), parts = r.int(1, 2);
      // onnxruntime windows complex signals wrongly (see the next test): windows with real signals only.
      const onesided = parts === 2 ? 0 : r.int(0, 1), useWin = parts === 1 && r.next() < 0.6, useLen = !useWin || r.next() < 0.5;
      const x = randomF32([batch, len, parts], r), feeds: Record<string, NdArray> = { x, step: scalarI64(step) };
      const ins: In[] = [['x', 'float32', [batch, len, parts]], ['step', 'int64', []], [useWin ? 'w' : '', 'float32', [n]], [useLen ? 'n' : '', 'int64', []]];
      if (useWin) feeds.w = randomF32([n], r, 0, 1);
      if (useLen) feeds.n = scalarI64(n);
      await expectMatchesOrt(model('STFT', ins, { onesided }, 17), feeds, { atol: 2e-4 });
    }
  });

  it('windows each complex sample, as numpy.fft.fft(signal[frame] * window) does', async () => {
    const x = new NdArray('float32', [1, 9, 2], Float32Array.of(-2, 0, 2, -1, 1, -2, 0, 2, -1, 1, -2, 0, 2, -1, 1, -2, 0, 2));
    const ins: In[] = [['x', 'float32', [1, 9, 2]], ['s', 'int64', []], ['w', 'float32', [4]]];
    const [y] = await ours(model('STFT', ins, { onesided: 0 }, 17), { x, s: scalarI64(2), w: new NdArray('float32', [4], Float32Array.of(1, 0.5, 0.25, 2)) });
    expect(y.dims).toEqual([1, 3, 4, 2]);
    expect([...(y.data as Float32Array)]).toEqual([-0.75, 3, -6.75, -0.5, -2.75, -4, 2.25, 1.5, -3.25, -0.75, 2.25, -6.25, 4.75, -2.75, 0.25, 1.75, 0.5, -3.25, 2.5, 4.25, -1.5, 4.75, -5.5, -1.75]);
  });

  it('refuses a onesided transform of a complex signal and frames longer than the signal', async () => {
    const x = randomF32([1, 8, 2]), ins: In[] = [['x', 'float32', [1, 8, 2]], ['s', 'int64', []], ['', 'float32', []], ['n', 'int64', []]];
    await expect(ours(model('STFT', ins, {}, 17), { x, s: scalarI64(2), n: scalarI64(4) })).rejects.toThrow(/onesided STFT needs a real signal/);
    await expect(ours(model('STFT', ins, { onesided: 0 }, 17), { x, s: scalarI64(2), n: scalarI64(9) })).rejects.toThrow(/frame length 9 should be in \[1, 8\]/);
  });
});

describe('windows', () => {
  it('match onnxruntime for each window, periodic or symmetric, over sizes and output types', async () => {
    for (const op of ['HannWindow', 'HammingWindow', 'BlackmanWindow']) {
      for (const periodic of [0, 1]) {
        for (const [size, code] of [[1, 1], [2, 1], [7, 1], [16, 11], [10, 6], [33, 10]]) {
          if (size === 1 && !periodic) continue; // onnxruntime divides 0 by 0 here; see the next test
          await expectMatchesOrt(model(op, [['n', 'int32', []]], { periodic, output_datatype: code }, 17), { n: new NdArray('int32', [], Int32Array.of(size)) }, { atol: 1e-6 });
        }
      }
    }
  });

  it('give a one-point symmetric window the value 1, as numpy and scipy do', async () => {
    for (const op of ['HannWindow', 'HammingWindow', 'BlackmanWindow']) {
      const [y] = await ours(model(op, [['n', 'int64', []]], { periodic: 0 }, 17), { n: scalarI64(1) });
      expect([...(y.data as Float32Array)]).toEqual([1]);
    }
  });
});

describe('MelWeightMatrix', () => {
  it('matches onnxruntime over bin counts, lengths, rates and edges', async () => {
    const r = rng(13);
    for (let t = 0; t < 16; t++) {
      const mels = r.int(1, 12), n = r.pick([16, 64, 256, 512]), rate = r.pick([8000, 16000, 22050]);
      const lo = r.float(0, 300), hi = r.float(lo + 1000, rate / 2);
      const ins: In[] = [['m', 'int64', []], ['d', 'int64', []], ['r', 'int64', []], ['lo', 'float32', []], ['hi', 'float32', []]];
      const feeds = { m: scalarI64(mels), d: scalarI64(n), r: scalarI64(rate), lo: new NdArray('float32', [], Float32Array.of(lo)), hi: new NdArray('float32', [], Float32Array.of(hi)) };
      await expectMatchesOrt(model('MelWeightMatrix', ins, { output_datatype: r.pick([1, 11]) }, 17), feeds, { atol: 1e-6 });
    }
  });

  it('rejects an upper edge past the last spectrogram bin', async () => {
    const ins: In[] = [['m', 'int64', []], ['d', 'int64', []], ['r', 'int64', []], ['lo', 'float32', []], ['hi', 'float32', []]];
    const feeds = { m: scalarI64(4), d: scalarI64(16), r: scalarI64(8000), lo: new NdArray('float32', [], Float32Array.of(0)), hi: new NdArray('float32', [], Float32Array.of(7000)) };
    await expect(ours(model('MelWeightMatrix', ins, {}, 17), feeds)).rejects.toThrow(/upper_edge_hertz 7000 maps past the last of 9 spectrogram bins/);
  });
});

// Det and TensorScatter (ops/linalg.ts) are tested here too.
describe('Det', () => {
  it('matches onnxruntime on batches of random matrices (onnxruntime has float32 only)', async () => {
    const r = rng(14);
    for (const shape of [[1, 1], [3, 3], [4, 2, 2], [2, 3, 5, 5], [8, 8], [0, 3, 3]]) await expectMatchesOrt(model('Det', [['x', 'float32', shape]], {}, 11), { x: randomF32(shape, r) });
  });

  it('pivots past zeros, gives exactly 0 for singular matrices and runs the opset 22 definition', async () => {
    const x = new NdArray('float64', [3, 3, 3], Float64Array.of(0, 1, 0, 1, 0, 0, 0, 0, 1, /* a swap: -1 */ 1, 2, 3, 2, 4, 6, 7, 8, 9, /* singular */ 2, 0, 1, 1, 3, 2, 1, 1, 2));
    const [y] = await ours(model('Det', [['x', 'float64', [3, 3, 3]]], {}, 22), { x });
    expect(y.dims).toEqual([3]);
    expect([...(y.data as Float64Array)].map((v) => Math.round(v * 1e12) / 1e12)).toEqual([-1, 0, 6]);
    await expect(ours(model('Det', [['x', 'float32', [2, 3]]], {}, 22), { x: randomF32([2, 3]) })).rejects.toThrow(/should be \[\*, M, M\]/);
  });
});

describe('TensorScatter', () => {
  it('matches onnxruntime over shapes, axes, modes, write indices and dtypes', async () => {
    const r = rng(15);
    for (let t = 0; t < 30; t++) {
      const rank = r.int(2, 4), shape = Array.from({ length: rank }, () => r.int(1, 4)), axis = r.int(1, rank - 1);
      shape[axis] = r.int(2, 6);
      const circular = r.next() < 0.5, seq = r.int(1, shape[axis]), ushape = shape.slice();
      ushape[axis] = seq;
      const writes = Array.from({ length: shape[0] }, () => (circular ? r.int(0, 9) : r.int(0, shape[axis] - seq)));
      const dtype = r.pick<DType>(['float32', 'int64', 'float16']), make = (s: number[]) => {
        const f = randomF32(s, r, -9, 9);
        return dtype === 'int64' ? new NdArray('int64', s, BigInt64Array.from(f.data as Float32Array, (v) => BigInt(Math.round(v)))) : new NdArray(dtype, s, f.data);
      };
      const withIdx = r.next() < 0.8, ins: In[] = [['p', dtype, shape], ['u', dtype, ushape], [withIdx ? 'w' : '', 'int64', [shape[0]]]];
      const negative = r.next() < 0.5 ? axis - rank : axis;
      const feeds: Record<string, NdArray> = { p: make(shape), u: make(ushape), ...(withIdx ? { w: i64([shape[0]], writes) } : {}) };
      await expectMatchesOrt(model('TensorScatter', ins, { axis: negative, mode: circular ? 'circular' : 'linear' }, 24), feeds);
    }
  });

  it('moves strings too, wraps negative circular writes, and rejects a linear write past the end and axis 0', async () => {
    const p = new NdArray('string', [1, 3], ['a', 'b', 'c']), u = new NdArray('string', [1, 2], ['x', 'y']);
    const ins: In[] = [['p', 'string', [1, 3]], ['u', 'string', [1, 2]], ['w', 'int64', [1]]];
    const [y] = await ours(model('TensorScatter', ins, { axis: 1, mode: 'circular' }, 24), { p, u, w: i64([1], [2]) });
    expect(y.data).toEqual(['y', 'b', 'x']);
    // onnxruntime rejects negative write indices; the operator's definition takes them modulo the length.
    const [z] = await ours(model('TensorScatter', ins, { axis: 1, mode: 'circular' }, 24), { p, u, w: i64([1], [-1]) });
    expect(z.data).toEqual(['y', 'b', 'x']);
    await expect(ours(model('TensorScatter', ins, { axis: 1 }, 24), { p, u, w: i64([1], [2]) })).rejects.toThrow(/write_indices\[0\] = 2 with 2 updates overruns the cache length 3/);
    await expect(ours(model('TensorScatter', ins, { axis: 0 }, 24), { p, u, w: i64([1], [2]) })).rejects.toThrow(/axis should not be 0/);
  });
});
