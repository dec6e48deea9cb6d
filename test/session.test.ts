// The onnxruntime-web compatible session API: creation from every source, names and metadata, run with
// fetches and options, feed checking (InputError naming the input, what was expected and what came),
// and the public Tensor's constructors and data forms.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { NdArray } from '../engine/tensor.js';
import { InferenceSession, InputError, LastmileError, ModelLoadError, Tensor, type SessionOptions } from '../index.js';
import { f32, GraphBuilder, i64 } from '../loaders/builder.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

/** out = Relu(x + y) + z, sig = Sigmoid(x); w is an input with an initializer (so not a required input). */
function mainModel(): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('x', 'float32', ['batch', null]), y = g.input('y', 'float32', ['batch', 3]), z = g.input('z', 'float32', [3]);
  g.init('w', f32([3], [1, 1, 1]));
  g.input('w', 'float32', [3]);
  const sum = g.node('Add', [g.node('Relu', [g.node('Add', [x, y])[0]])[0], z])[0];
  g.output(g.node('Mul', [sum, 'w'], {}, ['out'])[0], 'float32', ['batch', 3]);
  g.output(g.node('Sigmoid', [x], {}, ['sig'])[0], 'float32', ['batch', null]);
  return g.model({ opset: 17 });
}
ort.env.logLevel = 'error'; // its warning about the initializer-backed input is expected
const bytes = mainModel();
// A fresh ArrayBuffer holding just the model (protobufjs returns a Buffer that may be a view into a pool).
const copyBuffer = () => new Uint8Array(bytes).buffer;
const t = (dims: number[], r = rng(1)) => new Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => r.float()), dims);
const feeds = () => ({ x: t([2, 3]), y: t([2, 3]), z: t([3]) });
const stripped = (m: { typeInfo?: unknown }[]) => m.map(({ typeInfo: _, ...rest }) => rest);

async function rejects(p: Promise<unknown>, cls: new (...a: never[]) => Error, re: RegExp) {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e, `expected a ${cls.name}`).toBeInstanceOf(cls);
  expect((e as Error).message).toMatch(re);
}

describe('InferenceSession.create', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lastmile-session-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('takes a path, bytes, an ArrayBuffer, a byte range of one, or a SharedArrayBuffer', async () => {
    writeFileSync(join(dir, 'm.onnx'), bytes);
    const framed = new Uint8Array(bytes.length + 20);
    framed.set(bytes, 7);
    const shared = new SharedArrayBuffer(bytes.length);
    new Uint8Array(shared).set(bytes);
    const sessions = await Promise.all([
      InferenceSession.create(join(dir, 'm.onnx')),
      InferenceSession.create(bytes, { executionProviders: ['cpu'] }),
      InferenceSession.create(copyBuffer()),
      InferenceSession.create(framed.buffer, 7, bytes.length, { executionProviders: ['wasm'] }),
      InferenceSession.create(shared),
    ]);
    for (const s of sessions) expect(s.inputNames).toEqual(['x', 'y', 'z']);
  });

  it('refuses bad arguments as onnxruntime does', async () => {
    await rejects(InferenceSession.create(42 as never), TypeError, /takes a path, a Uint8Array or an ArrayBuffer, got number/);
    await rejects(InferenceSession.create(copyBuffer(), bytes.length + 1), RangeError, /byteOffset/);
    await rejects(InferenceSession.create(copyBuffer(), 0, 0), RangeError, /byteLength 0/);
    await rejects(InferenceSession.create(bytes, 'cpu' as never), TypeError, /options must be an object/);
    await rejects(InferenceSession.create(bytes, { executionProviders: ['webgl'] }), LastmileError, /none of the execution providers \[webgl\]/);
    await rejects(InferenceSession.create(join(dir, 'nope.onnx')), ModelLoadError, /cannot read model file/);
    await rejects(InferenceSession.create(new TextEncoder().encode('not a model')), ModelLoadError, /not a valid ONNX model|not an ONNX model/);
  });
});

