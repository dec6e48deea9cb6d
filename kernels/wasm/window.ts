// Sliding-window building blocks of the WebAssembly convolution and pooling kernels (kernels/wasm/conv.ts,
// kernels/wasm/pool.ts): one growable memory shared by their modules, a prep pass that copies input
// planes into it padded and split into column stride phases, and window kernels generated per kernel
// geometry. After prep every tap of a window is a contiguous run along the output width, so the kernels
// are plain vector loops with no bounds checks: the padding is real memory holding the pad value.
import { buildModule, Code, Simd, T, type Func } from './emitter.js';
import { growTo } from './simd.js';

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

/** The memory every module here imports, with a Float32Array view kept current across growth. */
export class Arena {
  readonly memory = new WebAssembly.Memory({ initial: 1 });
  f32 = new Float32Array(this.memory.buffer);

  /** Grows to hold at least `floats` floats; false when it cannot (the caller falls back to TypeScript). */
  reserve(floats: number): boolean {
    if (!growTo(this.memory, floats)) return false;
    if (this.f32.buffer !== this.memory.buffer) this.f32 = new Float32Array(this.memory.buffer);
    return true;
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

type Prep = (src: number, C: number, H: number, W: number, dst: number, Hp: number, Wq: number, sw: number, pt: number, pl: number, fill: number) => void;
export type Window = (pp: number, phaseBytes: number, shBytes: number, dhBytes: number, OH: number, nv: number,
  planes: number, mg: number, inPlaneBytes: number, wp: number, out: number, aux: number) => void;

const instantiate = (funcs: Func[], memory: WebAssembly.Memory) =>
  new WebAssembly.Instance(new WebAssembly.Module(buildModule(funcs)), { env: { memory } }).exports;

/** The arena and its modules: prep plus extra generic functions built once, window kernels per geometry. */
export class WindowKernels {
  readonly arena = new Arena();
  readonly prep: Prep;
  readonly extra: WebAssembly.Exports;
  private readonly built = new Map<string, WebAssembly.ExportValue>();

  constructor(extra: Func[] = []) {
    const ex = instantiate([prepFunc(), ...extra], this.arena.memory);
    this.prep = ex.prep as Prep;
    this.extra = ex;
  }

  /** The function a one-function module exports, built by `make` on first use of `key` and then kept. */
  specialised(key: string, make: () => Func): WebAssembly.ExportValue {
    let k = this.built.get(key);
    if (!k) {
      const fn = make();
      this.built.set(key, k = instantiate([fn], this.arena.memory)[fn.name]);
    }
    return k;
  }

  window(kind: WindowKind, v: Win2): Window {
    return this.specialised(`win ${kind} ${v.KH} ${v.KW} ${v.sw} ${v.dw}`, () => windowFunc(kind, v.KH, v.KW, v.sw, v.dw)) as Window;
  }

  /** Preps `planes` input planes (H x W floats each, at float index srcAt) into float index ppAt. */
  prepPlanes(v: Win2, L: Layout, planes: number, srcAt: number, ppAt: number, fill: number): void {
    this.prep(4 * srcAt, planes, v.H, v.W, 4 * ppAt, L.Hp, L.Wq, v.sw, v.ph, v.pw, fill);
  }

  /** Runs a window kernel over `planes` output planes whose inputs were prepped at ppAt (float indices). */
  /** auxAt (a float index): the divisor plane for avg; for conv, the planes' biases, or 0 to accumulate onto out. */
  run(kind: WindowKind, v: Win2, L: Layout, planes: number, mg: number, ppAt: number, wAt: number, outAt: number, auxAt = 0): void {
    this.window(kind, v)(4 * ppAt, 4 * L.Wq, v.sh * L.rowBytes, v.dh * L.rowBytes, v.OH, L.OWp / 4,
      planes, mg, 4 * L.planeFloats, 4 * wAt, 4 * outAt, 4 * auxAt);
  }
}
