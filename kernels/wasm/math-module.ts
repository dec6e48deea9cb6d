// WebAssembly SIMD128 float32 row kernels over a staging area, emitted with kernels/wasm/emitter.ts and
// the exp of math-vec.ts: Softmax/LogSoftmax and LayerNormalization. JS entry points are in math.ts;
// the elementwise functions are in elementwise.ts.
import { buildModule, Simd, T, type Func } from './emitter.js';
import { Fn, vexp } from './math-vec.js';

/** Floats in the data stage; rows up to this long are processed whole, longer ones in chunks. */
export const STAGE = 16384;
/** Float offsets in memory: per-row statistics (2 per row), scale, bias, data (+ one vector of slack). */
export const AT = { stats: 0, scale: 2 * STAGE, bias: 3 * STAGE, data: 4 * STAGE };
export const PAGES = Math.ceil(((AT.data + STAGE + 4) * 4) / 65536);

/** Runs body (which may read local p) while p < end, p stepping by `step` from its current value; p and end are i32 locals. */
function forEach(f: Fn, p: number, end: number, step: number, body: () => void): void {
  f.c.get(p).get(end).ltU().ifElse(() => f.c.loop(() => {
    body();
    f.c.get(p).i32(step).add().tee(p).get(end).ltU().brIf(0);
  }));
}

/** Sets locals end = p + 4n and vend = p + 4 (n & ~3) (the end of the whole vectors). */
function rowBounds(f: Fn, p: number, n: number): { end: number; vend: number } {
  const end = f.local(T.i32), vend = f.local(T.i32);
  f.c.get(p).get(n).i32(2).shl().add().set(end).get(p).get(n).i32(-4).and().i32(2).shl().add().set(vend);
  return { end, vend };
}

/** Pushes the f32 combination of the 4 lanes of local v by scalar op `op` (f32Add or f32Max). */
function lanes(f: Fn, v: number, op: 'f32Add' | 'f32Max'): void {
  const c = f.c, lane = (i: number) => { c.get(v).simd(Simd.f32x4ExtractLane); c.bytes.push(i); };
  lane(0); lane(1); c[op](); lane(2); lane(3); c[op](); c[op]();
}

/**
 * Over one row (byte address p, n floats): for each whole vector, then each leftover element as lane 0
 * of a splat, `body(x, scalar)` with v128 local x holding the values; returns after both loops.
 */
function eachOfRow(f: Fn, p: number, n: number, body: (x: number, scalar: boolean) => void): void {
  const { end, vend } = rowBounds(f, p, n), x = f.local(T.v128);
  forEach(f, p, vend, 16, () => { f.c.get(p).simd(Simd.load, [0, 0]).set(x); body(x, false); });
  forEach(f, p, end, 4, () => { f.c.get(p).f32Load().simd(Simd.f32x4Splat).set(x); body(x, true); });
}

/** Stores (stack top v128) at p: the whole vector, or lane 0 only for the scalar tail. */
function storeAt(f: Fn, p: number, scalar: boolean, tmp: number): void {
  f.c.set(tmp).get(p).get(tmp);
  if (scalar) { f.c.simd(Simd.f32x4ExtractLane); f.c.bytes.push(0); f.c.f32Store(); } else f.c.simd(Simd.store, [0, 0]);
}

/** rowMax(p, n) -> f32, NaN if any element is NaN. */
function rowMaxFunc(): Func {
  const f = new Fn('rowMax', [T.i32, T.i32], [T.f32]), acc = f.local(T.v128);
  f.k('negInf'); f.c.set(acc);
  eachOfRow(f, 0, 1, (x) => f.c.get(acc).get(x).simd(Simd.f32x4Max).set(acc));
  lanes(f, acc, 'f32Max');
  return f.func();
}

/**
 * Sets a new v128 local to the splat of f32 param `param` and returns it: V8 does not hoist a splat out
 * of a loop, so the loops read the local instead.
 */
function splat(f: Fn, param: number): number {
  const v = f.local(T.v128);
  f.c.get(param).simd(Simd.f32x4Splat).set(v);
  return v;
}

/**
 * name(p, n, ...) -> f32: the sum over the row of term(x), which pushes a vector; the scalar tail adds
 * lane 0 only. Each lane sums with its rounding errors collected apart (a plain float32 sum of 16K terms
 * drifted by 3e-6 relative, which LogSoftmax passes on to every output through log(sum)); unlike Kahan's
 * form, the loop-carried chain stays one add long. The error of acc + v is exact by Fast2Sum when
 * |acc| >= |v| (`positive`: sums of non-negative terms, past the first few) and by TwoSum otherwise.
 * With an f32 third param, term gets its splat as local `k`.
 */
