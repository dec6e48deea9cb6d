import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../index.js';
import { GraphBuilder, float, floats } from '../loaders/builder.js';
import { NdArray } from '../engine/tensor.js';
import { compareValues } from '../conformance/compare.js';
import { randomF32, rng } from './helpers/oracle.js';
import { setWasmKernels, wasmKernels } from '../kernels/wasm/simd.js';
import { lastThreadIds, startRnnThreads } from '../kernels/wasm/rnn-cells.js';

type Kind = 'LSTM' | 'GRU' | 'RNN';
const GATES = { LSTM: 4, GRU: 3, RNN: 1 };

interface Case {
  kind: Kind; seq: number; batch: number; input: number; hidden: number;
  direction: 'forward' | 'reverse' | 'bidirectional'; layout: 0 | 1;
  bias?: boolean; lens?: number[]; h0?: boolean; c0?: boolean; peep?: boolean;
  attrs?: Record<string, unknown>; outputs?: boolean[]; dtype?: 'float32' | 'float64';
  /** W, R and B as initializers rather than graph inputs (the kernels then keep packed weights between runs). */
  weightsInit?: boolean;
  /** W and R drawn from [-scale, scale] (default 1). */
  scale?: number;
}

/** Builds one recurrent node with every present operand as a graph input, and its random feeds. `ref` is
 *  the same computation for onnxruntime, whose CPU kernels lack layout 1: a layout-0 node between
 *  Transposes. */
function build(c: Case, seed: number) {
  const r = rng(seed), G = GATES[c.kind], D = c.direction === 'bidirectional' ? 2 : 1;
  const feeds: Record<string, NdArray> = {};
  const random = (shape: number[]) => (c.dtype === 'float64' ? new NdArray('float64', shape, Float64Array.from(randomF32(shape, r).data as Float32Array)) : randomF32(shape, r));
  const add = (name: string, shape: number[], value = () => random(shape)) => {
    feeds[name] = value();
    return name;
  };
  const scaled = (t: NdArray) => (c.scale === undefined ? t : new NdArray(t.dtype, t.shape, (t.data as Float32Array).map((v) => v * c.scale!)));
  const state = c.layout ? [c.batch, D, c.hidden] : [D, c.batch, c.hidden];
  const ins = [
    add('X', c.layout ? [c.batch, c.seq, c.input] : [c.seq, c.batch, c.input]),
    add('W', [D, G * c.hidden, c.input], () => scaled(random([D, G * c.hidden, c.input]))),
    add('R', [D, G * c.hidden, c.hidden], () => scaled(random([D, G * c.hidden, c.hidden]))),
    c.bias ? add('B', [D, 2 * G * c.hidden]) : '',
    c.lens ? add('lens', [c.batch], () => new NdArray('int32', [c.batch], Int32Array.from(c.lens!))) : '',
    c.h0 ? add('h0', state) : '',
  ];
  if (c.kind === 'LSTM') ins.push(c.c0 ? add('c0', state) : '', c.peep ? add('P', [D, 3 * c.hidden]) : '');
  while (ins[ins.length - 1] === '') ins.pop();
  const nOut = c.kind === 'LSTM' ? 3 : 2, want = c.outputs ?? Array(nOut).fill(true);
  const outs = want.map((w, i) => (w ? `out${i}` : ''));
  const weights = new Set(c.weightsInit ? ['W', 'R', 'B'] : []);
  const model = (layout: number, transpose: boolean) => {
    const g = new GraphBuilder();
    for (const [k, v] of Object.entries(feeds)) {
      if (weights.has(k)) g.init(k, v);
      else g.input(k, v.dtype, [...v.shape]);
    }
    const swap = (n: string, perm: number[]) => (transpose && n && (n === 'X' || n === 'h0' || n === 'c0') ? g.node('Transpose', [n], { perm })[0] : n);
    const nodeOuts = outs.map((o) => (o && transpose ? `${o}_l0` : o));
    g.node(c.kind, ins.map((n) => swap(n, [1, 0, 2])), { hidden_size: c.hidden, direction: c.direction, layout, ...(c.attrs as object) }, nodeOuts);
    outs.forEach((o, i) => {
      if (o && transpose) g.node('Transpose', [nodeOuts[i]], { perm: i === 0 ? [2, 0, 1, 3] : [1, 0, 2] }, [o]);
      if (o) g.output(o, c.dtype ?? 'float32');
    });
    return g.model({ opset: 14 });
  };
  const bytes = model(c.layout, false), ref = model(0, c.layout === 1);
  for (const k of weights) delete feeds[k];
  return { bytes, ref, feeds };
}

