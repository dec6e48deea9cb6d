// Elementwise loops with broadcasting. An op supplies a row kernel (a loop over one contiguous run);
// the driver walks the broadcast shape calling it once per run. Hot ops get their own row literal so
// V8 compiles a monomorphic loop with the arithmetic inlined: a shared loop calling a per-element
// callback is several times slower on simple ops. Rare ops wrap an element function with each1/each2.
// A loop also slows down once it has seen several array types: its element accesses go polymorphic,
// and after bigints generic (measured: 5 ns per element monomorphic, 200 polymorphic). So the hottest
// rows check the storage once per call and send Float32Array (float32 and the narrow floats) to loops
// that see nothing else, with the broadcast cases the driver produces (contiguous, or one side fixed)
// written out so the fixed operand is read once per row.
import { broadcastStrides } from './broadcast.js';
import { erf } from './math.js';

type Arr = { [i: number]: any; length: number };

/** out[o + k] = f(a[pa + k*sa], b[pb + k*sb]) for k < n. */
export type Row2 = (out: Arr, o: number, a: Arr, pa: number, sa: number, b: Arr, pb: number, sb: number, n: number) => void;
/** out[k] = f(x[k]) for k < n. */
export type Row1 = (out: Arr, x: Arr, n: number) => void;

export const each2 = (f: (x: any, y: any) => any): Row2 => (out, o, a, pa, sa, b, pb, sb, n) => {
  for (const e = o + n; o < e; o++, pa += sa, pb += sb) out[o] = f(a[pa], b[pb]);
};
export const each1 = (f: (x: any) => any): Row1 => (out, x, n) => { for (let i = 0; i < n; i++) out[i] = f(x[i]); };

/**
 * Output dims with size-1 dims dropped and neighbours merged wherever every operand steps through
 * them contiguously (or not at all), so rows are as long as the layouts allow.
 */
export function coalesce(outShape: readonly number[], shapes: (readonly number[])[]): { dims: number[]; strides: number[][] } {
  const full = shapes.map((s) => broadcastStrides(s, outShape));
  const dims: number[] = [], strides: number[][] = shapes.map(() => []);
  for (let i = 0; i < outShape.length; i++) {
    const d = outShape[i], k = dims.length - 1;
    if (d === 1) continue;
    if (k >= 0 && full.every((s, j) => strides[j][k] === s[i] * d)) { dims[k] *= d; full.forEach((s, j) => { strides[j][k] = s[i]; }); }
    else { dims.push(d); full.forEach((s, j) => strides[j].push(s[i])); }
  }
  return { dims, strides };
}

/** Runs `row` over the broadcast of a and b into out (laid out as outShape). */
export function broadcastRows(a: Arr, aShape: readonly number[], b: Arr, bShape: readonly number[], outShape: readonly number[], out: Arr, row: Row2): void {
  const n = out.length;
  if (n === 0) return;
  // Equal sizes mean no broadcasting: the operand is laid out as the output.
  if (a.length === n && (b.length === n || b.length === 1)) { row(out, 0, a, 0, 1, b, 0, b.length === n ? 1 : 0, n); return; }
  if (a.length === 1 && b.length === n) { row(out, 0, a, 0, 0, b, 0, 1, n); return; }
  const { dims, strides: [da, db] } = coalesce(outShape, [aShape, bShape]);
  const r = dims.length, inner = dims[r - 1], ia = da[r - 1], ib = db[r - 1], idx = new Array<number>(r).fill(0);
  let pa = 0, pb = 0;
  for (let o = 0; o < n; o += inner) {
    row(out, o, a, pa, ia, b, pb, ib, inner);
    for (let d = r - 2; d >= 0; d--) { // odometer over the outer dims
      idx[d]++; pa += da[d]; pb += db[d];
      if (idx[d] < dims[d]) break;
      pa -= da[d] * dims[d]; pb -= db[d] * dims[d]; idx[d] = 0;
    }
  }
}

