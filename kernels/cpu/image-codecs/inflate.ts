// DEFLATE (RFC 1951) and the zlib wrapper (RFC 1950), written for PNG and TIFF: pure TypeScript so it
// runs in browsers. Output is capped by the caller's limit, so a tiny stream cannot expand unboundedly.
import { check, fail } from './common.js';

const LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/** Canonical Huffman code as a single lookup table over `bits` LSB-first bits: entry = symbol << 4 | length (0 = no code). */
interface Huff { table: Int32Array; bits: number }

function buildHuff(lengths: ArrayLike<number>): Huff {
  const count = new Array<number>(16).fill(0);
  let bits = 1;
  for (let i = 0; i < lengths.length; i++) { count[lengths[i]]++; if (lengths[i] > bits) bits = lengths[i]; }
  count[0] = 0;
  const next = new Array<number>(16).fill(0);
  for (let len = 1, code = 0, left = 1; len < 16; len++) {
    left = 2 * left - count[len];
    check(left >= 0, 'over-subscribed Huffman code'); // incomplete codes are allowed; unused entries stay 0
    code = (code + count[len - 1]) << 1;
    next[len] = code;
  }
  const table = new Int32Array(1 << bits);
  for (let sym = 0; sym < lengths.length; sym++) {
    const len = lengths[sym];
    if (!len) continue;
    let code = next[len]++, rev = 0;
    for (let i = 0; i < len; i++) { rev = (rev << 1) | (code & 1); code >>= 1; }
    for (let j = rev; j < table.length; j += 1 << len) table[j] = (sym << 4) | len;
  }
  return { table, bits };
}

let fixed: [Huff, Huff] | undefined;
function fixedCodes(): [Huff, Huff] {
  const l = new Array<number>(288).fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
  return (fixed ??= [buildHuff(l), buildHuff(new Array<number>(30).fill(5))]);
}

/** LSB-first bit reader; reads past the end give zeros, but consuming them is an error. */
class Bits {
  buf = 0; cnt = 0; pad = 0;
  constructor(readonly b: Uint8Array, public pos: number) {}
  fill(n: number) {
    while (this.cnt < n) {
      if (this.pos < this.b.length) this.buf |= this.b[this.pos++] << this.cnt;
      else this.pad++;
      this.cnt += 8;
    }
  }
  drop(n: number) {
    this.buf >>>= n; this.cnt -= n;
    if (this.pad * 8 > this.cnt) fail('truncated deflate stream');
  }
  get(n: number): number {
    if (!n) return 0;
    this.fill(n);
    const v = this.buf & ((1 << n) - 1);
    this.drop(n);
    return v;
  }
  sym(h: Huff): number {
    this.fill(h.bits);
    const e = h.table[this.buf & ((1 << h.bits) - 1)];
    check(e, 'invalid Huffman code');
    this.drop(e & 15);
    return e >> 4;
  }
  /** Byte position after discarding the partial byte (for stored blocks and the stream end). */
  align(): number { const at = this.pos - (this.cnt >> 3) + this.pad; this.buf = 0; this.cnt = 0; this.pad = 0; return at; }
}

/** Growable output with a hard cap. */
class Out {
  data: Uint8Array; n = 0;
  constructor(readonly limit: number, hint: number) { this.data = new Uint8Array(Math.min(limit, Math.max(hint, 1024))); }
  room(k: number) {
    if (this.n + k <= this.data.length) return;
    check(this.n + k <= this.limit, 'inflated data is larger than expected');
    const grown = new Uint8Array(Math.min(this.limit, Math.max(this.n + k, this.data.length * 2)));
    grown.set(this.data.subarray(0, this.n));
    this.data = grown;
  }
}

