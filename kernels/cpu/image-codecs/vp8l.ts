// WebP lossless (VP8L, RFC 9649): prefix-coded ARGB with LZ77 backward references and a colour cache,
// meta prefix codes, and the predictor, cross-colour, subtract-green and colour-indexing transforms.
// Output is RGB; alpha is dropped.
import { check, checkDims, fail, type DecodedImage } from './common.js';

/** LSB-first bit reader; reads past the end give zeros, but consuming them is an error. */
class Bits {
  buf = 0; cnt = 0; pad = 0;
  constructor(readonly b: Uint8Array, public pos: number, readonly end: number) {}
  fill() {
    while (this.cnt <= 24) {
      if (this.pos < this.end) this.buf |= this.b[this.pos++] << this.cnt;
      else this.pad++;
      this.cnt += 8;
    }
  }
  peek(): number { this.fill(); return this.buf >>> 0; }
  skip(n: number) {
    this.buf >>>= n; this.cnt -= n;
    if (this.pad * 8 > this.cnt) fail('VP8L stream is truncated');
  }
  read(n: number): number {
    if (!n) return 0;
    const v = this.peek() & ((1 << n) - 1);
    this.skip(n);
    return v;
  }
}

const ROOT = 8;

/** A canonical prefix code: an 8-bit root table (symbol << 4 | length) with a bit-serial fallback for longer codes. */
class Code {
  single = -1;
  root = new Int32Array(1 << ROOT);
  count = new Int32Array(16);
  sorted: Int32Array;
  constructor(lengths: ArrayLike<number>) {
    const n = lengths.length, used: number[] = [];
    for (let s = 0; s < n; s++) if (lengths[s]) { this.count[lengths[s]]++; used.push(s); }
    this.sorted = new Int32Array(used.length);
    check(used.length > 0, 'empty VP8L prefix code');
    if (used.length === 1) { this.single = used[0]; return; } // a lone symbol costs no bits
    let left = 1;
    for (let len = 1; len < 16; len++) { left = 2 * left - this.count[len]; check(left >= 0, 'over-subscribed VP8L prefix code'); }
    check(left === 0, 'incomplete VP8L prefix code');
    const offs = new Int32Array(16);
    for (let len = 1; len < 15; len++) offs[len + 1] = offs[len] + this.count[len];
    for (const s of used) this.sorted[offs[lengths[s]]++] = s;
    // Root entries: walk the codes in canonical order, writing each short code's bit-reversed slots.
    for (let len = 1, code = 0, k = 0; len <= ROOT; len++, code <<= 1) {
      for (let i = 0; i < this.count[len]; i++, code++, k++) {
        let rev = 0;
        for (let b = 0; b < len; b++) rev |= ((code >> b) & 1) << (len - 1 - b);
        for (let j = rev; j < 1 << ROOT; j += 1 << len) this.root[j] = (this.sorted[k] << 4) | len;
      }
    }
  }
  read(br: Bits): number {
    if (this.single >= 0) return this.single;
    const bits = br.peek(), e = this.root[bits & ((1 << ROOT) - 1)];
    if (e) { br.skip(e & 15); return e >> 4; }
    // Longer than the root: canonical decoding one bit at a time (codes arrive most significant bit first).
    let code = 0, first = 0, index = 0;
    for (let len = 1; len < 16; len++) {
      code |= (bits >>> (len - 1)) & 1;
      const c = this.count[len];
      if (code - first < c) { br.skip(len); return this.sorted[index + code - first]; }
      index += c; first = (first + c) << 1; code <<= 1;
    }
    return fail('bad VP8L prefix code');
  }
}

