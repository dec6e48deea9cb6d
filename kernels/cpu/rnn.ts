// Recurrent cells (LSTM, GRU, simple RNN) over plain typed arrays, the directions of a node per call. The input
// projection X·W^T for all timesteps is one GEMM up front; each timestep then only does the recurrent
// product H·R^T for the batch rows still running. Outputs are written through strides so both ONNX
// layouts need no transposes. float32 operands with the default activations run in float32 on the
// WebAssembly kernels (kernels/wasm/rnn-cells.ts), as onnxruntime does; everything else runs here with
// float64 state.
import { gruWasm, lstmWasm, rnnWasm } from '../wasm/rnn-cells.js';
import { wasmKernels } from '../wasm/simd.js';
import { gemm, rowMajor, transposed } from './gemm.js';

export type Buf = Float32Array | Float64Array;
export type Act = (x: number) => number;

// One object each, so a cell can tell the default activations (which the wasm kernels implement) by identity.
const sigmoid: Act = (x) => 1 / (1 + Math.exp(-x));
const tanh: Act = Math.tanh;

/** Activation by (lower-case) ONNX name; alpha and beta already resolved by the caller. */
export function activation(name: string, alpha: number, beta: number): Act | undefined {
  switch (name) {
    case 'sigmoid': return sigmoid;
    case 'tanh': return tanh;
    case 'relu': return (x) => (x > 0 ? x : 0);
    case 'affine': return (x) => alpha * x + beta;
    case 'leakyrelu': return (x) => (x >= 0 ? x : alpha * x);
    case 'thresholdedrelu': return (x) => (x > alpha ? x : 0);
    case 'scaledtanh': return (x) => alpha * Math.tanh(beta * x);
    case 'hardsigmoid': return (x) => Math.min(Math.max(alpha * x + beta, 0), 1);
    case 'elu': return (x) => (x >= 0 ? x : alpha * (Math.exp(x) - 1));
    case 'softsign': return (x) => x / (1 + Math.abs(x));
    case 'softplus': return (x) => (x > 30 ? x : Math.log1p(Math.exp(x)));
    default: return undefined;
  }
}

/** c[i*ldc + j] += a[i, :]·b[b0 + j, :] for i < m, j < n; a is [m, k], b's rows have k elements.
 *  Tiles of 4 rows of a by 2 rows of b keep eight independent sums, so the loop is not bound by the
 *  latency of one running sum, and each load feeds several products. */
function dotRows(a: Float64Array, m: number, k: number, b: Buf, b0: number, n: number, c: Float64Array, ldc: number): void {
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    const a0 = i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k, c0 = i * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
    let j = 0;
    for (; j + 2 <= n; j += 2) {
      const w0 = (b0 + j) * k, w1 = w0 + k;
      let s00 = 0, s01 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s30 = 0, s31 = 0;
      for (let q = 0; q < k; q++) {
        const u = b[w0 + q], v = b[w1 + q], x0 = a[a0 + q], x1 = a[a1 + q], x2 = a[a2 + q], x3 = a[a3 + q];
        s00 += x0 * u; s01 += x0 * v; s10 += x1 * u; s11 += x1 * v;
        s20 += x2 * u; s21 += x2 * v; s30 += x3 * u; s31 += x3 * v;
      }
      c[c0 + j] += s00; c[c0 + j + 1] += s01; c[c1 + j] += s10; c[c1 + j + 1] += s11;
      c[c2 + j] += s20; c[c2 + j + 1] += s21; c[c3 + j] += s30; c[c3 + j + 1] += s31;
    }
    if (j < n) for (let r = i; r < i + 4; r++) c[r * ldc + j] += dot(a, r * k, b, (b0 + j) * k, k);
  }
  // Leftover rows (all of them when the batch is small): four rows of b at a time.
  for (; i < m; i++) {
    const ai = i * k, ci = i * ldc;
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const w0 = (b0 + j) * k, w1 = w0 + k, w2 = w1 + k, w3 = w2 + k;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let q = 0; q < k; q++) {
        const x = a[ai + q];
        s0 += x * b[w0 + q]; s1 += x * b[w1 + q]; s2 += x * b[w2 + q]; s3 += x * b[w3 + q];
      }
      c[ci + j] += s0; c[ci + j + 1] += s1; c[ci + j + 2] += s2; c[ci + j + 3] += s3;
    }
    for (; j < n; j++) c[ci + j] += dot(a, ai, b, (b0 + j) * k, k);
  }
}

