// LSTM, GRU and RNN directions in float32 on the WebAssembly kernels of rnn.ts (the contract of the cells
// in kernels/cpu/rnn.ts, for float32 operands and the default activations). The input projection for all
// timesteps is done up front by the gemv kernel over every row, with W packed like R; each timestep is then
// one gemv per recurrent matrix plus one gate function, with the states resident in wasm memory.
// Batch rows run in order of decreasing length, so the rows still running are always a prefix and the
// states never need gathering.
import type { Cell, Outputs } from '../cpu/rnn.js';
import { gateWidth, NB, packedSize, roundUp } from './gemv.js';
import { rnnModule, type RnnExports } from './rnn.js';
import { growTo } from './simd.js';

// Packed weights that stay resident between calls, in floats (32 MB); past this the cache starts over.
let residentMax = 1 << 23;

/** Sets the resident budget in floats (tests use a small one to exercise eviction); returns the previous one. */
export function setResidentLimit(floats: number): number {
  const was = residentMax;
  residentMax = floats;
  return was;
}
// The input projection runs on the gemv kernel rather than gemm: per row it does the same multiplies and
// adds as gemm's micro-kernel (the loop is bound by them either way, measured), and it reuses the packed W
// of an initializer, where gemm would copy and pack W again on every call.
/** A matrix to pack for gemv (see packFunc): `gates` blocks of `hidden` rows of k floats in `src`. A `key`
 *  (a tensor object that is the same on every run) keeps the packed copy resident, under `id`. */
interface Weights { key?: object; id: string; src: Float32Array; k: number; hidden: number; gates: number }
const size = (w: Weights) => packedSize(w.gates, w.hidden, w.k);

/** One module instance over its own memory: resident packed weights first, per-call scratch after them. */
class RnnMemory {
  private readonly memory = new WebAssembly.Memory({ initial: 1 });
  readonly fn: RnnExports;
  heap = new Float32Array(this.memory.buffer);
  private end = 0;
  private generation = 0;
  private readonly cache = new WeakMap<object, Map<string, { generation: number; at: number }>>();

  constructor() {
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(rnnModule()), { env: { memory: this.memory } });
    this.fn = exports as unknown as RnnExports;
  }

  /** Grows memory to `floats` elements (false if it cannot); the heap view is remade when it grows. */
  reserve(floats: number): boolean {
    if (!growTo(this.memory, floats)) return false;
    if (this.heap.buffer !== this.memory.buffer) this.heap = new Float32Array(this.memory.buffer);
    return true;
  }

  /**
   * Float offsets of each of `ws`: keyed ones resident (packed now if not already), the others packed
   * into scratch; then `scratch` more floats, zeroed, whose offset comes last. Undefined when memory is short.
   */
  place(ws: Weights[], scratch: number): number[] | undefined {
    const entries = (w: Weights) => {
      let m = this.cache.get(w.key!);
      if (!m) this.cache.set(w.key!, (m = new Map()));
      return m;
    };
    const cached = (w: Weights) => {
      const e = w.key && entries(w).get(w.id);
      return e && e.generation === this.generation ? e.at : undefined;
    };
    const need = ws.reduce((n, w) => n + (w.key && cached(w) === undefined ? roundUp(size(w), 16) : 0), 0);
    if (need && this.end + need > residentMax) { this.generation++; this.end = 0; }
    const end0 = this.end, at = ws.map(cached), fresh: number[] = [];
    ws.forEach((w, i) => { if (at[i] === undefined && w.key) { at[i] = this.end; this.end += roundUp(size(w), 16); fresh.push(i); } });
    let top = this.end;
    ws.forEach((w, i) => { if (at[i] === undefined) { at[i] = top; top += roundUp(size(w), 16); fresh.push(i); } });
    // The rows to pack are copied in past the scratch, one matrix at a time.
    const raw = top + roundUp(scratch, 16), rawSize = Math.max(0, ...fresh.map((i) => ws[i].src.length));
    if (!this.reserve(raw + rawSize)) { this.end = end0; return undefined; }
    const heap = this.heap;
    for (const i of fresh) {
      const w = ws[i], dst = at[i]!;
      heap.set(w.src, raw);
      heap.fill(0, dst, dst + size(w));
      this.fn.pack(4 * raw, w.k, w.hidden, w.gates, gateWidth(w.hidden), 4 * dst);
      if (w.key) entries(w).set(w.id, { generation: this.generation, at: dst });
    }
    heap.fill(0, top, top + scratch);
    return [...(at as number[]), top];
  }
}

// Built on first use; null when WebAssembly cannot be instantiated here.
let shared: RnnMemory | null | undefined;
function memory(): RnnMemory | null {
  if (shared === undefined) {
    try {
      shared = new RnnMemory();
    } catch {
      shared = null;
    }
  }
  return shared;
}

