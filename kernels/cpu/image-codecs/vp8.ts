// VP8 key-frame decoding (RFC 6386) to YUV 4:2:0 planes: boolean entropy decoder, frame header,
// intra prediction, token decoding, inverse WHT/DCT and the normal/simple loop filters. Edge and
// rounding choices follow libwebp's decoder, whose output is the reference for WebP.
import { check } from './common.js';
import { AC_Q, BANDS, CAT_PROBS, COEFF_UPDATE_PROBS, DC_Q, DEFAULT_COEFF_PROBS, KF_BMODE_PROBS, ZIGZAG } from './vp8-tables.js';

/** The boolean entropy decoder of RFC 6386 section 7; reads past the end give zeros and are counted. */
class BoolDecoder {
  value: number; range = 255; bits = 0; over = 0;
  constructor(readonly b: Uint8Array, public pos: number, readonly end: number) {
    this.value = (this.byte() << 8) | this.byte();
  }
  byte(): number {
    if (this.pos < this.end) return this.b[this.pos++];
    this.over++;
    return 0;
  }
  bit(prob: number): number {
    const split = 1 + (((this.range - 1) * prob) >> 8), big = split << 8;
    let r: number;
    if (this.value >= big) { r = 1; this.range -= split; this.value -= big; } else { r = 0; this.range = split; }
    if (this.range < 128) {
      const shift = Math.clz32(this.range) - 24;
      this.value <<= shift; this.range <<= shift; this.bits += shift;
      if (this.bits >= 8) { this.bits -= 8; this.value |= this.byte() << this.bits; }
    }
    return r;
  }
  literal(n: number): number { let v = 0; while (n--) v = (v << 1) | this.bit(128); return v; }
  signed(n: number): number { const v = this.literal(n); return this.bit(128) ? -v : v; }
  optSigned(n: number): number { return this.bit(128) ? this.signed(n) : 0; }
  /** libwebp treats a partition read more than a couple of bytes past its end as truncated. */
  checkEnd(): void { check(this.over <= 2, 'VP8 partition is truncated'); }
}

export interface Yuv { width: number; height: number; y: Uint8Array; u: Uint8Array; v: Uint8Array; yStride: number; uvStride: number }

interface Segments { enabled: boolean; updateMap: boolean; absolute: boolean; quant: number[]; filter: number[]; probs: number[] }
interface Quant { y1: [number, number]; y2: [number, number]; uv: [number, number] }
interface Filter { simple: boolean; level: number; sharpness: number; useDeltas: boolean; refDelta0: number; modeDelta0: number }

interface Frame {
  w: number; h: number; mbw: number; mbh: number; seg: Segments; filter: Filter; quant: Quant[];
  coef: Uint8Array; skipProb: number; parts: BoolDecoder[];
}

/** Decodes the payload of a 'VP8 ' chunk. */
export function decodeVp8(b: Uint8Array, start: number, end: number): Yuv {
  check(end - start >= 10, 'VP8 frame header is truncated');
  const tag = b[start] | (b[start + 1] << 8) | (b[start + 2] << 16), partSize = tag >>> 5;
  check(!(tag & 1), 'VP8 inter frames are not supported');
  check(((tag >> 1) & 7) <= 3 && (tag >> 4) & 1, 'bad VP8 profile or invisible frame');
  check(b[start + 3] === 0x9d && b[start + 4] === 0x01 && b[start + 5] === 0x2a, 'bad VP8 start code');
  const w = (b[start + 6] | (b[start + 7] << 8)) & 0x3fff, h = (b[start + 8] | (b[start + 9] << 8)) & 0x3fff;
  const mbw = (w + 15) >> 4, mbh = (h + 15) >> 4;
  check(w > 0 && h > 0, 'VP8 frame has no pixels');
  // Each macroblock costs some fraction of a bit at least: a loose bound against forged dimensions.
  check(mbw * mbh <= 1024 * (end - start), 'VP8 dimensions are too large for the stream');
  const p0 = start + 10;
  check(p0 + partSize <= end, 'VP8 first partition is truncated');
  const br = new BoolDecoder(b, p0, p0 + partSize), f = header(br, b, p0 + partSize, end, w, h, mbw, mbh);
  return reconstruct(f, br);
}

