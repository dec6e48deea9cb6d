// Values the engine passes around. NdArray is the internal tensor (narrow floats widened, see dtype.ts);
// Tensor is the public, onnxruntime-web compatible one. Seq and Opt are ONNX sequences and optionals.
import { allocStorage, isBigInt, NARROW_FLOATS, type DType, type Storage } from './dtype.js';
import { bf16ToNumber, f16ToNumber, FORMATS, numberToBf16, numberToF16, encodeMini, type MiniName } from '../kernels/cpu/minifloat.js';

export const sizeOf = (shape: readonly number[]) => { let n = 1; for (const d of shape) n *= d; return n; };

export class NdArray {
  constructor(readonly dtype: DType, readonly shape: readonly number[], readonly data: Storage) {}
  get size() { return sizeOf(this.shape); }
  static zeros(dtype: DType, shape: readonly number[]) { return new NdArray(dtype, shape, allocStorage(dtype, sizeOf(shape))); }
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

/** Public tensor, same constructor and fields as onnxruntime-web's. */
export class Tensor {
  readonly type: DType;
  readonly dims: readonly number[];
  readonly data: TensorData;
  readonly location = 'cpu' as const;
  constructor(type: DType, data: TensorData | number[] | bigint[] | boolean[] | string[], dims?: readonly number[]) {
    this.type = type;
    this.data = Array.isArray(data) ? fromList(type, data) : data;
    this.dims = dims ? [...dims] : [this.data.length];
    const n = sizeOf(this.dims);
    const expected = type === 'complex64' || type === 'complex128' ? 2 * n : packedLength(type, n);
    if (this.data.length !== expected && this.data.length !== n) {
      throw new InputErrorLike(`Tensor of type ${type} and dims [${this.dims}] needs ${n} elements, got ${this.data.length}`);
    }
  }
  get size() { return sizeOf(this.dims); }
  /** Download-free in this backend: the data already lives on the CPU. */
  async getData(): Promise<TensorData> { return this.data; }
  dispose(): void {}
}
class InputErrorLike extends TypeError {}

function packedLength(type: DType, n: number) {
  if (type === 'int4' || type === 'uint4' || type === 'float4e2m1') return Math.ceil(n / 2);
  if (type === 'int2' || type === 'uint2') return Math.ceil(n / 4);
  return n;
}

function fromList(type: DType, list: unknown[]): TensorData {
  if (type === 'string') return list.map(String);
  if (type === 'float16' || type === 'bfloat16') {
    const enc = type === 'float16' ? numberToF16 : numberToBf16;
    return Uint16Array.from(list as number[], (v) => enc(Number(v)));
  }
  const out = allocStorage(type, list.length);
  if (isBigInt(type)) for (let i = 0; i < list.length; i++) (out as BigInt64Array)[i] = BigInt(list[i] as number);
  else for (let i = 0; i < list.length; i++) (out as Float32Array)[i] = Number(list[i]);
  return out;
}

/** Public Tensor -> internal NdArray (zero-copy except for narrow floats and packed sub-byte ints). */
export function toNdArray(t: Tensor): NdArray {
  const n = t.size;
  if (NARROW_FLOATS.has(t.type) && !(t.data instanceof Float32Array)) {
    const out = new Float32Array(n), src = t.data as Uint16Array | Uint8Array;
    if (t.type === 'float16') for (let i = 0; i < n; i++) out[i] = f16ToNumber(src[i]);
    else if (t.type === 'bfloat16') for (let i = 0; i < n; i++) out[i] = bf16ToNumber(src[i]);
    else {
      const fmt = FORMATS[t.type as MiniName];
      for (let i = 0; i < n; i++) out[i] = fmt.bits === 4 ? fmt.decode[(src[i >> 1] >> ((i & 1) * 4)) & 15] : fmt.decode[src[i]];
    }
    return new NdArray(t.type, t.dims, out);
  }
  if ((t.type === 'int4' || t.type === 'uint4') && t.data.length !== n) {
    const out = allocStorage(t.type, n) as Int8Array, src = t.data as Uint8Array;
    for (let i = 0; i < n; i++) {
      const v = (src[i >> 1] >> ((i & 1) * 4)) & 15;
      out[i] = t.type === 'int4' && v > 7 ? v - 16 : v;
    }
    return new NdArray(t.type, t.dims, out);
  }
  return new NdArray(t.type, t.dims, t.data as Storage);
}

/** Internal NdArray -> public Tensor (narrow floats re-encoded to their bit patterns). */
export function toTensor(a: NdArray): Tensor {
  if (a.dtype === 'float16' || a.dtype === 'bfloat16') {
    const enc = a.dtype === 'float16' ? numberToF16 : numberToBf16, src = a.data as Float32Array;
    const out = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = enc(src[i]);
    return new Tensor(a.dtype, out, a.shape);
  }
  if (NARROW_FLOATS.has(a.dtype) && a.dtype !== 'float4e2m1') {
    const fmt = FORMATS[a.dtype as MiniName], src = a.data as Float32Array, out = new Uint8Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = encodeMini(fmt, src[i]);
    return new Tensor(a.dtype, out as unknown as Storage, a.shape);
  }
  return new Tensor(a.dtype, a.data, a.shape);
}
