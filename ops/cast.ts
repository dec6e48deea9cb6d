// Cast, CastLike and BitCast between every ONNX element type (complex only for BitCast).
// Typed-array stores already do most conversions: to floats they round to nearest even; to integers
// they truncate toward zero and wrap, which also settles what the spec leaves undefined (out-of-range
// floats wrap, NaN and infinities give 0). The rest is here: bool, strings, 64-bit integers, float8
// and float4 rounding with `saturate`, float8e8m0's `round_mode`, and sub-byte integers.
import { allocStorage, dtypeFromOnnx, isBigInt, isFloat, NARROW_FLOATS, type DType, type Storage } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { bigToF32, formatFloat, parseLeadingInt, parseReal, wrapBits } from '../kernels/cpu/convert.js';
import { bf16ToNumber, encodeMini, f16ToNumber, FORMATS, numberToBf16, numberToF16, type E8M0Round, type MiniName } from '../kernels/cpu/minifloat.js';
import { dtypeOf, shapeOf, tensorType } from './infer-rules.js';
import { type Attrs, fail, register, tensorAt, type RunCtx } from './registry.js';

interface CastAttrs { saturate: boolean; roundMode: E8M0Round }
type Conv = (v: any) => any;

const SUB_BYTE: Partial<Record<DType, number>> = { int4: 4, uint4: 4, int2: 2, uint2: 2 };
// Cast-1 names its target with the TensorProto enum name; those names index codes 1..16.
const ENUM_NAMES = ['', 'FLOAT', 'UINT8', 'INT8', 'UINT16', 'INT16', 'INT32', 'INT64', 'STRING', 'BOOL', 'FLOAT16', 'DOUBLE',
  'UINT32', 'UINT64', 'COMPLEX64', 'COMPLEX128', 'BFLOAT16'];

function castAttrs(a: Attrs): CastAttrs {
  const roundMode = a.string('round_mode', 'up');
  if (roundMode !== 'up' && roundMode !== 'down' && roundMode !== 'nearest') throw a.error(`attribute 'round_mode' should be up, down or nearest, got '${roundMode}'`);
  return { saturate: a.int('saturate', 1) !== 0, roundMode };
}

function targetOf(a: Attrs, complex = false): DType {
  const named = a.raw('to')?.type === 'string';
  const to = named ? dtypeFromOnnx(ENUM_NAMES.indexOf(a.string('to').toUpperCase())) : dtypeFromOnnx(a.int('to'));
  if (!to || (!complex && to.startsWith('complex'))) throw a.error(`attribute 'to' (${named ? a.string('to') : a.int('to')}) is not a type this op can produce`);
  return to;
}

const textOf = (from: DType): Conv =>
  from === 'string' ? (v: string) => v : from === 'bool' ? (v: number) => (v ? '1' : '0') : isFloat(from) ? formatFloat : String;

/** Per-element conversion for the cases a plain typed-array store gets wrong. */
function converter(from: DType, to: DType, o: CastAttrs): Conv {
  const big = isBigInt(from), float = isFloat(from);
  if (to === 'string') return textOf(from);
  if (to === 'bool') return big ? (v: bigint) => (v !== 0n ? 1 : 0) : (v: number) => (v !== 0 ? 1 : 0); // NaN is true
  if (isBigInt(to)) return big ? (v: bigint) => v : float ? (v: number) => (Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n) : BigInt;
  // bigint sources become numbers first: floats rounded once, narrower integers keeping their low bits
  const num: Conv = !big ? (v: number) => v : to === 'float32' || NARROW_FLOATS.has(to) ? bigToF32
    : to === 'float64' ? Number : (v: bigint) => Number(BigInt.asIntN(32, v));
  const bits = SUB_BYTE[to];
  if (bits) return (v) => wrapBits(num(v), bits, to.startsWith('int'));
  if (to === 'float8e8m0') return (v) => FORMATS.float8e8m0.decode[encodeMini(FORMATS.float8e8m0, num(v), o.saturate, o.roundMode)];
  if (to in FORMATS) {
    // saturate only concerns float8: float4e2m1 has no infinity or NaN and always saturates
    const fmt = FORMATS[to as MiniName], sat = o.saturate || to === 'float4e2m1';
    return (v) => fmt.decode[encodeMini(fmt, num(v), sat)];
  }
  return num;
}

/** Strings parse to float64 for float targets, else to their leading integer (int64, wrapping later). */
function parseStrings(x: NdArray, toFloat: boolean, ctx: RunCtx): NdArray {
  const s = x.data as string[];
  if (toFloat) return new NdArray('float64', x.shape, Float64Array.from(s, parseReal));
  return new NdArray('int64', x.shape, BigInt64Array.from(s, (t) => parseLeadingInt(t) ?? fail(ctx, `input 0 holds '${t}', which is not an integer`)));
}

