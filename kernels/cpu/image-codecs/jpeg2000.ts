// JPEG 2000 Part 1 (ITU T.800): JP2 boxes or a raw codestream; tiles, all five progression orders,
// precincts, tag-tree packet headers with SOP/EPH, EBCOT tier-1 with the MQ decoder (including bypass,
// per-pass termination, context reset, vertically causal and segmentation-symbol code-block styles),
// the reversible 5/3 and irreversible 9/7 wavelets, RCT/ICT and DC level shift. Output matches OpenJPEG
// (the reference decoder's library): truncated code-blocks reconstruct at OpenJPEG's mid-points, and the
// 9/7 path repeats its float32 arithmetic step by step, with its step-size and 2/K high-pass conventions.
// Not supported: POC/PPM/PPT/RGN markers, JP2 palettes, component precision above 16 bits.
import { Bytes, check, checkDims, fail, type DecodedImage } from './common.js';

export const isJpeg2000 = (b: Uint8Array) =>
  (b.length >= 12 && b[0] === 0 && b[1] === 0 && b[2] === 0 && b[3] === 12 && b[4] === 0x6a && b[5] === 0x50) || (b.length >= 4 && b[0] === 0xff && b[1] === 0x4f && b[2] === 0xff && b[3] === 0x51);

// ---- header structures ----

interface Comp { depth: number; signed: boolean; dx: number; dy: number }
interface Siz { x1: number; y1: number; x0: number; y0: number; tw: number; th: number; tx0: number; ty0: number; comps: Comp[] }
interface Cod { sop: boolean; eph: boolean; order: number; layers: number; mct: number; levels: number; xcb: number; ycb: number; style: number; reversible: boolean; pp: [number, number][] }
interface Qcd { style: number; guard: number; steps: [number, number][] }
interface Params { cod: Cod; coc: (Cod | undefined)[]; qcd: Qcd; qcc: (Qcd | undefined)[] }

function readCodingStyle(r: Bytes, p: number, scod: number, withGlobal: boolean, base?: Cod): Cod {
  const g = withGlobal ? { order: r.u8(p), layers: r.u16(p + 1), mct: r.u8(p + 3) } : { order: base!.order, layers: base!.layers, mct: base!.mct };
  const q = withGlobal ? p + 4 : p, levels = r.u8(q), xcb = (r.u8(q + 1) & 15) + 2, ycb = (r.u8(q + 2) & 15) + 2;
  check(levels <= 32 && xcb + ycb <= 12, 'bad JPEG 2000 coding style');
  const pp: [number, number][] = [];
  for (let i = 0; i <= levels; i++) pp.push(scod & 1 ? [r.u8(q + 5 + i) & 15, r.u8(q + 5 + i) >> 4] : [15, 15]);
  check(pp.every(([x, y], i) => !i || (x && y)), 'JPEG 2000 precincts below resolution 0 must be at least 2x2');
  // SOP/EPH are set by COD only; a COC inherits them.
  return { sop: withGlobal ? !!(scod & 2) : base!.sop, eph: withGlobal ? !!(scod & 4) : base!.eph, ...g, levels, xcb, ycb, style: r.u8(q + 3), reversible: r.u8(q + 4) === 1, pp };
}

function readQuant(r: Bytes, p: number, end: number): Qcd {
  const s = r.u8(p), style = s & 31, steps: [number, number][] = [];
  check(style <= 2, 'bad JPEG 2000 quantization style');
  if (style === 0) for (let i = p + 1; i < end; i++) steps.push([r.u8(i) >> 3, 0]);
  else for (let i = p + 1; i + 1 < end; i += 2) steps.push([r.u16(i) >> 11, r.u16(i) & 2047]);
  check(steps.length > 0, 'empty JPEG 2000 quantization');
  return { style, guard: s >> 5, steps };
}

/** The codestream inside a JP2 file (its jp2c box), or the input itself when it is a raw codestream. */
function codestream(b: Uint8Array): Uint8Array {
  if (b[0] === 0xff) return b;
  const r = new Bytes(b, false);
  for (let p = 0; p + 8 <= b.length;) {
    let len = r.u32(p), hdr = 8;
    const type = String.fromCharCode(...b.subarray(p + 4, p + 8));
    if (len === 1) { len = r.u32(p + 8) * 2 ** 32 + r.u32(p + 12); hdr = 16; } else if (len === 0) len = b.length - p;
    check(len >= hdr && p + len <= b.length, 'bad JP2 box');
    if (type === 'jp2c') return b.subarray(p + hdr, p + len);
    if (type === 'jp2h') check(!findBox(b, p + hdr, p + len, 'pclr'), 'JP2 palettes are not supported');
    p += len;
  }
  return fail('JP2 has no codestream');
}

function findBox(b: Uint8Array, p: number, end: number, want: string): boolean {
  const r = new Bytes(b, false);
  for (; p + 8 <= end; ) {
    const len = r.u32(p);
    if (String.fromCharCode(...b.subarray(p + 4, p + 8)) === want) return true;
    if (len < 8) return false;
    p += len;
  }
  return false;
}

interface Tile { parts: Uint8Array[]; params: Params }

