// JPEG (ITU T.81): baseline, extended and progressive Huffman-coded 8-bit images with 1 or 3 components.
// Decoding reproduces libjpeg-turbo's defaults bit for bit: the "islow" integer IDCT with its
// range-limit table, "fancy" triangular chroma upsampling (h2v1, h1v2, h2v2; box replication for other
// ratios), and its 16-bit fixed-point YCbCr->RGB tables. Like libjpeg, entropy data cut short by a
// marker decodes as zeros; data cut short by the end of the stream is an error.
import { Bytes, check, checkDims, fail, type DecodedImage } from './common.js';

export const isJpeg = (b: Uint8Array) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/** Zigzag position -> natural (row-major) index; 16 extra entries absorb runs past 63 in corrupt data, as libjpeg does. */
const NATURAL = Int32Array.from([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
  ...new Array<number>(16).fill(63),
]);

interface Huffman { fast: Int32Array; maxcode: Int32Array; valptr: Int32Array; vals: Uint8Array }

interface Component {
  id: number; h: number; v: number; tq: number;
  w: number; hgt: number; bw: number; bh: number; stride: number; rows: number;
  coefs: Int16Array; pred: number; dc?: Huffman; ac?: Huffman;
}

interface Frame { w: number; h: number; progressive: boolean; comps: Component[]; hmax: number; vmax: number; mcusX: number; mcusY: number }

/** Builds the canonical code of a DHT table: a 9-bit lookahead (len << 8 | symbol) plus per-length limits for longer codes. */
function buildHuffman(counts: Uint8Array, vals: Uint8Array): Huffman {
  const fast = new Int32Array(512), maxcode = new Int32Array(18).fill(-1), valptr = new Int32Array(17);
  let code = 0, k = 0;
  for (let len = 1; len <= 16; len++) {
    valptr[len] = k - code;
    for (let i = 0; i < counts[len - 1]; i++, k++, code++) {
      if (len <= 9) fast.fill((len << 8) | vals[k], code << (9 - len), (code + 1) << (9 - len));
    }
    if (counts[len - 1]) maxcode[len] = code - 1;
    check(code <= 1 << len, 'over-subscribed JPEG Huffman table');
    code <<= 1;
  }
  return { fast, maxcode, valptr, vals };
}

/** MSB-first entropy-data reader: unstuffs FF00; a marker yields zero bits; the stream's end is an error once consumed. */
class BitReader {
  acc = 0; cnt = 0; pad = 0; marker = false;
  constructor(readonly b: Uint8Array, public pos: number) {}
  fill(n: number) {
    while (this.cnt < n) {
      const b = this.b;
      let byte = 0;
      if (this.marker) { /* zeros */ } else if (this.pos >= b.length) this.pad++;
      else if (b[this.pos] !== 0xff) byte = b[this.pos++];
      else if (b[this.pos + 1] === 0) { byte = 0xff; this.pos += 2; } else this.marker = true;
      this.acc = (this.acc << 8) | byte;
      this.cnt += 8;
    }
  }
  skip(n: number) {
    this.cnt -= n;
    if (this.pad * 8 > this.cnt) fail('JPEG entropy data is truncated');
  }
  bits(n: number): number {
    if (!n) return 0;
    this.fill(n);
    const v = (this.acc >>> (this.cnt - n)) & ((1 << n) - 1);
    this.skip(n);
    return v;
  }
  /** A value of `s` bits, sign-extended per T.81 F.2.2.1. */
  extend(s: number): number { const v = this.bits(s); return s && v < 1 << (s - 1) ? v - (1 << s) + 1 : v; }
  decode(h: Huffman): number {
    this.fill(16);
    const e = h.fast[(this.acc >>> (this.cnt - 9)) & 511];
    if (e) { this.skip(e >> 8); return e & 255; }
    const code = (this.acc >>> (this.cnt - 16)) & 0xffff;
    for (let len = 10; len <= 16; len++) {
      const c = code >>> (16 - len);
      if (c <= h.maxcode[len]) { this.skip(len); return h.vals[h.valptr[len] + c]; }
    }
    return fail('bad JPEG Huffman code');
  }
  /** At a restart point: drop buffered bits and consume the RSTn marker if it is next. */
  restart() {
    this.acc = 0; this.cnt = 0; this.marker = false;
    if (this.b[this.pos] === 0xff && this.b[this.pos + 1] >= 0xd0 && this.b[this.pos + 1] <= 0xd7) this.pos += 2;
  }
}