describe('names and metadata', () => {
  it('match onnxruntime-node: initializer-backed inputs excluded, symbolic dims named, unknown dims as ""', async () => {
    const [mine, ref] = await Promise.all([InferenceSession.create(bytes), ort.InferenceSession.create(bytes)]);
    expect(mine.inputNames).toEqual(ref.inputNames);
    expect(mine.outputNames).toEqual(ref.outputNames);
    expect(stripped(mine.inputMetadata)).toEqual(ref.inputMetadata);
    expect(stripped(mine.outputMetadata)).toEqual(ref.outputMetadata);
    expect(mine.inputMetadata[0]).toEqual({ name: 'x', isTensor: true, type: 'float32', shape: ['batch', ''], typeInfo: { kind: 'tensor', dtype: 'float32', shape: ['batch', null] } });
  });

  it('describe sequences and optionals as non-tensors, and infer undeclared output shapes', async () => {
    const g = new GraphBuilder();
    g.inputs.push({ name: 's', type: { sequence_type: { elem_type: { tensor_type: { elem_type: 1 } } } } });
    const x = g.input('x', 'float32', ['n', 2]);
    g.output(g.node('SequenceLength', ['s'], {}, ['len'])[0], 'int64');
    g.output(g.node('Relu', [x], {}, ['r'])[0], null);
    const s = await InferenceSession.create(g.model());
    expect(stripped(s.inputMetadata)).toEqual([{ name: 's', isTensor: false }, { name: 'x', isTensor: true, type: 'float32', shape: ['n', 2] }]);
    expect(stripped(s.outputMetadata)[1]).toEqual({ name: 'r', isTensor: true, type: 'float32', shape: ['n', 2] });
  });
});