function parse(cs: Uint8Array): { siz: Siz; tiles: Map<number, Tile> } {
  const r = new Bytes(cs, false);
  check(r.u16(0) === 0xff4f && r.u16(2) === 0xff51, 'bad JPEG 2000 codestream start');
  let siz: Siz | undefined, main: Partial<Params> = { coc: [], qcc: [] };
  const tiles = new Map<number, Tile>();
  let p = 2, tile: Tile | undefined, tileEnd = 0;
  while (p + 2 <= cs.length) {
    const m = r.u16(p);
    if (m === 0xffd9) break;
    if (m === 0xff93) { // SOD: the tile-part's data runs to the end given by SOT
      check(tile, 'SOD outside a tile');
      tile.parts.push(cs.subarray(p + 2, tileEnd));
      p = tileEnd; tile = undefined;
      continue;
    }
    const len = r.u16(p + 2), end = p + 2 + len;
    check(len >= 2 && end <= cs.length, 'bad JPEG 2000 marker segment');
    const prm = tile ? tile.params : main;
    switch (m) {
      case 0xff51: siz = readSiz(r, p + 4); break;
      case 0xff52: prm.cod = readCodingStyle(r, p + 5, r.u8(p + 4), true); break;
      case 0xff53: { const c = siz!.comps.length < 257 ? r.u8(p + 4) : r.u16(p + 4), q = siz!.comps.length < 257 ? p + 5 : p + 6; prm.coc![c] = readCodingStyle(r, q + 1, r.u8(q), false, prm.cod ?? main.cod); break; }
      case 0xff5c: prm.qcd = readQuant(r, p + 4, end); break;
      case 0xff5d: { const wide = siz!.comps.length >= 257, c = wide ? r.u16(p + 4) : r.u8(p + 4); prm.qcc![c] = readQuant(r, p + (wide ? 6 : 5), end); break; }
      case 0xff90: { // SOT
        check(siz && main.cod && main.qcd, 'JPEG 2000 tile before the main header is complete');
        const idx = r.u16(p + 4), psot = r.u32(p + 6);
        tileEnd = psot ? p + psot : cs.length;
        check(tileEnd <= cs.length || psot === 0, 'JPEG 2000 tile-part runs past the end');
        tileEnd = Math.min(tileEnd, cs.length);
        if (!tiles.has(idx)) tiles.set(idx, { parts: [], params: { cod: main.cod!, coc: [...main.coc!], qcd: main.qcd!, qcc: [...main.qcc!] } });
        tile = tiles.get(idx)!;
        break;
      }
      case 0xff5e: case 0xff5f: case 0xff60: case 0xff61: fail('JPEG 2000 RGN/POC/PPM/PPT markers are not supported');
    }
    p = end;
  }
  check(siz && tiles.size, 'JPEG 2000 codestream has no tiles');
  return { siz, tiles };
}

function readSiz(r: Bytes, p: number): Siz {
  const n = r.u16(p + 34);
  check(n >= 1 && n <= 16384, 'bad JPEG 2000 component count');
  const comps = Array.from({ length: n }, (_, i) => {
    const s = r.u8(p + 36 + 3 * i);
    return { depth: (s & 127) + 1, signed: !!(s & 128), dx: r.u8(p + 37 + 3 * i), dy: r.u8(p + 38 + 3 * i) };
  });
  const siz = { x1: r.u32(p + 2), y1: r.u32(p + 6), x0: r.u32(p + 10), y0: r.u32(p + 14), tw: r.u32(p + 18), th: r.u32(p + 22), tx0: r.u32(p + 26), ty0: r.u32(p + 30), comps };
  check(comps.every((c) => c.depth <= 16 && c.dx >= 1 && c.dy >= 1) && siz.tw > 0 && siz.th > 0 && siz.x0 < siz.x1 && siz.y0 < siz.y1, 'bad JPEG 2000 image size');
  checkDims(siz.x1 - siz.x0, siz.y1 - siz.y0);
  return siz;
}

// ---- geometry ----

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

interface CodeBlock {
  x0: number; y0: number; x1: number; y1: number; // in band coordinates
  included: boolean; lblock: number; zbp: number; passes: number; segs: { data: Uint8Array[]; passes: number }[];
}
interface Precinct { blocks: CodeBlock[][]; incl: TagTree[]; zbp: TagTree[]; cw: number[]; ch: number[] }
interface Band { kind: number; x0: number; y0: number; x1: number; y1: number; mb: number; step: number; data: Float32Array | Int32Array }
interface Res { x0: number; y0: number; x1: number; y1: number; pw: number; ph: number; ppx: number; ppy: number; bands: Band[]; precincts: Precinct[] }
interface TileComp { x0: number; y0: number; x1: number; y1: number; cod: Cod; res: Res[] }

class TagTree {
  private levels: { w: number; h: number; value: Int32Array; low: Int32Array }[] = [];
  constructor(w: number, h: number) {
    for (;;) {
      this.levels.push({ w, h, value: new Int32Array(w * h).fill(1 << 30), low: new Int32Array(w * h) });
      if (w === 1 && h === 1) break;
      w = ceilDiv(w, 2); h = ceilDiv(h, 2);
    }
  }
  /** Decodes toward `threshold`; true when the leaf's value is below it. */
  decode(br: HeaderBits, x: number, y: number, threshold: number): boolean {
    let low = 0;
    for (let l = this.levels.length - 1; l >= 0; l--) {
      const L = this.levels[l], i = (y >> l) * L.w + (x >> l);
      if (low > L.low[i]) L.low[i] = low; else low = L.low[i];
      while (low < threshold && low < L.value[i]) { if (br.bit()) L.value[i] = low; else low++; }
      L.low[i] = low;
    }
    return this.levels[0].value[y * this.levels[0].w + x] < threshold;
  }
  value(x: number, y: number) { return this.levels[0].value[y * this.levels[0].w + x]; }
}

