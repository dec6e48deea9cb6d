// GridSample, AffineGrid, RoiAlign, MaxRoiPool, NonMaxSuppression, Col2Im and DeformConv against
// onnxruntime-node over random cases, plus hand-checked cases for what onnxruntime does not cover.
import { describe, expect, it } from 'vitest';
import type { DType } from '../engine/dtype.js';
import { NdArray, toNdArray, toTensor } from '../engine/tensor.js';
import { GraphBuilder, f32, float, i64, type AttrInput } from '../loaders/builder.js';
import { InferenceSession, Tensor } from '../index.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

type R = ReturnType<typeof rng>;
type In = [string, NdArray | undefined, 'init'?];

function oneNode(op: string, ins: In[], attrs: Record<string, AttrInput>, out: DType, opset: number) {
  const g = new GraphBuilder();
  const names = ins.map(([n, t, how]) => (!t ? '' : how === 'init' ? g.init(n, t) : g.input(n, t.dtype, [...t.shape])));
  g.node(op, names, attrs, ['y']);
  g.output('y', out);
  const feeds = Object.fromEntries(ins.filter(([, t, how]) => t && how !== 'init').map(([n, t]) => [n, t!]));
  return { bytes: g.model({ opset }), feeds };
}

async function runOurs(m: { bytes: Uint8Array; feeds: Record<string, NdArray> }): Promise<NdArray> {
  const s = await InferenceSession.create(m.bytes);
  const out = await s.run(Object.fromEntries(Object.entries(m.feeds).map(([k, v]) => [k, toTensor(v)])));
  return toNdArray(Object.values(out)[0] as Tensor);
}

const values = (t: NdArray) => Array.from(t.data as Float32Array, (v) => Math.round(v * 1e4) / 1e4);

describe('GridSample', () => {
  const combos = (modes: string[]) => modes.flatMap((mode) => ['zeros', 'border', 'reflection'].flatMap((pad) => [0, 1].map((ac) => [mode, pad, ac] as const)));

  // onnxruntime 1.30 does not clamp the coordinate before bicubic border sampling (the ONNX reference
  // does, and so does this engine), so that pair is checked by hand below instead.
  const opset16 = combos(['bilinear', 'nearest', 'bicubic']).filter(([m, p]) => m !== 'bicubic' || p !== 'border');
  it.each(opset16)('opset 16 %s %s align_corners=%i', async (mode, padding_mode, align_corners) => {
    const r = rng(mode.length * 10 + padding_mode.length + align_corners);
    const m = oneNode('GridSample', [['X', randomF32([2, 3, 5, 6], r)], ['G', randomF32([2, 4, 7, 2], r, -1.4, 1.4)]], { mode, padding_mode, align_corners }, 'float32', 16);
    await expectMatchesOrt(m.bytes, m.feeds);
  });

  it.each(combos(['linear', 'nearest']))('opset 20 5-D %s %s align_corners=%i', async (mode, padding_mode, align_corners) => {
    const r = rng(mode.length * 20 + padding_mode.length + align_corners);
    const m = oneNode('GridSample', [['X', randomF32([1, 2, 3, 4, 5], r)], ['G', randomF32([1, 2, 3, 4, 3], r, -1.3, 1.3)]], { mode, padding_mode, align_corners }, 'float32', 20);
    await expectMatchesOrt(m.bytes, m.feeds);
  });

  it('opset 20 4-D cubic and a grid far outside (reflection folds many times)', async () => {
    const r = rng(4);
    let m = oneNode('GridSample', [['X', randomF32([1, 2, 4, 4], r)], ['G', randomF32([1, 3, 3, 2], r)]], { mode: 'cubic' }, 'float32', 20);
    await expectMatchesOrt(m.bytes, m.feeds);
    m = oneNode('GridSample', [['X', randomF32([1, 1, 3, 4], r)], ['G', randomF32([1, 5, 5, 2], r, -9, 9)]], { padding_mode: 'reflection' }, 'float32', 20);
    await expectMatchesOrt(m.bytes, m.feeds);
  });

  it('bicubic border clamps the coordinate first: far left reads the edge column exactly', async () => {
    const x = f32([1, 1, 2, 4], [0, 1, 4, 9, 0, 1, 4, 9]);
    for (const align_corners of [0, 1]) {
      const y = await runOurs(oneNode('GridSample', [['X', x], ['G', f32([1, 1, 2, 2], [-1.6, -1, 3, 1])]], { mode: 'bicubic', padding_mode: 'border', align_corners }, 'float32', 16));
      expect(values(y)).toEqual([0, 9]);
    }
  });

  it('1-D linear, integer input truncates, 3-D cubic border by hand', async () => {
    const x = f32([1, 1, 4], [0, 10, 20, 30]);
    expect(values(await runOurs(oneNode('GridSample', [['X', x], ['G', f32([1, 3, 1], [-1, 0, 0.5])]], { align_corners: 1 }, 'float32', 20)))).toEqual([0, 15, 22.5]);
    const xi = new NdArray('int32', [1, 1, 4], Int32Array.of(0, 10, 20, 30));
    expect(values(await runOurs(oneNode('GridSample', [['X', xi], ['G', f32([1, 2, 1], [-0.1, 0.3])]], { align_corners: 1 }, 'int32', 20)))).toEqual([13, 19]);
    // A constant volume stays constant under cubic interpolation with border padding, anywhere.
    const c = new NdArray('float32', [1, 1, 3, 3, 3], new Float32Array(27).fill(2.5));
    const y = await runOurs(oneNode('GridSample', [['X', c], ['G', randomF32([1, 2, 2, 2, 3], rng(9), -2, 2)]], { mode: 'cubic', padding_mode: 'border' }, 'float32', 20));
    expect(values(y)).toEqual(new Array(8).fill(2.5));
  });

  it('rejects a grid of the wrong rank and old mode names at opset 20', async () => {
    const x = randomF32([1, 1, 4, 4]);
    await expect(runOurs(oneNode('GridSample', [['X', x], ['G', randomF32([1, 2, 2, 3])]], {}, 'float32', 20))).rejects.toThrow(/expected \[1, 2 output dims, 2\]/);
    await expect(runOurs(oneNode('GridSample', [['X', x], ['G', randomF32([1, 2, 2, 2])]], { mode: 'bilinear' }, 'float32', 20))).rejects.toThrow(/should be one of linear, nearest, cubic/);
  });
});

