// Numpy-style broadcasting for N-ary elementwise kernels. Compute only: arrays, shapes, a function.

export function broadcastShapes(...shapes: (readonly number[])[]): number[] | null {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i, d = s[i];
      if (out[o] === 1) out[o] = d;
      else if (d !== 1 && d !== out[o]) return null;
    }
  }
  return out;
}

/** Strides of `shape` laid out inside `outShape`, with 0 on broadcast dims. */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const strides = new Array<number>(outShape.length).fill(0);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const o = outShape.length - shape.length + i;
    strides[o] = shape[i] === 1 ? 0 : acc;
    acc *= shape[i];
  }
  return strides;
}

export const stridesOf = (shape: readonly number[]) => {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
  return s;
};

type Arr = { [i: number]: any; length: number };

/** out[i] = fn(a[ia], b[ib]) over the broadcast of the two shapes. */
export function binaryBroadcast<T, U, R>(a: Arr, aShape: readonly number[], b: Arr, bShape: readonly number[], outShape: readonly number[], out: Arr, fn: (x: T, y: U) => R): void {
  const n = out.length;
  if (n === 0) return;
  if (a.length === n && b.length === n) { for (let i = 0; i < n; i++) out[i] = fn(a[i], b[i]); return; }
  if (b.length === 1) { const y = b[0]; if (a.length === n) { for (let i = 0; i < n; i++) out[i] = fn(a[i], y); return; } }
  if (a.length === 1) { const x = a[0]; if (b.length === n) { for (let i = 0; i < n; i++) out[i] = fn(x, b[i]); return; } }
  const rank = outShape.length, sa = broadcastStrides(aShape, outShape), sb = broadcastStrides(bShape, outShape);
  // Innermost dim runs in a tight loop; outer dims advance an index counter.
  const inner = outShape[rank - 1], ia0 = sa[rank - 1], ib0 = sb[rank - 1];
  const idx = new Array<number>(rank).fill(0);
  let pa = 0, pb = 0;
  for (let o = 0; o < n; o += inner) {
    for (let k = 0, qa = pa, qb = pb; k < inner; k++, qa += ia0, qb += ib0) out[o + k] = fn(a[qa], b[qb]);
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]++; pa += sa[d]; pb += sb[d];
      if (idx[d] < outShape[d]) break;
      pa -= sa[d] * outShape[d]; pb -= sb[d] * outShape[d]; idx[d] = 0;
    }
  }
}

/** Gathers `src` (shape `shape`) broadcast to `outShape` into a dense array. */
export function expandTo(src: Arr, shape: readonly number[], outShape: readonly number[], out: Arr): void {
  binaryBroadcast(src, shape, [0], [], outShape, out, (x: unknown) => x);
}
