// Value files for `lastmile run`: NumPy .npy (read and write), TensorProto .pb, and JSON tensors;
// plus the deterministic random values given to inputs the user leaves out.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { allocStorage, dtypeFromOnnx, isBigInt, isFloat, isInteger, lanes, NARROW_FLOATS, type DType, type Storage } from '../engine/dtype.js';
import { InputError } from '../engine/errors.js';
import type { Dim, TypeInfo } from '../engine/graph.js';
import type { OutputValue } from '../engine/session.js';
import { NdArray, Seq, sizeOf, Tensor, toNdArray, type Value } from '../engine/tensor.js';
import { f16ToNumber, numberToF16, roundInPlace } from '../kernels/cpu/minifloat.js';
import { decodeValueFile } from '../loaders/tensor-proto.js';

// ---- .npy ----

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const NPY: Record<string, DType> = {
  f2: 'float16', f4: 'float32', f8: 'float64', i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64',
  u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64', b1: 'bool', c8: 'complex64', c16: 'complex128',
};
const ITEM: Record<string, number> = { f2: 2, f4: 4, f8: 8, i1: 1, i2: 2, i4: 4, i8: 8, u1: 1, u2: 2, u4: 4, u8: 8, b1: 1, c8: 8, c16: 16 };

export function readNpy(bytes: Uint8Array, what: string): NdArray {
  const fail = (m: string): never => { throw new InputError(`${what}: ${m}`); };
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) fail('not a .npy file (no \\x93NUMPY magic)');
  const major = bytes[6], dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major < 1 || major > 3) fail(`unsupported .npy format version ${major}.${bytes[7]}`);
  const start = major === 1 ? 10 : 12;
  if (bytes.length < start) fail('truncated .npy header');
  const end = start + (major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true));
  if (end > bytes.length) fail('truncated .npy header');
  const header = new TextDecoder().decode(bytes.subarray(start, end));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1] ?? fail(`header has no simple 'descr' (structured dtypes are not supported): ${header.trim()}`);
  if (/'fortran_order'\s*:\s*True/.test(header)) fail('Fortran-order arrays are not supported; save np.ascontiguousarray(a) instead');
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1] ?? fail(`header has no 'shape': ${header.trim()}`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`bad shape (${shapeText})`);
  const [order, code] = [descr[0], descr.slice(1)];
  if (order === '>' && ITEM[code] > 1) fail(`big-endian dtype '${descr}' is not supported; save a.astype('<${code}') instead`);
  const dtype = NPY[code] ?? fail(`dtype '${descr}' is not supported (supported: ${Object.keys(NPY).join(' ')})`);
  const n = sizeOf(shape), need = n * ITEM[code], body = bytes.subarray(end);
  if (body.length < need) fail(`truncated data: shape [${shape}] of '${descr}' needs ${need} bytes, the file has ${body.length}`);
  const copy = new Uint8Array(need); // a fresh, aligned buffer: Node's Buffers are views into a shared pool
  copy.set(body.subarray(0, need));
  if (dtype === 'float16') {
    const bits = new Uint16Array(copy.buffer), out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = f16ToNumber(bits[i]);
    return new NdArray(dtype, shape, out);
  }
  const ctor = allocStorage(dtype, 0).constructor as new (b: ArrayBuffer, o: number, n: number) => Storage;
  return new NdArray(dtype, shape, new ctor(copy.buffer, 0, n * lanes(dtype)));
}

/** The .npy type code a dtype is written as: narrow floats other than float16 widen to f4, sub-byte ints to one byte. */
function npyCode(d: DType): string | undefined {
  if (d === 'float16') return '<f2';
  if (NARROW_FLOATS.has(d)) return '<f4';
  if (d === 'int4' || d === 'int2') return '|i1';
  if (d === 'uint4' || d === 'uint2') return '|u1';
  const code = Object.keys(NPY).find((k) => NPY[k] === d);
  return code && (ITEM[code] === 1 ? `|${code}` : `<${code}`);
}

/** True when `writeNpy` stores the dtype as a wider numpy type (the caller says so). */
export const npyWidens = (d: DType) => (NARROW_FLOATS.has(d) && d !== 'float16') || ['int4', 'uint4', 'int2', 'uint2'].includes(d);
export const npyWritable = (d: DType) => npyCode(d) !== undefined;

