// Values the engine passes around. NdArray is the internal tensor (narrow floats widened, see dtype.ts);
// Tensor is the public, onnxruntime-web compatible one. Seq and Opt are ONNX sequences and optionals.
import { allocStorage, isBigInt, lanes, NARROW_FLOATS, type DType, type Storage } from './dtype.js';
import { bf16ToNumber, encodeMini, f16ToNumber, FORMATS, numberToBf16, numberToF16, roundInPlace, type MiniFormat, type MiniName } from '../kernels/cpu/minifloat.js';

export const sizeOf = (shape: readonly number[]) => { let n = 1; for (const d of shape) n *= d; return n; };

export class NdArray {
  constructor(readonly dtype: DType, readonly shape: readonly number[], readonly data: Storage) {}
  get size() { return sizeOf(this.shape); }
  static zeros(dtype: DType, shape: readonly number[]) { return new NdArray(dtype, shape, allocStorage(dtype, sizeOf(shape))); }
  /** Storage whose contents are unspecified (a recycled buffer is not cleared): for kernels that write every element. */
  static uninit(dtype: DType, shape: readonly number[]) { return new NdArray(dtype, shape, allocStorage(dtype, sizeOf(shape), false)); }
  /** Elements as JS numbers (int64 converted): for shapes, axes, indices. */
  numbers(): number[] {
    const out = new Array<number>(this.data.length);
    for (let i = 0; i < out.length; i++) out[i] = Number(this.data[i]);
    return out;
  }
  reshape(shape: readonly number[]) { return new NdArray(this.dtype, shape, this.data); }
}

export class Seq {
  constructor(readonly items: NdArray[], readonly elemType?: DType) {}
}
export class Opt {
  constructor(readonly value: NdArray | Seq | null, readonly elemKind: 'tensor' | 'sequence' = 'tensor') {}
}
export type Value = NdArray | Seq | Opt;

export type TensorData = Storage | Uint16Array;

const DTYPES: ReadonlySet<string> = new Set<DType>([
  'float32', 'float64', 'float16', 'bfloat16', 'float8e4m3fn', 'float8e4m3fnuz', 'float8e5m2', 'float8e5m2fnuz',
  'float8e8m0', 'float4e2m1', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64',
  'int4', 'uint4', 'int2', 'uint2', 'bool', 'string', 'complex64', 'complex128',
]);
/** Sub-byte types: public data packs 8/bits elements per byte, LSB first, as ONNX raw_data does. */
const PACKED: Partial<Record<DType, number>> = { int4: 4, uint4: 4, float4e2m1: 4, int2: 2, uint2: 2 };
type Ctor = abstract new (...args: never[]) => unknown;
const TYPED_OF: [Ctor, DType][] = [
  [Float32Array, 'float32'], [Float64Array, 'float64'], [Int8Array, 'int8'], [Uint8Array, 'uint8'], [Int16Array, 'int16'],
  [Uint16Array, 'uint16'], [Int32Array, 'int32'], [Uint32Array, 'uint32'], [BigInt64Array, 'int64'], [BigUint64Array, 'uint64'],
];

/** Typed arrays a `type` accepts: onnxruntime-web's form first, then Lastmile's internal storage. */
function accepted(type: DType): Ctor[] {
  const internal = (allocStorage(type, 0) as Storage).constructor as Ctor;
  if (type === 'float16' || type === 'bfloat16') return [Uint16Array, internal];
  if (NARROW_FLOATS.has(type) || PACKED[type]) return [Uint8Array, internal];
  return [internal];
}

/** Public tensor, same constructors and fields as onnxruntime-web's: `new Tensor(type, data, dims?)` or `new Tensor(data, dims?)`. */
const GPU_INIT = Symbol('gpu tensor');

/** What a tensor whose data lives in a GPU buffer needs (onnxruntime-web's Tensor.fromGpuBuffer options). */
export interface GpuBufferOptions { dataType: DType; dims: readonly number[]; download?: () => Promise<TensorData>; dispose?: () => void }

