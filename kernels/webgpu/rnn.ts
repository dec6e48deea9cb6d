// Recurrent cells (LSTM, GRU, simple RNN), both directions per dispatch. The input projection X·W^T + Wb
// of every timestep is one batched GEMM up front; then each timestep is one dispatch (two for GRU without
// linear_before_reset, whose h gate needs r ⊙ H of every unit first) over (direction, batch, unit). The
// hidden state is f32 and ping-pongs between buffers (units read each other's previous state); the LSTM
// cell state is updated in place. Rows past their sequence length carry their state and zero their Y.
import type { DType } from '../../engine/dtype.js';
import type { GpuArray, Program, Uniform } from './runner.js';
import { declare, entry, f32u, load, store, u32s, type ShaderIO } from './wgsl.js';

export type CellKind = 'LSTM' | 'GRU' | 'RNN';
export const GATES: Record<CellKind, number> = { LSTM: 4, GRU: 3, RNN: 1 };
const WG = 64, TILE = 16;

/** Sizes shared by every program of one node. layout 1 is batch-major: X [batch, seq, .], states [batch, dirs, .]. */
export interface RnnDims { seq: number; batch: number; hidden: number; dirs: number; layout: number; reverse: boolean }

/** An activation by ONNX name (lower case), with its alpha and beta. */
export interface Activation { name: string; alpha: number; beta: number }

export interface CellSpec {
  kind: CellKind;
  /** Per direction, the kind's activations in ONNX order (f, g, h for LSTM). */
  acts: Activation[][];
  clip: number; inputForget: boolean; linearBeforeReset: boolean;
}

/** Declarations with some inputs written too (Y and the cell state accumulate over dispatches). */
function declareRw(io: ShaderIO, rw: string[]): string {
  return rw.reduce((s, name) => s.replace(`var<storage, read> ${name}:`, `var<storage, read_write> ${name}:`), declare(io));
}

// ---- input projection ------------------------------------------------------------------------------

/**
 * out[d, r, n] = x[r, :]·w[d, n, :] (+ bias[d * biasStride + n]): f32 [dirs, rows, n]. `tiled` stages
 * 16x16 tiles of both operands in shared memory (hardware GPUs); otherwise one invocation per output.
 */
export function projectInputs(x: GpuArray, w: GpuArray, bias: GpuArray | undefined, dims: { dirs: number; rows: number; n: number; k: number; biasStride: number }, tiled: boolean): Program {
  const { dirs, rows, n, k } = dims, total = dirs * rows * n;
  const uniforms = [u32s('rows', rows), u32s('n', n), u32s('k', k), u32s('bias_stride', dims.biasStride), u32s('total', total)];
  const ins: [string, GpuArray][] = [['x', x], ['w', w], ...(bias ? [['bias', bias] as [string, GpuArray]] : [])];
  const addBias = bias ? ` + ${load(bias.dtype, 'bias[d * u_bias_stride() + c]')}` : '';
  const io = () => declare({ inputs: ins.map(([name, a]) => [name, a.dtype]), outputs: [['out', 'float32']], uniforms });
  const shader = () => tiled ? `${io()}
var<workgroup> ta: array<array<f32, ${TILE}>, ${TILE}>;
var<workgroup> tb: array<array<f32, ${TILE}>, ${TILE}>;
@compute @workgroup_size(${TILE}, ${TILE})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let d = wg.z; let r = wg.y * ${TILE}u + lid.y; let c = wg.x * ${TILE}u + lid.x; let wr = wg.x * ${TILE}u + lid.y;
  var acc = 0.0;
  for (var k0 = 0u; k0 < u_k(); k0 += ${TILE}u) {
    let kk = k0 + lid.x;
    ta[lid.y][lid.x] = 0.0; tb[lid.y][lid.x] = 0.0;
    if (r < u_rows() && kk < u_k()) { ta[lid.y][lid.x] = ${load(x.dtype, 'x[r * u_k() + kk]')}; }
    if (wr < u_n() && kk < u_k()) { tb[lid.y][lid.x] = ${load(w.dtype, 'w[(d * u_n() + wr) * u_k() + kk]')}; }
    workgroupBarrier();
    for (var q = 0u; q < ${TILE}u; q++) { acc += ta[lid.y][q] * tb[lid.x][q]; }
    workgroupBarrier();
  }
  if (r < u_rows() && c < u_n()) { out[(d * u_rows() + r) * u_n() + c] = acc${addBias}; }
}` : `${io()}
${entry(WG, 'u_total()', `  let c = gi % u_n(); let r = (gi / u_n()) % u_rows(); let d = gi / (u_n() * u_rows());
  var acc = 0.0;
  for (var q = 0u; q < u_k(); q++) { acc += ${load(x.dtype, 'x[r * u_k() + q]')} * ${load(w.dtype, 'w[(d * u_n() + c) * u_k() + q]')}; }
  out[gi] = acc${addBias};`)}`;
  return {
    name: 'RnnProjection', key: `rnn-proj|${x.dtype}|${w.dtype}|${bias?.dtype ?? '-'}|${tiled ? 'tiled' : 'direct'}`,
    shader, inputs: ins.map(([, a]) => a), outputs: [{ dtype: 'float32', shape: [dirs, rows, n] }], uniforms,
    workgroups: tiled ? [Math.ceil(n / TILE), Math.ceil(rows / TILE), dirs] : Math.ceil(total / WG),
  };
}

