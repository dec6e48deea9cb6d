// float32 convolution in WebAssembly SIMD128 (called by kernels/cpu/conv.ts, which keeps the TypeScript
// kernels for other dtypes, 3-D windows and when wasm is off; pointwise convs stay plain GEMMs there).
// Each (image, group) is prepped once into the window arena (kernels/wasm/window.ts: padded, split into
// column stride phases), so every tap is a contiguous run along the output row. Then:
// - depthwise: a window kernel per kernel geometry;
// - dense or grouped, wide rows: a direct kernel, an implicit GEMM that reads the prepped planes in place;
// - dense or grouped, narrow rows: im2col copies whole vector runs out of the prepped planes, a few output
//   rows at a time, and the GEMM of kernels/cpu/gemm.ts multiplies;
// - ConvTranspose: the GEMM writes columns into the arena and col2im scatter-adds them into the staged output.
// Threads (see kernels/wasm/window.ts): prep splits by input planes, the depthwise window by channels,
// the direct kernel by output rows, im2col by input channels and col2im by output channels, so no two
// threads write the same element and each element is computed as on one thread. The copies between the
// tensors and the arena stay on the calling thread.
import type { Geom3 } from '../cpu/conv.js';
import { gemm, rowMajor } from '../cpu/gemm.js';
import type { Step } from './elementwise.js';
import { gemmWasm } from './gemm.js';
import type { Split } from './chunked.js';
import { Simd, T, type Func } from './emitter.js';
import { hasRelaxedSimd, hasSimd, wasmKernels } from './simd.js';
import { threads, threadsSupported } from './threads.js';
import { Fn, layout, PARALLEL_MIN_WORK, roundUp, SLACK, whileLoop, WindowKernels, type Layout, type Win2 } from './window.js';

// Floats of im2col/col2im columns per GEMM call: large enough that re-copying the weights each call is
// noise, small enough (2 MB) that the columns are still in cache when the GEMM copies them.
const COL_FLOATS = 1 << 19;
// Work per float, in multiply-adds, for the thread threshold (kernels/wasm/window.ts PARALLEL_MIN_WORK):
// prep writes each padded float once; im2col copies and col2im scatter-adds one float per tap, col2im scalar.
const PREP_WEIGHT = 2, COPY_WEIGHT = 4;
// The direct kernel splits output rows when there are at least this many per thread.
const CHUNKS_MIN = 2;

/**
 * im2col(pp, C, Hp, Wq, sw, KH, KW, sh, dh, dw, OW, oh0, oh1, dst): rows (channel, kh, kw) by columns
 * (output rows oh0..oh1 by OW) of taps, from C prepped planes at pp. Each output row is one contiguous
 * run of the prepped plane, copied as whole vectors and then a scalar tail: never past its end, so
 * threads can fill neighbouring rows at once.
 */