// Binary rows. The operators act alike on numbers and bigints, so these serve every dtype they suit.
const addAny: Row2 = (out, o, a, pa, sa, b, pb, sb, n) => { for (const e = o + n; o < e; o++, pa += sa, pb += sb) out[o] = a[pa] + b[pb]; };
const subAny: Row2 = (out, o, a, pa, sa, b, pb, sb, n) => { for (const e = o + n; o < e; o++, pa += sa, pb += sb) out[o] = a[pa] - b[pb]; };
const mulAny: Row2 = (out, o, a, pa, sa, b, pb, sb, n) => { for (const e = o + n; o < e; o++, pa += sa, pb += sb) out[o] = a[pa] * b[pb]; };
const divAny: Row2 = (out, o, a, pa, sa, b, pb, sb, n) => { for (const e = o + n; o < e; o++, pa += sa, pb += sb) out[o] = a[pa] / b[pb]; };

type F32 = Float32Array;
type RowF32 = (out: F32, o: number, a: F32, pa: number, sa: number, b: F32, pb: number, sb: number, n: number) => void;

const addF32: RowF32 = (out, o, a, pa, sa, b, pb, sb, n) => {
  if (sa === 1 && sb === 1) for (let i = 0; i < n; i++) out[o + i] = a[pa + i] + b[pb + i];
  else if (sa === 1 && sb === 0) { const y = b[pb]; for (let i = 0; i < n; i++) out[o + i] = a[pa + i] + y; }
  else if (sa === 0 && sb === 1) { const x = a[pa]; for (let i = 0; i < n; i++) out[o + i] = x + b[pb + i]; }
  else for (let i = 0; i < n; i++, pa += sa, pb += sb) out[o + i] = a[pa] + b[pb];
};
const subF32: RowF32 = (out, o, a, pa, sa, b, pb, sb, n) => {
  if (sa === 1 && sb === 1) for (let i = 0; i < n; i++) out[o + i] = a[pa + i] - b[pb + i];
  else if (sa === 1 && sb === 0) { const y = b[pb]; for (let i = 0; i < n; i++) out[o + i] = a[pa + i] - y; }
  else if (sa === 0 && sb === 1) { const x = a[pa]; for (let i = 0; i < n; i++) out[o + i] = x - b[pb + i]; }
  else for (let i = 0; i < n; i++, pa += sa, pb += sb) out[o + i] = a[pa] - b[pb];
};
const mulF32: RowF32 = (out, o, a, pa, sa, b, pb, sb, n) => {
  if (sa === 1 && sb === 1) for (let i = 0; i < n; i++) out[o + i] = a[pa + i] * b[pb + i];
  else if (sa === 1 && sb === 0) { const y = b[pb]; for (let i = 0; i < n; i++) out[o + i] = a[pa + i] * y; }
  else if (sa === 0 && sb === 1) { const x = a[pa]; for (let i = 0; i < n; i++) out[o + i] = x * b[pb + i]; }
  else for (let i = 0; i < n; i++, pa += sa, pb += sb) out[o + i] = a[pa] * b[pb];
};
// Division stays a division (x * (1/y) rounds differently).
const divF32: RowF32 = (out, o, a, pa, sa, b, pb, sb, n) => {
  if (sa === 1 && sb === 1) for (let i = 0; i < n; i++) out[o + i] = a[pa + i] / b[pb + i];
  else if (sa === 1 && sb === 0) { const y = b[pb]; for (let i = 0; i < n; i++) out[o + i] = a[pa + i] / y; }
  else if (sa === 0 && sb === 1) { const x = a[pa]; for (let i = 0; i < n; i++) out[o + i] = x / b[pb + i]; }
  else for (let i = 0; i < n; i++, pa += sa, pb += sb) out[o + i] = a[pa] / b[pb];
};