/** Packet-header bits: MSB first, a byte after 0xFF carries only 7 bits. */
class HeaderBits {
  buf = 0; ct = 0;
  constructor(readonly b: Uint8Array, public pos: number) {}
  bit(): number {
    if (this.ct === 0) {
      this.buf = (this.buf << 8) & 0xffff;
      this.ct = this.buf === 0xff00 ? 7 : 8;
      check(this.pos < this.b.length, 'JPEG 2000 packet header is truncated');
      this.buf |= this.b[this.pos++];
    }
    return (this.buf >> --this.ct) & 1;
  }
  bits(n: number): number { let v = 0; while (n--) v = (v << 1) | this.bit(); return v; }
  align() { if ((this.buf & 0xff) === 0xff) { this.buf = 0; this.ct = 0; this.pos++; } this.ct = 0; }
}

function tileComponent(siz: Siz, prm: Params, t: number, c: number): TileComp {
  const nx = ceilDiv(siz.x1 - siz.tx0, siz.tw), tx = t % nx, ty = Math.floor(t / nx), comp = siz.comps[c];
  const tx0 = Math.max(siz.tx0 + tx * siz.tw, siz.x0), tx1 = Math.min(siz.tx0 + (tx + 1) * siz.tw, siz.x1);
  const ty0 = Math.max(siz.ty0 + ty * siz.th, siz.y0), ty1 = Math.min(siz.ty0 + (ty + 1) * siz.th, siz.y1);
  const cod = prm.coc[c] ?? prm.cod, qcd = prm.qcc[c] ?? prm.qcd;
  const tc = { x0: ceilDiv(tx0, comp.dx), y0: ceilDiv(ty0, comp.dy), x1: ceilDiv(tx1, comp.dx), y1: ceilDiv(ty1, comp.dy), cod, res: [] as Res[] };
  const N = cod.levels;
  for (let r = 0; r <= N; r++) {
    const s = 2 ** (N - r), [ppx, ppy] = cod.pp[r];
    const res: Res = { x0: ceilDiv(tc.x0, s), y0: ceilDiv(tc.y0, s), x1: ceilDiv(tc.x1, s), y1: ceilDiv(tc.y1, s), pw: 0, ph: 0, ppx, ppy, bands: [], precincts: [] };
    res.pw = res.x1 > res.x0 ? ceilDiv(res.x1, 2 ** ppx) - Math.floor(res.x0 / 2 ** ppx) : 0;
    res.ph = res.y1 > res.y0 ? ceilDiv(res.y1, 2 ** ppy) - Math.floor(res.y0 / 2 ** ppy) : 0;
    const kinds = r === 0 ? [0] : [1, 2, 3], nb = r === 0 ? N : N - r + 1;
    for (const kind of kinds) {
      const xo = kind & 1, yo = kind >> 1, d = 2 ** nb, o = 2 ** (nb - 1);
      const band = r === 0 ? { x0: ceilDiv(tc.x0, d), y0: ceilDiv(tc.y0, d), x1: ceilDiv(tc.x1, d), y1: ceilDiv(tc.y1, d) }
        : { x0: ceilDiv(tc.x0 - o * xo, d), y0: ceilDiv(tc.y0 - o * yo, d), x1: ceilDiv(tc.x1 - o * xo, d), y1: ceilDiv(tc.y1 - o * yo, d) };
      const qi = r === 0 ? 0 : 3 * (r - 1) + kind, [eps, mu] = qcd.style === 1 ? [qcd.steps[0][0] - N + nb, qcd.steps[0][1]] : qcd.steps[qi] ?? fail('missing JPEG 2000 quantization step');
      // OpenJPEG drops the band gain from the 9/7 step size and doubles its high-pass synthesis scale instead.
      res.bands.push({ kind, ...band, mb: qcd.guard + eps - 1, step: Math.fround((2 ** (comp.depth - eps)) * (1 + mu / 2048)), data: cod.reversible ? new Int32Array(0) : new Float32Array(0) });
    }
    res.precincts = precincts(res, cod, r);
    tc.res.push(res);
  }
  return tc;
}

