import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../index.js';
import { GraphBuilder, i64 } from '../loaders/builder.js';
import { NdArray } from '../engine/tensor.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

// onnxruntime-node only exchanges tensors, so every graph here builds its sequences inside and ends in
// tensors (ConcatFromSequence, SequenceAt, SequenceLength).

const scalar = (g: GraphBuilder, name: string, v: number) => g.init(name, i64([], [v]));

/** A node with a TypeProto attribute, which the builder has no shorthand for. */
function typedNode(g: GraphBuilder, op: string, inputs: string[], output: string, elemType = 1) {
  g.nodes.push({ op_type: op, domain: '', name: `${op}_${g.nodes.length}`, input: inputs, output: [output], attribute: [{ name: 'type', type: 13, tp: { tensor_type: { elem_type: elemType } } }] });
  return output;
}

describe('sequence ops match onnxruntime', () => {
  it.each(Array.from({ length: 16 }, (_, i) => i + 1))('split, insert, erase, read back: random case %i', async (seed) => {
    const r = rng(seed * 31);
    const rank = r.int(1, 3), shape = Array.from({ length: rank }, () => r.int(1, 5));
    const axis = r.int(0, rank - 1), dim = shape[axis], mode = r.pick(['none', 'nokeep', 'scalar', 'list'] as const);
    const g = new GraphBuilder(), feeds: Record<string, NdArray> = { x: randomF32(shape, r) };
    const x = g.input('x', 'float32', shape);
    const splitIn: string[] = [];
    let n = dim;
    if (mode === 'scalar') { const k = r.int(1, dim); splitIn.push(scalar(g, 'split', k)); n = Math.ceil(dim / k); }
    if (mode === 'list') {
      const cuts: number[] = [];
      for (let left = dim; left > 0;) { const c = r.int(1, left); cuts.push(c); left -= c; }
      splitIn.push(g.init('split', i64([cuts.length], cuts))); n = cuts.length;
    }
    const keep = mode !== 'nokeep';
    const attrs = { axis: r.pick([axis, axis - rank]), ...(keep ? {} : { keepdims: 0 }) };
    const seq = g.node('SplitToSequence', [x, ...splitIn], attrs)[0];
    // The inserted tensor must fit the concatenation: x itself along the axis, or one item-shaped slice.
    const itemShape = keep ? shape : shape.filter((_, i) => i !== axis);
    feeds.t = keep ? feeds.x : randomF32(itemShape, r);
    const t = g.input('t', 'float32', itemShape);
    const ins = g.node('SequenceInsert', [seq, t, scalar(g, 'ipos', r.int(-n, n))])[0];
    const er = g.node('SequenceErase', [ins, scalar(g, 'epos', r.int(-(n + 1), n))])[0];
    g.output(g.node('ConcatFromSequence', [er], keep ? { axis: attrs.axis } : { axis: r.int(-rank, rank - 1), new_axis: 1 })[0], 'float32');
    g.output(g.node('SequenceLength', [er])[0], 'int64');
    g.output(g.node('SequenceAt', [er, scalar(g, 'apos', r.int(-n, n - 1))])[0], 'float32');
    await expectMatchesOrt(g.model({ opset: 17 }), feeds);
  });

  it('SequenceEmpty grows by inserts at the front and back', async () => {
    const g = new GraphBuilder();
    const a = g.input('a', 'int64', [2, 3]), b = g.input('b', 'int64', [2, 3]);
    let s = g.node('SequenceEmpty', [], { dtype: 7 })[0];
    s = g.node('SequenceInsert', [s, a])[0];
    s = g.node('SequenceInsert', [s, b, scalar(g, 'zero', 0)])[0];
    s = g.node('SequenceInsert', [s, a, scalar(g, 'minus1', -1)])[0];
    g.output(g.node('ConcatFromSequence', [s], { axis: -1 })[0], 'int64');
    await expectMatchesOrt(g.model({ opset: 17 }), { a: i64([2, 3], [1, 2, 3, 4, 5, 6]), b: i64([2, 3], [7, 8, 9, 10, 11, 12]) });
  });

  it('SequenceConstruct stacks on a new trailing axis', async () => {
    const r = rng(3), g = new GraphBuilder();
    const names = ['p', 'q', 'r'].map((n) => g.input(n, 'float32', [2, 4]));
    const s = g.node('SequenceConstruct', names)[0];
    g.output(g.node('ConcatFromSequence', [s], { axis: -1, new_axis: 1 })[0], 'float32');
    g.output(g.node('ConcatFromSequence', [s], { axis: 2, new_axis: 1 })[0], 'float32');
    await expectMatchesOrt(g.model({ opset: 17 }), Object.fromEntries(names.map((n) => [n, randomF32([2, 4], r)])));
  });

  it('SequenceMap runs its body per element, pairing sequences and sharing tensors', async () => {
    const r = rng(4), g = new GraphBuilder();
    const x = g.input('x', 'float32', [5, 3]), bias = g.input('bias', 'float32', [3]);
    const s1 = g.node('SplitToSequence', [x], { keepdims: 0 })[0];
    const s2 = g.node('SplitToSequence', [x], { axis: 0 })[0];
    const body = new GraphBuilder('body');
    const e = body.input('e', 'float32', [3]), f = body.input('f', 'float32', [1, 3]), c = body.input('c', 'float32', [3]);
    body.output(body.node('Add', [body.node('Mul', [e, f])[0], c], {}, ['sum'])[0], 'float32', [1, 3]);
    body.output(body.node('Shape', [e], {}, ['shp'])[0], 'int64', [1]);
    const [o1, o2] = g.node('SequenceMap', [s1, s2, bias], { body }, 2);
    g.output(g.node('ConcatFromSequence', [o1], { axis: 0 })[0], 'float32');
    g.output(g.node('ConcatFromSequence', [o2], { axis: 0 })[0], 'int64');
    await expectMatchesOrt(g.model({ opset: 17 }), { x: randomF32([5, 3], r), bias: randomF32([3], r) });
  });
});