/** A row that sends all-Float32Array calls to `f32` and everything else to `any`. */
const byStorage2 = (f32: RowF32, any: Row2): Row2 => (out, o, a, pa, sa, b, pb, sb, n) => {
  if (out instanceof Float32Array && a instanceof Float32Array && b instanceof Float32Array) f32(out, o, a, pa, sa, b, pb, sb, n);
  else any(out, o, a, pa, sa, b, pb, sb, n);
};
export const add = byStorage2(addF32, addAny);
export const sub = byStorage2(subF32, subAny);
export const mul = byStorage2(mulF32, mulAny);
export const div = byStorage2(divF32, divAny);
// NaN propagates, as numpy's maximum/minimum do
export const max: Row2 = (out, o, a, pa, sa, b, pb, sb, n) => {
  for (const e = o + n; o < e; o++, pa += sa, pb += sb) { const x = a[pa], y = b[pb]; out[o] = x > y || x !== x ? x : y; }
};
export const min: Row2 = (out, o, a, pa, sa, b, pb, sb, n) => {
  for (const e = o + n; o < e; o++, pa += sa, pb += sb) { const x = a[pa], y = b[pb]; out[o] = x < y || x !== x ? x : y; }
};
export const eq: Row2 = (out, o, a, pa, sa, b, pb, sb, n) => { for (const e = o + n; o < e; o++, pa += sa, pb += sb) out[o] = a[pa] === b[pb] ? 1 : 0; };
export const lt: Row2 = (out, o, a, pa, sa, b, pb, sb, n) => { for (const e = o + n; o < e; o++, pa += sa, pb += sb) out[o] = a[pa] < b[pb] ? 1 : 0; };
export const gt: Row2 = (out, o, a, pa, sa, b, pb, sb, n) => { for (const e = o + n; o < e; o++, pa += sa, pb += sb) out[o] = a[pa] > b[pb] ? 1 : 0; };
export const le: Row2 = (out, o, a, pa, sa, b, pb, sb, n) => { for (const e = o + n; o < e; o++, pa += sa, pb += sb) out[o] = a[pa] <= b[pb] ? 1 : 0; };
export const ge: Row2 = (out, o, a, pa, sa, b, pb, sb, n) => { for (const e = o + n; o < e; o++, pa += sa, pb += sb) out[o] = a[pa] >= b[pb] ? 1 : 0; };

