// PNG: every colour type and bit depth, Adam7 interlacing, CRC and Adler-32 verified. Output is gray
// (colour types 0, 4) or RGB; alpha and tRNS are dropped (as an RGB/L conversion does), 16-bit samples
// keep their high byte and 1/2/4-bit gray is scaled to 0..255 by bit replication.
import { Bytes, check, checkDims, image, startsWith, unpackBits, type DecodedImage } from './common.js';
import { inflateZlib } from './inflate.js';

const SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
export const isPng = (b: Uint8Array) => startsWith(b, SIG);

const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

let crcTable: Int32Array | undefined;
export function crc32(b: Uint8Array, from = 0, to = b.length): number {
  const t = (crcTable ??= Int32Array.from({ length: 256 }, (_, n) => {
    for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
    return n;
  }));
  let c = -1;
  for (let i = from; i < to; i++) c = t[(c ^ b[i]) & 255] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

interface Ihdr { w: number; h: number; depth: number; type: number; interlace: number }

export function decodePng(buf: Uint8Array): DecodedImage {
  check(isPng(buf), 'not a PNG stream');
  const r = new Bytes(buf, false), idat: Uint8Array[] = [];
  let hdr: Ihdr | undefined, pal: Uint8Array | undefined;
  for (let p = 8; ;) {
    const len = r.u32(p), type = String.fromCharCode(...r.slice(p + 4, 4));
    r.need(p + 8, len + 4);
    check(crc32(buf, p + 4, p + 8 + len) === r.u32(p + 8 + len), `PNG ${type} chunk CRC mismatch`);
    const data = buf.subarray(p + 8, p + 8 + len);
    check(hdr || type === 'IHDR', 'PNG does not start with IHDR');
    if (type === 'IHDR') hdr = ihdr(new Bytes(data, false));
    else if (type === 'PLTE') { check(len % 3 === 0 && len <= 768, 'bad PLTE'); pal = data; }
    else if (type === 'IDAT') idat.push(data);
    p += 12 + len;
    if (type === 'IEND' || (p === buf.length && idat.length)) break;
  }
  check(hdr && idat.length, 'PNG has no image data');
  check(hdr.type !== 3 || pal, 'palette PNG without PLTE');
  return pixels(hdr, inflateAll(hdr, idat), hdr.type === 3 ? pal : undefined);
}

function ihdr(r: Bytes): Ihdr {
  const h: Ihdr = { w: r.u32(0), h: r.u32(4), depth: r.u8(8), type: r.u8(9), interlace: r.u8(12) };
  check(DEPTHS[h.type]?.includes(h.depth) && r.u8(10) === 0 && r.u8(11) === 0 && h.interlace <= 1, 'unsupported PNG header');
  checkDims(h.w, h.h);
  return h;
}

/** Pass geometry: [x0, y0, dx, dy, width, height] for each non-empty pass. */
function passes(h: Ihdr): number[][] {
  const all = h.interlace ? ADAM7 : [[0, 0, 1, 1]];
  return all.map(([x0, y0, dx, dy]) => [x0, y0, dx, dy, Math.ceil((h.w - x0) / dx), Math.ceil((h.h - y0) / dy)]).filter((p) => p[4] > 0 && p[5] > 0);
}

const rowBytes = (h: Ihdr, w: number) => Math.ceil((w * CHANNELS[h.type] * h.depth) / 8);

function inflateAll(h: Ihdr, idat: Uint8Array[]): Uint8Array {
  const size = passes(h).reduce((s, p) => s + p[5] * (1 + rowBytes(h, p[4])), 0);
  const z = new Uint8Array(idat.reduce((s, d) => s + d.length, 0));
  idat.reduce((at, d) => (z.set(d, at), at + d.length), 0);
  check(size <= z.length * 1032, 'PNG data is too short for its dimensions'); // deflate expands at most ~1032:1
  const raw = inflateZlib(z, size, size);
  check(raw.length === size, 'PNG image data is truncated');
  return raw;
}

function pixels(h: Ihdr, raw: Uint8Array, pal?: Uint8Array): DecodedImage {
  const ch = CHANNELS[h.type], outCh = h.type === 0 || h.type === 4 ? 1 : 3, img = image(h.w, h.h, outCh);
  const bpp = Math.max(1, (ch * h.depth) >> 3);
  let at = 0;
  for (const [x0, y0, dx, dy, pw, ph] of passes(h)) {
    const stride = rowBytes(h, pw), samples = new Uint8Array(pw * ch);
    let prev = new Uint8Array(stride), cur = new Uint8Array(stride);
    for (let y = 0; y < ph; y++, at += 1 + stride) {
      unfilter(raw[at], raw.subarray(at + 1, at + 1 + stride), cur, prev, bpp);
      if (h.depth === 16) for (let i = 0; i < samples.length; i++) samples[i] = cur[2 * i];
      else unpackBits(cur, 0, samples.length, h.depth, samples);
      emit(h, samples, pal, img, (y0 + y * dy) * h.w, x0, dx, pw);
      [prev, cur] = [cur, prev];
    }
  }
  return img;
}

function unfilter(f: number, src: Uint8Array, cur: Uint8Array, prev: Uint8Array, bpp: number) {
  const n = src.length;
  switch (f) {
    case 0: cur.set(src); break;
    case 1: for (let i = 0; i < n; i++) cur[i] = src[i] + (i >= bpp ? cur[i - bpp] : 0); break;
    case 2: for (let i = 0; i < n; i++) cur[i] = src[i] + prev[i]; break;
    case 3: for (let i = 0; i < n; i++) cur[i] = src[i] + (((i >= bpp ? cur[i - bpp] : 0) + prev[i]) >> 1); break;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
        const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
        cur[i] = src[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
      }
      break;
    default: check(false, `bad PNG filter type ${f}`);
  }
}

/** One pass row of samples into the image: palette lookup, alpha dropped, low depths scaled up. */
function emit(h: Ihdr, s: Uint8Array, pal: Uint8Array | undefined, img: DecodedImage, rowAt: number, x0: number, dx: number, n: number) {
  const o = img.data, ch = CHANNELS[h.type], oc = img.channels, scale = h.depth < 8 && h.type !== 3 ? 255 / ((1 << h.depth) - 1) : 1;
  for (let i = 0; i < n; i++) {
    const p = (rowAt + x0 + i * dx) * oc;
    if (pal) { const k = 3 * s[i]; if (k < pal.length) { o[p] = pal[k]; o[p + 1] = pal[k + 1]; o[p + 2] = pal[k + 2]; } } else for (let c = 0; c < oc; c++) o[p + c] = s[i * ch + c] * scale;
  }
}
