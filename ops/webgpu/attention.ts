// GPU lowerings of Attention (opset 23+: 3-D and 4-D, GQA, causal and sliding windows, bool or additive
// mask, nonpad_kv_seqlen, past/present KV, softcap, softmax_precision, every qk_matmul_output mode) and
// RotaryEmbedding. The unfused MatMul/Softmax/MatMul pattern is fused by attention-fusion.ts.
import type { DType } from '../../engine/dtype.js';
import type { Attr, Dim, Graph, Node, TypeInfo } from '../../engine/graph.js';
import type { Step } from '../../engine/plan.js';
import { NdArray } from '../../engine/tensor.js';
import { appendKv, attention, packed3, rotary, split4, TILE_MAX_DIM, type AttentionSpec, type HeadLayout } from '../../kernels/webgpu/attention.js';
import { GpuArray } from '../../kernels/webgpu/runner.js';
import { checkQkv } from '../attention.js';
import { Attrs, fail, gpuAt, lookup, registerGpu, type GpuCtx } from '../registry.js';

type Ins = (GpuArray | NdArray | undefined)[];
const FLOATS = new Set<DType>(['float32', 'float16']);
const optGpu = (ins: Ins, i: number) => (ins[i] instanceof GpuArray ? (ins[i] as GpuArray) : undefined);
const wants = (ctx: GpuCtx, i: number) => !!ctx.node.outputs[i];

function expectShape(t: GpuArray, want: readonly number[], what: string, ctx: GpuCtx): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) fail(ctx, `${what} should have shape [${want}], got [${t.shape}]`);
}

/** Head split of a 4-D [B, H, S, D] input, or of a 3-D [B, S, H*D] one given its head count. */
function headsOf(t: GpuArray, what: string, heads: number | undefined, attr: string, ctx: GpuCtx) {
  const [batch, a, b, c] = t.shape;
  if (t.shape.length === 4) return { batch, heads: a, seq: b, dim: c, layout: split4(a, b, c) };
  if (t.shape.length !== 3) fail(ctx, `${what} should be 3-D or 4-D, got shape [${t.shape}]`);
  if (!heads || heads < 1) fail(ctx, `${what} is 3-D, so attribute '${attr}' is required (a positive head count)`);
  if (b % heads) fail(ctx, `${what} hidden size ${b} is not a multiple of ${attr}=${heads}`);
  return { batch, heads, seq: a, dim: b / heads, layout: packed3(heads, a, b / heads) };
}

// ---- Attention ----

/** The fields of ops/attention.ts's AttnAttrs this lowering reads. */
interface AttnAttrs { causal: boolean; qHeads?: number; kvHeads?: number; mode: number; scale?: number; softcap: number; precision?: DType; left: number; right: number }

const MASK_DTYPES = new Set<DType | undefined>([undefined, 'float32', 'float16', 'bool']);
const ROUNDING: Partial<Record<DType, AttentionSpec['round']>> = { float16: 'f16', bfloat16: 'bf16' };

/** The mask right-aligned to [B, Hq, S, width]: broadcast dims get stride 0; width may fall short of T. */
function maskOf(m: GpuArray, full: number[], T: number, ctx: GpuCtx): AttentionSpec['mask'] {
  const r = m.shape.length;
  if (r < 1 || r > 4) fail(ctx, `input 3 (attn_mask) should have rank 1 to 4, got shape [${m.shape}]`);
  const dims = [...new Array<number>(4 - r).fill(1), ...m.shape], width = dims[3];
  if (width > T || dims.slice(0, 3).some((d, i) => d !== 1 && d !== full[i])) {
    fail(ctx, `input 3 (attn_mask) of shape [${m.shape}] does not broadcast to [${full},${T}] (its last dim may be shorter than ${T})`);
  }
  const strides: [number, number, number] = [dims[1] * dims[2] * width, dims[2] * width, width];
  dims.slice(0, 3).forEach((d, i) => { if (d === 1) strides[i] = 0; });
  return { a: m, width, strides };
}