function header(br: BoolDecoder, b: Uint8Array, partsAt: number, end: number, w: number, h: number, mbw: number, mbh: number): Frame {
  br.literal(2); // colour space and clamping type: neither changes decoding here
  const seg: Segments = { enabled: !!br.bit(128), updateMap: false, absolute: false, quant: [0, 0, 0, 0], filter: [0, 0, 0, 0], probs: [255, 255, 255] };
  if (seg.enabled) {
    seg.updateMap = !!br.bit(128);
    if (br.bit(128)) {
      seg.absolute = !!br.bit(128);
      seg.quant = seg.quant.map(() => br.optSigned(7));
      seg.filter = seg.filter.map(() => br.optSigned(6));
    }
    if (seg.updateMap) seg.probs = seg.probs.map(() => (br.bit(128) ? br.literal(8) : 255));
  }
  const filter: Filter = { simple: !!br.bit(128), level: br.literal(6), sharpness: br.literal(3), useDeltas: !!br.bit(128), refDelta0: 0, modeDelta0: 0 };
  if (filter.useDeltas && br.bit(128)) {
    const ref = [0, 1, 2, 3].map(() => br.optSigned(6)), mode = [0, 1, 2, 3].map(() => br.optSigned(6));
    filter.refDelta0 = ref[0]; filter.modeDelta0 = mode[0];
  }
  const parts = partitions(b, partsAt, end, 1 << br.literal(2));
  const quant = quantizers(br, seg);
  br.bit(128); // refresh_entropy_probs: irrelevant for a single frame
  const coef = Uint8Array.from(DEFAULT_COEFF_PROBS);
  for (let i = 0; i < coef.length; i++) if (br.bit(COEFF_UPDATE_PROBS[i])) coef[i] = br.literal(8);
  const skipProb = br.bit(128) ? br.literal(8) : -1;
  return { w, h, mbw, mbh, seg, filter, quant, coef, skipProb, parts };
}

/** Token partitions: 3-byte little-endian sizes for all but the last, which takes the rest. */
function partitions(b: Uint8Array, at: number, end: number, n: number): BoolDecoder[] {
  let p = at + 3 * (n - 1);
  check(p <= end, 'VP8 partition table is truncated');
  return Array.from({ length: n }, (_, i) => {
    const size = i < n - 1 ? b[at + 3 * i] | (b[at + 3 * i + 1] << 8) | (b[at + 3 * i + 2] << 16) : end - p;
    const d = new BoolDecoder(b, p, Math.min(end, p + size));
    p = Math.min(end, p + size);
    return d;
  });
}

function quantizers(br: BoolDecoder, seg: Segments): Quant[] {
  const base = br.literal(7), [y1dc, y2dc, y2ac, uvdc, uvac] = [0, 1, 2, 3, 4].map(() => br.optSigned(4));
  const clip = (v: number, max: number) => (v < 0 ? 0 : v > max ? max : v);
  return [0, 1, 2, 3].map((s) => {
    const q = seg.enabled ? seg.quant[s] + (seg.absolute ? 0 : base) : base;
    // x * 155 / 100, floored, with a floor of 8 (RFC 6386 section 14.1's dixie lookup).
    const y2ac1 = Math.max(8, Math.floor((AC_Q[clip(q + y2ac, 127)] * 155) / 100));
    return { y1: [DC_Q[clip(q + y1dc, 127)], AC_Q[clip(q, 127)]], y2: [DC_Q[clip(q + y2dc, 127)] * 2, y2ac1], uv: [DC_Q[clip(q + uvdc, 117)], AC_Q[clip(q + uvac, 127)]] };
  });
}

// Modes in RFC order; 16x16 and chroma modes reuse the first four numbers of the subblock modes.
const B_DC = 0, B_TM = 1, B_VE = 2, B_HE = 3, B_LD = 4, B_RD = 5, B_VR = 6, B_VL = 7, B_HD = 8, B_HU = 9;

