// TensorProto / SequenceProto / OptionalProto messages -> engine values. Every size is checked
// against the bytes actually present before anything is allocated.
import { readFileSync, statSync, openSync, readSync, closeSync, realpathSync } from 'node:fs';
import { isAbsolute, resolve, sep } from 'node:path';
import { allocStorage, dtypeFromOnnx, NARROW_FLOATS, rawByteSize, type DType, type Storage } from '../engine/dtype.js';
import { ModelLoadError } from '../engine/errors.js';
import { NdArray, Opt, Seq, sizeOf, type Value } from '../engine/tensor.js';
import { bf16ToNumber, f16ToNumber, FORMATS, type MiniName } from '../kernels/cpu/minifloat.js';
import { Msg } from './onnx-schema.js';

type Long = { low: number; high: number; unsigned: boolean; toNumber(): number; toString(): string };
type Any = any; // decoded protobuf messages

export const num = (v: number | Long | undefined | null): number => (v == null ? 0 : typeof v === 'number' ? v : v.toNumber());
export function big(v: number | Long, unsigned = false): bigint {
  if (typeof v === 'number') return BigInt(v);
  const u = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return unsigned ? u : BigInt.asIntN(64, u);
}

export interface LoadContext {
  /** Folder that external data locations are resolved against; undefined when loaded from bytes. */
  baseDir?: string;
  what: string;
}

const has = (m: Any, f: string) => m[f] != null && Object.prototype.hasOwnProperty.call(m, f);
const bytesOf = (m: Any, f: string): Uint8Array | undefined => (has(m, f) ? (m[f] as Uint8Array) : undefined);

export function decodeTensor(t: Any, ctx: LoadContext): NdArray {
  const name = t.name ? `tensor '${t.name}'` : 'unnamed tensor';
  const fail = (msg: string): never => { throw new ModelLoadError(`${ctx.what}: ${name}: ${msg}`); };
  const dtype = dtypeFromOnnx(t.data_type ?? 0) ?? fail(`unknown data_type ${t.data_type}`);
  const dims = (t.dims as (number | Long)[]).map(num);
  if (dims.some((d) => d < 0 || !Number.isSafeInteger(d))) fail(`invalid dims [${dims}]`);
  const n = sizeOf(dims);
  if (!Number.isSafeInteger(n)) fail(`dims [${dims}] overflow`);

  let raw = bytesOf(t, 'raw_data');
  if (t.data_location === 1) raw = readExternal(t, ctx, n, dtype, fail);
  if (t.data_location === 1 || (raw && raw.length > 0)) return fromRaw(dtype, dims, raw ?? new Uint8Array(0), fail);
  return fromFields(t, dtype, dims, n, fail);
}

function readExternal(t: Any, ctx: LoadContext, n: number, dtype: DType, fail: (m: string) => never): Uint8Array {
  const kv = new Map<string, string>((t.external_data as Any[]).map((e) => [e.key, e.value]));
  const location = kv.get('location') ?? fail('external data without a location');
  if (!ctx.baseDir) fail(`external data '${location}' needs the model's path, but the model was given as bytes`);
  if (isAbsolute(location) || location.split(/[\\/]/).includes('..')) fail(`external data location '${location}' leaves the model's folder`);
  const base = realpathSync(ctx.baseDir!);
  let file: string;
  try { file = realpathSync(resolve(base, location)); } catch { return fail(`external data file '${location}' not found`); }
  if (!file.startsWith(base + sep)) fail(`external data location '${location}' leaves the model's folder`);
  const offset = Number(kv.get('offset') ?? 0), size = statSync(file).size;
  const want = Math.ceil(n * rawByteSize(dtype));
  const length = kv.has('length') ? Number(kv.get('length')) : size - offset;
  if (!(offset >= 0 && length >= 0 && offset + length <= size)) fail(`external data range ${offset}+${length} outside '${location}' (${size} bytes)`);
  if (dtype !== 'string' && length < want) fail(`external data holds ${length} bytes, dims need ${want}`);
  if (offset === 0 && length === size) return readFileSync(file);
  const buf = new Uint8Array(length), fd = openSync(file, 'r');
  try { readSync(fd, buf, 0, length, offset); } finally { closeSync(fd); }
  return buf;
}

