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
