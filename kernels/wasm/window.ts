// Sliding-window building blocks of the WebAssembly convolution and pooling kernels (kernels/wasm/conv.ts,
// kernels/wasm/pool.ts): one growable memory shared by their modules, a prep pass that copies input
// planes into it padded and split into column stride phases, and window kernels generated per kernel
// geometry. After prep every tap of a window is a contiguous run along the output width, so the kernels
// are plain vector loops with no bounds checks: the padding is real memory holding the pad value.
// Threads: where SharedArrayBuffer exists (and the owner asks for it) the memory is shared, and one pool
// of workers (kernels/wasm/threads.ts) serves every module here. Each module ends with a task that runs one of its
// functions on a chunk of planes, channels or rows (kernels/wasm/chunked.ts); the per-geometry modules
// reach the workers as bytes in the arena's header, compiled there on first use. That keeps the kernels
// specialised (taps unrolled, offsets immediates), with one worker per thread whatever the geometries.
import { stepsOn, type Step } from './elementwise.js';
import { chunkTask, JOB_BYTES, writeJob, type Split } from './chunked.js';
import { buildModule, Code, Simd, T, type Func } from './emitter.js';
import { growTo, MAX_PAGES } from './simd.js';
import { CTRL_BYTES, Pool, sharedMemory, threads } from './threads.js';

/** A 2-D window over one plane: input, output, kernel, stride, dilation and leading pads (H then W). */
export interface Win2 { H: number; W: number; OH: number; OW: number; KH: number; KW: number; sh: number; sw: number; dh: number; dw: number; ph: number; pw: number }

/**
 * Prepped plane layout. Padded row r of a plane holds sw phases of Wq floats each: padded column p is
 * at phase p % sw, index floor(p / sw). Output column ow of tap kw then reads phase (kw*dw) % sw at
 * index ow + floor(kw*dw / sw), the same run for every ow. Wq is a multiple of 4, OWp = OW rounded up to 4.
 */
export interface Layout { Hp: number; Wq: number; OWp: number; planeFloats: number; rowBytes: number }

export const roundUp = (x: number, q: number) => Math.ceil(x / q) * q;

export function layout(v: Win2): Layout {
  const Hp = (v.OH - 1) * v.sh + (v.KH - 1) * v.dh + 1;
  const Wq = roundUp(Math.ceil(((v.OW - 1) * v.sw + (v.KW - 1) * v.dw + 1) / v.sw), 4);
  return { Hp, Wq, OWp: roundUp(v.OW, 4), planeFloats: Hp * v.sw * Wq, rowBytes: v.sw * Wq * 4 };
}

// Vector reads of a prepped plane run up to 3 floats past its last row (into padding outputs only):
// regions keep this many floats of slack after them.
export const SLACK = 16;

// The arena's header (byte addresses): the pool's control block, the job, then the bytes of the module
// the current job runs (a window module is a few KB; a bigger one runs on the calling thread only).
const JOB_AT = roundUp(CTRL_BYTES, 64), MODULE_AT = roundUp(JOB_AT + JOB_BYTES, 64), HEADER_BYTES = 65536;

/** The memory every module here imports, with a Float32Array view kept current across growth. */
export class Arena {
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
  /** The first float index callers may use (below it is the header). */
  readonly base = HEADER_BYTES / 4;
  f32: Float32Array;

  /** With `share`, the memory is shared where the platform allows it (see `shared`). */
  constructor(share: boolean) {
    const shared = share ? sharedMemory(1, MAX_PAGES) : null;
    this.shared = shared !== null;
    this.memory = shared ?? new WebAssembly.Memory({ initial: 1 });
    this.f32 = new Float32Array(this.memory.buffer);
  }

  /** Grows to hold at least `floats` floats; false when it cannot (the caller falls back to TypeScript). */
  reserve(floats: number): boolean {
    if (!growTo(this.memory, floats)) return false;
    // Growth detaches an unshared buffer; a shared one grows in place, but old views keep their old length.
    if (this.f32.byteLength !== this.memory.buffer.byteLength) this.f32 = new Float32Array(this.memory.buffer);
    return true;
  }

  private stepper?: (at: number, n: number, steps: readonly Step[]) => void;

