// Windows/OS2 bitmap: core (12-byte) and INFO..V5 headers, 1/4/8-bit palettes, 16/24/32-bit direct
// colour with optional bit-field masks, RLE8 and RLE4. Output is RGB; alpha is dropped.
import { applyPalette, Bytes, check, checkDims, fail, image, unpackBits, type DecodedImage } from './common.js';

export const isBmp = (b: Uint8Array) => b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d;

interface Header { w: number; h: number; topDown: boolean; bpp: number; comp: number; masks: number[]; pal: Uint8Array; dataAt: number }

export function decodeBmp(buf: Uint8Array): DecodedImage {
  const hd = readHeader(new Bytes(buf));
  if (hd.comp === 1 || hd.comp === 2) return rle(buf, hd);
  check(hd.comp === 0 || hd.comp === 3 || hd.comp === 6, `BMP compression ${hd.comp} is not supported`);
  const stride = Math.ceil((hd.bpp * hd.w) / 32) * 4;
  checkDims(hd.w, hd.h, buf.length, hd.dataAt + stride * (hd.h - 1) + Math.ceil((hd.bpp * hd.w) / 8));
  const img = image(hd.w, hd.h, 3), row = hd.bpp <= 8 ? new Uint8Array(hd.w) : undefined;
  for (let y = 0; y < hd.h; y++) {
    const src = hd.dataAt + stride * (hd.topDown ? y : hd.h - 1 - y), at = y * hd.w * 3;
    if (row) { unpackBits(buf, src, hd.w, hd.bpp, row); applyPalette(row, hd.w, hd.pal, img.data, at); }
    else if (hd.bpp === 24) for (let x = 0; x < hd.w; x++) bgr(img.data, at + 3 * x, buf, src + 3 * x);
    else directRow(buf, src, hd, img.data, at);
  }
  return img;
}

function readHeader(r: Bytes): Header {
  const hsize = r.u32(14), core = hsize === 12, dataAt = r.u32(10);
  check(core || (hsize >= 16 && hsize <= 124), `BMP header size ${hsize} is not supported`);
  const w = core ? r.u16(18) : r.i32(18), rawH = core ? r.u16(20) : r.i32(22);
  const bpp = r.u16(core ? 24 : 28), comp = core || hsize < 20 ? 0 : r.u32(30);
  check([1, 4, 8, 16, 24, 32].includes(bpp), `BMP bit depth ${bpp} is not supported`);
  check(!(hsize === 64 && comp === 3), 'OS/2 Huffman-coded BMP is not supported');
  // Masks live inside V2+ headers, or right after a 40-byte INFO header.
  const bitfields = comp === 3 || comp === 6, extra = bitfields && hsize === 40 ? (comp === 6 ? 16 : 12) : 0;
  const masks = bitfields ? [0, 1, 2].map((i) => r.u32(54 + 4 * i)) : bpp === 16 ? [0x7c00, 0x3e0, 0x1f] : [0xff0000, 0xff00, 0xff];
  const used = core || hsize < 36 ? 0 : r.u32(46), entries = bpp <= 8 ? used || 1 << bpp : 0, esize = core ? 3 : 4;
  check(entries <= 256, `BMP palette of ${entries} entries`);
  const palAt = 14 + hsize + extra, pal = new Uint8Array(entries * 3);
  for (let i = 0; i < entries; i++) bgr(pal, 3 * i, r.slice(palAt + esize * i, 3), 0);
  return { w, h: Math.abs(rawH), topDown: rawH < 0, bpp, comp, masks, pal, dataAt };
}

function bgr(out: Uint8Array, o: number, src: Uint8Array, s: number) { out[o] = src[s + 2]; out[o + 1] = src[s + 1]; out[o + 2] = src[s]; }

/** 16/32-bit pixels through bit-field masks, each field scaled to 0..255 (truncating, as PIL does). */
function directRow(buf: Uint8Array, s: number, hd: Header, out: Uint8Array, at: number) {
  const fields = hd.masks.map(field), bytes = hd.bpp / 8;
  for (let x = 0; x < hd.w; x++) {
    const p = s + bytes * x;
    const v = bytes === 2 ? buf[p] | (buf[p + 1] << 8) : (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0;
    for (let c = 0; c < 3; c++) {
      const [mask, shift, max] = fields[c];
      out[at + 3 * x + c] = max ? Math.floor((((v & mask) >>> shift) * 255) / max) : 0;
    }
  }
}

function field(mask: number): [number, number, number] {
  if (!mask) return [0, 0, 0];
  let shift = 0;
  while (!((mask >>> shift) & 1)) shift++;
  return [mask, shift, mask >>> shift];
}

/** RLE8/RLE4, bottom-up; pixels the stream skips keep palette index 0. */
function rle(buf: Uint8Array, hd: Header): DecodedImage {
  const four = hd.comp === 2;
  check(hd.bpp === (four ? 4 : 8) && !hd.topDown, 'bad RLE BMP');
  checkDims(hd.w, hd.h, buf.length * 255 * 2, hd.w * hd.h); // a 2-byte run paints at most 255 pixels
  const idx = new Uint8Array(hd.w * hd.h);
  let p = hd.dataAt, x = 0, y = 0;
  const put = (v: number) => { if (x < hd.w && y < hd.h) idx[(hd.h - 1 - y) * hd.w + x] = v; x++; };
  const byte = () => (p < buf.length ? buf[p++] : fail('truncated RLE BMP'));
  for (;;) {
    const n = byte(), v = byte();
    if (n) { for (let i = 0; i < n; i++) put(four ? (i & 1 ? v & 15 : v >> 4) : v); continue; }
    if (v === 0) { x = 0; y++; } else if (v === 1) break;
    else if (v === 2) { x += byte(); y += byte(); } else {
      const bytes = four ? (v + 1) >> 1 : v;
      for (let i = 0; i < v; i++) put(four ? (i & 1 ? buf[p + (i >> 1)] & 15 : buf[p + (i >> 1)] >> 4) : buf[p + i]);
      check(p + bytes <= buf.length, 'truncated RLE BMP');
      p += bytes + (bytes & 1);
    }
    if (y >= hd.h) break;
  }
  const img = image(hd.w, hd.h, 3);
  applyPalette(idx, idx.length, hd.pal, img.data, 0);
  return img;
}
