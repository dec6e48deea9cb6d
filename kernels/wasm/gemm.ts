// f32 GEMM in WebAssembly SIMD128, built once at runtime by kernels/wasm/emitter.ts.
// Operands are copied into one persistent WebAssembly.Memory with TypedArray.set at memcpy speed (packing
// element by element in JS measured 2-4 ns per float, packing in wasm 0.3-0.5 ns). Wasm then
// packs blocks of A into MR-row panels and of B into NR-column panels, interleaved along k so the
// micro-kernel reads consecutive addresses, zero-padded to whole tiles. One kernel call sweeps an
// MC x NC block of C with an MR x NR micro-kernel whose accumulators live in v128 locals. C is staged
// through wasm memory with its row stride padded to NR, so every tile is full and nothing has edge cases.
// Threads (kernels/wasm/threads.ts): the memory is shared, and the blocked loops live in wasm as
// task(job, chunk, id), which workers run on their own instances. A job splits C into chunks of whole
// rows or whole columns, so threads never write the same element and every element is summed in the
// same order as on one thread: results do not depend on the thread count.
// Constant operands (weights; the session marks them with markConstant) are packed once into panels kept
// in the heap, so later products neither copy nor pack them.
import type { Mat } from '../cpu/gemm.js';
import { buildModule, Code, Simd, T, type Func } from './emitter.js';
import { BlockHeap } from './heap.js';
import { growTo, hasRelaxedSimd, hasSimd, MAX_PAGES, wasmKernels } from './simd.js';
import { stepsOn, type Step } from './elementwise.js';
import { CTRL_BYTES, Pool, sharedMemory, threads } from './threads.js';

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
 * Module exporting kernel, packA, packB and task (see taskFunc); its memory import is shared for threads.
 * kernel(mc, nc, kc, pa, pb, pc, ldc, alpha): C[mc x nc] += alpha * A·B, where A is mc/MR packed
 * panels at byte address pa, B is nc/NR packed panels at pb, C is at pc with a row stride of ldc bytes;
 * mc and nc are multiples of MR and NR, kc > 0.
 */