  /** Applies epilogue steps (kernels/wasm/elementwise.ts) to n floats from float index `at`, where a kernel staged its output. */
  applySteps(at: number, n: number, steps: readonly Step[]): void {
    (this.stepper ??= stepsOn(this.memory, this.shared ? MAX_PAGES : 0))(4 * at, n, steps);
  }

  /** Copies `planes` planes of rows x cols from `src` (rows contiguous) into the arena with a row stride of `stride` floats. */
  putRows(src: Float32Array, off: number, planes: number, rows: number, cols: number, at: number, stride: number): void {
    if (stride === cols) { this.f32.set(src.subarray(off, off + planes * rows * cols), at); return; }
    for (let r = 0, end = planes * rows; r < end; r++, off += cols, at += stride) this.f32.set(src.subarray(off, off + cols), at);
  }

  /** The inverse of putRows: copies strided rows out of the arena into `dst`. */
  getRows(dst: Float32Array, off: number, planes: number, rows: number, cols: number, at: number, stride: number): void {
    if (stride === cols) { dst.set(this.f32.subarray(at, at + planes * rows * cols), off); return; }
    for (let r = 0, end = planes * rows; r < end; r++, off += cols, at += stride) dst.set(this.f32.subarray(at, at + cols), off);
  }
}

/** A function under construction: parameters first, then locals allocated as the body needs them. */
export class Fn {
  readonly c = new Code();
  private readonly locals: T[] = [];
  constructor(private readonly name: string, private readonly params: T[]) {}
  local(t: T): number { this.locals.push(t); return this.params.length + this.locals.length - 1; }
  func(): Func { return { name: this.name, params: this.params, results: [], locals: this.locals, body: this.c }; }
}

/** while (cond) body, as a block around a loop (emitter loops are do-while). */
export function whileLoop(c: Code, cond: () => void, body: () => void): void {
  c.block(() => c.loop(() => { cond(); c.eqz().brIf(1); body(); c.br(0); }));
}

/**
 * prep(src, C, H, W, dst, Hp, Wq, sw, pt, pl, fill): lays C planes of H x W floats at byte address src
 * out at dst in the prepped layout, with `pt` pad rows and `pl` pad columns before the data and the pad
 * value `fill` everywhere the input does not reach. Input beyond the prepped extent is never read by a window, so it is dropped.
 */
