// LSTM, GRU and RNN: attributes, shape checks and layouts. The cells themselves are in kernels/cpu/rnn.ts;
// this file hands them per-direction weight views and strides into the outputs.
import { isFloat, type DType } from '../engine/dtype.js';
import type { Dim, TypeInfo } from '../engine/graph.js';
import { NdArray, type Value } from '../engine/tensor.js';
import { activation, gru, lstm, rnn, type Act, type Buf, type Cell, type Outputs } from '../kernels/cpu/rnn.js';
import { dtypeOf, shapeOf, tensorType } from './infer-rules.js';
import { fail, optTensor, register, tensorAt, type Attrs, type OpDef, type RunCtx } from './registry.js';

type Kind = 'LSTM' | 'GRU' | 'RNN';
const GATES: Record<Kind, number> = { LSTM: 4, GRU: 3, RNN: 1 };
const DEFAULT_ACTS: Record<Kind, string[]> = { LSTM: ['sigmoid', 'tanh', 'tanh'], GRU: ['sigmoid', 'tanh'], RNN: ['tanh'] };
// Defaults of the activations that take parameters, as the ONNX ops of those names define them
// (Affine and ScaledTanh as the former experimental ops did). onnxruntime differs for ThresholdedRelu,
// Affine and ScaledTanh, where it uses 0 for a value the node does not give.
const ALPHA: Record<string, number> = { leakyrelu: 0.01, thresholdedrelu: 1, elu: 1, hardsigmoid: 0.2, scaledtanh: 1, affine: 1 };
const BETA: Record<string, number> = { hardsigmoid: 0.5, scaledtanh: 1, affine: 0 };

interface RnnAttrs {
  hidden?: number; dirs: number; direction: string; acts: Act[][];
  clip: number; layout: number; inputForget: boolean; linearBeforeReset: boolean;
}

function readAttrs(kind: Kind) {
  return (a: Attrs, opset: number): RnnAttrs => {
    const direction = a.string('direction', 'forward');
    if (!['forward', 'reverse', 'bidirectional'].includes(direction)) throw a.error(`direction must be forward, reverse or bidirectional, got '${direction}'`);
    const dirs = direction === 'bidirectional' ? 2 : 1;
    const hidden = a.has('hidden_size') ? a.int('hidden_size') : undefined;
    if (hidden !== undefined && hidden <= 0) throw a.error(`hidden_size must be positive, got ${hidden}`);
    const clip = a.has('clip') ? a.float('clip') : Infinity;
    if (!(clip > 0)) throw a.error(`clip must be positive, got ${clip}`);
    const layout = opset >= 14 ? a.int('layout', 0) : 0;
    if (layout !== 0 && layout !== 1) throw a.error(`layout must be 0 or 1, got ${layout}`);
    return {
      hidden, dirs, direction, acts: readActivations(a, kind, dirs), clip, layout,
      inputForget: kind === 'LSTM' && a.int('input_forget', 0) !== 0,
      linearBeforeReset: kind === 'GRU' && a.int('linear_before_reset', 0) !== 0,
    };
  };
}

/** Activation functions per direction. alpha/beta lists are consumed in order by the activations that
 *  take them; a bidirectional node given one direction's list uses it for both. */
function readActivations(a: Attrs, kind: Kind, dirs: number): Act[][] {
  const per = DEFAULT_ACTS[kind].length;
  let names = a.strings('activations', []).map((s) => s.toLowerCase());
  if (names.length === 0) names = DEFAULT_ACTS[kind];
  if (names.length === per && dirs === 2) names = [...names, ...names];
  if (names.length !== per * dirs) throw a.error(`expected ${per * dirs} activations, got ${names.length}`);
  const alphas = a.floats('activation_alpha', []), betas = a.floats('activation_beta', []);
  let ai = 0, bi = 0;
  const fns = names.map((n) => {
    const alpha = n in ALPHA ? (alphas[ai++] ?? ALPHA[n]) : 0, beta = n in BETA ? (betas[bi++] ?? BETA[n]) : 0;
    return activation(n, alpha, beta) ?? (() => { throw a.error(`unsupported activation '${n}'`); })();
  });
  return Array.from({ length: dirs }, (_, d) => fns.slice(d * per, (d + 1) * per));
}

