// Image and detection kernels over typed arrays, NC(spatial) layout: grid sampling, affine grids,
// RoI pooling, non-max suppression, col2im and deformable convolution. Spatial ops take any rank.
import { stridesOf } from './broadcast.js';
import { gemm, rowMajor } from './gemm.js';
import { roundHalfEven } from './math.js';

type Num = { [i: number]: number; length: number };

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Advances a row-major multi-index over `dims`; false after the last one. */
function next(idx: number[], dims: readonly number[]): boolean {
  for (let d = dims.length - 1; d >= 0; d--) {
    if (++idx[d] < dims[d]) return true;
    idx[d] = 0;
  }
  return false;
}

export type GridMode = 'linear' | 'nearest' | 'cubic';
export type GridPadding = 'zeros' | 'border' | 'reflection';

/** Folds x into [lo, hi] by mirroring at the borders as often as needed. */
function reflect(x: number, lo: number, hi: number): number {
  const span = hi - lo;
  if (span <= 0) return lo;
  if (x >= lo && x <= hi) return x;
  const dx = x < lo ? lo - x : x - hi, n = Math.trunc(dx / span), r = dx - n * span;
  return (x < lo) === (n % 2 === 0) ? lo + r : hi - r;
}

/** Keys' cubic convolution weights (A = -0.75) of the taps at -1, 0, 1, 2 for fraction t. */
function cubicWeights(t: number, w: Float64Array): void {
  const A = -0.75, u = t + 1, v = 1 - t, z = 2 - t;
  w[0] = ((A * u - 5 * A) * u + 8 * A) * u - 4 * A;
  w[1] = ((A + 2) * t - (A + 3)) * t * t + 1;
  w[2] = ((A + 2) * v - (A + 3)) * v * v + 1;
  w[3] = ((A * z - 5 * A) * z + 8 * A) * z - 4 * A;
}

export interface GridSampleArgs {
  x: Num; n: number; c: number; inS: number[];
  /** (n, outS..., r) normalized coordinates, innermost dim first. */
  grid: Num; outS: number[];
  mode: GridMode; padding: GridPadding; alignCorners: boolean;
  out: Num;
}

/**
 * GridSample as the ONNX reference computes it: coordinates are denormalized in float32, moved inside
 * by border/reflection padding (PyTorch skips that step for bicubic), then sampled with taps whose
 * out-of-range indices are zero, clamped or reflected again. Nearest rounds half to even in every rank.
 */
export function gridSample(a: GridSampleArgs): void {
  const r = a.inS.length, inSize = prod(a.inS), outSize = prod(a.outS), strides = stridesOf(a.inS);
  const taps = a.mode === 'cubic' ? 4 : a.mode === 'linear' ? 2 : 1, combos = taps ** r;
  const idx = a.inS.map(() => new Int32Array(taps)), wts = a.inS.map(() => new Float64Array(taps));
  const offs = new Int32Array(combos), ws = new Float64Array(combos), pick = new Array<number>(r), tapDims = a.inS.map(() => taps);
  for (let b = 0; b < a.n; b++) {
    for (let p = 0; p < outSize; p++) {
      const g = (b * outSize + p) * r;
      for (let d = 0; d < r; d++) dimTaps(a.grid[g + r - 1 - d], a.inS[d], a, idx[d], wts[d]);
      let q = 0;
      for (pick.fill(0); ; q++) {
        let off = 0, w = 1;
        for (let d = 0; d < r; d++) { const i = idx[d][pick[d]]; off = i < 0 || off < 0 ? -1 : off + i * strides[d]; w *= wts[d][pick[d]]; }
        offs[q] = off; ws[q] = off < 0 ? 0 : w;
        if (!next(pick, tapDims)) break;
      }
      for (let ch = 0; ch < a.c; ch++) {
        const base = (b * a.c + ch) * inSize;
        let s = 0;
        for (let t = 0; t < combos; t++) if (offs[t] >= 0) s += ws[t] * a.x[base + offs[t]];
        a.out[(b * a.c + ch) * outSize + p] = s;
      }
    }
  }
}