/** Whether the tiled projection's grid fits the dispatch limits. */
export const tiledFits = (rows: number, n: number) => Math.ceil(rows / TILE) <= 65535 && Math.ceil(n / TILE) <= 65535;

// ---- shared WGSL -----------------------------------------------------------------------------------

const ACT: Record<string, string> = {
  sigmoid: 'select(exp(x) / (1.0 + exp(x)), 1.0 / (1.0 + exp(-x)), x >= 0.0)',
  tanh: 'tanh_(x)',
  relu: 'max(x, 0.0)',
  affine: 'a * x + b',
  leakyrelu: 'select(a * x, x, x >= 0.0)',
  thresholdedrelu: 'select(0.0, x, x > a)',
  scaledtanh: 'a * tanh_(b * x)',
  hardsigmoid: 'clamp(a * x + b, 0.0, 1.0)',
  elu: 'select(a * (exp(x) - 1.0), x, x >= 0.0)',
  softsign: 'x / (1.0 + abs(x))',
  softplus: 'select(log(1.0 + exp(x)), x, x > 30.0)',
};

/** fn act<slot>(d, x): slot's activation of direction d, alpha and beta from the uniforms. */
function activationFns(cell: CellSpec): string {
  const per = cell.acts[0].length;
  const fns = Array.from({ length: per }, (_, s) => {
    const names = cell.acts.map((a) => a[s].name);
    const ab = `let a = u_alpha(d * ${per}u + ${s}u); let b = u_beta(d * ${per}u + ${s}u);`;
    const body = names.every((n) => n === names[0]) ? `return ${ACT[names[0]]};` : `if (d == 0u) { return ${ACT[names[0]]}; }\n  return ${ACT[names[1]]};`;
    return `fn act${s}(d: u32, x: f32) -> f32 {\n  ${ab}\n  ${body}\n}`;
  });
  return `fn tanh_(x: f32) -> f32 { let e = exp(-2.0 * abs(clamp(x, -20.0, 20.0))); return sign(x) * (1.0 - e) / (1.0 + e); }
fn cl(x: f32) -> f32 { return clamp(x, -u_clip(), u_clip()); }
${fns.join('\n')}`;
}

/** Index helpers over the uniforms: length of batch row b, state offset, X row, Y offset. */
function indexFns(lens: GpuArray | undefined): string {
  return `fn len_(b: u32) -> u32 { return ${lens ? `u32(${load(lens.dtype, 'lens[b]')})` : 'u_seq()'}; }
fn soff(d: u32, b: u32) -> u32 { return select(d * u_batch() + b, b * u_dirs() + d, u_batch_major() != 0u) * u_hs(); }
fn xrow(t: u32, b: u32) -> u32 { return select(t * u_batch() + b, b * u_seq() + t, u_batch_major() != 0u); }
fn yoff(t: u32, d: u32, b: u32) -> u32 { return select((t * u_dirs() + d) * u_batch() + b, (b * u_seq() + t) * u_dirs() + d, u_batch_major() != 0u) * u_hs(); }`;
}

function dimUniforms(dims: RnnDims, step: number): Uniform[] {
  return [u32s('total', dims.dirs * dims.batch * dims.hidden), u32s('seq', dims.seq), u32s('batch', dims.batch), u32s('hs', dims.hidden),
    u32s('dirs', dims.dirs), u32s('batch_major', dims.layout), u32s('rev0', dims.reverse ? 1 : 0), u32s('step', step)];
}

