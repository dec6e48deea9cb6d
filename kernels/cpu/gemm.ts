// Matrix products over typed arrays. Large float32 products go to the WebAssembly SIMD kernel
// (kernels/wasm/gemm.ts, float32 accumulation). The TypeScript kernel is a blocked GEMM: panels of A and B are packed
// into Float64Array buffers (one element type keeps the inner loop monomorphic, and float64
// accumulation keeps 8/16-bit integer products exact), then a 4x4 micro-tile accumulates in locals.
// Operands are strided views, so transposed inputs and im2col layouts need no copies.

import { gemmWasm } from '../wasm/gemm.js';

type Num = { [i: number]: number; length: number };
type Big = BigInt64Array | BigUint64Array;

/** A matrix view: element (i, j) is data[off + i * rs + j * cs]. */
export interface Mat<T = Num> { data: T; off: number; rs: number; cs: number }

export const rowMajor = <T>(data: T, cols: number, off = 0): Mat<T> => ({ data, off, rs: cols, cs: 1 });
export const transposed = <T>(m: Mat<T>): Mat<T> => ({ data: m.data, off: m.off, rs: m.cs, cs: m.rs });

const MR = 4, NR = 4;
// KC x NR B micro-panels stay in L1 across a row of tiles; the MC x KC A block stays in L2.
const KC = 256, MC = 64, NC = 1024;
const packA = new Float64Array(MC * KC), packB = new Float64Array(KC * NC);
const edge = new Float64Array(MR * NR);

/** c[cOff + i*ldc + j] += alpha * sum_p A(i,p) * B(p,j), for i < m, j < n. */
export function gemm(m: number, n: number, k: number, a: Mat, b: Mat, c: Num, cOff: number, ldc: number, alpha = 1): void {
  // float32 products big enough to repay packing run in WebAssembly SIMD (kernels/wasm/gemm.ts).
  if (!gemmWasm(m, n, k, a, b, c, cOff, ldc, alpha)) gemmJs(m, n, k, a, b, c, cOff, ldc, alpha);
}

/** The TypeScript kernel behind gemm: any numeric arrays, float64 accumulation. */
export function gemmJs(m: number, n: number, k: number, a: Mat, b: Mat, c: Num, cOff: number, ldc: number, alpha = 1): void {
  if (m === 0 || n === 0 || k === 0) return;
  // Packing costs O(mk + kn); for thin products it would dominate the O(mnk) work.
  if (m < MR || n < NR) return gemmSmall(m, n, k, a, b, c, cOff, ldc, alpha);
  for (let jc = 0; jc < n; jc += NC) {
    const nc = Math.min(NC, n - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      packPanels(b.data, b.off + pc * b.rs + jc * b.cs, b.cs, b.rs, nc, kc, NR, packB);
      for (let ic = 0; ic < m; ic += MC) {
        const mc = Math.min(MC, m - ic);
        packPanels(a.data, a.off + ic * a.rs + pc * a.cs, a.rs, a.cs, mc, kc, MR, packA);
        for (let jr = 0; jr < nc; jr += NR) {
          for (let ir = 0; ir < mc; ir += MR) {
            micro(kc, ir * kc, jr * kc, c, cOff + (ic + ir) * ldc + jc + jr, ldc, alpha, Math.min(MR, mc - ir), Math.min(NR, nc - jr));
          }
        }
      }
    }
  }
}

/**
 * Packs `count` lines (line stride `ls`) of `depth` elements (element stride `es`) into panels of `w`
 * lines, interleaved so the micro-kernel reads w consecutive values per depth step; short panels are
 * zero-filled. MC, NC are multiples of MR, NR, so the fixed buffers always fit.
 */
function packPanels(src: Num, off: number, ls: number, es: number, count: number, depth: number, w: number, dst: Float64Array): void {
  let q = 0;
  for (let l0 = 0; l0 < count; l0 += w) {
    const lanes = Math.min(w, count - l0);
    for (let p = 0; p < depth; p++) {
      const base = off + l0 * ls + p * es;
      let r = 0;
      for (; r < lanes; r++) dst[q++] = src[base + r * ls];
      for (; r < w; r++) dst[q++] = 0;
    }
  }
}