function fromRaw(dtype: DType, dims: number[], raw: Uint8Array, fail: (m: string) => never): NdArray {
  const n = sizeOf(dims);
  if (dtype === 'string') fail('string tensors cannot use raw_data');
  const need = Math.ceil(n * rawByteSize(dtype));
  if (raw.length < need) fail(`raw_data has ${raw.length} bytes, dims [${dims}] need ${need}`);
  // Copy into an aligned buffer: raw_data may sit at any offset of the model file.
  const bytes = new Uint8Array(need);
  bytes.set(raw.subarray(0, need));
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = allocStorage(dtype, n);
  switch (dtype) {
    case 'float16': case 'bfloat16': {
      const f = dtype === 'float16' ? f16ToNumber : bf16ToNumber, o = out as Float32Array;
      for (let i = 0; i < n; i++) o[i] = f(dv.getUint16(2 * i, true));
      break;
    }
    case 'int4': case 'uint4': case 'float4e2m1': case 'int2': case 'uint2':
      unpackSubByte(dtype, n, (k) => bytes[k], out);
      break;
    default:
      if (NARROW_FLOATS.has(dtype)) { const d = FORMATS[dtype as MiniName].decode, o = out as Float32Array; for (let i = 0; i < n; i++) o[i] = d[bytes[i]]; break; }
      // Little-endian host (every platform Node and browsers run on): reinterpret the copy.
      return new NdArray(dtype, dims, viewAs(dtype, bytes.buffer, n));
  }
  return new NdArray(dtype, dims, out);
}

function viewAs(dtype: DType, buf: ArrayBufferLike, n: number): Storage {
  const ctor = (allocStorage(dtype, 0) as Storage).constructor as { new(b: ArrayBufferLike, o: number, n: number): Storage };
  const lanes = dtype === 'complex64' || dtype === 'complex128' ? 2 : 1;
  return new ctor(buf, 0, n * lanes);
}

/** Sub-byte types: `byteAt(k)` yields packed byte k; elements are packed LSB first. */
function unpackSubByte(dtype: DType, n: number, byteAt: (k: number) => number, out: Storage) {
  const o = out as Float32Array | Int8Array | Uint8Array;
  const bits = dtype === 'int2' || dtype === 'uint2' ? 2 : 4, per = 8 / bits, mask = (1 << bits) - 1;
  const f4 = FORMATS.float4e2m1.decode;
  for (let i = 0; i < n; i++) {
    const v = (byteAt(Math.floor(i / per)) >> ((i % per) * bits)) & mask;
    o[i] = dtype === 'float4e2m1' ? f4[v] : dtype.startsWith('int') && v >> (bits - 1) ? v - (1 << bits) : v;
  }
}