function dot(a: Float64Array, ao: number, b: Buf, bo: number, k: number): number {
  let s = 0;
  for (let q = 0; q < k; q++) s += a[ao + q] * b[bo + q];
  return s;
}

/** Where the caller wants results: Y at y[yOff + t*yT + b*yB + j], final states at [sOff + b*sB + j]. */
export interface Outputs { y: Buf; yOff: number; yT: number; yB: number; yh: Buf; yc?: Buf; sOff: number; sB: number }

export interface Cell {
  seq: number; batch: number; input: number; hidden: number;
  /** X rows in memory order, [seq*batch, input]; the row of timestep t, batch b is t*xT + b*xB. */
  x: Buf; xT: number; xB: number;
  w: Buf; r: Buf;
  /** Added to the input projection (the biases that commute with everything). */
  bias: Float64Array;
  h0?: Float64Array; reverse: boolean; lens: Int32Array; clip: number;
  acts: Act[];
  /** The W and R tensor objects, and the direction: the wasm path keys its packed copies of the weights on
   *  them, reused when the same objects come back (initializers and Constant values do on every run; feeds
   *  and computed tensors are new objects each run, so they are packed again). */
  wKey?: object; rKey?: object; dir: number;
}

/** One direction of a node: its cell, where its results go, and what its cell kind adds. */
export interface Dir<O> { c: Cell; o: Outputs; opts: O }

/** Whether the float32 wasm kernels take this cell: float32 operands and outputs, and `acts` as given. */
function fast(c: Cell, o: Outputs, acts: Act[]): boolean {
  return wasmKernels() && c.x instanceof Float32Array && c.w instanceof Float32Array && c.r instanceof Float32Array
    && o.y instanceof Float32Array && c.acts.every((a, i) => a === acts[i]);
}

/** The shared timestep loop. A batch row b runs timesteps 0..lens[b]-1 (reversed for reverse); padded
 *  steps leave Y zero (outputs arrive zeroed). Each step packs the running rows: row i of `pre` (input
 *  projection plus biases) and of `hp` (previous hidden state) belong to batch row active[i]. `step` adds
 *  the recurrent terms and writes the new states at active[i] of h and of the cell state `cs`. */
function drive(c: Cell, gates: number, o: Outputs, h: Float64Array, cs: Float64Array | undefined, step: (active: Int32Array, count: number, pre: Float64Array, hp: Float64Array) => void) {
  const { seq, batch, input, hidden: hs } = c;
  const xw = new Float64Array(seq * batch * gates);
  for (let r = 0; r < seq * batch; r++) xw.set(c.bias, r * gates);
  gemm(seq * batch, gates, input, rowMajor(c.x, input), transposed(rowMajor(c.w, input)), xw, 0, gates);
  const pre = new Float64Array(batch * gates), hp = new Float64Array(batch * hs);
  const active = new Int32Array(batch), times = new Int32Array(batch);
  for (let s = 0; s < seq; s++) {
    let count = 0;
    for (let b = 0; b < batch; b++) {
      if (s >= c.lens[b]) continue;
      const t = c.reverse ? c.lens[b] - 1 - s : s, row = (t * c.xT + b * c.xB) * gates;
      pre.set(xw.subarray(row, row + gates), count * gates);
      hp.set(h.subarray(b * hs, b * hs + hs), count * hs);
      active[count] = b; times[count++] = t;
    }
    if (count === 0) break;
    step(active, count, pre, hp);
    for (let i = 0; i < count; i++) {
      const b = active[i], yo = o.yOff + times[i] * o.yT + b * o.yB;
      for (let j = 0; j < hs; j++) o.y[yo + j] = h[b * hs + j];
    }
  }
  // A row with no timesteps reports zero states, not its initial ones (as onnxruntime does).
  for (let b = 0; b < batch; b++) for (let j = 0; j < hs && c.lens[b] > 0; j++) {
    o.yh[o.sOff + b * o.sB + j] = h[b * hs + j];
    if (o.yc && cs) o.yc[o.sOff + b * o.sB + j] = cs[b * hs + j];
  }
}

const clamp = (x: number, c: number) => (x < -c ? -c : x > c ? c : x);
const initial = (c: Cell, s: Float64Array | undefined) => (s ? Float64Array.from(s) : new Float64Array(c.batch * c.hidden));

/**
 * Runs each direction, on the float32 wasm kernels those that qualify (both at once when threads allow:
 * kernels/wasm/rnn-cells.ts), the others here one after another.
 */
