// TensorProto / SparseTensorProto / SequenceProto / OptionalProto messages -> engine values. Every
// size is checked against the bytes actually present before anything is allocated.
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { allocStorage, dtypeFromOnnx, isInteger, lanes, NARROW_FLOATS, rawByteSize, type DType, type Storage } from '../engine/dtype.js';
import { ModelLoadError } from '../engine/errors.js';
import { NdArray, Opt, Seq, sizeOf, type Value } from '../engine/tensor.js';
import { bf16ToNumber, f16ToNumber, FORMATS, type MiniName } from '../kernels/cpu/minifloat.js';
import { Msg } from './onnx-schema.js';

type Long = { low: number; high: number; unsigned: boolean; toNumber(): number; toString(): string };
type Any = any; // decoded protobuf messages
type Fail = (msg: string) => never;

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
const SUB_BYTE: ReadonlySet<DType> = new Set<DType>(['int4', 'uint4', 'float4e2m1', 'int2', 'uint2']);
const rawSize = (dtype: DType, n: number) => Math.ceil(n * rawByteSize(dtype));

/** Checked dims: non-negative safe integers whose product is a safe integer. */
function readDims(list: (number | Long)[], fail: Fail): number[] {
  const dims = list.map(num);
  if (dims.some((d) => d < 0 || !Number.isSafeInteger(d))) fail(`invalid dims [${dims}]`);
  if (!Number.isSafeInteger(sizeOf(dims))) fail(`dims [${dims}] hold more elements than can be addressed`);
  return dims;
}

export function decodeTensor(t: Any, ctx: LoadContext): NdArray {
  const name = t.name ? `tensor '${t.name}'` : 'unnamed tensor';
  const fail: Fail = (msg) => { throw new ModelLoadError(`${ctx.what}: ${name}: ${msg}`); };
  const dtype = dtypeFromOnnx(t.data_type ?? 0) ?? fail(`unknown data_type ${t.data_type ?? 0}`);
  const dims = readDims(t.dims, fail), n = sizeOf(dims);
  if (t.data_location === 1) return fromRaw(dtype, dims, readExternal(t, ctx, dtype, n, fail), true, fail);
  // The spec's precedence: raw_data when present (even empty), else the typed field.
  if (has(t, 'raw_data')) return fromRaw(dtype, dims, t.raw_data, false, fail);
  return fromFields(t, dtype, dims, fail);
}

/** Reads an external data range, refusing any location that resolves outside the model's folder. */
function readExternal(t: Any, ctx: LoadContext, dtype: DType, n: number, fail: Fail): Uint8Array {
  const kv = new Map<string, string>((t.external_data as Any[]).map((e) => [e.key, e.value]));
  const location = kv.get('location') || fail('external data has no location');
  if (dtype === 'string') fail('string tensors cannot use external data');
  if (!ctx.baseDir) fail(`external data '${location}' needs the model's folder, but the model was given as bytes`);
  if (isAbsolute(location) || /^[a-zA-Z]:/.test(location) || location.split(/[\\/]/).includes('..')) fail(`external data location '${location}' leaves the model's folder`);
  const want = rawSize(dtype, n);
  const offset = intKey(kv, 'offset', 0, fail), length = intKey(kv, 'length', want, fail);
  if (length !== want) fail(`external data length ${length} does not match the ${want} bytes that dims [${t.dims.map(num)}] of ${dtype} need`);
  let base = '', file = '';
  try { base = realpathSync(ctx.baseDir!); } catch { fail(`model folder '${ctx.baseDir}' cannot be resolved`); }
  try { file = realpathSync(resolve(base, location)); } catch { fail(`external data file '${location}' not found`); }
  // Catches symlinks anywhere on the path as well: both sides are fully resolved.
  const rel = relative(base, file);
  if (!rel || rel === '..' || rel.startsWith('..' + sep) || isAbsolute(rel)) fail(`external data location '${location}' resolves outside the model's folder (to '${file}')`);
  let fd = -1;
  try { fd = openSync(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0)); } catch (e) { fail(`cannot open external data file '${location}': ${(e as Error).message}`); }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) fail(`external data location '${location}' is not a regular file`);
    if (offset + length > st.size) fail(`external data range ${offset}+${length} lies outside '${location}' (${st.size} bytes)`);
    const buf = new Uint8Array(length);
    // readSync moves at most 2 GiB per call.
    for (let done = 0; done < length;) {
      const k = readSync(fd, buf, done, Math.min(length - done, 1 << 30), offset + done);
      if (k === 0) fail(`external data file '${location}' ended early`);
      done += k;
    }
    return buf;
  } finally { closeSync(fd); }
}

function intKey(kv: Map<string, string>, key: string, def: number, fail: Fail): number {
  const v = kv.get(key);
  if (v === undefined) return def;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) fail(`external data ${key} '${v}' is not a non-negative integer`);
  return Number(v);
}

