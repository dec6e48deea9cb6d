// Scalar math JS lacks: erf, round half to even, C's pow special cases, wrapping integer power.

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const INV_ODD = Float64Array.from({ length: 128 }, (_, k) => 1 / (2 * k + 1));

/** erf to float64 precision, slowly: builds the tables the fast form below interpolates from. */
function erfExact(a: number): number {
  return a < 3 ? erfSeries(a) : 1 - erfcFraction(a);
}

// erf(a) = 2/sqrt(pi) e^(-a^2) sum_n (2a^2)^n a / (2n+1)!!: every term is positive, so nothing cancels.
function erfSeries(a: number): number {
  const t = 2 * a * a;
  let term = a, sum = a;
  for (let k = 1; term > sum * 1e-17; k++) { term *= t * INV_ODD[k]; sum += term; }
  return TWO_OVER_SQRT_PI * Math.exp(-a * a) * sum;
}

// erfc(a) = e^(-a^2)/sqrt(pi) / (a + (1/2)/(a + 1/(a + (3/2)/(a + ...)))), evaluated from the tail;
// from a >= 3 on, 30 levels already reach float64 resolution of erf (checked against a reference).
function erfcFraction(a: number): number {
  let f = a;
  for (let k = 30; k >= 1; k--) f = a + k / 2 / f;
  return Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
}

// erf and its derivative 2/sqrt(pi) e^(-x^2) on a grid of step 1/64 over [0, 6]; beyond 6, erf is 1.
const STEP = 64, LIMIT = 6;
const ERF_AT = Float64Array.from({ length: LIMIT * STEP + 1 }, (_, k) => erfExact(k / STEP));
const GAUSS_AT = Float64Array.from({ length: LIMIT * STEP + 1 }, (_, k) => TWO_OVER_SQRT_PI * Math.exp(-((k / STEP) ** 2)));
const INV = Float64Array.from({ length: 8 }, (_, n) => 1 / n);

/**
 * Error function to about 1 ulp of float64: a degree-7 Taylor step from the nearest grid point. The
 * n-th derivative of erf is (-1)^(n-1) H_{n-1}(x0) times the Gaussian, H being Hermite polynomials;
 * with |h| <= 1/128 the first dropped term is below 1e-17.
 */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (!(a < LIMIT)) return x !== x ? NaN : Math.sign(x);
  const k = Math.round(a * STEP), x0 = k / STEP, h = a - x0;
  let hPrev = 1, hCur = 2 * x0, t = h, s = h;
  for (let n = 2; n <= 7; n++) {
    t *= -h * INV[n];
    s += hCur * t;
    const next = 2 * x0 * hCur - 2 * (n - 1) * hPrev; // H_{n} from H_{n-1} and H_{n-2}
    hPrev = hCur; hCur = next;
  }
  const r = ERF_AT[k] + GAUSS_AT[k] * s;
  return x < 0 ? -r : r;
}

/** Nearest integer, halves to even (ONNX Round); integers, +-0, NaN and infinities pass through. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // halves go up
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** x ** y as C's pow does: 1 ** y and (-1) ** +-inf are 1 even for NaN/inf exponents. */
export const powC = (x: number, y: number) => (x === 1 || (x === -1 && Math.abs(y) === Infinity) ? 1 : x ** y);

/** x ** y on `bits`-wide two's complement integers (wrapping); negative y truncates 1/x^|y| toward 0. */
export function powWrap(x: bigint, y: bigint, bits: number, signed: boolean): bigint {
  const wrap = (v: bigint) => (signed ? BigInt.asIntN(bits, v) : BigInt.asUintN(bits, v));
  if (y < 0n) return x === 1n ? 1n : x === -1n ? (y & 1n ? -1n : 1n) : 0n;
  let r = 1n, b = wrap(x);
  for (let e = y; e > 0n; e >>= 1n) {
    if (e & 1n) r = wrap(r * b);
    b = wrap(b * b);
  }
  return r;
}
