// LSTM, GRU and RNN directions in float32 on the WebAssembly kernels of rnn.ts (the contract of the cells
// in kernels/cpu/rnn.ts, for float32 operands and the default activations). A whole direction is one
// wasm call, task(job, direction): the input projection of every timestep by the gemv kernel (W packed
// like R), then the timestep loop, each step one gemv per recurrent matrix plus one gate function, with
// the states resident in wasm memory and each step's h written to a Y area that is copied out after.
// Batch rows run in order of decreasing length, so the rows still running are always a prefix and the
// states never need gathering.
// Threads (kernels/wasm/threads.ts): the directions of a bidirectional node are the chunks of one job,
// so they run at once when threads are allowed and the work is big enough; such calls use an instance
// over a shared memory, the others one over an unshared memory (see `memory`). Each direction reads only
// X and its own areas and is computed by the same code on any thread: results do not depend on the
// thread count.
import type { Cell, Dir, GruOpts, LstmOpts, Outputs } from '../cpu/rnn.js';
import { gateWidth, NB, packedSize, roundUp } from './gemv.js';
import { DESC, DESC_BYTES, KIND, rnnModule, type RnnExports } from './rnn.js';
import { growTo, hasRelaxedSimd, MAX_PAGES } from './simd.js';
import { CTRL_BYTES, Pool, sharedMemory, threads } from './threads.js';

// Packed weights that stay resident between calls, in floats (32 MB per instance); past this the cache starts over.
let residentMax = 1 << 23;

/** Sets the resident budget in floats (tests use a small one to exercise eviction); returns the previous one. */
export function setResidentLimit(floats: number): number {
  const was = residentMax;
  residentMax = floats;
  return was;
}

// Directions below this many multiply-adds each stay on the calling thread: waking a worker costs up to
// about 0.1 ms on a 2-vCPU VM. Measured there (hidden 64 or 128, batch 1, both directions): 2 threads were
// slower at 0.5M per direction (0.23 against 0.20 ms), about even at 0.8M, and 7-10% faster at 1M.
let parallelMin = 1 << 20;
// The memory and the number of directions of the last call, for lastThreadIds.
let last: { mem: RnnMemory; count: number } | undefined;

/** Sets the per-direction work (multiply-adds) from which directions run on threads; returns the previous value. */
export function setParallelMin(macs: number): number {
  const was = parallelMin;
  parallelMin = macs;
  return was;
}

// The input projection runs on the gemv kernel rather than gemm: per row it does the same multiplies and
// adds as gemm's micro-kernel (the loop is bound by them either way, measured), and it reuses the packed W
// of an initializer, where gemm would copy and pack W again on every call.
/** A matrix to pack for gemv (see packFunc): `gates` blocks of `hidden` rows of k floats in `src`. A `key`
 *  (a tensor object that is the same on every run) keeps the packed copy resident, under `id`. */
interface Weights { key?: object; id: string; src: Float32Array; k: number; hidden: number; gates: number }
const size = (w: Weights) => packedSize(w.gates, w.hidden, w.k);

// Heap layout in bytes: the threads' control block, the directions' descriptors, then (from RES_AT on)
// the resident packed weights, then per-call scratch.
const JOB_AT = roundUp(CTRL_BYTES, 64), RES_AT = 4096;
if (JOB_AT + 2 * DESC_BYTES > RES_AT) throw new Error('rnn: descriptors overlap the resident weights');

/** One module instance over its own memory: resident packed weights first, per-call scratch after them. */
class RnnMemory {
  private readonly memory: WebAssembly.Memory;
  readonly fn: RnnExports;
  private readonly pool: Pool | null;
  heap: Float32Array;
  words: Int32Array;
  private end = RES_AT / 4;
  private generation = 0;
  private readonly cache = new WeakMap<object, Map<string, { generation: number; at: number }>>();

