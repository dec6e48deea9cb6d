// f32 GEMM in WebAssembly SIMD128, built once at runtime by kernels/wasm/emitter.ts.
// Operands are copied into one persistent WebAssembly.Memory with TypedArray.set at memcpy speed (packing
// element by element in JS measured 2-4 ns per float, packing in wasm 0.3-0.5 ns). Wasm then
// packs blocks of A into MR-row panels and of B into NR-column panels, interleaved along k so the
// micro-kernel reads consecutive addresses, zero-padded to whole tiles. One kernel call sweeps an
// MC x NC block of C with an MR x NR micro-kernel whose accumulators live in v128 locals. C is staged
// through wasm memory with its row stride padded to NR, so every tile is full and nothing has edge cases.
import type { Mat } from '../cpu/gemm.js';
import { buildModule, Code, Simd, T, type Func } from './emitter.js';
import { hasRelaxedSimd, hasSimd, wasmKernels } from './simd.js';

export interface KernelShape { mr: number; nr: number; fma: boolean }

// 4x8: 8 accumulators + 2 B vectors + an A splat + a product temporary fit x64's 16 xmm registers
// (V8 keeps one as scratch), so the k-loop never spills. Measured on Zen 3 under V8: 4x8 ran 1.4-1.7x
// faster than 4x12, 4x16, 5x8, 6x8 and 8x8. The k-loop is emitted rolled: TurboFan unrolls small
// loops itself, and unrolling by hand made it hoist every load of the unrolled body, spilling.
export const SHAPE: KernelShape = { mr: 4, nr: 8, fma: hasRelaxedSimd };
// KC x NR B panels (8 KB) stay in L1 while the MC x KC A block (128 KB) streams from L2.
const KC = 256, MC = 128, NC = 2048;
// Staged C is at most about this many floats, bounding memory for tall products (rows are chunked).
const C_STAGE = 1 << 21;

/**
 * Module exporting kernel, packA and packB.
 * kernel(mc, nc, kc, pa, pb, pc, ldc, alpha): C[mc x nc] += alpha * A·B, where A is mc/MR packed
 * panels at byte address pa, B is nc/NR packed panels at pb, C is at pc with a row stride of ldc bytes;
 * mc and nc are multiples of MR and NR, kc > 0.
 */
export function kernelModule({ mr, nr, fma }: KernelShape): Uint8Array<ArrayBuffer> {
  const nv = nr / 4;
  const [mc, nc, kc, pa, pb, pc, ldc, alpha] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [ap, bp, cj, ci, a, b, end, iEnd, jEnd, row] = [8, 9, 10, 11, 12, 13, 14, 15, 16, 17];
  const alphaV = 18, acc0 = 19, bv0 = acc0 + mr * nv, av = bv0 + nv;
  const locals = [...Array(10).fill(T.i32), ...Array(2 + mr * nv + nv).fill(T.v128)];
  const acc = (r: number, v: number) => acc0 + r * nv + v;
  const c = new Code();
  c.get(alpha).simd(Simd.f32x4Splat).set(alphaV);
  c.get(pb).get(nc).get(kc).mul().i32(4).mul().add().set(jEnd);
  c.get(pa).get(mc).get(kc).mul().i32(4).mul().add().set(iEnd);
  c.get(pb).set(bp).get(pc).set(cj);
  c.loop(() => {
    c.get(pa).set(ap).get(cj).set(ci);
    c.loop(() => {
      for (let i = 0; i < mr * nv; i++) c.v128Zero().set(acc0 + i);
      c.get(ap).set(a).get(bp).set(b).get(ap).get(kc).i32(mr * 4).mul().add().set(end);
      c.loop(() => {
        for (let v = 0; v < nv; v++) c.get(b).simd(Simd.load, [4, 16 * v]).set(bv0 + v);
        for (let r = 0; r < mr; r++) {
          c.get(a).simd(Simd.load32Splat, [2, 4 * r]).set(av);
          for (let v = 0; v < nv; v++) {
            if (fma) c.get(av).get(bv0 + v).get(acc(r, v)).simd(Simd.f32x4RelaxedMadd).set(acc(r, v));
            else c.get(acc(r, v)).get(av).get(bv0 + v).simd(Simd.f32x4Mul).simd(Simd.f32x4Add).set(acc(r, v));
          }
        }
        c.get(b).i32(nr * 4).add().set(b);
        c.get(a).i32(mr * 4).add().tee(a).get(end).ltU().brIf(0);
      });
      c.get(ci).set(row);
      for (let r = 0; r < mr; r++) {
        for (let v = 0; v < nv; v++) {
          c.get(row).get(row).simd(Simd.load, [4, 16 * v]).get(acc(r, v)).get(alphaV).simd(Simd.f32x4Mul).simd(Simd.f32x4Add);
          c.simd(Simd.store, [4, 16 * v]);
        }
        if (r < mr - 1) c.get(row).get(ldc).add().set(row);
      }
      c.get(ci).get(ldc).i32(mr).mul().add().set(ci);
      c.get(end).tee(ap).get(iEnd).ltU().brIf(0);
    });
    c.get(cj).i32(nr * 4).add().set(cj);
    c.get(bp).get(kc).i32(nr * 4).mul().add().tee(bp).get(jEnd).ltU().brIf(0);
  });
  const params = [T.i32, T.i32, T.i32, T.i32, T.i32, T.i32, T.i32, T.f32];
  return buildModule([{ name: 'kernel', params, results: [], locals, body: c }, packFunc('packA', mr), packFunc('packB', nr)]);
}