function im2colFunc(): Func {
  const f = new Fn('im2col', Array(14).fill(T.i32)), c = f.c;
  const [pp, C, Hp, Wq, sw, KH, KW, sh, dh, dw, OW, oh0, oh1, dst] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
  const rowBytes = f.local(T.i32), ci = f.local(T.i32), kh = f.local(T.i32), kw = f.local(T.i32), t = f.local(T.i32);
  const s = f.local(T.i32), d = f.local(T.i32), e = f.local(T.i32), q = f.local(T.i32), oh = f.local(T.i32), ev = f.local(T.i32);
  c.get(sw).get(Wq).mul().i32(4).mul().set(rowBytes).get(dst).set(d).i32(0).set(ci);
  c.loop(() => {
    c.i32(0).set(kh).loop(() => {
      c.i32(0).set(kw).loop(() => {
        c.get(kw).get(dw).mul().set(t);
        c.get(pp).get(ci).get(Hp).mul().get(oh0).get(sh).mul().add().get(kh).get(dh).mul().add().get(rowBytes).mul().add();
        c.get(t).get(sw).remS().get(Wq).mul().get(t).get(sw).divS().add().i32(4).mul().add().set(s);
        c.get(oh0).set(oh).loop(() => {
          c.get(d).get(OW).i32(4).mul().add().set(e).get(d).get(OW).i32(-4).and().i32(4).mul().add().set(ev).get(s).set(q);
          whileLoop(c, () => c.get(d).get(ev).ltU(), () => {
            c.get(d).get(q).simd(Simd.load, [0, 0]).simd(Simd.store, [0, 0]);
            c.get(q).i32(16).add().set(q).get(d).i32(16).add().set(d);
          });
          whileLoop(c, () => c.get(d).get(e).ltU(), () => {
            c.get(d).get(q).load32().store32();
            c.get(q).i32(4).add().set(q).get(d).i32(4).add().set(d);
          });
          c.get(s).get(sh).get(rowBytes).mul().add().set(s);
          c.get(oh).i32(1).add().tee(oh).get(oh1).ltU().brIf(0);
        });
        c.get(kw).i32(1).add().tee(kw).get(KW).ltU().brIf(0);
      });
      c.get(kh).i32(1).add().tee(kh).get(KH).ltU().brIf(0);
    });
    c.get(ci).i32(1).add().tee(ci).get(C).ltU().brIf(0);
  });
  return f.func();
}

/**
 * col2im(col, MG, KH, KW, rows, ih0, IW, OH, OW, sh, sw, dh, dw, ph, pw, tab, y): scatter-adds rows
 * (channel, kh, kw) by columns (input rows ih0..ih0+rows by IW) into MG planes of OH x OW at y. tab holds,
 * per kw, the i32 range [lo, hi) of input columns whose output column lies inside the plane.
 */
function col2imFunc(): Func {
  const f = new Fn('col2im', Array(17).fill(T.i32)), c = f.c;
  const [col, MG, KH, KW, rows, ih0, IW, OH, OW, sh, sw, dh, dw, ph, pw, tab, y] = Array.from({ length: 17 }, (_, i) => i);
  const s = f.local(T.i32), mo = f.local(T.i32), kh = f.local(T.i32), kw = f.local(T.i32), lo = f.local(T.i32), hi = f.local(T.i32);
  const r = f.local(T.i32), oh = f.local(T.i32), d = f.local(T.i32), q = f.local(T.i32), n = f.local(T.i32);
  c.get(col).set(s).i32(0).set(mo);
  c.loop(() => {
    c.i32(0).set(kh).loop(() => {
      c.i32(0).set(kw).loop(() => {
        c.get(tab).get(kw).i32(8).mul().add().load32(0).set(lo).get(tab).get(kw).i32(8).mul().add().load32(4).set(hi);
        c.i32(0).set(r).loop(() => {
          c.get(ih0).get(r).add().get(sh).mul().get(ph).sub().get(kh).get(dh).mul().add().tee(oh).get(OH).ltU().get(lo).get(hi).ltS().and().ifElse(() => {
            c.get(y).get(mo).get(OH).mul().get(oh).add().get(OW).mul().get(lo).get(sw).mul().add().get(pw).sub().get(kw).get(dw).mul().add().i32(4).mul().add().set(d);
            c.get(s).get(lo).i32(4).mul().add().set(q).get(hi).get(lo).sub().set(n);
            c.loop(() => {
              c.get(d).get(d).f32Load().get(q).f32Load().f32Add().f32Store();
              c.get(d).get(sw).i32(4).mul().add().set(d).get(q).i32(4).add().set(q);
              c.get(n).i32(1).sub().tee(n).brIf(0);
            });
          });
          c.get(s).get(IW).i32(4).mul().add().set(s);
          c.get(r).i32(1).add().tee(r).get(rows).ltU().brIf(0);
        });
        c.get(kw).i32(1).add().tee(kw).get(KW).ltU().brIf(0);
      });
      c.get(kh).i32(1).add().tee(kh).get(KH).ltU().brIf(0);
    });
    c.get(mo).i32(1).add().tee(mo).get(MG).ltU().brIf(0);
  });
  return f.func();
}

