// The ONNX loader: every tensor data type from typed fields and raw_data, external data and its
// refusals, sparse initializers, model-local functions, subgraphs reading outer values, opset imports,
// test-data values, and corrupt, truncated or hostile bytes (each a ModelLoadError, never a crash).
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { onnxCode, type DType } from '../engine/dtype.js';
import { LastmileError, ModelLoadError } from '../engine/errors.js';
import type { Graph } from '../engine/graph.js';
import { inlineFunctions } from '../engine/passes/inline-functions.js';
import { NdArray, Opt, Seq } from '../engine/tensor.js';
import { InferenceSession, Tensor } from '../index.js';
import { f32, GraphBuilder, i64 } from '../loaders/builder.js';
import { loadModel } from '../loaders/onnx.js';
import { MAX_NESTING, Msg } from '../loaders/onnx-schema.js';
import { decodeValueFile } from '../loaders/tensor-proto.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

type Obj = Record<string, unknown>;
const encodeTensor = (t: Obj) => Msg.Tensor.encode(Msg.Tensor.fromObject(t)).finish();
const decode = (t: Obj) => decodeValueFile(encodeTensor(t), 'tensor', 'test') as NdArray;
const encodeModel = (m: Obj) => Msg.Model.encode(Msg.Model.fromObject({ ir_version: 8, opset_import: [{ domain: '', version: 17 }], ...m })).finish();
const floatInput = (name: string, dims: (number | string)[]) =>
  ({ name, type: { tensor_type: { elem_type: 1, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) } } } });
const feed = (a: NdArray) => new Tensor(a.dtype, a.data, a.shape);

/** Asserts `f` throws a ModelLoadError whose message matches `re`. */
function refuses(f: () => unknown, re: RegExp) {
  let err: unknown;
  try { f(); } catch (e) { err = e; }
  expect(err, 'expected a ModelLoadError').toBeInstanceOf(ModelLoadError);
  expect((err as Error).message).toMatch(re);
}

/** Little-endian bytes through a DataView setter. */
function le(size: number, values: (number | bigint)[], set: (dv: DataView, off: number, v: never) => void): Uint8Array {
  const out = new Uint8Array(size * values.length), dv = new DataView(out.buffer);
  values.forEach((v, i) => set(dv, i * size, v as never));
  return out;
}
const u8 = (v: number[]) => Uint8Array.from(v);
const u16 = (v: number[]) => le(2, v, (d, o, x) => d.setUint16(o, x, true));

