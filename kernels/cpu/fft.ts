// Complex discrete Fourier transforms of any length, in float64 (float32 results then round once).
// Powers of two run an iterative radix-2 FFT; other lengths run Bluestein's chirp-z transform through a
// power-of-two FFT, except short ones where a table-driven O(n²) DFT is cheaper than three FFTs.

/** Forward, unnormalised transform of (re, im) in place. */
export type Transform = (re: Float64Array, im: Float64Array) => void;

const DIRECT_MAX = 32;
const plans = new Map<number, Transform>();

/** The cached forward transform of length n. */
export function fftPlan(n: number): Transform {
  let p = plans.get(n);
  if (!p) {
    if (plans.size >= 64) plans.clear(); // models use a handful of lengths; bound the cache anyway
    p = (n & (n - 1)) === 0 ? radix2(n) : n <= DIRECT_MAX ? direct(n) : bluestein(n);
    plans.set(n, p);
  }
  return p;
}

/**
 * Inverse transform with 1/n scaling, in place. Swapping re and im conjugates up to a factor of i, so
 * the forward plan on swapped parts is the unnormalised inverse.
 */
export function ifft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  fftPlan(n)(im, re);
  for (let i = 0; i < n; i++) { re[i] /= n; im[i] /= n; }
}

function radix2(n: number): Transform {
  const bits = Math.log2(n), rev = new Uint32Array(n);
  for (let i = 1; i < n; i++) rev[i] = (rev[i >> 1] >> 1) | ((i & 1) << (bits - 1));
  const cos = new Float64Array(n >> 1), sin = new Float64Array(n >> 1);
  for (let k = 0; k < n >> 1; k++) { cos[k] = Math.cos((2 * Math.PI * k) / n); sin[k] = -Math.sin((2 * Math.PI * k) / n); }
  return (re, im) => {
    for (let i = 0; i < n; i++) {
      const j = rev[i];
      if (j > i) { let t = re[i]; re[i] = re[j]; re[j] = t; t = im[i]; im[i] = im[j]; im[j] = t; }
    }
    for (let size = 2; size <= n; size <<= 1) {
      const half = size >> 1, step = n / size;
      for (let start = 0; start < n; start += size) {
        for (let k = 0, t = 0; k < half; k++, t += step) {
          const a = start + k, b = a + half, wr = cos[t], wi = sin[t];
          const xr = re[b] * wr - im[b] * wi, xi = re[b] * wi + im[b] * wr;
          re[b] = re[a] - xr; im[b] = im[a] - xi; re[a] += xr; im[a] += xi;
        }
      }
    }
  };
}

function direct(n: number): Transform {
  const cos = new Float64Array(n), sin = new Float64Array(n), or = new Float64Array(n), oi = new Float64Array(n);
  for (let k = 0; k < n; k++) { cos[k] = Math.cos((2 * Math.PI * k) / n); sin[k] = -Math.sin((2 * Math.PI * k) / n); }
  return (re, im) => {
    for (let k = 0; k < n; k++) {
      let sr = 0, si = 0;
      for (let j = 0, t = 0; j < n; j++, t = (t + k) % n) { sr += re[j] * cos[t] - im[j] * sin[t]; si += re[j] * sin[t] + im[j] * cos[t]; }
      or[k] = sr; oi[k] = si;
    }
    re.set(or); im.set(oi);
  };
}

/** X[k] = w[k]·Σ (x[j]·w[j])·conj(w[k-j]) with the chirp w[j] = exp(-iπj²/n): a convolution, done by FFT. */
function bluestein(n: number): Transform {
  let m = 1;
  while (m < 2 * n - 1) m <<= 1;
  const fft = fftPlan(m), wr = new Float64Array(n), wi = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const a = (Math.PI * ((j * j) % (2 * n))) / n; // j² mod 2n keeps the angle exact for large j
    wr[j] = Math.cos(a); wi[j] = -Math.sin(a);
  }
  const br = new Float64Array(m), bi = new Float64Array(m);
  for (let j = 0; j < n; j++) { br[j] = wr[j]; bi[j] = -wi[j]; if (j) { br[m - j] = wr[j]; bi[m - j] = -wi[j]; } }
  fft(br, bi);
  const ar = new Float64Array(m), ai = new Float64Array(m);
  return (re, im) => {
    ar.fill(0); ai.fill(0);
    for (let j = 0; j < n; j++) { ar[j] = re[j] * wr[j] - im[j] * wi[j]; ai[j] = re[j] * wi[j] + im[j] * wr[j]; }
    fft(ar, ai);
    // Multiply by B, then transform back with the swap trick (the 1/m lands in the final loop).
    for (let k = 0; k < m; k++) { const r = ar[k] * br[k] - ai[k] * bi[k]; ai[k] = ar[k] * bi[k] + ai[k] * br[k]; ar[k] = r; }
    fft(ai, ar);
    for (let k = 0; k < n; k++) {
      const cr = ar[k] / m, ci = ai[k] / m;
      re[k] = cr * wr[k] - ci * wi[k]; im[k] = cr * wi[k] + ci * wr[k];
    }
  };
}
