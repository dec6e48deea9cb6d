// Conv, ConvTranspose and ConvInteger against onnxruntime-node over random geometry and attributes.
import { afterEach, describe, expect, it } from 'vitest';
import type { DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { conv, convTranspose, type Geom3 } from '../kernels/cpu/conv.js';
import { convTransposeWasm, depthwiseWasm, directConvWasm, im2colConvWasm } from '../kernels/wasm/conv.js';
import { hasSimd, setWasmKernels, wasmKernels } from '../kernels/wasm/simd.js';
import { GraphBuilder, type AttrInput } from '../loaders/builder.js';
import { InferenceSession, Tensor } from '../index.js';
import { expectMatchesOrt, randomF32, rng, runBoth } from './helpers/oracle.js';

type R = ReturnType<typeof rng>;

/** One-node model whose inputs are all graph inputs ('' skips an optional one). */
function oneNode(op: string, ins: [string, NdArray | undefined][], attrs: Record<string, AttrInput>, outDtype: DType) {
  const g = new GraphBuilder();
  const names = ins.map(([n, t]) => (t ? g.input(n, t.dtype, [...t.shape]) : ''));
  g.output(g.node(op, names, attrs)[0], outDtype);
  return { bytes: g.model({ opset: 17 }), feeds: Object.fromEntries(ins.filter(([, t]) => t).map(([n, t]) => [n, t!])) };
}

const ints = (dtype: DType, shape: number[], r: R, lo: number, hi: number) => {
  const t = NdArray.zeros(dtype, shape), d = t.data as Int8Array;
  for (let i = 0; i < d.length; i++) d[i] = r.int(lo, hi);
  return t;
};

/** A random Conv/ConvTranspose geometry: spatial rank, channels, group, kernel and the window attributes. */
function geometry(r: R, rank: number) {
  const group = r.pick([1, 1, 2, 3]), cg = r.int(1, 3), mg = r.int(1, 3);
  const attrs: Record<string, AttrInput> = { group };
  const k = Array.from({ length: rank }, () => r.int(1, 3)), s = Array.from({ length: rank }, () => r.int(1, 3));
  const d = Array.from({ length: rank }, () => (r.next() < 0.3 ? 2 : 1));
  if (r.next() < 0.7) attrs.strides = s;
  if (r.next() < 0.4) attrs.dilations = d;
  if (r.next() < 0.5) attrs.kernel_shape = k;
  return { group, cg, mg, k, s: (attrs.strides as number[] | undefined) ?? k.map(() => 1), d: (attrs.dilations as number[] | undefined) ?? k.map(() => 1), attrs };
}

// The setting this run started with (LASTMILE_NO_WASM=1 turns it off); tests that flip it restore it.
const initialWasm = wasmKernels();
afterEach(() => { setWasmKernels(initialWasm); });

describe('Conv', () => {
  // With wasm on, float32 1-D/2-D cases run the WebAssembly kernels; with it off, the TypeScript ones.
  it.each([[1, true], [2, true], [3, true], [1, false], [2, false], [3, false]])('random %i-D cases (wasm %s)', async (rank, wasm) => {
    setWasmKernels(wasm);
    const r = rng(100 + rank);
    for (let t = 0; t < 14; t++) {
      const { group, cg, mg, k, attrs } = geometry(r, rank);
      const n = r.int(1, 2), spatial = Array.from({ length: rank }, () => r.int(rank === 3 ? 3 : 4, rank === 3 ? 7 : 12));
      const pad = r.pick(['explicit', 'none', 'SAME_UPPER', 'SAME_LOWER', 'VALID']);
      if (pad === 'explicit') attrs.pads = Array.from({ length: 2 * rank }, () => r.int(0, 2));
      else if (pad !== 'none') attrs.auto_pad = pad;
      // onnxruntime rejects dilations with SAME padding.
      if (pad.startsWith('SAME')) delete attrs.dilations;
      const bias = r.next() < 0.5 ? randomF32([group * mg], r) : undefined;
      const { bytes, feeds } = oneNode('Conv', [['X', randomF32([n, group * cg, ...spatial], r)], ['W', randomF32([group * mg, cg, ...k], r)], ['B', bias]], attrs, 'float32');
      await expectMatchesOrt(bytes, feeds);
    }
  });

  it.each([[8, 8, 1], [8, 16, 1], [6, 6, 2]])('depthwise C=%i M=%i stride %i with pads', async (c, m, s) => {
    const r = rng(c + m + s);
    const { bytes, feeds } = oneNode('Conv', [['X', randomF32([2, c, 13, 11], r)], ['W', randomF32([m, 1, 3, 3], r)], ['B', randomF32([m], r)]],
      { group: c, strides: [s, s], pads: [1, 0, 2, 1] }, 'float32');
    await expectMatchesOrt(bytes, feeds);
  });

  it('1x1 pointwise and a layer large enough to chunk im2col', async () => {
    const r = rng(4);
    let m = oneNode('Conv', [['X', randomF32([1, 24, 15, 17], r)], ['W', randomF32([20, 24, 1, 1], r)]], {}, 'float32');
    await expectMatchesOrt(m.bytes, m.feeds);
    m = oneNode('Conv', [['X', randomF32([1, 64, 60, 60], r)], ['W', randomF32([8, 64, 3, 3], r)]], { pads: [1, 1, 1, 1] }, 'float32');
    await expectMatchesOrt(m.bytes, m.feeds, { rtol: 1e-3, atol: 1e-3 });
  });

  it('float64 (onnxruntime has no double Conv: compared with its float32 result on the same values)', async () => {
    const r = rng(6), attrs = { group: 2, strides: [2, 1] };
    const f32: [string, NdArray][] = [['X', randomF32([1, 4, 9, 9], r)], ['W', randomF32([6, 2, 3, 3], r)], ['B', randomF32([6], r)]];
    const f64 = f32.map(([n, t]) => [n, new NdArray('float64', t.shape, Float64Array.from(t.data as Float32Array))] as [string, NdArray]);
    const ref = Object.values((await runBoth(...Object.values(oneNode('Conv', f32, attrs, 'float32')) as [Uint8Array, Record<string, NdArray>])).theirs)[0];
    const mine = oneNode('Conv', f64, attrs, 'float64');
    const y = Object.values(await (await InferenceSession.create(mine.bytes)).run(Object.fromEntries(f64.map(([n, t]) => [n, new Tensor(t.dtype, t.data, t.shape)]))))[0] as Tensor;
    expect(y.dims).toEqual(ref.dims);
    (ref.data as Float32Array).forEach((v, i) => expect((y.data as Float64Array)[i]).toBeCloseTo(v, 5));
  });

  it('infers output dims and keeps the symbolic batch', async () => {
    const g = new GraphBuilder();
    g.output(g.node('Conv', [g.input('x', 'float32', ['N', 3, 224, 224]), g.input('w', 'float32', [64, 3, 7, 7])], { strides: [2, 2], pads: [3, 3, 3, 3] })[0], 'float32');
    expect((await InferenceSession.create(g.model())).outputMetadata[0].shape).toEqual(['N', 64, 112, 112]);
  });

  it('names the bad channel count', async () => {
    const { bytes, feeds } = oneNode('Conv', [['X', randomF32([1, 3, 5, 5])], ['W', randomF32([4, 4, 3, 3])]], {}, 'float32');
    const s = await InferenceSession.create(bytes);
    await expect(s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)]))))
      .rejects.toThrow(/input 1 \(W\) should have C\/group = 3 input channels, got 4/);
  });
});