interface State { scans: number; frame?: Frame; q: Int32Array[]; dc: Huffman[]; ac: Huffman[]; restart: number; adobe: number; jfif: boolean; eobrun: number }

export function decodeJpeg(buf: Uint8Array): DecodedImage {
  check(isJpeg(buf), 'not a JPEG stream');
  const r = new Bytes(buf, false), st: State = { scans: 0, q: [], dc: [], ac: [], restart: 0, adobe: -1, jfif: false, eobrun: 0 };
  for (let p = 2; ;) {
    if (p >= buf.length && st.scans) break; // a missing EOI after complete data is tolerated, as libjpeg does
    while (r.u8(p) === 0xff && r.u8(p + 1) === 0xff) p++; // fill bytes
    check(r.u8(p) === 0xff, 'JPEG marker expected');
    const m = r.u8(p + 1);
    if (m === 0xd9) break;
    if (m >= 0xd0 && m <= 0xd7) { p += 2; continue; }
    const len = r.u16(p + 2), seg = r.slice(p + 4, len - 2);
    check(len >= 2, 'bad JPEG segment length');
    p += 2 + len;
    if (m === 0xda) p = scan(buf, p, seg, st);
    else segment(m, seg, st);
  }
  check(st.frame && st.scans, 'JPEG has no frame or no scan');
  return output(st.frame, st);
}

function segment(m: number, seg: Uint8Array, st: State) {
  const r = new Bytes(seg, false);
  if (m === 0xdb) for (let p = 0; p < seg.length;) p = quantTable(r, p, st);
  else if (m === 0xc4) for (let p = 0; p < seg.length;) p = huffTable(r, p, st);
  else if (m === 0xdd) st.restart = r.u16(0);
  else if (m === 0xe0 && seg.length >= 5 && String.fromCharCode(...seg.subarray(0, 5)) === 'JFIF\0') st.jfif = true;
  else if (m === 0xee && seg.length >= 12 && String.fromCharCode(...seg.subarray(0, 5)) === 'Adobe') st.adobe = seg[11];
  else if (m === 0xc0 || m === 0xc1 || m === 0xc2) { check(!st.frame, 'second JPEG frame'); st.frame = frame(r, m === 0xc2); }
  else if ((m >= 0xc3 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc)) fail(`JPEG process SOF${m - 0xc0} is not supported`);
}

function quantTable(r: Bytes, p: number, st: State): number {
  const pq = r.u8(p) >> 4, tq = r.u8(p) & 15, q = new Int32Array(64);
  check(tq < 4 && pq < 2, 'bad JPEG quantization table');
  for (let i = 0; i < 64; i++) q[NATURAL[i]] = pq ? r.u16(p + 1 + 2 * i) : r.u8(p + 1 + i);
  st.q[tq] = q;
  return p + 1 + 64 * (pq + 1);
}

function huffTable(r: Bytes, p: number, st: State): number {
  const tc = r.u8(p) >> 4, th = r.u8(p) & 15, counts = r.slice(p + 1, 16), n = counts.reduce((a, b) => a + b, 0);
  check(tc < 2 && th < 4 && n <= 256, 'bad JPEG Huffman table');
  (tc ? st.ac : st.dc)[th] = buildHuffman(counts, r.slice(p + 17, n));
  return p + 17 + n;
}