describe('AffineGrid', () => {
  it.each([[2, 0], [2, 1], [3, 0], [3, 1]])('%i-D align_corners=%i', async (rank, align_corners) => {
    const r = rng(rank * 2 + align_corners), size = rank === 2 ? [2, 3, 5, 7] : [2, 3, 4, 5, 6];
    const m = oneNode('AffineGrid', [['theta', randomF32([2, rank, rank + 1], r)], ['size', i64([size.length], size), 'init']], { align_corners }, 'float32', 20);
    await expectMatchesOrt(m.bytes, m.feeds);
  });

  it('identity theta gives the base grid; a single pixel sits at 0 or -1', async () => {
    const id = f32([1, 2, 3], [1, 0, 0, 0, 1, 0]);
    expect(values(await runOurs(oneNode('AffineGrid', [['t', id], ['s', i64([4], [1, 1, 1, 2])]], {}, 'float32', 20)))).toEqual([-0.5, 0, 0.5, 0]);
    expect(values(await runOurs(oneNode('AffineGrid', [['t', id], ['s', i64([4], [1, 1, 1, 2])]], { align_corners: 1 }, 'float32', 20)))).toEqual([-1, -1, 1, -1]);
  });
});

/** Random RoIs inside (and partly outside) an h x w map, corners ordered. */
function randomRois(r: R, count: number, h: number, w: number, scale: number) {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const x1 = r.float(-1, w / scale), y1 = r.float(-1, h / scale);
    out.push(x1, y1, x1 + r.float(0.2, w / scale), y1 + r.float(0.2, h / scale));
  }
  return f32([count, 4], out);
}