type Built = ReturnType<typeof build>;
const asFloat32 = (t: Tensor) => new NdArray('float32', t.dims, Float32Array.from(t.data as Float64Array));

/** Runs `mine.bytes` here and `ref.ref` on onnxruntime-node, each with its own feeds, and compares every
 *  output (a float64 run against onnxruntime's float32 one, which is all its CPU kernels offer). `runs`
 *  runs of one session must all match (the kernels keep packed initializer weights between runs). */
async function expectMatchesOrt(mine: Built, ref: Built = mine, runs = 1) {
  const session = await InferenceSession.create(mine.bytes);
  for (let i = 1; i < runs; i++) await session.run(Object.fromEntries(Object.entries(mine.feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)])));
  const ours = await session.run(Object.fromEntries(Object.entries(mine.feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)])));
  const theirs = await (await ort.InferenceSession.create(ref.ref)).run(Object.fromEntries(Object.entries(ref.feeds).map(([k, v]) => [k, new ort.Tensor(v.dtype as never, v.data as never, v.shape as number[])])));
  expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort());
  for (const [name, t] of Object.entries(theirs)) {
    const got = ours[name] as Tensor;
    const actual = got.type === t.type ? new NdArray(got.type, got.dims, got.data as never) : asFloat32(got);
    const diff = compareValues(new NdArray(t.type as never, t.dims, t.data as never), actual, { rtol: 1e-3, atol: 1e-4 });
    expect(diff, `output '${name}'`).toBeUndefined();
  }
}

/** A random configuration: sizes, direction, layout and which optional operands are present. */
function randomCase(kind: Kind, seed: number): Case {
  const r = rng(seed * 7919), seq = r.int(1, 6), batch = r.int(1, 4);
  const lens = r.next() < 0.4 ? Array.from({ length: batch }, () => r.int(1, seq)) : undefined;
  return {
    kind, seq, batch, input: r.int(1, 7), hidden: r.int(1, 6),
    direction: r.pick(['forward', 'reverse', 'bidirectional'] as const), layout: r.pick([0, 1] as const),
    bias: r.next() < 0.7, lens, h0: r.next() < 0.5, c0: r.next() < 0.5, peep: r.next() < 0.5,
    attrs: kind === 'GRU' && r.next() < 0.5 ? { linear_before_reset: 1 } : {},
  };
}

describe.each(['LSTM', 'GRU', 'RNN'] as Kind[])('%s matches onnxruntime', (kind) => {
  it.each(Array.from({ length: 12 }, (_, i) => i + 1))('random configuration %i', async (seed) => {
    const c = randomCase(kind, seed + GATES[kind] * 100);
    await expectMatchesOrt(build(c, seed));
  });

  it('larger sizes with ragged sequence lengths', async () => {
    const c: Case = { kind, seq: 7, batch: 6, input: 9, hidden: 11, direction: 'bidirectional', layout: 0, bias: true, h0: true, c0: true, peep: true, lens: [7, 3, 5, 1, 7, 6] };
    await expectMatchesOrt(build(c, 77));
  });

  it('clip bounds the gate inputs', async () => {
    await expectMatchesOrt(build({ kind, seq: 4, batch: 2, input: 3, hidden: 4, direction: 'bidirectional', layout: 0, bias: true, h0: true, attrs: { clip: float(0.3) } }, 5));
  });

  it('parameterised activations consume alpha and beta in order', async () => {
    const acts = { LSTM: ['HardSigmoid', 'ScaledTanh', 'LeakyRelu'], GRU: ['HardSigmoid', 'Affine'], RNN: ['ThresholdedRelu'] }[kind];
    const attrs = { activations: [...acts, ...acts], activation_alpha: floats([0.3, 0.7, 0.2, 0.5, 0.8, 0.1]), activation_beta: floats([0.4, 0.9, 0.6, 1.1]) };
    await expectMatchesOrt(build({ kind, seq: 3, batch: 2, input: 2, hidden: 3, direction: 'bidirectional', layout: 0, bias: true, attrs }, 9));
  });

  it('activation parameters default as the ONNX ops do', async () => {
    const acts = { LSTM: ['HardSigmoid', 'Elu', 'LeakyRelu'], GRU: ['HardSigmoid', 'Elu'], RNN: ['LeakyRelu'] }[kind];
    await expectMatchesOrt(build({ kind, seq: 3, batch: 2, input: 2, hidden: 3, direction: 'forward', layout: 0, bias: true, attrs: { activations: acts } }, 10));
  });

  it('omitted outputs are not required', async () => {
    const outputs = kind === 'LSTM' ? [false, true, false] : [false, true];
    await expectMatchesOrt(build({ kind, seq: 3, batch: 2, input: 2, hidden: 3, direction: 'forward', layout: 0, outputs }, 4));
  });
});