function frame(r: Bytes, progressive: boolean): Frame {
  check(r.u8(0) === 8, `JPEG sample precision ${r.u8(0)} is not supported`);
  const h = r.u16(1), w = r.u16(3), n = r.u8(5);
  check(n === 1 || n === 3, `JPEG with ${n} components is not supported`);
  checkDims(w, h);
  const raw = Array.from({ length: n }, (_, i) => ({ id: r.u8(6 + 3 * i), h: r.u8(7 + 3 * i) >> 4, v: r.u8(7 + 3 * i) & 15, tq: r.u8(8 + 3 * i) }));
  check(raw.every((c) => c.h >= 1 && c.h <= 4 && c.v >= 1 && c.v <= 4 && c.tq < 4), 'bad JPEG sampling factors');
  const hmax = Math.max(...raw.map((c) => c.h)), vmax = Math.max(...raw.map((c) => c.v));
  const mcusX = Math.ceil(w / (8 * hmax)), mcusY = Math.ceil(h / (8 * vmax));
  const comps = raw.map((c) => {
    const cw = Math.ceil((w * c.h) / hmax), ch = Math.ceil((h * c.v) / vmax), stride = mcusX * c.h, rows = mcusY * c.v;
    return { ...c, w: cw, hgt: ch, bw: Math.ceil(cw / 8), bh: Math.ceil(ch / 8), stride, rows, coefs: new Int16Array(0), pred: 0 };
  });
  return { w, h, progressive, comps, hmax, vmax, mcusX, mcusY };
}

/** One scan: entropy-decodes into the components' coefficients; returns the position of the marker after its data. */
function scan(buf: Uint8Array, p: number, seg: Uint8Array, st: State): number {
  const f = st.frame ?? fail('JPEG scan before the frame'), r = new Bytes(seg, false), n = r.u8(0);
  // Every block carries at least one bit in its first scan, so the block count is bounded by the stream.
  const blocks = f.comps.reduce((s, c) => s + c.stride * c.rows, 0);
  check(blocks <= 8 * buf.length, 'JPEG dimensions are too large for the stream');
  for (const c of f.comps) if (!c.coefs.length) c.coefs = new Int16Array(64 * c.stride * c.rows);
  const comps = Array.from({ length: n }, (_, i) => {
    const c = f.comps.find((x) => x.id === r.u8(1 + 2 * i)) ?? fail('JPEG scan names an unknown component');
    c.dc = st.dc[r.u8(2 + 2 * i) >> 4]; c.ac = st.ac[r.u8(2 + 2 * i) & 15]; c.pred = 0;
    return c;
  });
  const ss = r.u8(1 + 2 * n), se = r.u8(2 + 2 * n), ah = r.u8(3 + 2 * n) >> 4, al = r.u8(3 + 2 * n) & 15;
  check(n >= 1 && n <= f.comps.length && (n === 1 || ss === 0), 'bad JPEG scan header');
  if (!f.progressive) check(ss === 0 && se === 63 && ah === 0 && al === 0, 'bad baseline scan');
  else check(ss <= se && se <= 63 && (ss === 0 ? se === 0 : n === 1) && al <= 13, 'bad progressive scan');
  const block = pickDecoder(f.progressive, ss, se, ah, al, st);
  for (const c of comps) check((ss === 0 || c.ac) && (ah > 0 || se > 0 || c.dc) && (f.progressive || (c.dc && c.ac)), 'JPEG scan uses an undefined Huffman table');
  const br = new BitReader(buf, p), single = n === 1;
  const total = single ? comps[0].bw * comps[0].bh : f.mcusX * f.mcusY;
  st.eobrun = 0; st.scans++;
  for (let m = 0; m < total; m++) {
    if (st.restart && m && m % st.restart === 0) { br.restart(); st.eobrun = 0; for (const c of comps) c.pred = 0; }
    if (single) { const c = comps[0]; block(br, c, 64 * ((Math.floor(m / c.bw)) * c.stride + (m % c.bw))); continue; }
    const mx = m % f.mcusX, my = Math.floor(m / f.mcusX);
    for (const c of comps) {
      for (let v = 0; v < c.v; v++) for (let h = 0; h < c.h; h++) block(br, c, 64 * ((my * c.v + v) * c.stride + mx * c.h + h));
    }
  }
  return nextMarker(buf, br.pos);
}

function nextMarker(b: Uint8Array, p: number): number {
  while (p + 1 < b.length && !(b[p] === 0xff && b[p + 1] !== 0 && (b[p + 1] < 0xd0 || b[p + 1] > 0xd7))) p++;
  return p;
}

type BlockFn = (br: BitReader, c: Component, at: number) => void;

