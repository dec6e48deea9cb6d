// ImageDecoder: small images encoded here (BMP, PNM, TIFF, stored-deflate PNG, flat-block JPEG, VP8L
// WebP) decoded through a one-node model, pixel formats, and corrupt, truncated or forged streams that
// must come back as an empty image. Bit-exactness against real encoders is covered by the ONNX node tests.
import { describe, expect, it } from 'vitest';
import { NdArray, toNdArray, toTensor } from '../engine/tensor.js';
import { GraphBuilder } from '../loaders/builder.js';
import { InferenceSession, Tensor } from '../index.js';
import { decodeImage } from '../kernels/cpu/image-codecs/index.js';
import { inflateRaw, inflateZlib } from '../kernels/cpu/image-codecs/inflate.js';

async function decode(bytes: Uint8Array, pixel_format = 'RGB'): Promise<NdArray> {
  const g = new GraphBuilder();
  g.node('ImageDecoder', [g.input('data', 'uint8', [bytes.length])], { pixel_format }, ['image']);
  g.output('image', 'uint8');
  const s = await InferenceSession.create(g.model({ opset: 20 }));
  const out = await s.run({ data: toTensor(new NdArray('uint8', [bytes.length], bytes)) });
  return toNdArray(out.image as Tensor);
}

const px = (t: NdArray) => Array.from(t.data as Uint8Array);

/** A deterministic w x h RGB test pattern. */
function pattern(w: number, h: number): Uint8Array {
  return Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37 + Math.floor(i / 7) * 11) & 255);
}

// ---- little encoders ----

const le16 = (v: number) => [v & 255, v >> 8];
const le32 = (v: number) => [v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >>> 24) & 255];
const be32 = (v: number) => [(v >>> 24) & 255, (v >> 16) & 255, (v >> 8) & 255, v & 255];
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

function bmp(w: number, h: number, bpp: number, rows: (y: number) => number[], opts: { topDown?: boolean; palette?: number[][]; masks?: number[] } = {}): Uint8Array {
  const stride = Math.ceil((w * bpp) / 32) * 4, pal = (opts.palette ?? []).flatMap(([r, g, b]) => [b, g, r, 0]);
  const masks = opts.masks ? opts.masks.flatMap(le32) : [], off = 54 + masks.length + pal.length;
  const data: number[] = [];
  for (let i = 0; i < h; i++) { const row = rows(opts.topDown ? i : h - 1 - i); data.push(...row, ...new Array<number>(stride - row.length).fill(0)); }
  return Uint8Array.from([...ascii('BM'), ...le32(off + data.length), 0, 0, 0, 0, ...le32(off), ...le32(40), ...le32(w), ...le32(opts.topDown ? -h : h),
    ...le16(1), ...le16(bpp), ...le32(opts.masks ? 3 : 0), ...le32(data.length), 0, 0, 0, 0, 0, 0, 0, 0, ...le32(opts.palette?.length ?? 0), 0, 0, 0, 0, ...masks, ...pal, ...data]);
}

