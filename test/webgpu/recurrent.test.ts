import { afterAll, beforeAll, it } from 'vitest';
import { float, floats, GraphBuilder } from '../../loaders/builder.js';
import { NdArray } from '../../engine/tensor.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type Kind = 'LSTM' | 'GRU' | 'RNN';
type R = ReturnType<typeof rng>;
const GATES = { LSTM: 4, GRU: 3, RNN: 1 };

interface Case {
  kind: Kind; seq: number; batch: number; input: number; hidden: number; direction: string; layout: number;
  bias?: boolean; lens?: number[]; h0?: boolean; c0?: boolean; peep?: boolean; attrs?: Record<string, unknown>; f16?: boolean;
}

/** A recurrent node with random weights as initializers; X, sequence_lens and the initial states are inputs. */
function model(c: Case, r: R) {
  const g = new GraphBuilder(), G = GATES[c.kind], D = c.direction === 'bidirectional' ? 2 : 1, hs = c.hidden;
  const state = c.layout ? [c.batch, D, hs] : [D, c.batch, hs];
  const feeds: Record<string, NdArray> = {};
  const input = (name: string, shape: number[], value: NdArray) => { feeds[name] = value; return g.input(name, value.dtype, shape); };
  const xShape = c.layout ? [c.batch, c.seq, c.input] : [c.seq, c.batch, c.input];
  const rand = (shape: number[], lo = -1, hi = 1) => { const t = randomF32(shape, r, lo, hi); return c.f16 ? new NdArray('float16', shape, t.data) : t; };
  const ins = [
    input('x', xShape, rand(xShape)),
    g.init('w', rand([D, G * hs, c.input], -0.6, 0.6)), g.init('r', rand([D, G * hs, hs], -0.6, 0.6)),
    c.bias ? g.init('b', rand([D, 2 * G * hs], -0.5, 0.5)) : '',
    c.lens ? input('lens', [c.batch], new NdArray('int32', [c.batch], Int32Array.from(c.lens))) : '',
    c.h0 ? input('h0', state, rand(state)) : '',
    c.c0 ? input('c0', state, rand(state)) : '',
    c.peep ? g.init('p', rand([D, 3 * hs], -0.5, 0.5)) : '',
  ];
  while (ins[ins.length - 1] === '') ins.pop();
  const outs = g.node(c.kind, ins, { hidden_size: hs, direction: c.direction, layout: c.layout, ...c.attrs }, c.kind === 'LSTM' ? 3 : 2);
  outs.forEach((o) => g.output(o, null));
  return { bytes: g.model({ opset: 14 }), feeds };
}

async function check(cases: Case[], seed: number) {
  const r = rng(seed);
  for (const c of cases) {
    const { bytes, feeds } = model(c, r);
    await expectGpuMatchesCpu(bytes, feeds, c.f16 ? { rtol: 1e-2, atol: 2e-3 } : { rtol: 2e-3, atol: 2e-4 });
  }
}

/** Runs `fn` with the adapter taken for a hardware GPU, so the shared-memory variants run here too. */
async function asHardware(fn: () => Promise<void>) {
  const ctx = await acquireGpu(), was = ctx.software;
  ctx.software = false;
  try { await fn(); } finally { ctx.software = was; releaseGpu(ctx); }
}

const base = { seq: 5, batch: 3, input: 4, hidden: 5 };

describeGpu('WebGPU recurrent ops match the CPU backend', () => {
  // One device for the whole file, so each pipeline compiles once (sessions share the device's cache).
  let gpuCtx: GpuContext | undefined;
  beforeAll(async () => { gpuCtx = await acquireGpu(); });
  afterAll(() => { if (gpuCtx) releaseGpu(gpuCtx); });
  it('LSTM: directions, layouts, bias, sequence_lens, initial states, peepholes, input_forget, clip', () => check([
    { kind: 'LSTM', ...base, direction: 'forward', layout: 0 },
    { kind: 'LSTM', ...base, direction: 'reverse', layout: 0, bias: true, lens: [5, 2, 0], h0: true, c0: true },
    { kind: 'LSTM', ...base, seq: 4, batch: 2, direction: 'bidirectional', layout: 1, bias: true, peep: true, h0: true, c0: true, lens: [3, 4] },
    { kind: 'LSTM', ...base, direction: 'bidirectional', layout: 0, bias: true, peep: true, attrs: { input_forget: 1, clip: float(0.7) } },
  ], 31));
  it('GRU: linear_before_reset both ways, directions, layouts, activations with parameters', () => check([
    { kind: 'GRU', ...base, direction: 'forward', layout: 0, bias: true },
    { kind: 'GRU', ...base, direction: 'bidirectional', layout: 0, bias: true, lens: [1, 5, 3], h0: true, attrs: { linear_before_reset: 1 } },
    { kind: 'GRU', ...base, direction: 'reverse', layout: 1, bias: true, h0: true, attrs: { activations: ['HardSigmoid', 'LeakyRelu'], activation_alpha: floats([0.3, 0.05]) } },
    { kind: 'GRU', ...base, direction: 'bidirectional', layout: 1, attrs: { activations: ['Sigmoid', 'Tanh', 'Sigmoid', 'ScaledTanh'], activation_alpha: floats([0.8]), activation_beta: floats([1.2]), clip: float(1.5) } },
  ], 32));
  it('RNN, float16 and the tiled input projection (hardware path)', async () => {
    await check([
      { kind: 'RNN', ...base, direction: 'forward', layout: 0, bias: true, h0: true },
      ...(gpuCtx?.f16 ? [{ kind: 'LSTM', ...base, direction: 'forward', layout: 0, bias: true, h0: true, c0: true, f16: true } as Case] : []),
      { kind: 'RNN', ...base, direction: 'bidirectional', layout: 1, lens: [2, 5, 4], attrs: { activations: ['Relu', 'Softsign'] } },
    ], 33);
    await asHardware(() => check([
      { kind: 'LSTM', seq: 7, batch: 5, input: 37, hidden: 9, direction: 'bidirectional', layout: 0, bias: true },
      { kind: 'GRU', seq: 3, batch: 2, input: 19, hidden: 17, direction: 'forward', layout: 1, bias: true, h0: true },
    ], 34));
  });
});