function pickDecoder(progressive: boolean, ss: number, se: number, ah: number, al: number, st: State): BlockFn {
  if (!progressive) return baseline;
  if (ss === 0) return ah ? (br, c, at) => { if (br.bits(1)) c.coefs[at] |= 1 << al; } : (br, c, at) => dcFirst(br, c, at, al);
  return ah ? (br, c, at) => acRefine(br, c, at, ss, se, al, st) : (br, c, at) => acFirst(br, c, at, ss, se, al, st);
}

function baseline(br: BitReader, c: Component, at: number) {
  const t = br.decode(c.dc!), co = c.coefs, ac = c.ac!;
  c.pred += br.extend(t);
  co[at] = c.pred;
  for (let k = 1; k < 64; k++) {
    const rs = br.decode(ac), r = rs >> 4, s = rs & 15;
    if (s) { k += r; co[at + NATURAL[k]] = br.extend(s); } else if (r === 15) k += 15;
    else break;
  }
}

function dcFirst(br: BitReader, c: Component, at: number, al: number) {
  c.pred += br.extend(br.decode(c.dc!));
  c.coefs[at] = c.pred * (1 << al);
}

function acFirst(br: BitReader, c: Component, at: number, ss: number, se: number, al: number, st: State) {
  if (st.eobrun) { st.eobrun--; return; }
  for (let k = ss; k <= se; k++) {
    const rs = br.decode(c.ac!), r = rs >> 4, s = rs & 15;
    if (s) { k += r; c.coefs[at + NATURAL[k]] = br.extend(s) * (1 << al); } else if (r === 15) k += 15;
    else { st.eobrun = (1 << r) - 1 + br.bits(r); break; }
  }
}

/** Successive approximation of AC coefficients (T.81 G.1.2.3): correction bits for nonzero ones, new ±1 values for zeros. */
function acRefine(br: BitReader, c: Component, at: number, ss: number, se: number, al: number, st: State) {
  const co = c.coefs, p1 = 1 << al, m1 = -1 << al;
  const correct = (i: number) => { if (br.bits(1) && !(co[i] & p1)) co[i] += co[i] >= 0 ? p1 : m1; };
  let k = ss;
  if (!st.eobrun) {
    for (; k <= se; k++) {
      const rs = br.decode(c.ac!);
      let r = rs >> 4, s = rs & 15;
      if (s) s = br.bits(1) ? p1 : m1;
      else if (r !== 15) { st.eobrun = (1 << r) + br.bits(r); break; }
      for (; k <= se; k++) {
        const i = at + NATURAL[k];
        if (co[i]) correct(i);
        else if (--r < 0) break;
      }
      if (s) co[at + NATURAL[k]] = s;
    }
  }
  if (st.eobrun) {
    for (; k <= se; k++) { const i = at + NATURAL[k]; if (co[i]) correct(i); }
    st.eobrun--;
  }
}

// ---- islow IDCT (13-bit constants, 2 extra bits between passes) ----

const F0298 = 2446, F0390 = 3196, F0541 = 4433, F0765 = 6270, F0899 = 7373, F1175 = 9633, F1501 = 12299;
const F1847 = 15137, F1961 = 16069, F2053 = 16819, F2562 = 20995, F3072 = 25172;

/**
 * The even/odd butterfly of libjpeg's islow IDCT on 8 values at `i`, `i+s`, ... of `x`; results go to `o`
 * (8 entries at stride `os`) descaled by `shift` bits with rounding. Doubles keep libjpeg's 64-bit
 * intermediates exact; Math.floor of the scaled value is its arithmetic right shift.
 */