/** Taps (indices, -1 for a zero pad) and weights along one dim of size len for normalized coordinate g. */
function dimTaps(g: number, len: number, a: GridSampleArgs, idx: Int32Array, w: Float64Array): void {
  const lo = a.alignCorners ? 0 : -0.5, hi = a.alignCorners ? len - 1 : len - 0.5;
  let x = Math.fround(a.alignCorners ? ((g + 1) / 2) * (len - 1) : ((g + 1) * len - 1) / 2);
  if (a.mode === 'nearest') x = roundHalfEven(x);
  if (x < lo || x > hi) x = a.padding === 'border' ? Math.min(Math.max(x, 0), len - 1) : a.padding === 'reflection' ? reflect(x, lo, hi) : x;
  const at = (i: number) => {
    if (a.padding === 'zeros') return i >= 0 && i < len ? i : -1;
    if (a.padding === 'border') return Math.min(Math.max(i, 0), len - 1);
    return Math.min(Math.max(Math.trunc(reflect(i, lo, hi)), 0), len - 1);
  };
  if (a.mode === 'nearest') { idx[0] = at(Math.trunc(x)); w[0] = 1; return; }
  const x0 = Math.floor(x), t = x - x0;
  if (a.mode === 'linear') { idx[0] = at(x0); idx[1] = at(x0 + 1); w[0] = 1 - t; w[1] = t; return; }
  for (let k = 0; k < 4; k++) idx[k] = at(x0 - 1 + k);
  cubicWeights(t, w);
}

/**
 * AffineGrid: out[b, pos..., j] = sum_k theta[b, j, k] * base[k], with base = (x, y[, z], 1) the
 * normalized position of pos (x the innermost dim), pixel centers or corners per align_corners.
 */
export function affineGrid(theta: Num, n: number, dims: readonly number[], alignCorners: boolean, out: Num): void {
  const r = dims.length, size = prod(dims), pos = new Array<number>(r).fill(0), base = new Float64Array(r + 1);
  const coord = (i: number, len: number) => (alignCorners ? (len > 1 ? -1 + (2 * i) / (len - 1) : -1) : (2 * i + 1) / len - 1);
  base[r] = 1;
  for (let p = 0; p < size; p++, next(pos, dims)) {
    for (let d = 0; d < r; d++) base[r - 1 - d] = coord(pos[d], dims[d]);
    for (let b = 0; b < n; b++) {
      for (let j = 0; j < r; j++) {
        let s = 0;
        for (let k = 0; k <= r; k++) s += theta[(b * r + j) * (r + 1) + k] * base[k];
        out[(b * size + p) * r + j] = s;
      }
    }
  }
}

export interface RoiAlignArgs {
  x: Num; c: number; h: number; w: number;
  rois: Num; batch: Num; count: number;
  ph: number; pw: number; samplingRatio: number; spatialScale: number;
  halfPixel: boolean; max: boolean;
  out: Num;
}

/**
 * RoiAlign: each output bin averages (or takes the max of) a grid of bilinear samples. Samples more
 * than one pixel outside the map contribute 0; max mode takes the largest weighted corner, as the
 * reference (and onnxruntime) do.
 */
export function roiAlign(a: RoiAlignArgs): void {
  const { h, w, ph, pw } = a, shift = a.halfPixel ? 0.5 : 0, plane = h * w;
  for (let r = 0; r < a.count; r++) {
    const sw = a.rois[r * 4] * a.spatialScale - shift, sh = a.rois[r * 4 + 1] * a.spatialScale - shift;
    let rw = a.rois[r * 4 + 2] * a.spatialScale - shift - sw, rh = a.rois[r * 4 + 3] * a.spatialScale - shift - sh;
    if (!a.halfPixel) { rw = Math.max(rw, 1); rh = Math.max(rh, 1); }
    const bh = rh / ph, bw = rw / pw;
    const gh = a.samplingRatio > 0 ? a.samplingRatio : Math.ceil(rh / ph), gw = a.samplingRatio > 0 ? a.samplingRatio : Math.ceil(rw / pw);
    const { pos: sp, w: sw4 } = bilinearSamples(h, w, ph, pw, sh, sw, bh, bw, Math.max(gh, 0), Math.max(gw, 0)), per = Math.max(gh, 0) * Math.max(gw, 0);
    const count = Math.max(per, 1), b = Number(a.batch[r]);
    for (let ch = 0; ch < a.c; ch++) {
      const xo = (b * a.c + ch) * plane, yo = (r * a.c + ch) * ph * pw;
      for (let bin = 0; bin < ph * pw; bin++) {
        let acc = a.max ? -Infinity : 0;
        for (let s = bin * per * 4, end = s + per * 4; s < end; s += 4) {
          const v0 = sw4[s] * a.x[xo + sp[s]], v1 = sw4[s + 1] * a.x[xo + sp[s + 1]];
          const v2 = sw4[s + 2] * a.x[xo + sp[s + 2]], v3 = sw4[s + 3] * a.x[xo + sp[s + 3]];
          acc = a.max ? Math.max(acc, v0, v1, v2, v3) : acc + v0 + v1 + v2 + v3;
        }
        a.out[yo + bin] = a.max ? (per ? acc : 0) : acc / count;
      }
    }
  }
}

