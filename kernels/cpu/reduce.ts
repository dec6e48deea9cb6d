// Reductions over any subset of axes, and arg-reductions along one axis. A reduction is planned once
// per shape: each output element starts at its own base offset and visits the same list of offsets
// (the reduced sub-space), so one loop serves contiguous and strided axes alike.
import { stridesOf } from './broadcast.js';

type Arr = { [i: number]: any; length: number };

/** Offsets, in row-major order, of every element of the sub-space spanned by `axes` (ascending). */
function subspace(shape: readonly number[], strides: number[], axes: number[]): Int32Array {
  let offs = new Int32Array([0]);
  for (const ax of axes) {
    const n = shape[ax], s = strides[ax], next = new Int32Array(offs.length * n);
    for (let i = 0, k = 0; i < offs.length; i++) for (let j = 0; j < n; j++) next[k++] = offs[i] + j * s;
    offs = next;
  }
  return offs;
}

export interface ReducePlan { bases: Int32Array; offs: Int32Array }

/** Plan for reducing `shape` over `axes` (distinct, non-negative); outputs follow the kept axes in order. */
export function reducePlan(shape: readonly number[], axes: readonly number[]): ReducePlan {
  const strides = stridesOf(shape), red = new Set(axes);
  const kept = shape.map((_, i) => i).filter((i) => !red.has(i));
  return { bases: subspace(shape, strides, kept), offs: subspace(shape, strides, [...red].sort((a, b) => a - b)) };
}

/** A fold: `step` combines the accumulator with each value (o is the output index), `fin` finishes it. */
export interface Fold {
  init: any;
  step: (acc: any, v: any, o: number) => any;
  fin?: (acc: any, count: number, o: number) => any;
}

/** out[o] = fin(step(...step(init, x[base_o + off_0])...), count). Works on numbers and bigints alike. */
export function reduceInto(x: Arr, plan: ReducePlan, f: Fold, out: Arr): void {
  const { bases, offs } = plan, n = offs.length, { init, step, fin } = f;
  for (let o = 0; o < bases.length; o++) {
    const b = bases[o];
    let acc = init;
    for (let r = 0; r < n; r++) acc = step(acc, x[b + offs[r]], o);
    out[o] = fin ? fin(acc, n, o) : acc;
  }
}

/**
 * Index of the best element along the middle axis of an [outer, n, inner] layout. `better(a, b)` is a
 * strict order; with `last` an equal later element wins, otherwise the first one stays.
 */
export function argReduce(x: Arr, outer: number, n: number, inner: number, better: (a: any, b: any) => boolean, last: boolean, out: BigInt64Array): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let best = x[base], at = 0;
      for (let j = 1; j < n; j++) {
        const v = x[base + j * inner];
        if (last ? !better(best, v) : better(v, best)) { best = v; at = j; }
      }
      out[o * inner + i] = BigInt(at);
    }
  }
}