/**
 * name(src, ls, es, count, depth, dst): packs `count` lines (byte stride ls) of `depth` elements (byte
 * stride es) from src into panels of w lines at dst, each `depth` steps of w consecutive floats; a last
 * short panel is zero-filled. Full panels copy whole vectors when lines are adjacent (ls = 4: B row-major,
 * A transposed) and otherwise run an unrolled scalar copy that streams the w lines side by side.
 */
function packFunc(name: string, w: number): Func {
  const [src, ls, es, count, depth, dst, l, lanes, s, p, x, r, d] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const c = new Code();
  const step = (body: () => void, ptr: number, stride: number) => c.get(depth).set(p).loop(() => {
    body();
    c.get(ptr).get(stride).add().set(ptr).get(dst).i32(4 * w).add().set(dst);
    c.get(p).i32(1).sub().tee(p).brIf(0);
  });
  c.i32(0).set(l).loop(() => {
    c.i32(w).get(count).get(l).sub().tee(lanes).get(lanes).i32(w).gtU().select().set(lanes);
    c.get(src).get(l).get(ls).mul().add().set(s);
    c.get(lanes).i32(w).eq().ifElse(() => {
      c.get(ls).i32(4).eq().ifElse(
        () => step(() => { for (let v = 0; v < w / 4; v++) c.get(dst).get(s).simd(Simd.load, [0, 16 * v]).simd(Simd.store, [0, 16 * v]); }, s, es),
        () => step(() => {
          c.get(s).set(x);
          for (let i = 0; i < w; i++) {
            c.get(dst).get(x).load32().store32(4 * i);
            if (i < w - 1) c.get(x).get(ls).add().set(x);
          }
        }, s, es),
      );
    }, () => {
      // The one short panel: zeroed first, not for the result (its products land only in padding of the
      // C stage, never copied out) but so stale bits there cannot be denormals that stall the multiplies.
      // Then copied line by line.
      c.get(dst).set(d).get(depth).set(p).loop(() => {
        for (let v = 0; v < w / 4; v++) c.get(d).v128Zero().simd(Simd.store, [0, 16 * v]);
        c.get(d).i32(4 * w).add().set(d).get(p).i32(1).sub().tee(p).brIf(0);
      });
      c.i32(0).set(r).loop(() => {
        c.get(s).get(r).get(ls).mul().add().set(x).get(dst).get(r).i32(4).mul().add().set(d);
        c.get(depth).set(p).loop(() => {
          c.get(d).get(x).load32().store32().get(x).get(es).add().set(x).get(d).i32(4 * w).add().set(d);
          c.get(p).i32(1).sub().tee(p).brIf(0);
        });
        c.get(r).i32(1).add().tee(r).get(lanes).ltU().brIf(0);
      });
      c.get(dst).get(depth).i32(4 * w).mul().add().set(dst);
    });
    c.get(l).i32(w).add().tee(l).get(count).ltU().brIf(0);
  });
  return { name, params: Array(6).fill(T.i32), results: [], locals: Array(7).fill(T.i32), body: c };
}

