// Output comparison as the ONNX backend runner does it: |actual - expected| <= atol + rtol * |expected|,
// NaN equal to NaN, exact for integers, bools and strings; sequences and optionals element by element.
import { isFloat } from '../engine/dtype.js';
import { NdArray, Opt, Seq, type Value } from '../engine/tensor.js';

export interface Tolerance { rtol: number; atol: number }
export const DEFAULT_TOL: Tolerance = { rtol: 1e-3, atol: 1e-7 };

/** Returns undefined when equal, else a sentence saying where and how they differ. */
export function compareValues(expected: Value, actual: Value, tol: Tolerance = DEFAULT_TOL): string | undefined {
  if (expected instanceof Seq) {
    if (!(actual instanceof Seq)) return `expected a sequence, got ${kind(actual)}`;
    if (expected.items.length !== actual.items.length) return `sequence length ${actual.items.length}, expected ${expected.items.length}`;
    for (let i = 0; i < expected.items.length; i++) {
      const d = compareValues(expected.items[i], actual.items[i], tol);
      if (d) return `item ${i}: ${d}`;
    }
    return undefined;
  }
  if (expected instanceof Opt) {
    const a = actual instanceof Opt ? actual.value : actual;
    if (expected.value === null) return a === null ? undefined : 'expected an empty optional';
    if (a === null) return 'expected a value, got an empty optional';
    return compareValues(expected.value, a, tol);
  }
  if (!(actual instanceof NdArray)) return `expected a tensor, got ${kind(actual)}`;
  return compareTensors(expected, actual, tol);
}

const kind = (v: Value) => (v instanceof Seq ? 'a sequence' : v instanceof Opt ? 'an optional' : 'a tensor');

function compareTensors(e: NdArray, a: NdArray, tol: Tolerance): string | undefined {
  if (e.dtype !== a.dtype) return `dtype ${a.dtype}, expected ${e.dtype}`;
  if (e.shape.length !== a.shape.length || e.shape.some((d, i) => d !== a.shape[i])) return `shape [${a.shape}], expected [${e.shape}]`;
  const ed = e.data as ArrayLike<number | bigint | string>, ad = a.data as ArrayLike<number | bigint | string>;
  const float = isFloat(e.dtype) || e.dtype === 'complex64' || e.dtype === 'complex128';
  let worst = -1, worstErr = 0;
  for (let i = 0; i < ed.length; i++) {
    const x = ed[i], y = ad[i];
    if (!float) { if (x !== y) return `index ${i}: expected ${x}, got ${y}`; continue; }
    const xe = x as number, ya = y as number;
    if (Number.isNaN(xe) || Number.isNaN(ya)) { if (Number.isNaN(xe) !== Number.isNaN(ya)) return `index ${i}: expected ${xe}, got ${ya}`; continue; }
    if (xe === ya) continue;
    const err = Math.abs(ya - xe) - (tol.atol + tol.rtol * Math.abs(xe));
    if (!(err <= 0) && (worst < 0 || err > worstErr)) { worst = i; worstErr = err; }
  }
  if (worst >= 0) return `index ${worst}: expected ${ed[worst]}, got ${ad[worst]} (rtol ${tol.rtol}, atol ${tol.atol})`;
  return undefined;
}