const CL_ORDER = [17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

function readCode(br: Bits, size: number): Code {
  const lengths = new Uint8Array(size);
  if (br.read(1)) { // simple code: one or two symbols
    const two = br.read(1), s0 = br.read(br.read(1) ? 8 : 1);
    check(s0 < size, 'VP8L symbol out of range');
    lengths[s0] = 1;
    if (two) { const s1 = br.read(8); check(s1 < size, 'VP8L symbol out of range'); lengths[s1] = 1; }
    return new Code(lengths);
  }
  const clLengths = new Uint8Array(19), n = 4 + br.read(4);
  for (let i = 0; i < n; i++) clLengths[CL_ORDER[i]] = br.read(3);
  const cl = new Code(clLengths);
  let max = size;
  if (br.read(1)) { max = 2 + br.read(2 + 2 * br.read(3)); check(max <= size, 'VP8L code length count too large'); }
  for (let s = 0, prev = 8; s < size && max-- > 0;) {
    const v = cl.read(br);
    if (v < 16) { lengths[s++] = v; if (v) prev = v; continue; }
    const rep = v === 16 ? 3 + br.read(2) : v === 17 ? 3 + br.read(3) : 11 + br.read(7);
    check(s + rep <= size, 'VP8L code lengths overrun');
    lengths.fill(v === 16 ? prev : 0, s, s + rep);
    s += rep;
  }
  return new Code(lengths);
}

/** Prefix-coded length or distance value (RFC 9649 section 3.6.4). */
function prefixValue(br: Bits, sym: number): number {
  if (sym < 4) return sym + 1;
  const extra = (sym - 2) >> 1;
  return ((2 + (sym & 1)) << extra) + br.read(extra) + 1;
}

// Distance codes 1..120 map to nearby 2-D offsets (dy << 4 | 8 - dx), RFC 9649 section 3.6.4.1.
const PLANE = [
  0x18, 0x07, 0x17, 0x19, 0x28, 0x06, 0x27, 0x29, 0x16, 0x1a, 0x26, 0x2a, 0x38, 0x05, 0x37, 0x39, 0x15, 0x1b, 0x36, 0x3a,
  0x25, 0x2b, 0x48, 0x04, 0x47, 0x49, 0x14, 0x1c, 0x35, 0x3b, 0x46, 0x4a, 0x24, 0x2c, 0x58, 0x45, 0x4b, 0x34, 0x3c, 0x03,
  0x57, 0x59, 0x13, 0x1d, 0x56, 0x5a, 0x23, 0x2d, 0x44, 0x4c, 0x55, 0x5b, 0x33, 0x3d, 0x68, 0x02, 0x67, 0x69, 0x12, 0x1e,
  0x66, 0x6a, 0x22, 0x2e, 0x54, 0x5c, 0x43, 0x4d, 0x65, 0x6b, 0x32, 0x3e, 0x78, 0x01, 0x77, 0x79, 0x53, 0x5d, 0x11, 0x1f,
  0x64, 0x6c, 0x42, 0x4e, 0x76, 0x7a, 0x21, 0x2f, 0x75, 0x7b, 0x31, 0x3f, 0x63, 0x6d, 0x52, 0x5e, 0x00, 0x74, 0x7c, 0x41,
  0x4f, 0x10, 0x20, 0x62, 0x6e, 0x30, 0x73, 0x7d, 0x51, 0x5f, 0x40, 0x72, 0x7e, 0x61, 0x6f, 0x50, 0x71, 0x7f, 0x60, 0x70,
];

function distance(code: number, width: number): number {
  if (code > 120) return code - 120;
  const v = PLANE[code - 1], d = (v >> 4) * width + 8 - (v & 15);
  return d < 1 ? 1 : d;
}

interface Group { g: Code; r: Code; b: Code; a: Code; d: Code }

/** An entropy-coded image of w x h ARGB pixels; `top` images may carry meta prefix codes. */
function entropyImage(br: Bits, w: number, h: number, top: boolean): Uint32Array {
  const useCache = br.read(1), cacheBits = useCache ? br.read(4) : 0;
  check(!useCache || (cacheBits >= 1 && cacheBits <= 11), 'bad VP8L colour cache size');
  let metaBits = 0, meta: Uint32Array | undefined, groups = 1;
  if (top && br.read(1)) {
    metaBits = br.read(3) + 2;
    meta = entropyImage(br, sub(w, metaBits), sub(h, metaBits), false);
    for (let i = 0; i < meta.length; i++) { meta[i] = (meta[i] >> 8) & 0xffff; groups = Math.max(groups, meta[i] + 1); }
  }
  const cacheSize = cacheBits ? 1 << cacheBits : 0;
  const codes: Group[] = Array.from({ length: groups }, () => ({
    g: readCode(br, 256 + 24 + cacheSize), r: readCode(br, 256), b: readCode(br, 256), a: readCode(br, 256), d: readCode(br, 40),
  }));
  return pixels(br, w, h, codes, meta, metaBits, cacheBits);
}

const sub = (v: number, bits: number) => (v + (1 << bits) - 1) >> bits;

function pixels(br: Bits, w: number, h: number, codes: Group[], meta: Uint32Array | undefined, metaBits: number, cacheBits: number): Uint32Array {
  const out = new Uint32Array(w * h), cache = new Uint32Array(cacheBits ? 1 << cacheBits : 0), mw = sub(w, metaBits), shift = 32 - cacheBits;
  let cached = 0;
  const flush = (to: number) => { if (cacheBits) for (; cached < to; cached++) cache[Math.imul(out[cached], 0x1e35a7bd) >>> shift] = out[cached]; };
  for (let p = 0; p < out.length;) {
    const x = p % w, y = (p - x) / w, G = meta ? codes[meta[(y >> metaBits) * mw + (x >> metaBits)]] : codes[0];
    check(G, 'VP8L meta code out of range');
    const s = G.g.read(br);
    if (s < 256) {
      const r = G.r.read(br), b = G.b.read(br), a = G.a.read(br);
      out[p++] = ((a << 24) | (r << 16) | (s << 8) | b) >>> 0;
    } else if (s < 280) {
      const len = prefixValue(br, s - 256), dist = distance(prefixValue(br, G.d.read(br)), w);
      check(dist <= p && p + len <= out.length, 'VP8L backward reference out of range');
      for (let i = 0; i < len; i++, p++) out[p] = out[p - dist];
    } else {
      check(cacheBits && s - 280 < cache.length, 'VP8L colour cache index out of range');
      flush(p);
      out[p++] = cache[s - 280];
    }
    flush(p);
  }
  return out;
}

// ---- transforms ----

/** An inverse transform; each knows the width it was read for. */
type Transform = (px: Uint32Array) => Uint32Array;

const add = (a: number, b: number) => ((((a & 0xff00ff00) + (b & 0xff00ff00)) & 0xff00ff00) | (((a & 0x00ff00ff) + (b & 0x00ff00ff)) & 0x00ff00ff)) >>> 0;
const ch = (v: number, s: number) => (v >>> s) & 255;
const avg2 = (a: number, b: number) => ((((a ^ b) & 0xfefefefe) >>> 1) + (a & b)) >>> 0;
const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);
const perChannel = (f: (s: number) => number) => ((f(24) << 24) | (f(16) << 16) | (f(8) << 8) | f(0)) >>> 0;