  constructor(threads: boolean) {
    const shared = threads ? sharedMemory(1, MAX_PAGES) : null;
    this.memory = shared ?? new WebAssembly.Memory({ initial: 1 });
    const module = new WebAssembly.Module(rnnModule(hasRelaxedSimd, shared ? { shared: true, maxPages: MAX_PAGES } : {}));
    this.fn = new WebAssembly.Instance(module, { env: { memory: this.memory } }).exports as unknown as RnnExports;
    this.pool = shared ? new Pool(module, shared, 0, this.fn.task) : null;
    this.heap = new Float32Array(this.memory.buffer);
    this.words = new Int32Array(this.memory.buffer);
  }

  /** Starts workers for n threads and resolves with how many are ready (for tests and benchmarks). */
  async startThreads(n: number): Promise<number> { return this.pool ? this.pool.ready(n) : 0; }

  /** Grows memory to `floats` elements (false if it cannot); the views are remade when it grows. */
  reserve(floats: number): boolean {
    if (!growTo(this.memory, floats)) return false;
    // An unshared buffer is detached by growth; a shared one grows in place, but old views keep their length.
    if (this.heap.length * 4 !== this.memory.buffer.byteLength) {
      this.heap = new Float32Array(this.memory.buffer);
      this.words = new Int32Array(this.memory.buffer);
    }
    return true;
  }

  /**
   * Float offsets of each of `ws`: keyed ones resident (packed now if not already), the others packed
   * into scratch; then room for `scratch(base)` more floats from `base`, which comes last. Undefined when
   * memory is short.
   */
  place(ws: Weights[], scratch: (base: number) => number): number[] | undefined {
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
    if (need && this.end - RES_AT / 4 + need > residentMax) { this.generation++; this.end = RES_AT / 4; }
    const end0 = this.end, at = ws.map(cached), fresh: number[] = [];
    ws.forEach((w, i) => { if (at[i] === undefined && w.key) { at[i] = this.end; this.end += roundUp(size(w), 16); fresh.push(i); } });
    let top = this.end;
    ws.forEach((w, i) => { if (at[i] === undefined) { at[i] = top; top += roundUp(size(w), 16); fresh.push(i); } });
    // The rows to pack are copied in past the scratch, one matrix at a time.
    const raw = top + roundUp(scratch(top), 16), rawSize = Math.max(0, ...fresh.map((i) => ws[i].src.length));
    if (!this.reserve(raw + rawSize)) { this.end = end0; return undefined; }
    const heap = this.heap;
    for (const i of fresh) {
      const w = ws[i], dst = at[i]!;
      heap.set(w.src, raw);
      heap.fill(0, dst, dst + size(w));
      this.fn.pack(4 * raw, w.k, w.hidden, w.gates, gateWidth(w.hidden), 4 * dst);
      if (w.key) entries(w).set(w.id, { generation: this.generation, at: dst });
    }
    return [...(at as number[]), top];
  }

  /** Whether directions can run on threads here (the memory is shared). */
  get threaded(): boolean { return this.pool !== null; }

  /** Runs the `count` directions described at JOB_AT, on up to nt threads. */
  run(count: number, nt: number): void {
    // A worker that failed leaves its direction half done; the task starts over from h0, so run it all again here.
    if (this.pool && nt > 1 && count > 1 && this.pool.run(JOB_AT, count, nt)) return;
    for (let q = 0; q < count; q++) this.fn.task(JOB_AT, q, 0);
  }
}

// Two instances, each built on first use (null when WebAssembly cannot be instantiated here): calls that
// run on one thread use one over an unshared memory, calls that go to threads one over a shared memory.
// Measured in Silero VAD's session, a seq-1 LSTM direction took 6 us more (71 against 65) on a shared
// memory; the kernels' code is the same, so results are too. Each keeps its own resident weights, but a
// node makes the same choice on every run, so its weights are packed in one of them.
const instances: { local?: RnnMemory | null; threaded?: RnnMemory | null } = {};
function memory(threaded: boolean): RnnMemory | null {
  const which = threaded ? 'threaded' : 'local';
  if (instances[which] === undefined) {
    try {
      instances[which] = new RnnMemory(which === 'threaded');
    } catch {
      instances[which] = null;
    }
  }
  return instances[which] ?? null;
}

/** Starts the recurrent kernels' workers for n threads; resolves with how many are ready (for tests and benchmarks). */
export async function startRnnThreads(n: number): Promise<number> {
  return memory(true)?.startThreads(n) ?? 0;
}