describe.each(['LSTM', 'GRU'] as Kind[])('%s in float64', (kind) => {
  it('matches onnxruntime on the same values in float32', async () => {
    const c: Case = { kind, seq: 5, batch: 3, input: 4, hidden: 5, direction: 'bidirectional', layout: 0, bias: true, h0: true, lens: [5, 2, 4] };
    await expectMatchesOrt(build({ ...c, dtype: 'float64' }, 31), build(c, 31));
  });
});

describe('LSTM options', () => {
  it('input_forget couples the forget gate to the input gate', async () => {
    await expectMatchesOrt(build({ kind: 'LSTM', seq: 5, batch: 3, input: 4, hidden: 5, direction: 'bidirectional', layout: 1, bias: true, peep: true, h0: true, c0: true, attrs: { input_forget: 1 } }, 11));
  });

  it('a sequence length of zero gives that batch row zero outputs, whatever its initial state', async () => {
    await expectMatchesOrt(build({ kind: 'LSTM', seq: 3, batch: 3, input: 2, hidden: 2, direction: 'bidirectional', layout: 0, lens: [3, 0, 2], h0: true, c0: true }, 12));
  });

  it('reports sequence_lens out of range', async () => {
    const { bytes, feeds } = build({ kind: 'LSTM', seq: 2, batch: 1, input: 2, hidden: 2, direction: 'forward', layout: 0, lens: [5] }, 13);
    const s = await InferenceSession.create(bytes);
    await expect(s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)])))).rejects.toThrow(/sequence_lens values must be in \[0, 2\]/);
  });

  it('infers Y with symbolic dims', async () => {
    const g = new GraphBuilder();
    const x = g.input('X', 'float32', ['seq', 'batch', 3]);
    const w = g.init('W', randomF32([2, 16, 3])), rr = g.init('R', randomF32([2, 16, 4]));
    const [y] = g.node('LSTM', [x, w, rr], { hidden_size: 4, direction: 'bidirectional' }, ['Y', 'Y_h']);
    g.output(y, 'float32');
    const s = await InferenceSession.create(g.model());
    expect(s.outputMetadata[0].shape).toEqual(['seq', 2, 'batch', 4]);
  });
});