function prepFunc(): Func {
  const f = new Fn('prep', [...Array(10).fill(T.i32), T.f32]), c = f.c;
  const [src, C, H, W, dst, Hp, Wq, sw, pt, pl, fill] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const cr = f.local(T.i32), rows = f.local(T.i32), row = f.local(T.i32), d = f.local(T.i32), end = f.local(T.i32);
  const ih = f.local(T.i32), s = f.local(T.i32), n = f.local(T.i32), i = f.local(T.i32), ph = f.local(T.i32), iw = f.local(T.i32), q = f.local(T.i32);
  const fv = f.local(T.v128);
  c.get(fill).simd(Simd.f32x4Splat).set(fv);
  c.get(C).get(Hp).mul().set(rows).get(dst).set(row).i32(0).set(cr);
  whileLoop(c, () => c.get(cr).get(rows).ltU(), () => {
    // The whole padded row (every phase) gets the pad value; sw * Wq is a multiple of 4.
    c.get(row).set(d).get(row).get(sw).get(Wq).mul().i32(4).mul().add().set(end);
    c.loop(() => { c.get(d).get(fv).simd(Simd.store, [0, 0]).get(d).i32(16).add().tee(d).get(end).ltU().brIf(0); });
    c.get(cr).get(Hp).remS().get(pt).sub().tee(ih).get(H).ltU().ifElse(() => {
      c.get(src).get(cr).get(Hp).divS().get(H).mul().get(ih).add().get(W).mul().i32(4).mul().add().set(s);
      c.get(sw).i32(1).eq().ifElse(() => {
        // Stride 1: one contiguous run, vectors then a scalar tail.
        c.get(Wq).get(pl).sub().set(n);
        c.get(W).get(n).get(n).get(W).gtS().select().set(n);
        c.get(row).get(pl).i32(4).mul().add().set(d).i32(0).set(i);
        whileLoop(c, () => c.get(i).i32(4).add().get(n).leS(), () => {
          c.get(d).get(i).i32(4).mul().add().get(s).get(i).i32(4).mul().add().simd(Simd.load, [0, 0]).simd(Simd.store, [0, 0]);
          c.get(i).i32(4).add().set(i);
        });
        whileLoop(c, () => c.get(i).get(n).ltS(), () => {
          c.get(d).get(i).i32(4).mul().add().get(s).get(i).i32(4).mul().add().load32().store32();
          c.get(i).i32(1).add().set(i);
        });
      }, () => {
        // Stride sw: phase `ph` takes input columns iw with (iw + pl) % sw == ph, in order.
        c.i32(0).set(ph);
        c.loop(() => {
          c.get(ph).get(pl).sub().get(sw).remS().tee(iw).i32(0).ltS().ifElse(() => { c.get(iw).get(sw).add().set(iw); });
          c.get(iw).get(pl).add().get(ph).sub().get(sw).divS().set(q);
          c.get(row).get(ph).get(Wq).mul().get(q).add().i32(4).mul().add().set(d);
          c.get(s).get(iw).i32(4).mul().add().set(i);
          whileLoop(c, () => c.get(iw).get(W).ltS().get(q).get(Wq).ltS().and(), () => {
            c.get(d).get(i).load32().store32();
            c.get(d).i32(4).add().set(d).get(i).get(sw).i32(4).mul().add().set(i);
            c.get(iw).get(sw).add().set(iw).get(q).i32(1).add().set(q);
          });
          c.get(ph).i32(1).add().tee(ph).get(sw).ltU().brIf(0);
        });
      });
    });
    c.get(row).get(sw).get(Wq).mul().i32(4).mul().add().set(row);
    c.get(cr).i32(1).add().set(cr);
  });
  return f.func();
}

export type WindowKind = 'conv' | 'max' | 'avg';

/**
 * A window kernel for one kernel geometry (taps unrolled, their column offsets immediates):
 * win(pp, phaseBytes, shBytes, dhBytes, OH, nv, planes, mg, inPlaneBytes, wp, out, aux)
 * computes `planes` output planes of OH rows x nv vectors (row stride nv*16 bytes, contiguous planes) at
 * `out`; output plane p reads prepped input plane floor(p / mg) at pp + that * inPlaneBytes.
 * - conv: out = (the plane's bias, one float at aux advancing per plane; or with aux = 0, out itself)
 *   + sum of taps times the plane's KH*KW weights (at wp, advancing per plane);
 * - max: out = the largest tap (pad value -Infinity; pmax, so a NaN tap is kept only when it comes
 *   first, as in the TypeScript kernel's comparison);
 * - avg: out = sum of taps / the count at aux (one OH x nv*4 plane of divisors, shared by every plane).
 */