/** The subblock-mode tree of RFC 6386 section 11.2 as [probability index, zero branch, one branch], leaves negative. */
const BMODE_TREE = [-B_DC, 2, -B_TM, 4, -B_VE, 6, 8, 12, -B_HE, 10, -B_RD, -B_VR, -B_LD, 14, -B_VL, 16, -B_HD, -B_HU];

function readTree(br: BoolDecoder, tree: number[], probs: Uint8Array, at: number): number {
  let i = 0;
  do i = tree[i + br.bit(probs[at + (i >> 1)])]; while (i > 0);
  return -i;
}

interface MbInfo { i4: boolean; ymode: number; bmodes: Uint8Array; uvmode: number; segment: number; skip: boolean }

function readModes(br: BoolDecoder, f: Frame, top: Uint8Array, left: Uint8Array, mbx: number, bmodes: Uint8Array): MbInfo {
  const segment = f.seg.updateMap ? (br.bit(f.seg.probs[0]) ? 2 + br.bit(f.seg.probs[2]) : br.bit(f.seg.probs[1])) : 0;
  const skip = f.skipProb >= 0 ? !!br.bit(f.skipProb) : false, i4 = !br.bit(145);
  let ymode = B_DC;
  if (!i4) {
    ymode = br.bit(156) ? (br.bit(128) ? B_TM : B_HE) : br.bit(163) ? B_VE : B_DC;
    top.fill(ymode, 4 * mbx, 4 * mbx + 4); left.fill(ymode);
  } else {
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 4; x++) {
        const m = readTree(br, BMODE_TREE, KF_BMODE_PROBS, 9 * (10 * top[4 * mbx + x] + left[y]));
        bmodes[4 * y + x] = m; top[4 * mbx + x] = m; left[y] = m;
      }
    }
  }
  const uvmode = !br.bit(142) ? B_DC : !br.bit(114) ? B_VE : br.bit(183) ? B_TM : B_HE;
  return { i4, ymode, bmodes, uvmode, segment, skip };
}

// ---- residual tokens ----

/** Token probabilities for block type t, coefficient position n, context c. */
const probAt = (t: number, n: number, c: number) => ((t * 8 + BANDS[n]) * 3 + c) * 11;

function largeValue(br: BoolDecoder, coef: Uint8Array, p: number): number {
  if (!br.bit(coef[p + 3])) return br.bit(coef[p + 4]) ? 3 + br.bit(coef[p + 5]) : 2;
  if (!br.bit(coef[p + 6])) return br.bit(coef[p + 7]) ? 7 + 2 * br.bit(165) + br.bit(145) : 5 + br.bit(159);
  const b1 = br.bit(coef[p + 8]), cat = 2 * b1 + br.bit(coef[p + 9 + b1]);
  let v = 0;
  for (const prob of CAT_PROBS[cat]) v = 2 * v + br.bit(prob);
  return v + 3 + (8 << cat);
}

/**
 * One block's coefficients (dequantized, raster order) into out[0..15]; returns the position after the
 * last decoded token as libwebp does (16 when a run of zeros reaches the end), which drives the contexts.
 */
function coefficients(br: BoolDecoder, coef: Uint8Array, type: number, ctx: number, dq: [number, number], first: number, out: Int32Array): number {
  let p = probAt(type, first, ctx);
  for (let n = first; n < 16; n++) {
    if (!br.bit(coef[p])) return n;
    while (!br.bit(coef[p + 1])) {
      if (++n === 16) return 16;
      p = probAt(type, n, 0);
    }
    let v: number;
    if (!br.bit(coef[p + 2])) { v = 1; p = probAt(type, n + 1, 1); } else { v = largeValue(br, coef, p); p = probAt(type, n + 1, 2); }
    out[ZIGZAG[n]] = (br.bit(128) ? -v : v) * dq[n > 0 ? 1 : 0];
  }
  return 16;
}

// ---- transforms ----

