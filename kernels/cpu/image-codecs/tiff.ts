// Baseline TIFF (first IFD): strips or tiles, chunky or planar, uncompressed/LZW/Deflate/PackBits,
// horizontal predictor, bilevel/gray (1-16 bits, either polarity), palette and RGB. Extra samples
// (alpha) are dropped; 16-bit samples keep their high byte; 1/2/4-bit gray is scaled to 0..255.
import { Bytes, check, checkDims, fail, image, type DecodedImage } from './common.js';
import { inflateZlib } from './inflate.js';

export const isTiff = (b: Uint8Array) =>
  b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 42 && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 42));

const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 6: 1, 7: 1, 8: 2, 9: 4 };
/** Most output bytes one input byte can yield, per compression (LZW: a 9-bit code emits at most 3839 bytes). */
const RATIO: Record<number, number> = { 1: 1, 5: 3412, 8: 1032, 32946: 1032, 32773: 128 };

/** The integer-valued tags of the first IFD. */
function readIfd(r: Bytes): Map<number, number[]> {
  const at = r.u32(4), n = r.u16(at), tags = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const e = at + 2 + 12 * i, tag = r.u16(e), type = r.u16(e + 2), count = r.u32(e + 4), size = TYPE_SIZE[type];
    if (!size) continue; // rationals, floats: nothing we need
    check(count <= r.length, 'TIFF tag count is too large');
    const p = count * size <= 4 ? e + 8 : r.u32(e + 8);
    r.need(p, count * size);
    tags.set(tag, Array.from({ length: count }, (_, k) => (size === 1 ? r.u8(p + k) : size === 2 ? r.u16(p + 2 * k) : r.u32(p + 4 * k))));
  }
  return tags;
}

interface Layout {
  w: number; h: number; spp: number; bits: number; planar: boolean; photo: number; comp: number; predictor: number;
  le: boolean; cw: number; ch: number; across: number; offsets: number[]; counts: number[] | undefined; tiled: boolean;
}

function layout(t: Map<number, number[]>, le: boolean): Layout {
  const one = (tag: number, def?: number) => t.get(tag)?.[0] ?? def ?? fail(`TIFF lacks tag ${tag}`);
  const w = one(256), h = one(257), spp = one(277, 1), bits = t.get(258) ?? [1];
  check(bits.every((b) => b === bits[0]) && [1, 2, 4, 8, 16].includes(bits[0]), 'mixed or unsupported TIFF bit depths');
  check((t.get(339) ?? [1]).every((f) => f === 1) && one(266, 1) === 1, 'only unsigned, MSB-first TIFF samples are supported');
  checkDims(w, h);
  const tiled = t.has(322), cw = tiled ? one(322) : w, ch = tiled ? one(323) : Math.min(one(278, h), h);
  check(cw > 0 && ch > 0 && cw * ch <= 2 ** 28, 'bad TIFF strip or tile size');
  const offsets = t.get(tiled ? 324 : 273) ?? fail('TIFF has no image data offsets');
  return {
    w, h, spp, bits: bits[0], planar: one(284, 1) === 2, photo: one(262), comp: one(259, 1), predictor: one(317, 1),
    le, cw, ch, across: Math.ceil(w / cw), offsets, counts: t.get(tiled ? 325 : 279), tiled,
  };
}

export function decodeTiff(buf: Uint8Array): DecodedImage {
  check(isTiff(buf), 'not a TIFF stream');
  const r = new Bytes(buf, buf[0] === 0x49), tags = readIfd(r), L = layout(tags, r.le);
  const colour = L.photo === 2, palette = L.photo === 3;
  check(L.photo <= 3 && L.spp >= (colour ? 3 : 1) && (!colour || L.bits >= 8), `TIFF photometric ${L.photo} with ${L.spp} samples is not supported`);
  const samples = readSamples(buf, L);
  const img = image(L.w, L.h, colour || palette ? 3 : 1), n = L.w * L.h, max = (1 << L.bits) - 1;
  if (palette) {
    const map = tags.get(320) ?? fail('palette TIFF without a colour map'), k = 1 << L.bits;
    check(map.length >= 3 * k, 'short TIFF colour map');
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) img.data[3 * i + c] = map[c * k + samples[i * L.spp]] >> 8;
    return img;
  }
  const keep = img.channels, to8 = (v: number) => (L.bits === 16 ? v >> 8 : L.bits === 8 ? v : Math.round((v * 255) / max));
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < keep; c++) {
      const v = samples[i * L.spp + c];
      img.data[i * keep + c] = to8(L.photo === 0 ? max - v : v);
    }
  }
  return img;
}

/** All samples, pixel-interleaved, at their native depth. */
function readSamples(buf: Uint8Array, L: Layout): Uint16Array {
  const planes = L.planar ? L.spp : 1, per = L.planar ? 1 : L.spp, down = Math.ceil(L.h / L.ch), chunks = L.across * down;
  check(L.offsets.length >= chunks * planes && (!L.counts || L.counts.length >= chunks * planes), 'too few TIFF strips or tiles');
  const rowBytes = Math.ceil((L.cw * per * L.bits) / 8), rows = L.tiled ? L.ch * down : L.h;
  // The stream must be able to hold the samples at the codec's best compression ratio before we allocate for them.
  const stored = L.counts ? L.counts.slice(0, chunks * planes).reduce((s, c) => s + c, 0) : buf.length;
  check(L.spp <= 16 && planes * L.across * rows * rowBytes <= Math.min(stored, buf.length) * (RATIO[L.comp] ?? 1), 'TIFF dimensions are too large for the stream');
  const out = new Uint16Array(L.w * L.h * L.spp);
  for (let plane = 0; plane < planes; plane++) {
    for (let k = 0; k < chunks; k++) {
      const idx = plane * chunks + k, x0 = (k % L.across) * L.cw, y0 = Math.floor(k / L.across) * L.ch;
      const rows = L.tiled ? L.ch : Math.min(L.ch, L.h - y0), size = rows * rowBytes;
      const raw = decompress(buf, L.offsets[idx], L.counts?.[idx] ?? size, size, L.comp);
      if (L.bits === 16 && L.le) for (let i = 0; i + 1 < size; i += 2) [raw[i], raw[i + 1]] = [raw[i + 1], raw[i]];
      if (L.predictor === 2) unpredict(raw, rows, rowBytes, per, L.bits);
      else check(L.predictor === 1, `TIFF predictor ${L.predictor} is not supported`);
      place(raw, rows, rowBytes, per, x0, y0, L.planar ? plane : 0, L, out);
    }
  }
  return out;
}

