import { afterAll, beforeAll, expect, it } from 'vitest';
import { float, GraphBuilder } from '../../loaders/builder.js';
import { NdArray } from '../../engine/tensor.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import '../../ops/webgpu/index.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type R = ReturnType<typeof rng>;

interface Case {
  B: number; Hq: number; Hkv: number; S: number; L: number; D: number; Dv: number; packed?: boolean;
  past?: number; mask?: { shape: number[]; bool: boolean }; nonpad?: number[]; scores?: number; attrs?: Record<string, unknown>; opset?: number;
}

/** An Attention node whose every input is a graph input; all four outputs when past or scores are asked for. */
function attentionModel(c: Case, r: R) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const input = (name: string, value: NdArray) => { feeds[name] = value; return g.input(name, value.dtype, [...value.shape]); };
  const heads = (h: number, s: number, d: number) => (c.packed ? [c.B, s, h * d] : [c.B, h, s, d]);
  const ins = [
    input('q', randomF32(heads(c.Hq, c.S, c.D), r)), input('k', randomF32(heads(c.Hkv, c.L, c.D), r)), input('v', randomF32(heads(c.Hkv, c.L, c.Dv), r)),
    c.mask ? input('mask', c.mask.bool
      ? new NdArray('bool', c.mask.shape, Uint8Array.from(randomF32(c.mask.shape, r).data, (x) => (x > -0.5 ? 1 : 0)))
      : randomF32(c.mask.shape, r, -2, 1)) : '',
    c.past ? input('pk', randomF32([c.B, c.Hkv, c.past, c.D], r)) : '', c.past ? input('pv', randomF32([c.B, c.Hkv, c.past, c.Dv], r)) : '',
    c.nonpad ? input('nonpad', new NdArray('int64', [c.B], BigInt64Array.from(c.nonpad.map(BigInt)))) : '',
  ];
  while (ins[ins.length - 1] === '') ins.pop();
  const outs = c.past || c.scores !== undefined ? 4 : 1;
  const attrs = { ...(c.packed ? { q_num_heads: c.Hq, kv_num_heads: c.Hkv } : {}), ...(c.scores !== undefined ? { qk_matmul_output_mode: c.scores } : {}), ...c.attrs };
  const names = g.node('Attention', ins, attrs, outs);
  names.forEach((n) => g.output(n, null));
  return { bytes: g.model({ opset: c.opset ?? 23 }), feeds };
}

async function check(cases: Case[], seed: number) {
  const r = rng(seed);
  for (const c of cases) {
    const { bytes, feeds } = attentionModel(c, r);
    await expectGpuMatchesCpu(bytes, feeds, { rtol: 2e-3, atol: 2e-5 });
  }
}

/** Runs `fn` with the adapter taken for a hardware GPU, so the shared-memory variants run here too. */
async function asHardware(fn: () => Promise<void>) {
  const ctx = await acquireGpu(), was = ctx.software;
  ctx.software = false;
  try { await fn(); } finally { ctx.software = was; releaseGpu(ctx); }
}

const CASES: Case[] = [
  { B: 2, Hq: 4, Hkv: 2, S: 5, L: 7, D: 8, Dv: 6, attrs: { is_causal: 1 } },
  { B: 1, Hq: 2, Hkv: 2, S: 3, L: 70, D: 5, Dv: 40, mask: { shape: [3, 70], bool: false }, scores: 3, attrs: { scale: float(0.3), softcap: float(2) } },
  { B: 2, Hq: 3, Hkv: 1, S: 4, L: 3, D: 4, Dv: 4, past: 5, mask: { shape: [2, 1, 4, 8], bool: true }, scores: 2, attrs: { is_causal: 1 } },
  { B: 2, Hq: 4, Hkv: 2, S: 3, L: 6, D: 8, Dv: 8, packed: true, nonpad: [4, 1], attrs: { is_causal: 1 }, scores: 0 },
  { B: 1, Hq: 2, Hkv: 1, S: 6, L: 6, D: 4, Dv: 3, packed: true, mask: { shape: [1, 1, 6, 4], bool: false }, scores: 1, attrs: { softcap: float(1.5), softmax_precision: 16 } },
  { B: 1, Hq: 2, Hkv: 2, S: 5, L: 9, D: 4, Dv: 4, opset: 25, attrs: { left_window_size: 2, right_window_size: 1 }, scores: 3 },
];

describeGpu('WebGPU Attention matches the CPU backend', () => {
  // One device for the whole file, so each pipeline compiles once (sessions share the device's cache).
  let gpuCtx: GpuContext | undefined;
  beforeAll(async () => { gpuCtx = await acquireGpu(); });
  afterAll(() => { if (gpuCtx) releaseGpu(gpuCtx); });
  it('per-row kernel: GQA, causal, masks, past/present, nonpad, softcap, precision, windows, score modes', () => check(CASES, 41));
  // Two cases cover the tile kernel's code paths (each pipeline compiles for seconds on lavapipe).
  it('workgroup-tiled kernel (hardware path), including a row longer than a tile', () => asHardware(() => check([CASES[1], CASES[4]], 42)));
  it('RotaryEmbedding: 4-D and packed 3-D, interleaved, partial rotary dim, with and without position ids', async () => {
    const r = rng(43);
    for (const [packed, interleaved, rot, pos] of [[false, false, 0, true], [true, true, 4, true], [false, true, 0, false], [true, false, 6, false]] as [boolean, boolean, number, boolean][]) {
      const B = 2, H = 3, S = 4, D = 8, half = (rot || D) / 2, maxPos = 10, g = new GraphBuilder();
      const feeds: Record<string, NdArray> = { x: randomF32(packed ? [B, S, H * D] : [B, H, S, D], r), cos: randomF32(pos ? [maxPos, half] : [B, S, half], r), sin: randomF32(pos ? [maxPos, half] : [B, S, half], r) };
      if (pos) feeds.pos = new NdArray('int64', [B, S], BigInt64Array.from({ length: B * S }, () => BigInt(r.int(0, maxPos - 1))));
      const ins = Object.entries(feeds).map(([n, v]) => g.input(n, v.dtype, [...v.shape]));
      g.output(g.node('RotaryEmbedding', ins, { interleaved: interleaved ? 1 : 0, ...(rot ? { rotary_embedding_dim: rot } : {}), ...(packed ? { num_heads: H } : {}) })[0], null);
      await expectGpuMatchesCpu(g.model({ opset: 23 }), feeds);
    }
  });
});