function idct1d(x: Int32Array, i: number, s: number, o: Int32Array, oi: number, os: number, round: number, inv: number) {
  const z2 = x[i + 2 * s], z3 = x[i + 6 * s], z1 = (z2 + z3) * F0541;
  const t2 = z1 - z3 * F1847, t3 = z1 + z2 * F0765;
  const t0 = (x[i] + x[i + 4 * s]) * 8192, t1 = (x[i] - x[i + 4 * s]) * 8192;
  const t10 = t0 + t3, t13 = t0 - t3, t11 = t1 + t2, t12 = t1 - t2;
  const a0 = x[i + 7 * s], a1 = x[i + 5 * s], a2 = x[i + 3 * s], a3 = x[i + s];
  const z5 = (a0 + a2 + a1 + a3) * F1175, zz3 = (a0 + a2) * -F1961 + z5, z4 = (a1 + a3) * -F0390 + z5;
  const zz1 = (a0 + a3) * -F0899, zz2 = (a1 + a2) * -F2562;
  const b0 = a0 * F0298 + zz1 + zz3, b1 = a1 * F2053 + zz2 + z4, b2 = a2 * F3072 + zz2 + zz3, b3 = a3 * F1501 + zz1 + z4;
  o[oi] = Math.floor((t10 + b3 + round) * inv); o[oi + 7 * os] = Math.floor((t10 - b3 + round) * inv);
  o[oi + os] = Math.floor((t11 + b2 + round) * inv); o[oi + 6 * os] = Math.floor((t11 - b2 + round) * inv);
  o[oi + 2 * os] = Math.floor((t12 + b1 + round) * inv); o[oi + 5 * os] = Math.floor((t12 - b1 + round) * inv);
  o[oi + 3 * os] = Math.floor((t13 + b0 + round) * inv); o[oi + 4 * os] = Math.floor((t13 - b0 + round) * inv);
}

/** Range limit after the IDCT: libjpeg masks to 10 bits (wrapping wild values) before clamping v + 128 to 0..255. */
const limit = (v: number) => { const m = ((v & 1023) ^ 512) - 512 + 128; return m < 0 ? 0 : m > 255 ? 255 : m; };

function idctBlock(co: Int16Array, at: number, q: Int32Array, deq: Int32Array, ws: Int32Array, row: Int32Array, out: Uint8Array, o: number, stride: number) {
  for (let i = 0; i < 64; i++) deq[i] = co[at + i] * q[i];
  for (let c = 0; c < 8; c++) {
    // A column with no AC terms is its DC scaled by 2^PASS1_BITS: the full butterfly gives the same.
    if (!(deq[8 + c] | deq[16 + c] | deq[24 + c] | deq[32 + c] | deq[40 + c] | deq[48 + c] | deq[56 + c])) {
      const v = deq[c] * 4;
      for (let r = 0; r < 64; r += 8) ws[r + c] = v;
    } else idct1d(deq, c, 8, ws, c, 8, 1024, 1 / 2048); // CONST_BITS - PASS1_BITS
  }
  for (let r = 0; r < 8; r++) {
    const w = 8 * r, p = o + r * stride;
    if (!(ws[w + 1] | ws[w + 2] | ws[w + 3] | ws[w + 4] | ws[w + 5] | ws[w + 6] | ws[w + 7])) {
      out.fill(limit(Math.floor((ws[w] + 16) / 32)), p, p + 8);
      continue;
    }
    idct1d(ws, w, 1, row, 0, 1, 131072, 1 / 262144); // CONST_BITS + PASS1_BITS + 3
    for (let c = 0; c < 8; c++) out[p + c] = limit(row[c]);
  }
}

/** Each component's samples at its own resolution, padded to whole MCUs. */
function planes(f: Frame, st: State): Uint8Array[] {
  const deq = new Int32Array(64), ws = new Int32Array(64), row = new Int32Array(8);
  return f.comps.map((c) => {
    if (!c.coefs.length) c.coefs = new Int16Array(64 * c.stride * c.rows); // never scanned: flat gray
    const q = st.q[c.tq] ?? fail('JPEG component uses an undefined quantization table'), pw = 8 * c.stride, plane = new Uint8Array(pw * 8 * c.rows);
    for (let by = 0; by < c.rows; by++) {
      for (let bx = 0; bx < c.stride; bx++) idctBlock(c.coefs, 64 * (by * c.stride + bx), q, deq, ws, row, plane, 8 * (by * pw + bx), pw);
    }
    return plane;
  });
}

// ---- upsampling and colour conversion ----