function decompress(buf: Uint8Array, at: number, count: number, size: number, comp: number): Uint8Array {
  check(at + count <= buf.length, 'TIFF strip runs past the end of the stream');
  const src = buf.subarray(at, at + count);
  const out = comp === 1 ? src : comp === 5 ? lzw(src, size) : comp === 8 || comp === 32946 ? inflateZlib(src, size, size) : comp === 32773 ? packBits(src, size) : fail(`TIFF compression ${comp} is not supported`);
  check(out.length >= size, 'TIFF strip is truncated');
  return comp === 1 ? out.slice(0, size) : out;
}

/** Horizontal differencing, undone per row on 8- or 16-bit samples. */
function unpredict(raw: Uint8Array, rows: number, rowBytes: number, per: number, bits: number) {
  check(bits === 8 || bits === 16, 'TIFF predictor needs 8- or 16-bit samples');
  for (let y = 0; y < rows; y++) {
    const s = y * rowBytes;
    if (bits === 8) for (let i = per; i < rowBytes; i++) raw[s + i] += raw[s + i - per];
    else {
      // 16-bit samples were swapped to big-endian after decompression.
      for (let i = 2 * per; i + 1 < rowBytes; i += 2) {
        const v = ((raw[s + i] << 8) | raw[s + i + 1]) + ((raw[s + i - 2 * per] << 8) | raw[s + i - 2 * per + 1]);
        raw[s + i] = v >> 8; raw[s + i + 1] = v;
      }
    }
  }
}

/** One decoded chunk's samples into the interleaved output; tile padding outside the image is skipped. */
function place(raw: Uint8Array, rows: number, rowBytes: number, per: number, x0: number, y0: number, plane: number, L: Layout, out: Uint16Array) {
  const cols = Math.min(L.cw, L.w - x0), mask = (1 << L.bits) - 1;
  for (let y = 0; y < rows && y0 + y < L.h; y++) {
    const s = y * rowBytes;
    for (let x = 0; x < cols; x++) {
      for (let c = 0; c < per; c++) {
        const i = x * per + c, o = ((y0 + y) * L.w + x0 + x) * L.spp + plane + c;
        if (L.bits === 16) out[o] = (raw[s + 2 * i] << 8) | raw[s + 2 * i + 1];
        else if (L.bits === 8) out[o] = raw[s + i];
        else out[o] = (raw[s + ((i * L.bits) >> 3)] >> (8 - L.bits - ((i * L.bits) & 7))) & mask;
      }
    }
  }
}

/** TIFF LZW: MSB-first codes of 9-12 bits, the width growing one code early; stops at `size` bytes. */
function lzw(src: Uint8Array, size: number): Uint8Array {
  check(src.length < 2 || src[0] !== 0 || !(src[1] & 1), 'old-style TIFF LZW is not supported');
  // Each table entry: its prefix code, last byte, first byte and length, so a string is written back to front.
  const prefix = new Int32Array(4096), suffix = new Uint8Array(4096), first = new Uint8Array(4096), len = new Int32Array(4096), out = new Uint8Array(size);
  for (let i = 0; i < 256; i++) { suffix[i] = first[i] = i; len[i] = 1; prefix[i] = -1; }
  let n = 0, next = 258, width = 9, prev = -1, acc = 0, bits = 0, p = 0;
  while (n < size) {
    while (bits < width && p < src.length) { acc = ((acc << 8) | src[p++]) & 0xffffff; bits += 8; }
    if (bits < width) break;
    const code = (acc >>> (bits - width)) & ((1 << width) - 1);
    bits -= width;
    if (code === 257) break;
    if (code === 256) { next = 258; width = 9; prev = -1; continue; }
    check(code < next || (code === next && prev >= 0), 'bad LZW code');
    if (prev >= 0 && next < 4096) {
      prefix[next] = prev; len[next] = len[prev] + 1; first[next] = first[prev];
      suffix[next] = code === next ? first[prev] : first[code];
      next++;
    }
    const l = len[code], end = Math.min(size, n + l);
    for (let q = n + l - 1, c = code; c >= 0; q--, c = prefix[c]) if (q < end) out[q] = suffix[c];
    n = end; prev = code;
    width = next >= 2047 ? 12 : next >= 1023 ? 11 : next >= 511 ? 10 : 9;
  }
  return out.subarray(0, n);
}

function packBits(src: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let n = 0;
  for (let p = 0; p < src.length && n < size;) {
    const h = src[p++];
    if (h < 128) { const k = Math.min(h + 1, size - n, src.length - p); out.set(src.subarray(p, p + k), n); n += k; p += h + 1; }
    else if (h > 128 && p < src.length) { out.fill(src[p++], n, Math.min(size, n + 257 - h)); n = Math.min(size, n + 257 - h); }
  }
  return out.subarray(0, n);
}
