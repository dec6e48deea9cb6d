// Data-movement ops against onnxruntime-node over randomised shapes, dtypes and attributes.
import { describe, expect, it } from 'vitest';
import type { DType } from '../engine/dtype.js';
import type { Dim } from '../engine/graph.js';
import { NdArray } from '../engine/tensor.js';
import { InferenceSession, Tensor } from '../index.js';
import { GraphBuilder, i64, type AttrInput } from '../loaders/builder.js';
import { expectMatchesOrt, rng } from './helpers/oracle.js';

type Rng = ReturnType<typeof rng>;
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

function rand(dtype: DType, shape: number[], r: Rng): NdArray {
  const n = prod(shape), ints = () => Array.from({ length: n }, () => r.int(-50, 50));
  switch (dtype) {
    case 'string': return new NdArray(dtype, shape, ints().map((v) => `s${v}`));
    case 'bool': return new NdArray(dtype, shape, Uint8Array.from(ints(), (v) => Number(v > 0)));
    case 'int64': return new NdArray(dtype, shape, BigInt64Array.from(ints(), BigInt));
    case 'int32': return new NdArray(dtype, shape, Int32Array.from(ints()));
    case 'uint8': return new NdArray(dtype, shape, Uint8Array.from(ints(), (v) => v + 50));
    case 'float64': return new NdArray(dtype, shape, Float64Array.from(ints(), (v) => v / 7));
    default: return new NdArray(dtype, shape, Float32Array.from(ints(), (v) => v / 3));
  }
}

/** One-node model whose inputs are all graph inputs (undefined = omitted optional input). */
function model(op: string, ins: (NdArray | undefined)[], attrs: Record<string, AttrInput> = {}, outputs = 1, opset = 18, dims?: Dim[][]) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = ins.map((t, i) => (t ? ((feeds[`in${i}`] = t), g.input(`in${i}`, t.dtype, dims?.[i] ?? [...t.shape])) : ''));
  for (const o of g.node(op, names, attrs, outputs)) g.output(o, null);
  return { bytes: g.model({ opset }), feeds };
}

const check = (op: string, ins: (NdArray | undefined)[], attrs: Record<string, AttrInput> = {}, outputs = 1, opset = 18) => {
  const m = model(op, ins, attrs, outputs, opset);
  return expectMatchesOrt(m.bytes, m.feeds);
};

async function ours(op: string, ins: (NdArray | undefined)[], attrs: Record<string, AttrInput> = {}, opset = 18, dims?: Dim[][]) {
  const m = model(op, ins, attrs, 1, opset, dims), s = await InferenceSession.create(m.bytes);
  return { out: s.runValues(new Map(Object.entries(m.feeds)))[0] as NdArray, type: s.outputMetadata[0].typeInfo };
}

async function rejects(op: string, ins: NdArray[], attrs: Record<string, AttrInput>, message: RegExp, opset = 18, outputs = 1) {
  const m = model(op, ins, attrs, outputs, opset), s = await InferenceSession.create(m.bytes);
  const feeds = Object.fromEntries(Object.entries(m.feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)]));
  await expect(s.run(feeds)).rejects.toThrow(message);
}

const DTYPES: DType[] = ['float32', 'int64', 'int32', 'uint8', 'bool', 'string', 'float64'];
const shapeOf = (r: Rng, rank: number, lo = 0, hi = 4) => Array.from({ length: rank }, () => r.int(lo, hi));
const perm = (r: Rng, n: number) => { const p = [...Array(n).keys()]; for (let i = n - 1; i > 0; i--) { const j = r.int(0, i); [p[i], p[j]] = [p[j], p[i]]; } return p; };

describe('Transpose', () => {
  it('matches ORT on random ranks, shapes, perms and dtypes', async () => {
    const r = rng(11);
    for (let t = 0; t < 30; t++) {
      const rank = r.int(0, 5), x = rand(r.pick(DTYPES), shapeOf(r, rank), r);
      await check('Transpose', [x], t % 5 === 0 ? {} : { perm: perm(r, rank) });
    }
  });
  it('tiles large matrices and keeps contiguous inner blocks', async () => {
    const r = rng(12);
    await check('Transpose', [rand('float32', [67, 45], r)]);
    await check('Transpose', [rand('float32', [3, 40, 33, 2], r)], { perm: [0, 2, 1, 3] });
    await check('Transpose', [rand('int64', [5, 1, 37, 1, 41], r)], { perm: [4, 1, 2, 3, 0] });
  });
});