// ---- initial state ---------------------------------------------------------------------------------

/** f32 states from the optional initial ones (zeros without); rows with no timesteps start (and end) at zero. */
export function rnnInit(h0: GpuArray | undefined, c0: GpuArray | undefined, lens: GpuArray | undefined, dims: RnnDims, withCell: boolean): Program {
  const uniforms = dimUniforms(dims, 0), shape = dims.layout ? [dims.batch, dims.dirs, dims.hidden] : [dims.dirs, dims.batch, dims.hidden];
  const ins = [['h0', h0], ['c0', c0], ['lens', lens]].filter((e): e is [string, GpuArray] => !!e[1]);
  const outs: [string, DType][] = withCell ? [['h', 'float32'], ['c', 'float32']] : [['h', 'float32']];
  const from = (a: GpuArray | undefined, name: string) => (a ? load(a.dtype, `${name}[gi]`) : '0.0');
  return {
    name: 'RnnInit', key: `rnn-init|${ins.map(([n, a]) => `${n}:${a.dtype}`)}|${withCell}`,
    shader: () => `${declare({ inputs: ins.map(([n, a]) => [n, a.dtype]), outputs: outs, uniforms })}
${indexFns(lens)}
${entry(WG, 'u_total()', `  let b = select((gi / u_hs()) % u_batch(), gi / (u_dirs() * u_hs()), u_batch_major() != 0u);
  let live = len_(b) > 0u;
  h[gi] = select(0.0, ${from(h0, 'h0')}, live);${withCell ? `\n  c[gi] = select(0.0, ${from(c0, 'c0')}, live);` : ''}`)}`,
    inputs: ins.map(([, a]) => a), outputs: outs.map(() => ({ dtype: 'float32', shape })), uniforms,
    workgroups: Math.ceil((dims.dirs * dims.batch * dims.hidden) / WG),
  };
}

// ---- timesteps -------------------------------------------------------------------------------------

export interface StepInputs {
  /** Input projections from projectInputs, [dirs, seq*batch, gates*hidden] in X's row order. */
  xw: GpuArray; r: GpuArray; h: GpuArray;
  /** [dirs, 2*gates*hidden]: the recurrent half (Rb) is added here, Wb went into the projection. */
  bias?: GpuArray; peep?: GpuArray; lens?: GpuArray;
  /** Written: Y, and the LSTM cell state. */
  y: GpuArray; c?: GpuArray;
  /** GRU's update phase: r ⊙ H from its reset phase. */
  rh?: GpuArray;
}

/** Which part of a step a program does: a whole cell, or GRU's reset phase (r ⊙ H) and update phase. */
export type StepPhase = 'cell' | 'gru-reset' | 'gru-update';

function stepBody(cell: CellSpec, phase: StepPhase, yDtype: DType, peephole: boolean): string {
  const gate = (g: number) => `(pre(d, b, t, ${g}u, j) + rec(d, ${g}u, j, so))`;
  const finish = (h: string) => `  hn[so + j] = ${h};\n  y[yoff(t, d, b) + j] = ${store(yDtype, `hn[so + j]`)};`;
  const prologue = `  let j = gi % u_hs(); let b = (gi / u_hs()) % u_batch(); let d = gi / (u_hs() * u_batch());
  let so = soff(d, b); let len = len_(b); let s = u_step();
  let t = select(s, len - 1u - s, d == 1u || u_rev0() != 0u);
  if (s >= len) {
    ${phase === 'gru-reset' ? 'rh[so + j] = 0.0;' : `hn[so + j] = hp[so + j]; y[yoff(s, d, b) + j] = ${store(yDtype, '0.0')};`}
    return;
  }\n`;
  if (phase === 'gru-reset') return `${prologue}  rh[so + j] = act0(d, cl(${gate(1)})) * hp[so + j];`;
  if (cell.kind === 'RNN') return `${prologue}${finish(`act0(d, cl(${gate(0)}))`)}`;
  if (cell.kind === 'GRU') {
    // h gate: Wb_h (in the projection) + Rb_h + R_h·(r ⊙ H), or under linear_before_reset r ⊙ (R_h·H + Rb_h).
    const hGate = cell.linearBeforeReset
      ? `pre(d, b, t, 2u, j) + act0(d, cl(${gate(1)})) * rec(d, 2u, j, so)`
      : `pre(d, b, t, 2u, j) + rbias(d, 2u, j) + rdot_rh(d, 2u, j, so)`;
    return `${prologue}  let z = act0(d, cl(${gate(0)}));
  let hh = act1(d, cl(${hGate}));
${finish('(1.0 - z) * hh + z * hp[so + j]')}`;
  }
  // Gates in ONNX order i, o, f, c; peepholes i, o, f.
  const peep = (k: number, state: string) => (peephole ? ` + peep_(d, ${k}u, j) * ${state}` : '');
  return `${prologue}  let cp = cst[so + j];
  let i = act0(d, cl(${gate(0)}${peep(0, 'cp')}));
  let f = ${cell.inputForget ? '1.0 - i' : `act0(d, cl(${gate(2)}${peep(2, 'cp')}))`};
  let cn = f * cp + i * act1(d, cl(${gate(3)}));
  let o = act0(d, cl(${gate(1)}${peep(1, 'cn')}));
  cst[so + j] = cn;
${finish('o * act2(d, cn)')}`;
}

