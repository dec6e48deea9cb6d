import { describe, expect, it } from 'vitest';
import { GraphBuilder, f32, floats, i64 } from '../loaders/builder.js';
import type { DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { InferenceSession, Tensor } from '../index.js';
import {
  axisTaps, cubicWeight, gatherAxis, identityTaps, linearWeight, nearestPlanes, resampleAxis, weightedPlanes, type AxisSpec, type CoordMode, type Filter,
} from '../kernels/cpu/resize.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

type Rng = ReturnType<typeof rng>;
interface Spec { scales?: number[]; sizes?: number[]; roi?: number[]; attrs?: Record<string, any>; opset?: number }

/** Resize (opset >= 11 input layout) with roi/scales/sizes as initializers. */
function resizeModel(x: NdArray, s: Spec) {
  const g = new GraphBuilder();
  const ins = [g.input('x', x.dtype, [...x.shape])];
  ins.push(s.roi ? g.init('roi', f32([s.roi.length], s.roi)) : '');
  ins.push(s.scales ? g.init('scales', f32([s.scales.length], s.scales)) : '');
  if (s.sizes) ins.push(g.init('sizes', i64([s.sizes.length], s.sizes)));
  g.output(g.node('Resize', ins, s.attrs ?? {})[0], x.dtype);
  return g.model({ opset: s.opset ?? 19 });
}

async function ours(bytes: Uint8Array, x: NdArray) {
  const s = await InferenceSession.create(bytes);
  return Object.values(await s.run({ x: new Tensor(x.dtype, x.data, x.shape) }))[0] as Tensor;
}

const COORDS = ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'half_pixel_symmetric'];
const NEAREST = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];

/** Scales whose products with the input size are whole, so every engine agrees on the output width. */
const wholeScale = (r: Rng, n: number) => r.int(1, 3 * n) / n;

function randomCase(r: Rng, mode: string): { x: NdArray; spec: Spec } {
  const [h, w] = [r.int(1, 6), r.int(1, 6)], x = randomF32([r.int(1, 2), r.int(1, 2), h, w], r, -2, 2);
  const attrs: Record<string, any> = { mode, coordinate_transformation_mode: r.pick(COORDS) };
  if (mode === 'nearest') attrs.nearest_mode = r.pick(NEAREST);
  if (mode === 'cubic') Object.assign(attrs, { cubic_coeff_a: r.pick([-0.75, -0.5]), exclude_outside: r.int(0, 1) });
  const spec: Spec = r.next() < 0.5
    ? { scales: [1, 1, wholeScale(r, h), wholeScale(r, w)], attrs }
    : { sizes: [x.shape[0], x.shape[1], r.int(1, 9), r.int(1, 9)], attrs };
  return { x, spec };
}