/**
 * The direct convolution kernel (an implicit GEMM: the B operand is read straight from the prepped planes,
 * so nothing is packed or copied per call): dense(kt, kn, pp, shBytes, OH, nt, jb, mb, wp, out, outPlaneBytes, bias).
 * The k dimension is (input channel, tap); the table at kt holds each step's i32 byte offset into the
 * prepped planes, so one rolled loop serves every geometry (unrolling the taps by hand made TurboFan hoist
 * their loads and spill, at half the speed). Output tiles are 4 channels by 8 columns of one row,
 * accumulated in 8 v128 locals; weights are packed as [mb][k][4]. Out holds mb*4 planes of OH rows of
 * nt*8 floats; each tile starts from the channels' biases (mb*4 floats at bias) or, with bias = 0, from
 * out. Loop order: rows, then blocks of jb tiles, then channel blocks, then the tiles of the block.
 */
function denseFunc(fma: boolean): Func {
  const f = new Fn('dense', Array(12).fill(T.i32)), c = f.c;
  const [kt, kn, pp, shBytes, OH, nt, jb, mb, wp, out, outPlaneBytes, bias] = Array.from({ length: 12 }, (_, i) => i);
  const [oh, mbi, r0, wblk, wStep, j, j0, j1, jEnd, pc, a, p, pEnd, at, bb] = Array.from({ length: 15 }, () => f.local(T.i32));
  const orow = Array.from({ length: 4 }, () => f.local(T.i32));
  const acc = Array.from({ length: 8 }, () => f.local(T.v128)), b = [f.local(T.v128), f.local(T.v128)], av = f.local(T.v128);
  c.get(nt).i32(32).mul().set(jEnd).get(kn).i32(16).mul().set(wStep).get(kt).get(kn).i32(4).mul().add().set(pEnd);
  c.get(pp).set(r0).i32(0).set(oh);
  c.loop(() => {
    c.i32(0).set(j0);
    c.loop(() => {
      c.get(j0).get(jb).i32(32).mul().add().tee(j1).get(jEnd).get(j1).get(jEnd).ltU().select().set(j1);
      c.i32(0).set(mbi).get(wp).set(wblk);
      c.loop(() => {
        c.get(out).get(mbi).i32(4).mul().get(outPlaneBytes).mul().add().get(oh).get(jEnd).mul().add().set(orow[0]);
        for (let r = 1; r < 4; r++) c.get(orow[r - 1]).get(outPlaneBytes).add().set(orow[r]);
        c.get(bias).get(mbi).i32(16).mul().add().set(bb).get(j0).set(j);
        c.loop(() => {
          c.get(bias).ifElse(() => {
            for (let r = 0; r < 4; r++) c.get(bb).simd(Simd.load32Splat, [2, 4 * r]).tee(acc[2 * r]).set(acc[2 * r + 1]);
          }, () => {
            for (let r = 0; r < 4; r++) for (let v = 0; v < 2; v++) c.get(orow[r]).get(j).add().simd(Simd.load, [0, 16 * v]).set(acc[2 * r + v]);
          });
          c.get(r0).get(j).add().set(pc).get(wblk).set(a).get(kt).set(p);
          c.loop(() => {
            c.get(pc).get(p).load32().add().set(at);
            for (let v = 0; v < 2; v++) c.get(at).simd(Simd.load, [0, 16 * v]).set(b[v]);
            for (let r = 0; r < 4; r++) {
              c.get(a).simd(Simd.load32Splat, [2, 4 * r]).set(av);
              for (let v = 0; v < 2; v++) {
                const ac = acc[2 * r + v];
                if (fma) c.get(av).get(b[v]).get(ac).simd(Simd.f32x4RelaxedMadd).set(ac);
                else c.get(ac).get(av).get(b[v]).simd(Simd.f32x4Mul).simd(Simd.f32x4Add).set(ac);
              }
            }
            c.get(a).i32(16).add().set(a);
            c.get(p).i32(4).add().tee(p).get(pEnd).ltU().brIf(0);
          });
          for (let r = 0; r < 4; r++) for (let v = 0; v < 2; v++) c.get(orow[r]).get(j).add().get(acc[2 * r + v]).simd(Simd.store, [0, 16 * v]);
          c.get(j).i32(32).add().tee(j).get(j1).ltU().brIf(0);
        });
        c.get(wblk).get(wStep).add().set(wblk);
        c.get(mbi).i32(1).add().tee(mbi).get(mb).ltU().brIf(0);
      });
      c.get(j1).tee(j0).get(jEnd).ltU().brIf(0);
    });
    c.get(r0).get(shBytes).add().set(r0);
    c.get(oh).i32(1).add().tee(oh).get(OH).ltU().brIf(0);
  });
  return f.func();
}