/** One timestep (`step` counts from the start of each direction's own order) for every direction. */
export function rnnStep(inp: StepInputs, cell: CellSpec, dims: RnnDims, step: number, phase: StepPhase): Program {
  const G = GATES[cell.kind], act = cell.acts.flat();
  const uniforms: Uniform[] = [...dimUniforms(dims, step), f32u('clip', Math.min(cell.clip, 3.4e38)),
    { name: 'alpha', type: 'f32', value: act.map((a) => a.alpha) }, { name: 'beta', type: 'f32', value: act.map((a) => a.beta) }];
  const update = phase === 'gru-update', reset = phase === 'gru-reset';
  const ins = ([['xw', inp.xw], ['rw', inp.r], ['hp', inp.h], ['bias', inp.bias], ['peep', inp.peep], ['lens', inp.lens],
    ['rh', update ? inp.rh : undefined], ['y', reset ? undefined : inp.y], ['cst', inp.c]] as [string, GpuArray | undefined][])
    .filter((e): e is [string, GpuArray] => !!e[1]);
  const dt = inp.r.dtype;
  const dot = (name: string, buf: string) => `fn ${name}(d: u32, g: u32, j: u32, so: u32) -> f32 {
  var acc = 0.0; let row = ((d * ${G}u + g) * u_hs() + j) * u_hs();
  for (var q = 0u; q < u_hs(); q++) { acc += ${load(dt, 'rw[row + q]')} * ${buf}[so + q]; }
  return acc;
}`;
  const out: [string, DType] = reset ? ['rh', 'float32'] : ['hn', 'float32'];
  return {
    name: `${cell.kind}Step`,
    key: `rnn-step|${cell.kind}|${phase}|${ins.map(([n, a]) => `${n}:${a.dtype}`)}|${cell.acts.map((a) => a.map((x) => x.name).join(','))}|${cell.inputForget}|${cell.linearBeforeReset}`,
    shader: () => `${declareRw({ inputs: ins.map(([n, a]) => [n, a.dtype]), outputs: [out], uniforms }, ['y', 'cst'])}
${indexFns(inp.lens)}
${activationFns(cell)}
fn pre(d: u32, b: u32, t: u32, g: u32, j: u32) -> f32 { return xw[((d * u_seq() * u_batch() + xrow(t, b)) * ${G}u + g) * u_hs() + j]; }
fn rbias(d: u32, g: u32, j: u32) -> f32 { return ${inp.bias ? load(inp.bias.dtype, `bias[d * 2u * ${G}u * u_hs() + (${G}u + g) * u_hs() + j]`) : '0.0'}; }
${inp.peep ? `fn peep_(d: u32, k: u32, j: u32) -> f32 { return ${load(inp.peep.dtype, 'peep[(d * 3u + k) * u_hs() + j]')}; }` : ''}
${dot('rdot', 'hp')}
${update && !cell.linearBeforeReset ? dot('rdot_rh', 'rh') : ''}
fn rec(d: u32, g: u32, j: u32, so: u32) -> f32 { return rbias(d, g, j) + rdot(d, g, j, so); }
${entry(WG, 'u_total()', stepBody(cell, phase, inp.y.dtype, !!inp.peep))}`,
    inputs: ins.map(([, a]) => a), outputs: [{ dtype: 'float32', shape: inp.h.shape }], uniforms,
    workgroups: Math.ceil((dims.dirs * dims.batch * dims.hidden) / WG),
  };
}
