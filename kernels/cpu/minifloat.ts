// Bit codecs for floats narrower than float32. Values are decoded to JS numbers and encoded with
// round-to-nearest-even. 8-bit and 4-bit formats use a 2^n decode table and a search for encoding,
// which keeps the special-value rules of each format in one place (the table) instead of bit tricks.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f16ToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function numberToF16(x: number): number {
  f32[0] = x; // round to f32 first: the spec's reference rounds float32 values
  const b = u32[0], sign = (b >>> 16) & 0x8000, e = (b >>> 23) & 0xff, m = b & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  const v = Math.abs(f32[0]);
  if (v >= 65520) return sign | 0x7c00;
  if (v < 2 ** -14) { // subnormal half: quantum 2^-24, ties to even
    const q = v * 2 ** 24, t = Math.floor(q), f = q - t;
    return sign | (f > 0.5 || (f === 0.5 && t & 1) ? t + 1 : t);
  }
  const he = e - 127 + 15;
  let hm = m >>> 13;
  const rest = m & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (hm & 1))) hm++;
  return sign | ((he << 10) + hm);
}

export function bf16ToNumber(h: number): number { u32[0] = h << 16; return f32[0]; }

export function numberToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export interface MiniFormat {
  bits: 4 | 8;
  decode: Float64Array; // value of every bit pattern (NaN where NaN)
  nan: number;          // canonical (quiet, positive) NaN pattern; -1 when the format has none
  inf: number;          // +inf pattern (-1 when none)
  maxFinite: number;
  negZero: boolean;     // whether -0 (and so a sign on NaN) is representable
  /** ascending non-negative finite values with their patterns, for encoding */
  sorted: { v: number; p: number }[];
}

function makeFormat(bits: 4 | 8, ebits: number, bias: number, kind: 'ieee' | 'fn' | 'fnuz' | 'e8m0' | 'f4'): MiniFormat {
  const n = 1 << bits, mbits = bits - 1 - ebits, decode = new Float64Array(n);
  let nan = -1, inf = -1;
  for (let p = 0; p < n; p++) {
    if (kind === 'e8m0') { decode[p] = p === 255 ? NaN : 2 ** (p - 127); continue; }
    const sgn = p >> (bits - 1) ? -1 : 1, e = (p >> mbits) & ((1 << ebits) - 1), m = p & ((1 << mbits) - 1);
    const emax = (1 << ebits) - 1;
    let v = e === 0 ? m * 2 ** (1 - bias - mbits) : (1 + m / (1 << mbits)) * 2 ** (e - bias);
    if (kind === 'ieee' && e === emax) v = m ? NaN : Infinity;
    if (kind === 'fn' && e === emax && m === (1 << mbits) - 1) v = NaN;
    if (kind === 'fnuz' && p === 0x80) v = NaN;
    decode[p] = sgn * v;
  }
  // IEEE quiet NaN: the top mantissa bit set, as truncating a float32 quiet NaN gives.
  if (kind === 'ieee') { inf = ((1 << ebits) - 1) << mbits; nan = inf | (1 << (mbits - 1)); }
  if (kind === 'fn') nan = 0x7f;
  if (kind === 'fnuz') nan = 0x80;
  if (kind === 'e8m0') nan = 0xff;
  const sorted: { v: number; p: number }[] = [];
  const half = kind === 'e8m0' ? n : n >> 1;
  for (let p = 0; p < half; p++) if (Number.isFinite(decode[p])) sorted.push({ v: decode[p], p });
  sorted.sort((a, b) => a.v - b.v);
  return { bits, decode, nan, inf, maxFinite: sorted[sorted.length - 1].v, negZero: kind === 'ieee' || kind === 'fn' || kind === 'f4', sorted };
}

export const FORMATS = {
  float8e4m3fn: makeFormat(8, 4, 7, 'fn'),
  float8e4m3fnuz: makeFormat(8, 4, 8, 'fnuz'),
  float8e5m2: makeFormat(8, 5, 15, 'ieee'),
  float8e5m2fnuz: makeFormat(8, 5, 16, 'fnuz'),
  float8e8m0: makeFormat(8, 8, 127, 'e8m0'),
  float4e2m1: makeFormat(4, 2, 1, 'f4'),
};
export type MiniName = keyof typeof FORMATS;