describe('ConvTranspose', () => {
  it.each([1, 2, 3])('random %i-D cases', async (rank) => {
    const r = rng(200 + rank);
    for (let t = 0; t < 14; t++) {
      const { group, cg, mg, k, s, d, attrs } = geometry(r, rank);
      const n = r.int(1, 2), spatial = Array.from({ length: rank }, () => r.int(2, rank === 3 ? 4 : 7));
      let mode = r.pick(['pads', 'none', 'output_shape', 'SAME_UPPER', 'SAME_LOWER', 'VALID']);
      // output_padding must stay below stride or dilation on each axis.
      if (r.next() < 0.4) attrs.output_padding = s.map((v, i) => r.int(0, Math.max(v, d[i]) - 1));
      const full = spatial.map((v, i) => s[i] * (v - 1) + (((attrs.output_padding as number[] | undefined)?.[i]) ?? 0) + (k[i] - 1) * d[i] + 1);
      // SAME wants input * stride outputs; where the full output is smaller (negative padding) onnxruntime
      // keeps the full size while the spec (and this engine) zero-extends, so the oracle cannot judge it.
      if (mode.startsWith('SAME') && full.some((v, i) => v < spatial[i] * s[i])) mode = 'none';
      if (mode === 'pads') attrs.pads = Array.from({ length: 2 * rank }, (_, i) => r.int(0, Math.min(2, Math.floor((full[i % rank] - 1) / 2))));
      if (mode === 'output_shape') attrs.output_shape = full.map((v) => r.int(Math.max(1, v - 2), v));
      if (mode.startsWith('SAME') || mode === 'VALID') attrs.auto_pad = mode;
      const bias = r.next() < 0.5 ? randomF32([group * mg], r) : undefined;
      const { bytes, feeds } = oneNode('ConvTranspose', [['X', randomF32([n, group * cg, ...spatial], r)], ['W', randomF32([group * cg, mg, ...k], r)], ['B', bias]], attrs, 'float32');
      await expectMatchesOrt(bytes, feeds);
    }
  });

  it('a wide layer (chunked col buffer)', async () => {
    const r = rng(9);
    const { bytes, feeds } = oneNode('ConvTranspose', [['X', randomF32([1, 16, 40, 40], r)], ['W', randomF32([16, 300, 4, 4], r)]], { strides: [2, 2], pads: [1, 1, 1, 1] }, 'float32');
    await expectMatchesOrt(bytes, feeds, { rtol: 1e-3, atol: 1e-4 });
  });
});