const mul1 = (a: number) => ((a * 20091) >> 16) + a, mul2 = (a: number) => (a * 35468) >> 16;
const clip8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

/** Inverse DCT of `c` added to the 4x4 pixels at dst[o] (row stride s), RFC 6386 section 14.4. */
const T16 = new Int32Array(16);

function idctAdd(c: Int32Array, dst: Uint8Array, o: number, s: number) {
  const t = T16;
  for (let i = 0; i < 4; i++) {
    const a = c[i] + c[8 + i], b = c[i] - c[8 + i], cc = mul2(c[4 + i]) - mul1(c[12 + i]), d = mul1(c[4 + i]) + mul2(c[12 + i]);
    t[i] = a + d; t[12 + i] = a - d; t[4 + i] = b + cc; t[8 + i] = b - cc;
  }
  for (let r = 0; r < 4; r++) {
    const q = 4 * r, a = t[q] + t[q + 2], b = t[q] - t[q + 2], cc = mul2(t[q + 1]) - mul1(t[q + 3]), d = mul1(t[q + 1]) + mul2(t[q + 3]);
    const row = o + r * s;
    dst[row] = clip8(dst[row] + ((a + d + 4) >> 3)); dst[row + 3] = clip8(dst[row + 3] + ((a - d + 4) >> 3));
    dst[row + 1] = clip8(dst[row + 1] + ((b + cc + 4) >> 3)); dst[row + 2] = clip8(dst[row + 2] + ((b - cc + 4) >> 3));
  }
}

/** Inverse WHT of the Y2 block; output i is the DC of luma block i (RFC 6386 section 14.3). */
function iwht(c: Int32Array, dcs: Int32Array) {
  const t = T16;
  for (let i = 0; i < 4; i++) {
    const a1 = c[i] + c[12 + i], b1 = c[4 + i] + c[8 + i], c1 = c[4 + i] - c[8 + i], d1 = c[i] - c[12 + i];
    t[i] = a1 + b1; t[4 + i] = c1 + d1; t[8 + i] = a1 - b1; t[12 + i] = d1 - c1;
  }
  for (let r = 0; r < 4; r++) {
    const q = 4 * r, a1 = t[q] + t[q + 3], b1 = t[q + 1] + t[q + 2], c1 = t[q + 1] - t[q + 2], d1 = t[q] - t[q + 3];
    dcs[q] = (a1 + b1 + 3) >> 3; dcs[q + 1] = (c1 + d1 + 3) >> 3; dcs[q + 2] = (a1 - b1 + 3) >> 3; dcs[q + 3] = (d1 - c1 + 3) >> 3;
  }
}

// ---- prediction, in a work buffer whose row -1 and column -1 hold the edges ----

const BPS = 32; // work-buffer stride: 1 left column, 16 pixels, 4 above-right, padding

/** Fills the edges of an n x n block's work buffer from the plane (127 above the frame, 129 left of it). */
function edges(buf: Uint8Array, plane: Uint8Array, stride: number, x0: number, y0: number, n: number, extra: number, lastCol: boolean) {
  const o = BPS + 1;
  for (let i = -1; i < n + extra; i++) {
    buf[o - BPS + i] = y0 === 0 ? 127 : i < 0 && x0 === 0 ? 129 : plane[(y0 - 1) * stride + x0 + (i >= n && lastCol ? n - 1 : i)];
  }
  for (let r = 0; r < n; r++) buf[o + r * BPS - 1] = x0 === 0 ? 129 : plane[(y0 + r) * stride + x0 - 1];
}