function precincts(res: Res, cod: Cod, r: number): Precinct[] {
  const out: Precinct[] = [], px0 = Math.floor(res.x0 / 2 ** res.ppx), py0 = Math.floor(res.y0 / 2 ** res.ppy);
  const sub = r === 0 ? 0 : 1, xcb = Math.min(cod.xcb, res.ppx - sub), ycb = Math.min(cod.ycb, res.ppy - sub), cw = 2 ** xcb, ch = 2 ** ycb;
  for (let j = 0; j < res.ph; j++) {
    for (let i = 0; i < res.pw; i++) {
      const P: Precinct = { blocks: [], incl: [], zbp: [], cw: [], ch: [] };
      for (const b of res.bands) {
        // The precinct's area in this band, clipped to the band, split on the code-block grid.
        const pw = 2 ** (res.ppx - sub), ph = 2 ** (res.ppy - sub);
        const x0 = Math.max(b.x0, (px0 + i) * pw), x1 = Math.min(b.x1, (px0 + i + 1) * pw), y0 = Math.max(b.y0, (py0 + j) * ph), y1 = Math.min(b.y1, (py0 + j + 1) * ph);
        const bx0 = Math.floor(x0 / cw), by0 = Math.floor(y0 / ch), nw = x1 > x0 ? ceilDiv(x1, cw) - bx0 : 0, nh = y1 > y0 ? ceilDiv(y1, ch) - by0 : 0;
        const blocks: CodeBlock[] = [];
        for (let v = 0; v < nh; v++) {
          for (let u = 0; u < nw; u++) {
            blocks.push({ x0: Math.max(x0, (bx0 + u) * cw), x1: Math.min(x1, (bx0 + u + 1) * cw), y0: Math.max(y0, (by0 + v) * ch), y1: Math.min(y1, (by0 + v + 1) * ch), included: false, lblock: 3, zbp: 0, passes: 0, segs: [] });
          }
        }
        P.blocks.push(blocks); P.cw.push(nw); P.ch.push(nh);
        P.incl.push(new TagTree(Math.max(nw, 1), Math.max(nh, 1))); P.zbp.push(new TagTree(Math.max(nw, 1), Math.max(nh, 1)));
      }
      out.push(P);
    }
  }
  return out;
}

// ---- tier 2: packets ----

/** End (exclusive) of the codeword segment holding pass `n`: per-pass termination, or bypass's 10 | 2,1 | 2,1 ... split. */
function segmentEnd(style: number, n: number): number {
  if (style & 4) return n + 1;
  if (!(style & 1)) return 1 << 30;
  return n < 10 ? 10 : (n - 10) % 3 === 0 ? n + 2 : n + 1;
}

function readPasses(br: HeaderBits): number {
  if (!br.bit()) return 1;
  if (!br.bit()) return 2;
  const a = br.bits(2);
  if (a < 3) return 3 + a;
  const b = br.bits(5);
  return b < 31 ? 6 + b : 37 + br.bits(7);
}

function packet(data: Uint8Array, pos: number, P: Precinct, layer: number, cod: Cod): number {
  if (cod.sop && pos + 6 <= data.length && data[pos] === 0xff && data[pos + 1] === 0x91) pos += 6;
  const br = new HeaderBits(data, pos), pending: [CodeBlock, number[]][] = [];
  if (br.bit()) {
    for (let b = 0; b < P.blocks.length; b++) {
      for (let k = 0; k < P.blocks[b].length; k++) {
        const cb = P.blocks[b][k], x = k % P.cw[b], y = Math.floor(k / P.cw[b]);
        const inc = cb.included ? !!br.bit() : P.incl[b].decode(br, x, y, layer + 1);
        if (!inc) continue;
        if (!cb.included) {
          let t = 1;
          while (!P.zbp[b].decode(br, x, y, t)) t++;
          cb.zbp = P.zbp[b].value(x, y); cb.included = true;
        }
        const n = readPasses(br);
        while (br.bit()) cb.lblock++;
        // One length per codeword segment the new passes touch.
        const lens: number[] = [];
        for (let s = cb.passes, end = cb.passes + n; s < end;) {
          const k2 = Math.min(segmentEnd(cod.style, s), end) - s, fresh = s === 0 || segmentEnd(cod.style, s - 1) === s ? 1 : 0;
          lens.push(br.bits(cb.lblock + Math.floor(Math.log2(k2))), k2, fresh);
          s += k2;
        }
        pending.push([cb, lens]);
      }
    }
  }
  br.align();
  pos = br.pos;
  if (cod.eph && data[pos] === 0xff && data[pos + 1] === 0x92) pos += 2;
  for (const [cb, lens] of pending) {
    for (let i = 0; i < lens.length; i += 3) {
      const [len, k, fresh] = [lens[i], lens[i + 1], lens[i + 2]];
      check(pos + len <= data.length, 'JPEG 2000 packet data is truncated');
      if (fresh) cb.segs.push({ data: [], passes: 0 });
      const seg = cb.segs[cb.segs.length - 1];
      seg.data.push(data.subarray(pos, pos + len)); seg.passes += k; cb.passes += k;
      pos += len;
    }
  }
  return pos;
}

/** All packets of a tile in its progression order: [layer, resolution, component, precinct]. */
function packetOrder(siz: Siz, tcs: TileComp[], layers: number, order: number, t: number, size: number): number[][] {
  // Every packet takes at least a byte, so a stream cannot hold more packets than bytes (allow for truncation).
  const total = tcs.reduce((n, tc) => n + tc.res.reduce((m, r) => m + r.pw * r.ph, 0), 0) * layers;
  check(total <= 4 * size + 65536, 'JPEG 2000 packet count is too large for the stream');
  const list: { key: number[]; p: number[] }[] = [];
  const nx = ceilDiv(siz.x1 - siz.tx0, siz.tw), tx0 = Math.max(siz.tx0 + (t % nx) * siz.tw, siz.x0), ty0 = Math.max(siz.ty0 + Math.floor(t / nx) * siz.th, siz.y0);
  tcs.forEach((tc, c) => tc.res.forEach((res, r) => {
    const N = tc.cod.levels, comp = siz.comps[c];
    for (let k = 0; k < res.pw * res.ph; k++) {
      // Reference-grid origin of the precinct; the first one in a row/column starts at the tile's edge.
      const i = k % res.pw, j = Math.floor(k / res.pw);
      const gx = i === 0 ? tx0 : (Math.floor(res.x0 / 2 ** res.ppx) + i) * 2 ** (res.ppx + N - r) * comp.dx;
      const gy = j === 0 ? ty0 : (Math.floor(res.y0 / 2 ** res.ppy) + j) * 2 ** (res.ppy + N - r) * comp.dy;
      for (let l = 0; l < layers; l++) {
        const key = [[l, r, c, k], [r, l, c, k], [r, gy, gx, c, l], [gy, gx, c, r, l], [c, gy, gx, r, l]][order] ?? fail('bad JPEG 2000 progression order');
        list.push({ key, p: [l, r, c, k] });
      }
    }
  }));
  list.sort((a, b) => { for (let i = 0; i < a.key.length; i++) if (a.key[i] !== b.key[i]) return a.key[i] - b.key[i]; return 0; });
  return list.map((e) => e.p);
}