/** A component plane brought to full image size, the way libjpeg-turbo's default upsampler picks per ratio. */
function upsample(f: Frame, c: Component, plane: Uint8Array): Uint8Array {
  const W = f.w, H = f.h, pw = 8 * c.stride, out = new Uint8Array(W * H), hr = f.hmax / c.h, vr = f.vmax / c.v;
  check(Number.isInteger(hr) && Number.isInteger(vr), 'JPEG sampling ratio is not integral');
  const fancyH = hr === 2 && c.w > 2 && (vr === 1 || vr === 2), fancyV = vr === 2 && (hr === 1 || fancyH);
  // Column sums of the vertical triangle filter: 3 parts the nearer row, 1 part the farther (edges replicate).
  const sums = new Int32Array(c.w), cw = c.w;
  for (let Y = 0; Y < H; Y++) {
    const y = Math.floor(Y / vr), near = y * pw, o = Y * W;
    if (!fancyH && !fancyV) { for (let X = 0; X < W; X++) out[o + X] = plane[near + Math.floor(X / hr)]; continue; }
    const far = (fancyV ? Math.max(0, Math.min(c.hgt - 1, Y & 1 ? y + 1 : y - 1)) : y) * pw;
    for (let x = 0; x < cw; x++) sums[x] = fancyV ? 3 * plane[near + x] + plane[far + x] : plane[near + x];
    if (!fancyH) { const bias = Y & 1 ? 2 : 1; for (let X = 0; X < W; X++) out[o + X] = (sums[X] + bias) >> 2; continue; }
    // Horizontal: output 2x leans on sum x and its left neighbour, 2x+1 on its right one (clamped at the ends).
    const [s, ra, rb] = fancyV ? [4, 8, 7] : [2, 1, 2];
    for (let X = 0; X < W; X++) {
      const x = X >> 1, n = X & 1 ? (x + 1 < cw ? x + 1 : x) : x > 0 ? x - 1 : 0;
      out[o + X] = (3 * sums[x] + sums[n] + (X & 1 ? rb : ra)) >> s;
    }
  }
  return out;
}

// libjpeg's jdcolor.c tables: 16-bit fixed point, rounding folded into the Cb->G entry.
const FIX = (x: number) => Math.floor(x * 65536 + 0.5);
const CR_R = Int32Array.from({ length: 256 }, (_, i) => (FIX(1.402) * (i - 128) + 32768) >> 16);
const CB_B = Int32Array.from({ length: 256 }, (_, i) => (FIX(1.772) * (i - 128) + 32768) >> 16);
const CR_G = Int32Array.from({ length: 256 }, (_, i) => -FIX(0.71414) * (i - 128));
const CB_G = Int32Array.from({ length: 256 }, (_, i) => -FIX(0.34414) * (i - 128) + 32768);
const clamp8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

function output(f: Frame, st: State): DecodedImage {
  const ps = planes(f, st), full = f.comps.map((c, i) => (c.h === f.hmax && c.v === f.vmax ? crop(f, c, ps[i]) : upsample(f, c, ps[i])));
  const n = f.w * f.h;
  if (full.length === 1) return { width: f.w, height: f.h, channels: 1, data: full[0] };
  const [a, b, c] = full, data = new Uint8Array(3 * n), ids = f.comps.map((x) => x.id).join();
  const rgb = st.jfif ? false : st.adobe >= 0 ? st.adobe === 0 : ids === '82,71,66';
  for (let i = 0; i < n; i++) {
    if (rgb) { data[3 * i] = a[i]; data[3 * i + 1] = b[i]; data[3 * i + 2] = c[i]; continue; }
    const y = a[i], cb = b[i], cr = c[i];
    data[3 * i] = clamp8(y + CR_R[cr]);
    data[3 * i + 1] = clamp8(y + ((CB_G[cb] + CR_G[cr]) >> 16));
    data[3 * i + 2] = clamp8(y + CB_B[cb]);
  }
  return { width: f.w, height: f.h, channels: 3, data };
}

function crop(f: Frame, c: Component, plane: Uint8Array): Uint8Array {
  const out = new Uint8Array(f.w * f.h), pw = 8 * c.stride;
  for (let y = 0; y < f.h; y++) out.set(plane.subarray(y * pw, y * pw + f.w), y * f.w);
  return out;
}
