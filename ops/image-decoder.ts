// ImageDecoder (opset 20): an encoded image (uint8 bytes) to HWC uint8 pixels in RGB, BGR or Grayscale.
// The format is sniffed from the bytes; a stream no decoder accepts yields an empty [0, 0, C] image, as
// the spec asks, rather than an error.
import { NdArray } from '../engine/tensor.js';
import { decodeImage, toPixelFormat, type PixelFormat } from '../kernels/cpu/image-codecs/index.js';
import { fail, register, tensorAt } from './registry.js';
import { tensorType } from './infer-rules.js';

const FORMATS: PixelFormat[] = ['RGB', 'BGR', 'Grayscale'];
const channels = (f: PixelFormat) => (f === 'Grayscale' ? 1 : 3);

register({
  op: 'ImageDecoder', since: 20,
  attrs: (a) => {
    const f = a.string('pixel_format', 'RGB') as PixelFormat;
    if (!FORMATS.includes(f)) throw a.error(`pixel_format should be RGB, BGR or Grayscale, got '${f}'`);
    return f;
  },
  infer: (_ins, f: PixelFormat) => [tensorType('uint8', [null, null, channels(f)])],
  run: (ins, f: PixelFormat, ctx) => {
    const x = tensorAt(ins, 0, ctx);
    if (x.dtype !== 'uint8') fail(ctx, `input 0 ('${ctx.node.inputs[0]}') has dtype ${x.dtype}; expected uint8`);
    const img = decodeImage(x.data as Uint8Array), c = channels(f);
    if (!img) return [NdArray.zeros('uint8', [0, 0, c])];
    return [new NdArray('uint8', [img.height, img.width, c], toPixelFormat(img, f))];
  },
});
