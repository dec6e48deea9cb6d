// Matrix-vector products for recurrent cells, where each timestep multiplies a few state rows by the
// same weight matrix. The weights are packed once into panels of NB output columns interleaved along k,
// so one step reads consecutive addresses and keeps NB/4 sums in v128 locals.
import { Code, Simd, T, type Func } from './emitter.js';

/** Output columns per panel. Measured under V8 on Zen for k = 128: 4 accumulators with k unrolled by 2
 *  ran 1.3x faster than 8 (NB = 32), and faster than 3, 5 or 6, or unrolling by 4. Sweeping two or
 *  four rows per W load (more accumulators) was no faster: the loop is bound by the multiplies and adds. */
export const NB = 16;

export const roundUp = (x: number, q: number) => Math.ceil(x / q) * q;

/**
 * gemv(rows, panels, k, x, ldx, w, y, ldy): y[i, 0 : panels*NB] += x[i, 0 : k] · W for i < rows, where
 * W is `panels` packed panels at w (panel p holds k steps of NB floats). Addresses and strides in bytes.
 * Each panel is swept over every row while it is in L1.
 */
export function gemvFunc(fma: boolean): Func {
  const [rows, panels, k, x, ldx, w, y, ldy] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [p, i, xp, wp, xe, yp, pw] = [8, 9, 10, 11, 12, 13, 14];
  const nv = NB / 4, acc0 = 15, xv = acc0 + nv;
  const c = new Code();
  /** One k step at byte offsets u*4 of x and u*NB*4 of W. */
  const step = (u: number) => {
    c.get(xp).simd(Simd.load32Splat, [2, 4 * u]).set(xv);
    for (let v = 0; v < nv; v++) {
      c.get(wp).simd(Simd.load, [4, 16 * v + NB * 4 * u]).get(xv);
      if (fma) c.get(acc0 + v).simd(Simd.f32x4RelaxedMadd).set(acc0 + v);
      else c.simd(Simd.f32x4Mul).get(acc0 + v).simd(Simd.f32x4Add).set(acc0 + v);
    }
  };
  c.get(panels).eqz().get(rows).eqz().or().get(k).eqz().or().ifElse(() => c.ret());
  c.get(w).set(pw).i32(0).set(p).loop(() => {
    c.i32(0).set(i).loop(() => {
      c.get(y).get(i).get(ldy).mul().add().get(p).i32(NB * 4).mul().add().set(yp);
      for (let v = 0; v < nv; v++) c.get(yp).simd(Simd.load, [0, 16 * v]).set(acc0 + v);
      // xe: the end of the whole pairs of k steps; an odd last step follows the loop.
      c.get(x).get(i).get(ldx).mul().add().tee(xp).get(k).i32(-2).and().i32(4).mul().add().set(xe).get(pw).set(wp);
      c.get(xp).get(xe).ltU().ifElse(() => c.loop(() => {
        step(0);
        step(1);
        c.get(wp).i32(2 * NB * 4).add().set(wp);
        c.get(xp).i32(8).add().tee(xp).get(xe).ltU().brIf(0);
      }));
      c.get(k).i32(1).and().ifElse(() => step(0));
      for (let v = 0; v < nv; v++) c.get(yp).get(acc0 + v).simd(Simd.store, [0, 16 * v]);
      c.get(i).i32(1).add().tee(i).get(rows).ltU().brIf(0);
    });
    c.get(pw).get(k).i32(NB * 4).mul().add().set(pw);
    c.get(p).i32(1).add().tee(p).get(panels).ltU().brIf(0);
  });
  return { name: 'gemv', params: Array(8).fill(T.i32), results: [], locals: [...Array(7).fill(T.i32), ...Array(nv + 1).fill(T.v128)], body: c };
}

/** Columns one gate takes: padded to whole iterations of the gate functions (rnn.ts, UNROLL vectors). */
export const gateWidth = (hidden: number) => roundUp(hidden, 8);

/** Floats that pack writes for `gates` gates of `hidden` rows of length k. */
export const packedSize = (gates: number, hidden: number, k: number) => roundUp(gates * gateWidth(hidden), NB) * k;

/**
 * pack(src, k, hidden, gates, gw, dst): packs W^T for gemv. Row g*hidden + j of the row-major matrix at
 * src (rows of k floats) becomes output column g*gw + j of the panels at dst, for g < gates, j < hidden;
 * the caller zeroes dst first, for the padding columns. In wasm rather than JS: a copy of the rows plus
 * this loop cost about a tenth of packing element by element in JS, which matters when weights that are
 * not initializers are packed on every call.
 */
export function packFunc(): Func {
  const [src, k, hidden, gates, gw, dst] = [0, 1, 2, 3, 4, 5];
  const [g, j, q, s, d, col] = [6, 7, 8, 9, 10, 11];
  const c = new Code();
  c.get(k).eqz().get(hidden).eqz().or().get(gates).eqz().or().ifElse(() => c.ret());
  c.get(src).set(s).i32(0).set(g).loop(() => {
    c.i32(0).set(j).loop(() => {
      c.get(g).get(gw).mul().get(j).add().set(col);
      // d = dst + 4 * ((col / NB) * NB * k + col % NB)
      c.get(dst).get(col).i32(Math.log2(NB)).shrU().get(k).mul().i32(NB).mul().get(col).i32(NB - 1).and().add().i32(4).mul().add().set(d);
      c.get(k).set(q).loop(() => {
        c.get(d).get(s).load32().store32();
        c.get(s).i32(4).add().set(s).get(d).i32(4 * NB).add().set(d);
        c.get(q).i32(1).sub().tee(q).brIf(0);
      });
      c.get(j).i32(1).add().tee(j).get(hidden).ltU().brIf(0);
    });
    c.get(g).i32(1).add().tee(g).get(gates).ltU().brIf(0);
  });
  return { name: 'pack', params: Array(6).fill(T.i32), results: [], locals: Array(6).fill(T.i32), body: c };
}