interface DtypeCase { dtype: DType; dims: number[]; typed: Obj; raw: Uint8Array; want: unknown[] }
const big = (s: string) => BigInt(s);
const CASES: DtypeCase[] = [
  { dtype: 'float32', dims: [4], typed: { float_data: [1.5, -2, Infinity, NaN] }, raw: le(4, [1.5, -2, Infinity, NaN], (d, o, x) => d.setFloat32(o, x, true)), want: [1.5, -2, Infinity, NaN] },
  { dtype: 'float64', dims: [2], typed: { double_data: [1e300, -0.5] }, raw: le(8, [1e300, -0.5], (d, o, x) => d.setFloat64(o, x, true)), want: [1e300, -0.5] },
  { dtype: 'float16', dims: [4], typed: { int32_data: [0x3c00, 0xc000, 0x7c00, 0x0001] }, raw: u16([0x3c00, 0xc000, 0x7c00, 0x0001]), want: [1, -2, Infinity, 2 ** -24] },
  { dtype: 'bfloat16', dims: [3], typed: { int32_data: [0x3f80, 0xc040, 0x0001] }, raw: u16([0x3f80, 0xc040, 0x0001]), want: [1, -3, 2 ** -133] },
  { dtype: 'float8e4m3fn', dims: [5], typed: { int32_data: [0x38, 0xb8, 0x7e, 0x7f, 0x01] }, raw: u8([0x38, 0xb8, 0x7e, 0x7f, 0x01]), want: [1, -1, 448, NaN, 2 ** -9] },
  { dtype: 'float8e4m3fnuz', dims: [5], typed: { int32_data: [0x40, 0xc0, 0x80, 0x7f, 0x01] }, raw: u8([0x40, 0xc0, 0x80, 0x7f, 0x01]), want: [1, -1, NaN, 240, 2 ** -10] },
  { dtype: 'float8e5m2', dims: [5], typed: { int32_data: [0x3c, 0x7c, 0xfc, 0x7b, 0x7e] }, raw: u8([0x3c, 0x7c, 0xfc, 0x7b, 0x7e]), want: [1, Infinity, -Infinity, 57344, NaN] },
  { dtype: 'float8e5m2fnuz', dims: [4], typed: { int32_data: [0x40, 0x80, 0x7f, 0x01] }, raw: u8([0x40, 0x80, 0x7f, 0x01]), want: [1, NaN, 57344, 2 ** -17] },
  { dtype: 'float8e8m0', dims: [5], typed: { int32_data: [127, 128, 0, 254, 255] }, raw: u8([127, 128, 0, 254, 255]), want: [1, 2, 2 ** -127, 2 ** 127, NaN] },
  // Sub-byte types: first element in the low bits; int32_data packs the same way as raw_data.
  { dtype: 'float4e2m1', dims: [3], typed: { int32_data: [0x97, 0x02] }, raw: u8([0x97, 0x02]), want: [6, -0.5, 1] },
  { dtype: 'int4', dims: [3], typed: { int32_data: [0x78, 0x01] }, raw: u8([0x78, 0x01]), want: [-8, 7, 1] },
  { dtype: 'uint4', dims: [3], typed: { int32_data: [0x0f, 0x03] }, raw: u8([0x0f, 0x03]), want: [15, 0, 3] },
  { dtype: 'int2', dims: [5], typed: { int32_data: [0x4e, 0x01] }, raw: u8([0x4e, 0x01]), want: [-2, -1, 0, 1, 1] },
  { dtype: 'uint2', dims: [5], typed: { int32_data: [0x1b, 0x03] }, raw: u8([0x1b, 0x03]), want: [3, 2, 1, 0, 3] },
  { dtype: 'int8', dims: [3], typed: { int32_data: [-128, 127, -1] }, raw: u8([0x80, 0x7f, 0xff]), want: [-128, 127, -1] },
  { dtype: 'uint8', dims: [2], typed: { int32_data: [0, 255] }, raw: u8([0, 255]), want: [0, 255] },
  { dtype: 'int16', dims: [2], typed: { int32_data: [-32768, 32767] }, raw: le(2, [-32768, 32767], (d, o, x) => d.setInt16(o, x, true)), want: [-32768, 32767] },
  { dtype: 'uint16', dims: [2], typed: { int32_data: [65535, 1] }, raw: u16([65535, 1]), want: [65535, 1] },
  { dtype: 'int32', dims: [2], typed: { int32_data: [-2147483648, 2147483647] }, raw: le(4, [-2147483648, 2147483647], (d, o, x) => d.setInt32(o, x, true)), want: [-2147483648, 2147483647] },
  { dtype: 'uint32', dims: [2], typed: { uint64_data: [4294967295, 7] }, raw: le(4, [4294967295, 7], (d, o, x) => d.setUint32(o, x, true)), want: [4294967295, 7] },
  { dtype: 'int64', dims: [3], typed: { int64_data: ['-9223372036854775808', '9223372036854775807', '-1'] }, raw: le(8, [-(2n ** 63n), 2n ** 63n - 1n, -1n], (d, o, x) => d.setBigInt64(o, x, true)), want: [-(2n ** 63n), 2n ** 63n - 1n, -1n] },
  { dtype: 'uint64', dims: [2], typed: { uint64_data: ['18446744073709551615', '5'] }, raw: le(8, [2n ** 64n - 1n, 5n], (d, o, x) => d.setBigUint64(o, x, true)), want: [big('18446744073709551615'), 5n] },
  { dtype: 'bool', dims: [3], typed: { int32_data: [1, 0, 7] }, raw: u8([1, 0, 2]), want: [1, 0, 1] },
  { dtype: 'complex64', dims: [2], typed: { float_data: [1, 2, 3, 4] }, raw: le(4, [1, 2, 3, 4], (d, o, x) => d.setFloat32(o, x, true)), want: [1, 2, 3, 4] },
  { dtype: 'complex128', dims: [1], typed: { double_data: [1.5, -2.5] }, raw: le(8, [1.5, -2.5], (d, o, x) => d.setFloat64(o, x, true)), want: [1.5, -2.5] },
];

