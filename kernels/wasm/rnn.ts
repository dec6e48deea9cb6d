// LSTM, GRU and RNN cells in WebAssembly SIMD128: the recurrent product (gemv.ts) and the gate functions,
// which apply the default activations (math-vec.ts), clip and peepholes, and update the states in place;
// and task, which runs a whole direction (projection and timestep loop) from a descriptor in memory, so
// one direction is one call from JS and two directions can run on two threads (kernels/wasm/threads.ts).
// Gates are laid out one after another, each padded to a whole number of loop iterations (gateWidth), so
// a vector never straddles two gates. Addresses and strides are in bytes.
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

/** copy(dst, src, bytes): copies `bytes` (a multiple of 16) a vector at a time; the regions do not overlap. */
function copyFunc(): Func {
  const [dst, src, bytes, end] = [0, 1, 2, 3], c = new Code();
  c.get(bytes).eqz().ifElse(() => c.ret());
  c.get(dst).get(bytes).add().set(end).loop(() => {
    c.get(dst).get(src).simd(Simd.load, [0, 0]).simd(Simd.store, [0, 0]);
    c.get(src).i32(16).add().set(src);
    c.get(dst).i32(16).add().tee(dst).get(end).ltU().brIf(0);
  });
  return { name: 'copy', params: Array(3).fill(T.i32), results: [], locals: [T.i32], body: c };
}

/** zero(dst, bytes): zeroes `bytes` (a multiple of 16). */
function zeroFunc(): Func {
  const [dst, bytes, end] = [0, 1, 2], c = new Code();
  c.get(bytes).eqz().ifElse(() => c.ret());
  c.get(dst).get(bytes).add().set(end).loop(() => {
    c.get(dst).v128Zero().simd(Simd.store, [0, 0]);
    c.get(dst).i32(16).add().tee(dst).get(end).ltU().brIf(0);
  });
  return { name: 'zero', params: Array(2).fill(T.i32), results: [], locals: [T.i32], body: c };
}

/** Cell kinds, as the descriptor's `kind` field names them. */
export const KIND = { LSTM: 0, GRU: 1, RNN: 2 } as const;

/**
 * Word offsets of a direction's descriptor. Addresses, gw, ldg and ldr are in bytes; seq, batch, input
 * and hs are counts. The cell runs over xw (rows of ldg: bias, then the input projection, each gate at
 * its padded column), g (the running rows' gates at a step), h and c (states, rows of gw), and writes the
 * h of step s, state row i at y + (s*batch + i)*gw. State row i is batch row perm[i] (int32s), and
 * lens[i] (int32s, non-increasing) its length; its projection at step s is the xw row at byte
 * t*rowT + perm[i]*rowB, t = s (or lens[i] - 1 - s when reverse). W and R are packed (gemv.ts) in one or
 * two blocks: wq with wPq panels added at byte column wColq, rq with rPq panels (0: no block). h0 and c0
 * are the initial states (0: zeros). flag is input_forget (LSTM) or linear_before_reset (GRU); hOff the
 * GRU h gate's byte column; p the LSTM peepholes, rec, hr and rbh the GRU's work rows and h-gate bias.
 * The task writes `ran`: the id of the thread that ran the direction (so tests can tell threads were used).
 */
export const DESC = {
  kind: 0, seq: 1, batch: 2, input: 3, hs: 4, gw: 5, ldg: 6, ldr: 7, x: 8, xw: 9, bias: 10,
  w0: 11, wP0: 12, wCol0: 13, w1: 14, wP1: 15, wCol1: 16, r0: 17, rP0: 18, r1: 19, rP1: 20, hOff: 21,
  g: 22, h: 23, c: 24, h0: 25, c0: 26, p: 27, rec: 28, hr: 29, rbh: 30, y: 31, lens: 32, perm: 33,
  rowT: 34, rowB: 35, reverse: 36, clip: 37, flag: 38, ran: 39,
} as const;
export const DESC_BYTES = 256;

type Field = keyof typeof DESC;

/**
 * task(job, chunk, id): runs one whole direction, the one described at job + chunk * DESC_BYTES: the
 * input projection, then every timestep, with no call out of wasm. A direction only reads its own
 * descriptor's areas and X, so two directions run at once on two threads, each computed exactly as on one.
 * It starts from h0 and c0 each time, so a job a failed worker left half done can simply be run again.
 */