type Kernel = (mc: number, nc: number, kc: number, pa: number, pb: number, pc: number, ldc: number, alpha: number) => void;
type Pack = (src: number, ls: number, es: number, count: number, depth: number, dst: number) => void;

// Byte addresses are i32, so the heap stays under 2 GiB of floats; bigger products stay in TypeScript.
const MAX_FLOATS = 1 << 29;

/** One instantiated module over its own growable memory, with a Float32Array view kept current. */
export class WasmGemm {
  readonly shape: KernelShape;
  private readonly memory = new WebAssembly.Memory({ initial: 1 });
  private readonly kernel: Kernel;
  private readonly packA: Pack;
  private readonly packB: Pack;
  private heap = new Float32Array(this.memory.buffer);

  constructor(shape: KernelShape = SHAPE) {
    this.shape = shape;
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(kernelModule(shape)), { env: { memory: this.memory } });
    [this.kernel, this.packA, this.packB] = [exports.kernel as Kernel, exports.packA as Pack, exports.packB as Pack];
  }

  /** Grows memory to at least `floats` elements (false if it cannot); growing detaches the buffer, so the view is remade. */
  private reserve(floats: number): boolean {
    const pages = Math.ceil((floats * 4) / 65536) - this.memory.buffer.byteLength / 65536;
    if (pages <= 0) return true;
    if (floats > MAX_FLOATS) return false;
    try {
      this.memory.grow(pages);
    } catch {
      return false;
    }
    this.heap = new Float32Array(this.memory.buffer);
    return true;
  }

  /**
   * c[cOff + i*ldc + j] += alpha * sum_p A(i,p) * B(p,j), for i < m, j < n (the contract of gemm in
   * kernels/cpu/gemm.ts). Returns false, having done nothing, when the operands do not fit in memory.
   */
  run(m: number, n: number, k: number, a: Mat<Float32Array>, b: Mat<Float32Array>, c: Float32Array, cOff: number, ldc: number, alpha = 1): boolean {
    if (m === 0 || n === 0 || k === 0) return true;
    const { mr, nr } = this.shape;
    const nc0 = Math.min(NC, roundUp(n, nr)), kc0 = Math.min(KC, k), mc0 = Math.min(MC, roundUp(m, mr));
    // Rows of C staged per pass: a multiple of MC (or all of m), within the C_STAGE budget.
    const mb = Math.min(roundUp(m, mr), Math.max(MC, Math.floor(C_STAGE / nc0 / MC) * MC));
    // Layout in floats, each part 64-byte aligned: [A copy | B copy | A block | B block | C stage].
    const aAt = 0, bAt = aAt + roundUp(footprint(a, m, k), 16), paAt = bAt + roundUp(footprint(b, k, n), 16);
    const pbAt = paAt + mc0 * kc0, cAt = roundUp(pbAt + kc0 * nc0, 16);
    if (!this.reserve(cAt + mb * nc0)) return false;
    const heap = this.heap, A = place(a, m, k, heap, aAt), B = place(b, k, n, heap, bAt);
    for (let jc = 0; jc < n; jc += NC) {
      const nc = Math.min(NC, n - jc), ncp = roundUp(nc, nr);
      for (let i0 = 0; i0 < m; i0 += mb) {
        const rows = Math.min(mb, m - i0);
        stage(c, cOff + i0 * ldc + jc, ldc, heap, cAt, ncp, rows, nc, true);
        for (let pc = 0; pc < k; pc += KC) {
          const kc = Math.min(KC, k - pc);
          this.packB(4 * (B.off + pc * B.rs + jc * B.cs), 4 * B.cs, 4 * B.rs, nc, kc, 4 * pbAt);
          for (let ic = 0; ic < rows; ic += MC) {
            const mc = Math.min(MC, rows - ic);
            this.packA(4 * (A.off + (i0 + ic) * A.rs + pc * A.cs), 4 * A.rs, 4 * A.cs, mc, kc, 4 * paAt);
            this.kernel(roundUp(mc, mr), ncp, kc, 4 * paAt, 4 * pbAt, 4 * (cAt + ic * ncp), 4 * ncp, alpha);
          }
        }
        stage(c, cOff + i0 * ldc + jc, ldc, heap, cAt, ncp, rows, nc, false);
      }
    }
    return true;
  }
}