describe('TensorProto data types', () => {
  it.each(CASES)('$dtype from its typed field', ({ dtype, dims, typed, want }) => {
    const t = decode({ name: 'x', data_type: onnxCode(dtype), dims, ...typed });
    expect([t.dtype, t.shape]).toEqual([dtype, dims]);
    expect(Array.from(t.data as ArrayLike<unknown>)).toEqual(want);
  });

  it.each(CASES)('$dtype from raw_data (little-endian)', ({ dtype, dims, raw, want }) => {
    const t = decode({ name: 'x', data_type: onnxCode(dtype), dims, raw_data: raw });
    expect([t.dtype, t.shape]).toEqual([dtype, dims]);
    expect(Array.from(t.data as ArrayLike<unknown>)).toEqual(want);
  });

  it('reads strings from string_data and refuses them in raw_data', () => {
    const t = decode({ data_type: 8, dims: [3], string_data: ['a', 'héllo', ''].map((s) => new TextEncoder().encode(s)) });
    expect(t.data).toEqual(['a', 'héllo', '']);
    refuses(() => decode({ data_type: 8, dims: [1], raw_data: u8([65]) }), /string tensors cannot use raw_data/);
  });

  it('reads scalars and empty tensors', () => {
    expect(Array.from(decode({ data_type: 1, float_data: [2.5] }).data as Float32Array)).toEqual([2.5]);
    const e = decode({ data_type: 1, dims: [0, 3] });
    expect([e.shape, e.data.length]).toEqual([[0, 3], 0]);
    expect(decode({ data_type: 7, dims: [2, 0], raw_data: new Uint8Array(0) }).data).toBeInstanceOf(BigInt64Array);
  });

  it('every data type loads as an initializer of a model', () => {
    const g = new GraphBuilder();
    g.initializers.push(...CASES.map((c, i) => ({ name: `w${i}`, data_type: onnxCode(c.dtype), dims: c.dims, raw_data: c.raw })));
    g.output(g.node('Relu', [g.input('x', 'float32', [1])])[0], 'float32');
    const m = loadModel(g.model({ irVersion: 11 }));
    CASES.forEach((c, i) => {
      const v = m.graph.initializers.get(`w${i}`) as NdArray;
      expect(v.dtype).toBe(c.dtype);
      expect(Array.from(v.data as ArrayLike<unknown>)).toEqual(c.want);
    });
  });

  it('the builder writes every data type the loader reads back', () => {
    const g = new GraphBuilder();
    CASES.forEach((c, i) => g.init(`w${i}`, new NdArray(c.dtype, c.dims, [...c.want] as never)));
    g.init('s', new NdArray('string', [2], ['x', 'yz']));
    g.output(g.node('Relu', [g.input('x', 'float32', [1])])[0], 'float32');
    const inits = loadModel(g.model()).graph.initializers;
    CASES.forEach((c, i) => expect(Array.from((inits.get(`w${i}`) as NdArray).data as ArrayLike<unknown>), c.dtype).toEqual(c.want));
    expect((inits.get('s') as NdArray).data).toEqual(['x', 'yz']);
  });

  it('refuses counts and sizes the dims do not match', () => {
    refuses(() => decode({ name: 'w', data_type: 1, dims: [3], float_data: [1, 2] }), /tensor 'w': float_data has 2 values, dims \[3\] of float32 need 3/);
    refuses(() => decode({ data_type: 1, dims: [2], raw_data: u8([0, 0, 0, 0]) }), /raw_data has 4 bytes, dims \[2\] of float32 need 8/);
    refuses(() => decode({ data_type: 1, dims: [1], raw_data: u8([0, 0, 0, 0, 0]) }), /raw_data has 5 bytes/);
    refuses(() => decode({ data_type: 22, dims: [3], raw_data: u8([0]) }), /need 2/);
    refuses(() => decode({ data_type: 7, dims: [2], int32_data: [1, 2] }), /int64_data has 0 values/);
    refuses(() => decode({ data_type: 99, dims: [1] }), /unknown data_type 99/);
    refuses(() => decode({ data_type: 0 }), /unknown data_type 0/);
    refuses(() => decode({ data_type: 1, dims: [-1] }), /invalid dims/);
  });

  it('refuses impossible sizes before allocating anything', () => {
    // 1e18 elements backed by 4 bytes; 2^31 doubles (16 GiB) backed by nothing; 2^31 strings backed by one.
    // Each message must be the loader's own check, not an allocation failure caught afterwards.
    const t0 = performance.now();
    refuses(() => decode({ data_type: 1, dims: [1e9, 1e9], raw_data: u8([0, 0, 0, 0]) }), /more elements than can be addressed/);
    refuses(() => decode({ data_type: 1, dims: [1e5, 1e4], raw_data: u8([0, 0, 0, 0]) }), /raw_data has 4 bytes, dims \[100000,10000\] of float32 need 4000000000/);
    refuses(() => decode({ data_type: 11, dims: [2 ** 31] }), /double_data has 0 values/);
    refuses(() => decode({ data_type: 8, dims: [2 ** 31], string_data: [u8([65])] }), /string_data has 1 values/);
    refuses(() => decode({ data_type: 7, dims: [2 ** 20, 2 ** 20], int64_data: [1] }), /int64_data has 1 values/);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe('IR versions and opset imports', () => {
  const addModel = (irVersion: number, opsets: Obj[] = [{ domain: '', version: 17 }]) => encodeModel({
    ir_version: irVersion, opset_import: opsets,
    graph: { name: 'g', node: [{ op_type: 'Add', input: ['x', 'x'], output: ['y'] }], input: [floatInput('x', [2])], output: [floatInput('y', [2])] },
  });

  it.each([3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])('loads and runs IR version %i', async (ir) => {
    const s = await InferenceSession.create(addModel(ir, [{ domain: '', version: ir < 4 ? 7 : 17 }]));
    const out = await s.run({ x: new Tensor('float32', [1, 2], [2]) });
    expect(Array.from((out.y as Tensor).data as Float32Array)).toEqual([2, 4]);
  });

  it.each([0, 1, 2, 14, 99])('refuses IR version %i', (ir) => refuses(() => loadModel(addModel(ir)), /IR version/));

  it('keeps one version per domain, spelling the default domain as ""', () => {
    const m = loadModel(addModel(8, [{ domain: 'ai.onnx', version: 13 }, { domain: 'ai.onnx.ml', version: 3 }, { domain: 'com.microsoft', version: 1 }]));
    expect([...m.opsets].sort()).toEqual([['', 13], ['ai.onnx.ml', 3], ['com.microsoft', 1]]);
    expect(loadModel(addModel(3, [])).opsets.get('')).toBe(1);
  });

  it('reads metadata, producer, value_info and symbolic or unknown dims', () => {
    const m = loadModel(encodeModel({
      producer_name: 'p', producer_version: '1.2', metadata_props: [{ key: 'k', value: 'v' }],
      graph: {
        node: [{ op_type: 'Relu', input: ['x'], output: ['y'] }], output: [{ name: 'y' }],
        input: [{ name: 'x', type: { tensor_type: { elem_type: 10, shape: { dim: [{ dim_param: 'batch' }, {}, { dim_value: 4 }, { dim_value: -1 }] } } } }],
        value_info: [{ name: 'y', type: { sequence_type: { elem_type: { tensor_type: { elem_type: 7 } } } } }],
      },
    }));
    expect(m.producer).toBe('p 1.2');
    expect(m.metadata.get('k')).toBe('v');
    expect(m.graph.inputs[0].type).toEqual({ kind: 'tensor', dtype: 'float16', shape: ['batch', null, 4, null] });
    expect(m.graph.outputs[0].type).toBeUndefined();
    expect(m.graph.valueInfo.get('y')).toEqual({ kind: 'sequence', elem: { kind: 'tensor', dtype: 'int64', shape: undefined } });
  });
});

describe('external data', () => {
  const root = mkdtempSync(join(tmpdir(), 'lastmile-ext-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'model'), outside = join(root, 'outside');
  mkdirSync(dir);
  mkdirSync(outside);
  // 8 bytes of padding, three floats, then trailing bytes that belong to no tensor.
  const weights = new Uint8Array([...u8([9, 9, 9, 9, 9, 9, 9, 9]), ...le(4, [1, 2, 3], (d, o, x) => d.setFloat32(o, x, true)), 7, 7]);
  writeFileSync(join(dir, 'weights.bin'), weights);
  writeFileSync(join(outside, 'secret.bin'), weights);
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'w.bin'), weights);
  symlinkSync(join(outside, 'secret.bin'), join(dir, 'link-out.bin'));
  symlinkSync(join(dir, 'weights.bin'), join(dir, 'link-in.bin'));
  symlinkSync(outside, join(dir, 'linkdir'));

  const model = (kv: Record<string, string>, dims = [3]) => encodeModel({
    graph: {
      node: [{ op_type: 'Add', input: ['x', 'w'], output: ['y'] }], input: [floatInput('x', [3])], output: [floatInput('y', [3])],
      initializer: [{ name: 'w', data_type: 1, dims, data_location: 1, external_data: Object.entries(kv).map(([key, value]) => ({ key, value })) }],
    },
  });
  const load = (kv: Record<string, string>, dims?: number[]) => loadModel(model(kv, dims), { baseDir: dir, what: 'm.onnx' });
  const weightsOf = (kv: Record<string, string>) => Array.from((load(kv).graph.initializers.get('w') as NdArray).data as Float32Array);

  it('reads location, offset and length relative to the model file, and runs', async () => {
    const path = join(dir, 'model.onnx');
    writeFileSync(path, model({ location: 'weights.bin', offset: '8', length: '12' }));
    const s = await InferenceSession.create(path);
    const out = await s.run({ x: new Tensor('float32', [10, 20, 30], [3]) });
    expect(Array.from((out.y as Tensor).data as Float32Array)).toEqual([11, 22, 33]);
  });

  it('takes just the bytes the dims need when length is absent; follows symlinks that stay inside', () => {
    expect(weightsOf({ location: 'weights.bin', offset: '8' })).toEqual([1, 2, 3]);
    expect(weightsOf({ location: 'sub/w.bin', offset: '8' })).toEqual([1, 2, 3]);
    expect(weightsOf({ location: './link-in.bin', offset: '8', length: '12' })).toEqual([1, 2, 3]);
  });

  it.each([
    [{ location: join(outside, 'secret.bin') }, /leaves the model's folder/],
    [{ location: '../outside/secret.bin' }, /leaves the model's folder/],
    [{ location: 'sub/../../outside/secret.bin' }, /leaves the model's folder/],
    [{ location: 'sub\\..\\..\\x.bin' }, /leaves the model's folder/],
    [{ location: 'link-out.bin', offset: '8' }, /resolves outside the model's folder/],
    [{ location: 'linkdir/secret.bin', offset: '8' }, /resolves outside the model's folder/],
    [{ location: 'missing.bin' }, /'missing.bin' not found/],
    [{ location: 'sub' }, /not a regular file/],
    [{ location: '.' }, /resolves outside the model's folder/],
    [{ location: 'weights.bin', offset: '16' }, /range 16\+12 lies outside 'weights.bin' \(22 bytes\)/],
    [{ location: 'weights.bin', offset: '8', length: '8' }, /length 8 does not match the 12 bytes/],
    [{ location: 'weights.bin', offset: '8', length: '16' }, /length 16 does not match/],
    [{ location: 'weights.bin', offset: '-1' }, /offset '-1' is not a non-negative integer/],
    [{ location: 'weights.bin', offset: '1e3' }, /offset '1e3' is not a non-negative integer/],
    [{ location: 'weights.bin', length: ' 12' }, /length ' 12' is not a non-negative integer/],
    [{ offset: '0' }, /external data has no location/],
  ])('refuses %o', (kv, re) => refuses(() => load(kv as Record<string, string>), re));

  it('refuses impossible dims before reading', () => {
    refuses(() => load({ location: 'weights.bin' }, [2 ** 40]), /length 4398046511104 does not match|lies outside/);
  });

  it('needs the model\'s folder: bytes alone cannot reach external files', () => {
    refuses(() => loadModel(model({ location: 'weights.bin' })), /needs the model's folder, but the model was given as bytes/);
  });
});

describe('sparse initializers', () => {
  const sparse = (name: string, dims: number[], values: number[], indices: number[], indexDims: number[]) => ({
    dims, values: { name, data_type: 1, dims: [values.length], float_data: values }, indices: { data_type: 7, dims: indexDims, int64_data: indices },
  });
  const model = (s: Obj) => encodeModel({
    graph: { node: [{ op_type: 'Add', input: ['x', 'w'], output: ['y'] }], input: [floatInput('x', [2, 3])], output: [floatInput('y', [2, 3])], sparse_initializer: [s] },
  });

  it.each([
    ['linear indices', [1, 5], [2]],
    ['coordinates', [0, 1, 1, 2], [2, 2]],
  ])('densifies %s and runs', async (_, indices, indexDims) => {
    const bytes = model(sparse('w', [2, 3], [5, 7], indices, indexDims));
    expect(Array.from((loadModel(bytes).graph.initializers.get('w') as NdArray).data as Float32Array)).toEqual([0, 5, 0, 0, 0, 7]);
    await expectMatchesOrt(bytes, { x: randomF32([2, 3], rng(3)) });
  });

  it.each([
    [sparse('w', [2, 3], [5], [6], [1]), /index 6 of value 0 is outside \[0, 6\)/],
    [sparse('w', [2, 3], [5], [0, 3], [1, 2]), /index 3 of value 0 is outside dim 1 \(size 3\)/],
    [sparse('w', [2, 3], [5, 7], [1], [1]), /fit neither \[2\] nor \[2, 2\]/],
    [sparse('', [2, 3], [5], [1], [1]), /sparse initializer without a name/],
    [sparse('w', [1e6, 1e6], [5], [1], [1]), /too large for 1 stored values/],
    [{ ...sparse('w', [2, 3], [5], [1], [1]), indices: { data_type: 1, dims: [1], float_data: [1] } }, /indices must be integers/],
    [{ dims: [2] }, /sparse initializer without a name/],
  ])('refuses %#', (s, re) => refuses(() => loadModel(model(s)), re));

  it('reads sparse tensor attributes', () => {
    const m = loadModel(encodeModel({
      graph: { node: [{ op_type: 'Constant', output: ['c'], attribute: [{ name: 'sparse_value', type: 11, sparse_tensor: sparse('c', [4], [2], [3], [1]) }] }], output: [{ name: 'c' }] },
    }));
    const attr = m.graph.nodes[0].attrs.get('sparse_value')!;
    expect(attr.type).toBe('sparse_tensor');
    expect(Array.from((attr.value as NdArray).data as Float32Array)).toEqual([0, 0, 0, 2]);
  });
});

describe('model-local functions', () => {
  const attrRef = (name: string, ref: string) => ({ name, type: 1, ref_attr_name: ref });
  /** Leaky(x; alpha = 0.5) = LeakyRelu(x, alpha); Twice(x; k) = Leaky(Leaky(x; alpha = k); alpha = k). */
  const functions = [
    { name: 'Leaky', domain: 'local', input: ['a'], output: ['b'], attribute_proto: [{ name: 'alpha', type: 1, f: 0.5 }], opset_import: [{ domain: '', version: 17 }],
      node: [{ op_type: 'LeakyRelu', input: ['a'], output: ['b'], attribute: [attrRef('alpha', 'alpha')] }] },
    { name: 'Twice', domain: 'local', input: ['a'], output: ['b'], attribute: ['k'], opset_import: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }],
      node: [
        { op_type: 'Leaky', domain: 'local', name: 'same', input: ['a'], output: ['t'], attribute: [attrRef('alpha', 'k')] },
        { op_type: 'Leaky', domain: 'local', name: 'same', input: ['t'], output: ['b'], attribute: [attrRef('alpha', 'k')] },
      ] },
  ];
  const model = (nodes: Obj[], fns: Obj[] = functions) => encodeModel({
    opset_import: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }], functions: fns,
    graph: { node: nodes, input: [floatInput('x', [4])], output: nodes.map((n) => ({ name: (n.output as string[])[0], type: { tensor_type: { elem_type: 1 } } })) },
  });

  it('binds attribute references to the caller or the default, inlines nested calls, and matches onnxruntime', async () => {
    const bytes = model([
      { op_type: 'Leaky', domain: 'local', name: 'c1', input: ['x'], output: ['given'], attribute: [{ name: 'alpha', type: 1, f: 0.1 }] },
      { op_type: 'Leaky', domain: 'local', name: 'c2', input: ['x'], output: ['dflt'] },
      { op_type: 'Twice', domain: 'local', name: 'c3', input: ['x'], output: ['nested'], attribute: [{ name: 'k', type: 1, f: 0.2 }] },
    ], [functions[0], { ...functions[1], node: functions[1].node.map((n, i) => ({ ...n, name: `n${i}` })) }]);
    const s = await InferenceSession.create(bytes);
    const out = await s.run({ x: new Tensor('float32', [-10, -1, 0, 3], [4]) });
    const vals = (k: string) => Array.from((out[k] as Tensor).data as Float32Array);
    expect(vals('given')).toEqual([-1, -0.1, 0, 3].map(Math.fround));
    expect(vals('dflt')).toEqual([-5, -0.5, 0, 3]);
    expect(vals('nested').map((v) => +v.toFixed(5))).toEqual([-0.4, -0.04, 0, 3]);
    await expectMatchesOrt(bytes, { x: randomF32([4], rng(5), -3, 3) });
  });

  it('gives same-named calls distinct values; an unbound reference falls to the inner default or is left out', async () => {
    const bare = { name: 'Bare', domain: 'local', input: ['a'], output: ['b'], attribute: ['alpha'], node: [{ op_type: 'LeakyRelu', input: ['a'], output: ['b'], attribute: [attrRef('alpha', 'alpha')] }] };
    const m = loadModel(model([
      { op_type: 'Twice', domain: 'local', name: 'call', input: ['x'], output: ['y'] },
      { op_type: 'Bare', domain: 'local', name: 'call', input: ['y'], output: ['z'] },
    ], [...functions, bare]));
    const nodes = inlineFunctions(m.graph.nodes, m);
    expect(nodes.map((n) => [n.opType, n.attrs.get('alpha')?.value])).toEqual([['LeakyRelu', 0.5], ['LeakyRelu', 0.5], ['LeakyRelu', undefined]]);
    expect(new Set(nodes.flatMap((n) => n.outputs)).size).toBe(3);
    const s = InferenceSession.fromModel(m);
    const out = await s.run({ x: new Tensor('float32', [-8, 0, 1, 2], [4]) });
    expect(Array.from((out.z as Tensor).data as Float32Array)).toEqual([-0.02, 0, 1, 2].map(Math.fround)); // 0.5 twice, then the op's own 0.01
  });

  it('imports the domains only a function imports', () => {
    const fns = [{ ...functions[0], opset_import: [{ domain: '', version: 17 }, { domain: 'ai.onnx.ml', version: 2 }] }];
    expect(loadModel(model([{ op_type: 'Leaky', domain: 'local', input: ['x'], output: ['y'] }], fns)).opsets.get('ai.onnx.ml')).toBe(2);
  });

  it('refuses recursion and calls with more inputs than the function declares', async () => {
    const loop = [{ name: 'F', domain: 'local', input: ['a'], output: ['b'], node: [{ op_type: 'F', domain: 'local', input: ['a'], output: ['b'] }] }];
    await expect(InferenceSession.create(model([{ op_type: 'F', domain: 'local', input: ['x'], output: ['y'] }], loop))).rejects.toThrow(/functions nest deeper than 32/);
    await expect(InferenceSession.create(model([{ op_type: 'Leaky', domain: 'local', input: ['x', 'x'], output: ['y'] }]))).rejects.toThrow(ModelLoadError);
  });

  it('refuses a call tree that would expand to millions of nodes', async () => {
    // Each level calls the one below twice: 2^25 leaves.
    const fns = Array.from({ length: 25 }, (_, i) => ({
      name: `L${i}`, domain: 'local', input: ['a'], output: ['b'],
      node: i === 0 ? [{ op_type: 'Relu', input: ['a'], output: ['b'] }]
        : [{ op_type: `L${i - 1}`, domain: 'local', input: ['a'], output: ['t'] }, { op_type: `L${i - 1}`, domain: 'local', input: ['t'], output: ['b'] }],
    }));
    await expect(InferenceSession.create(model([{ op_type: 'L24', domain: 'local', input: ['x'], output: ['y'] }], fns))).rejects.toThrow(/expand to more than/);
  });
});

describe('subgraphs', () => {
  const bool = (v: boolean) => new NdArray('bool', [], Uint8Array.of(v ? 1 : 0));

  it('If branches read outer inputs and initializers, two levels deep, and match onnxruntime', async () => {
    const g = new GraphBuilder();
    const cond = g.input('cond', 'bool', []), x = g.input('x', 'float32', [3]);
    const w = g.init('w', f32([3], [1, -2, 3]));
    const inner = new GraphBuilder('inner'), innerElse = new GraphBuilder('inner_else');
    inner.output(inner.node('Mul', [x, w], {}, ['m'])[0], 'float32', [3]);
    innerElse.output(innerElse.node('Sub', [x, w], {}, ['s'])[0], 'float32', [3]);
    const then = new GraphBuilder('then'), els = new GraphBuilder('else');
    then.output(then.node('If', [cond], { then_branch: inner, else_branch: innerElse }, ['ti'])[0], 'float32', [3]);
    els.output(els.node('Add', [x, w], {}, ['e'])[0], 'float32', [3]);
    g.output(g.node('If', [cond], { then_branch: then, else_branch: els }, ['out'])[0], 'float32', [3]);
    const bytes = g.model({ opset: 13 });
    const m = loadModel(bytes);
    const thenGraph = m.graph.nodes[0].attrs.get('then_branch')!.value as Graph;
    expect(thenGraph.nodes[0].attrs.get('then_branch')!.type).toBe('graph');
    for (const c of [true, false]) await expectMatchesOrt(bytes, { cond: bool(c), x: randomF32([3], rng(9)) });
  });

  it('loads If bodies nested 30 deep', () => {
    const leaf = new GraphBuilder('leaf');
    leaf.output(leaf.node('Relu', ['x'])[0], 'float32');
    let body = leaf;
    for (let i = 0; i < 30; i++) {
      const up = new GraphBuilder(`level${i}`);
      up.output(up.node('If', ['cond'], { then_branch: body, else_branch: leaf }, [`o${i}`])[0], 'float32');
      body = up;
    }
    let g = loadModel(body.model()).graph, depth = 0;
    while (g.nodes[0].opType === 'If') { g = g.nodes[0].attrs.get('then_branch')!.value as Graph; depth++; }
    expect(depth).toBe(30);
  });

  /** Model > Graph > (Node > Attribute > Graph) x levels, written inside out with varint lengths. */
  function nested(levels: number): Uint8Array {
    const varint = (n: number) => { const b: number[] = []; while (n > 127) { b.push((n & 127) | 128); n >>>= 7; } b.push(n); return b; };
    const parts: number[][] = [];
    let len = 0;
    for (let i = 0; i < levels; i++) {
      for (const tag of [0x32, 0x2a, 0x0a]) { // Attribute.g (6), Node.attribute (5), Graph.node (1)
        const head = [tag, ...varint(len)];
        parts.push(head);
        len += head.length;
      }
    }
    return Uint8Array.from([0x08, 8, 0x3a, ...varint(len), ...parts.reverse().flat()]); // ir_version 8, Model.graph (7)
  }

  it.each([34, 5000])(`refuses subgraphs nested %i deep (past ${MAX_NESTING} messages) as a ModelLoadError`, (levels) => {
    refuses(() => loadModel(nested(levels)), new RegExp(`messages nest deeper than ${MAX_NESTING} levels`));
  });
});

describe('test-data values', () => {
  const enc = (type: 'Sequence' | 'Optional', o: Obj) => Msg[type].encode(Msg[type].fromObject(o)).finish();
  const t = (v: number[]) => ({ data_type: 1, dims: [v.length], float_data: v });

  it('decodes sequences of tensors, empty ones included', () => {
    const s = decodeValueFile(enc('Sequence', { elem_type: 1, tensor_values: [t([1]), t([2, 3])] }), 'sequence', 's') as Seq;
    expect(s).toBeInstanceOf(Seq);
    expect(s.items.map((i) => Array.from(i.data as Float32Array))).toEqual([[1], [2, 3]]);
    expect(s.elemType).toBe('float32');
    expect((decodeValueFile(enc('Sequence', { elem_type: 1 }), 'sequence', 's') as Seq).items).toEqual([]);
  });

  it('decodes optionals holding a tensor, a sequence or nothing', () => {
    const a = decodeValueFile(enc('Optional', { elem_type: 1, tensor_value: t([4]) }), 'optional', 'o') as Opt;
    expect(Array.from((a.value as NdArray).data as Float32Array)).toEqual([4]);
    const b = decodeValueFile(enc('Optional', { elem_type: 3, sequence_value: { elem_type: 1, tensor_values: [t([5])] } }), 'optional', 'o') as Opt;
    expect([b.elemKind, (b.value as Seq).items.length]).toEqual(['sequence', 1]);
    expect((decodeValueFile(enc('Optional', { elem_type: 1 }), 'optional', 'o') as Opt).value).toBeNull();
    expect((decodeValueFile(enc('Optional', {}), 'optional', 'o') as Opt).value).toBeNull();
  });

  it('refuses what the engine cannot hold, and corrupt bytes', () => {
    refuses(() => decodeValueFile(enc('Sequence', { elem_type: 4, map_values: [{ key_type: 7 }] }), 'sequence', 's'), /sequences of map values are not supported/);
    refuses(() => decodeValueFile(enc('Sequence', { elem_type: 1, tensor_values: [t([1]), { data_type: 7, dims: [1], int64_data: [1] }] }), 'sequence', 's'), /mixes float32 and int64/);
    refuses(() => decodeValueFile(enc('Optional', { elem_type: 4 }), 'optional', 'o'), /optionals of map values/);
    const good = enc('Sequence', { elem_type: 1, tensor_values: [t([1, 2, 3])] });
    for (let cut = 1; cut < good.length; cut++) {
      try { decodeValueFile(good.subarray(0, cut), 'sequence', 's'); } catch (e) { expect(e).toBeInstanceOf(ModelLoadError); }
    }
    refuses(() => decodeValueFile(u8([0x0a, 0xff, 0xff, 0xff, 0x0f]), 'tensor', 'x.pb'), /x.pb: not a valid tensor protobuf/);
  });
});

/** A model with a bit of everything, for the corruption tests. */
function richModel(): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('x', 'float32', ['batch', 3]), cond = g.input('cond', 'bool', []);
  const w = g.init('w', f32([3], [0.5, -1, 2]));
  g.init('shape', i64([2], [1, 3]));
  g.initializers.push({ name: 'h', data_type: 10, dims: [3], int32_data: [0x3c00, 0x4000, 0x4200] });
  g.initializers.push({ name: 'q', data_type: 22, dims: [3], raw_data: u8([0x78, 0x01]) });
  const then = new GraphBuilder('then'), els = new GraphBuilder('else');
  then.output(then.node('Add', [x, w], {}, ['a'])[0], 'float32');
  els.output(els.node('Sigmoid', [x], {}, ['b'])[0], 'float32');
  const branch = g.node('If', [cond], { then_branch: then, else_branch: els })[0];
  const y = g.node('LeakyRelu', [g.node('Mul', [branch, w])[0]], { alpha: 0.2 })[0];
  g.output(g.node('Twice', [y], {}, 1, 'local')[0], 'float32', ['batch', 3]);
  const proto = g.toProto();
  proto.sparse_initializer = [{ dims: [4], values: { name: 's', data_type: 1, dims: [1], float_data: [3] }, indices: { data_type: 7, dims: [1], int64_data: [2] } }];
  return Msg.Model.encode(Msg.Model.fromObject({
    ir_version: 9, producer_name: 'rich', opset_import: [{ domain: '', version: 17 }, { domain: 'local', version: 1 }],
    metadata_props: [{ key: 'a', value: 'b' }], graph: proto,
    functions: [{ name: 'Twice', domain: 'local', input: ['i'], output: ['o'], opset_import: [{ domain: '', version: 17 }],
      node: [{ op_type: 'Relu', input: ['i'], output: ['t'] }, { op_type: 'Add', input: ['t', 't'], output: ['o'] }] }],
  })).finish();
}

/** Loading either works or throws ModelLoadError; a session made from what loads throws only Lastmile errors. */
function survives(bytes: Uint8Array, label: string) {
  let model;
  try { model = loadModel(bytes, { what: label }); } catch (e) {
    if (!(e instanceof ModelLoadError)) throw new Error(`${label}: ${(e as Error)?.name}: ${(e as Error)?.message}`);
    return 'refused';
  }
  try { InferenceSession.fromModel(model); } catch (e) {
    if (!(e instanceof LastmileError)) throw new Error(`${label}: session: ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
  return 'loaded';
}

const NODE_TESTS = join(import.meta.dirname, '../../shared/onnx-node-tests');
const realModels = (): [string, Uint8Array][] => [
  ['rich', richModel()],
  ...['test_if_seq', 'test_loop11', 'test_scan9_sum', 'test_lstm_defaults', 'test_cast_FLOAT_to_FLOAT8E4M3FN']
    .map((n) => join(NODE_TESTS, n, 'model.onnx')).filter(existsSync).map((p): [string, Uint8Array] => [p.split('/').at(-2)!, readFileSync(p)]),
];

describe('corrupt, truncated and foreign bytes', () => {
  it('the rich model itself loads and runs', async () => {
    const s = await InferenceSession.create(richModel());
    const out = await s.run({ x: new Tensor('float32', [1, 2, 3, 4, 5, 6], [2, 3]), cond: new Tensor('bool', [true], []) });
    expect(Array.from((out[s.outputNames[0]] as Tensor).data as Float32Array).map((v) => +v.toFixed(4))).toEqual([1.5, 0, 20, 4.5, 0, 32]);
  });

  it('every truncation of real models is a ModelLoadError or a smaller valid model', () => {
    const t0 = performance.now(), tally = { refused: 0, loaded: 0 };
    for (const [name, bytes] of realModels()) {
      for (let cut = 0; cut < bytes.length; cut++) tally[survives(bytes.subarray(0, cut), `${name} cut at ${cut}`)]++;
    }
    expect(tally.refused).toBeGreaterThan(100);
    expect(performance.now() - t0).toBeLessThan(30_000);
  });

  it('random byte flips never crash, hang or throw anything but ModelLoadError', () => {
    const r = rng(20240601), t0 = performance.now();
    for (const [name, bytes] of realModels()) {
      for (let k = 0; k < 1500; k++) {
        const b = bytes.slice(), flips = r.int(1, 4);
        for (let f = 0; f < flips; f++) b[r.int(0, b.length - 1)] = r.int(0, 255);
        survives(b, `${name} mutation ${k}`);
      }
    }
    expect(performance.now() - t0).toBeLessThan(30_000);
  });

  it.each([
    ['empty', new Uint8Array(0), /empty file/],
    ['a PNG header', u8([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1]), /not a valid ONNX model|not an ONNX model/],
    ['JSON text', new TextEncoder().encode('{"ir_version": 8, "graph": {"node": []}}'), /not a valid ONNX model|not an ONNX model/],
    ['a TensorProto', encodeTensor({ name: 'w', data_type: 1, dims: [2], float_data: [1, 2] }), /not a valid ONNX model|not an ONNX model/],
    ['a length past the end', u8([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a]), /not a valid ONNX model/],
  ])('refuses %s', (_, bytes, re) => refuses(() => loadModel(bytes), re));

  it('refuses random bytes', () => {
    const r = rng(77);
    for (let k = 0; k < 300; k++) {
      const b = Uint8Array.from({ length: r.int(1, 400) }, () => r.int(0, 255));
      expect(survives(b, `random ${k}`)).toBe('refused');
    }
  });

  it('a session from a path that is not a model is a ModelLoadError', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lastmile-bad-'));
    try {
      writeFileSync(join(dir, 'm.onnx'), 'hello');
      await expect(InferenceSession.create(join(dir, 'm.onnx'))).rejects.toThrow(ModelLoadError);
      await expect(InferenceSession.create(join(dir, 'missing.onnx'))).rejects.toThrow(/cannot read model file/);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });

  it('feeds and weights do not alias the caller\'s bytes', async () => {
    const g = new GraphBuilder();
    g.init('w', f32([2], [1, 2]));
    g.output(g.node('Add', [g.input('x', 'float32', [2]), 'w'])[0], 'float32');
    const bytes = g.model();
    const s = await InferenceSession.create(bytes);
    bytes.fill(0);
    const out = await s.run({ x: feed(f32([2], [10, 10])) });
    expect(Array.from((out[s.outputNames[0]] as Tensor).data as Float32Array)).toEqual([11, 12]);
  });
});
