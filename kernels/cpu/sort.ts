// TopK selection and cumulative scans along the middle axis of an [outer, n, inner] layout.
type Arr = { [i: number]: any; length: number };

/** a > b with NaN above every number, so NaN sorts consistently instead of comparing false. */
const gt = (a: any, b: any) => a > b || (a !== a && b === b);

/**
 * The k best elements of each row, best first; equal values keep the lower index first. Keeps the
 * current k best in a heap whose root is the worst of them, so a row costs O(n log k).
 */
export function topK(x: Arr, outer: number, n: number, inner: number, k: number, largest: boolean, vals: Arr, idx: BigInt64Array): void {
  if (!k) return;
  const v = new Array(n), heap = new Int32Array(k);
  const better = largest ? gt : (a: any, b: any) => gt(b, a);
  const before = (i: number, j: number) => better(v[i], v[j]) || (!better(v[j], v[i]) && i < j);
  const swap = (a: number, b: number) => { const t = heap[a]; heap[a] = heap[b]; heap[b] = t; };
  const siftUp = (c: number) => {
    for (let p = (c - 1) >> 1; c > 0 && before(heap[p], heap[c]); c = p, p = (c - 1) >> 1) swap(p, c);
  };
  const siftDown = (p: number, size: number) => {
    for (let c = 2 * p + 1; c < size; p = c, c = 2 * p + 1) {
      if (c + 1 < size && before(heap[c], heap[c + 1])) c++;
      if (!before(heap[p], heap[c])) return;
      swap(p, c);
    }
  };
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      for (let j = 0; j < n; j++) v[j] = x[base + j * inner];
      let size = 0;
      for (let j = 0; j < n; j++) {
        if (size < k) { heap[size] = j; siftUp(size++); } else if (before(j, heap[0])) { heap[0] = j; siftDown(0, size); }
      }
      const best = Array.from(heap).sort((a, b) => (before(a, b) ? -1 : 1));
      for (let r = 0; r < k; r++) {
        const q = (o * k + r) * inner + i;
        vals[q] = v[best[r]];
        idx[q] = BigInt(best[r]);
      }
    }
  }
}

/** Running `op` from `identity`; `exclusive` leaves out the element itself, `reverse` runs from the end. */
export function scan(x: Arr, out: Arr, outer: number, n: number, inner: number, exclusive: boolean, reverse: boolean, identity: any, op: (a: any, b: any) => any): void {
  const step = reverse ? -inner : inner;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let p = o * n * inner + i + (reverse ? (n - 1) * inner : 0), acc = identity;
      for (let j = 0; j < n; j++, p += step) {
        if (exclusive) { out[p] = acc; acc = op(acc, x[p]); } else out[p] = acc = op(acc, x[p]);
      }
    }
  }
}