describe('ConvInteger', () => {
  it.each([['uint8', 'uint8'], ['uint8', 'int8']] as [DType, DType][])('%s x %s, zero points, pads and groups', async (tx, tw) => {
    const r = rng(tx.length + tw.length);
    for (const [group, zp] of [[1, 'none'], [1, 'scalar'], [2, 'scalar']] as const) {
      const x = ints(tx, [1, 2 * group, 7, 6], r, 0, 60), w = ints(tw, [3 * group, 2, 3, 3], r, tw === 'int8' ? -30 : 0, 30);
      const ins: [string, NdArray | undefined][] = [['x', x], ['w', w]];
      if (zp === 'scalar') ins.push(['xz', ints(tx, [], r, 0, 20)], ['wz', ints(tw, [], r, 0, 10)]);
      const { bytes, feeds } = oneNode('ConvInteger', ins, { group, pads: [1, 1, 0, 2], strides: [1, 2] }, 'int32');
      await expectMatchesOrt(bytes, feeds);
    }
  });
});

/** Largest |x - y| / (|y| + rms(y)): relative error floored at the output's scale, so cancellations do not read as huge errors. */
function relErr(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let ss = 0, worst = 0;
  for (let i = 0; i < y.length; i++) ss += y[i] * y[i];
  const rms = Math.sqrt(ss / Math.max(1, y.length));
  for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / (Math.abs(y[i]) + rms));
  return worst;
}

const f32 = (len: number, r: R) => Float32Array.from({ length: len }, () => r.float());

/** One spatial dim: size n (from `sizes`), kernel 1/3/5/7, stride 1-3, dilation 1-2, asymmetric pads. */
function dim(r: R, sizes: number[]) {
  const n = r.pick(sizes), k = r.pick([1, 3, 5, 7]), s = r.pick([1, 1, 2, 3]), d = r.pick([1, 1, 2]), pb = r.int(0, k - 1), pe = r.int(0, k - 1);
  return { n, k, s, d, pb, pe, out: Math.floor((n + pb + pe - (k - 1) * d - 1) / s) + 1 };
}