describe('run', () => {
  it('matches onnxruntime-node', async () => {
    const r = rng(11);
    await expectMatchesOrt(bytes, { x: randomF32([4, 3], r), y: randomF32([4, 3], r), z: randomF32([3], r) });
  });

  it('returns the fetched outputs; an object of options in fetches\' place is options', async () => {
    const s = await InferenceSession.create(bytes);
    expect(Object.keys(await s.run(feeds()))).toEqual(['out', 'sig']);
    expect(Object.keys(await s.run(feeds(), ['sig']))).toEqual(['sig']);
    expect(Object.keys(await s.run(feeds(), { out: null }))).toEqual(['out']);
    expect(Object.keys(await s.run(feeds(), { logSeverityLevel: 3 }))).toEqual(['out', 'sig']);
    expect(Object.keys(await s.run(feeds(), ['out'], { tag: 'x' }))).toEqual(['out']);
    const steps: string[] = [];
    await s.run(feeds(), { onStep: (step) => steps.push(step.node.opType) });
    expect(steps).toContain('Sigmoid');
    await rejects(s.run(feeds(), ['nope']), InputError, /unknown output 'nope'; the model's outputs are: out, sig/);
    await rejects(s.run(feeds(), []), InputError, /fetches is empty/);
  });

  it('overrides an initializer-backed input when fed', async () => {
    const s = await InferenceSession.create(bytes);
    const base = (await s.run(feeds())).out as Tensor;
    const doubled = (await s.run({ ...feeds(), w: new Tensor('float32', [2, 2, 2], [3]) })).out as Tensor;
    expect(Array.from(doubled.data as Float32Array)).toEqual(Array.from(base.data as Float32Array, (v) => v * 2));
  });

  it('refuses to run once released', async () => {
    const s = await InferenceSession.create(bytes);
    await s.release();
    await rejects(s.run(feeds()), LastmileError, /released/);
  });
});

describe('feed checking', () => {
  const session = InferenceSession.create(bytes);
  const fails = async (f: Record<string, unknown>, re: RegExp, options?: SessionOptions) =>
    rejects((options ? InferenceSession.create(bytes, options) : session).then((s) => s.run(f as never)), InputError, re);

  it.each([
    ['an unknown name', { ...feeds(), q: t([1]) }, /unknown input 'q'; the model's inputs are: x, y, z/],
    ['a missing input', { x: t([2, 3]), y: t([2, 3]) }, /missing input 'z' \(expected float32 tensor of shape \[3\]\)/],
    ['a wrong dtype', { ...feeds(), z: new Tensor('int32', [1, 2, 3], [3]) }, /input 'z': expected dtype float32, got int32/],
    ['a wrong rank', { ...feeds(), z: t([1, 3]) }, /input 'z': expected rank 1 \[3\], got rank 2 \[1, 3\]/],
    ['a wrong dim', { ...feeds(), z: t([4]) }, /input 'z': dim 0 should be 3, got 4 \(shape \[4\]\)/],
    ['an inconsistent symbolic dim', { ...feeds(), y: t([5, 3]) }, /input 'y': dim 0 \('batch'\) is 5, but 'batch' is 2 from input 'x'/],
    ['a number', { ...feeds(), x: 3 }, /input 'x': expected float32 tensor of shape \[batch, \?\], got number/],
    ['an array for a tensor', { ...feeds(), x: [t([2, 3])] }, /input 'x': expected float32 tensor .*got an array/],
    ['a tensor-like with too little data', { ...feeds(), x: { type: 'float32', dims: [2, 3], data: new Float32Array(5) } }, /input 'x': a float32 tensor of dims \[2,3\] needs 6 elements, got 5/],
    ['a tensor-like with the wrong array', { ...feeds(), x: { type: 'float32', dims: [2, 3], data: new Float64Array(6) } }, /input 'x': a float32 tensor's data must be a Float32Array, got Float64Array/],
  ])('refuses %s', async (_, f, re) => fails(f, re));

  it('binds symbolic dims from freeDimensionOverrides', async () => {
    await fails(feeds(), /input 'x': dim 0 \('batch'\) is 2, but 'batch' is 3 from freeDimensionOverrides/, { freeDimensionOverrides: { batch: 3 } });
  });

  it('refuses feeds that are not an object of names', async () => {
    const s = await session;
    for (const bad of [null, t([3]), [t([3])]]) await rejects(s.run(bad as never), InputError, /feeds must be an object mapping input names to tensors/);
  });

  it('accepts another library\'s tensors (onnxruntime\'s)', async () => {
    const s = await session, f = feeds();
    const theirs = Object.fromEntries(Object.entries(f).map(([k, v]) => [k, new ort.Tensor('float32', v.data as Float32Array, v.dims as number[])]));
    const [a, b] = [await s.run(f), await s.run(theirs as never)];
    expect((b.out as Tensor).data).toEqual((a.out as Tensor).data);
  });
});

describe('data types through the session', () => {
  const r = rng(4);
  const runOrt = async (model: Uint8Array, f: Record<string, ort.Tensor>) => (await ort.InferenceSession.create(model)).run(f);

  it('float16 in and out as Uint16Array bit patterns, as onnxruntime', async () => {
    const g = new GraphBuilder();
    g.output(g.node('Add', [g.input('a', 'float16', [4]), g.input('b', 'float16', [4])], {}, ['c'])[0], 'float16', [4]);
    const model = g.model();
    const a = Uint16Array.of(0x3c00, 0x4000, 0x7bff, 0x3555), b = Uint16Array.of(0x3c00, 0xc000, 0x7bff, 0x0001);
    const mine = (await (await InferenceSession.create(model)).run({ a: new Tensor('float16', a, [4]), b: new Tensor('float16', b, [4]) })).c as Tensor;
    const theirs = (await runOrt(model, { a: new ort.Tensor('float16', a, [4]), b: new ort.Tensor('float16', b, [4]) })).c;
    expect(mine.type).toBe('float16');
    expect(mine.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(mine.data as Uint16Array)).toEqual(Array.from(theirs.data as Uint16Array));
  });

  it('int64 as BigInt64Array and bool as Uint8Array, as onnxruntime', async () => {
    const g = new GraphBuilder();
    g.output(g.node('Add', [g.input('a', 'int64', [3]), g.init('k', i64([3], [1, 2, 3]))], {}, ['s'])[0], 'int64', [3]);
    g.output(g.node('Not', [g.input('p', 'bool', [2])], {}, ['n'])[0], 'bool', [2]);
    const model = g.model();
    const a = BigInt64Array.of(2n ** 62n, -5n, 0n), p = Uint8Array.of(1, 0);
    const mine = await (await InferenceSession.create(model)).run({ a: new Tensor('int64', a, [3]), p: new Tensor('bool', p, [2]) });
    const theirs = await runOrt(model, { a: new ort.Tensor('int64', a, [3]), p: new ort.Tensor('bool', p, [2]) });
    for (const k of ['s', 'n']) {
      expect((mine[k] as Tensor).data.constructor).toBe(theirs[k].data.constructor);
      expect(Array.from((mine[k] as Tensor).data as ArrayLike<unknown>)).toEqual(Array.from(theirs[k].data as ArrayLike<unknown>));
    }
    await expectMatchesOrt(model, { a: new NdArray('int64', [3], BigInt64Array.of(BigInt(r.int(-9, 9)), 1n, 2n)), p: new NdArray('bool', [2], Uint8Array.of(0, 1)) });
  });

  it('constants come out in public form and as copies the caller may change', async () => {
    const g = new GraphBuilder();
    g.initializers.push(
      { name: 'h', data_type: 10, dims: [2], int32_data: [0x3c00, 0xc000] },
      { name: 'q', data_type: 22, dims: [3], int32_data: [0x78, 0x01] },
      { name: 'b', data_type: 9, dims: [2], int32_data: [1, 0] },
      { name: 's', data_type: 8, dims: [2], string_data: [new TextEncoder().encode('a'), new TextEncoder().encode('b')] },
      { name: 'f', data_type: 1, dims: [2], float_data: [1, 2] },
    );
    for (const n of ['h', 'q', 'b', 's', 'f']) g.output(n, null);
    const s = await InferenceSession.create(g.model());
    const out = await s.run({});
    expect(out.h).toEqual(expect.objectContaining({ type: 'float16', dims: [2], data: Uint16Array.of(0x3c00, 0xc000) }));
    expect(out.q).toEqual(expect.objectContaining({ type: 'int4', dims: [3], data: Uint8Array.of(0x78, 0x01) }));
    expect(out.b).toEqual(expect.objectContaining({ type: 'bool', data: Uint8Array.of(1, 0) }));
    expect(out.s).toEqual(expect.objectContaining({ type: 'string', data: ['a', 'b'] }));
    (out.f as Tensor).data.fill(0 as never);
    expect(Array.from(((await s.run({})).f as Tensor).data as Float32Array)).toEqual([1, 2]);
  });

  it('sequence and optional inputs take arrays and null', async () => {
    const g = new GraphBuilder();
    g.inputs.push({ name: 'seq', type: { sequence_type: { elem_type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_param: 'k' }] } } } } } });
    g.inputs.push({ name: 'opt', type: { optional_type: { elem_type: { tensor_type: { elem_type: 1 } } } } });
    g.output(g.node('SequenceLength', ['seq'], {}, ['len'])[0], 'int64');
    g.output(g.node('OptionalHasElement', ['opt'], {}, ['has'])[0], 'bool');
    const s = await InferenceSession.create(g.model({ opset: 18 }));
    const out = await s.run({ seq: [t([2]), t([2])], opt: null });
    expect(Array.from((out.len as Tensor).data as BigInt64Array)).toEqual([2n]);
    expect(Array.from((out.has as Tensor).data as Uint8Array)).toEqual([0]);
    await rejects(s.run({ seq: t([2]), opt: null }), InputError, /input 'seq': expected sequence of float32 tensor of shape \[k\] \(an array of tensors\), got Tensor/);
    await rejects(s.run({ seq: [t([2]), t([3])], opt: null }), InputError, /input 'seq': dim 0 \('k'\) is 3, but 'k' is 2/);
  });
});