/** Cast's round_mode for float8e8m0: away from zero, towards zero, or nearest with ties up. */
export type E8M0Round = 'up' | 'down' | 'nearest';

const f64 = new Float64Array(1);
const hi32 = new Uint32Array(f64.buffer);
/** The sign bit of x, NaN included (Math.sign cannot see it). */
const signBit = (x: number) => { f64[0] = x; return hi32[1] >>> 31 === 1; };

/**
 * Encode x with round-to-nearest-even (Cast's tables). `saturate` clamps out-of-range values and
 * infinities to the largest finite value; without it they become inf where the format has one, else NaN.
 * `round` only applies to float8e8m0.
 */
export function encodeMini(fmt: MiniFormat, x: number, saturate = true, round: E8M0Round = 'up'): number {
  if (fmt === FORMATS.float8e8m0) return encodeE8M0(x, saturate, round);
  const sign = 1 << (fmt.bits - 1), neg = signBit(x);
  // float4e2m1 has no NaN: the reference conversion gives -0 for it.
  if (Number.isNaN(x)) return fmt.nan < 0 ? sign : fmt.negZero && neg ? fmt.nan | sign : fmt.nan;
  const a = Math.abs(x), s = fmt.sorted, top = s[s.length - 1];
  const withSign = (p: number) => (neg && (p !== 0 || fmt.negZero) ? p | sign : p);
  if (a > top.v) {
    // The next value up would be top + step; a tie goes to the even pattern of the two.
    const mid = top.v + (top.v - s[s.length - 2].v) / 2;
    if (a < mid || (a === mid && !(top.p & 1))) return withSign(top.p);
    if (saturate || fmt.nan < 0) return withSign(top.p);
    if (fmt.inf >= 0) return withSign(fmt.inf);
    return fmt.negZero && neg ? fmt.nan | sign : fmt.nan;
  }
  let lo = 0, hi = s.length - 1;
  while (hi - lo > 1) { const m = (lo + hi) >> 1; if (s[m].v <= a) lo = m; else hi = m; }
  const d0 = a - s[lo].v, d1 = s[hi].v - a;
  return withSign((d0 < d1 ? s[lo] : d1 < d0 ? s[hi] : s[lo].p & 1 ? s[hi] : s[lo]).p);
}

/**
 * float8e8m0 holds 2^(p-127) for p in 0..254 and NaN at 255; it has no sign, zero or infinity. Inputs
 * outside its range saturate or give NaN before any rounding (the spec's table); negatives, undefined
 * by the spec, count as 0 as onnxruntime does.
 */
function encodeE8M0(x: number, saturate: boolean, round: E8M0Round): number {
  if (Number.isNaN(x)) return 0xff;
  const a = x > 0 ? x : 0;
  if (a < 2 ** -127 || a > 2 ** 127) return saturate ? (a > 1 ? 254 : 0) : 0xff;
  let k = Math.floor(Math.log2(a));
  if (2 ** k > a) k--; else if (2 ** (k + 1) <= a) k++; // log2 can be one ulp off near powers of two
  if (2 ** k !== a && (round === 'up' || (round === 'nearest' && a >= 1.5 * 2 ** k))) k++;
  return k + 127;
}

/**
 * Round float32 storage to the value set of a narrow type, in place. Like float16 arithmetic it does not
 * saturate: every value of the type (an infinity included) is left as it is, and overflow goes to
 * infinity or NaN. Saturation is Cast's choice, made before this runs.
 */
export function roundInPlace(name: string, data: Float32Array): void {
  if (name === 'float16') { for (let i = 0; i < data.length; i++) data[i] = f16ToNumber(numberToF16(data[i])); return; }
  if (name === 'bfloat16') { for (let i = 0; i < data.length; i++) data[i] = bf16ToNumber(numberToBf16(data[i])); return; }
  const fmt = FORMATS[name as MiniName];
  if (!fmt) return;
  for (let i = 0; i < data.length; i++) data[i] = fmt.decode[encodeMini(fmt, data[i], false, 'nearest')];
}