/** Four corner positions and weights per sample, bin by bin, shared by every channel of one RoI. */
function bilinearSamples(h: number, w: number, ph: number, pw: number, sh: number, sw: number, bh: number, bw: number, gh: number, gw: number) {
  const n = ph * pw * gh * gw * 4, pos = new Int32Array(n), wt = new Float64Array(n);
  let q = 0;
  for (let i = 0; i < ph; i++) {
    for (let j = 0; j < pw; j++) {
      for (let iy = 0; iy < gh; iy++) {
        for (let ix = 0; ix < gw; ix++, q += 4) {
          let y = sh + i * bh + ((iy + 0.5) * bh) / gh, x = sw + j * bw + ((ix + 0.5) * bw) / gw;
          if (y < -1 || y > h || x < -1 || x > w) continue;
          y = Math.max(y, 0); x = Math.max(x, 0);
          let y0 = Math.trunc(y), x0 = Math.trunc(x), y1 = y0 + 1, x1 = x0 + 1;
          if (y0 >= h - 1) { y0 = y1 = h - 1; y = y0; }
          if (x0 >= w - 1) { x0 = x1 = w - 1; x = x0; }
          const ly = y - y0, lx = x - x0;
          pos.set([y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1], q);
          wt.set([(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx], q);
        }
      }
    }
  }
  return { pos, w: wt };
}

/**
 * MaxRoiPool (Caffe's RoI pooling): RoI corners are rounded to pixels, each bin covers
 * [floor(i*bin), ceil((i+1)*bin)) of the RoI clipped to the map; empty bins give 0.
 */
export function maxRoiPool(x: Num, c: number, h: number, w: number, rois: Num, count: number, ph: number, pw: number, scale: number, out: Num): void {
  const round = (v: number) => Math.sign(v) * Math.round(Math.abs(v));
  for (let r = 0; r < count; r++) {
    const roi = (k: number) => round(rois[r * 5 + k] * scale), b = rois[r * 5];
    const x0 = roi(1), y0 = roi(2), bh = Math.max(roi(4) - y0 + 1, 1) / ph, bw = Math.max(roi(3) - x0 + 1, 1) / pw;
    for (let ch = 0; ch < c; ch++) {
      const xo = (b * c + ch) * h * w;
      for (let i = 0; i < ph; i++) {
        const hs = Math.min(Math.max(Math.floor(i * bh) + y0, 0), h), he = Math.min(Math.max(Math.ceil((i + 1) * bh) + y0, 0), h);
        for (let j = 0; j < pw; j++) {
          const ws = Math.min(Math.max(Math.floor(j * bw) + x0, 0), w), we = Math.min(Math.max(Math.ceil((j + 1) * bw) + x0, 0), w);
          let m = -Infinity;
          for (let yy = hs; yy < he; yy++) for (let xx = ws; xx < we; xx++) m = Math.max(m, x[xo + yy * w + xx]);
          out[((r * c + ch) * ph + i) * pw + j] = he <= hs || we <= ws ? 0 : m;
        }
      }
    }
  }
}

/** IoU of boxes i and j (at offsets bo + 4i) above `threshold`; corners in either order, or (center, size). */
function overlaps(b: Num, bo: number, i: number, j: number, center: boolean, threshold: number): boolean {
  // Corner boxes are [y1, x1, y2, x2], center boxes [x, y, w, h]: either way element k pairs with k + 2.
  const side = (box: number, k: number): [number, number] => {
    const p = b[bo + box * 4 + k], q = b[bo + box * 4 + k + 2];
    return center ? [p - q / 2, p + q / 2] : p <= q ? [p, q] : [q, p];
  };
  const [a0, a1] = side(i, 0), [c0, c1] = side(j, 0), [b0, b1] = side(i, 1), [d0, d1] = side(j, 1);
  const i0 = Math.min(a1, c1) - Math.max(a0, c0), i1 = Math.min(b1, d1) - Math.max(b0, d0);
  if (i0 <= 0 || i1 <= 0) return false;
  const inter = i0 * i1, areaA = (a1 - a0) * (b1 - b0), areaB = (c1 - c0) * (d1 - d0), union = areaA + areaB - inter;
  if (areaA <= 0 || areaB <= 0 || union <= 0) return false;
  return inter / union > threshold;
}

export interface NmsArgs {
  boxes: Num; scores: Num; batches: number; classes: number; count: number;
  maxPerClass: number; iou: number; scoreThreshold?: number; center: boolean;
}

/**
 * NonMaxSuppression: per batch and class, boxes above the score threshold in descending score order
 * (ties by lower index), each kept unless it overlaps a kept one by more than `iou`. Returns
 * (batch, class, box) triples.
 */
export function nms(a: NmsArgs): number[] {
  const out: number[] = [];
  for (let b = 0; b < a.batches; b++) {
    const bo = b * a.count * 4;
    for (let c = 0; c < a.classes; c++) {
      const so = (b * a.classes + c) * a.count, cand: number[] = [];
      for (let i = 0; i < a.count; i++) if (a.scoreThreshold === undefined || a.scores[so + i] > a.scoreThreshold) cand.push(i);
      cand.sort((i, j) => a.scores[so + j] - a.scores[so + i] || i - j);
      const kept: number[] = [];
      for (const i of cand) {
        if (kept.length >= a.maxPerClass) break;
        if (kept.some((j) => overlaps(a.boxes, bo, i, j, a.center, a.iou))) continue;
        kept.push(i);
        out.push(b, c, i);
      }
    }
  }
  return out;
}

export interface WindowN { k: number[]; s: number[]; d: number[]; pb: number[] }

/**
 * Col2Im: input (n, c * prod(k), blocks) scatter-adds into images of `dims`; block positions run
 * row-major over `nb` and tap t of block b lands at b*s - pb + t*d along each dim.
 */
export function col2im(x: Num, n: number, c: number, dims: number[], nb: number[], g: WindowN, out: Num): void {
  const r = dims.length, K = prod(g.k), L = prod(nb), size = prod(dims), ds = stridesOf(dims);
  const tap = new Array<number>(r).fill(0), blk = new Array<number>(r).fill(0);
  for (let t = 0; t < K; t++, next(tap, g.k)) {
    for (let l = 0; l < L; l++, next(blk, nb)) {
      let off = 0;
      for (let d = 0; d < r && off >= 0; d++) {
        const i = blk[d] * g.s[d] - g.pb[d] + tap[d] * g.d[d];
        off = i < 0 || i >= dims[d] ? -1 : off + i * ds[d];
      }
      if (off < 0) continue;
      for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) out[(b * c + ch) * size + off] += x[((b * c + ch) * K + t) * L + l];
    }
  }
}