function windowFunc(kind: WindowKind, KH: number, KW: number, sw: number, dw: number): Func {
  const f = new Fn('win', Array(12).fill(T.i32)), c = f.c;
  const [pp, phaseBytes, shBytes, dhBytes, OH, nv, planes, mg, inPlaneBytes, wp, out, aux] = Array.from({ length: 12 }, (_, i) => i);
  const phases = [...new Set(Array.from({ length: KW }, (_, kw) => (kw * dw) % sw))];
  const p = f.local(T.i32), r0 = f.local(T.i32), oh = f.local(T.i32), j = f.local(T.i32), end = f.local(T.i32), a = f.local(T.i32), o = f.local(T.i32), cnt = f.local(T.i32);
  const ptr = Array.from({ length: KH }, () => phases.map(() => f.local(T.i32)));
  const acc = [f.local(T.v128), f.local(T.v128)], bv = f.local(T.v128);
  const wv = kind === 'conv' ? Array.from({ length: KH * KW }, () => f.local(T.v128)) : [];
  // V output vectors at byte offset j of the row: every tap row pointer plus j is one address for all V.
  const body = (V: number) => {
    if (kind === 'conv') {
      c.get(aux).ifElse(() => { for (let v = 0; v < V; v++) c.get(bv).set(acc[v]); },
        () => { for (let v = 0; v < V; v++) c.get(o).get(j).add().simd(Simd.load, [0, 16 * v]).set(acc[v]); });
    }
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const t = kh * KW + kw, off = 4 * Math.floor((kw * dw) / sw);
        c.get(ptr[kh][phases.indexOf((kw * dw) % sw)]).get(j).add().set(a);
        for (let v = 0; v < V; v++) {
          if (kind === 'conv') c.get(acc[v]).get(a).simd(Simd.load, [0, off + 16 * v]).get(wv[t]).simd(Simd.f32x4Mul).simd(Simd.f32x4Add).set(acc[v]);
          else if (t === 0) c.get(a).simd(Simd.load, [0, off + 16 * v]).set(acc[v]);
          else c.get(acc[v]).get(a).simd(Simd.load, [0, off + 16 * v]).simd(kind === 'max' ? Simd.f32x4Pmax : Simd.f32x4Add).set(acc[v]);
        }
      }
    }
    for (let v = 0; v < V; v++) {
      c.get(o).get(j).add();
      if (kind === 'avg') c.get(acc[v]).get(aux).get(j).add().simd(Simd.load, [0, 16 * v]).simd(Simd.f32x4Div).set(acc[v]);
      c.get(acc[v]).simd(Simd.store, [0, 16 * v]);
    }
  };
  c.get(out).set(o).i32(0).set(p).get(nv).i32(16).mul().set(end);
  c.loop(() => {
    if (kind === 'conv') {
      for (let t = 0; t < KH * KW; t++) c.get(wp).simd(Simd.load32Splat, [2, 4 * t]).set(wv[t]);
      c.get(aux).ifElse(() => { c.get(aux).simd(Simd.load32Splat, [2, 0]).set(bv); });
    }
    c.get(pp).get(p).get(mg).divS().get(inPlaneBytes).mul().add().set(r0);
    c.i32(0).set(oh).get(aux).set(cnt);
    c.loop(() => {
      for (let kh = 0; kh < KH; kh++) {
        phases.forEach((ph, i) => c.get(r0).get(dhBytes).i32(kh).mul().add().get(phaseBytes).i32(ph).mul().add().set(ptr[kh][i]));
      }
      c.i32(0).set(j);
      whileLoop(c, () => c.get(j).i32(32).add().get(end).leS(), () => { body(2); c.get(j).i32(32).add().set(j); });
      c.get(j).get(end).ltS().ifElse(() => body(1));
      c.get(o).get(end).add().set(o).get(r0).get(shBytes).add().set(r0);
      if (kind === 'avg') c.get(aux).get(end).add().set(aux);
      c.get(oh).i32(1).add().tee(oh).get(OH).ltU().brIf(0);
    });
    if (kind === 'avg') c.get(cnt).set(aux);
    if (kind === 'conv') {
      c.get(wp).i32(4 * KH * KW).add().set(wp);
      c.get(aux).ifElse(() => { c.get(aux).i32(4).add().set(aux); });
    }
    c.get(p).i32(1).add().tee(p).get(planes).ltU().brIf(0);
  });
  return f.func();
}

/**
 * step(src, C, H, W, dst, Hp, Wq, sw, pt, pl, fill, phaseBytes, shBytes, dhBytes, OH, nv, mg, inPlaneBytes, wp, out, aux):
 * preps C input planes (prep's arguments) and runs the window kernel over their C * mg output planes
 * (win's arguments, its pp being dst). One call per chunk of channels keeps a thread's prepped planes in
 * its own cache between the two.
 */
function stepFunc(): Func {
  const params = [...Array(10).fill(T.i32), T.f32, ...Array(10).fill(T.i32)];
  const c = new Code();
  for (let p = 0; p < 11; p++) c.get(p);
  c.call(0);
  c.get(4);
  for (let p = 11; p < 16; p++) c.get(p);
  c.get(1).get(16).mul(); // planes = C * mg
  for (let p = 16; p < 21; p++) c.get(p);
  c.call(1);
  return { name: 'step', params, results: [], locals: [], body: c };
}