/** A random 1-D (H = 1) or 2-D window with odd and edge widths; undefined when it leaves no output. */
function window2(r: R, oneD: boolean): (Geom3 & { padEnd: number[] }) | undefined {
  const h = oneD ? { n: 1, k: 1, s: 1, d: 1, pb: 0, pe: 0, out: 1 } : dim(r, [1, 3, 5, 17, r.int(6, 40)]);
  const w = dim(r, [1, 3, 5, 17, r.int(6, 70)]);
  if (h.out < 1 || w.out < 1) return undefined;
  return { inS: [1, h.n, w.n], out: [1, h.out, w.out], k: [1, h.k, w.k], s: [1, h.s, w.s], d: [1, h.d, w.d], p: [0, h.pb, w.pb], padEnd: [0, h.pe, w.pe] };
}

const prod3 = (v: number[]) => v[0] * v[1] * v[2];

describe('WebAssembly conv kernels against the TypeScript ones', () => {
  it.skipIf(!hasSimd).each(['dense', 'grouped', 'depthwise'])('%s: random 1-D/2-D windows, with a bias and accumulating', (kind) => {
    const r = rng(kind.length * 7);
    let cases = 0;
    while (cases < 40) {
      const g = window2(r, r.next() < 0.25);
      if (!g) continue;
      cases++;
      const group = kind === 'dense' ? 1 : kind === 'grouped' ? r.int(2, 3) : r.int(1, 9);
      const cg = kind === 'depthwise' ? 1 : r.int(1, 9), mg = kind === 'depthwise' ? r.int(1, 2) : r.int(1, 9), n = r.int(1, 2);
      const c = group * cg, m = group * mg, size = n * m * prod3(g.out);
      const x = f32(n * c * prod3(g.inS), r), w = f32(m * cg * prod3(g.k), r), bias = f32(m, r), y0 = f32(size, r);
      const run = (f: (y: Float32Array, b?: Float32Array) => unknown, b?: Float32Array) => { const y = y0.slice(); f(y, b); return y; };
      setWasmKernels(false);
      const refBias = run((y, b) => conv(x, w, y, n, c, m, group, g, b), bias), refAcc = run((y) => conv(x, w, y, n, c, m, group, g));
      setWasmKernels(true);
      const paths = kind === 'depthwise' && group > 1
        ? [(y: Float32Array, b?: Float32Array) => depthwiseWasm(x, w, y, n, c, mg, g, b)]
        : [(y: Float32Array, b?: Float32Array) => directConvWasm(x, w, y, n, c, m, group, g, b), (y: Float32Array, b?: Float32Array) => im2colConvWasm(x, w, y, n, c, m, group, g, b)];
      for (const f of paths) {
        const what = `${JSON.stringify(g)} c=${c} m=${m} group=${group} n=${n}`;
        expect(f(y0.slice()), what).toBe(true);
        expect(relErr(run(f, bias), refBias), what).toBeLessThan(1e-5);
        expect(relErr(run(f), refAcc), what).toBeLessThan(1e-5);
      }
      expect(relErr(run((y, b) => conv(x, w, y, n, c, m, group, g, b), bias), refBias)).toBeLessThan(1e-5);
    }
  });

  it.skipIf(!hasSimd)('ConvTranspose: random 1-D/2-D geometry and groups, with a bias and accumulating', () => {
    const r = rng(77);
    for (let t = 0; t < 40; t++) {
      const oneD = r.next() < 0.25;
      const tdim = (sizes: number[]) => {
        const n = r.pick(sizes), k = r.pick([1, 2, 3, 5]), s = r.pick([1, 2, 3]), d = r.pick([1, 1, 2]);
        const full = s * (n - 1) + (k - 1) * d + 1 + r.int(0, s - 1), pb = r.int(0, Math.min(2, full - 1)), pe = r.int(0, Math.min(2, full - 1 - pb));
        return { n, k, s, d, pb, out: full - pb - pe };
      };
      const h = oneD ? { n: 1, k: 1, s: 1, d: 1, pb: 0, out: 1 } : tdim([1, 3, 5, 17]), wd = tdim([1, 3, 5, 17, 33]);
      const g: Geom3 = { inS: [1, h.n, wd.n], out: [1, h.out, wd.out], k: [1, h.k, wd.k], s: [1, h.s, wd.s], d: [1, h.d, wd.d], p: [0, h.pb, wd.pb] };
      const group = r.pick([1, 1, 2, 3]), cg = r.int(1, 5), mg = r.int(1, 5), n = r.int(1, 2), c = group * cg, m = group * mg;
      const x = f32(n * c * prod3(g.inS), r), w = f32(c * mg * prod3(g.k), r), bias = f32(m, r), y0 = f32(n * m * prod3(g.out), r);
      const run = (f: (y: Float32Array, b?: Float32Array) => unknown, b?: Float32Array) => { const y = y0.slice(); f(y, b); return y; };
      setWasmKernels(false);
      const refBias = run((y, b) => convTranspose(x, w, y, n, c, m, group, g, b), bias), refAcc = run((y) => convTranspose(x, w, y, n, c, m, group, g));
      setWasmKernels(true);
      const f = (y: Float32Array, b?: Float32Array) => convTransposeWasm(x, w, y, n, c, m, group, g, b), what = `${JSON.stringify(g)} c=${c} m=${m} group=${group}`;
      expect(f(y0.slice()), what).toBe(true);
      expect(relErr(run(f, bias), refBias), what).toBeLessThan(1e-5);
      expect(relErr(run(f), refAcc), what).toBeLessThan(1e-5);
    }
  });

  it('leaves float64, 3-D windows and disabled wasm to TypeScript', () => {
    const g: Geom3 = { inS: [3, 4, 4], out: [3, 4, 4], k: [1, 3, 3], s: [1, 1, 1], d: [1, 1, 1], p: [0, 1, 1] }, x = new Float32Array(48), w = new Float32Array(9), y = new Float32Array(48);
    expect(depthwiseWasm(x, w, y, 1, 1, 1, g)).toBe(false);
    const g2: Geom3 = { ...g, inS: [1, 4, 4], out: [1, 4, 4] };
    expect(directConvWasm(Float64Array.from(x), w, y, 1, 1, 1, 1, g2)).toBe(false);
    setWasmKernels(false);
    expect(im2colConvWasm(x, w, y, 1, 1, 1, 1, g2)).toBe(false);
  });
});

