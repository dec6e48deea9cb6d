import { afterAll, beforeAll, expect, it } from 'vitest';
import { GraphBuilder } from '../../loaders/builder.js';
import { NdArray } from '../../engine/tensor.js';
import { conv, type Geom3 } from '../../kernels/cpu/conv.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { convProgram, depthwiseProgram, type ConvShape } from '../../kernels/webgpu/conv.js';
import type { Activation } from '../../kernels/webgpu/activation.js';
import type { GemmVariant } from '../../kernels/webgpu/matmul.js';
import { GpuRunner, type Program } from '../../kernels/webgpu/runner.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type R = ReturnType<typeof rng>;
const AUTO_PADS = ['NOTSET', 'NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'];

/** A model with one Conv or ConvTranspose node over x [n, c, ...spatial], w and an optional bias. */
function model(op: string, xs: number[], ws: number[], bias: boolean, attrs: Record<string, number | number[] | string | undefined>) {
  const g = new GraphBuilder();
  const ins = [g.input('x', 'float32', xs), g.input('w', 'float32', ws)];
  if (bias) ins.push(g.input('b', 'float32', [op === 'Conv' ? ws[0] : ws[1] * Number(attrs.group ?? 1)]));
  g.output(g.node(op, ins, attrs)[0], null);
  return g.model({ opset: 17 });
}

function feeds(xs: number[], ws: number[], bias: number | undefined, r: R) {
  const f: Record<string, NdArray> = { x: randomF32(xs, r), w: randomF32(ws, r) };
  if (bias !== undefined) f.b = randomF32([bias], r);
  return f;
}

/** Groups and channels: plain, grouped, depthwise (c = group) with a channel multiplier, or pointwise-friendly. */
function channels(r: R): { c: number; m: number; group: number } {
  const kind = r.pick(['plain', 'grouped', 'depthwise']);
  if (kind === 'plain') return { c: r.int(1, 5), m: r.int(1, 9), group: 1 };
  if (kind === 'grouped') { const group = r.int(2, 3); return { c: group * r.int(1, 3), m: group * r.int(1, 3), group }; }
  const c = r.int(2, 6);
  return { c, m: c * r.int(1, 2), group: c };
}