/** Uncompressed baseline TIFF: chunky or planar samples of `bits` bits, one strip per plane. */
function tiff(w: number, h: number, spp: number, bits: number, samples: number[], opts: { planar?: boolean; bigEndian?: boolean; photometric?: number } = {}): Uint8Array {
  const be = !!opts.bigEndian, u16 = (v: number) => (be ? [v >> 8, v & 255] : le16(v)), u32 = (v: number) => (be ? be32(v) : le32(v));
  const planes = opts.planar ? spp : 1, bytes = bits / 8, data: number[] = [];
  for (let p = 0; p < planes; p++) {
    for (let i = 0; i < w * h; i++) for (let c = 0; c < (opts.planar ? 1 : spp); c++) { const v = samples[i * spp + (opts.planar ? p : c)]; data.push(...(bytes === 2 ? u16(v) : [v])); }
  }
  const stripLen = data.length / planes, n = 10, ifd = 8, after = ifd + 2 + 12 * n + 4, bpsAt = after, offsAt = bpsAt + 2 * spp, cntAt = offsAt + 4 * planes, dataAt = cntAt + 4 * planes;
  const entry = (tag: number, type: number, count: number, value: number[]) => [...u16(tag), ...u16(type), ...u32(count), ...value, ...new Array<number>(4 - value.length).fill(0)];
  const ptrOrValue = (count: number, at: number, inline: number[]) => (count === 1 ? inline : u32(at));
  const head = [...(be ? ascii('MM') : ascii('II')), ...u16(42), ...u32(ifd), ...u16(n),
    ...entry(256, 3, 1, u16(w)), ...entry(257, 3, 1, u16(h)), ...entry(258, 3, spp, spp === 1 ? u16(bits) : spp === 2 ? [...u16(bits), ...u16(bits)] : u32(bpsAt)),
    ...entry(259, 3, 1, u16(1)), ...entry(262, 3, 1, u16(opts.photometric ?? (spp >= 3 ? 2 : 1))),
    ...entry(273, 4, planes, ptrOrValue(planes, offsAt, u32(dataAt))), ...entry(277, 3, 1, u16(spp)), ...entry(278, 3, 1, u16(h)),
    ...entry(279, 4, planes, ptrOrValue(planes, cntAt, u32(stripLen))), ...entry(284, 3, 1, u16(opts.planar ? 2 : 1)), ...u32(0)];
  const tail = [...new Array<number>(spp).fill(0).flatMap(() => u16(bits)), ...Array.from({ length: planes }, (_, p) => u32(dataAt + p * stripLen)).flat(), ...new Array<number>(planes).fill(0).flatMap(() => u32(stripLen))];
  return Uint8Array.from([...head, ...tail, ...data]);
}

let crcTable: number[] | undefined;
function crc(bytes: number[]): number {
  crcTable ??= Array.from({ length: 256 }, (_, n) => { for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1; return n >>> 0; });
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zlib stream of stored (uncompressed) deflate blocks. */
function zlibStored(data: number[], block = 65535): number[] {
  const out = [0x78, 0x01];
  for (let i = 0; i === 0 || i < data.length; i += block) {
    const part = data.slice(i, i + block), last = i + block >= data.length ? 1 : 0;
    out.push(last, ...le16(part.length), ...le16(part.length ^ 0xffff), ...part);
  }
  let a = 1, b = 0;
  for (const v of data) { a = (a + v) % 65521; b = (b + a) % 65521; }
  return [...out, ...be32(((b << 16) | a) >>> 0)];
}

const paeth = (a: number, b: number, c: number) => { const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c); return pa <= pb && pa <= pc ? a : pb <= pc ? b : c; };

/** Filters one scanline with PNG filter `f` (bpp bytes per pixel). */
function filterRow(f: number, row: number[], prev: number[], bpp: number): number[] {
  return row.map((v, i) => {
    const a = i >= bpp ? row[i - bpp] : 0, b = prev[i] ?? 0, c = i >= bpp ? prev[i - bpp] ?? 0 : 0;
    return (v - [0, a, b, (a + b) >> 1, paeth(a, b, c)][f]) & 255;
  });
}

const chunk = (t: string, d: number[]) => [...be32(d.length), ...ascii(t), ...d, ...be32(crc([...ascii(t), ...d]))];

/** PNG with 8-bit samples (or packed low-depth gray/palette rows), stored deflate, optional Adam7. */
function png(w: number, h: number, type: number, depth: number, samples: number[], opts: { palette?: number[]; interlace?: boolean; block?: number } = {}): Uint8Array {
  const ch = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[type]!, bpp = Math.max(1, (ch * depth) >> 3), raw: number[] = [];
  const passes = opts.interlace ? [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] : [[0, 0, 1, 1]];
  let f = 0;
  for (const [x0, y0, dx, dy] of passes) {
    let prev: number[] = [];
    for (let y = y0; y < h; y += dy) {
      const vals: number[] = [];
      for (let x = x0; x < w; x += dx) for (let c = 0; c < ch; c++) vals.push(samples[(y * w + x) * ch + c]);
      if (!vals.length) break;
      const row: number[] = [];
      if (depth >= 8) row.push(...vals);
      else for (let i = 0; i < vals.length; i += 8 / depth) row.push(vals.slice(i, i + 8 / depth).reduce((s, v, k) => s | (v << (8 - depth * (k + 1))), 0));
      const ft = f++ % 5;
      raw.push(ft, ...filterRow(ft, row, prev, bpp));
      prev = row;
    }
  }
  return Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10, ...chunk('IHDR', [...be32(w), ...be32(h), depth, type, 0, 0, opts.interlace ? 1 : 0]),
    ...(opts.palette ? chunk('PLTE', opts.palette) : []), ...chunk('IDAT', zlibStored(raw, opts.block)), ...chunk('IEND', [])]);
}