function expectShape(ctx: RunCtx, t: NdArray | undefined, name: string, shape: number[]) {
  if (t && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
    fail(ctx, `${name} should have shape [${shape}], got [${t.shape}]`);
  }
}

function floatData(ctx: RunCtx, t: NdArray, name: string, dtype: DType): Buf {
  if (!isFloat(t.dtype)) fail(ctx, `${name} must be a float tensor, got ${t.dtype}`);
  if (t.dtype !== dtype) fail(ctx, `${name} has dtype ${t.dtype}, expected ${dtype} like X`);
  return t.data as Buf;
}

/** Sequence lengths, checked against [0, seq]; all `seq` when omitted. */
function lengths(ctx: RunCtx, t: NdArray | undefined, batch: number, seq: number): Int32Array {
  if (!t) return new Int32Array(batch).fill(seq);
  expectShape(ctx, t, 'sequence_lens', [batch]);
  const lens = Int32Array.from(t.numbers());
  for (const l of lens) if (l < 0 || l > seq) fail(ctx, `sequence_lens values must be in [0, ${seq}], got ${l}`);
  return lens;
}

interface Operands {
  dt: DType; seq: number; batch: number; input: number; hs: number; lens: Int32Array;
  x: Buf; w: Buf; r: Buf; b?: Buf; h0?: Buf; c0?: Buf; p?: Buf;
  /** The W and R tensors themselves: identity keys for the kernels' cached packed weights. */
  wKey: object; rKey: object;
}

/** The inputs, shape- and dtype-checked against X, W and the attributes. */
function operands(kind: Kind, ins: (Value | undefined)[], at: RnnAttrs, ctx: RunCtx): Operands {
  const x = tensorAt(ins, 0, ctx), w = tensorAt(ins, 1, ctx), r = tensorAt(ins, 2, ctx);
  if (x.shape.length !== 3) fail(ctx, `X must be 3-D, got shape [${x.shape}]`);
  if (r.shape.length !== 3) fail(ctx, `R must be 3-D, got shape [${r.shape}]`);
  const G = GATES[kind], D = at.dirs, hs = at.hidden ?? r.shape[2];
  const [seq, batch, input] = at.layout ? [x.shape[1], x.shape[0], x.shape[2]] : [x.shape[0], x.shape[1], x.shape[2]];
  const state = at.layout ? [batch, D, hs] : [D, batch, hs];
  const shapes: [number, string, number[]][] = [[1, 'W', [D, G * hs, input]], [2, 'R', [D, G * hs, hs]], [3, 'B', [D, 2 * G * hs]], [5, 'initial_h', state]];
  if (kind === 'LSTM') shapes.push([6, 'initial_c', state], [7, 'P', [D, 3 * hs]]);
  const data = (i: number, name: string, shape: number[]) => {
    const t = i <= 2 ? tensorAt(ins, i, ctx) : optTensor(ins, i, ctx); // W and R are required
    expectShape(ctx, t, name, shape);
    return t && floatData(ctx, t, name, x.dtype);
  };
  const [wd, rd, b, h0, c0, p] = shapes.map(([i, name, shape]) => data(i, name, shape));
  return { dt: x.dtype, seq, batch, input, hs, lens: lengths(ctx, optTensor(ins, 4, ctx), batch, seq), x: floatData(ctx, x, 'X', x.dtype), w: wd!, r: rd!, b, h0, c0, p, wKey: w, rKey: r };
}

/** Strides of one direction's slots in Y and the final states, for either layout. */
function outputsFor(o: Operands, d: number, dirs: number, layout: number, y: NdArray, yh: NdArray, yc?: NdArray): Outputs {
  const { seq, batch, hs } = o, base = { y: y.data as Buf, yh: yh.data as Buf, yc: yc?.data as Buf | undefined };
  return layout
    ? { ...base, yOff: d * hs, yT: dirs * hs, yB: seq * dirs * hs, sOff: d * hs, sB: dirs * hs }
    : { ...base, yOff: d * batch * hs, yT: dirs * batch * hs, yB: hs, sOff: d * batch * hs, sB: hs };
}