// ---- tier 1: MQ decoder and coefficient bit modelling ----

const QE = [0x5601, 0x3401, 0x1801, 0x0ac1, 0x0521, 0x0221, 0x5601, 0x5401, 0x4801, 0x3801, 0x3001, 0x2401, 0x1c01, 0x1601, 0x5601, 0x5401,
  0x5101, 0x4801, 0x3801, 0x3401, 0x3001, 0x2801, 0x2401, 0x2201, 0x1c01, 0x1801, 0x1601, 0x1401, 0x1201, 0x1101, 0x0ac1, 0x09c1,
  0x08a1, 0x0521, 0x0441, 0x02a1, 0x0221, 0x0141, 0x0111, 0x0085, 0x0049, 0x0025, 0x0015, 0x0009, 0x0005, 0x0001, 0x5601];
const NMPS = [1, 2, 3, 4, 5, 38, 7, 8, 9, 10, 11, 12, 13, 29, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
  33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 45, 46];
const NLPS = [1, 6, 9, 12, 29, 33, 6, 14, 14, 14, 17, 18, 20, 21, 14, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
  30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 46];
const SWITCH = [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];

const RL = 17, UNI = 18;

class MQ {
  a = 0x8000; c = 0; ct = 0; pos = 0;
  state = new Uint8Array(19); mps = new Uint8Array(19);
  data: Uint8Array = new Uint8Array(0);
  constructor() { this.resetContexts(); }
  resetContexts() { this.state.fill(0); this.mps.fill(0); this.state[0] = 4; this.state[RL] = 3; this.state[UNI] = 46; }
  /** Bytes past the segment read as 0xFF, as an appended marker would. */
  private at(i: number) { return i < this.data.length ? this.data[i] : 0xff; }
  init(data: Uint8Array) {
    this.data = data; this.pos = 0; this.c = this.at(0) << 16;
    this.byteIn(); this.c = (this.c << 7) >>> 0; this.ct -= 7; this.a = 0x8000;
  }
  private byteIn() {
    if (this.at(this.pos) === 0xff) {
      if (this.at(this.pos + 1) > 0x8f) { this.c = (this.c + 0xff00) >>> 0; this.ct = 8; } else { this.pos++; this.c = (this.c + (this.at(this.pos) << 9)) >>> 0; this.ct = 7; }
    } else { this.pos++; this.c = (this.c + (this.at(this.pos) << 8)) >>> 0; this.ct = 8; }
  }
  private renorm() {
    do {
      if (this.ct === 0) this.byteIn();
      this.a = (this.a << 1) & 0xffff; this.c = (this.c << 1) >>> 0; this.ct--;
    } while (!(this.a & 0x8000));
  }
  decode(cx: number): number {
    const i = this.state[cx], qe = QE[i];
    let d: number;
    this.a -= qe;
    if (this.c >>> 16 < qe) { // the LPS sub-interval is the lower one
      if (this.a < qe) { this.a = qe; d = this.mps[cx]; this.state[cx] = NMPS[i]; } else { this.a = qe; d = 1 - this.mps[cx]; if (SWITCH[i]) this.mps[cx] = d; this.state[cx] = NLPS[i]; }
    } else {
      this.c = (this.c - (qe << 16)) >>> 0;
      if (this.a & 0x8000) return this.mps[cx];
      if (this.a < qe) { d = 1 - this.mps[cx]; if (SWITCH[i]) this.mps[cx] = d; this.state[cx] = NLPS[i]; } else { d = this.mps[cx]; this.state[cx] = NMPS[i]; }
    }
    this.renorm();
    return d;
  }
}

/** Raw (bypass) segment bits: MSB first, the bit after 0xFF stuffed. */
class Raw {
  c = 0; ct = 0; pos = 0;
  constructor(readonly data: Uint8Array) {}
  bit(): number {
    if (this.ct === 0) {
      const b = this.pos < this.data.length ? this.data[this.pos] : 0xff;
      if (this.c === 0xff) { if (b > 0x8f) { this.c = 0xff; this.ct = 8; } else { this.c = b; this.pos++; this.ct = 7; } } else { this.c = b; this.pos++; this.ct = 8; }
    }
    return (this.c >> --this.ct) & 1;
  }
}