describe('Resize', () => {
  for (const mode of ['nearest', 'linear', 'cubic']) {
    it(`${mode} matches onnxruntime over coordinate modes, rounding, scales and sizes`, async () => {
      const r = rng(mode.length * 17 + 3);
      for (let i = 0; i < 40; i++) {
        const { x, spec } = randomCase(r, mode);
        await expectMatchesOrt(resizeModel(x, spec), { x }, { atol: 1e-4 });
      }
    });
  }

  it('antialias matches onnxruntime when downscaling by whole factors', async () => {
    const r = rng(41);
    for (let i = 0; i < 12; i++) {
      const x = randomF32([1, 1, 8, 12], r);
      const mode = r.pick(['linear', 'cubic']);
      await expectMatchesOrt(resizeModel(x, { sizes: [1, 1, r.pick([2, 4, 8]), r.pick([3, 4, 6, 12])], attrs: { mode, antialias: 1 } }), { x }, { atol: 1e-4 });
    }
  });

  it('tf_crop_and_resize matches onnxruntime, extrapolating outside the crop', async () => {
    const r = rng(42);
    for (let i = 0; i < 12; i++) {
      const x = randomF32([1, 1, 5, 6], r), mode = r.pick(['nearest', 'linear', 'cubic']);
      const roi = [0, 0, r.float(-0.3, 0.5), r.float(-0.3, 0.5), 1, 1, r.float(0.6, 1.3), r.float(0.6, 1.3)];
      const attrs = { mode, coordinate_transformation_mode: 'tf_crop_and_resize', extrapolation_value: 7.5 };
      // onnxruntime skips the crop on an axis whose size does not change, so every size here changes.
      const sizes = [1, 1, r.pick([1, 2, 3, 4, 6, 7]), r.pick([1, 2, 3, 4, 5, 7])];
      await expectMatchesOrt(resizeModel(x, { roi, sizes, attrs }), { x }, { atol: 1e-4 });
    }
  });

  it('resizes a subset of axes, keeping the aspect ratio by policy', async () => {
    const x = randomF32([1, 2, 3, 5], rng(43));
    for (const policy of ['stretch', 'not_larger', 'not_smaller']) {
      for (const axes of [[2, 3], [3, 2]]) {
        await expectMatchesOrt(resizeModel(x, { sizes: [7, 4], attrs: { axes, keep_aspect_ratio_policy: policy, mode: 'nearest' } }), { x });
        await expectMatchesOrt(resizeModel(x, { sizes: [2, 8], attrs: { axes, keep_aspect_ratio_policy: policy, mode: 'linear' } }), { x }, { atol: 1e-4 });
      }
      // onnxruntime ignores negative axes under a policy; they must mean the same as their positive forms.
      const neg = await ours(resizeModel(x, { sizes: [7, 4], attrs: { axes: [-1, -2], keep_aspect_ratio_policy: policy } }), x);
      const pos = await ours(resizeModel(x, { sizes: [7, 4], attrs: { axes: [3, 2], keep_aspect_ratio_policy: policy } }), x);
      expect([neg.dims, [...(neg.data as Float32Array)]]).toEqual([pos.dims, [...(pos.data as Float32Array)]]);
    }
  });

  // Scale 2 puts linear weights on quarters, exact in binary, so truncation cannot flip on rounding noise.
  it('resizes integer tensors: nearest exactly, linear truncated toward zero', async () => {
    const r = rng(44);
    for (const dtype of ['uint8', 'int8', 'int32'] as DType[]) {
      const x = NdArray.zeros(dtype, [1, 1, 3, 4]), d = x.data as Int32Array;
      for (let i = 0; i < x.size; i++) d[i] = r.int(dtype === 'int8' || dtype === 'int32' ? -100 : 0, 100);
      await expectMatchesOrt(resizeModel(x, { scales: [1, 1, 2, 1.5], attrs: { mode: 'nearest' } }), { x });
      await expectMatchesOrt(resizeModel(x, { scales: [1, 1, 2, 2], attrs: { mode: 'linear' } }), { x });
    }
  });

  it('resizes 2-D, 3-D and 5-D tensors', async () => {
    const r = rng(45);
    const a = randomF32([3, 4], r), b = randomF32([2, 3, 4], r), c = randomF32([1, 1, 2, 3, 4], r);
    await expectMatchesOrt(resizeModel(a, { scales: [2, 0.5], attrs: { mode: 'linear' } }), { x: a }, { atol: 1e-4 });
    await expectMatchesOrt(resizeModel(a, { sizes: [5, 7], attrs: { mode: 'cubic' } }), { x: a }, { atol: 1e-4 });
    await expectMatchesOrt(resizeModel(b, { scales: [1, 2, 0.5], attrs: { mode: 'nearest' } }), { x: b });
    await expectMatchesOrt(resizeModel(c, { sizes: [1, 1, 4, 5, 3], attrs: { mode: 'linear' } }), { x: c }, { atol: 1e-4 });
  });

  it('follows opset 11 and 13 input layouts (scales given empty when sizes are used)', async () => {
    const x = randomF32([1, 1, 4, 4], rng(46));
    await expectMatchesOrt(resizeModel(x, { roi: [], scales: [], sizes: [1, 1, 3, 6], attrs: { mode: 'linear' }, opset: 11 }), { x }, { atol: 1e-4 });
    await expectMatchesOrt(resizeModel(x, { roi: [], scales: [1, 1, 0.5, 2], attrs: { mode: 'nearest', coordinate_transformation_mode: 'tf_half_pixel_for_nn' }, opset: 11 }), { x });
    await expectMatchesOrt(resizeModel(x, { scales: [1, 1, 1.5, 0.75], attrs: { mode: 'cubic' }, opset: 13 }), { x }, { atol: 1e-4 });
  });

  it('copies strings, bools and int64 in nearest mode', async () => {
    const s = new NdArray('string', [2, 2], ['a', 'b', 'c', 'd']);
    expect((await ours(resizeModel(s, { scales: [1, 2] }), s)).data).toEqual(['a', 'a', 'b', 'b', 'c', 'c', 'd', 'd']);
    const b = new NdArray('int64', [3], BigInt64Array.of(1n, 2n ** 60n, 3n));
    expect([...((await ours(resizeModel(b, { sizes: [6], attrs: { coordinate_transformation_mode: 'asymmetric' } }), b)).data as BigInt64Array)])
      .toEqual([1n, 1n, 2n ** 60n, 2n ** 60n, 3n, 3n]);
  });

  it('rejects both or neither of scales and sizes, and linear on strings', async () => {
    const x = randomF32([2, 2]);
    await expect(ours(resizeModel(x, { scales: [1, 2], sizes: [2, 4] }), x)).rejects.toThrow(/exactly one of 'scales' and 'sizes'.*got both/);
    await expect(ours(resizeModel(x, {}), x)).rejects.toThrow(/exactly one of 'scales' and 'sizes'/);
    const s = new NdArray('string', [2], ['a', 'b']);
    await expect(ours(resizeModel(s, { scales: [2], attrs: { mode: 'linear' } }), s)).rejects.toThrow(/linear mode needs numbers/);
  });
});

