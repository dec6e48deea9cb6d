// FlexAttention's two products over [B, H, rows, cols] tensors: the scaled scores Q K^T and the mix P V.
// Query head h reads key/value head floor(h / (Hq / Hkv)). Each head's block accumulates in float64 and is
// stored once, so a float32 (or narrower) destination sees a single rounding per element.
import { gemm, rowMajor } from './gemm.js';

type Num = { [i: number]: number; length: number };
type Dest = Float32Array | Float64Array;

export interface FlexDims { batch: number; qHeads: number; kvHeads: number; qLen: number; kvLen: number; headDim: number; vDim: number }

/** For every (batch, query head): out[b, h] (m x n) = alpha * A[b, h] (m x k) times B[b, g], read as (k x n). */
function perHead(d: FlexDims, m: number, n: number, k: number, a: Num, b: Num, bTransposed: boolean, alpha: number, out: Dest): void {
  const group = d.qHeads / d.kvHeads, block = new Float64Array(m * n);
  for (let bi = 0; bi < d.batch; bi++) {
    for (let h = 0; h < d.qHeads; h++) {
      const bh = bi * d.qHeads + h, g = bi * d.kvHeads + Math.floor(h / group);
      // K is [S, E] per head and is read as its transpose; V is [S, Dv] and read as is.
      const bm = bTransposed ? { data: b, off: g * n * k, rs: 1, cs: k } : rowMajor(b, n, g * k * n);
      block.fill(0);
      gemm(m, n, k, rowMajor(a, k, bh * m * k), bm, block, 0, n, alpha);
      out.set(block, bh * m * n);
    }
  }
}

/** out [B, Hq, L, S] = scale * Q K^T. */
export function flexScores(d: FlexDims, q: Num, k: Num, scale: number, out: Dest): void {
  perHead(d, d.qLen, d.kvLen, d.headDim, q, k, true, scale, out);
}

/** out [B, Hq, L, Dv] = P V, with P the [B, Hq, L, S] probabilities. */
export function flexMix(d: FlexDims, p: Num, v: Num, out: Dest): void {
  perHead(d, d.qLen, d.vDim, d.kvLen, p, v, false, 1, out);
}