/** MSB-first bit writer with JPEG byte stuffing. */
function jpegBits() {
  const out: number[] = [];
  let acc = 0, n = 0;
  const put = (v: number, len: number) => {
    for (let i = len - 1; i >= 0; i--) {
      acc = (acc << 1) | ((v >> i) & 1);
      if (++n === 8) { out.push(acc); if (acc === 0xff) out.push(0); acc = 0; n = 0; }
    }
  };
  return { put, end: () => { if (n) put(0x7f, 8 - n); return out; } };
}

/**
 * Baseline JPEG of flat 8x8 blocks: `dcs[c]` holds component c's DC values in MCU order. Quantization 8 and
 * DC-only blocks make each block decode to exactly 128 + dc (the islow IDCT's flat case).
 */
function flatJpeg(w: number, h: number, sampling: number[][], dcs: number[][]): Uint8Array {
  const seg = (m: number, d: number[]) => [0xff, m, ...[(d.length + 2) >> 8, (d.length + 2) & 255], ...d];
  const bits = jpegBits(), pred = dcs.map(() => 0), perMcu = sampling.map(([hs, vs]) => hs * vs), mcus = dcs[0].length / perMcu[0];
  for (let m = 0; m < mcus; m++) {
    for (let c = 0; c < dcs.length; c++) {
      for (let k = 0; k < perMcu[c]; k++) {
        const dc = dcs[c][m * perMcu[c] + k], diff = dc - pred[c], cat = diff ? 32 - Math.clz32(Math.abs(diff)) : 0;
        pred[c] = dc;
        bits.put(cat, 4); // DC table: categories 0..11, all 4-bit codes
        if (cat) bits.put(diff > 0 ? diff : diff + (1 << cat) - 1, cat);
        bits.put(0, 1); // AC table: EOB is the single 1-bit code '0'
      }
    }
  }
  const sof = [8, h >> 8, h & 255, w >> 8, w & 255, dcs.length, ...sampling.flatMap(([hs, vs], i) => [i + 1, (hs << 4) | vs, 0])];
  const dht = [0x00, 0, 0, 0, 12, ...new Array<number>(12).fill(0), ...Array.from({ length: 12 }, (_, i) => i), 0x10, 1, ...new Array<number>(15).fill(0), 0];
  const sos = [dcs.length, ...dcs.flatMap((_, i) => [i + 1, 0x00]), 0, 63, 0];
  return Uint8Array.from([0xff, 0xd8, ...seg(0xdb, [0, ...new Array<number>(64).fill(8)]), ...seg(0xc0, sof), ...seg(0xc4, dht), ...seg(0xda, sos), ...bits.end(), 0xff, 0xd9]);
}

/** VP8L: simple prefix codes only; green takes two values (one bit per pixel), the other channels one each. */
function vp8l(w: number, h: number, greens: [number, number], pick: number[], argb: [number, number, number], subtractGreen: boolean): Uint8Array {
  const out: number[] = [0x2f];
  let acc = 0, n = 0;
  const put = (v: number, len: number) => { for (let i = 0; i < len; i++) { acc |= ((v >> i) & 1) << n; if (++n === 8) { out.push(acc); acc = 0; n = 0; } } };
  put(w - 1, 14); put(h - 1, 14); put(0, 1); put(0, 3);
  if (subtractGreen) { put(1, 1); put(2, 2); }
  put(0, 1); put(0, 1); put(0, 1); // no more transforms, no colour cache, no meta codes
  const simple = (syms: number[]) => { put(1, 1); put(syms.length - 1, 1); put(1, 1); for (const s of syms) put(s, 8); };
  simple(greens); simple([argb[1]]); simple([argb[2]]); simple([argb[0]]); simple([0]);
  for (const p of pick) put(p, 1);
  if (n) out.push(acc);
  const body = [...ascii('VP8L'), ...le32(out.length), ...out, ...(out.length & 1 ? [0] : [])];
  return Uint8Array.from([...ascii('RIFF'), ...le32(4 + body.length), ...ascii('WEBP'), ...body]);
}