// Zero-coding contexts from the counts of significant horizontal (h), vertical (v) and diagonal (d)
// neighbours: LL and LH bands weigh h first, HL swaps h and v, HH weighs d first. Tabulated per band kind
// at index h * 15 + v * 5 + d.
const zcLow = (h: number, v: number, d: number) => (h === 2 ? 8 : h === 1 ? (v ? 7 : d ? 6 : 5) : v === 2 ? 4 : v === 1 ? 3 : d >= 2 ? 2 : d);
const zcHH = (h: number, v: number, d: number) => { const hv = h + v; return d >= 3 ? 8 : d === 2 ? (hv ? 7 : 6) : d === 1 ? (hv >= 2 ? 5 : hv ? 4 : 3) : hv >= 2 ? 2 : hv; };
const ZC = [0, 1, 2, 3].map((kind) => Uint8Array.from({ length: 45 }, (_, i) => {
  const h = Math.floor(i / 15), v = Math.floor(i / 5) % 3, d = i % 5;
  return kind === 3 ? zcHH(h, v, d) : kind === 1 ? zcLow(v, h, d) : zcLow(h, v, d);
}));
/** Sign contexts by (H + 1) * 3 + (V + 1), H and V the clamped neighbour sign sums: context << 1 | xor bit. */
const SC = Uint8Array.from([13 << 1 | 1, 12 << 1 | 1, 11 << 1 | 1, 10 << 1 | 1, 9 << 1, 10 << 1, 11 << 1, 12 << 1, 13 << 1]);

const SIG = 1, VISITED = 2, REFINED = 4, NEG = 8;

/**
 * Decodes one code-block's passes into `out` (w x h, row-major) as values in OpenJPEG's doubled domain:
 * magnitudes carry one extra fractional bit so truncated blocks reconstruct at interval mid-points.
 * `nb` keeps each coefficient's zero-coding table index (15 per significant horizontal neighbour, 5 per
 * vertical, 1 per diagonal), updated as coefficients become significant.
 */
