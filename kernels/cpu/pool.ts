// Pooling over planes (one per image and channel) with 1 to 3 spatial dims padded to (D, H, W).
// Each output gathers the offsets of its in-bounds taps once, then reduces them per kind; pads never
// contribute values, only (for average with count_include_pad) to the divisor. float32 max (without
// indices) and average over 1-D/2-D windows run in WebAssembly SIMD (kernels/wasm/pool.ts) instead.
import { poolWasm } from '../wasm/pool.js';
import { tapRanges, type Geom3 } from './conv.js';

type Num = { [i: number]: number; length: number };

export type PoolKind = { kind: 'max'; indices?: BigInt64Array; colMajor: boolean } | { kind: 'avg'; countPad: boolean; padEnd: number[] } | { kind: 'lp'; p: number };

/** Number of taps per output index that fall inside input plus leading and trailing pads. */
function paddedCounts(outN: number, k: number, s: number, d: number, pb: number, pe: number, n: number): Int32Array {
  const cnt = new Int32Array(outN);
  for (let o = 0; o < outN; o++) cnt[o] = Math.max(0, Math.min(k, Math.floor((n + pe - 1 - (o * s - pb)) / d) + 1));
  return cnt;
}

export function pool(x: Num, y: Num, planes: number, g: Geom3, how: PoolKind): void {
  if (how.kind === 'max' && !how.indices && poolWasm(x as Float32Array, y as Float32Array, planes, g, 'max')) return;
  if (how.kind === 'avg' && poolWasm(x as Float32Array, y as Float32Array, planes, g, 'avg', how.countPad ? how.padEnd : undefined)) return;
  const [D, H, W] = g.inS, [OD, OH, OW] = g.out, [KD, KH, KW] = g.k, [sd, sh, sw] = g.s, [dd, dh, dw] = g.d, [pd, ph, pw] = g.p;
  const rd = tapRanges(OD, KD, sd, dd, pd, D), rh = tapRanges(OH, KH, sh, dh, ph, H), rw = tapRanges(OW, KW, sw, dw, pw, W);
  const pc = how.kind === 'avg' && how.countPad
    ? [paddedCounts(OD, KD, sd, dd, pd, how.padEnd[0], D), paddedCounts(OH, KH, sh, dh, ph, how.padEnd[1], H), paddedCounts(OW, KW, sw, dw, pw, how.padEnd[2], W)]
    : undefined;
  const taps = new Int32Array(KD * KH * KW), plane = D * H * W;
  let q = 0;
  for (let pl = 0; pl < planes; pl++) {
    const base = pl * plane;
    for (let od = 0; od < OD; od++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++, q++) {
          let n = 0;
          for (let kd = rd.lo[od]; kd < rd.hi[od]; kd++) {
            for (let kh = rh.lo[oh]; kh < rh.hi[oh]; kh++) {
              const row = ((od * sd - pd + kd * dd) * H + oh * sh - ph + kh * dh) * W + ow * sw - pw;
              for (let kw = rw.lo[ow]; kw < rw.hi[ow]; kw++) taps[n++] = row + kw * dw;
            }
          }
          if (how.kind === 'max') {
            let best = -Infinity, at = -1;
            for (let t = 0; t < n; t++) { const v = x[base + taps[t]]; if (v > best || at < 0) { best = v; at = taps[t]; } }
            y[q] = best;
            if (how.indices) how.indices[q] = BigInt(base + (how.colMajor ? colMajorOffset(at, D, H, W) : at));
          } else if (how.kind === 'avg') {
            let s = 0;
            for (let t = 0; t < n; t++) s += x[base + taps[t]];
            y[q] = s / (pc ? pc[0][od] * pc[1][oh] * pc[2][ow] : n);
          } else {
            let s = 0;
            for (let t = 0; t < n; t++) s += Math.abs(x[base + taps[t]]) ** how.p;
            y[q] = s ** (1 / how.p);
          }
        }
      }
    }
  }
}

/** Row-major offset (d, h, w) in a D x H x W plane, re-expressed column-major: d + D*(h + H*w). */
function colMajorOffset(off: number, D: number, H: number, W: number): number {
  const w = off % W, h = Math.floor(off / W) % H, d = Math.floor(off / (W * H));
  return d + D * (h + H * w);
}

/** Max or mean of each of `planes` contiguous planes of `size` elements. */
export function globalPool(x: Num, y: Num, planes: number, size: number, kind: 'max' | 'avg' | 'lp', p = 2): void {
  // One loop per kind: choosing the kind per element kept V8 from tightening the loop (3x slower).
  for (let q = 0, i = 0; q < planes; q++) {
    const end = i + size;
    let acc = kind === 'max' ? -Infinity : 0;
    if (kind === 'max') for (; i < end; i++) acc = x[i] > acc ? x[i] : acc;
    else if (kind === 'avg') for (; i < end; i++) acc += x[i];
    else for (; i < end; i++) acc += Math.abs(x[i]) ** p;
    y[q] = kind === 'max' ? acc : kind === 'avg' ? acc / size : acc ** (1 / p);
  }
}

/**
 * MaxUnpool's scatter: y[at(indices[j])] = x[j]. Indices address a tensor of shape `from` (the
 * unpooled default); each lands at the same coordinates in y of shape `to`. Returns the first j whose
 * index falls outside, or -1.
 */
export function unpool(x: Num, indices: BigInt64Array, y: Num, from: readonly number[], to: readonly number[]): number {
  const same = from.every((d, i) => d === to[i]), total = from.reduce((a, b) => a * b, 1);
  for (let j = 0; j < x.length; j++) {
    let i = Number(indices[j]);
    if (i < 0 || i >= total) return j;
    if (!same) {
      let at = 0, stride = 1;
      for (let d = from.length - 1; d >= 0; d--) {
        const c = i % from[d];
        if (c >= to[d]) return j;
        at += c * stride; stride *= to[d]; i = (i - c) / from[d];
      }
      i = at;
    }
    y[i] = x[j];
  }
  return -1;
}
