// GPU lowerings of Attention (opset 23+: 3-D and 4-D, GQA, causal and sliding windows, bool or additive
// mask, nonpad_kv_seqlen, past/present KV, softcap, softmax_precision, every qk_matmul_output mode) and
// RotaryEmbedding; and `fuseAttention`, which turns the unfused MatMul/Softmax/MatMul pattern into
// Attention steps so it runs as one fused kernel.
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

// ---- Fusion of the unfused pattern ----

/** What the matcher may know about a value: its type (for ranks and batch/head dims) and constant value. */
export interface FusionInfo {
  typeOf(name: string): TypeInfo | undefined;
  constantOf(name: string): NdArray | undefined;
}

/** Info from a graph: declared inputs, value_info, initializers and Constant steps, with `inferred` types
 *  (engine/infer.ts) taking precedence where given: intermediate shapes are rarely declared. */
export function graphInfo(graph: Graph, steps: readonly Step[], inferred?: ReadonlyMap<string, TypeInfo>): FusionInfo {
  const constants = new Map<string, NdArray>();
  for (const [n, v] of graph.initializers) if (v instanceof NdArray) constants.set(n, v);
  for (const s of steps) {
    const v = s.node.opType === 'Constant' ? s.node.attrs.get('value')?.value : undefined;
    if (v instanceof NdArray) constants.set(s.node.outputs[0], v);
  }
  const types = new Map<string, TypeInfo>(graph.valueInfo);
  for (const i of graph.inputs) if (i.type) types.set(i.name, i.type);
  for (const [n, v] of constants) types.set(n, { kind: 'tensor', dtype: v.dtype, shape: [...v.shape] });
  for (const [n, t] of inferred ?? []) types.set(n, t);
  return { typeOf: (n) => types.get(n), constantOf: (n) => constants.get(n) };
}

const shapeOf = (info: FusionInfo, n: string): Dim[] | undefined => { const t = info.typeOf(n); return t?.kind === 'tensor' ? t.shape : undefined; };
const sameDim = (a: Dim | undefined, b: Dim | undefined) => a !== undefined && a !== null && a === b;
const scalarOf = (info: FusionInfo, n: string) => { const c = info.constantOf(n); return c && c.size === 1 ? c.numbers()[0] : undefined; };

/**
 * Replaces every MatMul(Q, Transpose(K)) -> [Div|Mul by a constant scalar] -> [Add(mask)] -> Softmax(last
 * axis) -> MatMul(., V) chain whose intermediates have no other reader by one Attention step (opset 23)
 * at the final MatMul's place. Q, K and V must be 4-D [B, H, S, D] (K's heads dividing Q's) or 3-D
 * [N, S, D] with known shapes, so that the Attention op's rules match MatMul's broadcasting. The fused
 * steps have empty `release` lists and the kept ones may name values a removed step used to free last:
 * compute liveness after fusing.
 */
export function fuseAttention(steps: readonly Step[], graphOutputs: ReadonlySet<string>, info: FusionInfo): Step[] {
  const producer = new Map<string, Step>(), readers = new Map<string, number>();
  for (const s of steps) {
    for (const o of s.node.outputs) if (o) producer.set(o, s);
    for (const n of [...s.node.inputs, ...s.implicit]) if (n) readers.set(n, (readers.get(n) ?? 0) + 1);
  }
  /** The step making `name` if it is an `op` whose output only `name`'s one reader uses. */
  const sole = (name: string, op: string) => {
    const s = producer.get(name);
    return s && s.node.opType === op && s.node.domain === '' && readers.get(name) === 1 && !graphOutputs.has(name) ? s : undefined;
  };
  const removed = new Set<Step>(), fused = new Map<Step, Step>();
  for (const last of steps) {
    const m = last.node.opType === 'MatMul' && last.node.domain === '' ? matchAt(last, sole, info) : undefined;
    if (!m || m.chain.some((s) => removed.has(s))) continue;
    m.chain.forEach((s) => removed.add(s));
    fused.set(last, m.step);
  }
  return steps.filter((s) => !removed.has(s) || fused.has(s)).map((s) => fused.get(s) ?? s);
}

type Sole = (name: string, op: string) => Step | undefined;