/** Raw DEFLATE from b[pos..]: the output (at most `limit` bytes) and the byte position after the stream. */
export function inflateRaw(b: Uint8Array, pos: number, limit: number, hint = 0): { data: Uint8Array; end: number } {
  const br = new Bits(b, pos), out = new Out(limit, hint);
  for (let last = 0; !last;) {
    last = br.get(1);
    const type = br.get(2);
    if (type === 0) stored(br, out);
    else if (type === 1) codes(br, out, ...fixedCodes());
    else if (type === 2) codes(br, out, ...dynamicCodes(br));
    else fail('invalid deflate block type');
  }
  return { data: out.data.subarray(0, out.n), end: br.align() };
}

function stored(br: Bits, out: Out) {
  const p = br.align(), b = br.b;
  check(p + 4 <= b.length, 'truncated stored block');
  const len = b[p] | (b[p + 1] << 8), nlen = b[p + 2] | (b[p + 3] << 8);
  check((len ^ 0xffff) === nlen && p + 4 + len <= b.length, 'bad stored block');
  out.room(len);
  out.data.set(b.subarray(p + 4, p + 4 + len), out.n);
  out.n += len;
  br.pos = p + 4 + len;
}

function dynamicCodes(br: Bits): [Huff, Huff] {
  const hlit = br.get(5) + 257, hdist = br.get(5) + 1, hclen = br.get(4) + 4;
  check(hlit <= 286 && hdist <= 30, 'bad dynamic block header');
  const cl = new Array<number>(19).fill(0);
  for (let i = 0; i < hclen; i++) cl[CL_ORDER[i]] = br.get(3);
  const clh = buildHuff(cl), lens = new Array<number>(hlit + hdist).fill(0);
  for (let i = 0; i < lens.length;) {
    const s = br.sym(clh);
    if (s < 16) { lens[i++] = s; continue; }
    check(s !== 16 || i > 0, 'repeat with no previous length');
    const [v, n] = s === 16 ? [lens[i - 1], 3 + br.get(2)] : [0, s === 17 ? 3 + br.get(3) : 11 + br.get(7)];
    check(i + n <= lens.length, 'code lengths overrun');
    for (let k = 0; k < n; k++) lens[i++] = v;
  }
  check(lens[256] > 0, 'no end-of-block code');
  return [buildHuff(lens.slice(0, hlit)), buildHuff(lens.slice(hlit))];
}

function codes(br: Bits, out: Out, lit: Huff, dist: Huff) {
  for (;;) {
    const s = br.sym(lit);
    if (s < 256) { out.room(1); out.data[out.n++] = s; continue; }
    if (s === 256) return;
    check(s <= 285, 'bad length code');
    const len = LEN_BASE[s - 257] + br.get(LEN_EXTRA[s - 257]), d = br.sym(dist);
    check(d < 30, 'bad distance code');
    const back = DIST_BASE[d] + br.get(DIST_EXTRA[d]);
    check(back <= out.n, 'distance before the start of the output');
    out.room(len);
    const o = out.data;
    for (let i = 0, from = out.n - back; i < len; i++) o[out.n++] = o[from + i];
  }
}

export function adler32(b: Uint8Array): number {
  let a = 1, s = 0;
  for (let i = 0; i < b.length;) {
    const end = Math.min(b.length, i + 5552); // largest run before the sums can exceed 2^32
    for (; i < end; i++) { a += b[i]; s += a; }
    a %= 65521; s %= 65521;
  }
  return ((s << 16) | a) >>> 0;
}

/** A zlib stream: header checked, no preset dictionary, Adler-32 verified. */
export function inflateZlib(b: Uint8Array, limit: number, hint = 0): Uint8Array {
  check(b.length >= 6 && (b[0] & 15) === 8 && b[0] >> 4 <= 7 && ((b[0] << 8) | b[1]) % 31 === 0 && !(b[1] & 32), 'bad zlib header');
  const { data, end } = inflateRaw(b, 2, limit, hint);
  check(end + 4 <= b.length, 'zlib stream lacks its checksum');
  const want = ((b[end] << 24) | (b[end + 1] << 16) | (b[end + 2] << 8) | b[end + 3]) >>> 0;
  check(adler32(data) === want, 'zlib checksum mismatch');
  return data;
}
