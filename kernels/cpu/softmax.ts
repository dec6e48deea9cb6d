// Softmax, LogSoftmax and Hardmax along the middle axis of an [outer, n, inner] layout.
type Arr = { [i: number]: number; length: number };

/** Shifted by the row max so exp cannot overflow; sums in float64. */
export function softmax(x: Arr, out: Arr, outer: number, n: number, inner: number, log: boolean): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let max = -Infinity;
      for (let j = 0, p = base; j < n; j++, p += inner) if (x[p] > max || x[p] !== x[p]) max = x[p];
      let sum = 0;
      if (log) {
        for (let j = 0, p = base; j < n; j++, p += inner) sum += Math.exp(x[p] - max);
        const shift = max + Math.log(sum);
        for (let j = 0, p = base; j < n; j++, p += inner) out[p] = x[p] - shift;
      } else {
        for (let j = 0, p = base; j < n; j++, p += inner) sum += (out[p] = Math.exp(x[p] - max));
        for (let j = 0, p = base; j < n; j++, p += inner) out[p] /= sum;
      }
    }
  }
}

/** 1 at the first maximum of each row, 0 elsewhere (`out` starts zeroed). */
export function hardmax(x: Arr, out: Arr, outer: number, n: number, inner: number): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let at = base;
      for (let j = 1, p = base + inner; j < n; j++, p += inner) if (x[p] > x[at]) at = p;
      if (n) out[at] = 1;
    }
  }
}