// Unary rows for the ops inference graphs run most.
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
export const sigmoidOf = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : 1 - 1 / (1 + Math.exp(x)));
const reluAny: Row1 = (out, x, n) => { for (let i = 0; i < n; i++) { const v = x[i]; out[i] = v < 0 ? 0 : v; } };
// Activations on data of random sign mispredict a branch per element, which measured 3-4x slower than
// a copy. (v + |v|) / 2 is max(v, 0) without a branch, exact in float64 for float32 inputs; only -inf
// makes it NaN, which the rarely taken (so well predicted) NaN test sends to the plain formula.
const reluF32 = (out: F32, x: F32, n: number) => {
  for (let i = 0; i < n; i++) { const v = x[i], r = (v + Math.abs(v)) * 0.5; out[i] = r === r ? r : v < 0 ? 0 : v; }
};
export const relu: Row1 = (out, x, n) => (out instanceof Float32Array && x instanceof Float32Array ? reluF32(out, x, n) : reluAny(out, x, n));
export const neg: Row1 = (out, x, n) => { for (let i = 0; i < n; i++) out[i] = -x[i]; };
export const abs: Row1 = (out, x, n) => { for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]); };
export const exp: Row1 = (out, x, n) => { for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]); };
export const log: Row1 = (out, x, n) => { for (let i = 0; i < n; i++) out[i] = Math.log(x[i]); };
export const sqrt: Row1 = (out, x, n) => { for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]); };
export const reciprocal: Row1 = (out, x, n) => { for (let i = 0; i < n; i++) out[i] = 1 / x[i]; };
export const tanh: Row1 = (out, x, n) => { for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]); };
export const sigmoid: Row1 = (out, x, n) => { for (let i = 0; i < n; i++) out[i] = sigmoidOf(x[i]); };
export const erfRow: Row1 = (out, x, n) => { for (let i = 0; i < n; i++) out[i] = erf(x[i]); };
export const gelu: Row1 = (out, x, n) => { for (let i = 0; i < n; i++) { const v = x[i]; out[i] = 0.5 * v * (1 + erf(v * Math.SQRT1_2)); } };
export const geluTanh: Row1 = (out, x, n) => {
  for (let i = 0; i < n; i++) { const v = x[i]; out[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v))); }
};
export const not: Row1 = (out, x, n) => { for (let i = 0; i < n; i++) out[i] = x[i] ? 0 : 1; };
// clamp(t, 0, 1) without a data-dependent branch, as for relu: (|t| + 1 - |t - 1|) / 2. Below 0 both
// terms are the same rounded 1 + |t|, so the gate is exactly 0; elsewhere it is off by the rounding of
// t +- 1, under 2^-30 while |t| < 2^20, far below float32's. Beyond that (and for NaN) the plain
// formula runs, behind a test that is almost never taken and so well predicted.
const GATE_RANGE = 2 ** 20;
export const hardSigmoid = (alpha: number, beta: number): Row1 => (out, x, n) => {
  for (let i = 0; i < n; i++) {
    const t = alpha * x[i] + beta;
    out[i] = t > -GATE_RANGE && t < GATE_RANGE ? (Math.abs(t) + 1 - Math.abs(t - 1)) * 0.5 : Math.max(0, Math.min(1, t));
  }
};
export const hardSwish: Row1 = (out, x, n) => {
  for (let i = 0; i < n; i++) {
    const v = x[i], t = (1 / 6) * v + 0.5;
    out[i] = v * (t > -GATE_RANGE && t < GATE_RANGE ? (Math.abs(t) + 1 - Math.abs(t - 1)) * 0.5 : Math.max(0, Math.min(1, t)));
  }
};
export const leakyRelu = (alpha: number): Row1 => (out, x, n) => { for (let i = 0; i < n; i++) { const v = x[i]; out[i] = v < 0 ? alpha * v : v; } };
const clampAny = (out: Arr, x: Arr, n: number, lo: number | bigint, hi: number | bigint) => {
  for (let i = 0; i < n; i++) { const v = x[i] < lo ? lo : x[i]; out[i] = v > hi ? hi : v; }
};
// Math.max/min rather than comparisons: no branch to mispredict on signs, and NaN still propagates.
const clampF32 = (out: F32, x: F32, n: number, lo: number, hi: number) => {
  for (let i = 0; i < n; i++) out[i] = Math.min(Math.max(x[i], lo), hi);
};
/** Clip: works on bigints too, which compare exactly against the +-Infinity defaults. */
export const clamp = (lo: number | bigint, hi: number | bigint): Row1 => (out, x, n) => {
  if (out instanceof Float32Array && x instanceof Float32Array && typeof lo === 'number' && typeof hi === 'number') clampF32(out, x, n, lo, hi);
  else clampAny(out, x, n, lo, hi);
};

/** out[k] = cond ? x : y over the broadcast of the three shapes. */
export function where(c: Arr, cShape: readonly number[], x: Arr, xShape: readonly number[], y: Arr, yShape: readonly number[], outShape: readonly number[], out: Arr): void {
  const n = out.length;
  if (n === 0) return;
  const { dims, strides: [dc, dx, dy] } = coalesce(outShape, [cShape, xShape, yShape]);
  if (dims.length === 0) { out[0] = c[0] ? x[0] : y[0]; return; }
  const r = dims.length, inner = dims[r - 1], ic = dc[r - 1], ix = dx[r - 1], iy = dy[r - 1], idx = new Array<number>(r).fill(0);
  let pc = 0, px = 0, py = 0;
  for (let o = 0; o < n; o += inner) {
    for (let k = 0, qc = pc, qx = px, qy = py; k < inner; k++, qc += ic, qx += ix, qy += iy) out[o + k] = c[qc] ? x[qx] : y[qy];
    for (let d = r - 2; d >= 0; d--) {
      idx[d]++; pc += dc[d]; px += dx[d]; py += dy[d];
      if (idx[d] < dims[d]) break;
      pc -= dc[d] * dims[d]; px -= dx[d] * dims[d]; py -= dy[d] * dims[d]; idx[d] = 0;
    }
  }
}
