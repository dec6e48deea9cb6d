// Dense linear algebra on row-major square matrices, in float64.

/**
 * out[b] = det of the b-th n×n matrix of `src`, by LU decomposition with partial pivoting: the product
 * of U's diagonal, negated once per row swap. A zero pivot column means a singular matrix (det 0).
 */
export function determinants(src: ArrayLike<number>, n: number, out: { [i: number]: number; length: number }): void {
  const a = new Float64Array(n * n);
  for (let b = 0; b < out.length; b++) {
    for (let i = 0; i < n * n; i++) a[i] = src[b * n * n + i];
    let det = 1;
    for (let k = 0; k < n && det !== 0; k++) {
      let p = k;
      for (let i = k + 1; i < n; i++) if (Math.abs(a[i * n + k]) > Math.abs(a[p * n + k])) p = i;
      const pivot = a[p * n + k];
      if (pivot === 0) { det = 0; break; }
      if (p !== k) {
        det = -det;
        for (let j = k; j < n; j++) { const t = a[k * n + j]; a[k * n + j] = a[p * n + j]; a[p * n + j] = t; }
      }
      det *= pivot;
      for (let i = k + 1; i < n; i++) {
        const f = a[i * n + k] / pivot;
        if (f !== 0) for (let j = k + 1; j < n; j++) a[i * n + j] -= f * a[k * n + j];
      }
    }
    out[b] = det;
  }
}