/** Whole-block modes (16x16 luma, 8x8 chroma); DC averages only the edges that exist. */
function predictBlock(buf: Uint8Array, n: number, mode: number, hasTop: boolean, hasLeft: boolean) {
  const o = BPS + 1, t = o - BPS, p = buf[t - 1];
  for (let r = 0; r < n; r++) {
    const row = o + r * BPS, l = buf[row - 1];
    if (mode === B_VE) buf.copyWithin(row, t, t + n);
    else if (mode === B_HE) buf.fill(l, row, row + n);
    else if (mode === B_TM) for (let c = 0; c < n; c++) buf[row + c] = clip8(l + buf[t + c] - p);
  }
  if (mode !== B_DC) return;
  const shift = n === 16 ? 4 : 3;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += (hasTop ? buf[t + i] : 0) + (hasLeft ? buf[o + i * BPS - 1] : 0);
  const dc = hasTop && hasLeft ? (sum + n) >> (shift + 1) : hasTop || hasLeft ? (sum + (n >> 1)) >> shift : 128;
  for (let r = 0; r < n; r++) buf.fill(dc, o + r * BPS, o + r * BPS + n);
}

const avg3 = (x: number, y: number, z: number) => (x + 2 * y + z + 2) >> 2, avg2 = (x: number, y: number) => (x + y + 1) >> 1;

/** Edge pixels of a subblock, bottom-left to top-right: L3 L2 L1 L0 P A0 .. A7 (RFC 6386's E, extended by A). */
const E = new Int32Array(13);
const e3 = (i: number) => avg3(E[i - 1], E[i], E[i + 1]), e2 = (i: number) => avg2(E[i], E[i + 1]);

/** Writes the 16 pixels of a 4x4 block from a row-major list of values. */
function put4(buf: Uint8Array, o: number, v: number[]) { for (let k = 0; k < 16; k++) buf[o + (k >> 2) * BPS + (k & 3)] = v[k]; }

/** A 4x4 subblock at buf[o] (RFC 6386 section 12.3), every diagonal mode expressed on E. */
function predictSub(buf: Uint8Array, o: number, mode: number) {
  for (let i = 0; i < 4; i++) E[3 - i] = buf[o + i * BPS - 1];
  for (let i = -1; i < 8; i++) E[5 + i] = buf[o - BPS + i];
  switch (mode) {
    case B_DC: { let v = 4; for (let i = 0; i < 4; i++) v += E[5 + i] + E[3 - i]; v >>= 3; for (let r = 0; r < 4; r++) buf.fill(v, o + r * BPS, o + r * BPS + 4); return; }
    case B_TM: for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) buf[o + r * BPS + c] = clip8(E[3 - r] + E[5 + c] - E[4]); return;
    case B_VE: for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) buf[o + r * BPS + c] = e3(5 + c); return;
    case B_HE: { const v = [e3(3), e3(2), e3(1), avg3(E[1], E[0], E[0])]; for (let r = 0; r < 4; r++) buf.fill(v[r], o + r * BPS, o + r * BPS + 4); return; }
    case B_LD: for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) buf[o + r * BPS + c] = r + c === 6 ? avg3(E[11], E[12], E[12]) : e3(6 + r + c); return;
    case B_RD: for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) buf[o + r * BPS + c] = e3(4 - r + c); return;
    case B_VR: return put4(buf, o, [e2(4), e2(5), e2(6), e2(7), e3(4), e3(5), e3(6), e3(7), e3(3), e2(4), e2(5), e2(6), e3(2), e3(4), e3(5), e3(6)]);
    case B_VL: return put4(buf, o, [e2(5), e2(6), e2(7), e2(8), e3(6), e3(7), e3(8), e3(9), e2(6), e2(7), e2(8), e3(10), e3(7), e3(8), e3(9), e3(11)]);
    case B_HD: return put4(buf, o, [e2(3), e3(4), e3(5), e3(6), e2(2), e3(3), e2(3), e3(4), e2(1), e3(2), e2(2), e3(3), e2(0), e3(1), e2(1), e3(2)]);
    default: { // B_HU
      const l3 = E[0];
      return put4(buf, o, [e2(2), e3(2), e2(1), e3(1), e2(1), e3(1), e2(0), avg3(E[1], l3, l3), e2(0), avg3(E[1], l3, l3), l3, l3, l3, l3, l3, l3]);
    }
  }
}

// ---- macroblock reconstruction ----

const Y2 = new Int32Array(16), DCS = new Int32Array(16);