// Below about this much work (multiply-adds, or their equivalent) a call stays on one thread. Measured on
// 2 vCPUs: a job of a few chunks costs about 10 us more on 2 threads than on 1, and a worker takes
// 30-40 us to wake, so 4 chunks of 20 us each gained nothing and 4 of 80 us gained little.
export const PARALLEL_MIN_WORK = 1 << 20;
// Chunks per thread: several, so a worker that wakes late or is descheduled still finds unclaimed work
// (measured at 2 threads: 4 ran PP-OCR's detector and recogniser 5-12% faster than 2).
const CHUNKS_PER_THREAD = 4;
// Calls over many planes go in batches whose chunks hold about this many floats of arena (input, prepped
// planes, output), so a chunk's planes stay in its thread's L2 from prep to window to the copy out.
const CHUNK_FLOATS = 1 << 16;
// A threaded batch takes chunks until it has PARALLEL_MIN_WORK, up to this many floats of arena.
const BATCH_MAX_FLOATS = 1 << 21;

type Exported = (...args: number[]) => void;

/** One instantiated module of the arena: its functions by name, their parameter types, and its pool slot. */
export interface Mod { fns: Record<string, Exported>; index: Map<string, number>; params: T[][]; slot: number }

/** The arena and its modules: prep plus extra generic functions built once, window kernels per geometry. */
export class WindowKernels {
  readonly arena: Arena;
  private readonly base: Mod;
  private readonly pool: Pool | null = null;
  private readonly built = new Map<string, Mod>();

  /** With `share`, over shared memory with a pool of workers where the platform allows it; else one thread only. */
  constructor(extra: Func[] = [], share = true) {
    this.arena = new Arena(share);
    const { module, mod } = this.build([prepFunc(), ...extra]);
    this.base = { ...mod, slot: 0 };
    if (this.arena.shared) {
      const area = { at: MODULE_AT, bytes: HEADER_BYTES - MODULE_AT };
      this.pool = new Pool(module, this.arena.memory, 0, mod.fns.task, area);
    }
  }

  /** Compiles funcs plus their chunk task into a module over the arena (shared when the arena is). */
  private build(funcs: Func[]): { module: WebAssembly.Module; bytes: Uint8Array; mod: Mod } {
    const all = [...funcs, chunkTask(funcs)];
    const bytes = buildModule(all, this.arena.shared ? { shared: true, maxPages: MAX_PAGES } : {});
    const module = new WebAssembly.Module(bytes);
    const fns = new WebAssembly.Instance(module, { env: { memory: this.arena.memory } }).exports as Record<string, Exported>;
    return { module, bytes, mod: { fns, index: new Map(all.map((f, i) => [f.name, i])), params: all.map((f) => f.params), slot: -1 } };
  }

  /** The functions of the module built from `make` on first use of `key`, then kept (and given to the pool). */
  private specialised(key: string, make: () => Func[]): Mod {
    let m = this.built.get(key);
    if (!m) {
      const { bytes, mod } = this.build(make());
      m = { ...mod, slot: this.pool ? this.pool.addModule(bytes, mod.fns.task) : -1 };
      this.built.set(key, m);
    }
    return m;
  }

  /** Threads for a call of about `work` multiply-adds or copied floats: 1 without a pool or below PARALLEL_MIN_WORK. */
  threadsFor(work: number): number {
    return this.pool && work >= PARALLEL_MIN_WORK ? threads() : 1;
  }

  /**
   * Threads, units per call and units per chunk for work over `units` units (planes, channels) of
   * `floats` arena floats and `work` multiply-adds each. On one thread a call holds about CHUNK_FLOATS;
   * on more, chunks do, and a call has CHUNKS_PER_THREAD per thread or more, to reach PARALLEL_MIN_WORK.
   */
  batches(units: number, floats: number, work: number): { nt: number; batch: number; per: number } {
    const per = Math.min(units, Math.max(1, Math.floor(CHUNK_FLOATS / floats)));
    const most = Math.max(per, Math.floor(BATCH_MAX_FLOATS / floats));
    const batch = Math.min(units, most, Math.max(CHUNKS_PER_THREAD * threads() * per, Math.ceil(PARALLEL_MIN_WORK / Math.max(1, work))));
    const nt = this.threadsFor(batch * work);
    return nt > 1 ? { nt, batch, per: Math.min(per, Math.ceil(batch / (CHUNKS_PER_THREAD * nt))) } : { nt, batch: per, per };
  }

