// Building blocks for Einsum over dense float64 arrays: strided views (transposes and diagonals),
// and a batched matrix product.

const prod = (xs: readonly number[]) => xs.reduce((p, d) => p * d, 1);

/** Dense row-major copy of the view of `src` with the given shape and element strides. */
export function stridedCopy(src: Float64Array, shape: readonly number[], strides: readonly number[]): Float64Array {
  const n = prod(shape), out = new Float64Array(n), rank = shape.length, idx = new Array<number>(rank).fill(0);
  for (let i = 0, off = 0; i < n; i++) {
    out[i] = src[off];
    for (let d = rank - 1; d >= 0; d--) {
      off += strides[d];
      if (++idx[d] < shape[d]) break;
      off -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** out[b, i, j] = sum_p a[b, i, p] * c[b, p, j]. */
export function batchedMatMul(a: Float64Array, c: Float64Array, batch: number, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(batch * m * n);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < m; i++) {
      const row = (b * m + i) * n;
      for (let p = 0; p < k; p++) {
        const av = a[(b * m + i) * k + p], from = (b * k + p) * n;
        for (let j = 0; j < n; j++) out[row + j] += av * c[from + j];
      }
    }
  }
  return out;
}