// Built on first use, one over shared memory (for threads) and one over plain memory; null when
// WebAssembly cannot be compiled here (a page whose CSP forbids it).
const built: { shared?: WindowKernels | null; plain?: WindowKernels | null } = {};

/**
 * The window arena and modules for the current thread count (kernels/wasm/pool.ts uses them too); null
 * without WebAssembly. One thread gets plain memory: V8 copies typed arrays into and out of shared memory
 * with relaxed atomics, at about 1.5x the time of a plain copy, which cost the copy-bound window layers
 * 10-15% measured on one thread.
 */
export function windowKernels(work = Infinity): WindowKernels | null {
  // A call too small to split uses the plain-memory arena whatever the thread count: V8 copies into it faster.
  const which = threads() > 1 && threadsSupported() && work >= PARALLEL_MIN_WORK ? 'shared' : 'plain';
  if (built[which] === undefined) {
    try {
      built[which] = new WindowKernels([im2colFunc(), col2imFunc(), denseFunc(hasRelaxedSimd)], which === 'shared');
    } catch {
      built[which] = null;
    }
  }
  return built[which]!;
}

/** The 2-D window of a geometry whose depth dim is trivial (1-D and 2-D ops); undefined for a real 3-D one. */
export function win2(g: Geom3): Win2 | undefined {
  if (g.inS[0] !== 1 || g.out[0] !== 1 || g.k[0] !== 1 || g.p[0] !== 0) return undefined;
  return { H: g.inS[1], W: g.inS[2], OH: g.out[1], OW: g.out[2], KH: g.k[1], KW: g.k[2], sh: g.s[1], sw: g.s[2], dh: g.d[1], dw: g.d[2], ph: g.p[1], pw: g.p[2] };
}

type Num = { [i: number]: number; length: number };

/** The kernels, the 2-D window and the arrays as float32, when float32 wasm applies to them; else undefined. */
function applies(g: Geom3, x: Num, w: Num, y: Num, bias: Num | undefined, work: number) {
  if (!hasSimd || !wasmKernels() || !(x instanceof Float32Array && w instanceof Float32Array && y instanceof Float32Array)) return undefined;
  if (!(bias === undefined || bias instanceof Float32Array)) return undefined;
  const v = win2(g), K = v && windowKernels(work);
  return v && K ? { K, v, X: x, W: w, Y: y, B: bias } : undefined;
}

const align = (floats: number) => roundUp(floats, 16);

/**
 * Every entry point below follows kernels/cpu/conv.ts: with `bias` (one float per output channel), y =
 * conv(x, w) + bias and y's contents are never read; without it, y += conv(x, w). Each returns false,
 * having done nothing, when wasm does not apply (then the TypeScript kernel runs).
 */