interface Ctx { nzTop: Uint8Array; nzLeft: Uint8Array; nzDcTop: Uint8Array; nzDcLeft: number }

/** Residuals of one macroblock: coefficients per block (25 x 16) and whether any block is non-zero. */
function residuals(br: BoolDecoder, f: Frame, mb: MbInfo, mbx: number, c: Ctx, coeffs: Int32Array[]): boolean {
  const q = f.quant[mb.segment], tmp = Y2, dcs = DCS;
  tmp.fill(0);
  for (const k of coeffs) k.fill(0);
  let any = false, first = 0, ytype = 3;
  const t = c.nzTop, l = c.nzLeft, T = 9 * mbx; // per column: 4 Y, 2 U, 2 V (DC context kept separately)
  if (!mb.i4) {
    const nz = coefficients(br, f.coef, 1, c.nzDcTop[mbx] + c.nzDcLeft, q.y2, 0, tmp);
    c.nzDcTop[mbx] = c.nzDcLeft = nz > 0 ? 1 : 0;
    iwht(tmp, dcs);
    for (let i = 0; i < 16; i++) { coeffs[i][0] = dcs[i]; if (dcs[i]) any = true; }
    first = 1; ytype = 0;
  }
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 4; x++) {
      const nz = coefficients(br, f.coef, ytype, t[T + x] + l[y], q.y1, first, coeffs[4 * y + x]);
      t[T + x] = l[y] = nz > first ? 1 : 0;
      if (nz > first) any = true;
    }
  }
  for (let ch = 0; ch < 2; ch++) {
    for (let y = 0; y < 2; y++) {
      for (let x = 0; x < 2; x++) {
        const nz = coefficients(br, f.coef, 2, t[T + 4 + 2 * ch + x] + l[4 + 2 * ch + y], q.uv, 0, coeffs[16 + 4 * ch + 2 * y + x]);
        t[T + 4 + 2 * ch + x] = l[4 + 2 * ch + y] = nz > 0 ? 1 : 0;
        if (nz > 0) any = true;
      }
    }
  }
  return any;
}

function reconstruct(f: Frame, br: BoolDecoder): Yuv {
  const yStride = 16 * f.mbw, uvStride = 8 * f.mbw;
  const Y = new Uint8Array(yStride * 16 * f.mbh), U = new Uint8Array(uvStride * 8 * f.mbh), V = new Uint8Array(U.length);
  const intraTop = new Uint8Array(4 * f.mbw), intraLeft = new Uint8Array(4);
  const ctx: Ctx = { nzTop: new Uint8Array(9 * f.mbw), nzLeft: new Uint8Array(9), nzDcTop: new Uint8Array(f.mbw), nzDcLeft: 0 };
  const coeffs = Array.from({ length: 24 }, () => new Int32Array(16)), buf = new Uint8Array(BPS * 17);
  const bmodes = new Uint8Array(16), inner = new Uint8Array(f.mbw * f.mbh), segs = new Uint8Array(f.mbw * f.mbh), i4s = new Uint8Array(f.mbw * f.mbh);
  for (let mby = 0; mby < f.mbh; mby++) {
    intraLeft.fill(B_DC); ctx.nzLeft.fill(0); ctx.nzDcLeft = 0;
    const tokens = f.parts[mby & (f.parts.length - 1)];
    for (let mbx = 0; mbx < f.mbw; mbx++) {
      const mb = readModes(br, f, intraTop, intraLeft, mbx, bmodes);
      let any = false;
      if (!mb.skip) any = residuals(tokens, f, mb, mbx, ctx, coeffs);
      else {
        for (const k of coeffs) k.fill(0);
        ctx.nzTop.fill(0, 9 * mbx, 9 * mbx + 8); ctx.nzLeft.fill(0, 0, 8);
        if (!mb.i4) { ctx.nzDcTop[mbx] = 0; ctx.nzDcLeft = 0; }
      }
      const i = mby * f.mbw + mbx;
      inner[i] = mb.i4 || any ? 1 : 0; segs[i] = mb.segment; i4s[i] = mb.i4 ? 1 : 0;
      luma(f, mb, mbx, mby, Y, yStride, buf, coeffs);
      chroma(mb, mbx, mby, U, uvStride, buf, coeffs, 16); chroma(mb, mbx, mby, V, uvStride, buf, coeffs, 20);
    }
    br.checkEnd(); tokens.checkEnd();
  }
  loopFilter(f, Y, U, V, yStride, uvStride, inner, segs, i4s);
  return { width: f.w, height: f.h, y: Y, u: U, v: V, yStride, uvStride };
}

