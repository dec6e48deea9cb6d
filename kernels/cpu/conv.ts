// Convolution kernels, NCHW with 1 to 3 spatial dims (callers pad shapes to 3 with leading 1s).
// Conv lowers each (image, group) to GEMM: im2col over chunks of output positions, no copy at all for
// 1x1 stride-1 kernels, and a direct loop for depthwise. ConvTranspose is GEMM followed by col2im.
// float32 1-D/2-D windows run in WebAssembly SIMD (kernels/wasm/conv.ts); the loops here serve the other
// dtypes (float64, ConvInteger's shifted integers), 3-D windows, and LASTMILE_NO_WASM.
import { convTransposeWasm, convWasm, depthwiseWasm } from '../wasm/conv.js';
import type { Step } from '../wasm/elementwise.js';
import { gemmWasm } from '../wasm/gemm.js';
import { gemm, rowMajor } from './gemm.js';

type Num = { [i: number]: number; length: number };
type FloatArray = Float32Array | Float64Array;

/** Geometry per spatial dim, each array of length 3: input/output sizes, kernel, stride, dilation, leading pad. */
export interface Geom3 { inS: number[]; out: number[]; k: number[]; s: number[]; d: number[]; p: number[] }

const prod = (xs: number[]) => xs[0] * xs[1] * xs[2];
// Bounds im2col/col2im buffers to about 16 MB of float64 whatever the layer size.
const CHUNK_ELEMS = 1 << 21;

/**
 * For each output index o along one dim, the kernel taps [lo[o], hi[o]) that land inside the input
 * (input index o*s - p + t*d in [0, n)); hi <= lo when none does.
 */
export function tapRanges(outN: number, k: number, s: number, d: number, p: number, n: number): { lo: Int32Array; hi: Int32Array } {
  const lo = new Int32Array(outN), hi = new Int32Array(outN);
  for (let o = 0; o < outN; o++) {
    const start = o * s - p;
    lo[o] = Math.max(0, Math.ceil(-start / d));
    hi[o] = Math.min(k, Math.floor((n - 1 - start) / d) + 1);
  }
  return { lo, hi };
}

/** Sets each of the n*m planes of `size` elements of y to its channel's bias. */
function fillBias(y: Num, bias: Num, n: number, m: number, size: number): void {
  const yd = y as Float64Array;
  for (let i = 0; i < n * m; i++) yd.fill(bias[i % m], i * size, (i + 1) * size);
}

/**
 * conv(x, w) for n images of c channels into m channels: with `bias` (m values) y = conv(x, w) + bias,
 * whatever y held; without it y += conv(x, w) (callers pre-fill y). With `steps` (float32 only), a
 * kernel that can apply them to its output while it is staged in wasm memory does (pointwise GEMM, direct,
 * depthwise), y = steps(conv(x, w) + bias) for a y of zeros, and the result says whether one did (if not,
 * y is as without steps).
 */
export function conv(x: FloatArray, w: FloatArray, y: Num, n: number, c: number, m: number, group: number, g: Geom3, bias?: Num, steps?: readonly Step[]): boolean {
  const cg = c / group, mg = m / group, inSize = prod(g.inS), outSize = prod(g.out), kdim = cg * prod(g.k);
  if (cg === 1 && group > 1) {
    if (depthwiseWasm(x, w, y, n, c, mg, g, bias, steps)) return !!steps?.length;
    if (bias) fillBias(y, bias, n, m, outSize);
    depthwise(x, w, y, n, c, mg, g);
    return false;
  }
  const pointwise = kdim === cg && g.s.every((v) => v === 1) && g.p.every((v) => v === 0) && g.out.every((v, i) => v === g.inS[i]);
  // Pointwise convs are plain GEMMs on x as it is: the wasm GEMM's packed panels beat the direct kernel's
  // strided reads there (1.25x over PP-OCR's pointwise layers). Its epilogue writes the bias and the steps.
  if (pointwise && steps && pointwiseSteps(x, w, y, n, c, m, group, inSize, bias, steps)) return true;
  const done = pointwise ? false : convWasm(x, w, y, n, c, m, group, g, bias, steps);
  if (done) return done === 'stepped';
  if (bias) fillBias(y, bias, n, m, outSize);
  const chunk = Math.max(1, Math.min(outSize, Math.floor(CHUNK_ELEMS / kdim)));
  const col = pointwise ? undefined : new (x.constructor as Float64ArrayConstructor)(kdim * chunk);
  for (let b = 0; b < n; b++) {
    for (let gi = 0; gi < group; gi++) {
      const xOff = (b * c + gi * cg) * inSize, yOff = (b * m + gi * mg) * outSize, wv = rowMajor(w, kdim, gi * mg * kdim);
      if (!col) { gemm(mg, outSize, cg, wv, rowMajor(x, inSize, xOff), y, yOff, outSize); continue; }
      for (let o0 = 0; o0 < outSize; o0 += chunk) {
        const len = Math.min(chunk, outSize - o0);
        im2col(x, xOff, cg, g, o0, len, col);
        gemm(mg, len, kdim, wv, rowMajor(col, len), y, yOff + o0, outSize);
      }
    }
  }
  return false;
}