/**
 * A JPEG 2000 codestream whose packets are all empty (no code-block included): every coefficient is zero,
 * so the image is flat mid-gray after the DC level shift. Exercises markers, tiles, tier-2 and the wavelet.
 */
function emptyJ2k(w: number, h: number, comps: number, levels: number, tile: number): Uint8Array {
  const be16 = (v: number) => [v >> 8, v & 255], seg = (m: number, d: number[]) => [0xff, m, ...be16(d.length + 2), ...d];
  const siz = seg(0x51, [0, 0, ...be32(w), ...be32(h), ...be32(0), ...be32(0), ...be32(tile), ...be32(tile), ...be32(0), ...be32(0), ...be16(comps), ...new Array<number>(comps).fill(0).flatMap(() => [7, 1, 1])]);
  const cod = seg(0x52, [0, 0, ...be16(1), comps >= 3 ? 1 : 0, levels, 4, 4, 0, 1]);
  const qcd = seg(0x5c, [0x40, ...new Array<number>(1 + 3 * levels).fill(8 << 3)]);
  const tiles: number[] = [], n = Math.ceil(w / tile) * Math.ceil(h / tile), packets = comps * (levels + 1); // one precinct per resolution
  for (let t = 0; t < n; t++) tiles.push(...seg(0x90, [...be16(t), ...be32(14 + packets), 0, 1]), 0xff, 0x93, ...new Array<number>(packets).fill(0));
  return Uint8Array.from([0xff, 0x4f, ...siz, ...cod, ...qcd, ...tiles, 0xff, 0xd9]);
}

// ---- tests ----

