// WebAssembly SIMD128 float32 math functions, emitted inline with kernels/wasm/emitter.ts: a
// range-reduced exp and the functions built on it (expm1, sigmoid, tanh, erf, the two Gelus, Silu).
// Each reads a v128 local of the function being built (Fn) and pushes its result. Users: the
// elementwise and row kernels of math-module.ts, and the recurrent gate functions of rnn.ts.
//
// Polynomial coefficients were fitted for this file (minimax by iteratively reweighted least squares
// in float64, then rounded to float32 and checked by evaluating in float32): the relative error of each
// fit is far below float32 rounding, so the kernels' error is the few roundings of the evaluation.
import { Code, Simd, T, type Func } from './emitter.js';

// e^r = 1 + r + r^2 P(r) on |r| <= ln2/2 (fit error 3e-9 relative).
const EXP_P = [0.49999994, 0.16666521, 0.041668389, 0.0083687454, 0.0013814541];
// tanh(a) = a + a^3 P(a^2) on a < 0.625 (4e-9 relative); above it, (1 - e^-2a) / (1 + e^-2a) loses nothing.
const TANH_SMALL = 0.625;
const TANH_P = [-0.33333281, 0.13331442, -0.053739715, 0.020639084, -0.0057049845];
// erf(a) = a P(a^2) on a < 1 (1.2e-9 relative).
const ERF_P = [1.1283791, -0.37612626, 0.112836, -0.026854444, 0.0051895352, -0.00080208405, 7.8891171e-5];
// erfc(a) = e^-a^2 Q(t), t = 1 / (1 + a/2), on a >= 1 (6e-9 relative; 3e-7 evaluated in float32).
// Relative accuracy in the tail keeps Gelu's negative side accurate where 1 + erf(x) cancels.
const ERFC_Q = [-4.1035846e-6, 0.28219941, 0.28099069, 0.25296786, 0.15803948, 0.10534716, 0.025053816, -0.18503554, 0.080889471];

/** Float constants by name, each used as a 4-lane splat (INTS: the i32 ones). */
const CONSTS: Record<string, number> = {
  one: 1, half: 0.5, sixth: 1 / 6, minusTwo: -2, negInf: -Infinity, sign: -0,
  // exp's input clamp: e^89 overflows, e^-104 rounds to 0; clamping keeps the exponent arithmetic in range.
  expHi: 89, expLo: -104, log2e: Math.LOG2E,
  // ln 2 in two parts (Cody-Waite): the high part has 16 significant bits, so k * ln2Hi is exact.
  ln2Hi: 0.693145751953125, ln2Lo: 1.428606765330187e-6,
  tanhSmall: TANH_SMALL, sqrtHalf: Math.SQRT1_2,
  // Gelu (tanh form) = x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)).
  geluK1: 2 * Math.sqrt(2 / Math.PI), geluK2: 2 * Math.sqrt(2 / Math.PI) * 0.044715,
  ...Object.fromEntries([
    ...EXP_P.map((v, i) => [`exp${i}`, v]), ...TANH_P.map((v, i) => [`tanh${i}`, v]),
    ...ERF_P.map((v, i) => [`erf${i}`, v]), ...ERFC_Q.map((v, i) => [`erfc${i}`, v]),
  ]),
};
const INTS: Record<string, number> = { expBias: 127 };

/**
 * A function under construction: its code, and locals allocated as needed after the params. Each
 * constant a function uses gets a local, set to its splat once in a prologue: V8 does not hoist a
 * splat (or any constant) out of a loop, and rebuilding a dozen constants per vector cost as much as
 * the arithmetic.
 */
export class Fn {
  readonly c = new Code();
  private readonly locals: T[] = [];
  private readonly consts = new Map<string, number>();
  constructor(readonly name: string, readonly params: T[], readonly results: T[] = []) {}
  local(t: T): number { return this.params.length + this.locals.push(t) - 1; }
  /** Pushes the named constant vector. */
  k(name: string): this {
    if (!(name in CONSTS) && !(name in INTS)) throw new Error(`no math constant '${name}'`);
    let at = this.consts.get(name);
    if (at === undefined) this.consts.set(name, (at = this.local(T.v128)));
    this.c.get(at);
    return this;
  }
  /** Pushes the polynomial sum_i coef[prefix i] * (local x)^i by Horner's rule. */
  horner(prefix: string, degree: number, x: number): this {
    this.k(`${prefix}${degree}`);
    for (let i = degree - 1; i >= 0; i--) { this.c.get(x).simd(Simd.f32x4Mul); this.k(`${prefix}${i}`).c.simd(Simd.f32x4Add); }
    return this;
  }
  /** The finished function: the constants' prologue, then the code. */
  func(): Func {
    const body = new Code();
    for (const [name, at] of this.consts) {
      if (name in INTS) body.i32(INTS[name]).simd(Simd.i32x4Splat).set(at);
      else body.f32(CONSTS[name]).simd(Simd.f32x4Splat).set(at);
    }
    body.bytes.push(...this.c.bytes);
    return { name: this.name, params: this.params, results: this.results, locals: this.locals, body };
  }
}