type Bias = Num | undefined;

/** Sets `planes` planes of `size` floats at data[off..] to bias[b0], bias[b0 + 1], ... */
export function fillPlanes(data: Float32Array, off: number, planes: number, size: number, bias: Float32Array, b0: number): void {
  for (let p = 0; p < planes; p++) data.fill(bias[b0 + p], off + p * size, off + (p + 1) * size);
}

/** Depthwise conv: one input channel per group, mg output channels each. */
export function depthwiseWasm(x: Num, w: Num, y: Num, n: number, c: number, mg: number, g: Geom3, bias?: Bias, steps?: readonly Step[]): boolean {
  const ok = applies(g, x, w, y, bias, y.length * g.k[1] * g.k[2]);
  if (!ok) return false;
  const { K, v, X, W, Y, B } = ok, L = layout(v), kk = v.KH * v.KW, m = c * mg, inPlane = v.H * v.W, outPlane = v.OH * v.OW;
  if (n * c * outPlane === 0) return true;
  const { nt, batch, per } = K.batches(c, inPlane + L.planeFloats + mg * (kk + 1 + v.OH * L.OWp), mg * outPlane * kk);
  const x0 = K.arena.base, ppAt = align(x0 + batch * inPlane), wAt = align(ppAt + batch * L.planeFloats + SLACK), bAt = align(wAt + batch * mg * kk);
  const outAt = align(bAt + batch * mg);
  if (!K.arena.reserve(outAt + batch * mg * v.OH * L.OWp + SLACK)) return false;
  for (let b = 0; b < n; b++) {
    for (let c0 = 0; c0 < c; c0 += batch) {
      const nc = Math.min(batch, c - c0), xOff = (b * c + c0) * inPlane, yOff = (b * m + c0 * mg) * outPlane;
      const stage = () => K.arena.putRows(Y, yOff, nc * mg, v.OH, v.OW, outAt, L.OWp);
      K.arena.f32.set(X.subarray(xOff, xOff + nc * inPlane), x0);
      K.arena.f32.set(W.subarray(c0 * mg * kk, (c0 + nc) * mg * kk), wAt);
      if (B) K.arena.f32.set(B.subarray(c0 * mg, (c0 + nc) * mg), bAt);
      else stage();
      K.windowed('conv', v, L, nc, mg, x0, ppAt, wAt, outAt, B ? bAt : 0, 0, nt, B ? undefined : stage, per);
      if (steps?.length) K.arena.applySteps(outAt, nc * mg * v.OH * L.OWp, steps);
      K.arena.getRows(Y, yOff, nc * mg, v.OH, v.OW, outAt, L.OWp);
    }
  }
  return true;
}