function micro(kc: number, ai: number, bi: number, c: Num, co: number, ldc: number, alpha: number, mr: number, nr: number): void {
  const ap = packA, bp = packB;
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let p = 0; p < kc; p++, ai += MR, bi += NR) {
    const a0 = ap[ai], a1 = ap[ai + 1], a2 = ap[ai + 2], a3 = ap[ai + 3];
    let b = bp[bi];
    c00 += a0 * b; c10 += a1 * b; c20 += a2 * b; c30 += a3 * b;
    b = bp[bi + 1];
    c01 += a0 * b; c11 += a1 * b; c21 += a2 * b; c31 += a3 * b;
    b = bp[bi + 2];
    c02 += a0 * b; c12 += a1 * b; c22 += a2 * b; c32 += a3 * b;
    b = bp[bi + 3];
    c03 += a0 * b; c13 += a1 * b; c23 += a2 * b; c33 += a3 * b;
  }
  if (mr === MR && nr === NR) {
    c[co] += alpha * c00; c[co + 1] += alpha * c01; c[co + 2] += alpha * c02; c[co + 3] += alpha * c03; co += ldc;
    c[co] += alpha * c10; c[co + 1] += alpha * c11; c[co + 2] += alpha * c12; c[co + 3] += alpha * c13; co += ldc;
    c[co] += alpha * c20; c[co + 1] += alpha * c21; c[co + 2] += alpha * c22; c[co + 3] += alpha * c23; co += ldc;
    c[co] += alpha * c30; c[co + 1] += alpha * c31; c[co + 2] += alpha * c32; c[co + 3] += alpha * c33;
    return;
  }
  edge.set([c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33]);
  for (let r = 0; r < mr; r++) for (let j = 0; j < nr; j++) c[co + r * ldc + j] += alpha * edge[r * NR + j];
}

/**
 * Unblocked product for few rows or columns. With B's columns contiguous (a transposed weight, as in
 * Gemm transB=1) each output is a dot product; otherwise B streams row by row into a row of C.
 */
function gemmSmall(m: number, n: number, k: number, a: Mat, b: Mat, c: Num, cOff: number, ldc: number, alpha: number): void {
  const ad = a.data, bd = b.data;
  if (b.rs === 1 && b.cs !== 1) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0, qa = a.off + i * a.rs, qb = b.off + j * b.cs; p < k; p++, qa += a.cs, qb++) s += ad[qa] * bd[qb];
        c[cOff + i * ldc + j] += alpha * s;
      }
    }
    return;
  }
  const acc = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    acc.fill(0);
    for (let p = 0; p < k; p++) {
      const x = ad[a.off + i * a.rs + p * a.cs];
      for (let j = 0, q = b.off + p * b.rs; j < n; j++, q += b.cs) acc[j] += x * bd[q];
    }
    for (let j = 0, o = cOff + i * ldc; j < n; j++) c[o + j] += alpha * acc[j];
  }
}

/** Exact 32-bit integer product, wrapping like C int32 arithmetic: c += A·B (c stores wrap to its width). */
export function gemmInt32(m: number, n: number, k: number, a: Mat, b: Mat, c: Num, cOff: number, ldc: number): void {
  const ad = a.data, bd = b.data;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0, qa = a.off + i * a.rs, qb = b.off + j * b.cs; p < k; p++, qa += a.cs, qb += b.rs) s = (s + Math.imul(ad[qa], bd[qb])) | 0;
      c[cOff + i * ldc + j] = (c[cOff + i * ldc + j] + s) | 0;
    }
  }
}

/** Exact 64-bit integer product; BigInt64Array/BigUint64Array stores wrap modulo 2^64. */
export function gemmBig(m: number, n: number, k: number, a: Mat<Big>, b: Mat<Big>, c: Big, cOff: number, ldc: number): void {
  const ad = a.data, bd = b.data;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0n;
      for (let p = 0, qa = a.off + i * a.rs, qb = b.off + j * b.cs; p < k; p++, qa += a.cs, qb += b.rs) s += ad[qa] * bd[qb];
      c[cOff + i * ldc + j] += s;
    }
  }
}