describeGpu('WebGPU Conv and ConvTranspose', () => {
  // Held for the whole file: the device and its pipeline cache then outlive each test's sessions.
  let ctx: GpuContext, gpu: GpuRunner;
  beforeAll(async () => { ctx = await acquireGpu(); gpu = new GpuRunner(ctx); });
  afterAll(() => { gpu.destroy(); releaseGpu(ctx); });

  it('Conv 1D/2D/3D with groups, depthwise, strides, pads, dilations, auto_pad and bias', async () => {
    const r = rng(31);
    for (let t = 0; t < 14; t++) {
      const rank = r.pick([1, 2, 2, 3]), { c, m, group } = channels(r), n = r.int(1, 2);
      const k = Array.from({ length: rank }, () => r.int(1, 3)), autoPad = r.pick(AUTO_PADS);
      const strides = k.map(() => r.int(1, 2)), dilations = autoPad === 'NOTSET' ? k.map(() => r.int(1, 2)) : undefined;
      const span = k.map((v, i) => (v - 1) * (dilations?.[i] ?? 1) + 1);
      const xs = [n, c, ...span.map((s) => s + r.int(0, rank === 3 ? 3 : 7))], ws = [m, c / group, ...k];
      const pads = autoPad === 'NOTSET' ? [...k, ...k].map((v) => r.int(0, v - 1)) : undefined;
      const bias = r.next() < 0.5;
      const attrs = { group, strides, dilations, pads, auto_pad: autoPad === 'NOTSET' ? undefined : autoPad, kernel_shape: r.next() < 0.5 ? k : undefined };
      await expectGpuMatchesCpu(model('Conv', xs, ws, bias, attrs), feeds(xs, ws, bias ? m : undefined, r));
    }
  });

  it('pointwise Conv reads X directly, with and without 4-aligned planes', async () => {
    const r = rng(32);
    for (const plane of [[4, 6], [3, 5]]) {
      const xs = [2, 6, ...plane], ws = [5, 6, 1, 1];
      await expectGpuMatchesCpu(model('Conv', xs, ws, true, {}), feeds(xs, ws, 5, r));
    }
  });

  it('ConvTranspose 1D/2D/3D with groups, strides, dilations, pads, output_padding, output_shape and auto_pad', async () => {
    const r = rng(33);
    for (let t = 0; t < 12; t++) {
      const rank = r.pick([1, 2, 2, 3]), group = r.pick([1, 1, 2]), c = group * r.int(1, 3), mg = r.int(1, 3), n = r.int(1, 2);
      const k = Array.from({ length: rank }, () => r.int(1, 3)), strides = k.map(() => r.int(1, 3)), dilations = k.map(() => r.int(1, 2));
      const inS = k.map(() => r.int(1, rank === 3 ? 3 : 5)), xs = [n, c, ...inS], ws = [c, mg, ...k];
      const mode = r.pick(['pads', 'output_shape', 'auto_pad']);
      const full = inS.map((v, i) => strides[i] * (v - 1) + (k[i] - 1) * dilations[i] + 1);
      const attrs = {
        group, strides, dilations,
        pads: mode === 'pads' ? [...k, ...k].map((v) => r.int(0, v - 1)) : undefined,
        output_padding: mode === 'pads' ? strides.map((s) => r.int(0, s - 1)) : undefined,
        output_shape: mode === 'output_shape' ? full.map((f) => Math.max(1, f + r.int(-2, 1))) : undefined,
        auto_pad: mode === 'auto_pad' ? r.pick(['SAME_UPPER', 'SAME_LOWER']) : undefined,
      };
      const bias = r.next() < 0.5;
      await expectGpuMatchesCpu(model('ConvTranspose', xs, ws, bias, attrs), feeds(xs, ws, bias ? mg * group : undefined, r));
    }
  });

  // ---- the program builders, variants forced and epilogues fused, against the CPU kernel ----

  async function runOnGpu(p: Program) {
    const [o] = gpu.run(p);
    const res = (await gpu.download(o)).data as Float32Array;
    gpu.release(o);
    return res;
  }

  /** conv + bias + activation through a builder, against cpu/conv.ts and the activation in JS. */
  async function check(s: ConvShape, spatial: number[], act: Activation | undefined, build: (x: ReturnType<GpuRunner['upload']>, w: ReturnType<GpuRunner['upload']>, b: ReturnType<GpuRunner['upload']>) => Program, r: R) {
    const x = randomF32([s.n, s.c, ...s.g.inS], r), w = randomF32([s.m, s.c / s.group, ...s.g.k], r), b = randomF32([s.m], r);
    const plane = spatial.reduce((p, v) => p * v, 1), y = new Float32Array(s.n * s.m * plane).map((_, i) => b.data[Math.floor(i / plane) % s.m]);
    conv(x.data, w.data, y, s.n, s.c, s.m, s.group, s.g);
    const fn = act?.kind === 'Relu' ? (v: number) => Math.max(v, 0) : act?.kind === 'HardSwish' ? (v: number) => v * Math.min(Math.max(v / 6 + 0.5, 0), 1) : (v: number) => v;
    const [gx, gw, gb] = [x, w, b].map((a) => gpu.upload(a));
    const got = await runOnGpu(build(gx, gw, gb));
    [gx, gw, gb].forEach((a) => gpu.release(a));
    const bad = y.findIndex((e, i) => !(Math.abs(got[i] - fn(e)) <= 1e-4 + 1e-3 * Math.abs(fn(e))));
    expect(bad, `${JSON.stringify(s)}: index ${bad}: ${got[bad]} vs ${fn(y[bad])}`).toBe(-1);
  }

  const geom = (inS: number[], k: number[], st: number[], d: number[], p: number[]): { g: Geom3; out: number[] } => {
    const out = inS.map((v, i) => Math.floor((v + 2 * p[i] - (k[i] - 1) * d[i] - 1) / st[i]) + 1);
    return { g: { inS, out, k, s: st, d, p }, out };
  };

  it('builder: implicit GEMM on each variant with a fused bias and activation; depthwise fused too', async () => {
    const r = rng(34);
    const cases: [GemmVariant, Activation | undefined][] = [['reg', { kind: 'Relu' }], ['shared', undefined]];
    for (const [variant, act] of cases) {
      const { g, out } = geom([1, 7, 9], [1, 3, 2], [1, 2, 1], [1, 1, 2], [0, 1, 1]);
      const s = { n: 2, c: 4, m: 6, group: 2, g };
      await check(s, out.slice(1), act, (x, w, b) => convProgram(ctx, x, w, s, out.slice(1), { bias: b, activation: act }, variant), r);
    }
    const { g, out } = geom([1, 6, 5], [1, 3, 3], [1, 1, 2], [1, 1, 1], [0, 1, 1]);
    const s = { n: 1, c: 3, m: 6, group: 3, g };
    await check(s, out.slice(1), { kind: 'HardSwish' }, (x, w, b) => depthwiseProgram(x, w, s, out.slice(1), { bias: b, activation: { kind: 'HardSwish' } }), r);
  });
});
