// Copies along one axis of a row-major array: joining parts and cutting a slab out. Works on any storage
// (typed arrays or strings); `lanes` is storage slots per element (2 for complex).
import type { Storage } from '../../engine/dtype.js';
import { sizeOf } from '../../engine/tensor.js';

function copy(dst: Storage, dOff: number, src: Storage, sOff: number, n: number): void {
  if (Array.isArray(dst)) for (let i = 0; i < n; i++) dst[dOff + i] = (src as string[])[sOff + i];
  else (dst as Float32Array).set((src as Float32Array).subarray(sOff, sOff + n), dOff);
}

/** Joins parts along `axis` into out; parts agree on every other dim. */
export function concatAxis(parts: { data: Storage; shape: readonly number[] }[], axis: number, out: Storage, lanes = 1): void {
  if (parts.length === 0) return;
  const outer = sizeOf(parts[0].shape.slice(0, axis));
  const rows = parts.map((p) => sizeOf(p.shape.slice(axis)) * lanes);
  const rowLen = rows.reduce((a, b) => a + b, 0);
  for (let o = 0; o < outer; o++) {
    let off = o * rowLen;
    for (let k = 0; k < parts.length; k++) { copy(out, off, parts[k].data, o * rows[k], rows[k]); off += rows[k]; }
  }
}

/** The slab [start, start + len) of `axis` into out, which has len in place of that dim. */
export function sliceAxis(data: Storage, shape: readonly number[], axis: number, start: number, len: number, out: Storage, lanes = 1): void {
  const outer = sizeOf(shape.slice(0, axis)), inner = sizeOf(shape.slice(axis + 1)) * lanes;
  for (let o = 0; o < outer; o++) copy(out, o * len * inner, data, (o * shape[axis] + start) * inner, len * inner);
}