/** Grouped or dense conv through im2col and GEMM (which runs on the threads itself). */
export function im2colConvWasm(x: Num, w: Num, y: Num, n: number, c: number, m: number, group: number, g: Geom3, bias?: Bias): boolean {
  const ok = applies(g, x, w, y, bias, y.length * (w.length / m));
  if (!ok) return false;
  const { K, v, X, W, Y, B } = ok, L = layout(v), cg = c / group, mg = m / group, kk = v.KH * v.KW, kdim = cg * kk, inPlane = v.H * v.W, outSize = v.OH * v.OW;
  if (n * m * outSize === 0 || kdim === 0) {
    if (B) for (let b = 0; b < n; b++) fillPlanes(Y, b * m * outSize, m, outSize, B, 0);
    return true;
  }
  const rowsPer = Math.max(1, Math.min(v.OH, Math.floor(COL_FLOATS / (kdim * v.OW))));
  const x0 = K.arena.base, ppAt = align(x0 + cg * inPlane), colAt = align(ppAt + cg * L.planeFloats + SLACK);
  if (!K.arena.reserve(colAt + kdim * rowsPer * v.OW + SLACK)) return false;
  const ntPrep = K.threadsFor(PREP_WEIGHT * cg * L.planeFloats), ntCopy = K.threadsFor(COPY_WEIGHT * kdim * rowsPer * v.OW);
  for (let b = 0; b < n; b++) {
    for (let gi = 0; gi < group; gi++) {
      const xOff = (b * c + gi * cg) * inPlane, yOff = (b * m + gi * mg) * outSize, wv = rowMajor(W, kdim, gi * mg * kdim);
      K.arena.f32.set(X.subarray(xOff, xOff + cg * inPlane), x0);
      K.prepPlanes(v, L, cg, x0, ppAt, 0, ntPrep);
      for (let oh0 = 0; oh0 < v.OH; oh0 += rowsPer) {
        const oh1 = Math.min(v.OH, oh0 + rowsPer), len = (oh1 - oh0) * v.OW;
        K.call(K.generic, 'im2col', [4 * ppAt, cg, L.Hp, L.Wq, v.sw, v.KH, v.KW, v.sh, v.dh, v.dw, v.OW, oh0, oh1, 4 * colAt],
          { count: 1, steps: { 0: 4 * L.planeFloats, 13: 4 * kk * len } }, ntCopy);
        // The GEMM's epilogue starts the block from the bias (no pass of its own); else fill, then accumulate.
        const cols = rowMajor(K.arena.f32, len, colAt), at = yOff + oh0 * v.OW, bg = B?.subarray(gi * mg, (gi + 1) * mg);
        if (bg && gemmWasm(mg, len, kdim, wv, cols, Y, at, outSize, 1, { bias: bg, perRow: true, steps: [] })) continue;
        if (bg) for (let i = 0; i < mg; i++) Y.fill(bg[i], at + i * outSize, at + i * outSize + len);
        gemm(mg, len, kdim, wv, cols, Y, at, outSize);
      }
    }
  }
  return true;
}

type Dense = (kt: number, kn: number, pp: number, shBytes: number, OH: number, nt: number, jb: number, mb: number, wp: number, out: number,
  outPlaneBytes: number, bias: number) => void;

/** Byte offset into the prepped planes of each k step (input channel, kh, kw) for output (0, 0). */
function kOffsets(v: Win2, L: Layout, cg: number): Int32Array {
  const kk = v.KH * v.KW, tab = new Int32Array(cg * kk);
  for (let ci = 0, q = 0; ci < cg; ci++) {
    for (let kh = 0; kh < v.KH; kh++) {
      for (let kw = 0; kw < v.KW; kw++, q++) {
        const t = kw * v.dw;
        tab[q] = 4 * (ci * L.planeFloats + kh * v.dh * v.sw * L.Wq + (t % v.sw) * L.Wq + Math.floor(t / v.sw));
      }
    }
  }
  return tab;
}

/** Packs group gi's mg x cg x kk weights as [mg/4][cg][kk][4] (zero rows past mg) at float index `at`. */
function packWeights(w: Float32Array, off: number, mg: number, cg: number, kk: number, heap: Float32Array, at: number): void {
  for (let mb = 0; mb < mg; mb += 4) {
    for (let ci = 0; ci < cg; ci++) {
      for (let t = 0; t < kk; t++, at += 4) {
        for (let r = 0; r < 4; r++) heap[at + r] = mb + r < mg ? w[off + ((mb + r) * cg + ci) * kk + t] : 0;
      }
    }
  }
}

// Tiles per block of the direct kernel's row sweep (measured: 1 to 16 and whole rows ran within noise).
const JB = 4;