/** Whether directions can run at once on threads here (shared wasm memory, so workers can be given them). */
export function rnnThreaded(): boolean {
  return memory(true)?.threaded ?? false;
}

/** The thread (0: the caller, else a worker's id) that ran each direction of the last call (for tests). */
export function lastThreadIds(): number[] {
  if (!last) return [];
  const { mem, count } = last;
  return Array.from({ length: count }, (_, q) => mem.words[(JOB_AT + q * DESC_BYTES) / 4 + DESC.ran]);
}

/** How one cell kind lays out its gates: column of each gate in a row of width ldg, recurrent matrices packed. */
interface Shape {
  gates: number;
  col: number[];
  ldg: number;
  /** How R (and W, the same way) is packed: blocks of `count` gates starting at gate `first`. */
  recurrent: { first: number; count: number }[];
}

// Shapes by gate count and hidden size: made once, as a seq-1 call (a streaming model's) is short.
const shapes = new Map<number, Shape>();

function shapeOf(gates: number, hs: number, split: boolean): Shape {
  const key = hs * 8 + gates * 2 + (split ? 1 : 0);
  let s = shapes.get(key);
  if (!s) shapes.set(key, (s = makeShape(gates, hs, split)));
  return s;
}

function makeShape(gates: number, hs: number, split: boolean): Shape {
  const gw = gateWidth(hs);
  if (!split) return { gates, col: Array.from({ length: gates }, (_, g) => g * gw), ldg: roundUp(gates * gw, NB), recurrent: [{ first: 0, count: gates }] };
  // GRU: z and r share one product with H; the h gate's product comes after the reset.
  const ld1 = roundUp(2 * gw, NB);
  return { gates, col: [0, gw, ld1], ldg: ld1 + roundUp(gw, NB), recurrent: [{ first: 0, count: 2 }, { first: 2, count: 1 }] };
}

const packed = (key: object | undefined, id: string, src: Float32Array, first: number, count: number, k: number, hs: number): Weights => ({
  key, id, src: src.subarray(first * hs * k, (first + count) * hs * k), k, hidden: hs, gates: count,
});

/** One direction to run, with what its cell kind adds to the common operands. */
interface Direction {
  c: Cell; o: Outputs; kind: number; shape: Shape;
  /** input_forget (LSTM) or linear_before_reset (GRU). */
  flag: boolean;
  c0?: Float64Array; p?: Float64Array; rbh?: Float64Array;
}

/** Float offsets of a direction's scratch areas (0: absent). */
type Areas = Record<'x' | 'xw' | 'bias' | 'h' | 'c' | 'h0' | 'c0' | 'g' | 'p' | 'rec' | 'hr' | 'rbh' | 'y' | 'lens' | 'perm', number>;

function weightsOf({ c, shape }: Direction): Weights[] {
  const hs = c.hidden, w = c.w as Float32Array, r = c.r as Float32Array;
  return [
    ...shape.recurrent.map(({ first, count }) => packed(c.rKey, `r${c.dir}:${first}:${count}:${hs}`, r, first, count, hs, hs)),
    ...shape.recurrent.map(({ first, count }) => packed(c.wKey, `w${c.dir}:${first}:${count}:${hs}`, w, first, count, c.input, hs)),
  ];
}

/** Lays out each direction's areas from float offset `base` (16-float aligned; 0 for an absent one), X
 *  shared by directions over the same X; `total` is the floats they take. */
function layout(ds: Direction[], base: number): { areas: Areas[]; total: number } {
  let total = 0;
  const take = (n: number) => { const at = total; total += roundUp(n, 16); return n > 0 ? base + at : 0; };
  const xs = new Map<object, number>();
  const areas = ds.map(({ c, kind, shape, c0 }) => {
    const { seq, batch, hidden: hs } = c, gw = gateWidth(hs), gru = kind === KIND.GRU, rows = seq * batch;
    let x = xs.get(c.x);
    if (x === undefined) xs.set(c.x, (x = take(rows * c.input)));
    return {
      x, xw: take(rows * shape.ldg), bias: take(shape.ldg), h: take(batch * gw), c: take(kind === KIND.LSTM ? batch * gw : 0),
      h0: take(c.h0 ? batch * gw : 0), c0: take(c0 ? batch * gw : 0), g: take(batch * shape.ldg),
      p: take(kind === KIND.LSTM ? 3 * gw : 0), rec: take(gru ? batch * roundUp(gw, NB) : 0), hr: take(gru ? batch * gw : 0),
      rbh: take(gru ? gw : 0), y: take(rows * gw), lens: take(batch), perm: take(batch),
    };
  });
  return { areas, total };
}