function taskFunc(index: (name: string) => number): Func {
  const f = new Fn('task', [T.i32, T.i32, T.i32]), c = f.c;
  const names = Object.keys(DESC) as Field[];
  const L = {} as Record<Field, number>;
  for (const n of names) L[n] = f.local(n === 'clip' ? T.f32 : T.i32);
  const [d, i, s, count, rows] = [f.local(T.i32), f.local(T.i32), f.local(T.i32), f.local(T.i32), f.local(T.i32)];
  const get = (...ns: Field[]) => { for (const n of ns) c.get(L[n]); return c; };
  const call = (name: string) => c.call(index(name));
  /** Runs body for i < n (n a local), nothing when n is 0. */
  const each = (n: number, body: () => void) => c.get(n).ifElse(() => c.i32(0).set(i).loop(() => {
    body();
    c.get(i).i32(1).add().tee(i).get(n).ltU().brIf(0);
  }));
  /** Pushes the int32 at `arr` + 4 * i. */
  const at = (arr: Field) => get(arr).get(i).i32(2).shl().add().load32();

  c.get(0).get(1).i32(DESC_BYTES).mul().add().set(d);
  for (const n of names) {
    c.get(d);
    if (n === 'clip') c.f32Load(4 * DESC[n]); else c.load32(4 * DESC[n]);
    c.set(L[n]);
  }
  // xw = bias + X·W^T, over every row.
  get('seq', 'batch').mul().set(rows);
  each(rows, () => { get('xw').get(i).get(L.ldg).mul().add(); get('bias', 'ldg'); call('copy'); });
  c.get(rows); get('wP0', 'input', 'x', 'input').i32(4).mul(); get('w0', 'xw', 'wCol0').add(); get('ldg'); call('gemv');
  c.get(rows); get('wP1', 'input', 'x', 'input').i32(4).mul(); get('w1', 'xw', 'wCol1').add(); get('ldg'); call('gemv');
  // Initial states (c is 0 for cells without one).
  const init = (state: Field, from: Field) => get(state).ifElse(() => get(from).ifElse(
    () => { get(state, from, 'batch', 'gw').mul(); call('copy'); },
    () => { get(state, 'batch', 'gw').mul(); call('zero'); },
  ));
  init('h', 'h0');
  init('c', 'c0');
  get('batch').set(count).i32(0).set(s);
  c.block(() => c.loop(() => {
    // The running rows are a prefix: drop those whose length is reached.
    c.block(() => c.loop(() => {
      c.get(count).eqz().brIf(1);
      get('lens').get(count).i32(1).sub().i32(2).shl().add().load32().get(s).gtS().brIf(1);
      c.get(count).i32(1).sub().set(count).br(0);
    }));
    c.get(count).eqz().brIf(1);
    // Each running row's projection into its gate row.
    each(count, () => {
      get('g').get(i).get(L.ldg).mul().add();
      at('lens').i32(1).sub().get(s).sub().get(s);
      get('reverse').select();
      get('rowT').mul();
      at('perm');
      get('rowB').mul().add();
      get('xw').add();
      get('ldg');
      call('copy');
    });
    c.get(count); get('rP0', 'hs', 'h', 'gw', 'r0', 'g', 'ldg'); call('gemv');
    get('kind').i32(KIND.LSTM).eq().ifElse(() => {
      c.get(count); get('gw', 'g', 'ldg', 'c', 'h', 'gw', 'p', 'clip', 'flag'); call('lstm');
    }, () => get('kind').i32(KIND.GRU).eq().ifElse(() => {
      c.get(count); get('gw', 'g', 'ldg', 'h', 'gw', 'hr', 'clip'); call('gruGates');
      get('rec').get(count); get('ldr').mul(); call('zero');
      // The h gate's product: with R_h·h under linear_before_reset, else with r ⊙ h.
      c.get(count); get('rP1', 'hs', 'h', 'hr', 'flag').select(); get('gw', 'r1', 'rec', 'ldr'); call('gemv');
      c.get(count); get('gw', 'g', 'ldg', 'hOff', 'rec', 'ldr', 'rbh', 'h', 'gw', 'clip', 'flag'); call('gruOut');
    }, () => {
      c.get(count); get('gw', 'g', 'ldg', 'h', 'gw', 'clip'); call('rnnOut');
    }));
    get('y').get(s); get('batch').mul(); get('gw').mul().add(); get('h').get(count); get('gw').mul(); call('copy');
    c.get(s).i32(1).add().tee(s); get('seq').ltU().brIf(0);
  }));
  c.get(d).get(2).store32(4 * DESC.ran);
  return f.func();
}

/** The module's functions in index order (calls name their callee by its position here). */
const NAMES = ['gemv', 'pack', 'lstm', 'gruGates', 'gruOut', 'rnnOut', 'copy', 'zero', 'task'];

/** The module; with `shared`, importing a shared memory of `maxPages` at most (threads need one). */
export function rnnModule(fma = hasRelaxedSimd, memory: { shared?: boolean; maxPages?: number } = {}): Uint8Array<ArrayBuffer> {
  const index = (name: string) => NAMES.indexOf(name);
  const funcs = [gemvFunc(fma), packFunc(), lstmFunc(), gruGatesFunc(), gruOutFunc(), rnnOutFunc(), copyFunc(), zeroFunc(), taskFunc(index)];
  funcs.forEach((f, i) => { if (f.name !== NAMES[i]) throw new Error(`rnn module: function ${i} is ${f.name}, expected ${NAMES[i]}`); });
  return buildModule(funcs, memory);
}

export interface RnnExports {
  gemv(rows: number, panels: number, k: number, x: number, ldx: number, w: number, y: number, ldy: number): void;
  pack(src: number, k: number, hidden: number, gates: number, gw: number, dst: number): void;
  lstm(rows: number, gw: number, g: number, ldg: number, c: number, h: number, ldh: number, p: number, clip: number, inputForget: number): void;
  gruGates(rows: number, gw: number, g: number, ldg: number, h: number, ldh: number, hr: number, clip: number): void;
  gruOut(rows: number, gw: number, g: number, ldg: number, hOff: number, rec: number, ldr: number, rbh: number, h: number, ldh: number, clip: number, lbr: number): void;
  rnnOut(rows: number, gw: number, g: number, ldg: number, h: number, ldh: number, clip: number): void;
  copy(dst: number, src: number, bytes: number): void;
  zero(dst: number, bytes: number): void;
  task(job: number, chunk: number, id: number): void;
}