/** A vector function: reads v128 local x, pushes f(x). */
export type VecOp = (f: Fn, x: number) => void;

/**
 * For x = k ln2 + r, k = round(x log2 e) (x clamped to [expLo, expHi]): sets local p = e^r - 1 and
 * locals n = k and n1 = k >> 1 (i32 lanes), so that e^x = (1 + p) 2^n1 2^(n - n1).
 */
function expParts(f: Fn, x: number): { p: number; n: number; n1: number } {
  const c = f.c, xc = f.local(T.v128), k = f.local(T.v128), r = f.local(T.v128), n = f.local(T.v128), n1 = f.local(T.v128), p = f.local(T.v128);
  // pmin(x, k) = k < x ? k : x: one instruction on x64, and a NaN x stays NaN (it is the first operand).
  c.get(x); f.k('expHi'); c.simd(Simd.f32x4Pmin); f.k('expLo'); c.simd(Simd.f32x4Pmax).tee(xc);
  // Adding 1.5 * 2^23 rounds x log2 e to an integer (to nearest even, as f32x4.nearest) held in the
  // low mantissa bits: one add and one integer subtract in place of nearest and a saturating convert.
  f.k('log2e'); c.simd(Simd.f32x4Mul).simd(Simd.f32x4Nearest).tee(k).simd(Simd.i32x4TruncSatF32x4S).tee(n);
  c.i32(1).simd(Simd.i32x4ShrS).set(n1);
  c.get(xc).get(k); f.k('ln2Hi'); c.simd(Simd.f32x4Mul).simd(Simd.f32x4Sub).get(k); f.k('ln2Lo'); c.simd(Simd.f32x4Mul).simd(Simd.f32x4Sub).set(r);
  f.horner('exp', EXP_P.length - 1, r);
  c.get(r).get(r).simd(Simd.f32x4Mul).simd(Simd.f32x4Mul).get(r).simd(Simd.f32x4Add).set(p);
  return { p, n, n1 };
}

/** Pushes 2^e for the i32 lanes on the stack (e + 127 in the exponent field; e in [-126, 127]). */
const pow2 = (f: Fn) => { f.k('expBias'); f.c.simd(Simd.i32x4Add).i32(23).simd(Simd.i32x4Shl); };

/**
 * e^x. e^r by polynomial; 2^k applied as two factors 2^(k>>1) and 2^(k - k>>1), so overflow to inf
 * and results down into the denormals come out of the final multiply with a single rounding.
 */
export const vexp: VecOp = (f, x) => {
  const c = f.c, { p, n, n1 } = expParts(f, x);
  // 1 + (r + r^2 P(r)): the small part first, so the only large rounding is the final add.
  c.get(p); f.k('one'); c.simd(Simd.f32x4Add);
  c.get(n1); pow2(f); c.simd(Simd.f32x4Mul);
  c.get(n).get(n1).simd(Simd.i32x4Sub); pow2(f); c.simd(Simd.f32x4Mul);
};

/**
 * e^x - 1, accurate near 0 too: (p 2^n1 + (2^n1 - 2^-(k - n1))) 2^(k - n1) = 2^k p + (2^k - 1), where
 * the inner sum is exact or nearly so for small k (p alone when k = 0). Scaled last, so large x
 * overflows to inf only where e^x does, and very negative x gives -1.
 */
export const vexpm1: VecOp = (f, x) => {
  const c = f.c, { p, n, n1 } = expParts(f, x), s1 = f.local(T.v128);
  c.get(n1); pow2(f); c.set(s1);
  c.get(p).get(s1).simd(Simd.f32x4Mul).get(s1);
  c.get(n1).get(n).simd(Simd.i32x4Sub); pow2(f); c.simd(Simd.f32x4Sub).simd(Simd.f32x4Add);
  c.get(n).get(n1).simd(Simd.i32x4Sub); pow2(f); c.simd(Simd.f32x4Mul);
};

/** Pushes (local v) with local x's sign bit ORed in (v is non-negative or NaN). */
const withSignOf = (f: Fn, v: number, x: number) => { f.c.get(v).get(x); f.k('sign'); f.c.simd(Simd.v128And).simd(Simd.v128Or); };

/** 1 / (1 + e^-x), as e/(1 + e) for x < 0 (e = e^-|x|) so that neither side overflows or cancels. */
export const vsigmoid: VecOp = (f, x) => {
  const c = f.c, a = f.local(T.v128), e = f.local(T.v128), s = f.local(T.v128);
  c.get(x).simd(Simd.f32x4Abs).simd(Simd.f32x4Neg).set(a);
  vexp(f, a); c.set(e);
  f.k('one'); f.k('one'); c.get(e).simd(Simd.f32x4Add).simd(Simd.f32x4Div).tee(s);
  c.get(e).get(s).simd(Simd.f32x4Mul).get(x).v128Zero().simd(Simd.f32x4Ge).simd(Simd.v128Bitselect);
};

