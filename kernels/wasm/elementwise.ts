// float32 elementwise kernels in WebAssembly SIMD128: the four arithmetic ops with numpy broadcasting,
// the activations (piecewise-linear ones with their parameters, and the exp-based ones of math-vec.ts)
// and scalar steps, chained so that a binary op, an activation and an affine run in one pass over the
// data. A JS loop over Float32Arrays costs 2-4 ns an element here (each value widened to float64 and
// narrowed back); the vector loops cost a fraction of that, so even with the copies in and out of the
// staging area (memcpy speed, which keeps memory bounded whatever the tensor size) an op is 3-6x faster.
// Arithmetic is bit-identical to the TypeScript rows (one float32 rounding per operation, as the
// float64-then-store loops round); the activations built from several operations round at each.
import { coalesce, type Row1 } from '../cpu/elementwise.js';
import { buildModule, Simd, T, type Func } from './emitter.js';
import { Fn, UNARY, type Unary } from './math-vec.js';
import { hasSimd, wasmKernels } from './simd.js';

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div';
const BINARY = { add: Simd.f32x4Add, sub: Simd.f32x4Sub, mul: Simd.f32x4Mul, div: Simd.f32x4Div } as const;

/**
 * In-place steps over the staged values, with their float parameters: an activation, or `x op s` /
 * `s op x` with a scalar s (BinaryOp + 'S' / 'R'). Relu is x < 0 ? 0 : x (NaN and -0 pass through),
 * LeakyRelu x < 0 ? a x : x, Clip min(max(x, lo), hi), HardSigmoid clamp(a x + b, 0, 1), HardSwish
 * x HardSigmoid(1/6, 1/2).
 */
export type Step =
  | readonly ['relu' | 'hardSwish' | Unary]
  | readonly ['leakyRelu' | `${BinaryOp}S` | `${BinaryOp}R`, number]
  | readonly ['clip' | 'hardSigmoid', number, number];
type StepName = Step[0];

/** Floats per staging area; an op works through its tensors this many elements at a time. */
export const STAGE = 16384;
// Byte addresses: X (the values worked on, plus one vector of slack for the last partial vector), then Y (the other operand).
const X = 0, Y = 4 * (STAGE + 4);
const PAGES = Math.ceil((Y + 4 * (STAGE + 4)) / 65536);

/** Sets a new v128 local to the splat of f32 param `param`: V8 does not hoist a splat out of a loop. */
function splat(f: Fn, param: number): number {
  const v = f.local(T.v128);
  f.c.get(param).simd(Simd.f32x4Splat).set(v);
  return v;
}

/**
 * name(p, [q,] n, ...scalars): x = op(x[, y]) over ceil(n / 4) vectors at byte address p (and q for y);
 * `op` pushes the new vector from locals x, y and the scalars' splats.
 */
function vecFunc(name: string, scalars: number, withY: boolean, op: (f: Fn, x: number, y: number, k: number[]) => void): Func {
  const ints = withY ? 3 : 2, f = new Fn(name, [...Array(ints).fill(T.i32), ...Array(scalars).fill(T.f32)]), c = f.c;
  const [p, q, n] = withY ? [0, 1, 2] : [0, -1, 1];
  const k = Array.from({ length: scalars }, (_, i) => splat(f, ints + i));
  const end = f.local(T.i32), x = f.local(T.v128), y = withY ? f.local(T.v128) : -1;
  c.get(p).get(n).i32(3).add().i32(-4).and().i32(2).shl().add().set(end);
  c.get(p).get(end).ltU().ifElse(() => c.loop(() => {
    c.get(p).get(p).simd(Simd.load, [0, 0]).set(x);
    if (withY) c.get(q).simd(Simd.load, [0, 0]).set(y).get(q).i32(16).add().set(q);
    op(f, x, y, k);
    c.simd(Simd.store, [0, 0]);
    c.get(p).i32(16).add().tee(p).get(end).ltU().brIf(0);
  }));
  return f.func();
}

const simd = (f: Fn, ...ops: Simd[]) => { for (const o of ops) f.c.simd(o); };

