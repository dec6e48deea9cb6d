import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../index.js';
import { GraphBuilder, f32, i64 } from '../loaders/builder.js';
import { NdArray } from '../engine/tensor.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

const bool = (v: boolean) => new NdArray('bool', [], Uint8Array.of(v ? 1 : 0));
const run = async (bytes: Uint8Array, feeds: Record<string, NdArray>) => {
  const s = await InferenceSession.create(bytes);
  return s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)])));
};

describe('If', () => {
  it.each([true, false])('picks a branch (cond %s); branches read the outer scope and differ in shape', async (c) => {
    const r = rng(c ? 1 : 2), g = new GraphBuilder();
    const cond = g.input('cond', 'bool', []), x = g.input('x', 'float32', [2, 3]), y = g.input('y', 'float32', [3]);
    const then = new GraphBuilder('then');
    then.output(then.node('Add', [x, y], {}, ['t'])[0], 'float32', [2, 3]);
    const els = new GraphBuilder('else');
    // A nested If in the else branch, on a condition computed from outer values.
    const inner = new GraphBuilder('inner'), innerElse = new GraphBuilder('inner_else');
    inner.output(inner.node('Mul', [y, y], {}, ['m'])[0], 'float32', [3]);
    innerElse.output(innerElse.node('Sub', [y, y], {}, ['s'])[0], 'float32', [3]);
    const gt = els.node('Greater', [els.node('ReduceSum', [x], { keepdims: 0 })[0], els.init('zero', f32([], [0]))])[0];
    els.output(els.node('If', [gt], { then_branch: inner, else_branch: innerElse }, ['e'])[0], 'float32', [3]);
    g.output(g.node('If', [cond], { then_branch: then, else_branch: els }, ['out'])[0], 'float32');
    await expectMatchesOrt(g.model({ opset: 13 }), { cond: bool(c), x: randomF32([2, 3], r), y: randomF32([3], r) });
  });

  it('infers the dims both branches agree on', async () => {
    const g = new GraphBuilder();
    const cond = g.input('cond', 'bool', []), x = g.input('x', 'float32', ['n', 4]);
    const a = new GraphBuilder('a'), b = new GraphBuilder('b');
    a.output(a.node('Relu', [x], {}, ['ra'])[0], 'float32', ['n', 4]);
    b.output(b.node('Relu', [x], {}, ['rb'])[0], 'float32', ['m', 4]);
    g.output(g.node('If', [cond], { then_branch: a, else_branch: b }, ['out'])[0], 'float32');
    const s = await InferenceSession.create(g.model({ opset: 13 }));
    expect(s.outputMetadata[0].shape).toEqual(['', 4]); // '' is the session's spelling of an unknown dim
  });
});

/** Loop body: acc += x * i; keeps going while sum(acc) < limit; scans out acc and i. */
function loopModel(withM: boolean, withCond: boolean, opset = 13) {
  const g = new GraphBuilder();
  const m = withM ? g.input('M', 'int64', []) : '', cond = withCond ? g.input('cond', 'bool', []) : '';
  const x = g.input('x', 'float32', [3]), acc0 = g.input('acc0', 'float32', [3]), limit = g.input('limit', 'float32', []);
  const body = new GraphBuilder('body');
  const i = body.input('i', 'int64', []), cin = body.input('cond_in', 'bool', []), acc = body.input('acc', 'float32', [3]);
  const fi = body.node('Cast', [i], { to: 1 })[0];
  const next = body.node('Add', [acc, body.node('Mul', [x, fi])[0]], {}, ['acc_out'])[0];
  body.node('Less', [body.node('ReduceSum', [next], { keepdims: 0 })[0], limit], {}, ['cond_out']);
  body.node('Identity', [cin], {}, ['unused']);
  body.output('cond_out', 'bool', []);
  body.output(next, 'float32', [3]);
  body.output(body.node('Identity', [acc], {}, ['scan_acc'])[0], 'float32', [3]);
  body.output(body.node('Identity', [i], {}, ['scan_i'])[0], 'int64', []);
  const outs = g.node('Loop', [m, cond, acc0], { body }, ['final', 'accs', 'iters']);
  outs.forEach((o, k) => g.output(o, k === 2 ? 'int64' : 'float32'));
  return g.model({ opset });
}