/** `fresh`: the bytes are our own aligned copy (external data), so typed views may share them. */
function fromRaw(dtype: DType, dims: number[], raw: Uint8Array, fresh: boolean, fail: Fail): NdArray {
  if (dtype === 'string') fail('string tensors cannot use raw_data');
  const n = sizeOf(dims), need = rawSize(dtype, n);
  if (raw.length !== need) fail(`raw_data has ${raw.length} bytes, dims [${dims}] of ${dtype} need ${need}`);
  if (!NARROW_FLOATS.has(dtype) && !SUB_BYTE.has(dtype)) {
    // Little-endian host (every platform Node and browsers run on): reinterpret an aligned copy. The copy
    // also keeps the caller's bytes from aliasing the weights. (new Uint8Array, not raw.slice(): on a
    // Node Buffer slice is a view.)
    const view = viewAs(dtype, fresh ? raw : new Uint8Array(raw), n);
    if (dtype === 'bool') normBool(view as Uint8Array);
    return new NdArray(dtype, dims, view);
  }
  const out = allocStorage(dtype, n), o = out as Float32Array;
  if (dtype === 'float16' || dtype === 'bfloat16') {
    const f = dtype === 'float16' ? f16ToNumber : bf16ToNumber;
    for (let i = 0; i < n; i++) o[i] = f(raw[2 * i] | (raw[2 * i + 1] << 8));
  } else if (SUB_BYTE.has(dtype)) unpackSubByte(dtype, n, (k) => raw[k], out);
  else { const d = FORMATS[dtype as MiniName].decode; for (let i = 0; i < n; i++) o[i] = d[raw[i]]; }
  return new NdArray(dtype, dims, out);
}

function viewAs(dtype: DType, bytes: Uint8Array, n: number): Storage {
  const ctor = (allocStorage(dtype, 0) as Storage).constructor as { new(b: ArrayBufferLike, o: number, n: number): Storage };
  return new ctor(bytes.buffer, bytes.byteOffset, n * lanes(dtype));
}

/** Any non-zero byte is true; kernels rely on bools being exactly 0 or 1. */
function normBool(b: Uint8Array) { for (let i = 0; i < b.length; i++) b[i] = b[i] ? 1 : 0; }

/** Sub-byte types: `byteAt(k)` yields packed byte k; elements are packed LSB first. */
function unpackSubByte(dtype: DType, n: number, byteAt: (k: number) => number, out: Storage) {
  const o = out as Float32Array | Int8Array | Uint8Array;
  const bits = dtype === 'int2' || dtype === 'uint2' ? 2 : 4, per = 8 / bits, mask = (1 << bits) - 1;
  const f4 = FORMATS.float4e2m1.decode, signed = dtype === 'int4' || dtype === 'int2';
  for (let i = 0; i < n; i++) {
    const v = (byteAt(Math.floor(i / per)) >> ((i % per) * bits)) & mask;
    o[i] = dtype === 'float4e2m1' ? f4[v] : signed && v >> (bits - 1) ? v - (1 << bits) : v;
  }
}

/** The typed field each dtype's values live in when raw_data is absent. */
function fieldOf(dtype: DType): string {
  switch (dtype) {
    case 'float32': case 'complex64': return 'float_data';
    case 'float64': case 'complex128': return 'double_data';
    case 'int64': return 'int64_data';
    case 'uint64': case 'uint32': return 'uint64_data';
    case 'string': return 'string_data';
    default: return 'int32_data';
  }
}

function fromFields(t: Any, dtype: DType, dims: number[], fail: Fail): NdArray {
  const n = sizeOf(dims), field = fieldOf(dtype), src = t[field] as Any[];
  // Sub-byte types pack 2 or 4 elements per int32_data entry.
  const count = SUB_BYTE.has(dtype) ? rawSize(dtype, n) : n * lanes(dtype);
  if (src.length !== count) fail(`${field} has ${src.length} values, dims [${dims}] of ${dtype} need ${count}`);
  const out = allocStorage(dtype, n);
  const o = out as Float32Array;
  switch (dtype) {
    case 'int64': for (let i = 0; i < n; i++) (out as BigInt64Array)[i] = big(src[i]); break;
    case 'uint64': for (let i = 0; i < n; i++) (out as BigUint64Array)[i] = big(src[i], true); break;
    case 'uint32': for (let i = 0; i < n; i++) o[i] = num(src[i]); break;
    case 'string': for (let i = 0; i < n; i++) (out as string[])[i] = utf8(src[i]); break;
    case 'float16': for (let i = 0; i < n; i++) o[i] = f16ToNumber(src[i] & 0xffff); break;
    case 'bfloat16': for (let i = 0; i < n; i++) o[i] = bf16ToNumber(src[i] & 0xffff); break;
    case 'bool': for (let i = 0; i < n; i++) o[i] = src[i] ? 1 : 0; break;
    default:
      if (SUB_BYTE.has(dtype)) unpackSubByte(dtype, n, (k) => src[k] & 0xff, out);
      else if (NARROW_FLOATS.has(dtype)) { const d = FORMATS[dtype as MiniName].decode; for (let i = 0; i < n; i++) o[i] = d[src[i] & 0xff]; }
      else o.set(src); // float32/64, complex, and the narrow integers (which the typed array truncates)
  }
  return new NdArray(dtype, dims, out);
}

