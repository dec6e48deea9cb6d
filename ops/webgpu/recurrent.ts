// GPU lowerings of LSTM, GRU and RNN: every direction, sequence_lens, initial states, peepholes, clip,
// input_forget, linear_before_reset, both layouts and every activation the CPU backend knows.
import type { DType } from '../../engine/dtype.js';
import type { Node } from '../../engine/graph.js';
import type { NdArray } from '../../engine/tensor.js';
import { elementwise } from '../../kernels/webgpu/elementwise.js';
import { GATES, projectInputs, rnnInit, rnnStep, tiledFits, type Activation, type CellKind, type CellSpec, type RnnDims, type StepInputs } from '../../kernels/webgpu/rnn.js';
import { GpuArray, type GpuRunner } from '../../kernels/webgpu/runner.js';
import { Attrs, fail, gpuAt, registerGpu, type GpuCtx, type GpuOpDef } from '../registry.js';

/** The fields of ops/recurrent.ts's RnnAttrs this lowering reads. */
interface RnnAttrs { hidden?: number; dirs: number; direction: string; clip: number; layout: number; inputForget: boolean; linearBeforeReset: boolean }
type Ins = (GpuArray | NdArray | undefined)[];

// Mirrors readActivations in ops/recurrent.ts, keeping names and parameters (the CPU keeps closures):
// alpha/beta lists are consumed in order by the activations that take them, a bidirectional node given
// one direction's names uses them for both.
const DEFAULT_ACTS: Record<CellKind, string[]> = { LSTM: ['sigmoid', 'tanh', 'tanh'], GRU: ['sigmoid', 'tanh'], RNN: ['tanh'] };
const ALPHA: Record<string, number> = { leakyrelu: 0.01, thresholdedrelu: 1, elu: 1, hardsigmoid: 0.2, scaledtanh: 1, affine: 1 };
const BETA: Record<string, number> = { hardsigmoid: 0.5, scaledtanh: 1, affine: 0 };

function activations(node: Node, kind: CellKind, dirs: number): Activation[][] {
  const a = new Attrs(node), per = DEFAULT_ACTS[kind].length;
  let names = a.strings('activations', []).map((s) => s.toLowerCase());
  if (names.length === 0) names = DEFAULT_ACTS[kind];
  if (names.length === per && dirs === 2) names = [...names, ...names];
  const alphas = a.floats('activation_alpha', []), betas = a.floats('activation_beta', []);
  let ai = 0, bi = 0;
  const acts = names.map((name) => ({ name, alpha: name in ALPHA ? (alphas[ai++] ?? ALPHA[name]) : 0, beta: name in BETA ? (betas[bi++] ?? BETA[name]) : 0 }));
  return Array.from({ length: dirs }, (_, d) => acts.slice(d * per, (d + 1) * per));
}

const optGpu = (ins: Ins, i: number) => (ins[i] instanceof GpuArray ? (ins[i] as GpuArray) : undefined);

function expectShape(ctx: GpuCtx, t: GpuArray | undefined, name: string, shape: number[], dtype?: DType) {
  if (!t) return;
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) fail(ctx, `${name} should have shape [${shape}], got [${t.shape}]`);
  if (dtype && t.dtype !== dtype) fail(ctx, `${name} has dtype ${t.dtype}, expected ${dtype} like X`);
}

/** f32 state to the output dtype (a no-op for float32). */
function asDtype(gpu: GpuRunner, a: GpuArray, dtype: DType): GpuArray {
  if (dtype === 'float32') return a;
  const [out] = gpu.run(elementwise({ name: 'Cast', expr: 'v0', inputs: [a], outShape: a.shape, outDtype: dtype }));
  gpu.release(a);
  return out;
}

function run(kind: CellKind) {
  return (ins: Ins, at: RnnAttrs, ctx: GpuCtx): GpuArray[] => {
    const x = gpuAt(ins, 0, ctx), w = gpuAt(ins, 1, ctx), r = gpuAt(ins, 2, ctx), dt = x.dtype;
    if (dt !== 'float32' && dt !== 'float16') fail(ctx, `X must be a float tensor, got ${dt}`);
    if (x.shape.length !== 3) fail(ctx, `X must be 3-D, got shape [${x.shape}]`);
    if (r.shape.length !== 3) fail(ctx, `R must be 3-D, got shape [${r.shape}]`);
    const G = GATES[kind], D = at.dirs, hs = at.hidden ?? r.shape[2];
    const [seq, batch, input] = at.layout ? [x.shape[1], x.shape[0], x.shape[2]] : x.shape;
    const state = at.layout ? [batch, D, hs] : [D, batch, hs];
    const [bias, lens, h0, c0, peep] = [3, 4, 5, 6, 7].map((i) => optGpu(ins, i));
    expectShape(ctx, w, 'W', [D, G * hs, input], dt);
    expectShape(ctx, r, 'R', [D, G * hs, hs], dt);
    expectShape(ctx, bias, 'B', [D, 2 * G * hs], dt);
    expectShape(ctx, lens, 'sequence_lens', [batch]);
    expectShape(ctx, h0, 'initial_h', state, dt);
    if (kind === 'LSTM') { expectShape(ctx, c0, 'initial_c', state, dt); expectShape(ctx, peep, 'P', [D, 3 * hs], dt); }

    const gpu = ctx.gpu, dims: RnnDims = { seq, batch, hidden: hs, dirs: D, layout: at.layout, reverse: at.direction === 'reverse' };
    const cell: CellSpec = { kind, acts: activations(ctx.node, kind, D), clip: at.clip, inputForget: at.inputForget, linearBeforeReset: at.linearBeforeReset };
    const rows = seq * batch, tiled = !gpu.ctx.software && tiledFits(rows, G * hs);
    const [xw] = gpu.run(projectInputs(x, w, bias, { dirs: D, rows, n: G * hs, k: input, biasStride: 2 * G * hs }, tiled));
    const [h, c] = gpu.run(rnnInit(h0, c0, lens, dims, kind === 'LSTM'));
    const y = gpu.alloc(dt, at.layout ? [batch, seq, D, hs] : [seq, D, batch, hs]);
    const inp: StepInputs = { xw, r, h, bias, peep: kind === 'LSTM' ? peep : undefined, lens, y, c };
    for (let s = 0; s < seq; s++) {
      let rh: GpuArray | undefined;
      if (kind === 'GRU' && !at.linearBeforeReset) [rh] = gpu.run(rnnStep(inp, cell, dims, s, 'gru-reset'));
      const [hn] = gpu.run(rnnStep({ ...inp, rh }, cell, dims, s, rh ? 'gru-update' : 'cell'));
      if (rh) gpu.release(rh);
      gpu.release(inp.h);
      inp.h = hn;
    }
    gpu.release(xw);
    const outs = [y, asDtype(gpu, inp.h, dt)];
    if (c) outs.push(asDtype(gpu, c, dt));
    return outs;
  };
}

const def = (kind: CellKind): GpuOpDef<RnnAttrs> => ({ op: kind, run: run(kind) });
registerGpu(def('LSTM'), def('GRU'), def('RNN'));