function castTensor(x: NdArray, to: DType, o: CastAttrs, ctx: RunCtx): NdArray {
  if (x.dtype === 'complex64' || x.dtype === 'complex128') fail(ctx, `input 0 has dtype ${x.dtype}, which Cast does not convert`);
  if (x.dtype === to) return new NdArray(to, x.shape, x.data);
  const src = x.dtype === 'string' && to !== 'string' ? parseStrings(x, isFloat(to), ctx) : x;
  const out = NdArray.zeros(to, x.shape), s = src.data as { [i: number]: any; length: number }, d = out.data as typeof s;
  const plain = to !== 'bool' && to !== 'string' && !SUB_BYTE[to] && !(to in FORMATS) && isBigInt(to) === isBigInt(src.dtype);
  if (plain) (d as Float32Array).set(s as Float32Array); // native conversion, no per-element call
  else { const f = converter(src.dtype, to, o); for (let i = 0; i < s.length; i++) d[i] = f(s[i]); }
  return out;
}

// BitCast: the element's bits, little endian, reread as another type of the same width.
const WIDTH: Partial<Record<DType, number>> = {
  int2: 2, uint2: 2, int4: 4, uint4: 4, float4e2m1: 4, bool: 8, int8: 8, uint8: 8,
  float8e4m3fn: 8, float8e4m3fnuz: 8, float8e5m2: 8, float8e5m2fnuz: 8, float8e8m0: 8,
  int16: 16, uint16: 16, float16: 16, bfloat16: 16, int32: 32, uint32: 32, float32: 32,
  int64: 64, uint64: 64, float64: 64, complex64: 64, complex128: 128,
};

/** Bit pattern of each element for types whose storage is not their encoding (narrow floats, sub-byte ints). */
function patterns(x: NdArray): Uint8Array | Uint16Array {
  const v = x.data as Float32Array, bits = WIDTH[x.dtype]!;
  if (x.dtype === 'float16' || x.dtype === 'bfloat16') return Uint16Array.from(v, x.dtype === 'float16' ? numberToF16 : numberToBf16);
  if (x.dtype in FORMATS) { const fmt = FORMATS[x.dtype as MiniName]; return Uint8Array.from(v, (e) => encodeMini(fmt, e, false)); } // keeps infinities
  return Uint8Array.from(v, (e) => e & ((1 << bits) - 1));
}

/** The value of a bit pattern in a type of at most 16 bits. */
function decoderOf(to: DType): (bits: number) => number {
  if (to === 'float16') return f16ToNumber;
  if (to === 'bfloat16') return bf16ToNumber;
  if (to in FORMATS) { const table = FORMATS[to as MiniName].decode; return (b) => table[b]; }
  if (to === 'bool') return (b) => (b ? 1 : 0);
  const half = 2 ** (WIDTH[to]! - 1);
  return to.startsWith('int') ? (b) => (b >= half ? b - 2 * half : b) : (b) => b;
}

function fromPatterns(p: ArrayLike<number>, to: DType): Storage {
  const out = allocStorage(to, p.length) as Float32Array, decode = decoderOf(to);
  for (let i = 0; i < p.length; i++) out[i] = decode(p[i]);
  return out;
}

function bitCast(x: NdArray, to: DType, ctx: RunCtx): NdArray {
  if (x.dtype === 'string' || to === 'string') fail(ctx, 'BitCast does not take or make strings');
  if (WIDTH[x.dtype] !== WIDTH[to]) fail(ctx, `input 0 has dtype ${x.dtype} (${WIDTH[x.dtype]} bits), but 'to' is ${to} (${WIDTH[to]} bits)`);
  const encoded = NARROW_FLOATS.has(x.dtype) || SUB_BYTE[x.dtype];
  const decoded = NARROW_FLOATS.has(to) || SUB_BYTE[to] || to === 'bool';
  if (!encoded && !decoded) { // storage already is the encoding: reinterpret a copy of the bytes
    const out = allocStorage(to, x.size) as Uint8Array, src = x.data as Uint8Array;
    new Uint8Array(out.buffer).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
    return new NdArray(to, x.shape, out);
  }
  // Every such type is 16 bits or narrower: go through one unsigned bit pattern per element.
  const d = x.data as Uint8Array;
  const bits = encoded ? patterns(x) : WIDTH[to] === 16 ? new Uint16Array(d.buffer, d.byteOffset, d.length) : new Uint8Array(d.buffer, d.byteOffset, d.length);
  return new NdArray(to, x.shape, fromPatterns(bits, to));
}

register(
  {
    op: 'Cast',
    attrs: (a) => ({ to: targetOf(a), ...castAttrs(a) }),
    infer: (ins, a) => [tensorType(a.to, shapeOf(ins[0]))],
    run: (ins, a, ctx) => [castTensor(tensorAt(ins, 0, ctx), a.to, a, ctx)],
  },
  {
    op: 'CastLike', since: 15, attrs: castAttrs,
    infer: (ins) => [tensorType(dtypeOf(ins[1]), shapeOf(ins[0]))],
    run: (ins, a, ctx) => [castTensor(tensorAt(ins, 0, ctx), tensorAt(ins, 1, ctx).dtype, a, ctx)],
  },
  {
    op: 'BitCast', since: 26,
    attrs: (a) => targetOf(a, true),
    infer: (ins, to) => [tensorType(to, shapeOf(ins[0]))],
    run: (ins, to, ctx) => [bitCast(tensorAt(ins, 0, ctx), to, ctx)],
  },
);