function matchAt(last: Step, sole: Sole, info: FusionInfo): { chain: Step[]; step: Step } | undefined {
  const [probs, vName] = last.node.inputs;
  const softmax = sole(probs, 'Softmax');
  if (!softmax) return undefined;
  let cur = softmax.node.inputs[0], mask: string | undefined, scale = 1;
  const chain: Step[] = [last, softmax];
  const add = sole(cur, 'Add');
  if (add) {
    // The scores side is the MatMul, directly or through the scaling (a mask may be a Mul too).
    const scores = (n: string) => !!sole(n, 'MatMul') || [sole(n, 'Div'), sole(n, 'Mul')].some((s) => s?.node.inputs.some((i) => !!sole(i, 'MatMul')));
    const [a, b] = add.node.inputs;
    [cur, mask] = scores(a) ? [a, b] : [b, a];
    chain.push(add);
  }
  const div = sole(cur, 'Div'), mul = div ? undefined : sole(cur, 'Mul');
  if (div || mul) {
    const s = (div ?? mul)!, [a, b] = s.node.inputs, c = scalarOf(info, b) ?? (mul ? scalarOf(info, a) : undefined);
    if (c === undefined || (div && c === 0)) return undefined;
    scale = div ? 1 / c : c;
    cur = div || scalarOf(info, b) !== undefined ? a : b;
    chain.push(s);
  }
  const qk = sole(cur, 'MatMul');
  const tr = qk && sole(qk.node.inputs[1], 'Transpose');
  if (!qk || !tr) return undefined;
  chain.push(qk, tr);
  const [qName] = qk.node.inputs, kName = tr.node.inputs[0];
  const rank = swapsLastTwo(tr.node.attrs.get('perm'));
  if (!rank || !softmaxOnLast(softmax, rank) || !shapesFit(info, qName, kName, vName, mask, rank)) return undefined;
  return { chain, step: attentionStep(last, [qName, kName, vName, mask], scale, rank) };
}

/** The rank of a Transpose that swaps only the last two axes (3 or 4), else undefined. */
function swapsLastTwo(perm: Attr | undefined): number | undefined {
  const p = perm?.value as number[] | undefined;
  if (!p || (p.length !== 3 && p.length !== 4)) return undefined;
  const r = p.length;
  return p.every((v, i) => v === (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i)) ? r : undefined;
}

/** Softmax over the last axis: axis -1 or rank-1 (before opset 13 the default, 1, is not the last axis). */
function softmaxOnLast(s: Step, rank: number): boolean {
  const axis = (s.node.attrs.get('axis')?.value as number | undefined) ?? (s.opset >= 13 ? -1 : 1);
  return axis === -1 || axis === rank - 1;
}

/** Q, K, V of the pattern's rank with equal batch (and for 4-D, K/V heads equal and dividing Q's); a
 *  mask that Attention reads the way Add broadcasts it: every key (its last dim is T) and no axis the
 *  scores lack. */
function shapesFit(info: FusionInfo, q: string, k: string, v: string, mask: string | undefined, rank: number): boolean {
  const [qs, ks, vs] = [q, k, v].map((n) => shapeOf(info, n));
  if (!qs || !ks || !vs || qs.length !== rank || ks.length !== rank || vs.length !== rank) return false;
  if (!sameDim(qs[0], ks[0]) || !sameDim(ks[0], vs[0]) || !sameDim(ks[rank - 2], vs[rank - 2])) return false;
  if (rank === 4 && (!sameDim(ks[1], vs[1]) || typeof qs[1] !== 'number' || typeof ks[1] !== 'number' || qs[1] % ks[1])) return false;
  if (!mask) return true;
  // 3-D patterns become one-head Attention ([N, S, D] as [B=N, 1, S, D]): a mask may not have an N axis.
  const ms = shapeOf(info, mask), scores = [...qs.slice(0, rank - 1), ks[rank - 2]];
  if (!ms || ms.length > (rank === 4 ? 4 : 2) || !sameDim(ms[ms.length - 1], scores[rank - 1])) return false;
  return ms.every((d, i) => d === 1 || sameDim(d, scores[rank - ms.length + i]));
}

function attentionStep(at: Step, inputs: (string | undefined)[], scale: number, rank: number): Step {
  const attrs = new Map<string, Attr>([['scale', { name: 'scale', type: 'float', value: scale }]]);
  if (rank === 3) for (const n of ['q_num_heads', 'kv_num_heads']) attrs.set(n, { name: n, type: 'int', value: 1 });
  const node: Node = { name: `${at.node.name}/fused_attention`, opType: 'Attention', domain: '', inputs: inputs.filter((n): n is string => !!n), outputs: [...at.node.outputs], attrs };
  const def = lookup('', 'Attention', 23)!;
  return { node, def, attrs: def.attrs?.(new Attrs(node), 23), opset: 23, subgraphs: new Map(), implicit: [], release: [] };
}
