// WebP: the RIFF container (simple and extended), lossy VP8 frames converted to RGB the way libwebp's
// default output path does (its "fancy" 9-3-3-1 chroma upsampler and 14-bit fixed-point YUV->RGB),
// and lossless VP8L frames. Alpha (ALPH chunks, VP8L alpha) is dropped; animations are not supported.
import { Bytes, check, checkDims, fail, startsWith, type DecodedImage } from './common.js';
import { decodeVp8, type Yuv } from './vp8.js';
import { decodeVp8l } from './vp8l.js';

export const isWebp = (b: Uint8Array) => startsWith(b, 'RIFF') && startsWith(b, 'WEBP', 8);

export function decodeWebp(b: Uint8Array): DecodedImage {
  check(isWebp(b), 'not a WebP stream');
  const r = new Bytes(b), riff = r.u32(4);
  check(riff >= 12 && riff + 8 <= b.length, 'WebP RIFF size does not match the stream');
  const end = riff + 8;
  let canvas: [number, number] | undefined;
  for (let p = 12; p + 8 <= end;) {
    const tag = String.fromCharCode(...b.subarray(p, p + 4)), size = r.u32(p + 4), at = p + 8;
    check(at + size <= end, `WebP ${tag} chunk runs past the end`);
    if (tag === 'VP8X') {
      check(size >= 10 && !(b[at] & 2), 'animated WebP is not supported');
      canvas = [1 + (b[at + 4] | (b[at + 5] << 8) | (b[at + 6] << 16)), 1 + (b[at + 7] | (b[at + 8] << 8) | (b[at + 9] << 16))];
    } else if (tag === 'VP8 ' || tag === 'VP8L') {
      const img = tag === 'VP8L' ? decodeVp8l(b, at, at + size) : rgbFromYuv(decodeVp8(b, at, at + size));
      check(!canvas || (canvas[0] === img.width && canvas[1] === img.height), 'WebP frame does not match the canvas');
      return img;
    } else check(tag !== 'ANIM' && tag !== 'ANMF', 'animated WebP is not supported');
    p = at + size + (size & 1);
  }
  return fail('WebP has no image data');
}

// libwebp's YUV->RGB: 14-bit fixed point, results clipped from 6 fractional bits.
const hi = (v: number, k: number) => (v * k) >> 8;
const clip6 = (v: number) => (v < 0 ? 0 : v > 16383 ? 255 : v >> 6);

function put(o: Uint8Array, i: number, y: number, u: number, v: number) {
  const yy = hi(y, 19077);
  o[i] = clip6(yy + hi(v, 26149) - 14234);
  o[i + 1] = clip6(yy - hi(u, 6419) - hi(v, 13320) + 8708);
  o[i + 2] = clip6(yy + hi(u, 33050) - 17685);
}

/**
 * One output row from its luma row and two chroma rows: `near` weighs 3 and `far` 1 vertically, and the
 * nearer chroma column 3 to 1 horizontally, rounded in two stages exactly as libwebp's upsampler does.
 */
function row(yuv: Yuv, out: Uint8Array, yRow: number, near: number, far: number) {
  const W = yuv.width, Y = yuv.y.subarray(yRow * yuv.yStride), o = 3 * W * yRow;
  for (const [plane, off] of [[yuv.u, 0], [yuv.v, 1]] as const) {
    const n = plane.subarray(near * yuv.uvStride), f = plane.subarray(far * yuv.uvStride);
    for (let x = 0; x < W; x++) {
      const c = x >> 1, odd = x & 1;
      let v: number;
      if (x === 0 || (x === W - 1 && odd)) v = (3 * n[c] + f[c] + 2) >> 2; // edge columns: vertical only
      else {
        const k = odd ? c + 1 : c - 1, avg = n[c] + n[k] + f[c] + f[k] + 8;
        v = (((avg + 2 * (n[k] + f[c])) >> 3) + n[c]) >> 1;
      }
      scratch[2 * x + off] = v;
    }
  }
  for (let x = 0; x < W; x++) put(out, o + 3 * x, Y[x], scratch[2 * x], scratch[2 * x + 1]);
}

let scratch = new Int32Array(0);

function rgbFromYuv(yuv: Yuv): DecodedImage {
  const W = yuv.width, H = yuv.height, data = new Uint8Array(W * H * 3);
  checkDims(W, H);
  if (scratch.length < 2 * W) scratch = new Int32Array(2 * W);
  for (let y = 0; y < H; y++) {
    // Row 0 and a final even-height row use one chroma row; others pair chroma rows (y-1)/2 and (y+1)/2.
    const j = y >> 1;
    if (y === 0) row(yuv, data, y, 0, 0);
    else if (y & 1) row(yuv, data, y, j, y + 1 < H ? j + 1 : j);
    else row(yuv, data, y, j, j - 1);
  }
  return { width: W, height: H, channels: 3, data };
}