function moduleFuncs(): Func[] {
  const funcs: Func[] = [];
  for (const [name, o] of Object.entries(BINARY)) {
    funcs.push(vecFunc(name, 0, true, (f, x, y) => { f.c.get(x).get(y); simd(f, o); }));
    funcs.push(vecFunc(`${name}S`, 1, false, (f, x, _, [s]) => { f.c.get(x).get(s); simd(f, o); }));
    funcs.push(vecFunc(`${name}R`, 1, false, (f, x, _, [s]) => { f.c.get(s).get(x); simd(f, o); }));
  }
  // pmax(x, 0) = x < 0 ? 0 : x, exactly the TypeScript Relu (max would turn -0 into +0).
  funcs.push(vecFunc('relu', 0, false, (f, x) => { f.c.get(x).v128Zero(); simd(f, Simd.f32x4Pmax); }));
  funcs.push(vecFunc('leakyRelu', 1, false, (f, x, _, [a]) => {
    f.c.get(x).get(a); simd(f, Simd.f32x4Mul); f.c.get(x).get(x).v128Zero(); simd(f, Simd.f32x4Lt, Simd.v128Bitselect);
  }));
  funcs.push(vecFunc('clip', 2, false, (f, x, _, [lo, hi]) => { f.c.get(x).get(lo); simd(f, Simd.f32x4Max); f.c.get(hi); simd(f, Simd.f32x4Min); }));
  const unit = (f: Fn) => { f.k('one'); simd(f, Simd.f32x4Min); f.c.v128Zero(); simd(f, Simd.f32x4Max); };
  funcs.push(vecFunc('hardSigmoid', 2, false, (f, x, _, [a, b]) => { f.c.get(x).get(a); simd(f, Simd.f32x4Mul); f.c.get(b); simd(f, Simd.f32x4Add); unit(f); }));
  funcs.push(vecFunc('hardSwish', 0, false, (f, x) => {
    f.c.get(x).get(x); f.k('sixth'); simd(f, Simd.f32x4Mul); f.k('half'); simd(f, Simd.f32x4Add); unit(f); simd(f, Simd.f32x4Mul);
  }));
  for (const [name, op] of Object.entries(UNARY)) funcs.push(vecFunc(name, 0, false, (f, x) => op(f, x)));
  return funcs;
}

type Fns = Record<string, (...args: number[]) => void>;
type Apply = (at: number, n: number, steps: readonly Step[]) => void;

const modules = new Map<number, WebAssembly.Module>();

/** This module's functions over `memory` (maxPages given: a shared memory with that maximum, as threads need). */
function functionsOn(memory: WebAssembly.Memory, maxPages = 0): Fns {
  let module = modules.get(maxPages);
  if (!module) modules.set(maxPages, module = new WebAssembly.Module(buildModule(moduleFuncs(), maxPages ? { shared: true, maxPages } : {})));
  return new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Fns;
}

const applier = (fn: Fns): Apply => (at, n, steps) => { for (const [name, a, b] of steps) fn[name as StepName](at, n, a ?? 0, b ?? 0); };

/** One instance over its own small memory: the two staging areas. */
class WasmElementwise {
  readonly heap: Float32Array;
  readonly fn: Fns;
  /** Applies steps to values staged from a byte address. */
  readonly apply: Apply;
  constructor() {
    const memory = new WebAssembly.Memory({ initial: PAGES });
    this.fn = functionsOn(memory);
    this.apply = applier(this.fn);
    this.heap = new Float32Array(memory.buffer);
  }
}

let shared: WasmElementwise | null | undefined;
function ready(): WasmElementwise | null {
  if (!hasSimd || !wasmKernels()) return null;
  if (shared === undefined) {
    try {
      shared = new WasmElementwise();
    } catch {
      shared = null; // a page whose CSP forbids WebAssembly compilation
    }
  }
  return shared;
}

// Below this many elements the fixed cost of a call (subarrays, the JS-to-wasm transition) outweighs the
// faster arithmetic: measured, wasm broke even near 16 elements and was 2-5x faster from 64 on.
export const MIN_ELEMENTS = 32;

/** out[i] = steps(x[i]) for i < n through WebAssembly; false (nothing done) when that does not apply. */
export function mapWasm(out: unknown, x: unknown, n: number, steps: readonly Step[]): boolean {
  if (n < MIN_ELEMENTS || !(x instanceof Float32Array && out instanceof Float32Array)) return false;
  const m = ready();
  if (!m) return false;
  const heap = m.heap;
  for (let i = 0; i < n; i += STAGE) {
    const len = Math.min(STAGE, n - i);
    heap.set(x.subarray(i, i + len), 0);
    m.apply(X, len, steps);
    out.set(heap.subarray(0, len), i);
  }
  return true;
}