/** Dense or grouped conv by the direct kernel. */
export function directConvWasm(x: Num, w: Num, y: Num, n: number, c: number, m: number, group: number, g: Geom3, bias?: Bias, steps?: readonly Step[]): boolean {
  const ok = applies(g, x, w, y, bias, y.length * (w.length / m));
  if (!ok) return false;
  const { K, v, X, W, Y, B } = ok, L = layout(v), cg = c / group, mg = m / group, kk = v.KH * v.KW, inPlane = v.H * v.W, outPlane = v.OH * v.OW;
  if (cg === 0 && B) for (let b = 0; b < n; b++) fillPlanes(Y, b * m * outPlane, m, outPlane, B, 0);
  if (n * m * outPlane === 0 || cg === 0) return true;
  // Tiles are 8 columns wide: output rows are staged with a stride of OW rounded up to 8, channels to 4.
  const OWt = roundUp(v.OW, 8), mp = roundUp(mg, 4), stagePlane = v.OH * OWt;
  const x0 = K.arena.base, ppAt = align(x0 + cg * inPlane), wAt = align(ppAt + cg * L.planeFloats + SLACK), ktAt = align(wAt + mp * cg * kk);
  const bAt = align(ktAt + cg * kk), outAt = align(bAt + mp);
  if (!K.arena.reserve(outAt + mp * stagePlane + SLACK)) return false;
  new Int32Array(K.arena.memory.buffer).set(kOffsets(v, L, cg), ktAt);
  const ntPrep = K.threadsFor(PREP_WEIGHT * cg * L.planeFloats), ntDense = K.threadsFor(mp * cg * kk * stagePlane);
  const args = [4 * ktAt, cg * kk, 4 * ppAt, v.sh * L.rowBytes, v.OH, OWt / 8, JB, mp / 4, 4 * wAt, 4 * outAt, 4 * stagePlane, B ? 4 * bAt : 0];
  // Threads split the output rows (a chunk starts its prepped rows and staged rows further on) or, with
  // too few rows (1-D convs), the blocks of 4 channels (a chunk starts its weights, staged planes and
  // biases further on; without biases the 0 that says so must stay 0).
  const split: Split = v.OH >= CHUNKS_MIN * ntDense ? { count: 4, steps: { 2: v.sh * L.rowBytes, 9: 4 * OWt } }
    : { count: 7, steps: { 8: 16 * cg * kk, 9: 16 * stagePlane, 11: B ? 16 : 0 } };
  for (let gi = 0; gi < group; gi++) {
    packWeights(W, gi * mg * cg * kk, mg, cg, kk, K.arena.f32, wAt);
    if (B) K.arena.f32.fill(0, bAt, bAt + mp).set(B.subarray(gi * mg, (gi + 1) * mg), bAt);
    for (let b = 0; b < n; b++) {
      const xOff = (b * c + gi * cg) * inPlane, yOff = (b * m + gi * mg) * outPlane;
      const stage = () => {
        K.arena.putRows(Y, yOff, mg, v.OH, v.OW, outAt, OWt);
        // Rows past mg only collect products with zero weights; zeroed so stale bits there are not denormals.
        K.arena.f32.fill(0, outAt + mg * stagePlane, outAt + mp * stagePlane);
      };
      K.arena.f32.set(X.subarray(xOff, xOff + cg * inPlane), x0);
      K.prepPlanes(v, L, cg, x0, ppAt, 0, ntPrep);
      if (!B) stage();
      K.call(K.generic, 'dense', args, split, ntDense, B ? undefined : stage);
      if (steps?.length) K.arena.applySteps(outAt, mg * stagePlane, steps);
      K.arena.getRows(Y, yOff, mg, v.OH, v.OW, outAt, OWt);
    }
  }
  return true;
}

/**
 * Dense or grouped float32 conv (not depthwise). Wide outputs take the direct kernel; rows much narrower
 * than its 8-column tiles (whose padding would be wasted work) take im2col and GEMM.
 */
export function convWasm(x: Num, w: Num, y: Num, n: number, c: number, m: number, group: number, g: Geom3, bias?: Bias, steps?: readonly Step[]): boolean | 'stepped' {
  const ow = g.out[2], waste = roundUp(ow, 8) - ow;
  if (ow >= 16 && waste * 8 <= ow) return directConvWasm(x, w, y, n, c, m, group, g, bias, steps) && (steps?.length ? 'stepped' : true);
  return im2colConvWasm(x, w, y, n, c, m, group, g, bias);
}

