// Separable resampling. Each resized axis maps every output index to a few input taps with weights
// (one tap of weight 1 for nearest), and the axes are resampled one after another.

export type CoordMode =
  | 'half_pixel' | 'half_pixel_symmetric' | 'pytorch_half_pixel' | 'align_corners' | 'asymmetric'
  | 'tf_half_pixel_for_nn' | 'tf_crop_and_resize';

export interface AxisSpec { inLen: number; outLen: number; scale: number; coord: CoordMode; roi: [number, number] }

/**
 * Input coordinate of output index x, or NaN where tf_crop_and_resize falls outside the input. The
 * output width is scale * inLen in float32, fractional when it came from a scale, as the reference
 * tests and onnxruntime compute it.
 */
export function sourceCoord(s: AxisSpec, x: number): number {
  const { inLen: n, outLen, scale } = s, width = Math.fround(scale * n), [a, b] = s.roi;
  switch (s.coord) {
    case 'half_pixel': return (x + 0.5) / scale - 0.5;
    // Centres the sampling grid when the integer output size differs from width.
    case 'half_pixel_symmetric': return (n / 2) * (1 - outLen / width) + (x + 0.5) / scale - 0.5;
    case 'pytorch_half_pixel': return outLen > 1 ? (x + 0.5) / scale - 0.5 : 0;
    case 'align_corners': return outLen > 1 ? (x * (n - 1)) / (width - 1) : 0;
    case 'asymmetric': return x / scale;
    case 'tf_half_pixel_for_nn': return (x + 0.5) / scale;
    case 'tf_crop_and_resize': {
      const c = outLen > 1 ? a * (n - 1) + (x * (b - a) * (n - 1)) / (width - 1) : 0.5 * (a + b) * (n - 1);
      return c < 0 || c > n - 1 ? NaN : c;
    }
  }
}

/** Weights for output index x: `k` taps per index; `outside` marks indices that take the fill value. */
export interface Taps { k: number; idx: Int32Array; w: Float64Array; outside: Uint8Array }

/** Nearest picks one input index; filters weigh every input within `radius` of the coordinate. */
export type Filter = { round: (c: number) => number } | { radius: number; weight: (d: number) => number };

export const linearWeight = (d: number) => Math.max(0, 1 - Math.abs(d));

/** Keys' cubic convolution kernel with coefficient a. */
export const cubicWeight = (a: number) => (d: number) => {
  const x = Math.abs(d);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  return x < 2 ? ((a * x - 5 * a) * x + 8 * a) * x - 4 * a : 0;
};

/**
 * Taps for one axis. Neighbours past the edge repeat the edge value, or with `exclude` drop out and the
 * rest are renormalised. With `antialias` a downscaling filter is stretched by 1/scale.
 */
export function axisTaps(s: AxisSpec, f: Filter, antialias: boolean, exclude: boolean): Taps {
  const n = s.inLen, m = s.outLen, clamp = (i: number) => Math.min(Math.max(i, 0), n - 1);
  const stretch = antialias ? Math.min(s.scale, 1) : 1;
  const start = 'round' in f ? 0 : Math.floor(-f.radius / stretch) + 1, k = 'round' in f ? 1 : 2 - 2 * start;
  const t: Taps = { k, idx: new Int32Array(m * k), w: new Float64Array(m * k), outside: new Uint8Array(m) };
  for (let x = 0; x < m; x++) {
    const c = sourceCoord(s, x), at = x * k;
    if (Number.isNaN(c)) { t.outside[x] = 1; continue; }
    if ('round' in f) { t.idx[at] = clamp(f.round(c)); t.w[at] = 1; continue; }
    const base = Math.floor(c), frac = c - base;
    let sum = 0;
    for (let j = 0; j < k; j++) {
      const i = base + start + j, w = exclude && (i < 0 || i >= n) ? 0 : f.weight((start + j - frac) * stretch);
      t.idx[at + j] = clamp(i);
      sum += t.w[at + j] = w;
    }
    for (let j = 0; j < k; j++) t.w[at + j] /= sum;
  }
  return t;
}

/** True when every weighted tap reads its own index, so the pass would copy the axis unchanged. */
export function isIdentity(t: Taps, n: number): boolean {
  if (t.outside.length !== n) return false;
  for (let j = 0; j < t.idx.length; j++) {
    const x = (j / t.k) | 0;
    if (t.outside[x] || (t.w[j] !== 0 && t.idx[j] !== x)) return false;
  }
  return true;
}