export function kernelModule({ mr, nr, fma }: KernelShape, shared = false): Uint8Array<ArrayBuffer> {
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
  const funcs = [{ name: 'kernel', params, results: [], locals, body: c }, packFunc('packA', mr), packFunc('packB', nr), taskFunc(mr, nr)];
  return buildModule(funcs, shared ? { shared: true, maxPages: MAX_PAGES } : {});
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

/** Word offsets of a job's fields (byte addresses and strides in bytes; panels 0 when that operand is packed per call). */
const J = {
  m: 0, n: 1, k: 2, a: 3, ars: 4, acs: 5, aPanels: 6, mPad: 7, aRow0: 8, b: 9, brs: 10, bcs: 11, bPanels: 12, nPad: 13,
  c: 14, ldc: 15, alpha: 16, scratch: 17, scratchStride: 18, byRows: 19, chunk: 20,
} as const;
const JOB_WORDS = 21;
const J_FIELDS = Object.entries(J) as [keyof typeof J, number][];

/**
 * task(job, chunk, id): C += alpha * A·B over one chunk of the job (whole rows, or whole columns), packing
 * into thread `id`'s scratch. A prepacked operand is read in place: its panels for depth block pc start at
 * pc * mPad (A) or pc * nPad (B) floats, and rows i (columns j) of that block at i * kc (j * kc).
 */
function taskFunc(mr: number, nr: number): Func {
  const [job, chunk, id] = [0, 1, 2];
  const F = Object.keys(J).length; // fields load into locals 3 .. 3 + F - 1, in J's order (alpha is the f32 one)
  const f = (name: keyof typeof J) => 3 + J[name];
  const [i0, j0, mm, nn, jc, pc, ic, nc, ncp, kc, mc, pa, pb, bp, ap] = Array.from({ length: 15 }, (_, i) => 3 + F + i);
  const locals = Array.from({ length: F + 15 }, (_, i) => (i === J.alpha ? T.f32 : T.i32));
  const c = new Code();
  for (const [name, w] of Object.entries(J)) {
    c.get(job);
    if (name === 'alpha') c.f32Load(4 * w); else c.load32(4 * w);
    c.set(3 + w);
  }
  const min = (x: () => void, y: () => void) => { x(); y(); x(); y(); c.ltS().select(); };
  const roundUpTo = (q: number) => c.i32(q - 1).add().i32(q).divS().i32(q).mul();
  c.get(f('scratch')).get(id).get(f('scratchStride')).mul().add().tee(pa).i32(4 * MC * KC).add().set(pb);
  c.get(f('byRows')).ifElse(() => {
    c.get(chunk).get(f('chunk')).mul().set(i0).i32(0).set(j0).get(f('n')).set(nn);
    min(() => c.get(f('chunk')), () => c.get(f('m')).get(i0).sub());
    c.set(mm);
  }, () => {
    c.get(chunk).get(f('chunk')).mul().set(j0).i32(0).set(i0).get(f('m')).set(mm);
    min(() => c.get(f('chunk')), () => c.get(f('n')).get(j0).sub());
    c.set(nn);
  });
  c.i32(0).set(jc).loop(() => {
    min(() => c.i32(NC), () => c.get(nn).get(jc).sub());
    c.tee(nc);
    roundUpTo(nr);
    c.set(ncp).i32(0).set(pc).loop(() => {
      min(() => c.i32(KC), () => c.get(f('k')).get(pc).sub());
      c.set(kc);
      c.get(f('bPanels')).ifElse(() => {
        c.get(f('bPanels')).get(pc).get(f('nPad')).mul().get(j0).get(jc).add().get(kc).mul().add().i32(4).mul().add().set(bp);
      }, () => {
        c.get(f('b')).get(pc).get(f('brs')).mul().add().get(j0).get(jc).add().get(f('bcs')).mul().add();
        c.get(f('bcs')).get(f('brs')).get(nc).get(kc).get(pb).call(2);
        c.get(pb).set(bp);
      });
      c.i32(0).set(ic).loop(() => {
        min(() => c.i32(MC), () => c.get(mm).get(ic).sub());
        c.set(mc);
        c.get(f('aPanels')).ifElse(() => {
          c.get(f('aPanels')).get(pc).get(f('mPad')).mul().get(f('aRow0')).get(i0).add().get(ic).add().get(kc).mul().add().i32(4).mul().add().set(ap);
        }, () => {
          c.get(f('a')).get(i0).get(ic).add().get(f('ars')).mul().add().get(pc).get(f('acs')).mul().add();
          c.get(f('ars')).get(f('acs')).get(mc).get(kc).get(pa).call(1);
          c.get(pa).set(ap);
        });
        c.get(mc);
        roundUpTo(mr);
        c.get(ncp).get(kc).get(ap).get(bp);
        c.get(f('c')).get(i0).get(ic).add().get(f('ldc')).mul().add().get(j0).get(jc).add().i32(4).mul().add();
        c.get(f('ldc')).get(f('alpha')).call(0);
        c.get(ic).i32(MC).add().tee(ic).get(mm).ltS().brIf(0);
      });
      c.get(pc).i32(KC).add().tee(pc).get(f('k')).ltS().brIf(0);
    });
    c.get(jc).i32(NC).add().tee(jc).get(nn).ltS().brIf(0);
  });
  return { name: 'task', params: [T.i32, T.i32, T.i32], results: [], locals, body: c };
}

type Kernel = (mc: number, nc: number, kc: number, pa: number, pb: number, pc: number, ldc: number, alpha: number) => void;
type Pack = (src: number, ls: number, es: number, count: number, depth: number, dst: number) => void;
type Task = (job: number, chunk: number, id: number) => void;

// Heap layout in bytes: the threads' control block, then the job, then (from one page up) the prepacked panels, then scratch.
const JOB_AT = Math.ceil(CTRL_BYTES / 64) * 64, PANELS_AT = 65536;
// Prepacked panels are a copy of the weights: past this many floats, constants are packed per call instead.
const PANELS_MAX = 1 << 26;
// Products below this many multiply-adds stay on one thread: waking workers costs tens of microseconds.
export const PARALLEL_MIN_MACS = 1 << 20;

/**
 * What a product may do in place of accumulating onto C: start from `bias` (one value per row of C, or per
 * column) or zeros, and apply `steps` (kernels/wasm/elementwise.ts) to the sums before they leave wasm
 * memory. C's prior contents are then never read.
 */
export interface Epilogue { bias?: Float32Array; perRow: boolean; steps: readonly Step[] }

/** Packed panels of one constant operand view, and where they live. */
interface Panels { at: number; size: number; pad: number }
/** Per constant array: its packed views, keyed by shape and strides. */
type PanelSet = Map<string, Panels>;

/** One instantiated module over its own growable memory, with views kept current. */
export class WasmGemm {
  readonly shape: KernelShape;
  private readonly memory: WebAssembly.Memory;
  private readonly task: Task;
  private readonly packA: Pack;
  private readonly packB: Pack;
  private readonly pool: Pool | null;
  private applySteps?: (at: number, n: number, steps: readonly Step[]) => void;
  private heap: Float32Array;
  private words: Int32Array;
  private readonly blocks = new BlockHeap(PANELS_AT / 4);
  private readonly panels = new WeakMap<object, PanelSet>();
  /** Arrays marked constant, with how many holders (sessions sharing one model) marked each. */
  private readonly constants = new WeakMap<object, number>();
  private readonly collector = new FinalizationRegistry<PanelSet>((set) => this.drop(set));

  /** With `threaded` (the default), shared memory and a worker pool where the platform allows them. */
  constructor(shape: KernelShape = SHAPE, threaded = true) {
    this.shape = shape;
    const shared = threaded ? sharedMemory(2, MAX_PAGES) : null;
    this.memory = shared ?? new WebAssembly.Memory({ initial: 2 });
    const module = new WebAssembly.Module(kernelModule(shape, shared !== null));
    const { exports } = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    [this.task, this.packA, this.packB] = [exports.task as Task, exports.packA as Pack, exports.packB as Pack];
    this.pool = shared ? new Pool(module, shared, 0, this.task) : null;
    this.heap = new Float32Array(this.memory.buffer);
    this.words = new Int32Array(this.memory.buffer);
  }

  /** Whether this instance can use threads (its memory is shared). */
  get threaded(): boolean { return this.pool !== null; }

  /** Starts workers for n threads and resolves with how many are ready (for tests and benchmarks). */
  async startThreads(n: number): Promise<number> { return this.pool ? this.pool.ready(n) : 0; }

  /** Lets the workers go; later products run on the calling thread. */
  stopThreads(): void { this.pool?.close(); }

  /** Floats of prepacked panels held. */
  get panelFloats(): number { return this.blocks.live; }

  /** Marks an array as never changing again, so products pack views of it once and keep the panels. */
  markConstant(data: object): void { this.constants.set(data, (this.constants.get(data) ?? 0) + 1); }

  /** Undoes one markConstant; after the last, forgets the array and frees its panels. */
  unmarkConstant(data: object): void {
    const holders = (this.constants.get(data) ?? 0) - 1;
    if (holders > 0) { this.constants.set(data, holders); return; }
    this.constants.delete(data);
    if (!marked.has(data)) this.dropPanels(data);
  }

  /** Frees the panels packed from `data`, if any, unless this instance has it marked itself. */
  dropPanels(data: object): void {
    if (this.constants.has(data)) return;
    const set = this.panels.get(data);
    if (!set) return;
    this.panels.delete(data);
    this.collector.unregister(set);
    this.drop(set);
  }

  private drop(set: PanelSet): void {
    for (const p of set.values()) this.blocks.free(p.at, p.size);
    set.clear();
  }

  /** Grows memory to at least `floats` elements (false if it cannot); views over the grown buffer are remade. */
  private reserve(floats: number): boolean {
    if (!growTo(this.memory, floats)) return false;
    // Shared memory grows in place without detaching, but old views keep their old length.
    if (this.heap.length * 4 !== this.memory.buffer.byteLength) {
      this.heap = new Float32Array(this.memory.buffer);
      this.words = new Int32Array(this.memory.buffer);
    }
    return true;
  }

  /**
   * c[cOff + i*ldc + j] += alpha * sum_p A(i,p) * B(p,j), for i < m, j < n (the contract of gemm in
   * kernels/cpu/gemm.ts); with `epi`, c = epi.steps(bias + alpha A·B) instead. Returns false, having done
   * nothing, when the operands do not fit in memory.
   */
  run(m: number, n: number, k: number, a: Mat<Float32Array>, b: Mat<Float32Array>, c: Float32Array, cOff: number, ldc: number, alpha = 1, epi?: Epilogue): boolean {
    if (m === 0 || n === 0 || k === 0) return !epi; // an epilogue would still have to write C
    const { mr, nr } = this.shape;
    const aP = this.prepacked(a, m, k, 'A'), bP = this.prepacked(b, k, n, 'B');
    const nt = this.pool && m * n * k >= PARALLEL_MIN_MACS ? threads() : 1;
    const npad = roundUp(n, nr), kc0 = Math.min(KC, k);
    // Rows of C staged per job: a multiple of MC (or all of m), within the C_STAGE budget.
    const mb = Math.min(roundUp(m, mr), Math.max(MC, Math.floor(C_STAGE / npad / MC) * MC));
    // Scratch in floats, each part 64-byte aligned: [A copy | B copy | C stage | per thread: A block, B block].
    const aAt = this.blocks.top, bAt = aAt + (aP ? 0 : roundUp(footprint(a, m, k), 16)), cAt = bAt + (bP ? 0 : roundUp(footprint(b, k, n), 16));
    const stride = roundUp(MC * KC + kc0 * Math.min(NC, npad), 16), sAt = roundUp(cAt + mb * npad, 16);
    if (!this.reserve(sAt + nt * stride)) return false;
    const heap = this.heap, A = aP ? a : place(a, m, k, heap, aAt), B = bP ? b : place(b, k, n, heap, bAt);
    for (let i0 = 0; i0 < m; i0 += mb) {
      const rows = Math.min(mb, m - i0);
      // Split along the operand that is not prepacked (each chunk packs all of the other), else the longer side.
      const byRows = aP && !bP ? false : bP && !aP ? true : rows >= n;
      // Several chunks per thread, so a worker that wakes late (tens of microseconds here) or is descheduled
      // still finds work the others have not claimed: up to eight each, of at least 2 tiles, when the other
      // operand is prepacked (a chunk then packs only its own part); else two each of at least 4 tiles, as
      // each chunk packs all of the other operand. Measured at 2 threads on m = 128 products with packed
      // weights: 5-14% faster than two chunks per thread.
      const units = byRows ? Math.ceil(rows / mr) : Math.ceil(n / nr), otherPacked = byRows ? !!bP : !!aP;
      const count = nt === 1 ? 1 : Math.max(1, otherPacked ? Math.min(8 * nt, Math.floor(units / 2)) : Math.min(2 * nt, Math.floor(units / 4)));
      const chunk = byRows ? roundUp(Math.ceil(rows / count), mr) : roundUp(Math.ceil(n / count), nr);
      this.writeJob({
        m: rows, n, k, a: 4 * (A.off + i0 * A.rs), ars: 4 * A.rs, acs: 4 * A.cs, aPanels: aP ? 4 * aP.at : 0, mPad: aP?.pad ?? 0, aRow0: i0,
        b: 4 * B.off, brs: 4 * B.rs, bcs: 4 * B.cs, bPanels: bP ? 4 * bP.at : 0, nPad: bP?.pad ?? 0,
        c: 4 * cAt, ldc: 4 * npad, alpha, scratch: 4 * sAt, scratchStride: 4 * stride, byRows: byRows ? 1 : 0, chunk,
      });
      const chunks = Math.ceil((byRows ? rows : n) / chunk);
      const start = () => (epi ? initStage(heap, cAt, npad, rows, n, i0, epi) : stage(c, cOff + i0 * ldc, ldc, heap, cAt, npad, rows, n, true));
      start();
      if (!this.runJob(chunks, nt)) {
        // A worker failed part way (the pool then stops using workers): redo the job here, from C as it was.
        start();
        this.runJob(chunks, 1);
      }
      if (epi?.steps.length) (this.applySteps ??= stepsOn(this.memory, this.pool ? MAX_PAGES : 0))(4 * cAt, rows * npad, epi.steps);
      stage(c, cOff + i0 * ldc, ldc, heap, cAt, npad, rows, n, false);
    }
    return true;
  }

  /** Runs every chunk of the job at JOB_AT on up to nt threads; false if a worker failed. */
  private runJob(chunks: number, nt: number): boolean {
    if (this.pool) return this.pool.run(JOB_AT, chunks, nt);
    for (let q = 0; q < chunks; q++) this.task(JOB_AT, q, 0);
    return true;
  }

  private writeJob(job: Record<keyof typeof J, number>): void {
    const w = this.words, base = JOB_AT / 4;
    for (const [name, at] of J_FIELDS) w[base + at] = job[name];
    new Float32Array(w.buffer, JOB_AT + 4 * J.alpha, 1)[0] = job.alpha;
  }

  /**
   * The panels of a view of a constant array (packed now if they are not yet, when they fit the budget);
   * null for other arrays. Panels hold depth blocks of KC one after another: A's rows in MR-row panels
   * (mPad = m rounded up to MR), or B's columns in NR-column panels.
   */
  private prepacked(x: Mat<Float32Array>, rows: number, cols: number, which: 'A' | 'B'): Panels | null {
    if (!this.constants.has(x.data) && !marked.has(x.data)) return null;
    let set = this.panels.get(x.data);
    const key = `${which}${x.off},${x.rs},${x.cs},${rows},${cols}`, hit = set?.get(key);
    if (hit) return hit;
    const w = which === 'A' ? this.shape.mr : this.shape.nr, lines = which === 'A' ? rows : cols, depth = which === 'A' ? cols : rows;
    const pad = roundUp(lines, w), size = pad * depth;
    if (this.blocks.live + size > PANELS_MAX) return null;
    const at = this.blocks.alloc(size), copyAt = roundUp(this.blocks.top, 16);
    if (!this.reserve(copyAt + footprint(x, rows, cols))) { this.blocks.free(at, size); return null; }
    const v = place(x, rows, cols, this.heap, copyAt);
    // Lines run along m for A (row stride) and along n for B (column stride); depth is k.
    const [ls, es] = which === 'A' ? [v.rs, v.cs] : [v.cs, v.rs];
    const pack = which === 'A' ? this.packA : this.packB;
    for (let p = 0; p < depth; p += KC) pack(4 * (v.off + p * es), 4 * ls, 4 * es, lines, Math.min(KC, depth - p), 4 * (at + p * pad));
    if (!set) {
      set = new Map();
      this.panels.set(x.data, set);
      this.collector.register(x.data, set, set);
    }
    const panels = { at, size, pad };
    set.set(key, panels);
    return panels;
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

/** Sets the stage's rows (row i0 on of C, row stride sld) to the epilogue's bias, or zeros; padding columns to zeros. */
function initStage(heap: Float32Array, at: number, sld: number, rows: number, cols: number, i0: number, { bias, perRow }: Epilogue): void {
  if (!bias) { heap.fill(0, at, at + rows * sld); return; }
  if (perRow) {
    // Short rows element by element: two fills a row cost more than writing a few floats.
    if (sld <= 16) for (let i = 0; i < rows; i++) for (let j = 0; j < sld; j++) heap[at + i * sld + j] = j < cols ? bias[i0 + i] : 0;
    else for (let i = 0; i < rows; i++) heap.fill(bias[i0 + i], at + i * sld, at + i * sld + cols).fill(0, at + i * sld + cols, at + (i + 1) * sld);
    return;
  }
  heap.set(bias.subarray(0, cols), at);
  heap.fill(0, at + cols, at + sld);
  for (let done = 1; done < rows;) { // doubling copies of the first row
    const k = Math.min(done, rows - done);
    heap.copyWithin(at + done * sld, at, at + k * sld);
    done += k;
  }
}

/** Copies rows x cols of C (row stride ldc) into the stage (row stride sld) when `into`, else back out. */
function stage(c: Float32Array, off: number, ldc: number, heap: Float32Array, at: number, sld: number, rows: number, cols: number, into: boolean): void {
  if (ldc === cols && sld === cols) {
    if (into) heap.set(c.subarray(off, off + rows * cols), at);
    else c.set(heap.subarray(at, at + rows * cols), off);
    return;
  }
  // Short rows element by element: a subarray per row costs more than copying a few floats.
  if (cols <= 16) {
    for (let i = 0; i < rows; i++, off += ldc, at += sld) {
      if (into) for (let j = 0; j < cols; j++) heap[at + j] = c[off + j];
      else for (let j = 0; j < cols; j++) c[off + j] = heap[at + j];
    }
    return;
  }
  for (let i = 0; i < rows; i++, off += ldc, at += sld) {
    if (into) heap.set(c.subarray(off, off + cols), at);
    else c.set(heap.subarray(at, at + cols), off);
  }
}

// Built on first use; null when instantiation failed (a page whose CSP forbids WebAssembly compilation).
// Two instances: on one thread, plain memory, which V8 copies operands into and out of about 1.5x faster
// than shared memory; on several, shared memory and its workers. A process normally uses one of them.
let plain: WasmGemm | null | undefined;
let shared: WasmGemm | null | undefined;
const make = (threaded: boolean): WasmGemm | null => {
  try {
    return new WasmGemm(SHAPE, threaded);
  } catch {
    return null;
  }
};

/** The process-wide instance gemm() uses for `threaded` (default: more than one thread set); null where wasm cannot be compiled. */
export function wasmGemm(threaded = threads() > 1): WasmGemm | null {
  if (!threaded) return plain === undefined ? (plain = make(false)) : plain;
  return shared === undefined ? (shared = make(true)) : shared;
}

/** Arrays marked constant by sessions, with how many holders marked each: both instances prepack them. */
const marked = new WeakMap<object, number>();

/**
 * Declares float32 arrays that will never change (a session's weights): gemm packs views of them once
 * and keeps the panels until unmarkConstants or until the array is collected.
 */
export function markConstants(arrays: Iterable<unknown>): void {
  if (!hasSimd) return;
  for (const d of arrays) if (d instanceof Float32Array) marked.set(d, (marked.get(d) ?? 0) + 1);
}

export function unmarkConstants(arrays: Iterable<unknown>): void {
  for (const d of arrays) {
    if (!(d instanceof Float32Array) || !marked.has(d)) continue;
    const holders = marked.get(d)! - 1;
    if (holders > 0) { marked.set(d, holders); continue; }
    marked.delete(d);
    for (const g of [plain, shared]) g?.dropPanels(d);
  }
}

// Measured: below about 1000 multiply-adds the fixed cost (about 0.5 us of copies and calls) outweighs
// the faster kernel; from there wasm won every shape tried, 1.3x at 10x10x10, 5-40x from 16x16x16 up,
// including matrix-vector shapes (m or n of 1) despite padding them to a whole tile.
export const WASM_MIN_MACS = 1024;

/**
 * Runs gemm in WebAssembly when it applies (SIMD available and enabled, all operands float32, the
 * product big enough) and returns true; returns false to leave it to the TypeScript kernel.
 */
export function gemmWasm(m: number, n: number, k: number, a: Mat, b: Mat, c: unknown, cOff: number, ldc: number, alpha = 1, epi?: Epilogue): boolean {
  if (!hasSimd || m * n * k < WASM_MIN_MACS) return false;
  if (!(a.data instanceof Float32Array && b.data instanceof Float32Array && c instanceof Float32Array) || !wasmKernels()) return false;
  // A product too small to split runs on the plain-memory instance whatever the thread count: its copies are faster.
  return wasmGemm(threads() > 1 && m * n * k >= PARALLEL_MIN_MACS)?.run(m, n, k, a as Mat<Float32Array>, b as Mat<Float32Array>, c, cOff, ldc, alpha, epi) ?? false;
}
