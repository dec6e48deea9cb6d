// Signal processing: DFT, STFT, the cosine-sum windows (Hann, Hamming, Blackman) and MelWeightMatrix.
// Complex values travel as a trailing dim of 2 (re, im); real ones as a trailing dim of 1. Transforms
// compute in float64 and store in the input's dtype.
import { dtypeFromOnnx, isBigInt, isFloat, type DType } from '../engine/dtype.js';
import { NdArray, sizeOf, type Value } from '../engine/tensor.js';
import { fftPlan, ifft } from '../kernels/cpu/fft.js';
import { type Attrs, fail, optTensor, register, type RunCtx } from './registry.js';
import { FLOAT, typedInput } from './elementwise.js';
import { tensorType } from './infer-rules.js';

type Ins = (Value | undefined)[];
const name = (ctx: RunCtx, i: number) => `input ${i} ('${ctx.node.inputs[i] ?? ''}')`;

/** Optional scalar input i of an integer (or, with `float`, floating) dtype as a number. */
function optScalar(ins: Ins, i: number, ctx: RunCtx, float = false): number | undefined {
  const t = optTensor(ins, i, ctx);
  if (!t) return undefined;
  const ok = float ? isFloat(t.dtype) : t.dtype === 'int32' || t.dtype === 'int64';
  if (!ok) fail(ctx, `${name(ctx, i)} has dtype ${t.dtype}; expected ${float ? 'a float type' : 'int32 or int64'}`);
  if (t.size !== 1) fail(ctx, `${name(ctx, i)} should be a scalar, got shape [${t.shape}]`);
  return Number(t.data[0]);
}
const scalar = (ins: Ins, i: number, ctx: RunCtx, float = false) => optScalar(ins, i, ctx, float) ?? fail(ctx, `${name(ctx, i)} is required but missing`);

/** Input i as a float signal whose last dim (1 real, 2 complex) holds the parts. */
function signalAt(ins: Ins, i: number, ctx: RunCtx, minRank: number): NdArray {
  const x = typedInput(ins, i, FLOAT, ctx), r = x.shape.length;
  if (r < minRank || (x.shape[r - 1] !== 1 && x.shape[r - 1] !== 2)) fail(ctx, `${name(ctx, i)} should have rank >= ${minRank} and a last dim of 1 (real) or 2 (complex), got shape [${x.shape}]`);
  return x;
}

// ---- DFT ----

interface DftOpts { inverse: boolean; onesided: boolean }

/**
 * DFT of x along `axis` (a signal axis, not the trailing parts dim), of length n. Forward onesided keeps
 * bins 0..n/2 (RFFT); inverse onesided reads bins 0..n/2 as a Hermitian spectrum and returns the real
 * signal (IRFFT). Otherwise the signal is truncated or zero-padded to n, and the output is complex.
 */
function dft(x: NdArray, axis: number, n: number | undefined, o: DftOpts, ctx: RunCtx): NdArray {
  const r = x.shape.length, c = x.shape[r - 1];
  if (axis < -r || axis > r - 2 || axis === -1) fail(ctx, `axis ${axis} should be in [${-r}, -2] or [0, ${r - 2}] for input shape [${x.shape}]`);
  const a = axis < 0 ? axis + r : axis, L = x.shape[a], irfft = o.onesided && o.inverse;
  if (o.onesided && c !== (irfft ? 2 : 1)) fail(ctx, `onesided ${irfft ? 'inverse DFT (IRFFT) needs a complex' : 'forward DFT (RFFT) needs a real'} input (last dim ${irfft ? 2 : 1}), got shape [${x.shape}]`);
  const len = n ?? (irfft ? 2 * (L - 1) : L);
  if (!(len >= 1)) fail(ctx, `dft_length should be >= 1, got ${len}`);
  const outLen = !o.onesided || irfft ? len : (len >> 1) + 1, outC = irfft ? 1 : 2;
  const shape = [...x.shape];
  shape[a] = outLen; shape[r - 1] = outC;
  const out = NdArray.zeros(x.dtype, shape), src = x.data as Float32Array, dst = out.data as Float32Array;
  const outer = sizeOf(x.shape.slice(0, a)), inner = sizeOf(x.shape.slice(a + 1, r - 1));
  const re = new Float64Array(len), im = new Float64Array(len), half = len >> 1;
  const take = Math.min(L, irfft ? half + 1 : len), forward = fftPlan(len);
  for (let p = 0; p < outer; p++) {
    for (let q = 0; q < inner; q++) {
      re.fill(0); im.fill(0);
      for (let k = 0, s = (p * L * inner + q) * c; k < take; k++, s += inner * c) { re[k] = src[s]; if (c === 2) im[k] = src[s + 1]; }
      if (irfft) {
        // The DC and (even length) Nyquist bins of a real signal are real: their imaginary parts are ignored.
        im[0] = 0;
        if (len % 2 === 0) im[half] = 0;
        for (let k = half + 1; k < len; k++) { re[k] = re[len - k]; im[k] = -im[len - k]; }
      }
      if (o.inverse) ifft(re, im); else forward(re, im);
      for (let k = 0, d = (p * outLen * inner + q) * outC; k < outLen; k++, d += inner * outC) { dst[d] = re[k]; if (outC === 2) dst[d + 1] = im[k]; }
    }
  }
  return out;
}