export function writeNpy(a: NdArray): Uint8Array {
  const code = npyCode(a.dtype);
  if (!code) throw new InputError(`dtype ${a.dtype} has no .npy form`);
  const shape = a.shape.length === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(', ')})`;
  let header = `{'descr': '${code}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n'; // numpy pads the preamble to 64 bytes
  const body = npyBody(a);
  const out = new Uint8Array(10 + header.length + body.length);
  out.set(MAGIC);
  out.set([1, 0, header.length & 0xff, header.length >> 8], 6);
  out.set(new TextEncoder().encode(header), 10);
  out.set(body, 10 + header.length);
  return out;
}

function npyBody(a: NdArray): Uint8Array {
  const src = a.data as Exclude<Storage, string[]>;
  if (a.dtype === 'float16') return new Uint8Array(Uint16Array.from(src as Float32Array, numberToF16).buffer);
  return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
}

// ---- JSON ----

const DTYPES: DType[] = Array.from({ length: 32 }, (_, i) => dtypeFromOnnx(i)).filter((d): d is DType => !!d);

/** `{"dtype","dims","data"}` or a plain (nested) array that takes the input's declared dtype. */
export function readJsonTensor(text: string, declared: DType | undefined, what: string): NdArray {
  const fail = (m: string): never => { throw new InputError(`${what}: ${m}`); };
  let j: unknown;
  try { j = JSON.parse(text); } catch (e) { return fail(`not valid JSON (${(e as Error).message})`); }
  const obj = typeof j === 'object' && j !== null && !Array.isArray(j) ? (j as { dtype?: unknown; dims?: unknown; data?: unknown }) : undefined;
  const data = obj ? obj.data : j;
  if (obj && data === undefined) fail('a JSON tensor object needs a "data" field');
  const dtype = obj?.dtype ?? declared ?? fail('the input declares no dtype, so give {"dtype": ..., "dims": [...], "data": [...]}');
  if (!DTYPES.includes(dtype as DType)) fail(`unknown dtype ${JSON.stringify(dtype)} (known: ${DTYPES.join(', ')})`);
  const dims = obj?.dims ?? nestedDims(data, fail);
  if (!Array.isArray(dims) || dims.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`"dims" must be a list of non-negative integers, got ${JSON.stringify(dims)}`);
  const flat = Array.isArray(data) ? data.flat(Infinity) : [data];
  return fromList(dtype as DType, dims as number[], flat, fail);
}

/** Shape of a rectangular nested array; a ragged one is an error. */
function nestedDims(v: unknown, fail: (m: string) => never): number[] {
  if (!Array.isArray(v)) return [];
  const inner = v.map((x) => nestedDims(x, fail));
  if (inner.some((d) => d.join() !== inner[0].join())) fail('ragged nested array: every row must have the same shape');
  return [v.length, ...(inner[0] ?? [])];
}

function fromList(dtype: DType, dims: number[], flat: unknown[], fail: (m: string) => never): NdArray {
  const n = sizeOf(dims), want = n * lanes(dtype);
  if (flat.length !== want) fail(`dims [${dims}] need ${want} values, got ${flat.length}`);
  const out = allocStorage(dtype, n) as unknown[];
  for (let i = 0; i < want; i++) out[i] = element(dtype, flat[i], fail);
  if (NARROW_FLOATS.has(dtype)) roundInPlace(dtype, out as unknown as Float32Array);
  return new NdArray(dtype, dims, out as unknown as Storage);
}

function element(dtype: DType, v: unknown, fail: (m: string) => never): unknown {
  if (dtype === 'string') return String(v);
  if (typeof v !== 'number' && typeof v !== 'boolean' && typeof v !== 'string') fail(`value ${JSON.stringify(v)} is not a ${dtype}`);
  if (isBigInt(dtype)) {
    try { return BigInt(v as never); } catch { return fail(`value ${JSON.stringify(v)} is not an integer`); }
  }
  const x = Number(v);
  if (Number.isNaN(x) && v !== 'NaN') fail(`value ${JSON.stringify(v)} is not a number`);
  if (isInteger(dtype) && !Number.isInteger(x)) fail(`value ${JSON.stringify(v)} is not an integer (dtype ${dtype})`);
  return x;
}

/** A tensor as the JSON input format, so `run --json` output can be fed back. NaN, ±Infinity and unsafe int64 become strings. */
export function tensorJson(a: NdArray): { dtype: DType; dims: number[]; data: unknown[] } {
  const data = Array.from(a.data as ArrayLike<unknown>, (v) => {
    if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : String(v);
    if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
    return a.dtype === 'bool' ? !!v : v;
  });
  return { dtype: a.dtype, dims: [...a.shape], data };
}