function rowSumFunc(name: string, extra: T[], positive: boolean, term: (f: Fn, x: number, k: number, store: () => void) => void): Func {
  const f = new Fn(name, [T.i32, T.i32, ...extra], [T.f32]), c = f.c, tail = f.local(T.f32), tmp = f.local(T.v128);
  const k = extra.length ? splat(f, 2) : -1;
  const [acc, lost, v, t, z] = [f.local(T.v128), f.local(T.v128), f.local(T.v128), f.local(T.v128), f.local(T.v128)];
  const sub = () => c.simd(Simd.f32x4Sub), add = () => c.simd(Simd.f32x4Add);
  c.v128Zero().set(acc).v128Zero().set(lost).f32(0).set(tail);
  eachOfRow(f, 0, 1, (x, scalar) => {
    // store(): writes the term over the row (lane 0 only in the tail) and leaves it on the stack.
    term(f, x, k, () => { storeAt(f, 0, scalar, tmp); c.get(tmp); });
    if (scalar) { c.simd(Simd.f32x4ExtractLane); c.bytes.push(0); c.get(tail).f32Add().set(tail); return; }
    c.tee(v).get(acc); add(); c.set(t);
    if (positive) { c.get(acc).get(t); sub(); c.get(v); add(); } // (acc - t) + v
    else { c.get(t).get(acc); sub(); c.set(z).get(acc).get(t).get(z); sub(); sub(); c.get(v).get(z); sub(); add(); } // (acc - (t - z)) + (v - z), z = t - acc
    c.get(lost); add(); c.set(lost).get(t).set(acc);
  });
  c.get(acc).get(lost); add(); c.set(acc);
  lanes(f, acc, 'f32Add'); c.get(tail).f32Add();
  return f.func();
}

/** expSum(p, n, shift) / expSumStore: sum of e^(x - shift) over the row; the Store form writes each e^(x - shift) over x. */
const expSumFunc = (store: boolean) => rowSumFunc(store ? 'expSumStore' : 'expSum', [T.f32], true, (f, x, shift, st) => {
  const d = f.local(T.v128);
  f.c.get(x).get(shift).simd(Simd.f32x4Sub).set(d);
  vexp(f, d);
  if (store) st();
});

/** rowSum(p, n) and sumSqDev(p, n, mean) = sum (x - mean)^2. */
const rowSum = () => rowSumFunc('rowSum', [], false, (f, x) => f.c.get(x));
const sumSqDev = () => rowSumFunc('sumSqDev', [T.f32], true, (f, x, mean) => { f.c.get(x).get(mean).simd(Simd.f32x4Sub).tee(x).get(x).simd(Simd.f32x4Mul); });

/** scale(p, n, k): x = x * k over the row. */
function scaleFunc(): Func {
  const f = new Fn('scale', [T.i32, T.i32, T.f32]), tmp = f.local(T.v128), k = splat(f, 2);
  eachOfRow(f, 0, 1, (x, scalar) => {
    f.c.get(x).get(k).simd(Simd.f32x4Mul);
    storeAt(f, 0, scalar, tmp);
  });
  return f.func();
}

/**
 * sub2(p, n, a, b): x = (x - a) - b over the row. LogSoftmax's x - max - log(sum), in this order: x - max
 * is exact for x near max and the result keeps its precision, where x - (max + log sum) would carry
 * the rounding of a sum as large as max into every output.
 */
function sub2Func(): Func {
  const f = new Fn('sub2', [T.i32, T.i32, T.f32, T.f32]), tmp = f.local(T.v128), a = splat(f, 2), b = splat(f, 3);
  eachOfRow(f, 0, 1, (x, scalar) => {
    f.c.get(x).get(a).simd(Simd.f32x4Sub).get(b).simd(Simd.f32x4Sub);
    storeAt(f, 0, scalar, tmp);
  });
  return f.func();
}