/** Carves the scratch region into named float ranges, each 16-float aligned. */
function carve<K extends string>(sizes: Record<K, number>): { at: Record<K, number>; total: number } {
  const at = {} as Record<K, number>;
  let total = 0;
  for (const k of Object.keys(sizes) as K[]) { at[k] = total; total += roundUp(sizes[k], 16); }
  return { at, total };
}

/** How one cell kind lays out its gates: column of each gate in a row of width ldg, recurrent matrices packed. */
interface Shape {
  gates: number;
  col: number[];
  ldg: number;
  /** How R (and W, the same way) is packed: blocks of `count` gates starting at gate `first`. */
  recurrent: { first: number; count: number }[];
}

function shapeOf(gates: number, hs: number, split: boolean): Shape {
  const gw = gateWidth(hs);
  if (!split) return { gates, col: Array.from({ length: gates }, (_, g) => g * gw), ldg: roundUp(gates * gw, NB), recurrent: [{ first: 0, count: gates }] };
  // GRU: z and r share one product with H; the h gate's product comes after the reset.
  const ld1 = roundUp(2 * gw, NB);
  return { gates, col: [0, gw, ld1], ldg: ld1 + roundUp(gw, NB), recurrent: [{ first: 0, count: 2 }, { first: 2, count: 1 }] };
}

const packed = (key: object | undefined, id: string, src: Float32Array, first: number, count: number, k: number, hs: number): Weights => ({
  key, id, src: src.subarray(first * hs * k, (first + count) * hs * k), k, hidden: hs, gates: count,
});

interface Run {
  mem: RnnMemory; heap: Float32Array; at: Record<'xw' | 'x' | 'h' | 'c' | 'g' | 'p' | 'rec' | 'hr' | 'rbh', number>;
  r: number[]; gw: number; ldg: number; ldr: number; count: number;
  /** Batch row of each state row. */
  perm: Int32Array;
}

/**
 * Runs one direction: sets up memory and the projection, then for each timestep copies the running rows'
 * projections into the gate rows, calls `step` and copies h out. Returns false (nothing written) when
 * wasm memory cannot hold the operands.
 */
function drive(c: Cell, o: Outputs, shape: Shape, hasC: boolean, step: (run: Run) => void, init?: (run: Run) => void): boolean {
  const mem = memory();
  if (!mem) return false;
  const { seq, batch, input, hidden: hs } = c, gw = gateWidth(hs), { ldg } = shape, rows = seq * batch, ldr = roundUp(gw, NB);
  const x = c.x as Float32Array, w = c.w as Float32Array, r = c.r as Float32Array;
  const ws = [
    ...shape.recurrent.map(({ first, count }) => packed(c.rKey, `r${c.dir}:${first}:${count}:${hs}`, r, first, count, hs, hs)),
    ...shape.recurrent.map(({ first, count }) => packed(c.wKey, `w${c.dir}:${first}:${count}:${hs}`, w, first, count, input, hs)),
  ];
  const { at, total } = carve({
    xw: rows * ldg, x: rows * input, h: batch * gw, c: hasC ? batch * gw : 0, g: batch * ldg,
    p: 3 * gw, rec: batch * ldr, hr: batch * gw, rbh: gw,
  });
  const placed = mem.place(ws, total);
  if (!placed) return false;
  const base = placed[placed.length - 1];
  for (const k of Object.keys(at) as (keyof typeof at)[]) at[k] += base;
  // Rows by decreasing length (stable), so the running rows are a prefix at every step.
  const perm = Int32Array.from({ length: batch }, (_, i) => i).sort((a, b) => c.lens[b] - c.lens[a] || a - b);
  const lens = Int32Array.from(perm, (b) => c.lens[b]);
  const heap = mem.heap, run: Run = { mem, heap, at, r: placed.slice(0, shape.recurrent.length), gw, ldg, ldr, count: 0, perm };
  project(run, c, shape, placed.slice(shape.recurrent.length, 2 * shape.recurrent.length));
  if (c.h0) setRows(run, at.h, c.h0, hs);
  init?.(run);
  const yAt = (i: number, s: number) => o.yOff + (c.reverse ? lens[i] - 1 - s : s) * o.yT + perm[i] * o.yB;
  let count = batch;
  for (let s = 0; s < seq; s++) {
    while (count > 0 && lens[count - 1] <= s) count--;
    if (count === 0) break;
    for (let i = 0; i < count; i++) {
      const src = at.xw + c.row(c.reverse ? lens[i] - 1 - s : s, perm[i]) * ldg;
      heap.copyWithin(at.g + i * ldg, src, src + ldg);
    }
    run.count = count;
    step(run);
    for (let i = 0; i < count; i++) o.y.set(heap.subarray(at.h + i * gw, at.h + i * gw + hs), yAt(i, s));
  }
  // A row with no timesteps reports zero states, not its initial ones (as onnxruntime does).
  for (let i = 0; i < batch && lens[i] > 0; i++) {
    const to = o.sOff + perm[i] * o.sB;
    o.yh.set(heap.subarray(at.h + i * gw, at.h + i * gw + hs), to);
    if (o.yc && hasC) o.yc.set(heap.subarray(at.c + i * gw, at.c + i * gw + hs), to);
  }
  return true;
}