// ---- input files ----

/** Reads one input file; the format follows the extension (.npy, .pb, .json), else the content. */
export function readInputFile(path: string, declared: TypeInfo | undefined, name: string): Value {
  let bytes: Uint8Array;
  try { bytes = readFileSync(path); } catch (e) { throw new InputError(`input '${name}': cannot read '${path}': ${(e as Error).message}`); }
  const what = `input '${name}' from '${path}'`;
  const ext = extname(path).toLowerCase();
  const first = bytes.find((b) => b > 0x20);
  if (ext === '.npy' || (ext !== '.pb' && ext !== '.json' && MAGIC.every((b, i) => bytes[i] === b))) return readNpy(bytes, what);
  if (ext === '.json' || (ext !== '.pb' && (first === 0x7b || first === 0x5b))) {
    return readJsonTensor(new TextDecoder().decode(bytes), declared?.kind === 'tensor' ? declared.dtype : undefined, what);
  }
  const kind = declared?.kind === 'sequence' || declared?.kind === 'optional' ? declared.kind : 'tensor';
  return decodeValueFile(bytes, kind, what);
}

/** Engine value -> what session.run takes (narrow floats stay widened: Tensor accepts that form). */
export function toFeed(v: Value): Tensor | Tensor[] | null {
  if (v instanceof NdArray) return new Tensor(v.dtype, v.data, v.shape);
  if (v instanceof Seq) return v.items.map((t) => new Tensor(t.dtype, t.data, t.shape));
  return v.value === null ? null : toFeed(v.value);
}

/** session.run's output -> engine values (decodes float16 bit patterns). */
export function fromOutput(o: OutputValue): NdArray | NdArray[] | null {
  if (o === null) return null;
  return Array.isArray(o) ? o.map(toNdArray) : toNdArray(o);
}

// ---- random inputs ----

/** xorshift32: deterministic and the same on every platform. */
export function rng(seed: number) {
  let s = (seed ^ 0x9e3779b9) >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
}

const TOKEN_LIKE = /(^|_)(input_?ids?|ids?|tokens?|token_ids|positions?|position_ids)$/i;

/** Values in a range that suits the dtype and the input's name; `range` says which, for the message. */
export function randomTensor(name: string, dtype: DType, shape: number[], next: () => number): { value: NdArray; range: string } {
  const n = sizeOf(shape);
  const fill = (range: string, f: (i: number) => unknown) => {
    const out = allocStorage(dtype, n) as unknown[];
    for (let i = 0; i < out.length; i++) out[i] = f(i);
    if (NARROW_FLOATS.has(dtype)) roundInPlace(dtype, out as unknown as Float32Array);
    return { value: new NdArray(dtype, shape, out as unknown as Storage), range };
  };
  const int = (lo: number, hi: number) => () => { const v = lo + Math.floor(next() * (hi - lo)); return isBigInt(dtype) ? BigInt(v) : v; };
  if (isFloat(dtype) || dtype === 'complex64' || dtype === 'complex128') return fill('uniform in [-1, 1)', () => 2 * next() - 1);
  if (dtype === 'bool') return fill('random true/false', () => (next() < 0.5 ? 1 : 0));
  if (dtype === 'string') return fill('strings "s0", "s1", ...', (i) => `s${i}`);
  if (/mask/i.test(name)) return fill('all ones (looks like a mask)', int(1, 2));
  if (TOKEN_LIKE.test(name)) return fill('ints in [0, 100) (looks like token ids)', int(0, 100));
  if (isInteger(dtype)) return fill('ints in [0, 10)', int(0, 10));
  throw new InputError(`input '${name}': cannot make random values of dtype ${dtype}; give it with --input`);
}

/** Concrete shape for a declared one: symbolic dims from `dims`, else 1 (noted in `defaults`). */
export function concreteShape(name: string, shape: Dim[] | undefined, dims: Map<string, number>, defaults: string[]): number[] {
  if (!shape) { defaults.push(`input '${name}' declares no shape: used [1]`); return [1]; }
  return shape.map((d, i) => {
    if (typeof d === 'number') return d;
    if (d === null) { defaults.push(`input '${name}' dim ${i} is unknown: used 1`); return 1; }
    if (!dims.has(d)) { dims.set(d, 1); defaults.push(`${d}=1 (set it with --dim ${d}=N)`); }
    return dims.get(d)!;
  });
}