const roundUp = (x: number, q: number) => Math.ceil(x / q) * q;

/** [lo, hi): the range of data indices a rows x cols view touches. */
function span(x: Mat<Float32Array>, rows: number, cols: number): [number, number] {
  const r = (rows - 1) * x.rs, c = (cols - 1) * x.cs;
  return [x.off + Math.min(0, r) + Math.min(0, c), x.off + Math.max(0, r) + Math.max(0, c) + 1];
}

// A view is copied as its whole span when that is at most about twice its size (a plain or transposed
// matrix, a block of a slightly wider one); otherwise (a head inside interleaved heads, say) compacted.
const wholeSpan = (len: number, rows: number, cols: number) => len <= 2 * rows * cols + 4096;

function footprint(x: Mat<Float32Array>, rows: number, cols: number): number {
  const [lo, hi] = span(x, rows, cols);
  return wholeSpan(hi - lo, rows, cols) ? hi - lo : rows * cols;
}

/** Copies the view into heap at `at` and returns the same matrix as a view of heap. */
function place(x: Mat<Float32Array>, rows: number, cols: number, heap: Float32Array, at: number): Mat<Float32Array> {
  const [lo, hi] = span(x, rows, cols), d = x.data;
  if (wholeSpan(hi - lo, rows, cols)) {
    heap.set(d.subarray(lo, hi), at);
    return { data: heap, off: at + x.off - lo, rs: x.rs, cs: x.cs };
  }
  if (x.cs === 1) {
    for (let i = 0, s = x.off; i < rows; i++, s += x.rs) heap.set(d.subarray(s, s + cols), at + i * cols);
    return { data: heap, off: at, rs: cols, cs: 1 };
  }
  if (x.rs === 1) {
    for (let j = 0, s = x.off; j < cols; j++, s += x.cs) heap.set(d.subarray(s, s + rows), at + j * rows);
    return { data: heap, off: at, rs: 1, cs: rows };
  }
  for (let i = 0, q = at; i < rows; i++) for (let j = 0; j < cols; j++) heap[q++] = d[x.off + i * x.rs + j * x.cs];
  return { data: heap, off: at, rs: cols, cs: 1 };
}

/** Copies rows x cols of C (row stride ldc) into the stage (row stride sld) when `into`, else back out. */
function stage(c: Float32Array, off: number, ldc: number, heap: Float32Array, at: number, sld: number, rows: number, cols: number, into: boolean): void {
  if (ldc === cols && sld === cols) {
    if (into) heap.set(c.subarray(off, off + rows * cols), at);
    else c.set(heap.subarray(at, at + rows * cols), off);
    return;
  }
  for (let i = 0; i < rows; i++, off += ldc, at += sld) {
    if (into) heap.set(c.subarray(off, off + cols), at);
    else c.set(heap.subarray(at, at + cols), off);
  }
}

// Built on first use; null when instantiation failed (a page whose CSP forbids WebAssembly compilation).
let shared: WasmGemm | null | undefined;

function instance(): WasmGemm | null {
  if (shared === undefined) {
    try {
      shared = new WasmGemm();
    } catch {
      shared = null;
    }
  }
  return shared;
}

// Measured: below about 1000 multiply-adds the fixed cost (about 0.5 us of copies and calls) outweighs
// the faster kernel; from there wasm won every shape tried, 1.3x at 10x10x10, 5-40x from 16x16x16 up,
// including matrix-vector shapes (m or n of 1) despite padding them to a whole tile.
export const WASM_MIN_MACS = 1024;

/**
 * Runs gemm in WebAssembly when it applies (SIMD available and enabled, all operands float32, the
 * product big enough) and returns true; returns false to leave it to the TypeScript kernel.
 */
export function gemmWasm(m: number, n: number, k: number, a: Mat, b: Mat, c: unknown, cOff: number, ldc: number, alpha = 1): boolean {
  if (!hasSimd || m * n * k < WASM_MIN_MACS) return false;
  if (!(a.data instanceof Float32Array && b.data instanceof Float32Array && c instanceof Float32Array) || !wasmKernels()) return false;
  return instance()?.run(m, n, k, a as Mat<Float32Array>, b as Mat<Float32Array>, c, cOff, ldc, alpha) ?? false;
}