describe('Concat / Split', () => {
  it('concatenates random shapes on every axis, including empty inputs', async () => {
    const r = rng(21);
    for (let t = 0; t < 20; t++) {
      const rank = r.int(1, 4), base = shapeOf(r, rank, 1, 3), ax = r.int(-rank, rank - 1), dtype = r.pick(DTYPES);
      const xs = Array.from({ length: r.int(1, 4) }, () => rand(dtype, base.map((d, i) => (i === (ax + rank) % rank ? r.int(0, 3) : d)), r));
      await check('Concat', xs, { axis: ax });
    }
  });
  it('splits by attribute (opset 11), input (13), num_outputs (18) and equal parts', async () => {
    const r = rng(22), x = rand('float32', [6, 7], r);
    await check('Split', [x], { axis: 1, split: [2, 0, 5] }, 3, 11);
    await check('Split', [x, i64([3], [1, 4, 2])], { axis: -1 }, 3, 13);
    await check('Split', [x], { axis: 1, num_outputs: 3 }, 3, 18);
    await check('Split', [rand('string', [6, 2], r)], {}, 3, 13);
    await rejects('Split', [x], { axis: 1 }, /does not split evenly/, 13, 3);
  });
});

describe('Slice', () => {
  it('matches ORT for random starts, ends, axes and steps (clamping, negatives)', async () => {
    const r = rng(31);
    for (let t = 0; t < 40; t++) {
      const rank = r.int(1, 4), shape = shapeOf(r, rank, 0, 6), x = rand(r.pick(DTYPES), shape, r);
      const axes = perm(r, rank).slice(0, r.int(1, rank)).map((a) => (r.next() < 0.3 ? a - rank : a));
      const starts = axes.map(() => r.int(-8, 8)), ends = axes.map(() => r.pick([r.int(-8, 8), 2 ** 62, -(2 ** 62)]));
      const steps = axes.map(() => r.pick([1, 2, 3, -1, -2]));
      await check('Slice', [x, i64([axes.length], starts), i64([axes.length], ends), i64([axes.length], axes), i64([axes.length], steps)]);
    }
  });
  it('reads starts and ends from attributes at opset 9', async () => {
    await check('Slice', [rand('float32', [4, 5], rng(32))], { starts: [1, -3], ends: [1000, -1], axes: [0, 1] }, 1, 9);
  });
  it('rejects a zero step', async () => {
    const x = rand('float32', [4], rng(33));
    await rejects('Slice', [x, i64([1], [0]), i64([1], [3]), i64([1], [0]), i64([1], [0])], {}, /step for axis 0 is 0/);
  });
});

describe('Expand / Tile', () => {
  it('expands with bidirectional broadcasting', async () => {
    const r = rng(41);
    for (let t = 0; t < 15; t++) {
      const rank = r.int(0, 4), shape = shapeOf(r, rank, 1, 3).map((d) => (r.next() < 0.4 ? 1 : d));
      const target = [...(r.next() < 0.5 ? [r.int(1, 3)] : []), ...shape.map((d) => (d === 1 ? r.int(0, 3) : r.pick([1, d])))];
      await check('Expand', [rand(r.pick(DTYPES), shape, r), i64([target.length], target)]);
    }
  });
  it('tiles with random repeats, including zero', async () => {
    const r = rng(42);
    for (let t = 0; t < 15; t++) {
      const rank = r.int(1, 4), x = rand(r.pick(DTYPES), shapeOf(r, rank, 0, 3), r);
      await check('Tile', [x, i64([rank], shapeOf(r, rank, 0, 3))]);
    }
  });
});

describe('Pad', () => {
  it('constant mode with growing and cropping pads', async () => {
    const r = rng(51);
    for (let t = 0; t < 15; t++) {
      const rank = r.int(1, 4), shape = shapeOf(r, rank, 1, 4), dtype = r.pick(['float32', 'int64', 'int32'] as DType[]);
      const pads = [...shape, ...shape].map((d) => r.int(-Math.floor(d / 2), 3));
      const cv = dtype === 'int64' ? i64([], [7]) : rand(dtype, [], r);
      await check('Pad', [rand(dtype, shape, r), i64([pads.length], pads), cv]);
    }
  });
  it('reflect, edge and wrap modes', async () => {
    const r = rng(52);
    for (const mode of ['reflect', 'edge', 'wrap']) {
      for (let t = 0; t < 8; t++) {
        const rank = r.int(1, 3), shape = shapeOf(r, rank, 2, 5);
        const pads = [...shape, ...shape].map((d) => r.int(0, d - 1));
        await check('Pad', [rand('float32', shape, r), i64([pads.length], pads)], { mode }, 1, 19);
      }
    }
  });
  it('pads selected axes (opset 18) and reads attributes (opset 2)', async () => {
    const r = rng(53), x = rand('float32', [2, 3, 4], r);
    await check('Pad', [x, i64([4], [1, 2, 0, 1]), undefined, i64([2], [-1, 0])], {}, 1, 18);
    await check('Pad', [x], { pads: [0, 1, 1, 1, 0, 2], value: 1.5 }, 1, 2);
  });
});