/** Public tensor, with onnxruntime-web's constructors and fields; data on the CPU or in a GPU buffer. */
export class Tensor {
  readonly type: DType;
  readonly dims: readonly number[];
  readonly size: number;
  #data: TensorData | undefined;
  #gpu: ({ buffer: GPUBuffer } & Partial<GpuBufferOptions>) | undefined;
  constructor(type: DType, data: TensorData | Uint8ClampedArray | readonly (number | bigint | boolean | string)[], dims?: readonly number[]);
  constructor(data: TensorData | Uint8ClampedArray | readonly (boolean | string)[], dims?: readonly number[]);
  constructor(a: unknown, b?: unknown, c?: unknown) {
    if (a === GPU_INIT) {
      const o = c as GpuBufferOptions;
      this.type = checkType(o.dataType);
      this.dims = checkDims(o.dims, sizeOf(o.dims));
      this.size = sizeOf(this.dims);
      this.#gpu = { buffer: b as GPUBuffer, ...o };
      return;
    }
    const typed = typeof a === 'string';
    const [type, data] = typed ? [checkType(a), b] : [inferType(a), a];
    this.type = type;
    const d = Array.isArray(data) ? fromList(type, data) : checkData(type, data);
    this.#data = d;
    this.dims = checkDims(typed ? c : b, d.length / lanes(type));
    this.size = sizeOf(this.dims);
    const per = 8 / (PACKED[type] ?? 8), want = type === 'complex64' || type === 'complex128' ? 2 * this.size : this.size;
    // Sub-byte types also take one element per byte (the engine's own storage).
    if (d.length !== want && !(per > 1 && d.length === Math.ceil(this.size / per))) {
      throw new TypeError(`a ${type} tensor of dims [${this.dims}] needs ${want} elements${per > 1 ? ` (or ${Math.ceil(this.size / per)} packed bytes)` : ''}, got ${d.length}`);
    }
  }
  /** A tensor over an existing GPU buffer (IO binding): the session reads it in place. */
  static fromGpuBuffer(buffer: GPUBuffer, options: GpuBufferOptions): Tensor {
    return new (Tensor as unknown as new (a: symbol, b: GPUBuffer, c: GpuBufferOptions) => Tensor)(GPU_INIT, buffer, options);
  }
  get location(): 'cpu' | 'gpu-buffer' { return this.#gpu && !this.#data ? 'gpu-buffer' : 'cpu'; }
  get data(): TensorData {
    if (this.#data === undefined) throw new TypeError('the tensor data is in a GPU buffer: await tensor.getData() to download it');
    return this.#data;
  }
  get gpuBuffer(): GPUBuffer {
    if (!this.#gpu) throw new TypeError('the tensor data is on the CPU, not in a GPU buffer');
    return this.#gpu.buffer;
  }
  /** A tensor of the same data with other dims (same element count), as onnxruntime-web's reshape. */
  reshape(dims: readonly number[]): Tensor {
    return this.#gpu && !this.#data ? Tensor.fromGpuBuffer(this.#gpu.buffer, { ...this.#gpu, dataType: this.type, dims }) : new Tensor(this.type, this.data, dims);
  }
  /** The data on the CPU; a GPU tensor downloads it once (releaseData also frees the GPU buffer). */
  async getData(releaseData = false): Promise<TensorData> {
    if (this.#data === undefined) {
      if (!this.#gpu?.download) throw new TypeError('this GPU tensor was created without a download function');
      this.#data = await this.#gpu.download();
      if (releaseData) this.dispose();
    }
    return this.#data;
  }
  dispose(): void {
    this.#gpu?.dispose?.();
    this.#gpu = undefined;
  }
}

function checkType(t: string): DType {
  if (!DTYPES.has(t)) throw new TypeError(`unsupported tensor type '${t}'`);
  return t as DType;
}

function inferType(data: unknown): DType {
  if (Array.isArray(data)) {
    if (typeof data[0] === 'string') return 'string';
    if (typeof data[0] === 'boolean') return 'bool';
    throw new TypeError(`cannot infer a tensor type from ${data.length ? `an array of ${typeof data[0]}` : 'an empty array'}; pass the type first`);
  }
  if (data instanceof Uint8ClampedArray) return 'uint8';
  const hit = TYPED_OF.find(([ctor]) => (data as object)?.constructor === ctor);
  if (!hit) throw new TypeError(`unsupported tensor data: ${(data as object)?.constructor?.name ?? typeof data}`);
  return hit[1];
}

function checkData(type: DType, data: unknown): TensorData {
  if (type === 'string') throw new TypeError('a string tensor\'s data must be an array of strings');
  if (type === 'uint8' && data instanceof Uint8ClampedArray) return Uint8Array.from(data);
  const ok = accepted(type);
  if (!ok.some((c) => data instanceof c)) throw new TypeError(`a ${type} tensor's data must be a ${ok.map((c) => c.name).join(' or ')}, got ${(data as object)?.constructor?.name ?? typeof data}`);
  return data as TensorData;
}

function checkDims(dims: unknown, length: number): readonly number[] {
  if (dims === undefined) return [length];
  if (!Array.isArray(dims) || !dims.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new TypeError(`a tensor's dims must be an array of non-negative integers, got ${JSON.stringify(dims)}`);
  return [...dims];
}

function fromList(type: DType, list: unknown[]): TensorData {
  if (type === 'string') return list.map(String);
  if (type === 'float16' || type === 'bfloat16') {
    const enc = type === 'float16' ? numberToF16 : numberToBf16;
    return Uint16Array.from(list as number[], (v) => enc(Number(v)));
  }
  const out = allocStorage(type, list.length / lanes(type)); // complex lists interleave re, im
  if (isBigInt(type)) for (let i = 0; i < list.length; i++) (out as BigInt64Array)[i] = BigInt(list[i] as number);
  else for (let i = 0; i < list.length; i++) (out as Float32Array)[i] = Number(list[i]);
  if (NARROW_FLOATS.has(type)) roundInPlace(type, out as Float32Array);
  return out;
}

/** Public Tensor -> internal NdArray: zero-copy except for narrow floats, packed types and non-0/1 bools. */
export function toNdArray(t: Tensor): NdArray {
  const n = t.size, bits = PACKED[t.type];
  if (bits) return new NdArray(t.type, t.dims, unpack(t.type, bits, t.data as Uint8Array | Int8Array | Float32Array, n));
  if (NARROW_FLOATS.has(t.type)) {
    const out = new Float32Array(n), src = t.data as Uint16Array | Uint8Array | Float32Array;
    if (src instanceof Float32Array) { out.set(src); roundInPlace(t.type, out); }
    else if (t.type === 'float16') for (let i = 0; i < n; i++) out[i] = f16ToNumber(src[i]);
    else if (t.type === 'bfloat16') for (let i = 0; i < n; i++) out[i] = bf16ToNumber(src[i]);
    else { const d = FORMATS[t.type as MiniName].decode; for (let i = 0; i < n; i++) out[i] = d[src[i]]; }
    return new NdArray(t.type, t.dims, out);
  }
  if (t.type === 'bool' && (t.data as Uint8Array).some((v) => v > 1)) return new NdArray('bool', t.dims, (t.data as Uint8Array).map((v) => (v ? 1 : 0)));
  return new NdArray(t.type, t.dims, t.data as Storage);
}

/** Packed bytes (or one element per byte, or float4 values) -> the engine's storage for a sub-byte type. */
function unpack(type: DType, bits: number, src: Uint8Array | Int8Array | Float32Array, n: number): Storage {
  const out = allocStorage(type, n), per = 8 / bits, mask = (1 << bits) - 1;
  if (src instanceof Float32Array) { (out as Float32Array).set(src); roundInPlace(type, out as Float32Array); return out; }
  const packed = src instanceof Uint8Array && src.length === Math.ceil(n / per);
  const f4 = FORMATS.float4e2m1.decode, signed = type === 'int4' || type === 'int2';
  for (let i = 0; i < n; i++) {
    const v = (packed ? src[Math.floor(i / per)] >> ((i % per) * bits) : src[i]) & mask;
    (out as Float32Array)[i] = type === 'float4e2m1' ? f4[v] : signed && v >> (bits - 1) ? v - (1 << bits) : v;
  }
  return out;
}

/** The pattern of a value already on the type's value set: no saturation, so infinities stay. */
const exactBits = (fmt: MiniFormat, v: number) => encodeMini(fmt, v, false, 'nearest');

/** Internal NdArray -> public Tensor: narrow floats as bit patterns, sub-byte types packed (onnxruntime-web's forms). */
export function toTensor(a: NdArray): Tensor {
  const src = a.data as Float32Array, n = src.length, bits = PACKED[a.dtype];
  if (bits) {
    const per = 8 / bits, mask = (1 << bits) - 1, out = new Uint8Array(Math.ceil(n / per));
    const code = a.dtype === 'float4e2m1' ? (v: number) => exactBits(FORMATS.float4e2m1, v) : (v: number) => v & mask;
    for (let i = 0; i < n; i++) out[Math.floor(i / per)] |= code(src[i]) << ((i % per) * bits);
    return new Tensor(a.dtype, out, a.shape);
  }
  if (a.dtype === 'float16' || a.dtype === 'bfloat16') {
    const enc = a.dtype === 'float16' ? numberToF16 : numberToBf16, out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = enc(src[i]);
    return new Tensor(a.dtype, out, a.shape);
  }
  if (NARROW_FLOATS.has(a.dtype)) {
    const fmt = FORMATS[a.dtype as MiniName], out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = exactBits(fmt, src[i]);
    return new Tensor(a.dtype, out, a.shape);
  }
  return new Tensor(a.dtype, a.data, a.shape);
}