describe('ImageDecoder formats', () => {
  it('BMP: 24-bit bottom-up, 8-bit palette, 32-bit bit fields top-down', async () => {
    const w = 5, h = 3, rgb = pattern(w, h);
    const bgrRow = (y: number) => Array.from({ length: w }, (_, x) => [rgb[(y * w + x) * 3 + 2], rgb[(y * w + x) * 3 + 1], rgb[(y * w + x) * 3]]).flat();
    let t = await decode(bmp(w, h, 24, bgrRow));
    expect(t.shape).toEqual([h, w, 3]);
    expect(px(t)).toEqual(Array.from(rgb));
    const palette = [[10, 20, 30], [200, 100, 0], [1, 2, 3]];
    t = await decode(bmp(3, 2, 8, (y) => [y, (y + 1) % 3, 2], { palette }));
    expect(px(t)).toEqual([10, 20, 30, 200, 100, 0, 1, 2, 3, 200, 100, 0, 1, 2, 3, 1, 2, 3]);
    // 32-bit with masks R=0xff00, G=0xff0000, B=0xff000000 (an unusual layout, to prove masks are honoured)
    t = await decode(bmp(2, 1, 32, () => [0, 11, 22, 33, 0, 44, 55, 66], { topDown: true, masks: [0xff00, 0xff0000, 0xff000000] }));
    expect(px(t)).toEqual([11, 22, 33, 44, 55, 66]);
  });

  it('BMP 16-bit 5-6-5 scales fields to 0..255 by truncation', async () => {
    const v = (31 << 11) | (32 << 5) | 1; // r = 31 -> 255, g = 32 -> 129, b = 1 -> 8
    const t = await decode(bmp(1, 1, 16, () => le16(v), { masks: [0xf800, 0x7e0, 0x1f] }));
    expect(px(t)).toEqual([255, Math.floor((32 * 255) / 63), Math.floor(255 / 31)]);
  });

  it('PNM: raw P6/P5/P4, plain P3 with comments, and maxval rescaling', async () => {
    const rgb = pattern(4, 3);
    expect(px(await decode(Uint8Array.from([...ascii('P6\n4 3\n255\n'), ...rgb])))).toEqual(Array.from(rgb));
    expect(px(await decode(Uint8Array.from([...ascii('P5 2 1 255 '), 7, 9]), 'Grayscale'))).toEqual([7, 9]);
    expect(px(await decode(Uint8Array.from([...ascii('P4\n10 1\n'), 0b10100000, 0b01000000]), 'Grayscale'))).toEqual([0, 255, 0, 255, 255, 255, 255, 255, 255, 0]);
    const plain = await decode(Uint8Array.from(ascii('P3\n# a comment\n2 1\n15\n15 0 7  1 2 3\n')));
    const s = (v: number) => Math.round((v / 15) * 255); // 7/15*255 = 119.0 exactly; no half-way ties here
    expect(px(plain)).toEqual([255, 0, s(7), s(1), s(2), s(3)]);
  });

  it('TIFF: uncompressed chunky and planar RGB, big-endian 16-bit gray, WhiteIsZero', async () => {
    const w = 3, h = 2, rgb = Array.from(pattern(w, h));
    expect(px(await decode(tiff(w, h, 3, 8, rgb)))).toEqual(rgb);
    expect(px(await decode(tiff(w, h, 3, 8, rgb, { planar: true, bigEndian: true })))).toEqual(rgb);
    const g16 = [0x1234, 0xff00, 0x00ff, 0x8000, 1, 0xffff];
    expect(px(await decode(tiff(w, h, 1, 16, g16, { bigEndian: true }), 'Grayscale'))).toEqual(g16.map((v) => v >> 8));
    expect(px(await decode(tiff(2, 1, 1, 8, [0, 200], { photometric: 0 }), 'Grayscale'))).toEqual([255, 55]);
  });

  it('PNG: RGB with every filter type, across several stored blocks', async () => {
    const w = 7, h = 6, rgb = Array.from(pattern(w, h));
    const t = await decode(png(w, h, 2, 8, rgb, { block: 10 }));
    expect(t.shape).toEqual([h, w, 3]);
    expect(px(t)).toEqual(rgb);
  });

  it('PNG: Adam7 interlacing, 2-bit gray scaled up, palette, alpha dropped', async () => {
    const w = 9, h = 10, rgb = Array.from(pattern(w, h));
    expect(px(await decode(png(w, h, 2, 8, rgb, { interlace: true })))).toEqual(rgb);
    const gray2 = Array.from({ length: 12 }, (_, i) => i % 4);
    expect(px(await decode(png(5, 2, 0, 2, gray2.slice(0, 10), { interlace: true }), 'Grayscale'))).toEqual(gray2.slice(0, 10).map((v) => v * 85));
    const pal = [255, 0, 0, 0, 255, 0, 0, 0, 255];
    expect(px(await decode(png(3, 1, 3, 4, [2, 0, 1], { palette: pal })))).toEqual([0, 0, 255, 255, 0, 0, 0, 255, 0]);
    expect(px(await decode(png(2, 1, 6, 8, [1, 2, 3, 0, 4, 5, 6, 99])))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('JPEG: flat blocks through the islow IDCT, 4:2:0 colour conversion, gray', async () => {
    const gray = await decode(flatJpeg(16, 8, [[1, 1]], [[-100, 50]]), 'Grayscale');
    expect(gray.shape).toEqual([8, 16, 1]);
    expect(px(gray)).toEqual(Array.from({ length: 128 }, (_, i) => ((i & 15) < 8 ? 28 : 178)));
    // Y 2x2, Cb and Cr 1x1; Cb = 128 + 40, Cr = 128 - 20, constant so that upsampling is exact.
    const t = await decode(flatJpeg(16, 16, [[2, 2], [1, 1], [1, 1]], [[0, 10, 20, 30], [40], [-20]]));
    const fix = (x: number) => Math.floor(x * 65536 + 0.5), ys = [128, 138, 148, 158];
    const r = (y: number) => y + ((fix(1.402) * -20 + 32768) >> 16), b = (y: number) => y + ((fix(1.772) * 40 + 32768) >> 16);
    const g = (y: number) => y + ((-fix(0.34414) * 40 + 32768 - fix(0.71414) * -20) >> 16);
    const want = Array.from({ length: 256 }, (_, i) => ys[2 * ((i >> 4) >= 8 ? 1 : 0) + ((i & 15) >= 8 ? 1 : 0)]).flatMap((y) => [r(y), g(y), b(y)]);
    expect(px(t)).toEqual(want);
  });

  it('JPEG 2000: empty packets over several tiles decode to mid-gray, with and without RCT', async () => {
    let t = await decode(emptyJ2k(20, 12, 3, 2, 8));
    expect(t.shape).toEqual([12, 20, 3]);
    expect(px(t).every((v) => v === 128)).toBe(true);
    t = await decode(emptyJ2k(9, 5, 1, 1, 16), 'Grayscale');
    expect(t.shape).toEqual([5, 9, 1]);
    expect(px(t).every((v) => v === 128)).toBe(true);
  });

  it('WebP lossless (VP8L): simple codes, with and without subtract-green', async () => {
    const pick = [0, 1, 1, 0, 0, 1], greens = pick.map((p) => (p ? 200 : 10));
    let t = await decode(vp8l(3, 2, [10, 200], pick, [255, 7, 9], false));
    expect(t.shape).toEqual([2, 3, 3]);
    expect(px(t)).toEqual(greens.flatMap((g) => [7, g, 9]));
    t = await decode(vp8l(3, 2, [10, 200], pick, [255, 7, 9], true));
    expect(px(t)).toEqual(greens.flatMap((g) => [(7 + g) & 255, g, (9 + g) & 255]));
  });
});

describe('ImageDecoder pixel formats', () => {
  const rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 30];
  const file = Uint8Array.from([...ascii('P6 4 1 255\n'), ...rgb]);

  it('BGR swaps channels', async () => {
    expect(px(await decode(file, 'BGR'))).toEqual([0, 0, 255, 0, 255, 0, 255, 0, 0, 30, 200, 10]);
  });

  it('Grayscale uses 16-bit fixed-point ITU-R 601 weights with rounding', async () => {
    const t = await decode(file, 'Grayscale');
    expect(t.shape).toEqual([1, 4, 1]);
    const l = (r: number, g: number, b: number) => (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;
    expect(px(t)).toEqual([l(255, 0, 0), l(0, 255, 0), l(0, 0, 255), l(10, 200, 30)]);
  });

  it('a gray source is replicated into RGB', async () => {
    expect(px(await decode(Uint8Array.from([...ascii('P5 2 1 255 '), 5, 250])))).toEqual([5, 5, 5, 250, 250, 250]);
  });

  it('rejects an unknown pixel_format when the session is created', async () => {
    const g = new GraphBuilder();
    g.node('ImageDecoder', [g.input('data', 'uint8', [4])], { pixel_format: 'YUV' }, ['image']);
    g.output('image', 'uint8');
    await expect(InferenceSession.create(g.model({ opset: 20 }))).rejects.toThrow(/pixel_format/);
  });
});

describe('ImageDecoder on bad streams returns an empty image', () => {
  const samples: [string, Uint8Array, number][] = [
    ['bmp', bmp(4, 4, 24, () => new Array<number>(12).fill(9)), 4],
    ['pnm', Uint8Array.from([...ascii('P6 4 4 255\n'), ...pattern(4, 4)]), 4],
    ['tiff', tiff(4, 4, 3, 8, Array.from(pattern(4, 4))), 4],
    ['png', png(4, 4, 2, 8, Array.from(pattern(4, 4))), 4],
    ['jpeg', flatJpeg(16, 16, [[1, 1]], [[1, 2, 3, 4]]), 16],
    ['webp', vp8l(4, 4, [1, 2], new Array<number>(16).fill(1), [255, 3, 4], false), 4],
    ['jpeg2000', emptyJ2k(4, 4, 3, 1, 4), 4],
  ];

  it.each(samples)('%s: the intact sample decodes', async (_name, bytes, side) => {
    expect((await decode(bytes)).shape).toEqual([side, side, 3]);
  });

  it.each(samples)('%s: truncated', async (_name, bytes) => {
    for (const cut of [bytes.length >> 1, bytes.length - 20]) {
      expect((await decode(bytes.subarray(0, cut))).shape).toEqual([0, 0, 3]);
      expect((await decode(bytes.subarray(0, cut), 'Grayscale')).shape).toEqual([0, 0, 1]);
    }
  });

  it('corrupt checksums, bad markers and unknown formats', async () => {
    const p = png(4, 4, 2, 8, Array.from(pattern(4, 4)));
    const badCrc = p.slice(); badCrc[20] ^= 1; // inside IHDR's data
    for (const b of [badCrc, Uint8Array.of(), Uint8Array.from(ascii('GIF89a....')), Uint8Array.of(0xff, 0xd8, 0xff, 0x00)]) {
      expect((await decode(b)).shape).toEqual([0, 0, 3]);
    }
  });

  it('forged huge dimensions fail fast without allocating for them', async () => {
    const forged = [
      Uint8Array.from([...ascii('BM'), ...le32(70), 0, 0, 0, 0, ...le32(54), ...le32(40), ...le32(60000), ...le32(60000), ...le16(1), ...le16(24), ...new Array<number>(40).fill(0)]),
      Uint8Array.from(ascii('P6 16000 16000 255\n\u0000\u0000\u0000')),
      Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10, ...chunk('IHDR', [...be32(16000), ...be32(16000), 8, 2, 0, 0, 0]), ...chunk('IDAT', zlibStored([0, 1, 2, 3])), ...chunk('IEND', [])]),
      patchJpegSize(flatJpeg(16, 16, [[1, 1]], [[1, 2, 3, 4]])),
      vp8l(4, 4, [1, 2], new Array<number>(16).fill(1), [255, 3, 4], false).map((v, i) => (i >= 21 && i <= 23 ? 0xff : i === 24 ? 0x0f : v)),
      emptyJ2k(16000, 16000, 1, 5, 16000),
    ];
    const t0 = performance.now();
    for (const b of forged) expect((await decode(b)).shape).toEqual([0, 0, 3]);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('never hangs or throws on mutated streams', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (const [, bytes] of samples) {
      for (let k = 0; k < 200; k++) {
        const b = bytes.slice();
        for (let i = 0; i < 1 + rnd() * 6; i++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
        const img = decodeImage(b);
        if (img) expect(img.data.length).toBe(img.width * img.height * img.channels);
      }
    }
  });
});

/** The JPEG with its frame header claiming 65535 x 65535 pixels. */
function patchJpegSize(b: Uint8Array): Uint8Array {
  const out = b.slice();
  for (let i = 0; i + 1 < out.length; i++) if (out[i] === 0xff && out[i + 1] === 0xc0) { out.fill(0xff, i + 5, i + 9); break; }
  return out;
}

describe('inflate', () => {
  it('fixed and dynamic Huffman blocks (hand-made streams)', () => {
    // Fixed-code block for "abc": literals 0x61..0x63 are 8-bit codes 0x91..0x93, then end-of-block.
    const bitsOf = (codes: [number, number][]) => {
      const out: number[] = []; let acc = 0, n = 0;
      for (const [v, len] of codes) for (let i = len - 1; i >= 0; i--) { acc |= ((v >> i) & 1) << n; if (++n === 8) { out.push(acc); acc = 0; n = 0; } }
      if (n) out.push(acc);
      return Uint8Array.from(out);
    };
    const lsb = (v: number, len: number): [number, number][] => Array.from({ length: len }, (_, i) => [(v >> i) & 1, 1] as [number, number]);
    const fixed = bitsOf([...lsb(1, 1), ...lsb(1, 2), [0x91, 8], [0x92, 8], [0x93, 8], [0, 7]]);
    expect(Array.from(inflateRaw(fixed, 0, 100).data)).toEqual([0x61, 0x62, 0x63]);
    // Fixed block with a back-reference: "ab" then length 4 distance 2 -> "ababab".
    const ref = bitsOf([...lsb(1, 1), ...lsb(1, 2), [0x91, 8], [0x92, 8], [2, 7], [1, 5], [0, 7]]);
    expect(String.fromCharCode(...inflateRaw(ref, 0, 100).data)).toBe('ababab');
    expect(() => inflateRaw(ref, 0, 4)).toThrow(/larger than expected/);
    expect(() => inflateRaw(ref.subarray(0, 2), 0, 100)).toThrow(/truncated/);
  });

  it('zlib: stored blocks round-trip; a wrong Adler-32 or header is rejected', () => {
    const data = Array.from({ length: 70000 }, (_, i) => (i * 7) & 255), z = zlibStored(data);
    expect(Array.from(inflateZlib(Uint8Array.from(z), 70000))).toEqual(data);
    const bad = z.slice(); bad[bad.length - 1] ^= 1;
    expect(() => inflateZlib(Uint8Array.from(bad), 70000)).toThrow(/checksum/);
    expect(() => inflateZlib(Uint8Array.from([0x78, 0x02, ...z.slice(2)]), 70000)).toThrow(/header/);
  });
});