const dftAttrs = (a: Attrs) => ({ inverse: a.int('inverse', 0) !== 0, onesided: a.int('onesided', 0) !== 0 });

register(
  {
    op: 'DFT', since: 17,
    attrs: (a) => ({ ...dftAttrs(a), axis: a.int('axis', 1) }),
    run: (ins, a, ctx) => [dft(signalAt(ins, 0, ctx, 2), a.axis, optScalar(ins, 1, ctx), a, ctx)],
  },
  {
    op: 'DFT', since: 20, attrs: dftAttrs,
    run: (ins, a, ctx) => [dft(signalAt(ins, 0, ctx, 2), optScalar(ins, 2, ctx) ?? -2, optScalar(ins, 1, ctx), a, ctx)],
  },
);

// ---- STFT ----

/** Frames of `step` stride and `n` samples, each windowed and transformed: [batch, frames, bins, 2]. */
function stft(x: NdArray, step: number, win: NdArray | undefined, n: number, onesided: boolean, ctx: RunCtx): NdArray {
  const [batch, L, c] = x.shape;
  if (onesided && c === 2) fail(ctx, `onesided STFT needs a real signal (last dim 1), got shape [${x.shape}]; set onesided=0 for complex signals`);
  if (!(step >= 1)) fail(ctx, `frame_step should be >= 1, got ${step}`);
  if (!(n >= 1) || n > L) fail(ctx, `frame length ${n} should be in [1, ${L}], the signal length`);
  const frames = Math.floor((L - n) / step) + 1, bins = onesided ? (n >> 1) + 1 : n;
  const out = NdArray.zeros(x.dtype, [batch, frames, bins, 2]), src = x.data as Float32Array, dst = out.data as Float32Array;
  const w = win?.data as Float32Array | undefined, re = new Float64Array(n), im = new Float64Array(n), fft = fftPlan(n);
  for (let b = 0, d = 0; b < batch; b++) {
    for (let f = 0; f < frames; f++) {
      for (let k = 0, s = (b * L + f * step) * c; k < n; k++, s += c) {
        const g = w ? w[k] : 1;
        re[k] = src[s] * g; im[k] = c === 2 ? src[s + 1] * g : 0;
      }
      fft(re, im);
      for (let k = 0; k < bins; k++, d += 2) { dst[d] = re[k]; dst[d + 1] = im[k]; }
    }
  }
  return out;
}

register({
  op: 'STFT', since: 17,
  attrs: (a) => ({ onesided: a.int('onesided', 1) !== 0 }),
  run: (ins, a, ctx) => {
    const x = signalAt(ins, 0, ctx, 3), win = optTensor(ins, 2, ctx), len = optScalar(ins, 3, ctx);
    if (x.shape.length !== 3) fail(ctx, `${name(ctx, 0)} should be [batch, length, 1 or 2], got shape [${x.shape}]`);
    if (win && (win.dtype !== x.dtype || win.shape.length !== 1)) fail(ctx, `${name(ctx, 2)} should be 1-D of dtype ${x.dtype}, got ${win.dtype} [${win.shape}]`);
    if (win && len !== undefined && win.shape[0] !== len) fail(ctx, `window length ${win.shape[0]} differs from frame_length ${len}`);
    const n = len ?? win?.shape[0] ?? fail(ctx, 'needs a window or a frame_length to know the frame size');
    return [stft(x, scalar(ins, 1, ctx), win, n, a.onesided, ctx)];
  },
});

// ---- Windows and MelWeightMatrix ----

const OUT_TYPES = new Set<DType>(['uint8', 'uint16', 'uint32', 'uint64', 'int8', 'int16', 'int32', 'int64', 'float16', 'float32', 'float64', 'bfloat16']);

function outputType(a: Attrs): DType {
  const code = a.int('output_datatype', 1), d = dtypeFromOnnx(code);
  if (!d || !OUT_TYPES.has(d)) throw a.error(`output_datatype ${code} should be a numeric, non-complex ONNX type`);
  return d;
}