describe('optionals', () => {
  it('wrap, test and unwrap tensors and sequences as onnxruntime does', async () => {
    const r = rng(5), g = new GraphBuilder();
    const x = g.input('x', 'float32', [2, 2]);
    const full = g.node('Optional', [x])[0], seqOpt = g.node('Optional', [g.node('SequenceConstruct', [x, x])[0]])[0];
    const empty = typedNode(g, 'Optional', [], 'empty');
    g.output(g.node('OptionalHasElement', [full])[0], 'bool');
    g.output(g.node('OptionalHasElement', [empty])[0], 'bool');
    g.output(g.node('OptionalGetElement', [full])[0], 'float32');
    g.output(g.node('SequenceLength', [g.node('OptionalGetElement', [seqOpt])[0]])[0], 'int64');
    await expectMatchesOrt(g.model({ opset: 18 }), { x: randomF32([2, 2], r) });
  });

  it('opset 18 accepts plain tensors and a missing input', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [3]);
    g.output(g.node('OptionalHasElement', [x])[0], 'bool');
    g.output(g.node('OptionalHasElement', [])[0], 'bool');
    g.output(g.node('OptionalGetElement', [x])[0], 'float32');
    await expectMatchesOrt(g.model({ opset: 18 }), { x: randomF32([3], rng(6)) });
  });
});

describe('sequence errors name the node and the bad value', () => {
  const run = async (g: GraphBuilder, feeds: Record<string, NdArray>) => {
    const s = await InferenceSession.create(g.model({ opset: 17 }));
    return s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)])));
  };

  it('SequenceAt out of range', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2]);
    g.output(g.node('SequenceAt', [g.node('SequenceConstruct', [x, x])[0], scalar(g, 'p', 2)])[0], 'float32');
    await expect(run(g, { x: randomF32([2]) })).rejects.toThrow(/SequenceAt.*position 2 is out of range for a sequence of length 2/);
  });

  it('an empty optional cannot be unwrapped', async () => {
    const g = new GraphBuilder();
    g.input('x', 'float32', [2]);
    g.output(g.node('OptionalGetElement', [typedNode(g, 'Optional', [], 'e')])[0], 'float32');
    await expect(run(g, { x: randomF32([2]) })).rejects.toThrow(/OptionalGetElement.*empty/);
  });

  it('split lengths must cover the axis', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [5]);
    g.output(g.node('ConcatFromSequence', [g.node('SplitToSequence', [x, g.init('s', i64([2], [2, 2]))])[0]], { axis: 0 })[0], 'float32');
    await expect(run(g, { x: randomF32([5]) })).rejects.toThrow(/split lengths \[2,2\] must sum to the axis size 5/);
  });
});