/** A pointwise conv as one GEMM per (image, group) whose epilogue sets the bias and applies the steps; false (nothing written) when wasm declines the first. */
function pointwiseSteps(x: FloatArray, w: FloatArray, y: Num, n: number, c: number, m: number, group: number, size: number, bias: Num | undefined, steps: readonly Step[]): boolean {
  const cg = c / group, mg = m / group;
  if (bias && !(bias instanceof Float32Array)) return false;
  for (let b = 0; b < n; b++) {
    for (let gi = 0; gi < group; gi++) {
      const epi = { bias: bias?.subarray(gi * mg, (gi + 1) * mg), perRow: true, steps };
      const ok = gemmWasm(mg, size, cg, rowMajor(w, cg, gi * mg * cg), rowMajor(x, size, (b * c + gi * cg) * size), y, (b * m + gi * mg) * size, size, 1, epi);
      // Declined (wasm memory could not grow): the caller's path starts over, onto zeros as a fresh output holds.
      if (!ok) { (y as Float32Array).fill(0); return false; }
    }
  }
  return true;
}

/** Rows (channel, kd, kh, kw) by columns (output positions o0 .. o0+len) of input taps, zero outside. */
function im2col(x: FloatArray, xOff: number, cg: number, g: Geom3, o0: number, len: number, col: FloatArray): void {
  const [D, H, W] = g.inS, [, OH, OW] = g.out, [KD, KH, KW] = g.k, [sd, sh, sw] = g.s, [dd, dh, dw] = g.d, [pd, ph, pw] = g.p;
  let q = 0;
  for (let ci = 0; ci < cg; ci++) {
    for (let kd = 0; kd < KD; kd++) {
      for (let kh = 0; kh < KH; kh++) {
        for (let kw = 0; kw < KW; kw++) {
          for (let o = o0, end = o0 + len; o < end;) {
            const ow0 = o % OW, row = (o - ow0) / OW, oh = row % OH, od = (row - oh) / OH;
            const segEnd = Math.min(end, o + OW - ow0), id = od * sd - pd + kd * dd, ih = oh * sh - ph + kh * dh;
            if (id < 0 || id >= D || ih < 0 || ih >= H) {
              for (; o < segEnd; o++) col[q++] = 0;
              continue;
            }
            const base = xOff + ((ci * D + id) * H + ih) * W;
            for (let iw = ow0 * sw - pw + kw * dw; o < segEnd; o++, iw += sw) col[q++] = iw >= 0 && iw < W ? x[base + iw] : 0;
          }
        }
      }
    }
  }
}

