// Axis permutation. Dims that stay adjacent are merged first; when the source's contiguous dim is not
// the output's innermost one, the two are copied in square tiles so that reads and writes both stay in cache.
import { simplify, stridedCopy, units, walk, type Units, type Buf } from './copy.js';
import { stridesOf } from './broadcast.js';

const TILE = 32;

/** dst = src (shape `shape`) with axes permuted: dst axis i is src axis perm[i]. */
export function transpose(src: Buf, shape: readonly number[], perm: readonly number[], dst: Buf): void {
  const inStr = stridesOf(shape), outShape = perm.map((p) => shape[p]);
  const s = simplify(outShape, perm.map((p) => inStr[p]), stridesOf(outShape));
  if (!s) return;
  const { shape: sh, strides: [ss, ds] } = s, last = sh.length - 1;
  if (last < 1 || ss[last] === 1) { stridedCopy(src, 0, ss, dst, 0, ds, sh); return; }
  // j: the output dim the source walks contiguously; tile over (j, last).
  let j = 0;
  for (let k = 1; k < last; k++) if (ss[k] < ss[j]) j = k;
  const [su, l] = units(src), [du] = units(dst);
  const rows = sh[j], cols = sh[last], rs = ss[j] * l, rd = ds[j] * l, cs = ss[last] * l;
  const keep = sh.map((_, k) => k !== j && k !== last), pick = (xs: number[], f = 1) => xs.filter((_, k) => keep[k]).map((x) => x * f);
  walk(pick(sh), pick(ss, l), pick(ds, l), 0, 0, (a, b) => tile2d(su, a, rs, cs, du, b, rd, rows, cols, l));
}

/**
 * dst[b + r·rd + c·l + k] = src[a + r·rs + c·cs + k] (k < l units per element) in TILE×TILE blocks;
 * plain arguments so V8 keeps them in registers.
 */
function tile2d(src: Units, a: number, rs: number, cs: number, dst: Units, b: number, rd: number, rows: number, cols: number, l: number): void {
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) {
        const sp = a + r * rs, dp = b + r * rd;
        if (l === 1) for (let c = c0; c < c1; c++) dst[dp + c] = src[sp + c * cs];
        else for (let c = c0; c < c1; c++) for (let k = 0, p = sp + c * cs, q = dp + c * l; k < l; k++) dst[q + k] = src[p + k];
      }
    }
  }
}