export interface DeformArgs {
  x: Num; n: number; c: number; inS: number[];
  w: Num; m: number; group: number; offsetGroup: number;
  offset: Num; mask?: Num; outS: number[]; g: WindowN;
  /** (n, m, outS...), pre-filled with the bias */
  y: Float64Array | Float32Array;
}

/**
 * DeformConv: per (image, group), a column matrix of input samples at the kernel taps moved by the
 * learned offsets (N-linear interpolation, zero outside the input), scaled by the mask, times W.
 */
export function deformConv(a: DeformArgs): void {
  const r = a.inS.length, K = prod(a.g.k), outSize = prod(a.outS), inSize = prod(a.inS), cg = a.c / a.group, mg = a.m / a.group;
  const cPerOg = a.c / a.offsetGroup, col = new Float64Array(cg * K * outSize), ins = stridesOf(a.inS);
  const tap = new Array<number>(r), o = new Array<number>(r), pos = new Float64Array(r);
  for (let b = 0; b < a.n; b++) {
    for (let gi = 0; gi < a.group; gi++) {
      for (let ci = 0; ci < cg; ci++) {
        const ch = gi * cg + ci, og = Math.floor(ch / cPerOg), xo = (b * a.c + ch) * inSize;
        tap.fill(0);
        for (let t = 0; t < K; t++, next(tap, a.g.k)) {
          const offBase = ((b * a.offsetGroup + og) * K + t) * r * outSize, maskBase = ((b * a.offsetGroup + og) * K + t) * outSize;
          o.fill(0);
          for (let p = 0; p < outSize; p++, next(o, a.outS)) {
            for (let d = 0; d < r; d++) pos[d] = o[d] * a.g.s[d] - a.g.pb[d] + tap[d] * a.g.d[d] + a.offset[offBase + d * outSize + p];
            const v = sampleLinear(a.x, xo, a.inS, ins, pos);
            col[(ci * K + t) * outSize + p] = a.mask ? v * a.mask[maskBase + p] : v;
          }
        }
      }
      gemm(mg, outSize, cg * K, rowMajor(a.w, cg * K, gi * mg * cg * K), rowMajor(col, outSize), a.y, (b * a.m + gi * mg) * outSize, outSize);
    }
  }
}

/** N-linear interpolation at pos, corners outside the input counting as 0. */
function sampleLinear(x: Num, xo: number, dims: number[], strides: number[], pos: Float64Array): number {
  const r = dims.length;
  let s = 0;
  for (let corner = 0; corner < 1 << r; corner++) {
    let off = xo, w = 1;
    for (let d = 0; d < r && w !== 0; d++) {
      const f = Math.floor(pos[d]), i = f + ((corner >> d) & 1), t = pos[d] - f;
      if (i < 0 || i >= dims[d]) w = 0;
      else { w *= (corner >> d) & 1 ? t : 1 - t; off += i * strides[d]; }
    }
    if (w !== 0) s += w * x[off];
  }
  return s;
}