/** Copies a [batch, hs] state into state rows (row i holds batch row perm[i]). */
function setRows({ heap, perm, gw }: Run, at: number, s: Float64Array, hs: number): void {
  perm.forEach((b, i) => heap.set(s.subarray(b * hs, b * hs + hs), at + i * gw));
}

/** xw = bias + X·W^T for every row, gates at their padded columns, W packed at `wAt` (one per block of gates). */
function project(run: Run, c: Cell, shape: Shape, wAt: number[]): void {
  const { heap, at, ldg, mem } = run, { seq, batch, input, hidden: hs } = c, rows = seq * batch;
  const bias = new Float32Array(ldg);
  shape.col.forEach((col, g) => bias.set(c.bias.subarray(g * hs, g * hs + hs), col));
  for (let i = 0; i < rows; i++) heap.set(bias, at.xw + i * ldg);
  heap.set(c.x as Float32Array, at.x);
  shape.recurrent.forEach(({ first, count }, q) => {
    const panels = roundUp(count * run.gw, NB) / NB;
    mem.fn.gemv(rows, panels, input, 4 * at.x, 4 * input, 4 * wAt[q], 4 * (at.xw + shape.col[first]), 4 * ldg);
  });
}

export function lstmWasm(c: Cell, o: Outputs, opts: { c0?: Float64Array; p?: Float64Array; inputForget: boolean }): boolean {
  const hs = c.hidden;
  return drive(c, o, shapeOf(4, hs, false), true, ({ mem, at, r, gw, ldg, count }) => {
    mem.fn.gemv(count, ldg / NB, hs, 4 * at.h, 4 * gw, 4 * r[0], 4 * at.g, 4 * ldg);
    mem.fn.lstm(count, 4 * gw, 4 * at.g, 4 * ldg, 4 * at.c, 4 * at.h, 4 * gw, 4 * at.p, c.clip, opts.inputForget ? 1 : 0);
  }, (run) => {
    for (let q = 0; q < 3 && opts.p; q++) run.heap.set(opts.p.subarray(q * hs, q * hs + hs), run.at.p + q * run.gw);
    if (opts.c0) setRows(run, run.at.c, opts.c0, hs);
  });
}

export function gruWasm(c: Cell, o: Outputs, opts: { linearBeforeReset: boolean; rbh: Float64Array }): boolean {
  const hs = c.hidden, shape = shapeOf(3, hs, true), lbr = opts.linearBeforeReset;
  return drive(c, o, shape, false, ({ mem, heap, at, r, gw, ldg, ldr, count }) => {
    const f = mem.fn;
    f.gemv(count, shape.col[2] / NB, hs, 4 * at.h, 4 * gw, 4 * r[0], 4 * at.g, 4 * ldg);
    f.gruGates(count, 4 * gw, 4 * at.g, 4 * ldg, 4 * at.h, 4 * gw, 4 * at.hr, c.clip);
    heap.fill(0, at.rec, at.rec + count * ldr);
    f.gemv(count, ldr / NB, hs, 4 * (lbr ? at.h : at.hr), 4 * gw, 4 * r[1], 4 * at.rec, 4 * ldr);
    f.gruOut(count, 4 * gw, 4 * at.g, 4 * ldg, 4 * shape.col[2], 4 * at.rec, 4 * ldr, 4 * at.rbh, 4 * at.h, 4 * gw, c.clip, lbr ? 1 : 0);
  }, ({ heap, at }) => heap.set(opts.rbh, at.rbh));
}

export function rnnWasm(c: Cell, o: Outputs): boolean {
  const hs = c.hidden;
  return drive(c, o, shapeOf(1, hs, false), false, ({ mem, at, r, gw, ldg, count }) => {
    mem.fn.gemv(count, ldg / NB, hs, 4 * at.h, 4 * gw, 4 * r[0], 4 * at.g, 4 * ldg);
    mem.fn.rnnOut(count, 4 * gw, 4 * at.g, 4 * ldg, 4 * at.h, 4 * gw, c.clip);
  });
}