/**
 * Runs the directions (each with its own outputs), at once on two threads when they are allowed and the
 * work is big enough. Returns false (nothing written) when wasm memory cannot hold the operands.
 */
function runDirections(ds: Direction[]): boolean {
  const macs = Math.min(...ds.map(({ c, shape }) => c.seq * c.batch * shape.ldg * (c.input + c.hidden)));
  const nt = ds.length > 1 && macs >= parallelMin ? threads() : 1, mem = memory(nt > 1);
  if (!mem) return false;
  const ws = ds.map(weightsOf);
  let areas: Areas[] = [];
  const placed = mem.place(ws.flat(), (base) => { const l = layout(ds, base); areas = l.areas; return l.total; });
  if (!placed) return false;
  // Packed R then W of each direction, one per block of gates; the scratch last.
  let from = 0;
  const order = ds.map((d, q) => {
    const nw = ws[q].length / 2, rAt = placed.slice(from, from + nw), wAt = placed.slice(from + nw, from + 2 * nw);
    from += 2 * nw;
    return prepare(mem, d, areas[q], rAt, wAt, q);
  });
  last = { mem, count: ds.length };
  mem.run(ds.length, nt);
  ds.forEach((d, q) => collect(mem, d, areas[q], order[q]));
  return true;
}

/** Rows by decreasing length (stable), so the running rows are a prefix at every step. */
interface Order { perm: Int32Array; lens: Int32Array }

/** Writes a direction's inputs into its areas and its descriptor at JOB_AT + q * DESC_BYTES. */
function prepare(mem: RnnMemory, d: Direction, at: Areas, rAt: number[], wAt: number[], q: number): Order {
  const { c, shape, kind } = d, heap = mem.heap, { seq, batch, hidden: hs } = c, gw = gateWidth(hs), { ldg, col, recurrent } = shape;
  const perm = Int32Array.from({ length: batch }, (_, i) => i).sort((a, b) => c.lens[b] - c.lens[a] || a - b);
  const lens = Int32Array.from(perm, (b) => c.lens[b]);
  mem.words.set(perm, at.perm);
  mem.words.set(lens, at.lens);
  heap.set(c.x as Float32Array, at.x);
  heap.fill(0, at.bias, at.bias + ldg);
  col.forEach((cl, g) => heap.set(c.bias.subarray(g * hs, g * hs + hs), at.bias + cl));
  const setRows = (to: number, s: Float64Array) => {
    heap.fill(0, to, to + batch * gw);
    perm.forEach((b, i) => heap.set(s.subarray(b * hs, b * hs + hs), to + i * gw));
  };
  if (c.h0) setRows(at.h0, c.h0);
  if (d.c0) setRows(at.c0, d.c0);
  if (at.p) {
    heap.fill(0, at.p, at.p + 3 * gw);
    for (let g = 0; g < 3 && d.p; g++) heap.set(d.p.subarray(g * hs, g * hs + hs), at.p + g * gw);
  }
  if (at.rbh) {
    heap.fill(0, at.rbh, at.rbh + gw);
    heap.set(d.rbh!, at.rbh);
  }
  const panels = recurrent.map(({ count }) => roundUp(count * gw, NB) / NB), two = recurrent.length > 1;
  // Field by field rather than from an object by key: this runs on every call, and seq-1 calls are short.
  const w = mem.words, o = (JOB_AT + q * DESC_BYTES) / 4;
  w[o + DESC.kind] = kind; w[o + DESC.seq] = seq; w[o + DESC.batch] = batch; w[o + DESC.input] = c.input; w[o + DESC.hs] = hs;
  w[o + DESC.gw] = 4 * gw; w[o + DESC.ldg] = 4 * ldg; w[o + DESC.ldr] = 4 * roundUp(gw, NB);
  w[o + DESC.x] = 4 * at.x; w[o + DESC.xw] = 4 * at.xw; w[o + DESC.bias] = 4 * at.bias;
  w[o + DESC.w0] = 4 * wAt[0]; w[o + DESC.wP0] = panels[0]; w[o + DESC.wCol0] = 4 * col[recurrent[0].first];
  w[o + DESC.w1] = two ? 4 * wAt[1] : 0; w[o + DESC.wP1] = two ? panels[1] : 0; w[o + DESC.wCol1] = two ? 4 * col[recurrent[1].first] : 0;
  w[o + DESC.r0] = 4 * rAt[0]; w[o + DESC.rP0] = panels[0]; w[o + DESC.r1] = two ? 4 * rAt[1] : 0; w[o + DESC.rP1] = two ? panels[1] : 0;
  w[o + DESC.hOff] = 4 * col[col.length - 1];
  w[o + DESC.g] = 4 * at.g; w[o + DESC.h] = 4 * at.h; w[o + DESC.c] = 4 * at.c; w[o + DESC.h0] = 4 * at.h0; w[o + DESC.c0] = 4 * at.c0;
  w[o + DESC.p] = 4 * at.p; w[o + DESC.rec] = 4 * at.rec; w[o + DESC.hr] = 4 * at.hr; w[o + DESC.rbh] = 4 * at.rbh; w[o + DESC.y] = 4 * at.y;
  w[o + DESC.lens] = 4 * at.lens; w[o + DESC.perm] = 4 * at.perm; w[o + DESC.rowT] = 4 * c.xT * ldg; w[o + DESC.rowB] = 4 * c.xB * ldg;
  w[o + DESC.reverse] = c.reverse ? 1 : 0; w[o + DESC.flag] = d.flag ? 1 : 0; w[o + DESC.ran] = -1;
  heap[o + DESC.clip] = c.clip;
  return { perm, lens };
}

