// float32 MaxPool (without the Indices output) and AveragePool over 1-D/2-D windows in WebAssembly SIMD128,
// called by kernels/cpu/pool.ts. Planes are prepped into the window arena with the pad value (-Infinity
// for max, 0 for average), so the window kernel needs no bounds checks; average divides by a plane of
// per-output tap counts built once per call. With threads, each thread preps and pools its own planes.
import type { Geom3 } from '../cpu/conv.js';
import { win2, windowKernels } from './conv.js';
import { hasSimd, wasmKernels } from './simd.js';
import { layout, roundUp, SLACK, type Win2 } from './window.js';

/**
 * Taps per output index along one dim: those inside the input, or with `padEnd` given (count_include_pad),
 * inside the input plus its pads.
 */
function counts(outN: number, k: number, s: number, d: number, pb: number, n: number, padEnd?: number): number[] {
  const lo = padEnd === undefined ? 0 : -pb, hi = padEnd === undefined ? n : n + padEnd;
  return Array.from({ length: outN }, (_, o) => {
    let cnt = 0;
    for (let t = 0, i = o * s - pb; t < k; t++, i += d) if (i >= lo && i < hi) cnt++;
    return cnt;
  });
}

/** OH rows of OWp divisors: taps per output (padding columns past OW get 1). */
function divisors(v: Win2, OWp: number, padEnd?: number[]): Float32Array {
  const ch = counts(v.OH, v.KH, v.sh, v.dh, v.ph, v.H, padEnd?.[1]), cw = counts(v.OW, v.KW, v.sw, v.dw, v.pw, v.W, padEnd?.[2]);
  const out = new Float32Array(v.OH * OWp).fill(1);
  for (let oh = 0; oh < v.OH; oh++) for (let ow = 0; ow < v.OW; ow++) out[oh * OWp + ow] = ch[oh] * cw[ow];
  return out;
}

/**
 * y = max or mean over each window of `planes` planes of x; `padEnd` (the trailing pads, 3 dims) makes the
 * mean count pads (count_include_pad). False, having done nothing, when wasm does not apply.
 */
export function poolWasm(x: Float32Array, y: Float32Array, planes: number, g: Geom3, kind: 'max' | 'avg', padEnd?: number[]): boolean {
  if (!hasSimd || !wasmKernels() || !(x instanceof Float32Array && y instanceof Float32Array)) return false;
  const v = win2(g), K = v && windowKernels(y.length * g.k[1] * g.k[2]);
  if (!v || !K) return false;
  const L = layout(v), outPlane = v.OH * v.OW, inPlane = v.H * v.W;
  if (planes * outPlane === 0) return true;
  const { nt, batch, per } = K.batches(planes, inPlane + L.planeFloats + v.OH * L.OWp, outPlane * v.KH * v.KW);
  const x0 = K.arena.base, ppAt = roundUp(x0 + batch * inPlane, 16), outAt = roundUp(ppAt + batch * L.planeFloats + SLACK, 16);
  const auxAt = roundUp(outAt + batch * v.OH * L.OWp, 16);
  if (!K.arena.reserve(auxAt + (kind === 'avg' ? v.OH * L.OWp : 0) + SLACK)) return false;
  if (kind === 'avg') K.arena.f32.set(divisors(v, L.OWp, padEnd), auxAt);
  for (let p0 = 0; p0 < planes; p0 += batch) {
    const np = Math.min(batch, planes - p0);
    K.arena.f32.set(x.subarray(p0 * inPlane, (p0 + np) * inPlane), x0);
    K.windowed(kind, v, L, np, 1, x0, ppAt, 0, outAt, auxAt, kind === 'max' ? -Infinity : 0, nt, undefined, per);
    K.arena.getRows(y, p0 * outPlane, np, v.OH, v.OW, outAt, L.OWp);
  }
  return true;
}