function select(L: number, T: number, TL: number): number {
  let pl = 0, pt = 0;
  for (let s = 0; s < 32; s += 8) { pl += Math.abs(ch(T, s) - ch(TL, s)); pt += Math.abs(ch(L, s) - ch(TL, s)); }
  return pl < pt ? L : T;
}

function predict(mode: number, L: number, T: number, TR: number, TL: number): number {
  switch (mode) {
    case 0: return 0xff000000;
    case 1: return L;
    case 2: return T;
    case 3: return TR;
    case 4: return TL;
    case 5: return avg2(avg2(L, TR), T);
    case 6: return avg2(L, TL);
    case 7: return avg2(L, T);
    case 8: return avg2(TL, T);
    case 9: return avg2(T, TR);
    case 10: return avg2(avg2(L, TL), avg2(T, TR));
    case 11: return select(L, T, TL);
    case 12: return perChannel((s) => clamp(ch(L, s) + ch(T, s) - ch(TL, s)));
    case 13: { const a = avg2(L, T); return perChannel((s) => clamp(ch(a, s) + Math.trunc((ch(a, s) - ch(TL, s)) / 2))); }
    default: return 0xff000000; // modes 14 and 15 are unused; libwebp predicts as mode 0
  }
}

function predictor(br: Bits, w: number, h: number): Transform {
  const bits = br.read(3) + 2, modes = entropyImage(br, sub(w, bits), sub(h, bits), false), mw = sub(w, bits);
  return (px) => {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const p = y * w + x;
        // First pixel: black; top row: left; left column: top; elsewhere the block's mode (TR wraps to the row start at the right edge).
        const pred = !x && !y ? 0xff000000 : !y ? px[p - 1] : !x ? px[p - w]
          : predict((modes[(y >> bits) * mw + (x >> bits)] >> 8) & 15, px[p - 1], px[p - w], px[p - w + 1], px[p - w - 1]);
        px[p] = add(px[p], pred);
      }
    }
    return px;
  };
}

