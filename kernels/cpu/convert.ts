// Scalar conversions Cast needs beyond what typed-array stores do: text <-> number, correctly rounded
// int64 -> float32, sub-byte integer wrapping and float8e8m0 rounding.

/** C's "%.8g" (what ONNX Runtime writes for floats), with NaN, INF and -INF spelled as ONNX reads them. */
export function formatFloat(x: number): string {
  if (x !== x) return 'NaN';
  if (x === Infinity || x === -Infinity) return x > 0 ? 'INF' : '-INF';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const [mant, e] = x.toExponential(7).split('e'), exp = Number(e); // exponent after rounding to 8 digits
  if (exp < -4 || exp >= 8) return `${trimZeros(mant)}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return trimZeros(x.toFixed(7 - exp));
}
const trimZeros = (s: string) => (s.includes('.') ? s.replace(/\.?0+$/, '') : s);

/** Text to a float as strtod reads it: "INF", "-inf", "NaN" in any case, exponents, a leading number. */
export function parseReal(s: string): number {
  const t = s.trim().toLowerCase(), word = /^([+-]?)(inf|infinity|nan)$/.exec(t);
  if (word) return word[2] === 'nan' ? NaN : word[1] === '-' ? -Infinity : Infinity;
  if (t === '') return NaN;
  const v = Number(t);
  return v === v ? v : parseFloat(t);
}

/** The integer a text starts with ("1.5" -> 1, as ONNX Runtime reads it); undefined when there is none. */
export function parseLeadingInt(s: string): bigint | undefined {
  const m = /^\s*([+-]?\d+)/.exec(s);
  return m ? BigInt(m[1]) : undefined;
}

/**
 * bigint -> nearest float32 (ties to even), as a number. Number() would round to 53 bits first and a
 * second rounding to 24 could then land on the wrong side of a tie; rounding to odd at 53 bits avoids it.
 */
export function bigToF32(v: bigint): number {
  const a = v < 0n ? -v : v, drop = a.toString(2).length - 53;
  if (drop <= 0) return Math.fround(Number(v));
  const d = BigInt(drop), kept = (a >> d) | (a & ((1n << d) - 1n) ? 1n : 0n);
  return Math.fround((v < 0n ? -1 : 1) * Number(kept) * 2 ** drop);
}

/**
 * A float into a `bits`-wide integer (int4, uint4, int2, uint2): rounded half away from zero, then
 * wrapped; NaN and infinities give 0. The spec leaves the rounding open; this is onnxruntime's.
 */
export function wrapBits(v: number, bits: number, signed: boolean): number {
  if (!Number.isFinite(v)) return 0;
  const m = 2 ** bits, r = (((v < 0 ? -Math.round(-v) : Math.round(v)) % m) + m) % m;
  return signed && r >= m / 2 ? r - m : r;
}