function fromFields(t: Any, dtype: DType, dims: number[], n: number, fail: (m: string) => never): NdArray {
  const out = allocStorage(dtype, n);
  const lanes = dtype === 'complex64' || dtype === 'complex128' ? 2 : 1;
  const need = (src: unknown[], count: number, field: string) => {
    if (src.length !== count) fail(`${field} has ${src.length} values, dims [${dims}] need ${count}`);
  };
  switch (dtype) {
    case 'float32': case 'complex64': need(t.float_data, n * lanes, 'float_data'); (out as Float32Array).set(t.float_data); break;
    case 'float64': case 'complex128': need(t.double_data, n * lanes, 'double_data'); (out as Float64Array).set(t.double_data); break;
    case 'int64': need(t.int64_data, n, 'int64_data'); for (let i = 0; i < n; i++) (out as BigInt64Array)[i] = big(t.int64_data[i]); break;
    case 'uint64': need(t.uint64_data, n, 'uint64_data'); for (let i = 0; i < n; i++) (out as BigUint64Array)[i] = big(t.uint64_data[i], true); break;
    case 'uint32': need(t.uint64_data, n, 'uint64_data'); for (let i = 0; i < n; i++) (out as Uint32Array)[i] = num(t.uint64_data[i]); break;
    case 'string': need(t.string_data, n, 'string_data'); for (let i = 0; i < n; i++) (out as string[])[i] = utf8(t.string_data[i]); break;
    case 'int4': case 'uint4': case 'float4e2m1': case 'int2': case 'uint2': {
      const per = dtype.endsWith('2') ? 4 : 2;
      need(t.int32_data, Math.ceil(n / per), 'int32_data');
      unpackSubByte(dtype, n, (k) => t.int32_data[k] & 0xff, out);
      break;
    }
    default: {
      need(t.int32_data, n, 'int32_data');
      const src = t.int32_data as number[], o = out as Float32Array;
      if (dtype === 'float16') for (let i = 0; i < n; i++) o[i] = f16ToNumber(src[i]);
      else if (dtype === 'bfloat16') for (let i = 0; i < n; i++) o[i] = bf16ToNumber(src[i]);
      else if (NARROW_FLOATS.has(dtype)) { const d = FORMATS[dtype as MiniName].decode; for (let i = 0; i < n; i++) o[i] = d[src[i] & 0xff]; }
      else o.set(src);
    }
  }
  return new NdArray(dtype, dims, out);
}

const decoder = new TextDecoder();
export const utf8 = (b: Uint8Array | string) => (typeof b === 'string' ? b : decoder.decode(b));

export function decodeSparse(s: Any, ctx: LoadContext): NdArray {
  const dims = (s.dims as (number | Long)[]).map(num);
  const values = decodeTensor(s.values ?? {}, ctx);
  const indices = decodeTensor(s.indices ?? {}, ctx);
  const n = sizeOf(dims), nnz = values.size;
  if (!Number.isSafeInteger(n) || dims.some((d) => d < 0)) throw new ModelLoadError(`${ctx.what}: sparse tensor has invalid dims [${dims}]`);
  const out = NdArray.zeros(values.dtype, dims), idx = indices.numbers();
  // Indices are either linearised [nnz] or coordinates [nnz, rank].
  const coords = indices.shape.length === 2;
  const strides = dims.map((_, i) => sizeOf(dims.slice(i + 1)));
  for (let k = 0; k < nnz; k++) {
    let flat = 0;
    if (coords) for (let r = 0; r < dims.length; r++) flat += idx[k * dims.length + r] * strides[r];
    else flat = idx[k];
    if (!(flat >= 0 && flat < n)) throw new ModelLoadError(`${ctx.what}: sparse index ${flat} outside [0, ${n})`);
    (out.data as unknown[])[flat] = (values.data as unknown[])[k];
  }
  return out;
}

/** A test-data file: TensorProto, SequenceProto or OptionalProto, chosen by the caller's expected kind. */
export function decodeValueFile(bytes: Uint8Array, kind: 'tensor' | 'sequence' | 'optional', what: string): Value {
  try {
    if (kind === 'tensor') return decodeTensor(Msg.Tensor.decode(bytes), { what });
    if (kind === 'sequence') return decodeSequence(Msg.Sequence.decode(bytes), { what });
    return decodeOptional(Msg.Optional.decode(bytes), { what });
  } catch (e) {
    if (e instanceof ModelLoadError) throw e;
    throw new ModelLoadError(`${what}: not a valid ${kind} protobuf (${(e as Error).message})`);
  }
}

function decodeSequence(s: Any, ctx: LoadContext): Seq {
  const items = (s.tensor_values as Any[]).map((t) => decodeTensor(t, ctx));
  return new Seq(items, items[0]?.dtype);
}

function decodeOptional(o: Any, ctx: LoadContext): Opt {
  if (o.elem_type === 1 && has(o, 'tensor_value')) return new Opt(decodeTensor(o.tensor_value, ctx), 'tensor');
  if (o.elem_type === 3 && has(o, 'sequence_value')) return new Opt(decodeSequence(o.sequence_value, ctx), 'sequence');
  return new Opt(null, o.elem_type === 3 ? 'sequence' : 'tensor');
}