const delta = (t: number, c: number) => ((t << 24 >> 24) * (c << 24 >> 24)) >> 5;

function crossColour(br: Bits, w: number, h: number): Transform {
  const bits = br.read(3) + 2, m = entropyImage(br, sub(w, bits), sub(h, bits), false), mw = sub(w, bits);
  return (px) => {
    for (let p = 0; p < px.length; p++) {
      const x = p % w, y = (p - x) / w, e = m[(y >> bits) * mw + (x >> bits)], v = px[p], g = ch(v, 8);
      const red = (ch(v, 16) + delta(e, g)) & 255; // e: blue = green_to_red, green = green_to_blue, red = red_to_blue
      const blue = (ch(v, 0) + delta(e >> 8, g) + delta(e >> 16, red)) & 255;
      px[p] = ((v & 0xff00ff00) | (red << 16) | blue) >>> 0;
    }
    return px;
  };
}

const subtractGreen: Transform = (px) => {
  for (let p = 0; p < px.length; p++) { const g = ch(px[p], 8); px[p] = add(px[p], (g << 16) | g); }
  return px;
};

/** Colour indexing: returns the transform and the packed width the rest of the stream uses. */
function colourIndexing(br: Bits, w: number): [Transform, number] {
  const n = br.read(8) + 1, table = entropyImage(br, n, 1, false), bits = n <= 2 ? 3 : n <= 4 ? 2 : n <= 16 ? 1 : 0;
  for (let i = 1; i < n; i++) table[i] = add(table[i], table[i - 1]);
  const per = 1 << bits, size = 8 >> bits, mask = (1 << size) - 1, pw = sub(w, bits);
  const t: Transform = (packed) => {
    const h = packed.length / pw;
    const out = new Uint32Array(w * h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = (ch(packed[y * pw + (x >> bits)], 8) >> (size * (x & (per - 1)))) & mask;
        out[y * w + x] = i < n ? table[i] : 0;
      }
    }
    return out;
  };
  return [t, pw];
}

export function decodeVp8l(b: Uint8Array, start: number, end: number): DecodedImage {
  const br = new Bits(b, start, end);
  check(br.read(8) === 0x2f, 'bad VP8L signature');
  const w = br.read(14) + 1, h = br.read(14) + 1;
  br.read(1);
  check(br.read(3) === 0, 'unknown VP8L version');
  checkDims(w, h);
  // Zero-bit codes make flat images nearly free, so only very large images must show some bytes per pixel.
  check(w * h <= 2 ** 24 || w * h <= 4096 * 8 * (end - start), 'VP8L dimensions are too large for the stream');
  const transforms: Transform[] = [], seen = new Set<number>();
  let cw = w;
  while (br.read(1)) {
    const type = br.read(2);
    check(!seen.has(type), 'repeated VP8L transform');
    seen.add(type);
    if (type === 0) transforms.push(predictor(br, cw, h));
    else if (type === 1) transforms.push(crossColour(br, cw, h));
    else if (type === 2) transforms.push(subtractGreen);
    else { const [t, pw] = colourIndexing(br, cw); transforms.push(t); cw = pw; }
  }
  let px = entropyImage(br, cw, h, true);
  for (let i = transforms.length - 1; i >= 0; i--) px = transforms[i](px);
  const data = new Uint8Array(w * h * 3);
  for (let p = 0; p < w * h; p++) { data[3 * p] = ch(px[p], 16); data[3 * p + 1] = ch(px[p], 8); data[3 * p + 2] = ch(px[p], 0); }
  return { width: w, height: h, channels: 3, data };
}