  /** Starts the workers for n threads and resolves with how many are ready (for tests and benchmarks). */
  async startThreads(n: number): Promise<number> { return this.pool ? this.pool.ready(n) : 0; }

  /**
   * Calls function `name` of `mod` with `args` (the whole work), split into chunks (see
   * kernels/wasm/chunked.ts) on up to nt threads, `per` units a chunk (by default CHUNKS_PER_THREAD
   * chunks per thread). False if a worker failed part way: the call's output is
   * then undefined, and the caller redoes it on one thread from what it started from.
   */
  tryCall(mod: Mod, name: string, args: number[], split: Split, nt: number, per?: number): boolean {
    const total = args[split.count];
    if (nt <= 1 || total <= 1 || !this.pool) { mod.fns[name](...args); return true; }
    per ??= Math.ceil(total / Math.min(total, CHUNKS_PER_THREAD * nt));
    const i = mod.index.get(name)!;
    writeJob(this.arena.memory, JOB_AT, i, mod.params[i], args, split, per);
    return this.pool.run(JOB_AT, Math.ceil(total / per), nt, mod.slot);
  }

  /** tryCall, redone on this thread after a worker failed; `restage` first puts back what the call accumulates onto, if anything. */
  call(mod: Mod, name: string, args: number[], split: Split, nt: number, restage?: () => void, per?: number): void {
    if (this.tryCall(mod, name, args, split, nt, per)) return;
    restage?.();
    mod.fns[name](...args);
  }

  /** The generic module (prep and the extra functions), for call and tryCall. */
  get generic(): Mod { return this.base; }

  private window(kind: WindowKind, v: Win2): Mod {
    return this.specialised(`win ${kind} ${v.KH} ${v.KW} ${v.sw} ${v.dw}`, () => [prepFunc(), windowFunc(kind, v.KH, v.KW, v.sw, v.dw), stepFunc()]);
  }

  /** Preps `planes` input planes (H x W floats each, at float index srcAt) into float index ppAt, split by planes on up to nt threads. */
  prepPlanes(v: Win2, L: Layout, planes: number, srcAt: number, ppAt: number, fill: number, nt = 1): void {
    this.call(this.base, 'prep', [4 * srcAt, planes, v.H, v.W, 4 * ppAt, L.Hp, L.Wq, v.sw, v.ph, v.pw, fill],
      { count: 1, steps: { 0: 4 * v.H * v.W, 4: 4 * L.planeFloats } }, nt);
  }

  /**
   * Preps `channels` input planes (at float index srcAt, into ppAt, pad value `fill`) and runs a window
   * kernel over their channels * mg output planes, split by channels (`per` a chunk) on up to nt threads. Float indices:
   * wAt the conv weights (KH*KW per output plane); auxAt the divisor plane for avg, for conv the planes'
   * biases, or 0 to accumulate onto out (then `restage` must put out back as it was, for a redo).
   */
  windowed(kind: WindowKind, v: Win2, L: Layout, channels: number, mg: number, srcAt: number, ppAt: number, wAt: number, outAt: number, auxAt: number,
    fill: number, nt: number, restage?: () => void, per?: number): void {
    const kk = v.KH * v.KW, outPlaneBytes = v.OH * L.OWp * 4;
    const args = [4 * srcAt, channels, v.H, v.W, 4 * ppAt, L.Hp, L.Wq, v.sw, v.ph, v.pw, fill,
      4 * L.Wq, v.sh * L.rowBytes, v.dh * L.rowBytes, v.OH, L.OWp / 4, mg, 4 * L.planeFloats, 4 * wAt, 4 * outAt, 4 * auxAt];
    const steps = { 0: 4 * v.H * v.W, 4: 4 * L.planeFloats, 18: kind === 'conv' ? 4 * mg * kk : 0, 19: mg * outPlaneBytes, 20: kind === 'conv' && auxAt ? 4 * mg : 0 };
    this.call(this.window(kind, v), 'step', args, { count: 1, steps }, nt, restage, per);
  }
}