/**
 * The values of one operand for `rows` rows of C outputs starting at row r of a [R, C] block, staged at
 * float index `at`: the operand steps through the block with row stride sr and column stride sc (0 or 1).
 */
function stageRows(heap: Float32Array, at: number, d: Float32Array, base: number, sr: number, sc: number, r: number, rows: number, C: number, c0: number, len: number): void {
  let s = base + r * sr + c0 * sc;
  if (sc === 1 && (sr === C || rows === 1)) { heap.set(d.subarray(s, s + (rows - 1) * C + len), at); return; }
  for (let i = 0; i < rows; i++, s += sr, at += C) {
    if (sc === 1) heap.set(d.subarray(s, s + len), at);
    else heap.fill(d[s], at, at + len);
  }
}

/**
 * out = steps(a op b) over numpy broadcasting through WebAssembly; false (nothing done) when it does not
 * apply (not float32, too small, wasm off). `out` may be a or b (an in-place epilogue).
 */
export function binaryWasm(op: BinaryOp, a: unknown, aShape: readonly number[], b: unknown, bShape: readonly number[],
  outShape: readonly number[], out: unknown, steps: readonly Step[] = []): boolean {
  const n = (out as { length: number }).length;
  if (n < MIN_ELEMENTS || !(a instanceof Float32Array && b instanceof Float32Array && out instanceof Float32Array)) return false;
  const m = ready();
  if (!m) return false;
  const { dims, strides: [da, db] } = coalesce(outShape, [aShape, bShape]);
  const r = dims.length, C = dims[r - 1], R = r > 1 ? dims[r - 2] : 1;
  const [ac, bc, ar, br] = [da[r - 1], db[r - 1], r > 1 ? da[r - 2] : 0, r > 1 ? db[r - 2] : 0];
  // A scalar operand stays a splat (the S and R forms) instead of being staged.
  const aScalar = a.length === 1, bScalar = b.length === 1, heap = m.heap, f = m.fn;
  const blocks = n / (R * C), outer = dims.slice(0, -2), idx = new Array<number>(outer.length).fill(0);
  let pa = 0, pb = 0;
  const run = (o: number, row: number, rows: number, c0: number, len: number) => {
    const total = (rows - 1) * C + len;
    if (aScalar) { stageRows(heap, 0, b, pb, br, bc, row, rows, C, c0, len); f[`${op}R`](X, total, a[0]); }
    else {
      stageRows(heap, 0, a, pa, ar, ac, row, rows, C, c0, len);
      if (bScalar) f[`${op}S`](X, total, b[0]);
      else { stageRows(heap, Y / 4, b, pb, br, bc, row, rows, C, c0, len); f[op](X, Y, total); }
    }
    m.apply(X, total, steps);
    out.set(heap.subarray(0, total), o);
  };
  for (let blk = 0; blk < blocks; blk++) {
    const o = blk * R * C;
    if (C >= STAGE) {
      for (let row = 0; row < R; row++) for (let c0 = 0; c0 < C; c0 += STAGE) run(o + row * C + c0, row, 1, c0, Math.min(STAGE, C - c0));
    } else {
      const per = Math.floor(STAGE / C);
      for (let row = 0; row < R; row += per) run(o + row * C, row, Math.min(per, R - row), 0, C);
    }
    for (let d = outer.length - 1; d >= 0; d--) { // odometer over the dims outside the block
      idx[d]++; pa += da[d]; pb += db[d];
      if (idx[d] < outer[d]) break;
      pa -= da[d] * outer[d]; pb -= db[d] * outer[d]; idx[d] = 0;
    }
  }
  return true;
}

/** A Row1 that runs `step` in WebAssembly for float32 rows and `fallback` otherwise (float64, short rows, wasm off). */
export const stepRow = (step: Step, fallback: Row1): Row1 => (out, x, n) => { if (!mapWasm(out, x, n, [step])) fallback(out, x, n); };

/**
 * The steps as functions over another kernel's memory (maxPages given: a shared memory with that maximum,
 * as threads need), so an epilogue runs on values where that kernel staged them, with no copies. Returns
 * apply(byteAddress, n, steps); n is rounded up to whole vectors, so up to 3 floats past n are rewritten.
 */
export const stepsOn = (memory: WebAssembly.Memory, maxPages = 0): Apply => applier(functionsOn(memory, maxPages));