/** One input channel per group: each output channel slides its own kernel over one input channel. */
function depthwise(x: FloatArray, w: FloatArray, y: Num, n: number, c: number, mg: number, g: Geom3): void {
  const [D, H, W] = g.inS, [OD, OH, OW] = g.out, [KD, KH, KW] = g.k, [sd, sh, sw] = g.s, [dd, dh, dw] = g.d, [pd, ph, pw] = g.p;
  const rd = tapRanges(OD, KD, sd, dd, pd, D), rh = tapRanges(OH, KH, sh, dh, ph, H), rw = tapRanges(OW, KW, sw, dw, pw, W);
  const ksize = KD * KH * KW, m = c * mg;
  for (let b = 0; b < n; b++) {
    for (let mo = 0; mo < m; mo++) {
      const xc = (b * c + Math.floor(mo / mg)) * D * H * W, wc = mo * ksize;
      let q = (b * m + mo) * OD * OH * OW;
      for (let od = 0; od < OD; od++) {
        for (let oh = 0; oh < OH; oh++) {
          for (let ow = 0; ow < OW; ow++, q++) {
            let s = 0;
            for (let kd = rd.lo[od]; kd < rd.hi[od]; kd++) {
              for (let kh = rh.lo[oh]; kh < rh.hi[oh]; kh++) {
                const xr = xc + ((od * sd - pd + kd * dd) * H + oh * sh - ph + kh * dh) * W + ow * sw - pw, wr = wc + (kd * KH + kh) * KW;
                for (let kw = rw.lo[ow]; kw < rw.hi[ow]; kw++) s += x[xr + kw * dw] * w[wr + kw];
              }
            }
            y[q] += s;
          }
        }
      }
    }
  }
}

/**
 * convTranspose(x, w), into y as conv() does (with `bias`, y = result + bias; without, y += result): x has
 * c channels and spatial g.inS, w is [c, m/group, k...], y has m channels and spatial g.out; g.p is the
 * leading pad cropped from the full output.
 */
export function convTranspose(x: FloatArray, w: FloatArray, y: Num, n: number, c: number, m: number, group: number, g: Geom3, bias?: Num): void {
  if (convTransposeWasm(x, w, y, n, c, m, group, g, bias)) return;
  if (bias) fillBias(y, bias, n, m, prod(g.out));
  const cg = c / group, mg = m / group, inSize = prod(g.inS), kdim = mg * prod(g.k);
  const chunk = Math.max(1, Math.min(inSize, Math.floor(CHUNK_ELEMS / kdim)));
  const col = new (x.constructor as Float64ArrayConstructor)(kdim * chunk);
  for (let b = 0; b < n; b++) {
    for (let gi = 0; gi < group; gi++) {
      // A = W_g transposed: element (row r of mg*k, input channel ci) is w[(gi*cg + ci)*kdim + r].
      const wt = { data: w, off: gi * cg * kdim, rs: 1, cs: kdim }, xOff = (b * c + gi * cg) * inSize;
      for (let i0 = 0; i0 < inSize; i0 += chunk) {
        const len = Math.min(chunk, inSize - i0);
        col.fill(0, 0, kdim * len);
        gemm(kdim, len, cg, wt, rowMajor(x, inSize, xOff + i0), col, 0, len);
        col2im(col, i0, len, y, (b * m + gi * mg) * prod(g.out), mg, g);
      }
    }
  }
}

/** Scatter-adds rows (channel, kd, kh, kw) x columns (input positions i0 .. i0+len) into y. */
function col2im(col: FloatArray, i0: number, len: number, y: Num, yOff: number, mg: number, g: Geom3): void {
  const [, IH, IW] = g.inS, [OD, OH, OW] = g.out, [KD, KH, KW] = g.k, [sd, sh, sw] = g.s, [dd, dh, dw] = g.d, [pd, ph, pw] = g.p;
  let q = 0;
  for (let mo = 0; mo < mg; mo++) {
    const yc = yOff + mo * OD * OH * OW;
    for (let kd = 0; kd < KD; kd++) {
      for (let kh = 0; kh < KH; kh++) {
        for (let kw = 0; kw < KW; kw++) {
          for (let i = i0, end = i0 + len; i < end;) {
            const iw0 = i % IW, row = (i - iw0) / IW, ih = row % IH, id = (row - ih) / IH;
            const segEnd = Math.min(end, i + IW - iw0), od = id * sd - pd + kd * dd, oh = ih * sh - ph + kh * dh;
            if (od < 0 || od >= OD || oh < 0 || oh >= OH) { q += segEnd - i; i = segEnd; continue; }
            const base = yc + (od * OH + oh) * OW;
            for (let ow = iw0 * sw - pw + kw * dw; i < segEnd; i++, q++, ow += sw) if (ow >= 0 && ow < OW) y[base + ow] += col[q];
          }
        }
      }
    }
  }
}