/**
 * A tensor of `dtype` from float64 values. Integer types truncate toward zero as a C cast does, after
 * rounding to float32 as a float computation would: a window's peak of 1 (1 - 1e-16 in float64) stays 1.
 */
function fromValues(dtype: DType, shape: number[], v: Float64Array): NdArray {
  const out = NdArray.zeros(dtype, shape);
  if (isFloat(dtype)) (out.data as Float64Array).set(v);
  else if (isBigInt(dtype)) v.forEach((x, i) => { (out.data as BigInt64Array)[i] = BigInt(Math.trunc(Math.fround(x))); });
  else v.forEach((x, i) => { (out.data as Int32Array)[i] = Math.fround(x); });
  return out;
}

/** w[k] = Σ_j (-1)^j·a_j·cos(2πjk/N), with N = size (periodic) or size - 1 (symmetric). */
function cosineWindow(op: string, coefs: number[]) {
  return {
    op, since: 17,
    attrs: (a: Attrs) => ({ dtype: outputType(a), periodic: a.int('periodic', 1) !== 0 }),
    infer: (_: unknown, a: { dtype: DType }) => [tensorType(a.dtype, [null])],
    run: (ins: Ins, a: { dtype: DType; periodic: boolean }, ctx: RunCtx) => {
      const size = scalar(ins, 0, ctx);
      if (size < 0) fail(ctx, `size should be >= 0, got ${size}`);
      const N = a.periodic ? size : size - 1, v = new Float64Array(size);
      for (let k = 0; k < size; k++) v[k] = coefs.reduce((s, c, j) => s + (j % 2 ? -c : c) * Math.cos((2 * Math.PI * j * k) / N), 0);
      // A symmetric window of one point has no period (0/0 above); numpy, scipy and torch give it 1.
      if (!a.periodic && size === 1) v[0] = 1;
      return [fromValues(a.dtype, [size], v)];
    },
  };
}

register(
  cosineWindow('HannWindow', [0.5, 0.5]),
  cosineWindow('HammingWindow', [25 / 46, 21 / 46]),
  cosineWindow('BlackmanWindow', [0.42, 0.5, 0.08]),
);

const hzToMel = (f: number) => 2595 * Math.log10(1 + f / 700);
const melToHz = (m: number) => 700 * (10 ** (m / 2595) - 1);

/**
 * Triangular filters of peak 1 over [floor(dft_length/2) + 1] spectrogram bins. The band edges are
 * num_mel_bins + 2 points, evenly spaced in mel over [lower, upper] with a step of range/(num_mel_bins + 2)
 * as the operator's definition has it, each mapped to the bin floor((dft_length + 1)·hz / sample_rate).
 */
function melWeights(mels: number, dftLen: number, rate: number, lo: number, hi: number, ctx: RunCtx): Float64Array {
  if (mels < 1 || dftLen < 1 || rate < 1) fail(ctx, `num_mel_bins, dft_length and sample_rate should be >= 1, got ${mels}, ${dftLen}, ${rate}`);
  if (!(lo >= 0 && lo < hi)) fail(ctx, `edges should satisfy 0 <= lower_edge_hertz < upper_edge_hertz, got ${lo}, ${hi}`);
  const bins = (dftLen >> 1) + 1, low = hzToMel(lo), step = (hzToMel(hi) - low) / (mels + 2);
  const edge = Array.from({ length: mels + 2 }, (_, i) => Math.floor(((dftLen + 1) * melToHz(i * step + low)) / rate));
  if (edge[mels + 1] >= bins) fail(ctx, `upper_edge_hertz ${hi} maps past the last of ${bins} spectrogram bins (sample_rate ${rate})`);
  const w = new Float64Array(bins * mels);
  for (let m = 0; m < mels; m++) {
    const [l, c, h] = [edge[m], edge[m + 1], edge[m + 2]];
    if (c === l) w[c * mels + m] = 1;
    for (let j = l; j <= c && c > l; j++) w[j * mels + m] = (j - l) / (c - l);
    for (let j = c; j < h; j++) w[j * mels + m] = (h - j) / (h - c);
  }
  return w;
}

register({
  op: 'MelWeightMatrix', since: 17,
  attrs: outputType,
  infer: (_ins, dtype) => [tensorType(dtype, [null, null])],
  run: (ins, dtype, ctx) => {
    const mels = scalar(ins, 0, ctx), n = scalar(ins, 1, ctx);
    const w = melWeights(mels, n, scalar(ins, 2, ctx), scalar(ins, 3, ctx, true), scalar(ins, 4, ctx, true), ctx);
    return [fromValues(dtype, [(n >> 1) + 1, mels], w)];
  },
});