function run(kind: Kind) {
  return (ins: (Value | undefined)[], at: RnnAttrs, ctx: RunCtx): Value[] => {
    const op = operands(kind, ins, at, ctx), { seq, batch, input, hs, dt } = op, D = at.dirs, G = GATES[kind];
    const stateShape = at.layout ? [batch, D, hs] : [D, batch, hs];
    const y = NdArray.zeros(dt, at.layout ? [batch, seq, D, hs] : [seq, D, batch, hs]);
    const yh = NdArray.zeros(dt, stateShape), yc = kind === 'LSTM' ? NdArray.zeros(dt, stateShape) : undefined;
    // X row of timestep t, batch b: t*xT + b*xB.
    const [xT, xB] = at.layout ? [1, seq] : [batch, 1];
    const dirs = [];
    for (let d = 0; d < D; d++) {
      const o = outputsFor(op, d, D, at.layout, y, yh, yc), state = (s: Buf | undefined) => s && gatherState(s, o, batch, hs);
      const { bias, rbh } = biases(op.b, d, G, hs, at.linearBeforeReset);
      const c: Cell = {
        seq, batch, input, hidden: hs, x: op.x, xT, xB, bias, lens: op.lens, clip: at.clip, acts: at.acts[d],
        w: op.w.subarray(d * G * hs * input, (d + 1) * G * hs * input), r: op.r.subarray(d * G * hs * hs, (d + 1) * G * hs * hs),
        h0: state(op.h0), reverse: at.direction === 'reverse' || d === 1, wKey: op.wKey, rKey: op.rKey, dir: d,
      };
      dirs.push({ c, o, c0: state(op.c0), p: op.p && Float64Array.from(op.p.subarray(d * 3 * hs, (d + 1) * 3 * hs)), rbh });
    }
    // All directions in one call, so the kernels may run them at once.
    if (kind === 'LSTM') lstm(dirs.map(({ c, o, c0, p }) => ({ c, o, opts: { c0, p, inputForget: at.inputForget } })));
    else if (kind === 'GRU') gru(dirs.map(({ c, o, rbh }) => ({ c, o, opts: { linearBeforeReset: at.linearBeforeReset, rbh } })));
    else rnn(dirs.map(({ c, o }) => ({ c, o, opts: undefined })));
    return yc ? [y, yh, yc] : [y, yh];
  };
}

/** One direction's [batch, hidden] slice of an initial state laid out like Y_h. */
function gatherState(s: Buf, o: Outputs, batch: number, hs: number): Float64Array {
  const out = new Float64Array(batch * hs);
  for (let b = 0; b < batch; b++) for (let j = 0; j < hs; j++) out[b * hs + j] = s[o.sOff + b * o.sB + j];
  return out;
}

/** Wb + Rb per gate, folded into the input projection. GRU's recurrent h-gate bias stays apart under
 *  linear_before_reset because it is then scaled by the reset gate. */
function biases(b: Buf | undefined, d: number, G: number, hs: number, linearBeforeReset: boolean) {
  const bias = new Float64Array(G * hs), rbh = new Float64Array(hs);
  if (!b) return { bias, rbh };
  const off = d * 2 * G * hs;
  for (let k = 0; k < G * hs; k++) {
    const rb = b[off + G * hs + k];
    if (linearBeforeReset && k >= 2 * hs) { bias[k] = b[off + k]; rbh[k - 2 * hs] = rb; } else bias[k] = b[off + k] + rb;
  }
  return { bias, rbh };
}

/** Y is [seq, dirs, batch, hidden] (layout 1: [batch, seq, dirs, hidden]); the states drop seq. */
function infer(ins: (TypeInfo | undefined)[], at: RnnAttrs): TypeInfo[] {
  const dt = dtypeOf(ins[0]), xs = shapeOf(ins[0]), hs: Dim = at.hidden ?? shapeOf(ins[2])?.[2] ?? null;
  if (!xs || xs.length !== 3) return [tensorType(dt), tensorType(dt), tensorType(dt)];
  const [seq, batch] = at.layout ? [xs[1], xs[0]] : [xs[0], xs[1]];
  const state = tensorType(dt, at.layout ? [batch, at.dirs, hs] : [at.dirs, batch, hs]);
  return [tensorType(dt, at.layout ? [batch, seq, at.dirs, hs] : [seq, at.dirs, batch, hs]), state, state];
}

const def = (kind: Kind): OpDef<RnnAttrs> => ({ op: kind, attrs: readAttrs(kind), infer, run: run(kind) });
register(def('LSTM'), def('GRU'), def('RNN'));