describe('DepthToSpace / SpaceToDepth', () => {
  it('round-trips blocks in both modes', async () => {
    const r = rng(61);
    for (const mode of ['DCR', 'CRD']) await check('DepthToSpace', [rand('float32', [2, 8, 3, 2], r)], { blocksize: 2, mode });
    await check('SpaceToDepth', [rand('float32', [1, 3, 6, 9], r)], { blocksize: 3 });
  });
});

describe('CenterCropPad / ReverseSequence / Trilu', () => {
  it('crops and pads around the centre', async () => {
    const r = rng(71), x = rand('float32', [5, 4, 3], r);
    await check('CenterCropPad', [x, i64([3], [3, 7, 3])]);
    await check('CenterCropPad', [x, i64([2], [2, 6])], { axes: [-3, 1] });
  });
  it('reverses sequences on either axis layout', async () => {
    const r = rng(72);
    await check('ReverseSequence', [rand('float32', [4, 3, 2], r), i64([3], [4, 1, 2])], { time_axis: 0, batch_axis: 1 }, 1, 10);
    await check('ReverseSequence', [rand('int64', [3, 5], r), i64([3], [0, 5, 3])], { time_axis: 1, batch_axis: 0 }, 1, 10);
  });
  it('keeps upper or lower triangles for random k', async () => {
    const r = rng(73);
    for (let t = 0; t < 12; t++) {
      const x = rand(r.pick(['float32', 'int64', 'int32'] as DType[]), [r.int(1, 2), r.int(1, 5), r.int(1, 5)], r);
      await check('Trilu', [x, i64([], [r.int(-5, 5)])], { upper: r.int(0, 1) }, 1, 14);
    }
  });
});

describe('narrow floats, complex guard and inference', () => {
  it('moves float16 and bfloat16 values bit for bit', async () => {
    const r = rng(81), x = rand('float32', [2, 3, 4], r), v = Float32Array.from(x.data as Float32Array, (a) => a * 0.75);
    for (const dtype of ['float16', 'bfloat16'] as DType[]) {
      const h = new NdArray(dtype, x.shape, v);
      for (const [op, extra, attrs] of [['Transpose', [], { perm: [2, 0, 1] }], ['Pad', [i64([6], [1, 0, 2, 0, 1, 1])], { mode: 'reflect' }], ['Tile', [i64([3], [2, 1, 2])], {}]] as const) {
        const want = (await ours(op, [new NdArray('float32', x.shape, v), ...extra], attrs)).out, got = (await ours(op, [h, ...extra], attrs)).out;
        expect([got.dtype, got.shape, Array.from(got.data as Float32Array)]).toEqual([dtype, want.shape, Array.from(want.data as Float32Array)]);
      }
    }
  });
  it('refuses complex tensors rather than moving half of each element', async () => {
    await expect(ours('Transpose', [new NdArray('complex64', [2, 2], new Float32Array(8))])).rejects.toThrow(/Transpose.*dtype complex64 is not supported/);
  });
  it('keeps symbolic dims where the op allows', async () => {
    const x = rand('float32', [2, 3, 4], rng(82)), t = (shape: Dim[]) => ({ kind: 'tensor', dtype: 'float32', shape });
    expect((await ours('Transpose', [x], { perm: [2, 0, 1] }, 18, [['N', 'C', 4]])).type).toEqual(t([4, 'N', 'C']));
    expect((await ours('Concat', [x, x], { axis: 2 }, 18, [['N', 3, 4], ['N', 3, 4]])).type).toEqual(t(['N', 3, 8]));
    expect((await ours('Pad', [x], { pads: [0, 1, 0, 0, 1, 0] }, 2, [['N', 3, 4]])).type).toEqual(t(['N', 5, 4]));
    expect((await ours('Slice', [x], { starts: [1], ends: [3], axes: [-1] }, 9, [['N', 3, 4]])).type).toEqual(t(['N', 3, 2]));
    expect((await ours('DepthToSpace', [rand('float32', [1, 4, 2, 2], rng(83))], { blocksize: 2 }, 18, [['N', 4, 'H', 2]])).type).toEqual(t(['N', 1, null, 4]));
  });
});