describe('RoiAlign', () => {
  it.each([
    ['avg', 'half_pixel', 0, 1], ['avg', 'output_half_pixel', 2, 0.5], ['max', 'half_pixel', 2, 1], ['max', 'output_half_pixel', 0, 0.25], ['avg', 'half_pixel', 3, 0.5],
  ] as const)('%s %s sampling_ratio=%i spatial_scale=%d', async (mode, coordinate_transformation_mode, sampling_ratio, spatial_scale) => {
    const r = rng(mode.length + sampling_ratio * 7 + spatial_scale * 8);
    const x = randomF32([2, 3, 10, 8], r), rois = randomRois(r, 6, 10, 8, spatial_scale);
    const batch = i64([6], Array.from({ length: 6 }, () => r.int(0, 1)));
    const m = oneNode('RoiAlign', [['X', x], ['rois', rois], ['b', batch]],
      { mode, coordinate_transformation_mode, sampling_ratio, spatial_scale: float(spatial_scale), output_height: 3, output_width: 4 }, 'float32', 16);
    await expectMatchesOrt(m.bytes, m.feeds);
  });

  it('opset 10 has no coordinate mode and shifts nothing', async () => {
    const r = rng(10), x = randomF32([1, 2, 6, 6], r), rois = randomRois(r, 4, 6, 6, 1);
    const m = oneNode('RoiAlign', [['X', x], ['rois', rois], ['b', i64([4], [0, 0, 0, 0])]], { output_height: 2, output_width: 2 }, 'float32', 10);
    await expectMatchesOrt(m.bytes, m.feeds);
  });

  it('rejects a batch index outside the input', async () => {
    const m = oneNode('RoiAlign', [['X', randomF32([1, 1, 4, 4])], ['rois', f32([1, 4], [0, 0, 2, 2])], ['b', i64([1], [1])]], {}, 'float32', 16);
    await expect(runOurs(m)).rejects.toThrow(/batch index outside \[0, 1\)/);
  });
});

describe('MaxRoiPool', () => {
  it.each([[1, [2, 2]], [0.5, [3, 2]], [0.25, [1, 4]]] as [number, number[]][])('spatial_scale=%d pooled %j', async (spatial_scale, pooled_shape) => {
    const r = rng(pooled_shape[0] * 3 + pooled_shape[1]), x = randomF32([2, 3, 9, 7], r), rois: number[] = [];
    for (let i = 0; i < 5; i++) {
      const x1 = r.float(0, 7 / spatial_scale), y1 = r.float(0, 9 / spatial_scale);
      rois.push(r.int(0, 1), x1, y1, x1 + r.float(0, 6 / spatial_scale), y1 + r.float(0, 8 / spatial_scale));
    }
    const m = oneNode('MaxRoiPool', [['X', x], ['rois', f32([5, 5], rois)]], { pooled_shape, spatial_scale: float(spatial_scale) }, 'float32', 16);
    await expectMatchesOrt(m.bytes, m.feeds);
  });
});

/** Boxes with many overlaps: jittered copies of a few anchors, in either corner order or center form. */
function randomBoxes(r: R, batches: number, n: number, center: boolean) {
  const out: number[] = [];
  for (let i = 0; i < batches * n; i++) {
    const cx = r.int(0, 3) * 2 + r.float(-0.5, 0.5), cy = r.int(0, 3) * 2 + r.float(-0.5, 0.5), w = r.float(0.5, 3), h = r.float(0.5, 3);
    if (center) out.push(cx, cy, w, h);
    else if (r.next() < 0.5) out.push(cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2);
    else out.push(cy + h / 2, cx + w / 2, cy - h / 2, cx - w / 2);
  }
  return f32([batches, n, 4], out);
}

describe('NonMaxSuppression', () => {
  it.each([
    [0, 3, 0.5, 0.2], [1, 2, 0.3, undefined], [0, 100, 0, 0], [1, 1, 0.7, 0.5], [0, 0, 0.5, undefined],
  ] as [number, number, number, number | undefined][])('center_point_box=%i max=%i iou=%d score=%s', async (center, max, iou, score) => {
    const r = rng(center * 5 + max + iou * 10), batches = 2, classes = 3, n = 25;
    const scores = f32([batches, classes, n], Array.from({ length: batches * classes * n }, () => Math.round(r.float(0, 1) * 20) / 20));
    const m = oneNode('NonMaxSuppression', [['boxes', randomBoxes(r, batches, n, center === 1)], ['scores', scores],
      ['max', i64([1], [max]), 'init'], ['iou', f32([1], [iou]), 'init'], ['score', score === undefined ? undefined : f32([1], [score]), 'init']],
    { center_point_box: center }, 'int64', 11);
    await expectMatchesOrt(m.bytes, m.feeds);
  });

  it('without max_output_boxes_per_class selects nothing', async () => {
    const y = await runOurs(oneNode('NonMaxSuppression', [['b', randomBoxes(rng(2), 1, 4, false)], ['s', randomF32([1, 1, 4])]], {}, 'int64', 11));
    expect(y.shape).toEqual([0, 3]);
  });
});