function luma(f: Frame, mb: MbInfo, mbx: number, mby: number, Y: Uint8Array, stride: number, buf: Uint8Array, coeffs: Int32Array[]) {
  const x0 = 16 * mbx, y0 = 16 * mby, o = BPS + 1;
  edges(buf, Y, stride, x0, y0, 16, 4, mbx === f.mbw - 1);
  if (!mb.i4) {
    predictBlock(buf, 16, mb.ymode, mby > 0, mbx > 0);
    for (let b = 0; b < 16; b++) idctAdd(coeffs[b], buf, o + 4 * (b >> 2) * BPS + 4 * (b & 3), BPS);
  } else {
    // Subblocks on the right edge below the top row see the macroblock's above-right pixels.
    for (const r of [3, 7, 11]) buf.copyWithin(o + r * BPS + 16, o - BPS + 16, o - BPS + 20);
    for (let b = 0; b < 16; b++) {
      const at = o + 4 * (b >> 2) * BPS + 4 * (b & 3);
      predictSub(buf, at, mb.bmodes[b]);
      idctAdd(coeffs[b], buf, at, BPS);
    }
  }
  for (let r = 0; r < 16; r++) Y.set(buf.subarray(o + r * BPS, o + r * BPS + 16), (y0 + r) * stride + x0);
}

function chroma(mb: MbInfo, mbx: number, mby: number, plane: Uint8Array, stride: number, buf: Uint8Array, coeffs: Int32Array[], k: number) {
  const x0 = 8 * mbx, y0 = 8 * mby, o = BPS + 1;
  edges(buf, plane, stride, x0, y0, 8, 0, false);
  predictBlock(buf, 8, mb.uvmode, mby > 0, mbx > 0);
  for (let b = 0; b < 4; b++) idctAdd(coeffs[k + b], buf, o + 4 * (b >> 1) * BPS + 4 * (b & 1), BPS);
  for (let r = 0; r < 8; r++) plane.set(buf.subarray(o + r * BPS, o + r * BPS + 8), (y0 + r) * stride + x0);
}

// ---- loop filter (RFC 6386 section 15, thresholds as libwebp derives them) ----

const sclamp = (v: number) => (v < -128 ? -128 : v > 127 ? 127 : v);

/** The 2-tap adjustment of the pixels either side of the edge (common_adjust with outer taps). */
function filter2(p: Uint8Array, i: number, s: number) {
  const p1 = p[i - 2 * s], p0 = p[i - s], q0 = p[i], q1 = p[i + s];
  const a = sclamp(3 * (q0 - p0) + sclamp(p1 - q1));
  p[i - s] = clip8(p0 + (sclamp(a + 3) >> 3)); p[i] = clip8(q0 - (sclamp(a + 4) >> 3));
}

function filter4(p: Uint8Array, i: number, s: number) {
  const p1 = p[i - 2 * s], p0 = p[i - s], q0 = p[i], q1 = p[i + s], a = sclamp(3 * (q0 - p0));
  const a1 = sclamp(a + 4) >> 3, a2 = sclamp(a + 3) >> 3, a3 = (a1 + 1) >> 1;
  p[i - 2 * s] = clip8(p1 + a3); p[i - s] = clip8(p0 + a2); p[i] = clip8(q0 - a1); p[i + s] = clip8(q1 - a3);
}