/** Copies a finished direction's Y rows and final states out to the caller's outputs. */
function collect(mem: RnnMemory, { c, o }: Direction, at: Areas, { perm, lens }: Order): void {
  const heap = mem.heap, { seq, batch, hidden: hs } = c, gw = gateWidth(hs);
  for (let s = 0, count = batch; s < seq; s++) {
    while (count > 0 && lens[count - 1] <= s) count--;
    if (count === 0) break;
    for (let i = 0; i < count; i++) {
      const from = at.y + (s * batch + i) * gw, t = c.reverse ? lens[i] - 1 - s : s;
      o.y.set(heap.subarray(from, from + hs), o.yOff + t * o.yT + perm[i] * o.yB);
    }
  }
  // A row with no timesteps reports zero states, not its initial ones (as onnxruntime does).
  for (let i = 0; i < batch && lens[i] > 0; i++) {
    const to = o.sOff + perm[i] * o.sB;
    o.yh.set(heap.subarray(at.h + i * gw, at.h + i * gw + hs), to);
    if (o.yc && at.c) o.yc.set(heap.subarray(at.c + i * gw, at.c + i * gw + hs), to);
  }
}

export function lstmWasm(ds: Dir<LstmOpts>[]): boolean {
  return runDirections(ds.map(({ c, o, opts }) => ({ c, o, kind: KIND.LSTM, shape: shapeOf(4, c.hidden, false), flag: opts.inputForget, c0: opts.c0, p: opts.p })));
}

export function gruWasm(ds: Dir<GruOpts>[]): boolean {
  return runDirections(ds.map(({ c, o, opts }) => ({ c, o, kind: KIND.GRU, shape: shapeOf(3, c.hidden, true), flag: opts.linearBeforeReset, rbh: opts.rbh })));
}

export function rnnWasm(ds: Dir<unknown>[]): boolean {
  return runDirections(ds.map(({ c, o }) => ({ c, o, kind: KIND.RNN, shape: shapeOf(1, c.hidden, false), flag: false })));
}