// The float32 WebAssembly path (default activations, float32 operands) against onnxruntime on the shapes
// its padding and row handling care about: hidden sizes that are not multiples of the vector width or of
// a gate loop iteration, batch 1 and 3, one timestep, a long sequence (float32 state must not drift),
// and weights as initializers (packed once, reused by later runs) or as inputs (packed per call).
describe.each(['LSTM', 'GRU', 'RNN'] as Kind[])('%s float32 kernels match onnxruntime', (kind) => {
  const sizes: [number, number, number, number][] = [[1, 1, 1, 1], [1, 3, 5, 13], [4, 1, 7, 8], [3, 3, 2, 37], [2, 2, 9, 17]];
  it.each(sizes)('seq %i, batch %i, input %i, hidden %i', async (seq, batch, input, hidden) => {
    for (const weightsInit of [false, true]) {
      const c: Case = { kind, seq, batch, input, hidden, direction: 'bidirectional', layout: 0, bias: true, h0: true, c0: true, peep: kind === 'LSTM', weightsInit };
      await expectMatchesOrt(build(c, seq * 100 + hidden), undefined, weightsInit ? 2 : 1);
    }
  });

  // Weights scaled as trained ones are: with U(-1, 1) weights, hidden 40 is chaotic (a tanh RNN's gain is
  // about 3.6), and any two summation orders part ways, onnxruntime's own included.
  it('a long sequence with ragged lengths keeps float32 state within tolerance', async () => {
    const c: Case = { kind, seq: 96, batch: 3, input: 24, hidden: 40, direction: 'bidirectional', layout: 1, bias: true, h0: true, lens: [96, 50, 1], weightsInit: true, scale: 0.3 };
    await expectMatchesOrt(build(c, 41), undefined, 2);
  });

  it('weights as inputs, packed again on every call, with a zero-length row', async () => {
    await expectMatchesOrt(build({ kind, seq: 6, batch: 3, input: 5, hidden: 12, direction: 'reverse', layout: 0, bias: true, lens: [6, 0, 4] }, 43));
  });

  it('linear_before_reset, clip and input_forget stay on the fast path with default activations', async () => {
    const attrs = { clip: float(0.7), ...(kind === 'GRU' ? { linear_before_reset: 1 } : {}), ...(kind === 'LSTM' ? { input_forget: 1 } : {}) };
    await expectMatchesOrt(build({ kind, seq: 5, batch: 2, input: 3, hidden: 9, direction: 'bidirectional', layout: 0, bias: true, h0: true, peep: true, attrs, weightsInit: true }, 47), undefined, 2);
  });
});

describe('the TypeScript cells (LASTMILE_NO_WASM) still match onnxruntime', () => {
  it.each(['LSTM', 'GRU', 'RNN'] as Kind[])('%s random configurations', async (kind) => {
    const was = setWasmKernels(false);
    try {
      for (let seed = 1; seed <= 4; seed++) await expectMatchesOrt(build(randomCase(kind, seed + 500), seed));
      await expectMatchesOrt(build({ kind, seq: 4, batch: 3, input: 5, hidden: 13, direction: 'bidirectional', layout: 0, bias: true, h0: true, weightsInit: true }, 49));
    } finally {
      setWasmKernels(was);
    }
  });
});

// Bidirectional nodes run their two directions at once when the session has two threads; the results
// must not depend on it.
describe.each(['LSTM', 'GRU', 'RNN'] as Kind[])('%s bidirectional on two threads', (kind) => {
  // Big enough for the kernels to hand a direction to a worker (over a million multiply-adds each, for every kind).
  const c: Case = { kind, seq: 64, batch: 2, input: 64, hidden: 64, direction: 'bidirectional', layout: 0, bias: true, h0: true, c0: true, peep: kind === 'LSTM', lens: [64, 37], weightsInit: true, scale: 0.2 };
  const built = build(c, 61);
  const feeds = () => Object.fromEntries(Object.entries(built.feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)]));
  const bitsOf = (r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).map(([k, t]) => [k, Array.from(new Uint32Array(((t as Tensor).data as Float32Array).buffer))]));

  it('matches onnxruntime, and the 1-thread session bit for bit', async () => {
    await startRnnThreads(2);
    await expectMatchesOrt(built, undefined, 2);
    const [one, two] = await Promise.all([1, 2].map((n) => InferenceSession.create(built.bytes, { intraOpNumThreads: n })));
    const want = bitsOf(await one.run(feeds()));
    for (let i = 0; i < 3; i++) expect(bitsOf(await two.run(feeds()))).toEqual(want);
  });

  // The directions go to a worker only on the wasm kernels (LASTMILE_NO_WASM runs the TypeScript cells).
  it.runIf(wasmKernels())('runs a direction on the worker, with the same bits', async () => {
    await startRnnThreads(2);
    const [one, two] = await Promise.all([1, 2].map((n) => InferenceSession.create(built.bytes, { intraOpNumThreads: n })));
    const want = bitsOf(await one.run(feeds()));
    // A worker descheduled on a busy machine may miss a job (the caller then runs both directions): retry a while.
    let got = await two.run(feeds());
    for (const end = performance.now() + 5000; !lastThreadIds().includes(1) && performance.now() < end;) got = await two.run(feeds());
    expect(lastThreadIds(), 'a direction ran on the worker').toContain(1);
    expect(bitsOf(got)).toEqual(want);
  });
});