function filter6(p: Uint8Array, i: number, s: number) {
  const p2 = p[i - 3 * s], p1 = p[i - 2 * s], p0 = p[i - s], q0 = p[i], q1 = p[i + s], q2 = p[i + 2 * s];
  const a = sclamp(3 * (q0 - p0) + sclamp(p1 - q1)), a1 = (27 * a + 63) >> 7, a2 = (18 * a + 63) >> 7, a3 = (9 * a + 63) >> 7;
  p[i - 3 * s] = clip8(p2 + a3); p[i - 2 * s] = clip8(p1 + a2); p[i - s] = clip8(p0 + a1);
  p[i] = clip8(q0 - a1); p[i + s] = clip8(q1 - a2); p[i + 2 * s] = clip8(q2 - a3);
}

const edgeOk = (p: Uint8Array, i: number, s: number, limit: number) => 4 * Math.abs(p[i - s] - p[i]) + Math.abs(p[i - 2 * s] - p[i + s]) <= 2 * limit + 1;

function interiorOk(p: Uint8Array, i: number, s: number, il: number) {
  const d = (a: number, b: number) => Math.abs(p[i + a * s] - p[i + b * s]) <= il;
  return d(-4, -3) && d(-3, -2) && d(-2, -1) && d(3, 2) && d(2, 1) && d(1, 0);
}

const hev = (p: Uint8Array, i: number, s: number, t: number) => Math.abs(p[i - 2 * s] - p[i - s]) > t || Math.abs(p[i + s] - p[i]) > t;

/** Filters `n` segments across one edge: pixel step `s` across the edge, `along` between segments. */
function edge(p: Uint8Array, i: number, s: number, along: number, n: number, limit: number, il: number, hevT: number, mbEdge: boolean, simple: boolean) {
  for (let k = 0; k < n; k++, i += along) {
    if (simple) { if (edgeOk(p, i, s, limit)) filter2(p, i, s); continue; }
    if (!edgeOk(p, i, s, limit) || !interiorOk(p, i, s, il)) continue;
    if (hev(p, i, s, hevT)) filter2(p, i, s);
    else if (mbEdge) filter6(p, i, s);
    else filter4(p, i, s);
  }
}

function loopFilter(f: Frame, Y: Uint8Array, U: Uint8Array, V: Uint8Array, ys: number, uvs: number, inner: Uint8Array, segs: Uint8Array, i4s: Uint8Array) {
  const F = f.filter;
  if (F.level === 0) return;
  const planes: [Uint8Array, number, number][] = F.simple ? [[Y, ys, 16]] : [[Y, ys, 16], [U, uvs, 8], [V, uvs, 8]];
  for (let mby = 0; mby < f.mbh; mby++) {
    for (let mbx = 0; mbx < f.mbw; mbx++) {
      const m = mby * f.mbw + mbx;
      let level = f.seg.enabled ? f.seg.filter[segs[m]] + (f.seg.absolute ? 0 : F.level) : F.level;
      if (F.useDeltas) level += F.refDelta0 + (i4s[m] ? F.modeDelta0 : 0);
      level = level < 0 ? 0 : level > 63 ? 63 : level;
      if (!level) continue;
      let il = level;
      if (F.sharpness) { il >>= F.sharpness > 4 ? 2 : 1; il = Math.min(il, 9 - F.sharpness); }
      il = Math.max(il, 1);
      const limit = 2 * level + il, hevT = level >= 40 ? 2 : level >= 15 ? 1 : 0, inn = inner[m];
      for (const [p, s, n] of planes) {
        const o = (mby * s + mbx) * n;
        if (mbx > 0) edge(p, o, 1, s, n, limit + 4, il, hevT, true, F.simple);
        if (inn) for (let x = 4; x < n; x += 4) edge(p, o + x, 1, s, n, limit, il, hevT, false, F.simple);
      }
      for (const [p, s, n] of planes) {
        const o = (mby * s + mbx) * n;
        if (mby > 0) edge(p, o, s, 1, n, limit + 4, il, hevT, true, F.simple);
        if (inn) for (let y = 4; y < n; y += 4) edge(p, o + y * s, s, 1, n, limit, il, hevT, false, F.simple);
      }
    }
  }
}

