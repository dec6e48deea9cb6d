// The per-timestep work of LSTM, GRU and RNN cells in WebAssembly SIMD128: the recurrent product (gemv.ts)
// and the gate functions, which apply the default activations (math-vec.ts), clip and peepholes, and update
// the states in place. Gates are laid out one after another, each padded to a whole number of loop
// iterations (gateWidth), so a vector never straddles two gates. Addresses and strides are in bytes.
import { buildModule, Code, Simd, T, type Func } from './emitter.js';
import { gemvFunc, packFunc } from './gemv.js';
import { hasRelaxedSimd } from './simd.js';
import { Fn, vsigmoid, vtanh } from './math-vec.js';

/** Vectors each gate loop iteration handles: independent copies of the body let the CPU overlap one
 *  copy's long exp/divide chains with another's. Gate widths are padded to a multiple of this. */
export const UNROLL = 2;

/** What the body of a gate loop sees: `at(b)` is the local holding base param b's address for this
 *  iteration, `m` the memarg (alignment, offset) of this copy's vector, `clamp` bounds the value on top. */
interface Lane { f: Fn; c: Code; at: (param: number) => number; m: [number, number]; clamp: () => Code }

/**
 * A function looping over `rows` rows and, within each, over the floats of one gate (`gw` bytes),
 * UNROLL vectors at a time. `bases` are the param indices of row base addresses with their row-stride
 * params (-1: the same for every row); `clipP` is the f32 clip param.
 */
function gateLoop(name: string, params: T[], rowsP: number, gwP: number, clipP: number, bases: [number, number][], body: (l: Lane) => void): Func {
  const f = new Fn(name, params), c = f.c;
  const i = f.local(T.i32), j = f.local(T.i32), ptr = bases.map(() => f.local(T.i32)), hi = f.local(T.v128), lo = f.local(T.v128);
  const at = (b: number) => ptr[bases.findIndex(([p]) => p === b)];
  // pmin/pmax are single instructions on x64 (min/max cost several, for NaN and signed zeros) and keep a NaN x.
  const clamp = () => c.get(hi).simd(Simd.f32x4Pmin).get(lo).simd(Simd.f32x4Pmax);
  c.get(rowsP).eqz().get(gwP).eqz().or().ifElse(() => c.ret());
  c.get(clipP).simd(Simd.f32x4Splat).set(hi).get(clipP).f32Neg().simd(Simd.f32x4Splat).set(lo);
  c.i32(0).set(i).loop(() => {
    c.i32(0).set(j).loop(() => {
      bases.forEach(([p, ld], q) => {
        c.get(p).get(j).add();
        if (ld >= 0) c.get(i).get(ld).mul().add();
        c.set(ptr[q]);
      });
      for (let u = 0; u < UNROLL; u++) body({ f, c, at, m: [0, 16 * u], clamp });
      c.get(j).i32(16 * UNROLL).add().tee(j).get(gwP).ltU().brIf(0);
    });
    c.get(i).i32(1).add().tee(i).get(rowsP).ltU().brIf(0);
  });
  return f.func();
}

/** Pushes the v128 at `ptr` (+ the byte offset in local `off`), at this copy's memarg. */
const load = ({ c, m }: Lane, ptr: number, off?: number) => (off === undefined ? c.get(ptr) : c.get(ptr).get(off).add()).simd(Simd.load, m);

/**
 * lstm(rows, gw, g, ldg, c, h, ldh, p, clip, inputForget): gates i, o, f, c at g + q*gw of each row hold
 * the input projection plus biases plus the recurrent product; p holds peepholes i, o, f (zeros when
 * the node has none). Writes the new cell and hidden states over c and h.
 */
function lstmFunc(): Func {
  const [rows, gw, g, ldg, cs, h, ldh, p, clip, inputForget] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const params = [...Array(8).fill(T.i32), T.f32, T.i32];
  return gateLoop('lstm', params, rows, gw, clip, [[g, ldg], [cs, ldh], [h, ldh], [p, -1]], (l) => {
    const { f, c, at, m } = l, gp = at(g), pp = at(p), v = () => f.local(T.v128);
    const [cPrev, x, it, ft, cNew, gw2, gw3] = [v(), v(), v(), v(), v(), f.local(T.i32), f.local(T.i32)];
    c.get(gw).i32(1).shl().tee(gw2).get(gw).add().set(gw3);
    load(l, at(cs)).set(cPrev);
    const gate = (off: number | undefined, state: number) => {
      load(l, gp, off);
      load(l, pp, off).get(state).simd(Simd.f32x4Mul).simd(Simd.f32x4Add);
      l.clamp().set(x);
    };
    gate(undefined, cPrev);
    vsigmoid(f, x); c.set(it);
    gate(gw2, cPrev);
    vsigmoid(f, x); c.set(ft);
    // input_forget: f = 1 - i, chosen lane-wise by a mask of all ones when the flag is set.
    f.k('one'); c.get(it).simd(Simd.f32x4Sub).get(ft).i32(0).get(inputForget).sub().simd(Simd.i32x4Splat).simd(Simd.v128Bitselect).set(ft);
    load(l, gp, gw3);
    l.clamp().set(x);
    c.get(ft).get(cPrev).simd(Simd.f32x4Mul).get(it);
    vtanh(f, x); c.simd(Simd.f32x4Mul).simd(Simd.f32x4Add).set(cNew);
    c.get(at(cs)).get(cNew).simd(Simd.store, m);
    gate(gw, cNew);
    c.get(at(h));
    vsigmoid(f, x);
    vtanh(f, cNew); c.simd(Simd.f32x4Mul).simd(Simd.store, m);
  });
}