describe('Conv and ConvTranspose on wide layers (the direct and depthwise kernels) against onnxruntime', () => {
  it.each([true, false])('dense, grouped and depthwise convs with 3x3 to 7x7 kernels, strides, dilations, asymmetric pads (wasm %s)', async (wasm) => {
    setWasmKernels(wasm);
    const r = rng(wasm ? 301 : 302);
    for (const [c, m, group, k, s, d, pads] of [
      [6, 10, 1, 3, 1, 1, [1, 1, 1, 1]], [3, 16, 1, 3, 2, 1, [1, 0, 1, 2]], [3, 8, 1, 7, 2, 1, [3, 3, 3, 3]], [8, 8, 8, 5, 1, 1, [2, 2, 2, 2]],
      [8, 16, 8, 3, 2, 1, [1, 1, 1, 1]], [6, 6, 6, 3, 1, 2, [2, 1, 2, 1]], [4, 6, 2, 5, 1, 1, [0, 2, 4, 1]], [5, 7, 1, 1, 2, 1, [0, 0, 0, 0]],
    ] as [number, number, number, number, number, number, number[]][]) {
      const { bytes, feeds } = oneNode('Conv', [['X', randomF32([2, c, 19, 37], r)], ['W', randomF32([m, c / group, k, k], r)], ['B', randomF32([m], r)]],
        { group, strides: [s, s], dilations: [d, d], pads }, 'float32');
      await expectMatchesOrt(bytes, feeds);
    }
    for (const pad of ['SAME_UPPER', 'SAME_LOWER']) {
      const { bytes, feeds } = oneNode('Conv', [['X', randomF32([1, 4, 23, 33], r)], ['W', randomF32([4, 1, 5, 5], r)]], { group: 4, strides: [2, 2], auto_pad: pad }, 'float32');
      await expectMatchesOrt(bytes, feeds);
    }
    const t = oneNode('ConvTranspose', [['X', randomF32([1, 6, 20, 24], r)], ['W', randomF32([6, 4, 2, 2], r)], ['B', randomF32([4], r)]], { strides: [2, 2] }, 'float32');
    await expectMatchesOrt(t.bytes, t.feeds);
  });
});
