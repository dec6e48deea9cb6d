// Linear quantization kernels over typed arrays. A layout maps every element of x to the index of its
// scale and zero point, so per-tensor, per-axis and blocked parameters share one loop. The element
// conversions (rounding, saturation, narrow-float encoding) are passed in as functions.
import { broadcastStrides } from './broadcast.js';
import { gemm, type Mat } from './gemm.js';
import { encodeMini, type MiniFormat } from './minifloat.js';
import { roundHalfEven } from './math.js';

type Num = { [i: number]: number; length: number };

/**
 * x viewed as [outer, axisLen, inner]: element (o, a, r) takes parameter o*so + floor(a/block)*sa + r*sr.
 * Per-tensor is one row with all strides 0; per-axis has sa = 1; blocked strides over the scale's shape.
 */
export interface QuantLayout { outer: number; axisLen: number; inner: number; block: number; so: number; sa: number; sr: number }

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

export const perTensor = (n: number): QuantLayout => ({ outer: 1, axisLen: 1, inner: n, block: 1, so: 0, sa: 0, sr: 0 });

export function perAxis(shape: readonly number[], axis: number): QuantLayout {
  return { outer: prod(shape.slice(0, axis)), axisLen: shape[axis], inner: prod(shape.slice(axis + 1)), block: 1, so: 0, sa: 1, sr: 0 };
}

/** Blocks of `block` along `axis`; the scale has `blocks` entries on that axis and x's other dims. */
export function blocked(shape: readonly number[], axis: number, block: number, blocks: number): QuantLayout {
  const inner = prod(shape.slice(axis + 1));
  return { outer: prod(shape.slice(0, axis)), axisLen: shape[axis], inner, block, so: blocks * inner, sa: inner, sr: 1 };
}

/** Calls row(first element, length, parameter index of the first, parameter stride) per run of `inner`. */
function rows(l: QuantLayout, row: (i0: number, n: number, p0: number, sr: number) => void): void {
  for (let o = 0, i = 0; o < l.outer; o++) {
    for (let a = 0; a < l.axisLen; a++, i += l.inner) row(i, l.inner, o * l.so + Math.floor(a / l.block) * l.sa, l.sr);
  }
}

/** Maps a quotient x/scale and a zero point to the stored output value. */
export type Store = (v: number, zp: number) => number;

/** Integer targets: round half to even, add the zero point, clamp (NaN goes to lo, as x86 converts it). */
export const intStore = (lo: number, hi: number): Store => (v, zp) => {
  const q = roundHalfEven(v) + zp;
  return q > hi ? hi : q >= lo ? q : lo;
};

/** Narrow-float targets: the value the format holds for v + zp (saturate clamps overflow to the largest finite). */
export const miniStore = (fmt: MiniFormat, saturate: boolean): Store => (v, zp) => fmt.decode[encodeMini(fmt, v + zp, saturate)];

/** out[i] = store(div(x[i], scale[p]), zp[p]) with p the element's parameter index. */
export function quantize(x: Num, scale: Num, zp: Num | undefined, l: QuantLayout, out: Num, div: (x: number, s: number) => number, store: Store): void {
  rows(l, (i0, n, p0, sr) => {
    for (let r = 0, p = p0; r < n; r++, p += sr) out[i0 + r] = store(div(x[i0 + r], scale[p]), zp ? zp[p] : 0);
  });
}

/** out[i] = (x[i] - zp[p]) * scale[p], each step in float32 as the reference computes it. */
export function dequantize(x: Num, scale: Num, zp: Num | undefined, l: QuantLayout, out: Num): void {
  rows(l, (i0, n, p0, sr) => {
    for (let r = 0, p = p0; r < n; r++, p += sr) out[i0 + r] = Math.fround(Math.fround(x[i0 + r] - (zp ? zp[p] : 0)) * scale[p]);
  });
}

/** DynamicQuantizeLinear to uint8: the float32 range of x widened to hold 0, scale and zero point as the spec's formulas. */
export function dynamicQuantize(x: Num, y: Uint8Array): { scale: number; zp: number } {
  let lo = 0, hi = 0;
  for (let i = 0; i < x.length; i++) { const v = x[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
  const f = Math.fround, scale = hi === lo ? 1 : f(f(hi - lo) / 255);
  const zp = roundHalfEven(Math.max(0, Math.min(255, f(-f(lo / scale)))));
  const store = intStore(0, 255);
  for (let i = 0; i < x.length; i++) y[i] = store(f(x[i] / scale), zp);
  return { scale, zp };
}

/**
 * Batched product of float64 operands holding exact integers (zero points already removed): float64
 * accumulation stays exact far beyond any 8-bit product sum. Batch dims broadcast numpy-style.
 */
export function batchedMatmul(a: Float64Array, aBatch: readonly number[], b: Float64Array, bBatch: readonly number[], batch: readonly number[], m: number, k: number, n: number, c: Float64Array): void {
  const sa = broadcastStrides(aBatch, batch), sb = broadcastStrides(bBatch, batch), count = prod(batch), idx = new Array<number>(batch.length).fill(0);
  for (let t = 0; t < count; t++) {
    let oa = 0, ob = 0;
    for (let d = 0; d < batch.length; d++) { oa += idx[d] * sa[d]; ob += idx[d] * sb[d]; }
    const A: Mat = { data: a, off: oa * m * k, rs: k, cs: 1 }, B: Mat = { data: b, off: ob * k * n, rs: n, cs: 1 };
    gemm(m, n, k, A, B, c, t * m * n, n);
    for (let d = batch.length - 1; d >= 0 && ++idx[d] === batch[d]; d--) idx[d] = 0;
  }
}

/**
 * out[i] = store(acc[i] * mult[i], zp[i]) for exact accumulators. The product is taken in float32 as
 * onnxruntime's requantization does; in float64 (the reference) a few results near halves differ by one.
 */
export function requantize(acc: Num, mult: Num, zp: Num, out: Num, store: Store): void {
  const f = Math.fround;
  for (let i = 0; i < acc.length; i++) out[i] = store(f(f(acc[i]) * mult[i]), zp[i]);
}
