// Conv, ConvTranspose and ConvInteger against onnxruntime-node over random geometry and attributes.
import { describe, expect, it } from 'vitest';
import type { DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
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

describe('Conv', () => {
  it.each([1, 2, 3])('random %i-D cases', async (rank) => {
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