/** gruGates(rows, gw, g, ldg, h, ldh, hr, clip): gates z, r (at g, g + gw) become their sigmoids; hr = r ⊙ h. */
function gruGatesFunc(): Func {
  const [rows, gw, g, ldg, h, ldh, hr, clip] = [0, 1, 2, 3, 4, 5, 6, 7];
  const params = [...Array(7).fill(T.i32), T.f32];
  return gateLoop('gruGates', params, rows, gw, clip, [[g, ldg], [h, ldh], [hr, ldh]], (l) => {
    const { f, c, at, m } = l, x = f.local(T.v128), r = f.local(T.v128), gp = at(g);
    c.get(gp);
    load(l, gp);
    l.clamp().set(x);
    vsigmoid(f, x); c.simd(Simd.store, m);
    c.get(gp).get(gw).add();
    load(l, gp, gw);
    l.clamp().set(x);
    vsigmoid(f, x); c.tee(r).simd(Simd.store, m);
    c.get(at(hr)).get(r);
    load(l, at(h)).simd(Simd.f32x4Mul).simd(Simd.store, m);
  });
}

/**
 * gruOut(rows, gw, g, ldg, hOff, rec, ldr, rbh, h, ldh, clip, lbr): with z, r activated at g, g + gw and
 * the h gate's projection at g + hOff, and rec the h gate's recurrent product (R_h·(r ⊙ h), or R_h·h
 * under linear_before_reset, when it is scaled by r after adding rbh): h = (1 - z) ht + z h.
 */
function gruOutFunc(): Func {
  const [rows, gw, g, ldg, hOff, rec, ldr, rbh, h, ldh, clip, lbr] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const params = [...Array(10).fill(T.i32), T.f32, T.i32];
  return gateLoop('gruOut', params, rows, gw, clip, [[g, ldg], [rec, ldr], [rbh, -1], [h, ldh]], (l) => {
    const { f, c, at, m } = l, [z, rc, x] = [f.local(T.v128), f.local(T.v128), f.local(T.v128)];
    load(l, at(rec)).set(rc);
    load(l, at(g), gw).get(rc);
    load(l, at(rbh)).simd(Simd.f32x4Add).simd(Simd.f32x4Mul).get(rc);
    c.i32(0).get(lbr).sub().simd(Simd.i32x4Splat).simd(Simd.v128Bitselect).set(rc);
    load(l, at(g), hOff).get(rc).simd(Simd.f32x4Add);
    l.clamp().set(x);
    load(l, at(g)).set(z);
    c.get(at(h)); f.k('one'); c.get(z).simd(Simd.f32x4Sub);
    vtanh(f, x); c.simd(Simd.f32x4Mul).get(z);
    load(l, at(h)).simd(Simd.f32x4Mul).simd(Simd.f32x4Add).simd(Simd.store, m);
  });
}

/** rnnOut(rows, gw, g, ldg, h, ldh, clip): h = tanh(clamp(g)). */
function rnnOutFunc(): Func {
  const [rows, gw, g, ldg, h, ldh, clip] = [0, 1, 2, 3, 4, 5, 6];
  const params = [...Array(6).fill(T.i32), T.f32];
  return gateLoop('rnnOut', params, rows, gw, clip, [[g, ldg], [h, ldh]], (l) => {
    const { f, c, at, m } = l, x = f.local(T.v128);
    c.get(at(h));
    load(l, at(g));
    l.clamp().set(x);
    vtanh(f, x); c.simd(Simd.store, m);
  });
}

export function rnnModule(fma = hasRelaxedSimd): Uint8Array<ArrayBuffer> {
  return buildModule([gemvFunc(fma), packFunc(), lstmFunc(), gruGatesFunc(), gruOutFunc(), rnnOutFunc()]);
}

export interface RnnExports {
  gemv(rows: number, panels: number, k: number, x: number, ldx: number, w: number, y: number, ldy: number): void;
  pack(src: number, k: number, hidden: number, gates: number, gw: number, dst: number): void;
  lstm(rows: number, gw: number, g: number, ldg: number, c: number, h: number, ldh: number, p: number, clip: number, inputForget: number): void;
  gruGates(rows: number, gw: number, g: number, ldg: number, h: number, ldh: number, hr: number, clip: number): void;
  gruOut(rows: number, gw: number, g: number, ldg: number, hOff: number, rec: number, ldr: number, rbh: number, h: number, ldh: number, clip: number, lbr: number): void;
  rnnOut(rows: number, gw: number, g: number, ldg: number, h: number, ldh: number, clip: number): void;
}
