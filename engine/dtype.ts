// Element types: ONNX enum numbers, the names the public API uses, and how the engine stores each.
// Every narrow float (float16, bfloat16, float8*, float4) is held in a Float32Array whose values are
// already rounded to the narrow type, so kernels compute in float32 and the engine rounds once per node.

import { arenaBuffer } from './arena.js';

export type DType =
  | 'float32' | 'float64' | 'float16' | 'bfloat16'
  | 'float8e4m3fn' | 'float8e4m3fnuz' | 'float8e5m2' | 'float8e5m2fnuz' | 'float8e8m0' | 'float4e2m1'
  | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64'
  | 'int4' | 'uint4' | 'int2' | 'uint2'
  | 'bool' | 'string' | 'complex64' | 'complex128';

export type Storage =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array | string[];

export type NumericStorage = Exclude<Storage, string[]>;

const ONNX_CODES: [number, DType][] = [
  [1, 'float32'], [2, 'uint8'], [3, 'int8'], [4, 'uint16'], [5, 'int16'], [6, 'int32'], [7, 'int64'],
  [8, 'string'], [9, 'bool'], [10, 'float16'], [11, 'float64'], [12, 'uint32'], [13, 'uint64'],
  [14, 'complex64'], [15, 'complex128'], [16, 'bfloat16'], [17, 'float8e4m3fn'], [18, 'float8e4m3fnuz'],
  [19, 'float8e5m2'], [20, 'float8e5m2fnuz'], [21, 'uint4'], [22, 'int4'], [23, 'float4e2m1'],
  [24, 'float8e8m0'], [25, 'uint2'], [26, 'int2'],
];
const BY_CODE = new Map(ONNX_CODES);
const CODE_OF = new Map(ONNX_CODES.map(([c, d]) => [d, c]));

export function dtypeFromOnnx(code: number): DType | undefined { return BY_CODE.get(code); }
export function onnxCode(d: DType): number { return CODE_OF.get(d)!; }

/** Narrow floats stored widened in Float32Array. */
export const NARROW_FLOATS: ReadonlySet<DType> = new Set<DType>([
  'float16', 'bfloat16', 'float8e4m3fn', 'float8e4m3fnuz', 'float8e5m2', 'float8e5m2fnuz', 'float8e8m0', 'float4e2m1',
]);

export const isFloat = (d: DType) => d === 'float32' || d === 'float64' || NARROW_FLOATS.has(d);
export const isBigInt = (d: DType) => d === 'int64' || d === 'uint64';
export const isInteger = (d: DType) =>
  ['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'int4', 'uint4', 'int2', 'uint2'].includes(d);
export const isSigned = (d: DType) => d.startsWith('int') || isFloat(d);

type Ctor = { new(n: number): NumericStorage; new(buf: ArrayBuffer): NumericStorage; readonly BYTES_PER_ELEMENT: number };
const STORAGE: Partial<Record<DType, Ctor>> = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array,
  uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array,
  int4: Int8Array, uint4: Uint8Array, int2: Int8Array, uint2: Uint8Array, bool: Uint8Array,
  complex64: Float32Array, complex128: Float64Array,
};

/** Elements per logical value in storage (complex holds re, im pairs). */
export const lanes = (d: DType) => (d === 'complex64' || d === 'complex128' ? 2 : 1);

export function allocStorage(d: DType, n: number, clear = true): Storage {
  if (d === 'string') return new Array<string>(n).fill('');
  const ctor = NARROW_FLOATS.has(d) ? Float32Array : STORAGE[d];
  if (!ctor) throw new TypeError(`no storage for dtype ${d}`);
  const len = n * lanes(d), got = len > 0 ? arenaBuffer(len * ctor.BYTES_PER_ELEMENT) : undefined;
  if (!got) return new ctor(len);
  const a = new ctor(got.buf);
  if (!got.stale || !clear) return a;
  return a instanceof BigInt64Array || a instanceof BigUint64Array ? a.fill(0n) : (a as Float32Array).fill(0);
}

/** Bytes per element in ONNX raw_data (sub-byte types report fractions). */
export function rawByteSize(d: DType): number {
  switch (d) {
    case 'float64': case 'int64': case 'uint64': case 'complex64': return 8;
    case 'complex128': return 16;
    case 'float32': case 'int32': case 'uint32': return 4;
    case 'float16': case 'bfloat16': case 'int16': case 'uint16': return 2;
    case 'int4': case 'uint4': case 'float4e2m1': return 0.5;
    case 'int2': case 'uint2': return 0.25;
    case 'string': return 0;
    default: return 1;
  }
}