function each<O>(ds: Dir<O>[], acts: Act[], wasm: (ds: Dir<O>[]) => boolean, ts: (d: Dir<O>) => void): void {
  const fastOnes = ds.filter(({ c, o }) => fast(c, o, acts));
  const rest = fastOnes.length && wasm(fastOnes) ? ds.filter((d) => !fastOnes.includes(d)) : ds;
  for (const d of rest) ts(d);
}

/** `p` holds peepholes i, o, f. */
export interface LstmOpts { c0?: Float64Array; p?: Float64Array; inputForget: boolean }
/** `rbh` is the recurrent bias of the h gate, which only stays separate under linear_before_reset (it is
 *  then scaled by r); otherwise the caller folds it into `bias`. */
export interface GruOpts { linearBeforeReset: boolean; rbh: Float64Array }

/** LSTM gates in ONNX order i, o, f, c. */
export function lstm(ds: Dir<LstmOpts>[]) {
  each(ds, [sigmoid, tanh, tanh], lstmWasm, lstmTs);
}

export function gru(ds: Dir<GruOpts>[]) {
  each(ds, [sigmoid, tanh], gruWasm, gruTs);
}

export function rnn(ds: Dir<unknown>[]) {
  each(ds, [tanh], rnnWasm, rnnTs);
}

function lstmTs({ c, o, opts }: Dir<LstmOpts>) {
  const hs = c.hidden, g = 4 * hs, [f, gAct, hAct] = c.acts, clip = c.clip;
  const h = initial(c, c.h0), cell = initial(c, opts.c0), p = opts.p ?? new Float64Array(3 * hs);
  drive(c, g, o, h, cell, (active, count, pre, hp) => {
    dotRows(hp, count, hs, c.r, 0, g, pre, g);
    for (let i = 0; i < count; i++) {
      const pb = i * g, sb = active[i] * hs;
      for (let j = 0; j < hs; j++) {
        const cPrev = cell[sb + j];
        const it = f(clamp(pre[pb + j] + p[j] * cPrev, clip));
        const ft = opts.inputForget ? 1 - it : f(clamp(pre[pb + 2 * hs + j] + p[2 * hs + j] * cPrev, clip));
        const ct = gAct(clamp(pre[pb + 3 * hs + j], clip));
        const cNew = ft * cPrev + it * ct;
        const ot = f(clamp(pre[pb + hs + j] + p[hs + j] * cNew, clip));
        cell[sb + j] = cNew;
        h[sb + j] = ot * hAct(cNew);
      }
    }
  });
}

/** GRU gates in ONNX order z, r, h. */
function gruTs({ c, o, opts }: Dir<GruOpts>) {
  const hs = c.hidden, g = 3 * hs, [f, gAct] = c.acts, clip = c.clip, lbr = opts.linearBeforeReset;
  const h = initial(c, c.h0), rec = new Float64Array(c.batch * hs), hr = new Float64Array(c.batch * hs);
  drive(c, g, o, h, undefined, (active, count, pre, hp) => {
    dotRows(hp, count, hs, c.r, 0, 2 * hs, pre, g);
    for (let i = 0; i < count; i++) for (let j = 0; j < 2 * hs; j++) pre[i * g + j] = f(clamp(pre[i * g + j], clip));
    // The h gate's recurrent term: R_h·H + Rb_h (scaled by r afterwards), or R_h·(r ⊙ H).
    for (let i = 0; i < count; i++) for (let j = 0; j < hs; j++) {
      rec[i * hs + j] = lbr ? opts.rbh[j] : 0;
      hr[i * hs + j] = lbr ? hp[i * hs + j] : pre[i * g + hs + j] * hp[i * hs + j];
    }
    dotRows(hr, count, hs, c.r, 2 * hs, hs, rec, hs);
    for (let i = 0; i < count; i++) {
      const pb = i * g, sb = active[i] * hs;
      for (let j = 0; j < hs; j++) {
        const z = pre[pb + j], r = lbr ? pre[pb + hs + j] * rec[i * hs + j] : rec[i * hs + j];
        const ht = gAct(clamp(pre[pb + 2 * hs + j] + r, clip));
        h[sb + j] = (1 - z) * ht + z * hp[i * hs + j];
      }
    }
  });
}

function rnnTs({ c, o }: Dir<unknown>) {
  const hs = c.hidden, [f] = c.acts, clip = c.clip, h = initial(c, c.h0);
  drive(c, hs, o, h, undefined, (active, count, pre, hp) => {
    dotRows(hp, count, hs, c.r, 0, hs, pre, hs);
    for (let i = 0; i < count; i++) for (let j = 0; j < hs; j++) h[active[i] * hs + j] = f(clamp(pre[i * hs + j], clip));
  });
}