/** Weighted pass over the middle axis of [outer, n, inner]: returns [outer, m, inner]. */
export function resampleAxis(src: Float64Array, outer: number, n: number, inner: number, t: Taps, fill: number): Float64Array {
  const m = t.outside.length, out = new Float64Array(outer * m * inner);
  for (let o = 0; o < outer; o++) {
    for (let x = 0; x < m; x++) {
      const dst = (o * m + x) * inner;
      if (t.outside[x]) { out.fill(fill, dst, dst + inner); continue; }
      for (let j = x * t.k; j < (x + 1) * t.k; j++) {
        const w = t.w[j], from = (o * n + t.idx[j]) * inner;
        if (w !== 0) for (let i = 0; i < inner; i++) out[dst + i] += w * src[from + i];
      }
    }
  }
  return out;
}

type Arr = { [i: number]: any; length: number };

/** Nearest pass (one tap each) over any storage: copies rows of `inner` elements. */
export function gatherAxis(src: Arr, outer: number, n: number, inner: number, t: Taps, fill: any, out: Arr): void {
  const m = t.outside.length;
  for (let o = 0; o < outer; o++) {
    for (let x = 0; x < m; x++) {
      const dst = (o * m + x) * inner, from = (o * n + t.idx[x]) * inner;
      for (let i = 0; i < inner; i++) out[dst + i] = t.outside[x] ? fill : src[from + i];
    }
  }
}

// ---- Fast paths: both innermost axes in one sweep ----
// Most resizes (feature-pyramid upsampling, image scaling) touch only the two innermost axes of
// [..., h, w]. Resampling them plane by plane in one sweep skips the full-size intermediate of a pass
// per axis; the column taps are read for every output row, the row taps once per row.

type Rows = Arr & { copyWithin(target: number, start: number, end: number): unknown };

/** Taps that copy an axis of length n unchanged (for the axis of a plane that is not resized). */
export function identityTaps(n: number): Taps {
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  return { k: 1, idx, w: new Float64Array(n).fill(1), outside: new Uint8Array(n) };
}

/**
 * Nearest resize of `outer` planes of h x w: out[o, y, x] = src[o, rows[y], cols[x]]. An output row
 * whose source row is the previous one's (upscaling) is copied from it rather than gathered again.
 */
export function nearestPlanes(src: Arr, outer: number, h: number, w: number, rows: Int32Array, cols: Int32Array, out: Rows): void {
  if (src instanceof Float32Array && out instanceof Float32Array) nearestF32(src, outer, h, w, rows, cols, out);
  else nearestAny(src, outer, h, w, rows, cols, out);
}

// One loop per storage kind, so the float32 one stays monomorphic whatever else gets resized.
function nearestF32(src: Float32Array, outer: number, h: number, w: number, rows: Int32Array, cols: Int32Array, out: Float32Array): void {
  const oh = rows.length, ow = cols.length;
  for (let o = 0, d = 0; o < outer; o++) {
    for (let y = 0; y < oh; y++, d += ow) {
      if (y > 0 && rows[y] === rows[y - 1]) { out.copyWithin(d, d - ow, d); continue; }
      const s = (o * h + rows[y]) * w;
      for (let x = 0; x < ow; x++) out[d + x] = src[s + cols[x]];
    }
  }
}
function nearestAny(src: Arr, outer: number, h: number, w: number, rows: Int32Array, cols: Int32Array, out: Rows): void {
  const oh = rows.length, ow = cols.length;
  for (let o = 0, d = 0; o < outer; o++) {
    for (let y = 0; y < oh; y++, d += ow) {
      if (y > 0 && rows[y] === rows[y - 1]) { out.copyWithin(d, d - ow, d); continue; }
      const s = (o * h + rows[y]) * w;
      for (let x = 0; x < ow; x++) out[d + x] = src[s + cols[x]];
    }
  }
}

/**
 * Weighted (linear, cubic) resize of `outer` float32 planes of h x w, separable: each source row is
 * resampled along x once into a float64 row buffer, then each output row sums its taps of those rows.
 * Taps must have no `outside` entries (the caller keeps extrapolation on the per-axis path).
 */
export function weightedPlanes(src: Float32Array, outer: number, h: number, w: number, ty: Taps, tx: Taps, out: Float32Array): void {
  const oh = ty.outside.length, ow = tx.outside.length, kx = tx.k, ky = ty.k;
  const mid = new Float64Array(h * ow), acc = new Float64Array(ow);
  for (let o = 0; o < outer; o++) {
    const plane = o * h * w;
    for (let r = 0; r < h; r++) {
      const s = plane + r * w, m = r * ow;
      for (let x = 0, j = 0; x < ow; x++) {
        let sum = 0;
        for (const e = j + kx; j < e; j++) sum += tx.w[j] * src[s + tx.idx[j]];
        mid[m + x] = sum;
      }
    }
    for (let y = 0; y < oh; y++) {
      acc.fill(0);
      for (let j = y * ky; j < (y + 1) * ky; j++) {
        const wy = ty.w[j], m = ty.idx[j] * ow;
        if (wy !== 0) for (let x = 0; x < ow; x++) acc[x] += wy * mid[m + x];
      }
      out.set(acc, (o * oh + y) * ow);
    }
  }
}