describe('Col2Im', () => {
  it.each([
    [[5, 5], [2, 2], {}], [[6, 7], [3, 2], { strides: [2, 1], pads: [1, 0, 1, 2], dilations: [1, 2] }], [[4, 9], [1, 3], { strides: [1, 3] }],
  ] as [number[], number[], Record<string, number[]>][])('image %j block %j %j', async (image, block, attrs) => {
    const r = rng(image[0] * 3 + block[1]), s = attrs.strides ?? [1, 1], d = attrs.dilations ?? [1, 1], p = attrs.pads ?? [0, 0, 0, 0];
    const L = image.map((v, i) => Math.floor((v + p[i] + p[i + 2] - d[i] * (block[i] - 1) - 1) / s[i]) + 1).reduce((a, b) => a * b, 1);
    const m = oneNode('Col2Im', [['x', randomF32([2, 3 * block[0] * block[1], L], r)], ['img', i64([2], image), 'init'], ['blk', i64([2], block), 'init']], attrs, 'float32', 18);
    await expectMatchesOrt(m.bytes, m.feeds);
  });

  it('3-D images and int64 data by hand; rejects a wrong block count', async () => {
    const x = new NdArray('int64', [1, 2, 2], BigInt64Array.of(1n, 2n, 3n, 4n));
    const y = await runOurs(oneNode('Col2Im', [['x', x], ['i', i64([3], [1, 1, 3])], ['b', i64([3], [1, 1, 2])]], {}, 'int64', 18));
    expect(Array.from(y.data as BigInt64Array, Number)).toEqual([1, 5, 4]);
    const bad = oneNode('Col2Im', [['x', randomF32([1, 4, 5])], ['i', i64([2], [3, 3])], ['b', i64([2], [2, 2])]], {}, 'float32', 18);
    await expect(runOurs(bad)).rejects.toThrow(/has 5 blocks; image \[3,3\] with block \[2,2\].*gives \[2,2\] = 4/);
  });
});

describe('DeformConv', () => {
  it.each([
    [1, 1, false, false, {}], [2, 1, true, true, { pads: [1, 1, 1, 1] }], [1, 2, true, false, { strides: [2, 1], dilations: [1, 2] }], [2, 2, false, true, { pads: [0, 1, 2, 0] }],
  ] as [number, number, boolean, boolean, Record<string, number[]>][])('group %i offset_group %i bias %s mask %s %j', async (group, og, bias, mask, attrs) => {
    const r = rng(group * 4 + og * 2 + (bias ? 1 : 0) + (mask ? 8 : 0)), c = 4, m = 2 * group, k = [3, 2], inS = [7, 6];
    const s = attrs.strides ?? [1, 1], d = attrs.dilations ?? [1, 1], p = attrs.pads ?? [0, 0, 0, 0];
    const out = inS.map((v, i) => Math.floor((v + p[i] + p[i + 2] - d[i] * (k[i] - 1) - 1) / s[i]) + 1);
    const model = oneNode('DeformConv', [
      ['X', randomF32([2, c, ...inS], r)], ['W', randomF32([m, c / group, ...k], r)], ['offset', randomF32([2, og * 6 * 2, ...out], r, -2, 2)],
      ['B', bias ? randomF32([m], r) : undefined], ['mask', mask ? randomF32([2, og * 6, ...out], r, 0, 1) : undefined],
    ], { ...attrs, group, offset_group: og }, 'float32', 19);
    await expectMatchesOrt(model.bytes, model.feeds);
  });

  it('1-D by hand: a fractional offset interpolates, one past the input reads 0', async () => {
    const x = f32([1, 1, 4], [1, 2, 3, 4]), w = f32([1, 1, 2], [1, 10]);
    const y = await runOurs(oneNode('DeformConv', [['X', x], ['W', w], ['o', f32([1, 2, 3], [0, 0, 0, 0.5, 0, 10])]], {}, 'float32', 22));
    expect(values(y)).toEqual([1 + 10 * 2.5, 2 + 10 * 3, 3]);
  });
});