export const vtanh: VecOp = (f, x) => {
  const c = f.c, a = f.local(T.v128), a2 = f.local(T.v128), t = f.local(T.v128), e = f.local(T.v128), r = f.local(T.v128);
  c.get(x).simd(Simd.f32x4Abs).tee(a).get(a).simd(Simd.f32x4Mul).set(a2);
  c.get(a); f.k('minusTwo'); c.simd(Simd.f32x4Mul).set(t);
  vexp(f, t); c.set(e);
  f.horner('tanh', TANH_P.length - 1, a2); c.get(a2).simd(Simd.f32x4Mul).get(a).simd(Simd.f32x4Mul).get(a).simd(Simd.f32x4Add);
  f.k('one'); c.get(e).simd(Simd.f32x4Sub); f.k('one'); c.get(e).simd(Simd.f32x4Add).simd(Simd.f32x4Div);
  c.get(a); f.k('tanhSmall'); c.simd(Simd.f32x4Lt).simd(Simd.v128Bitselect).set(r);
  withSignOf(f, r, x);
};

/**
 * For a = |z| (a v128 local): sets `small` to erf(a) for a < 1 and `tail` to erfc(a) for a >= 1 (each
 * garbage on the other side), and returns them with the mask local `isSmall`.
 */
function erfParts(f: Fn, a: number): { small: number; tail: number; isSmall: number } {
  const c = f.c, a2 = f.local(T.v128), t = f.local(T.v128), e = f.local(T.v128);
  const small = f.local(T.v128), tail = f.local(T.v128), isSmall = f.local(T.v128);
  c.get(a).get(a).simd(Simd.f32x4Mul).tee(a2).simd(Simd.f32x4Neg).set(e);
  f.horner('erf', ERF_P.length - 1, a2); c.get(a).simd(Simd.f32x4Mul).set(small);
  f.k('one'); f.k('one'); c.get(a); f.k('half'); c.simd(Simd.f32x4Mul).simd(Simd.f32x4Add).simd(Simd.f32x4Div).set(t);
  vexp(f, e); f.horner('erfc', ERFC_Q.length - 1, t); c.simd(Simd.f32x4Mul).set(tail);
  c.get(a); f.k('one'); c.simd(Simd.f32x4Lt).set(isSmall);
  return { small, tail, isSmall };
}

const verf: VecOp = (f, x) => {
  const c = f.c, a = f.local(T.v128), r = f.local(T.v128);
  c.get(x).simd(Simd.f32x4Abs).set(a);
  const { small, tail, isSmall } = erfParts(f, a);
  c.get(small); f.k('one'); c.get(tail).simd(Simd.f32x4Sub).get(isSmall).simd(Simd.v128Bitselect).set(r);
  withSignOf(f, r, x);
};

/** x * Phi(x) with q = Phi(-|x|) = erfc(|x|/sqrt2)/2: x (1 - q) for x >= 0 and x q below, so the negative tail keeps relative accuracy. */
const vgelu: VecOp = (f, x) => {
  const c = f.c, a = f.local(T.v128), q = f.local(T.v128);
  c.get(x).simd(Simd.f32x4Abs); f.k('sqrtHalf'); c.simd(Simd.f32x4Mul).set(a);
  const { small, tail, isSmall } = erfParts(f, a);
  f.k('one'); c.get(small).simd(Simd.f32x4Sub).get(tail).get(isSmall).simd(Simd.v128Bitselect); f.k('half'); c.simd(Simd.f32x4Mul).set(q);
  c.get(x); f.k('one'); c.get(q).simd(Simd.f32x4Sub).simd(Simd.f32x4Mul).get(x).get(q).simd(Simd.f32x4Mul);
  c.get(x).v128Zero().simd(Simd.f32x4Ge).simd(Simd.v128Bitselect);
};

/** x * vsigmoid(u(x)), for the sigmoid-shaped activations. */
const timesSigmoid = (u: (f: Fn, x: number) => void): VecOp => (f, x) => {
  const v = f.local(T.v128);
  u(f, x); f.c.set(v);
  vsigmoid(f, v); f.c.get(x).simd(Simd.f32x4Mul);
};
const vsilu = timesSigmoid((f, x) => f.c.get(x));
const vgeluTanh = timesSigmoid((f, x) => { f.k('geluK2'); f.c.get(x).get(x).simd(Simd.f32x4Mul).simd(Simd.f32x4Mul); f.k('geluK1'); f.c.simd(Simd.f32x4Add).get(x).simd(Simd.f32x4Mul); });

/** The elementwise functions math-module.ts exports, by name. */
export const UNARY = { exp: vexp, sigmoid: vsigmoid, tanh: vtanh, erf: verf, gelu: vgelu, geluTanh: vgeluTanh, silu: vsilu };
export type Unary = keyof typeof UNARY;