/** lnAffine(p, n, mean, inv, sp, bp): x = (x - mean) * inv * scale + bias, scale and bias rows at sp, bp. */
function lnAffineFunc(): Func {
  const f = new Fn('lnAffine', [T.i32, T.i32, T.f32, T.f32, T.i32, T.i32]), tmp = f.local(T.v128), [sp, bp] = [4, 5];
  const mean = splat(f, 2), inv = splat(f, 3);
  eachOfRow(f, 0, 1, (x, scalar) => {
    const c = f.c, ld = (q: number) => (scalar ? c.get(q).f32Load().simd(Simd.f32x4Splat) : c.get(q).simd(Simd.load, [0, 0]));
    c.get(x).get(mean).simd(Simd.f32x4Sub).get(inv).simd(Simd.f32x4Mul);
    ld(sp); c.simd(Simd.f32x4Mul); ld(bp); c.simd(Simd.f32x4Add);
    storeAt(f, 0, scalar, tmp);
    c.get(sp).i32(scalar ? 4 : 16).add().set(sp).get(bp).i32(scalar ? 4 : 16).add().set(bp);
  });
  return f.func();
}

/** Function indices for `call`, in module order. */
const ORDER = ['rowMax', 'expSum', 'expSumStore', 'rowSum', 'sumSqDev', 'scale', 'sub2', 'lnAffine'] as const;
const idx = (name: (typeof ORDER)[number]) => ORDER.indexOf(name);

/** A loop over `rows` rows of n floats from byte address p (params 0, 1, 2), calling `row` with p at each row's start. */
function rowsFunc(name: string, extra: T[], row: (f: Fn) => void): Func {
  const f = new Fn(name, [T.i32, T.i32, T.i32, ...extra]), r = f.local(T.i32);
  f.c.i32(0).set(r).get(1).i32(0).gtS().ifElse(() => f.c.loop(() => {
    row(f);
    f.c.get(0).get(2).i32(2).shl().add().set(0);
    f.c.get(r).i32(1).add().tee(r).get(1).ltU().brIf(0);
  }));
  return f.func();
}

/** softmax(p, rows, n): each row in place. */
const softmaxRows = () => rowsFunc('softmax', [], (f) => {
  const m = f.local(T.f32), s = f.local(T.f32);
  f.c.get(0).get(2).call(idx('rowMax')).set(m);
  f.c.get(0).get(2).get(m).call(idx('expSumStore')).set(s);
  f.c.get(0).get(2).f32(1).get(s).f32Div().call(idx('scale'));
});

/** logSoftmaxStats(p, rows, n, st): (max, sum of e^(x - max)) per row, pairs of floats from byte address st. */
const logSoftmaxStats = () => rowsFunc('logSoftmaxStats', [T.i32], (f) => {
  const m = f.local(T.f32);
  f.c.get(0).get(2).call(idx('rowMax')).set(m);
  f.c.get(3).get(m).f32Store().get(3).get(0).get(2).get(m).call(idx('expSum')).f32Store(4);
  f.c.get(3).i32(8).add().set(3);
});

/** subRows(p, rows, n, st): row r = (x - a) - b with the floats (a, b) at st + 8r. */
const subRows = () => rowsFunc('subRows', [T.i32], (f) => {
  f.c.get(0).get(2).get(3).f32Load().get(3).f32Load(4).call(idx('sub2'));
  f.c.get(3).i32(8).add().set(3);
});

/** layerNorm(p, rows, n, eps, sp, bp, st): each row normalised, scaled and biased; (mean, 1/std) per row to st. */
const layerNormRows = () => rowsFunc('layerNorm', [T.f32, T.i32, T.i32, T.i32], (f) => {
  const c = f.c, nf = f.local(T.f32), mean = f.local(T.f32), inv = f.local(T.f32), [eps, sp, bp, st] = [3, 4, 5, 6];
  c.get(2).f32ConvertI32().set(nf);
  c.get(0).get(2).call(idx('rowSum')).get(nf).f32Div().set(mean);
  c.f32(1).get(0).get(2).get(mean).call(idx('sumSqDev')).get(nf).f32Div().get(eps).f32Add().f32Sqrt().f32Div().set(inv);
  c.get(st).get(mean).f32Store().get(st).get(inv).f32Store(4).get(st).i32(8).add().set(st);
  c.get(0).get(2).get(mean).get(inv).get(sp).get(bp).call(idx('lnAffine'));
});

/** The module: the row helpers (indexed by ORDER) and the row kernels. */
export function mathModule(): Uint8Array<ArrayBuffer> {
  const helpers = [rowMaxFunc(), expSumFunc(false), expSumFunc(true), rowSum(), sumSqDev(), scaleFunc(), sub2Func(), lnAffineFunc()];
  helpers.forEach((h, i) => { if (h.name !== ORDER[i]) throw new Error(`math helper ${h.name} out of order`); });
  return buildModule([...helpers, softmaxRows(), logSoftmaxStats(), subRows(), layerNormRows()]);
}