describe('Resize plane kernels against the per-axis passes', () => {
  const COORD_MODES: CoordMode[] = ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'half_pixel_symmetric', 'tf_half_pixel_for_nn'];
  const spec = (r: Rng, inLen: number): AxisSpec => {
    const outLen = r.int(1, 3 * inLen + 2);
    return { inLen, outLen, scale: r.next() < 0.5 ? outLen / inLen : r.pick([0.5, 1, 2, 3, 4, 8]), coord: r.pick(COORD_MODES), roi: [0, 1] };
  };
  const round: Filter = { round: (c) => Math.floor(c + 0.5) };

  it('nearestPlanes equals two gatherAxis passes, for float32, int32 and strings', () => {
    const r = rng(51);
    for (let i = 0; i < 60; i++) {
      const outer = r.int(1, 5), h = r.int(1, 9), w = r.int(1, 9), sy = spec(r, h), sx = spec(r, w);
      const ty = axisTaps(sy, round, false, false), tx = axisTaps(sx, round, false, false);
      const n = outer * h * w, kind = r.pick(['float32', 'int32', 'string']);
      const src = kind === 'float32' ? randomF32([n], r).data : kind === 'int32' ? Int32Array.from({ length: n }, () => r.int(-99, 99)) : Array.from({ length: n }, (_, k) => `s${k}`);
      const make = (len: number) => (kind === 'float32' ? new Float32Array(len) : kind === 'int32' ? new Int32Array(len) : new Array<string>(len).fill(''));
      const mid = make(outer * sy.outLen * w), want = make(outer * sy.outLen * sx.outLen), got = make(want.length);
      gatherAxis(src, outer, h, w, ty, 0, mid);
      gatherAxis(mid, outer * sy.outLen, w, 1, tx, 0, want);
      nearestPlanes(src, outer, h, w, ty.idx, tx.idx, got);
      expect([...got], `${kind} ${outer}x${h}x${w} -> ${sy.outLen}x${sx.outLen}`).toEqual([...want]);
    }
  });

  it('weightedPlanes equals two resampleAxis passes, linear and cubic, with an identity axis', () => {
    const r = rng(52);
    for (let i = 0; i < 60; i++) {
      const outer = r.int(1, 4), h = r.int(1, 9), w = r.int(1, 9), sy = spec(r, h), sx = spec(r, w);
      const f: Filter = r.next() < 0.5 ? { radius: 1, weight: linearWeight } : { radius: 2, weight: cubicWeight(-0.75) };
      const exclude = r.next() < 0.3, keep = r.int(0, 2); // keep: 1 leaves rows alone, 2 leaves columns alone
      const ty = keep === 1 ? identityTaps(h) : axisTaps(sy, f, false, exclude), tx = keep === 2 ? identityTaps(w) : axisTaps(sx, f, false, exclude);
      const oh = ty.outside.length, ow = tx.outside.length, src = randomF32([outer * h * w], r).data;
      const want = resampleAxis(resampleAxis(Float64Array.from(src), outer, h, w, ty, 0), outer * oh, w, 1, tx, 0);
      const got = new Float32Array(outer * oh * ow);
      weightedPlanes(src, outer, h, w, ty, tx, got);
      // Taps whose weights all fall outside (exclude_outside far off the input) are NaN in both.
      for (let k = 0; k < got.length; k++) {
        if (Number.isNaN(want[k])) expect(got[k], `element ${k}`).toBeNaN();
        else expect(Math.abs(got[k] - want[k]), `element ${k}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want[k])));
      }
    }
  });

  it.each([
    ['nearest asymmetric floor x2, x4, x8 (feature pyramid)', { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, [2, 4, 8]],
    ['linear half_pixel x2', { mode: 'linear' }, [2]],
    ['linear align_corners x3', { mode: 'linear', coordinate_transformation_mode: 'align_corners' }, [3]],
    ['cubic x2', { mode: 'cubic' }, [2]],
    ['nearest half_pixel x0.5', { mode: 'nearest' }, [0.5]],
  ])('%s on [1, C, H, W] matches onnxruntime', async (_name, attrs, factors) => {
    const r = rng(53);
    for (const f of factors) {
      const x = randomF32([1, 5, 7, 9].map((d, i) => (i < 2 ? d : f < 1 ? 2 * d : d)), r);
      await expectMatchesOrt(resizeModel(x, { scales: [1, 1, f, f], attrs }), { x }, { atol: 1e-4 });
    }
  });
});

describe('Resize/Upsample shape inference', () => {
  it('keeps the rank and the axes left alone, and computes Upsample-7 sizes from its attribute', async () => {
    const meta = async (build: (g: GraphBuilder, x: string) => string, opset: number) => {
      const g = new GraphBuilder();
      g.output(build(g, g.input('x', 'float32', ['n', 3, 4, 'w'])), null);
      return (await InferenceSession.create(g.model({ opset }))).outputMetadata[0].shape;
    };
    expect(await meta((g, x) => g.node('Resize', [x, '', '', g.init('s', i64([2], [5, 6]))], { axes: [2, 3] })[0], 19)).toEqual(['n', 3, '', '']);
    expect(await meta((g, x) => g.node('Resize', [x, '', g.init('s', f32([4], [1, 1, 2, 2]))])[0], 13)).toEqual(['', '', '', '']);
    expect(await meta((g, x) => g.node('Upsample', [x], { scales: floats([1, 1, 2, 2]) })[0], 7)).toEqual(['n', 3, 8, '']);
  });
});

function legacyModel(op: string, x: NdArray, scales: number[], mode: string, opset: number) {
  const g = new GraphBuilder();
  const ins = [g.input('x', x.dtype, [...x.shape])];
  if (opset >= 9) ins.push(g.init('scales', f32([scales.length], scales)));
  g.output(g.node(op, ins, opset >= 9 ? { mode } : { mode, scales: floats(scales) })[0], x.dtype);
  return g.model({ opset });
}

describe('Upsample and opset 10 Resize', () => {
  it('match onnxruntime: asymmetric, truncating nearest (ceiling when downscaling), clamped linear', async () => {
    const r = rng(51);
    for (let i = 0; i < 16; i++) {
      const x = randomF32([1, 2, r.int(1, 5), r.int(1, 5)], r), mode = r.pick(['nearest', 'linear']);
      const up = [1, 1, r.pick([1, 1.5, 2, 3]), r.pick([1, 2, 2.5])];
      const [op, opset] = r.pick<[string, number]>([['Upsample', 7], ['Upsample', 9], ['Resize', 10]]);
      const scales = op === 'Resize' ? [1, 1, r.pick([0.5, 0.75, 1, 2]), r.pick([0.4, 1, 1.5])] : up;
      await expectMatchesOrt(legacyModel(op, x, scales, mode, opset), { x }, { atol: 1e-4 });
    }
  });
});