describe('Tensor', () => {
  it('has onnxruntime-web\'s constructors and fields', () => {
    const a = new Tensor('float32', [1, 2, 3, 4, 5, 6], [2, 3]);
    expect([a.type, a.dims, a.size, a.location, a.data.constructor]).toEqual(['float32', [2, 3], 6, 'cpu', Float32Array]);
    expect(new Tensor(Int32Array.of(1, 2)).type).toBe('int32');
    expect(new Tensor(BigInt64Array.of(1n), [1]).type).toBe('int64');
    expect(new Tensor(['a', 'b']).type).toBe('string');
    expect(new Tensor([true, false]).data).toEqual(Uint8Array.of(1, 0));
    expect(new Tensor('int64', [1, 2]).data).toEqual(BigInt64Array.of(1n, 2n));
    expect(new Tensor('float16', [1, -2]).data).toEqual(Uint16Array.of(0x3c00, 0xc000));
    expect(new Tensor('uint8', Uint8ClampedArray.of(44, 7)).data).toEqual(Uint8Array.of(44, 7));
    expect(new Tensor('int4', Uint8Array.of(0x78, 0x01), [3]).size).toBe(3);
    expect(a.reshape([3, 2]).dims).toEqual([3, 2]);
    expect(new Tensor('float32', new Float32Array(0), [0, 4]).size).toBe(0);
  });

  it.each([
    [() => new Tensor('float33' as never, new Float32Array(1)), /unsupported tensor type 'float33'/],
    [() => new Tensor('float32', new Int32Array(2)), /a float32 tensor's data must be a Float32Array, got Int32Array/],
    [() => new Tensor('int64', new Int32Array(2)), /must be a BigInt64Array/],
    [() => new Tensor('float32', new Float32Array(5), [2, 3]), /needs 6 elements, got 5/],
    [() => new Tensor('float32', new Float32Array(2), [-2]), /dims must be an array of non-negative integers/],
    [() => new Tensor('float32', new Float32Array(2), [1.5] as never), /dims must be an array of non-negative integers/],
    [() => new Tensor('string', new Float32Array(2) as never), /string tensor's data must be an array of strings/],
    [() => new Tensor([1, 2] as never), /cannot infer a tensor type from an array of number/],
    [() => new Tensor(new DataView(new ArrayBuffer(2)) as never), /unsupported tensor data: DataView/],
    [() => new Tensor('int4', new Uint8Array(1), [3]), /needs 3 elements \(or 2 packed bytes\), got 1/],
  ])('refuses %#', (make, re) => expect(make).toThrow(re));

  it('converts the engine\'s forms both ways: packed sub-byte types, narrow floats, bools', async () => {
    const { toNdArray, toTensor } = await import('../engine/tensor.js');
    const q = toNdArray(new Tensor('int4', Uint8Array.of(0x78, 0x01), [3]));
    expect([q.dtype, Array.from(q.data as Int8Array)]).toEqual(['int4', [-8, 7, 1]]);
    expect(toTensor(q).data).toEqual(Uint8Array.of(0x78, 0x01));
    const u2 = toNdArray(new Tensor('uint2', Uint8Array.of(0x1b, 0x03), [5]));
    expect(Array.from(u2.data as Uint8Array)).toEqual([3, 2, 1, 0, 3]);
    const f4 = toNdArray(new Tensor('float4e2m1', Uint8Array.of(0x97), [2]));
    expect(Array.from(f4.data as Float32Array)).toEqual([6, -0.5]);
    expect(toTensor(f4).data).toEqual(Uint8Array.of(0x97));
    const f8 = toNdArray(new Tensor('float8e4m3fn', Uint8Array.of(0x38, 0x7e), [2]));
    expect(Array.from(f8.data as Float32Array)).toEqual([1, 448]);
    expect(toTensor(f8).data).toEqual(Uint8Array.of(0x38, 0x7e));
    // Engine storage given directly: widened values are rounded onto the type, one element per byte unpacked.
    expect(Array.from(toNdArray(new Tensor('float16', Float32Array.of(1 + 2 ** -12), [1])).data as Float32Array)).toEqual([1]);
    expect(Array.from(toNdArray(new Tensor('int4', Int8Array.of(-1, 7), [2])).data as Int8Array)).toEqual([-1, 7]);
    expect(Array.from(toNdArray(new Tensor('bool', Uint8Array.of(0, 5), [2])).data as Uint8Array)).toEqual([0, 1]);
  });
});
