// Netpbm: P1/P4 bitmaps, P2/P5 graymaps, P3/P6 pixmaps (plain text or raw, 8 or 16 bits) and P7 (PAM).
// Samples with a maxval other than 255 are rescaled as round(v / maxval * 255), Python-style half-even.
import { check, checkDims, fail, image, type DecodedImage } from './common.js';

export const isPnm = (b: Uint8Array) => b.length >= 2 && b[0] === 0x50 && b[1] >= 0x31 && b[1] <= 0x37;

const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);

/** Whitespace- and comment-separated header tokens; `pos` ends just past the last token read. */
class Tokens {
  constructor(readonly b: Uint8Array, public pos: number) {}
  skip(): void {
    for (;;) {
      while (this.pos < this.b.length && isSpace(this.b[this.pos])) this.pos++;
      if (this.b[this.pos] !== 0x23) return;
      while (this.pos < this.b.length && this.b[this.pos] !== 10 && this.b[this.pos] !== 13) this.pos++;
    }
  }
  word(): string {
    this.skip();
    const s = this.pos;
    while (this.pos < this.b.length && !isSpace(this.b[this.pos]) && this.b[this.pos] !== 0x23) this.pos++;
    check(this.pos > s && this.pos - s < 80, 'truncated PNM header');
    return String.fromCharCode(...this.b.subarray(s, this.pos));
  }
  int(): number {
    const w = this.word();
    check(/^\d+$/.test(w), `bad PNM number '${w}'`);
    return Number(w);
  }
}

export function decodePnm(b: Uint8Array): DecodedImage {
  check(isPnm(b), 'not a PNM stream');
  const kind = b[1] - 0x30, t = new Tokens(b, 2);
  if (kind === 7) return pam(t);
  const w = t.int(), h = t.int(), bitmap = kind === 1 || kind === 4, maxval = bitmap ? 1 : t.int();
  const ch = kind === 3 || kind === 6 ? 3 : 1;
  check(maxval >= 1 && maxval <= 65535, `bad PNM maxval ${maxval}`);
  if (kind <= 3) return plain(t, w, h, ch, maxval, bitmap);
  t.pos++; // exactly one whitespace byte separates the header from raw samples
  return bitmap ? rawBits(b, t.pos, w, h) : raw(b, t.pos, w, h, ch, maxval);
}

function pam(t: Tokens): DecodedImage {
  const f: Record<string, string> = {};
  for (let k = t.word(); k !== 'ENDHDR'; k = t.word()) {
    if (k === 'TUPLTYPE') { t.word(); continue; }
    f[k] = t.word();
  }
  t.pos++;
  const [w, h, depth, maxval] = ['WIDTH', 'HEIGHT', 'DEPTH', 'MAXVAL'].map((k) => Number(f[k] ?? fail(`PAM header lacks ${k}`)));
  check(depth >= 1 && depth <= 4 && maxval >= 1 && maxval <= 65535, 'bad PAM header');
  return raw(t.b, t.pos, w, h, depth, maxval, depth >= 3 ? 3 : 1);
}

const scaler = (maxval: number) => (v: number) => {
  if (maxval === 255) return v;
  const x = (Math.min(v, maxval) / maxval) * 255, r = Math.round(x);
  return r - x === 0.5 && r % 2 ? r - 1 : r; // half to even
};

/** Raw samples: `depth` per pixel in the stream, the first `keep` (1 or 3) kept. */
function raw(b: Uint8Array, pos: number, w: number, h: number, depth: number, maxval: number, keep = depth): DecodedImage {
  const bytes = maxval > 255 ? 2 : 1;
  checkDims(w, h, b.length, pos + w * h * depth * bytes);
  const img = image(w, h, keep as 1 | 3), out = img.data, scale = scaler(maxval), n = w * h;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < keep; c++) {
      const p = pos + (i * depth + c) * bytes;
      out[i * keep + c] = scale(bytes === 2 ? (b[p] << 8) | b[p + 1] : b[p]);
    }
  }
  return img;
}

/** P4: rows of packed bits, 1 = black. */
function rawBits(b: Uint8Array, pos: number, w: number, h: number): DecodedImage {
  const stride = Math.ceil(w / 8);
  checkDims(w, h, b.length, pos + stride * h);
  const img = image(w, h, 1);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) img.data[y * w + x] = (b[pos + y * stride + (x >> 3)] >> (7 - (x & 7))) & 1 ? 0 : 255;
  return img;
}

/** P1-P3: decimal samples; P1 digits may run together. */
function plain(t: Tokens, w: number, h: number, ch: 1 | 3, maxval: number, bitmap: boolean): DecodedImage {
  checkDims(w, h, t.b.length, t.pos + w * h * ch * (bitmap ? 1 : 2) - 1);
  const img = image(w, h, ch), scale = scaler(maxval);
  for (let i = 0; i < img.data.length; i++) {
    if (bitmap) {
      t.skip();
      const c = t.b[t.pos++];
      check(c === 0x30 || c === 0x31, 'bad P1 sample');
      img.data[i] = c === 0x31 ? 0 : 255;
    } else img.data[i] = scale(t.int());
  }
  return img;
}