function decodeBlock(cb: CodeBlock, kind: number, mb: number, style: number, w: number, h: number, out: Int32Array) {
  const W = w + 2, flags = new Uint8Array(W * (h + 2)), nb = new Uint8Array(flags.length), mq = new MQ(), causal = !!(style & 8), zcT = ZC[kind];
  let plane = mb - 1 - cb.zbp, seg = 0, segLeft = 0, raw: Raw | undefined;
  check(plane < 30, 'JPEG 2000 code-block has too many bit-planes');
  const sgn = (j: number) => (flags[j] & SIG ? (flags[j] & NEG ? -1 : 1) : 0);
  const decodeSign = (i: number, x: number, y: number, p: number) => {
    // Vertically causal mode ignores the stripe below (for a stripe's last row) and hides this row from the stripe above.
    const below = !(causal && (y & 3) === 3), above = !(causal && (y & 3) === 0);
    const H = sgn(i - 1) + sgn(i + 1), V = sgn(i - W) + (below ? sgn(i + W) : 0);
    const sc = SC[(H < -1 ? -1 : H > 1 ? 1 : H) * 3 + (V < -1 ? -1 : V > 1 ? 1 : V) + 4], neg = raw ? raw.bit() : mq.decode(sc >> 1) ^ (sc & 1);
    flags[i] |= SIG | (neg ? NEG : 0);
    out[y * w + x] = neg ? -(3 << p) : 3 << p; // 1.5 * 2^(p+1): the mid-point in the doubled domain
    nb[i - 1] += 15; nb[i + 1] += 15; nb[i + W] += 5; nb[i + W - 1]++; nb[i + W + 1]++;
    if (above) { nb[i - W] += 5; nb[i - W - 1]++; nb[i - W + 1]++; }
  };
  const bit = (cx: number) => (raw ? raw.bit() : mq.decode(cx));
  for (let n = 0, pass = 2; n < cb.passes && plane >= 0; n++, pass = pass === 2 ? 0 : pass + 1) { // cleanup, then significance/refinement/cleanup
    if (segLeft === 0) { // next codeword segment: a fresh MQ or raw decoder on its bytes
      const sg = cb.segs[seg++];
      segLeft = sg.passes;
      if (style & 1 && n >= 10 && pass !== 2) raw = new Raw(concat(sg.data)); // bypass: raw significance/refinement passes
      else { raw = undefined; mq.init(concat(sg.data)); }
    }
    segLeft--;
    const p = plane;
    for (let y0 = 0; y0 < h; y0 += 4) {
      const y1 = Math.min(y0 + 4, h);
      for (let x = 0; x < w; x++) {
        let i = (y0 + 1) * W + x + 1;
        if (pass === 0) { // significance propagation: insignificant coefficients with a significant neighbour
          for (let y = y0; y < y1; y++, i += W) {
            if (flags[i] & SIG || !nb[i]) continue;
            flags[i] |= VISITED;
            if (bit(zcT[nb[i]])) decodeSign(i, x, y, p);
          }
        } else if (pass === 1) { // magnitude refinement of coefficients significant before this plane
          for (let y = y0; y < y1; y++, i += W) {
            const f = flags[i];
            if ((f & (SIG | VISITED)) !== SIG) continue;
            const up = bit(f & REFINED ? 16 : nb[i] ? 15 : 14), o = y * w + x, v = out[o];
            out[o] = v + ((v < 0) !== !!up ? 1 << p : -(1 << p)); // toward the new interval's mid-point
            flags[i] |= REFINED;
          }
        } else { // cleanup, with run-length coding of quiet full columns
          let y = y0;
          if (y1 - y0 === 4 && !(flags[i] | flags[i + W] | flags[i + 2 * W] | flags[i + 3 * W]) && !(nb[i] | nb[i + W] | nb[i + 2 * W] | nb[i + 3 * W])) {
            if (!mq.decode(RL)) continue;
            y += (mq.decode(UNI) << 1) | mq.decode(UNI);
            i += (y - y0) * W;
            decodeSign(i, x, y, p);
            y++; i += W;
          }
          for (; y < y1; y++, i += W) {
            if (flags[i] & (SIG | VISITED)) continue;
            if (mq.decode(zcT[nb[i]])) decodeSign(i, x, y, p);
          }
        }
      }
    }
    if (pass === 2) {
      if (style & 32) for (let k = 0; k < 4; k++) mq.decode(UNI); // segmentation symbol
      for (let i = 0; i < flags.length; i++) flags[i] &= ~VISITED;
      plane--;
    }
    if (style & 2) mq.resetContexts();
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

// ---- wavelet synthesis ----

/** One 1-D synthesis on x[0..n) whose first sample sits at absolute coordinate `start` (parity picks low/high). */
function synth53(x: Float32Array | Int32Array, n: number, start: number) {
  if (n === 1) { if (start & 1) x[0] = Math.trunc(x[0] / 2); return; }
  const e = (i: number) => x[i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i], odd = start & 1;
  for (let i = odd; i < n; i += 2) x[i] -= Math.floor((e(i - 1) + e(i + 1) + 2) / 4);
  for (let i = 1 - odd; i < n; i += 2) x[i] += Math.floor((e(i - 1) + e(i + 1)) / 2);
}

// 9/7 lifting in float32 with OpenJPEG's constants (its high-pass scale is 2/K; see the step sizes).
const f32 = Math.fround;
const LIFT = [-0.443506852, -0.882911075, 0.052980118, 1.586134342].map(f32), K = f32(1.230174105), TWO_INV_K = f32(1.625732422);

function synth97(x: Float32Array | Int32Array, n: number, start: number) {
  if (n === 1) return; // a lone sample passes through: the step sizes already account for it
  const e = (i: number) => x[i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i], odd = start & 1;
  for (let i = odd; i < n; i += 2) x[i] = f32(x[i] * K);
  for (let i = 1 - odd; i < n; i += 2) x[i] = f32(x[i] * TWO_INV_K);
  for (let s = 0; s < 4; s++) {
    const c = LIFT[s];
    for (let i = s & 1 ? 1 - odd : odd; i < n; i += 2) x[i] = f32(x[i] + f32(f32(e(i - 1) + e(i + 1)) * c));
  }
}

/** Rebuilds the tile-component from its bands, level by level (rows, then columns). */
function inverseDwt(tc: TileComp): Float32Array | Int32Array {
  const rev = tc.cod.reversible, Arr = rev ? Int32Array : Float32Array, synth = rev ? synth53 : synth97;
  let cur = tc.res[0].bands[0].data, cw = tc.res[0].x1 - tc.res[0].x0;
  for (let r = 1; r < tc.res.length; r++) {
    const R = tc.res[r], w = R.x1 - R.x0, h = R.y1 - R.y0, img = new Arr(w * h), [hl, lh, hh] = R.bands;
    // Interleave: low samples on even absolute coordinates, high on odd.
    const lx = (x: number) => ((R.x0 + x) & 1 ? -1 : ((R.x0 + x) >> 1) - Math.ceil(R.x0 / 2)), hx = (x: number) => ((R.x0 + x) >> 1) - Math.floor(R.x0 / 2);
    const ly = (y: number) => ((R.y0 + y) & 1 ? -1 : ((R.y0 + y) >> 1) - Math.ceil(R.y0 / 2)), hy = (y: number) => ((R.y0 + y) >> 1) - Math.floor(R.y0 / 2);
    const hw = hl.x1 - hl.x0, lhw = lh.x1 - lh.x0, hhw = hh.x1 - hh.x0;
    for (let y = 0; y < h; y++) {
      const yl = ly(y), yh = hy(y);
      for (let x = 0; x < w; x++) {
        const xl = lx(x), xh = hx(x);
        img[y * w + x] = yl >= 0 ? (xl >= 0 ? cur[yl * cw + xl] : hl.data[yl * hw + xh]) : xl >= 0 ? lh.data[yh * lhw + xl] : hh.data[yh * hhw + xh];
      }
    }
    const line = new Arr(Math.max(w, h));
    if (w > 0) for (let y = 0; y < h; y++) { line.set(img.subarray(y * w, y * w + w)); synth(line, w, R.x0); img.set(line.subarray(0, w), y * w); }
    if (h > 0) for (let x = 0; x < w; x++) { for (let y = 0; y < h; y++) line[y] = img[y * w + x]; synth(line, h, R.y0); for (let y = 0; y < h; y++) img[y * w + x] = line[y]; }
    cur = img; cw = w;
  }
  return cur;
}

// ---- putting a tile together ----

function decodeTile(siz: Siz, t: number, tile: Tile): TileComp[] {
  const tcs = siz.comps.map((_, c) => tileComponent(siz, tile.params, t, c)), cod = tile.params.cod;
  const data = concat(tile.parts);
  let pos = 0;
  for (const [l, r, c, k] of packetOrder(siz, tcs, cod.layers, cod.order, t, data.length)) {
    if (pos >= data.length) break; // missing trailing packets: decode what arrived
    const tc = tcs[c];
    if (l >= tc.cod.layers) continue;
    pos = packet(data, pos, tc.res[r].precincts[k], l, tc.cod);
  }
  // Tier-1 work is passes x area; real streams stay near 3 passes per bit-plane per sample.
  let work = 0, budget = 2 ** 20;
  for (const tc of tcs) budget += 64 * (tc.x1 - tc.x0) * (tc.y1 - tc.y0);
  for (const tc of tcs) for (const R of tc.res) for (const P of R.precincts) for (const bl of P.blocks) for (const cb of bl) work += cb.passes * (cb.x1 - cb.x0) * (cb.y1 - cb.y0);
  check(work <= budget, 'JPEG 2000 code-blocks claim more coding passes than the image can use');
  for (const tc of tcs) {
    for (const R of tc.res) {
      for (let b = 0; b < R.bands.length; b++) {
        const B = R.bands[b], bw = B.x1 - B.x0, bh = B.y1 - B.y0;
        B.data = tc.cod.reversible ? new Int32Array(bw * bh) : new Float32Array(bw * bh);
        for (const P of R.precincts) for (const cb of P.blocks[b]) blockToBand(cb, B, tc.cod, bw);
      }
    }
  }
  return tcs;
}

function blockToBand(cb: CodeBlock, B: Band, cod: Cod, bw: number) {
  const w = cb.x1 - cb.x0, h = cb.y1 - cb.y0;
  if (!cb.passes || w <= 0 || h <= 0) return;
  const out = new Int32Array(w * h);
  decodeBlock(cb, B.kind, B.mb, cod.style, w, h, out);
  const d = B.data, half = B.step / 2;
  for (let y = 0; y < h; y++) {
    const o = (cb.y0 - B.y0 + y) * bw + cb.x0 - B.x0, r = y * w;
    if (d instanceof Int32Array) for (let x = 0; x < w; x++) d[o + x] = (out[r + x] / 2) | 0; // truncating, as C's division
    else for (let x = 0; x < w; x++) d[o + x] = f32(f32(out[r + x]) * half); // float32, as OpenJPEG
  }
}

export function decodeJpeg2000(b: Uint8Array): DecodedImage {
  check(isJpeg2000(b), 'not a JPEG 2000 stream');
  const { siz, tiles } = parse(codestream(b)), W = siz.x1 - siz.x0, H = siz.y1 - siz.y0, nc = siz.comps.length;
  // Empty packets make huge images cheap to describe; demand some bytes per sample beyond a few megapixels.
  const samples = siz.comps.reduce((n, c) => n + ceilDiv(W, c.dx) * ceilDiv(H, c.dy), 0);
  check(samples <= Math.max(2 ** 22, 4096 * b.length), 'JPEG 2000 dimensions are too large for the stream');
  const out = nc >= 3 ? 3 : 1, data = new Uint8Array(W * H * out);
  for (const [t, tile] of tiles) {
    const tcs = decodeTile(siz, t, tile), planes = tcs.map(inverseDwt);
    if (tile.params.cod.mct && nc >= 3) inverseMct(planes, tile.params.cod.reversible);
    for (let c = 0; c < out; c++) writeComponent(siz, c, tcs[c], planes[c], data, out, W);
  }
  return { width: W, height: H, channels: out, data };
}

const ICT = [1.402, 0.34413, 0.71414, 1.772].map((v) => Math.fround(v));

function inverseMct(p: (Float32Array | Int32Array)[], reversible: boolean) {
  const [a, b, c] = p;
  for (let i = 0; i < a.length; i++) {
    const y = a[i], u = b[i], v = c[i];
    if (reversible) { const g = y - Math.floor((u + v) / 4); a[i] = v + g; b[i] = g; c[i] = u + g; }
    else { a[i] = f32(y + f32(v * ICT[0])); b[i] = f32(f32(y - f32(u * ICT[1])) - f32(v * ICT[2])); c[i] = f32(y + f32(u * ICT[3])); }
  }
}

/** DC level shift, rounding (half to even, as lrintf), clamping, and scaling to 8 bits; subsampled components replicate. */
function writeComponent(siz: Siz, c: number, tc: TileComp, plane: Float32Array | Int32Array, out: Uint8Array, ch: number, W: number) {
  const comp = siz.comps[c], w = tc.x1 - tc.x0, max = 2 ** comp.depth - 1, shift = comp.signed ? 0 : 2 ** (comp.depth - 1);
  const lo = comp.signed ? -(2 ** (comp.depth - 1)) : 0, hi = comp.signed ? 2 ** (comp.depth - 1) - 1 : max;
  for (let cy = tc.y0; cy < tc.y1; cy++) {
    for (let cx = tc.x0; cx < tc.x1; cx++) {
      let v = plane[(cy - tc.y0) * w + cx - tc.x0];
      const r = Math.round(v);
      v = (r - v === 0.5 && r % 2 ? r - 1 : r) + shift;
      v = Math.min(hi, Math.max(lo, v)) - (comp.signed ? lo : 0);
      const v8 = comp.depth >= 8 ? v >> (comp.depth - 8) : v << (8 - comp.depth);
      for (let y = cy * comp.dy; y < (cy + 1) * comp.dy; y++) {
        if (y < siz.y0 || y >= siz.y1) continue;
        for (let x = cx * comp.dx; x < (cx + 1) * comp.dx; x++) if (x >= siz.x0 && x < siz.x1) out[((y - siz.y0) * W + x - siz.x0) * ch + c] = v8;
      }
    }
  }
}