const decoder = new TextDecoder();
export const utf8 = (b: Uint8Array | string) => (typeof b === 'string' ? b : decoder.decode(b));

/**
 * A sparse tensor, densified. Its dense form may be much larger than its encoding, but only so much:
 * at most DENSE_RATIO elements per stored value, or DENSE_FLOOR elements whatever the count.
 */
const DENSE_RATIO = 1024, DENSE_FLOOR = 1 << 24;

export function decodeSparse(s: Any, ctx: LoadContext): NdArray {
  const label = s.values?.name ? `sparse tensor '${s.values.name}'` : 'sparse tensor';
  const fail: Fail = (msg) => { throw new ModelLoadError(`${ctx.what}: ${label}: ${msg}`); };
  const dims = readDims(s.dims, fail), n = sizeOf(dims);
  const values = decodeTensor(s.values ?? fail('no values'), ctx);
  const indices = decodeTensor(s.indices ?? fail('no indices'), ctx);
  const nnz = values.size, rank = dims.length;
  if (values.shape.length !== 1) fail(`values must be 1-D [NNZ], got [${values.shape}]`);
  if (!isInteger(indices.dtype)) fail(`indices must be integers, got ${indices.dtype}`);
  const coords = indices.shape.length === 2;
  if (indices.shape[0] !== nnz || (coords ? indices.shape[1] !== rank : indices.shape.length !== 1)) {
    fail(`indices of shape [${indices.shape}] fit neither [${nnz}] nor [${nnz}, ${rank}]`);
  }
  if (n > Math.max(DENSE_FLOOR, DENSE_RATIO * nnz)) fail(`dense shape [${dims}] (${n} elements) is too large for ${nnz} stored values`);
  const out = NdArray.zeros(values.dtype, dims), idx = indices.numbers(), ln = lanes(values.dtype);
  const strides = dims.map((_, i) => sizeOf(dims.slice(i + 1)));
  for (let k = 0; k < nnz; k++) {
    let flat = 0;
    if (coords) for (let r = 0; r < rank; r++) {
      const c = idx[k * rank + r];
      if (!(c >= 0 && c < dims[r])) fail(`index ${c} of value ${k} is outside dim ${r} (size ${dims[r]})`);
      flat += c * strides[r];
    } else flat = idx[k];
    if (!(flat >= 0 && flat < n)) fail(`index ${flat} of value ${k} is outside [0, ${n})`);
    for (let l = 0; l < ln; l++) (out.data as unknown[])[flat * ln + l] = (values.data as unknown[])[k * ln + l];
  }
  return out;
}

/** A test-data file: TensorProto, SequenceProto or OptionalProto, chosen by the caller's expected kind. */
export function decodeValueFile(bytes: Uint8Array, kind: 'tensor' | 'sequence' | 'optional', what: string): Value {
  const ctx = { what };
  try {
    if (kind === 'tensor') return decodeTensor(Msg.Tensor.decode(bytes), ctx);
    if (kind === 'sequence') return decodeSequence(Msg.Sequence.decode(bytes), ctx);
    return decodeOptional(Msg.Optional.decode(bytes), ctx);
  } catch (e) {
    if (e instanceof ModelLoadError) throw e;
    throw new ModelLoadError(`${what}: not a valid ${kind} protobuf (${(e as Error)?.message ?? e})`);
  }
}

// SequenceProto / OptionalProto elem_type values.
const ELEM_KINDS = ['undefined', 'tensor', 'sparse tensor', 'sequence', 'map', 'optional'];
const kindName = (t: number) => ELEM_KINDS[t] ?? `elem_type ${t}`;

function decodeSequence(s: Any, ctx: LoadContext): Seq {
  const t = s.elem_type ?? 0;
  const nested = s.sequence_values.length + s.map_values.length + s.optional_values.length;
  if ((t !== 0 && t !== 1) || nested) throw new ModelLoadError(`${ctx.what}: sequences of ${t > 1 ? kindName(t) : 'non-tensor'} values are not supported, only sequences of tensors`);
  const items = (s.tensor_values as Any[]).map((x) => decodeTensor(x, ctx));
  const mixed = items.find((x) => x.dtype !== items[0].dtype);
  if (mixed) throw new ModelLoadError(`${ctx.what}: sequence mixes ${items[0].dtype} and ${mixed.dtype} tensors`);
  return new Seq(items, items[0]?.dtype);
}

function decodeOptional(o: Any, ctx: LoadContext): Opt {
  const t = o.elem_type ?? 0;
  if (t === 0) return new Opt(null, 'tensor');
  if (t === 1) return new Opt(has(o, 'tensor_value') ? decodeTensor(o.tensor_value, ctx) : null, 'tensor');
  if (t === 3) return new Opt(has(o, 'sequence_value') ? decodeSequence(o.sequence_value, ctx) : null, 'sequence');
  throw new ModelLoadError(`${ctx.what}: optionals of ${kindName(t)} values are not supported`);
}
