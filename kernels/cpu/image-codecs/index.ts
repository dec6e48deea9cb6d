// Format sniffing and the final pixel-format conversion for ImageDecoder. Any decoder failure (including
// a bug tripping a RangeError on hostile input) surfaces as `undefined`: the op then returns an empty image.
import { decodeBmp, isBmp } from './bmp.js';
import type { DecodedImage } from './common.js';
import { decodeJpeg, isJpeg } from './jpeg.js';
import { decodeJpeg2000, isJpeg2000 } from './jpeg2000.js';
import { decodePng, isPng } from './png.js';
import { decodePnm, isPnm } from './pnm.js';
import { decodeTiff, isTiff } from './tiff.js';
import { decodeWebp, isWebp } from './webp.js';

export type PixelFormat = 'RGB' | 'BGR' | 'Grayscale';

const FORMATS: [(b: Uint8Array) => boolean, (b: Uint8Array) => DecodedImage][] = [
  [isPng, decodePng], [isJpeg, decodeJpeg], [isBmp, decodeBmp], [isPnm, decodePnm], [isTiff, decodeTiff], [isWebp, decodeWebp], [isJpeg2000, decodeJpeg2000],
];

/** Decodes by content (never by extension), or undefined when no decoder accepts the stream. */
export function decodeImage(b: Uint8Array): DecodedImage | undefined {
  const hit = FORMATS.find(([is]) => is(b));
  if (!hit) return undefined;
  try { return hit[1](b); } catch { return undefined; }
}

/** HWC pixels in the requested format: gray uses the ITU-R 601 luma weights in 16-bit fixed point (as PIL's RGB->L). */
export function toPixelFormat(img: DecodedImage, fmt: PixelFormat): Uint8Array {
  const n = img.width * img.height, src = img.data, c = img.channels;
  if (fmt === 'Grayscale') {
    if (c === 1) return src;
    const out = new Uint8Array(n);
    for (let i = 0, p = 0; i < n; i++, p += c) out[i] = (src[p] * 19595 + src[p + 1] * 38470 + src[p + 2] * 7471 + 0x8000) >>> 16;
    return out;
  }
  const out = new Uint8Array(n * 3), bgr = fmt === 'BGR';
  for (let i = 0, p = 0; i < n; i++, p += c) {
    const r = src[p], g = c === 1 ? r : src[p + 1], b = c === 1 ? r : src[p + 2];
    out[3 * i] = bgr ? b : r; out[3 * i + 1] = g; out[3 * i + 2] = bgr ? r : b;
  }
  return out;
}