describe('Loop', () => {
  it.each(Array.from({ length: 10 }, (_, i) => i + 1))('trip count and condition, random case %i', async (seed) => {
    const r = rng(seed * 13), withM = seed % 3 !== 0, withCond = seed % 2 === 0;
    const feeds: Record<string, NdArray> = { x: randomF32([3], r, 0, 1), acc0: randomF32([3], r), limit: f32([], [r.float(0, withM ? 30 : 10)]) };
    if (withM) feeds.M = i64([], [r.int(0, 6)]);
    if (withCond) feeds.cond = bool(r.next() < 0.8);
    await expectMatchesOrt(loopModel(withM, withCond), feeds);
  });

  it('zero iterations give the initial values and empty scan outputs of the declared shape', async () => {
    const feeds = { M: i64([], [0]), x: randomF32([3]), acc0: randomF32([3]), limit: f32([], [5]) };
    await expectMatchesOrt(loopModel(true, false), feeds);
    const out = await run(loopModel(true, false), feeds);
    expect((out.accs as Tensor).dims).toEqual([0, 3]);
  });

  it('carries a sequence built up over the iterations', async () => {
    const g = new GraphBuilder();
    const m = g.input('M', 'int64', []), x = g.input('x', 'float32', [4]);
    const body = new GraphBuilder('body');
    // The builder only declares tensor types; sequence-typed body values are written as raw ValueInfos.
    const seqOfFloat = (name: string) => ({ name, type: { sequence_type: { elem_type: { tensor_type: { elem_type: 1 } } } } });
    const i = body.input('i', 'int64', []), c = body.input('c', 'bool', []);
    body.inputs.push(seqOfFloat('s'));
    const scaled = body.node('Mul', [x, body.node('Cast', [i], { to: 1 })[0]])[0];
    body.output(body.node('Identity', [c], {}, ['c_out'])[0], 'bool', []);
    body.node('SequenceInsert', ['s', scaled], {}, ['s_out']);
    body.outputs.push(seqOfFloat('s_out'));
    const [seq] = g.node('Loop', [m, '', g.node('SequenceEmpty', [])[0]], { body }, 1);
    g.output(g.node('ConcatFromSequence', [seq], { axis: 0, new_axis: 1 })[0], 'float32');
    await expectMatchesOrt(g.model({ opset: 13 }), { M: i64([], [4]), x: randomF32([4], rng(9)) });
  });

  it('refuses an absurd trip count with a clear error', async () => {
    const feeds = { M: i64([], [2 ** 33]), x: f32([3], [0, 0, 0]), acc0: f32([3], [0, 0, 0]), limit: f32([], [1]) };
    await expect(run(loopModel(true, false), feeds)).rejects.toThrow(/trip count M = 8589934592 exceeds 2\^31/);
  });
});

interface ScanCase { opset: number; len: number; inAxes: number[]; inDirs: number[]; outAxes: number[]; outDirs: number[] }

/** Scan with a running-sum state over two scan inputs; outputs the sums and each element times the sum. */
function scanModel(c: ScanCase, shapes: number[][]) {
  const g = new GraphBuilder(), elem = shapes.map((s, k) => s.filter((_, i) => i !== (c.inAxes[k] + s.length) % s.length));
  const s0 = g.input('s0', 'float32', elem[0]), a = g.input('a', 'float32', shapes[0]), b = g.input('b', 'float32', shapes[1]);
  const body = new GraphBuilder('body');
  const st = body.input('st', 'float32', elem[0]), ea = body.input('ea', 'float32', elem[0]), eb = body.input('eb', 'float32', elem[1]);
  const sum = body.node('Add', [body.node('Add', [st, ea])[0], eb], {}, ['st_out'])[0];
  body.output(sum, 'float32', elem[0]);
  body.output(body.node('Mul', [ea, sum], {}, ['o1'])[0], 'float32', elem[0]);
  body.output(body.node('Identity', [eb], {}, ['o2'])[0], 'float32', elem[1]);
  const attrs = { body, num_scan_inputs: 2, scan_input_axes: c.inAxes, scan_input_directions: c.inDirs, scan_output_axes: c.outAxes, scan_output_directions: c.outDirs };
  g.node('Scan', [s0, a, b], attrs, ['final', 'y1', 'y2']).forEach((o) => g.output(o, 'float32'));
  return g.model({ opset: c.opset });
}

describe('Scan', () => {
  it.each(Array.from({ length: 12 }, (_, i) => i + 1))('axes and directions, random case %i', async (seed) => {
    const r = rng(seed * 17), len = r.int(1, 5), rank = r.int(1, 3);
    const elem = Array.from({ length: rank - 1 }, () => r.int(1, 3));
    const inAxes = [r.int(-rank, rank - 1), r.int(-rank, rank - 1)];
    const shapes = inAxes.map((ax) => { const s = [...elem]; s.splice((ax + rank) % rank, 0, len); return s; });
    const c: ScanCase = { opset: r.pick([9, 11, 16]), len, inAxes, inDirs: [r.int(0, 1), r.int(0, 1)], outAxes: [r.int(-rank, rank - 1), r.int(-rank, rank - 1)], outDirs: [r.int(0, 1), r.int(0, 1)] };
    await expectMatchesOrt(scanModel(c, shapes), { s0: randomF32(elem, r), a: randomF32(shapes[0], r), b: randomF32(shapes[1], r) });
  });

  it('opset 8: batch axis, per-row sequence lengths and a reversed input', async () => {
    const r = rng(21), g = new GraphBuilder();
    const lens = g.input('lens', 'int64', [3]), s0 = g.input('s0', 'float32', [3, 2]), x = g.input('x', 'float32', [3, 4, 2]);
    const body = new GraphBuilder('body');
    const st = body.input('st', 'float32', [2]), e = body.input('e', 'float32', [2]), e2 = body.input('e2', 'float32', [2]);
    const next = body.node('Add', [body.node('Add', [st, e])[0], body.node('Mul', [e2, e2])[0]], {}, ['st_out'])[0];
    body.output(next, 'float32', [2]);
    body.output(body.node('Identity', [next], {}, ['o'])[0], 'float32', [2]);
    g.node('Scan', [lens, s0, x, x], { body, num_scan_inputs: 2, directions: [0, 1] }, ['final', 'y']).forEach((o) => g.output(o, 'float32'));
    const feeds = { lens: i64([3], [4, 2, 3]), s0: randomF32([3, 2], r), x: randomF32([3, 4, 2], r) };
    await expectMatchesOrt(g.model({ opset: 8 }), feeds);
  });
});