function runAttention(ins: Ins, at: AttnAttrs, ctx: GpuCtx): GpuArray[] {
  const q = gpuAt(ins, 0, ctx), k = gpuAt(ins, 1, ctx), v = gpuAt(ins, 2, ctx), gpu = ctx.gpu;
  if (!FLOATS.has(q.dtype) || !FLOATS.has(v.dtype)) fail(ctx, `Q and V should be float tensors, got ${q.dtype} and ${v.dtype}`);
  if (k.dtype !== q.dtype) fail(ctx, `input 1 (K) has dtype ${k.dtype}; expected ${q.dtype}, the dtype of Q`);
  const Q = headsOf(q, 'input 0 (Q)', at.qHeads, 'q_num_heads', ctx);
  const Kh = headsOf(k, 'input 1 (K)', at.kvHeads, 'kv_num_heads', ctx), V = headsOf(v, 'input 2 (V)', at.kvHeads, 'kv_num_heads', ctx);
  const B = Q.batch, Hq = Q.heads, Hkv = Kh.heads, S = Q.seq, L = Kh.seq, D = Q.dim, Dv = V.dim;
  checkQkv(Q, Kh, V, ctx);

  const pk = optGpu(ins, 4), pv = optGpu(ins, 5);
  if (!pk !== !pv) fail(ctx, 'past_key and past_value should be given together');
  const P = pk ? pk.shape[2] : 0, T = P + L;
  if (pk && pv) {
    expectShape(pk, [B, Hkv, P, D], 'input 4 (past_key)', ctx);
    expectShape(pv, [B, Hkv, P, Dv], 'input 5 (past_value)', ctx);
    if (pk.dtype !== q.dtype || pv.dtype !== v.dtype) fail(ctx, `past_key and past_value should have the dtypes of Q and V, got ${pk.dtype} and ${pv.dtype}`);
  }
  // The cache concatenates past and new rows; without a past it is only materialised when asked for.
  const cache = !!pk || wants(ctx, 1) || wants(ctx, 2);
  const present = (past: GpuArray | undefined, x: GpuArray, l: HeadLayout, d: number) =>
    gpu.run(appendKv(past, x, l, { batch: B, heads: Hkv, past: P, len: L, dim: d }))[0];
  const pK = cache ? present(pk, k, Kh.layout, D) : undefined, pV = cache ? present(pv, v, V.layout, Dv) : undefined;

  const valid = optGpu(ins, 6);
  if (valid && (valid.dtype !== 'int64' || valid.shape.length !== 1 || valid.shape[0] !== B)) fail(ctx, `input 6 (nonpad_kv_seqlen) should be int64 of shape [${B}], got ${valid.dtype} [${valid.shape}]`);
  const m = optGpu(ins, 3), scoresMode = wants(ctx, 3) ? at.mode : undefined;
  const spec: AttentionSpec = {
    batch: B, qHeads: Hq, kvHeads: Hkv, qLen: S, kvLen: T, headDim: D, vDim: Dv,
    q, ql: Q.layout, k: pK ?? k, kl: pK ? split4(Hkv, T, D) : Kh.layout, v: pV ?? v, vl: pV ? split4(Hkv, T, Dv) : V.layout,
    yShape: q.shape.length === 4 ? [B, Hq, S, Dv] : [B, S, Hq * Dv], yl: (q.shape.length === 4 ? split4 : packed3)(Hq, S, Dv),
    scale: at.scale ?? 1 / Math.sqrt(D), softcap: at.softcap, causal: at.causal, left: at.left, right: at.right,
    past: pk ? P : undefined, valid, mask: m && maskOf(m, [B, Hq, S], T, ctx),
    round: ROUNDING[at.precision ?? q.dtype] ?? 'none', scoresMode,
    // An explicit softmax_precision asks for rounded probabilities; float16 inputs without one get rounded
    // scores and the one-pass softmax, which agrees to float16's own precision.
    exactProbs: at.precision !== undefined && ROUNDING[at.precision] !== undefined,
    // Workgroup tiles need a parallel GPU; software adapters run one query row per invocation.
    variant: !gpu.ctx.software && Dv <= TILE_MAX_DIM ? 'tile' : 'row',
  };
  const [y, ...rest] = gpu.run(attention(spec));
  if (spec.variant === 'row') gpu.release(rest.pop()!);
  const outs = [y], scores = rest[0];
  if (pK && pV) {
    if (wants(ctx, 1) || wants(ctx, 2)) { outs[1] = pK; outs[2] = pV; } else { gpu.release(pK); gpu.release(pV); }
  }
  if (scores) outs[3] = scores;
  return outs;
}

registerGpu({
  op: 'Attention', since: 23, run: runAttention,
  reject: (d) => (MASK_DTYPES.has(d[3]) ? undefined : `attn_mask of dtype ${d[3]} is not supported on the GPU (float32, float16 or bool)`),
});

// ---- RotaryEmbedding ----

interface RopeAttrs { interleaved: boolean; heads?: number; rotDim: number }

registerGpu({
  op: 'RotaryEmbedding', since: 23,
  run: (ins, at: RopeAttrs, ctx) => {
    const x = gpuAt(ins, 0, ctx), cos = gpuAt(ins, 1, ctx), sin = gpuAt(ins, 2, ctx), pos = optGpu(ins, 3);
    if (!FLOATS.has(x.dtype) || cos.dtype !== x.dtype || sin.dtype !== x.dtype) fail(ctx, `X, cos_cache and sin_cache should share a float dtype, got ${x.dtype}, ${cos.dtype} and ${sin.dtype}`);
    const h = headsOf(x, 'input 0 (X)', at.heads, 'num_heads', ctx), B = h.batch, S = h.seq, rotDim = at.rotDim || h.dim, half = rotDim / 2;
    if (rotDim % 2 || rotDim > h.dim) fail(ctx, `rotary_embedding_dim ${rotDim} should be even and at most the head size ${h.dim}`);
    if (pos) {
      if (pos.dtype !== 'int64') fail(ctx, `input 3 (position_ids) should be int64, got ${pos.dtype}`);
      expectShape(pos, [B, S], 'input 3 (position_ids)', ctx);
      expectShape(cos, [cos.shape[0], half], 'input 1 (cos_cache)', ctx);
    } else expectShape(cos, [B, S, half], 'input 1 (cos_cache) without position_ids', ctx);
    expectShape(sin, cos.shape, 'input 2 (sin_cache)', ctx);
    return ctx.gpu.run(rotary({
      x, cos, sin, pos, batch: B, heads: h.heads, seq: S, headDim: h.dim, rotDim, interleaved: at.interleaved, packed: x.shape.length === 3,
    }));
  },
});
