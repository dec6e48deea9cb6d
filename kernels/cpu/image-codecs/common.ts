// Shared pieces of the image decoders: the decoded-image shape, the error every decoder throws on a
// stream it cannot decode, size limits, and bounds-checked byte reading.

/** Interleaved 8-bit pixels, channel-last: 1 (gray), 3 (RGB) or 4 (RGBA) channels. */
export interface DecodedImage { width: number; height: number; channels: 1 | 3 | 4; data: Uint8Array }

/** A stream that cannot be decoded (corrupt, truncated, unsupported); the op turns it into an empty image. */
export class CodecError extends Error {}

export function fail(msg: string): never { throw new CodecError(msg); }
export function check(ok: unknown, msg: string): asserts ok { if (!ok) throw new CodecError(msg); }

/** Upper bound on decoded pixels, so a forged header cannot make us allocate gigabytes. */
export const MAX_PIXELS = 2 ** 28;

/** Validates header dimensions; `minBytes` is the least stream size those dimensions need (for a cheap truncation check). */
export function checkDims(width: number, height: number, streamBytes = Infinity, minBytes = 0): void {
  check(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0, `bad dimensions ${width}x${height}`);
  check(width * height <= MAX_PIXELS, `image of ${width}x${height} pixels is over the limit`);
  check(minBytes <= streamBytes, `stream of ${streamBytes} bytes is too short for ${width}x${height}`);
}

export function image(width: number, height: number, channels: 1 | 3 | 4): DecodedImage {
  return { width, height, channels, data: new Uint8Array(width * height * channels) };
}

/** Bounds-checked little/big-endian reads over a byte array. */
export class Bytes {
  constructor(readonly b: Uint8Array, public le = true) {}
  get length() { return this.b.length; }
  need(pos: number, n: number): void { check(pos >= 0 && pos + n <= this.b.length, `read past the end of the stream at ${pos}`); }
  u8(p: number) { this.need(p, 1); return this.b[p]; }
  u16(p: number) { this.need(p, 2); const b = this.b; return this.le ? b[p] | (b[p + 1] << 8) : (b[p] << 8) | b[p + 1]; }
  u32(p: number) {
    this.need(p, 4); const b = this.b;
    return this.le ? (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16)) + b[p + 3] * 0x1000000 : b[p] * 0x1000000 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
  }
  i32(p: number) { return this.u32(p) | 0; }
  slice(p: number, n: number) { this.need(p, n); return this.b.subarray(p, p + n); }
}

export const startsWith = (b: Uint8Array, sig: number[] | string, at = 0) =>
  b.length >= at + sig.length && [...sig].every((c, i) => b[at + i] === (typeof c === 'string' ? c.charCodeAt(0) : c));

/** `count` samples of `bits` bits (1, 2, 4, 8), most significant first, from src[pos..] into out[0..]. */
export function unpackBits(src: Uint8Array, pos: number, count: number, bits: number, out: Uint8Array | number[]): void {
  if (bits === 8) { for (let i = 0; i < count; i++) out[i] = src[pos + i]; return; }
  const per = 8 / bits, mask = (1 << bits) - 1;
  for (let i = 0; i < count; i++) out[i] = (src[pos + Math.floor(i / per)] >> (8 - bits * (1 + (i % per)))) & mask;
}

/** Palette indices -> RGB; an index past the palette's end reads black, as most decoders do. */
export function applyPalette(idx: ArrayLike<number>, n: number, pal: Uint8Array, out: Uint8Array, at: number): void {
  for (let i = 0; i < n; i++) {
    const k = idx[i] * 3, o = at + 3 * i;
    if (k + 2 < pal.length) { out[o] = pal[k]; out[o + 1] = pal[k + 1]; out[o + 2] = pal[k + 2]; }
  }
}
