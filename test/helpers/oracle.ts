// Runs a model on Lastmile and on onnxruntime-node (the reference) with the same feeds and compares.
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import { InferenceSession, Tensor } from '../../index.js';
import { NdArray, toNdArray, toTensor } from '../../engine/tensor.js';
import { compareValues } from '../../conformance/compare.js';

export interface OracleOptions { rtol?: number; atol?: number; opset?: number }

/** Feeds as NdArrays (engine form: float16 as widened float32 values); both engines get the same public tensors. */
export async function runBoth(bytes: Uint8Array, feeds: Record<string, NdArray>) {
  const ours = await InferenceSession.create(bytes);
  const ref = await ort.InferenceSession.create(bytes);
  // toTensor gives the public form both engines take (float16 as Uint16Array bit patterns).
  const pub = Object.entries(feeds).map(([k, v]) => [k, toTensor(v)] as const);
  const mine = await ours.run(Object.fromEntries(pub));
  const theirs = await ref.run(Object.fromEntries(pub.map(([k, t]) => [k, new ort.Tensor(t.type as never, t.data as never, t.dims as number[])])));
  return { mine, theirs };
}

/** Asserts every output of `bytes` matches onnxruntime-node within tolerance. */
export async function expectMatchesOrt(bytes: Uint8Array, feeds: Record<string, NdArray>, opts: OracleOptions = {}) {
  const { mine, theirs } = await runBoth(bytes, feeds);
  const tol = { rtol: opts.rtol ?? 1e-3, atol: opts.atol ?? 1e-4 };
  expect(Object.keys(mine).sort()).toEqual(Object.keys(theirs).sort());
  for (const [name, t] of Object.entries(theirs)) {
    const exp = toNdArray(new Tensor(t.type as never, t.data as never, t.dims));
    const diff = compareValues(exp, toNdArray(mine[name] as Tensor), tol);
    expect(diff, `output '${name}'`).toBeUndefined();
  }
}

/** Deterministic pseudo-random numbers (tests must be reproducible). */
export function rng(seed = 1) {
  let s = seed >>> 0 || 1;
  const next = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
  return {
    next,
    float: (lo = -1, hi = 1) => lo + (hi - lo) * next(),
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: T[]) => xs[Math.floor(next() * xs.length)],
  };
}

export function randomF32(shape: number[], r = rng(), lo = -1, hi = 1): NdArray & { data: Float32Array } {
  const n = shape.reduce((a, b) => a * b, 1);
  return new NdArray('float32', shape, Float32Array.from({ length: n }, () => r.float(lo, hi))) as NdArray & { data: Float32Array };
}

/** How many elements of x and y differ in their bits (toEqual on millions of elements is far too slow). */
export function bitsDiffer(x: Float32Array, y: Float32Array): number {
  if (x.length !== y.length) return Infinity;
  const p = new Int32Array(x.buffer, x.byteOffset, x.length), q = new Int32Array(y.buffer, y.byteOffset, y.length);
  let d = 0;
  for (let i = 0; i < p.length; i++) if (p[i] !== q[i]) d++;
  return d;
}