/** Per kernel column kw, the input columns [lo, hi) whose output column iw*sw - pw + kw*dw lies in [0, OW). */
function columnRanges(v: Win2): Int32Array {
  const tab = new Int32Array(2 * v.KW);
  for (let kw = 0; kw < v.KW; kw++) {
    const start = kw * v.dw - v.pw, lo = Math.max(0, Math.ceil(-start / v.sw)), hi = Math.min(v.W, Math.floor((v.OW - 1 - start) / v.sw) + 1);
    tab[2 * kw] = lo; tab[2 * kw + 1] = Math.max(lo, hi);
  }
  return tab;
}

/** ConvTranspose with the geometry of kernels/cpu/conv.ts convTranspose (g.inS the input, g.out the output, g.p the leading crop). */
export function convTransposeWasm(x: Num, w: Num, y: Num, n: number, c: number, m: number, group: number, g: Geom3, bias?: Bias): boolean {
  const ok = applies(g, x, w, y, bias, x.length * (w.length / c));
  if (!ok) return false;
  const { K, v, X, W, Y, B } = ok, cg = c / group, mg = m / group, kk = v.KH * v.KW, kdim = mg * kk, inSize = v.H * v.W, outPlane = v.OH * v.OW;
  if (n * m * outPlane === 0) return true;
  const rowsPer = Math.max(1, Math.min(v.H, Math.floor(COL_FLOATS / Math.max(1, kdim * v.W))));
  const colAt = K.arena.base, tabAt = align(colAt + kdim * rowsPer * v.W), yAt = align(tabAt + 2 * v.KW);
  if (!K.arena.reserve(yAt + mg * outPlane)) return false;
  new Int32Array(K.arena.memory.buffer).set(columnRanges(v), tabAt);
  const nt = K.threadsFor(COPY_WEIGHT * kdim * rowsPer * v.W);
  /** One (image, group) on up to nt threads; false if a worker failed (the staged output is then undefined). */
  const planes = (b: number, gi: number, nt: number): boolean => {
    const yOff = (b * m + gi * mg) * outPlane, xOff = (b * c + gi * cg) * inSize;
    // A = W_g transposed: element (row r of mg*k, input channel ci) is w[(gi*cg + ci)*kdim + r].
    const wt = { data: W, off: gi * cg * kdim, rs: 1, cs: kdim };
    if (B) fillPlanes(K.arena.f32, yAt, mg, outPlane, B, gi * mg);
    else K.arena.f32.set(Y.subarray(yOff, yOff + mg * outPlane), yAt);
    for (let ih0 = 0; ih0 < v.H && cg > 0; ih0 += rowsPer) {
      const rows = Math.min(rowsPer, v.H - ih0), len = rows * v.W;
      K.arena.f32.fill(0, colAt, colAt + kdim * len);
      gemm(kdim, len, cg, wt, rowMajor(X, inSize, xOff + ih0 * v.W), K.arena.f32, colAt, len);
      const args = [4 * colAt, mg, v.KH, v.KW, rows, ih0, v.W, v.OH, v.OW, v.sh, v.sw, v.dh, v.dw, v.ph, v.pw, 4 * tabAt, 4 * yAt];
      if (!K.tryCall(K.generic, 'col2im', args, { count: 1, steps: { 0: 4 * kk * len, 16: 4 * outPlane } }, nt)) return false;
    }
    Y.set(K.arena.f32.subarray(yAt, yAt + mg * outPlane), yOff);
    return true;
  };
  for (let b = 0; b < n; b++) for (let gi = 0; gi < group; gi++) if (!planes(b, gi, nt)) planes(b, gi, 1);
  return true;
}
