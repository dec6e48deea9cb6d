// Vectorised float32 exp, expm1, sigmoid and tanh, emitted inline as WebAssembly SIMD128 for kernels that apply
// activations (kernels/wasm/rnn.ts). Accuracy is a few float32 ulps over the whole range; NaN stays NaN.
import { Code, Simd, T } from './emitter.js';

/**
 * The locals of one function being emitted (numbered after its params). f32x4 constants get a local
 * each, set once in a prologue: V8 does not hoist a splat out of a loop, and rebuilding a dozen
 * constants per vector cost as much as the arithmetic.
 */
export class Scope {
  readonly locals: T[] = [];
  private readonly consts = new Map<number, number>();
  private readonly bits = new Uint32Array(1);
  private readonly view = new Float32Array(this.bits.buffer);

  constructor(private readonly params: number) {}

  local(t: T): number {
    this.locals.push(t);
    return this.params + this.locals.length - 1;
  }

  /** A local holding splat(v); keyed by bit pattern so -0 (the sign mask) and 0 stay apart. */
  k(v: number): number {
    this.view[0] = v;
    const key = this.bits[0];
    let at = this.consts.get(key);
    if (at === undefined) this.consts.set(key, (at = this.local(T.v128)));
    return at;
  }

  /** The whole function body: the constants' prologue, then `body`. */
  finish(body: Code): Code {
    const c = new Code();
    for (const [key, at] of this.consts) {
      this.bits[0] = key;
      c.f32(this.view[0]).simd(Simd.f32x4Splat).set(at);
    }
    c.bytes.push(...body.bytes);
    return c;
  }
}

// Cody-Waite split of ln 2: LN2_HI has few enough bits that n * LN2_HI is exact for |n| <= 127.
const LOG2E = 1.4426950408889634, LN2_HI = 0.693359375, LN2_LO = -2.12194440e-4;
// The exp argument is clamped so 2^n stays a normal float (n in [-126, 127]).
const EXP_MAX = 88.3, EXP_MIN = -87.3;
// Adding 1.5 * 2^23 rounds to an integer (to nearest even) and leaves it in the low mantissa bits, so
// one add replaces nearest + convert, and a shift of the raw bits builds 2^n.
const ROUND = 12582912;
// e^r - 1 = r + r^2 q(r), q by its Taylor series from r^5 down to r^0 (truncation under 1e-8 for |r| <= ln2/2).
const EXPM1_SERIES = [1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2];

/**
 * Sets `scale` = 2^n and `q` = e^r - 1 for the v128 local x, where x = n ln 2 + r with r in
 * [-ln2/2, ln2/2] (x clamped to keep 2^n normal); then e^x = scale + scale * q.
 */
function expParts(c: Code, s: Scope, x: number, scale: number, q: number): void {
  const r = s.local(T.v128), n = s.local(T.v128);
  // pmin(x, k) = k < x ? k : x: one instruction on x64 (min/max take several), and a NaN x stays NaN.
  c.get(x).get(s.k(EXP_MAX)).simd(Simd.f32x4Pmin).get(s.k(EXP_MIN)).simd(Simd.f32x4Pmax).set(r);
  c.get(r).get(s.k(LOG2E)).simd(Simd.f32x4Mul).get(s.k(ROUND)).simd(Simd.f32x4Add).tee(scale).get(s.k(ROUND)).simd(Simd.f32x4Sub).set(n);
  c.get(r).get(n).get(s.k(LN2_HI)).simd(Simd.f32x4Mul).simd(Simd.f32x4Sub);
  c.get(n).get(s.k(LN2_LO)).simd(Simd.f32x4Mul).simd(Simd.f32x4Sub).set(r);
  c.get(s.k(EXPM1_SERIES[0])).set(q);
  for (const coef of EXPM1_SERIES.slice(1)) c.get(q).get(r).simd(Simd.f32x4Mul).get(s.k(coef)).simd(Simd.f32x4Add).set(q);
  c.get(q).get(r).simd(Simd.f32x4Mul).get(r).simd(Simd.f32x4Mul).get(r).simd(Simd.f32x4Add).set(q);
  // Bits of `scale` are those of 1.5 * 2^23 + n: shifted by 23 only n's bits remain; then the exponent
  // bias 127 << 23, which is the bit pattern of 1.0.
  c.get(scale).i32(23).simd(Simd.i32x4Shl).get(s.k(1)).simd(Simd.i32x4Add).set(scale);
}

/** Pushes exp(x) for the v128 local x. */
export function exp(c: Code, s: Scope, x: number): Code {
  const scale = s.local(T.v128), q = s.local(T.v128);
  expParts(c, s, x, scale, q);
  return c.get(scale).get(scale).get(q).simd(Simd.f32x4Mul).simd(Simd.f32x4Add);
}

/** Pushes exp(x) - 1, accurate near 0 too: 2^n q + (2^n - 1), where 2^n - 1 is exact for small n. */
export function expm1(c: Code, s: Scope, x: number): Code {
  const scale = s.local(T.v128), q = s.local(T.v128);
  expParts(c, s, x, scale, q);
  return c.get(scale).get(q).simd(Simd.f32x4Mul).get(scale).get(s.k(1)).simd(Simd.f32x4Sub).simd(Simd.f32x4Add);
}

/** Pushes 1 / (1 + exp(-x)). */
export function sigmoid(c: Code, s: Scope, x: number): Code {
  const t = s.local(T.v128);
  c.get(x).simd(Simd.f32x4Neg).set(t);
  c.get(s.k(1)).get(s.k(1));
  exp(c, s, t);
  return c.simd(Simd.f32x4Add).simd(Simd.f32x4Div);
}

/** Pushes tanh(x) = E / (E + 2) with E = expm1(2x): no cancellation near 0, and ±1 at the clamped ends. */
export function tanh(c: Code, s: Scope, x: number): Code {
  const e = s.local(T.v128);
  c.get(x).get(x).simd(Simd.f32x4Add).set(e);
  expm1(c, s, e).tee(e).get(e).get(s.k(2)).simd(Simd.f32x4Add);
  return c.simd(Simd.f32x4Div);
}
