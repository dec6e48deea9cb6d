// Normalization kernels. Statistics are accumulated in float64 (two passes: mean, then centred squares)
// whatever the storage, which covers float16/bfloat16 stash_type=1 semantics and is accurate for float32.

type Num = { [i: number]: number; length: number };

/** Mean and population variance of each of `rows` contiguous rows of `len` elements. */
export function rowMoments(x: Num, rows: number, len: number): { mean: Float64Array; variance: Float64Array } {
  const mean = new Float64Array(rows), variance = new Float64Array(rows);
  for (let r = 0, o = 0; r < rows; r++, o += len) {
    let s = 0;
    for (let j = 0; j < len; j++) s += x[o + j];
    const m = s / len;
    let v = 0;
    for (let j = 0; j < len; j++) { const d = x[o + j] - m; v += d * d; }
    mean[r] = m; variance[r] = v / len;
  }
  return { mean, variance };
}

/** Mean of squares of each row (RMSNormalization's statistic). */
export function rowMeanSquares(x: Num, rows: number, len: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0, o = 0; r < rows; r++, o += len) {
    let s = 0;
    for (let j = 0; j < len; j++) s += x[o + j] * x[o + j];
    out[r] = s / len;
  }
  return out;
}

/** 1 / sqrt(v + eps) elementwise. */
export const invStd = (v: Float64Array, eps: number) => v.map((x) => 1 / Math.sqrt(x + eps));

/** y = (x - mean[r]) * inv[r] along each row; `mean` undefined means zero. */
export function standardizeRows(x: Num, y: Num, rows: number, len: number, mean: Float64Array | undefined, inv: Float64Array): void {
  for (let r = 0, o = 0; r < rows; r++, o += len) {
    const m = mean ? mean[r] : 0, k = inv[r];
    for (let j = o, end = o + len; j < end; j++) y[j] = (x[j] - m) * k;
  }
}

/**
 * y = y * s + b in place, with s and b (b optional) of length `len` (indexed by position in the row)
 * or `rows * len` (indexed by element).
 */
export function rowAffine(y: Num, rows: number, len: number, s: Num, b: Num | undefined): void {
  for (let r = 0, o = 0; r < rows; r++, o += len) {
    const base = s.length === len ? 0 : o;
    if (b) for (let j = 0; j < len; j++) y[o + j] = y[o + j] * s[base + j] + b[base + j];
    else for (let j = 0; j < len; j++) y[o + j] *= s[base + j];
  }
}

/** y = x * a[ch] + b[ch] over an n x c x spatial tensor. */
export function channelAffine(x: Num, y: Num, n: number, c: number, spatial: number, a: Num, b: Num): void {
  for (let i = 0, o = 0; i < n * c; i++) {
    const k = a[i % c], d = b[i % c];
    for (const end = o + spatial; o < end; o++) y[o] = x[o] * k + d;
  }
}

/** Per-channel mean and population variance over batch and spatial dims (BatchNormalization training). */
export function channelMoments(x: Num, n: number, c: number, spatial: number): { mean: Float64Array; variance: Float64Array } {
  const mean = new Float64Array(c), variance = new Float64Array(c), count = n * spatial;
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let b = 0; b < n; b++) for (let o = (b * c + ch) * spatial, e = o + spatial; o < e; o++) s += x[o];
    const m = s / count;
    let v = 0;
    for (let b = 0; b < n; b++) for (let o = (b * c + ch) * spatial, e = o + spatial; o < e; o++) { const d = x[o] - m; v += d * d; }
    mean[ch] = m; variance[ch] = v / count;
  }
  return { mean, variance };
}

/** LRN: y = x / (bias + alpha / size * sum of x^2 over a window of channels) ^ beta. */
export function lrn(x: Num, y: Num, n: number, c: number, spatial: number, size: number, alpha: number, beta: number, bias: number): void {
  const before = Math.floor((size - 1) / 2), after = Math.ceil((size - 1) / 2), sq = new Float64Array(spatial);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      sq.fill(0);
      for (let k = Math.max(0, ch - before); k <= Math.min(c - 1, ch + after); k++) {
        for (let s = 0, o = (b * c + k) * spatial; s < spatial; s++, o++) sq[s] += x[o] * x[o];
      }
      for (let s = 0, o = (b * c + ch) * spatial; s < spatial; s++, o++) y[o] = x[o] / (bias + (alpha / size) * sq[s]) ** beta;
    }
  }
}

/** Lp-normalizes (p = 1 or 2) along an axis of length `len` within an outer x len x inner layout; zero norms give 0. */
export function lpNormalize(x: Num, y: Num, outer: number, len: number, inner: number, p: number): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * len * inner + i;
      let s = 0;
      for (let j = 0, q = base; j < len; j++, q += inner) s += p === 1 ? Math.abs(x[q]) : x[q] * x[q];
      const norm = p === 1 ? s : Math.sqrt(s);
      for (let j = 0, q = base; j < len; j++, q += inner) y[q] = norm === 0 ? 0 : x[q] / norm;
    }
  }
}

/**
 * MeanVarianceNormalization: y = (x - mean) / (sqrt(variance) + 1e-9), statistics taken over `axes`
 * (each element belongs to the group given by its coordinates on the other dims).
 */
export function meanVarianceNormalize(x: Num, y: Num, shape: readonly number[], axes: readonly number[]): void {
  const group = new Int32Array(x.length), idx = new Array<number>(shape.length).fill(0);
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const gStride = kept.map((_, i) => kept.slice(i + 1).reduce((a, b) => a * b, 1));
  const groups = kept.reduce((a, b) => a * b, 1), count = x.length / Math.max(1, groups);
  for (let i = 0, g = 0; i < x.length; i++) {
    group[i] = g;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) { if (kept[d] > 1) g += gStride[d]; break; }
      if (kept[d] > 1) g -= gStride[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
  const mean = new Float64Array(groups), v = new Float64Array(groups);
  for (let i = 0; i < x.length; i++) mean[group[i]] += x[i];
  for (let g = 0; g < groups; g++) mean[g] /= count;
  for (let i = 0; i < x.length; i++) { const d = x[i] - mean[group[i]]; v[group[i]] += d * d; }
  for (let i = 0; i < x.length; i++) y[i] = (x[i] - mean[group[i]]) / (Math.sqrt(v[group[i]] / count) + 1e-9);
}
