// Transformer-block ops: Attention (3-D packed or 4-D heads, GQA, causal, windowed and padded masks, KV
// cache, softcap), RotaryEmbedding, LinearAttention, CausalConvWithState and SwiGLU.
import { isBigInt, type DType } from '../engine/dtype.js';
import type { Dim } from '../engine/graph.js';
import { NdArray, type Value } from '../engine/tensor.js';
import * as K from '../kernels/cpu/attention.js';
import { bf16ToNumber, f16ToNumber, numberToBf16, numberToF16 } from '../kernels/cpu/minifloat.js';
import { FLOAT, typedInput } from './elementwise.js';
import { dtypeOf, sameAsInput, shapeOf, tensorType } from './infer-rules.js';
import { type Attrs, fail, optTensor, register, tensorAt, type RunCtx } from './registry.js';

type Ins = (Value | undefined)[];
type Floats = Float32Array | Float64Array;

const optInt = (a: Attrs, name: string) => (a.has(name) ? a.int(name) : undefined);
const wants = (ctx: RunCtx, i: number) => !!ctx.node.outputs[i];
const arith = (f: (x: number, y: number) => number) => (x: Dim | undefined, y: Dim | undefined): Dim =>
  (typeof x === 'number' && typeof y === 'number' ? f(x, y) : null);
const mul = arith((x, y) => x * y), div = arith((x, y) => x / y), add = arith((x, y) => x + y);

/** Optional input i checked to share `ref`'s dtype. */
function optLike(ins: Ins, i: number, name: string, ref: NdArray, refName: string, ctx: RunCtx): NdArray | undefined {
  const t = optTensor(ins, i, ctx);
  if (t && t.dtype !== ref.dtype) fail(ctx, `input ${i} (${name}) has dtype ${t.dtype}; expected ${ref.dtype}, the dtype of ${refName}`);
  return t;
}
const like = (ins: Ins, i: number, name: string, ref: NdArray, refName: string, ctx: RunCtx): NdArray =>
  optLike(ins, i, name, ref, refName, ctx) ?? tensorAt(ins, i, ctx);

function expectShape(t: NdArray, want: readonly number[], what: string, ctx: RunCtx): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) fail(ctx, `${what} should have shape [${want}], got [${t.shape}]`);
}

/** A head-split view of a 4-D [B, H, S, D] input, or of a 3-D [B, S, H*D] one given its head count. */
function headsOf(t: NdArray, what: string, heads: number | undefined, attr: string, ctx: RunCtx) {
  const [batch, a, b, c] = t.shape;
  if (t.shape.length === 4) return { batch, heads: a, seq: b, dim: c, view: K.split4(t.data as Floats, a, b, c) };
  if (t.shape.length !== 3) fail(ctx, `${what} should be 3-D or 4-D, got shape [${t.shape}]`);
  if (!heads || heads < 1) fail(ctx, `${what} is 3-D, so attribute '${attr}' is required (a positive head count)`);
  if (b % heads) fail(ctx, `${what} hidden size ${b} is not a multiple of ${attr}=${heads}`);
  return { batch, heads, seq: a, dim: b / heads, view: K.packed3(t.data as Floats, heads, a, b / heads) };
}

// ---- Attention ----

const PRECISIONS: Record<number, DType> = { 1: 'float32', 10: 'float16', 11: 'float64', 16: 'bfloat16' };
const ROUND: Partial<Record<DType, (x: number) => number>> = {
  float32: Math.fround, float16: (x) => f16ToNumber(numberToF16(x)), bfloat16: (x) => bf16ToNumber(numberToBf16(x)),
};

type HeadDims = { batch: number; heads: number; seq: number; dim: number };

/** Q, K and V (as split into heads) agree: batch, K/V heads and length, Q/K head size, K heads dividing Q's. */
export function checkQkv(Q: HeadDims, Kh: HeadDims, V: HeadDims, ctx: { node: RunCtx['node'] }): void {
  const B = Q.batch, Hq = Q.heads, Hkv = Kh.heads, L = Kh.seq, D = Q.dim;
  if (Kh.batch !== B || V.batch !== B) fail(ctx, `Q, K and V should share the batch size, got ${B}, ${Kh.batch} and ${V.batch}`);
  if (V.heads !== Hkv || V.seq !== L) fail(ctx, `K and V should share heads and sequence length, got ${Hkv}x${L} and ${V.heads}x${V.seq}`);
  if (Kh.dim !== D) fail(ctx, `K head size ${Kh.dim} should equal Q head size ${D}`);
  if (Hq % Hkv || (Hkv === 0 && Hq > 0)) fail(ctx, `q_num_heads ${Hq} should be a multiple of kv_num_heads ${Hkv}`);
}

interface AttnAttrs {
  causal: boolean; qHeads?: number; kvHeads?: number; mode: number; scale?: number; softcap: number;
  precision?: DType; left: number; right: number;
}

function attnAttrs(a: Attrs, opset: number): AttnAttrs {
  const mode = a.int('qk_matmul_output_mode', 0), code = optInt(a, 'softmax_precision');
  if (mode < 0 || mode > 3) throw a.error(`qk_matmul_output_mode should be 0, 1, 2 or 3, got ${mode}`);
  if (code !== undefined && !PRECISIONS[code]) throw a.error(`softmax_precision should be 1 (float), 10 (float16), 11 (double) or 16 (bfloat16), got ${code}`);
  return {
    causal: a.int('is_causal', 0) !== 0, qHeads: optInt(a, 'q_num_heads'), kvHeads: optInt(a, 'kv_num_heads'), mode,
    scale: a.has('scale') ? a.float('scale') : undefined, softcap: a.float('softcap', 0),
    precision: code === undefined ? undefined : PRECISIONS[code],
    // Sliding windows arrived in opset 25.
    left: opset >= 25 ? a.int('left_window_size', -1) : -1, right: opset >= 25 ? a.int('right_window_size', -1) : -1,
  };
}

/** The mask right-aligned to [B, Hq, S, width]: broadcast dims get stride 0; width may fall short of T. */
function maskOf(m: NdArray, full: number[], T: number, ctx: RunCtx): K.Masking['mask'] {
  const r = m.shape.length;
  if (r < 1 || r > 4) fail(ctx, `input 3 (attn_mask) should have rank 1 to 4, got shape [${m.shape}]`);
  const dims = [...new Array<number>(4 - r).fill(1), ...m.shape];
  const width = dims[3];
  if (width > T || dims.slice(0, 3).some((d, i) => d !== 1 && d !== full[i])) {
    fail(ctx, `input 3 (attn_mask) of shape [${m.shape}] does not broadcast to [${full},${T}] (its last dim may be shorter than ${T})`);
  }
  const strides: [number, number, number] = [dims[1] * dims[2] * width, dims[2] * width, width];
  dims.slice(0, 3).forEach((d, i) => { if (d === 1) strides[i] = 0; });
  const data = isBigInt(m.dtype) ? Float64Array.from(m.numbers()) : (m.data as Floats);
  return { data, bool: m.dtype === 'bool', width, strides };
}

register({
  op: 'Attention', since: 23, attrs: attnAttrs,
  infer: (ins, at: AttnAttrs) => {
    const [q, k, v] = [0, 1, 2].map((i) => shapeOf(ins[i])), past = shapeOf(ins[4]), dt = (i: number) => dtypeOf(ins[i]);
    if (!q || !k || !v) return [tensorType(dt(0)), tensorType(dt(1)), tensorType(dt(2)), tensorType(dt(0))];
    const qH = q.length === 4 ? q[1] : at.qHeads ?? null, kvH = k.length === 4 ? k[1] : at.kvHeads ?? null;
    const kDim = k.length === 4 ? k[3] : div(k[2], kvH), vDim = v.length === 4 ? v[3] : div(v[2], kvH);
    const S = q.length === 4 ? q[2] : q[1], total = add(past ? past[2] : 0, k.length === 4 ? k[2] : k[1]);
    return [
      tensorType(dt(0), q.length === 4 ? [q[0], qH, S, vDim] : [q[0], S, mul(qH, vDim)]),
      tensorType(dt(1), [q[0], kvH, total, kDim]), tensorType(dt(2), [q[0], kvH, total, vDim]),
      tensorType(dt(0), [q[0], qH, S, total]),
    ];
  },
  run: (ins, at: AttnAttrs, ctx) => {
    const q = typedInput(ins, 0, FLOAT, ctx), k = like(ins, 1, 'K', q, 'Q', ctx), v = typedInput(ins, 2, FLOAT, ctx);
    const Q = headsOf(q, 'input 0 (Q)', at.qHeads, 'q_num_heads', ctx);
    const Kh = headsOf(k, 'input 1 (K)', at.kvHeads, 'kv_num_heads', ctx), V = headsOf(v, 'input 2 (V)', at.kvHeads, 'kv_num_heads', ctx);
    const B = Q.batch, Hq = Q.heads, Hkv = Kh.heads, S = Q.seq, L = Kh.seq, D = Q.dim, Dv = V.dim;
    checkQkv(Q, Kh, V, ctx);

    const pk = optLike(ins, 4, 'past_key', q, 'Q', ctx), pv = optLike(ins, 5, 'past_value', v, 'V', ctx);
    if (!pk !== !pv) fail(ctx, 'past_key and past_value should be given together');
    const P = pk ? pk.shape[2] : 0, T = P + L;
    if (pk) { expectShape(pk, [B, Hkv, P, D], 'input 4 (past_key)', ctx); expectShape(pv!, [B, Hkv, P, Dv], 'input 5 (past_value)', ctx); }
    // The cache concatenates past and new rows; without a past it is only materialised when asked for.
    const present = (t: NdArray, past: NdArray | undefined, h: K.Heads, d: number) => {
      const out = NdArray.zeros(t.dtype, [B, Hkv, T, d]);
      K.appendRows(past?.data as Floats | undefined, P, h, L, B, Hkv, d, out.data as Floats);
      return out;
    };
    const cache = pk || wants(ctx, 1) || wants(ctx, 2);
    const presentK = cache ? present(k, pk, Kh.view, D) : undefined, presentV = cache ? present(v, pv, V.view, Dv) : undefined;

    const np = optTensor(ins, 6, ctx);
    if (np && (np.dtype !== 'int64' || np.shape.length !== 1 || np.shape[0] !== B)) fail(ctx, `input 6 (nonpad_kv_seqlen) should be int64 of shape [${B}], got ${np.dtype} [${np.shape}]`);
    const valid = np?.numbers();
    if (valid?.some((n) => n < 0 || n > T)) fail(ctx, `input 6 (nonpad_kv_seqlen) values should lie in [0, ${T}], got [${valid}]`);
    const m = optTensor(ins, 3, ctx);
    const masking: K.Masking = {
      causal: at.causal, left: at.left, right: at.right, valid,
      // Keys already cached before this query block: the past length, or the valid length minus the block.
      offset: Array.from({ length: B }, (_, b) => (pk ? P : valid ? valid[b] - S : 0)),
      mask: m && maskOf(m, [B, Hq, S], T, ctx),
    };

    const y = NdArray.zeros(q.dtype, q.shape.length === 4 ? [B, Hq, S, Dv] : [B, S, Hq * Dv]);
    const qk = wants(ctx, 3) ? NdArray.zeros(q.dtype, [B, Hq, S, T]) : undefined;
    K.attention({
      batch: B, qHeads: Hq, kvHeads: Hkv, qLen: S, kvLen: T, headDim: D, vDim: Dv,
      q: Q.view, k: presentK ? K.split4(presentK.data as Floats, Hkv, T, D) : Kh.view,
      v: presentV ? K.split4(presentV.data as Floats, Hkv, T, Dv) : V.view,
      y: (q.shape.length === 4 ? K.split4 : K.packed3)(y.data as Floats, Hq, S, Dv),
      scale: at.scale ?? 1 / Math.sqrt(D), softcap: at.softcap, masking,
      round: ROUND[at.precision ?? q.dtype], scores: qk && { out: qk.data as Floats, mode: at.mode },
    });
    const outs: Value[] = [y];
    if (presentK) { outs[1] = presentK; outs[2] = presentV!; }
    if (qk) outs[3] = qk;
    return outs;
  },
});

// ---- RotaryEmbedding ----

interface RopeAttrs { interleaved: boolean; heads?: number; rotDim: number }

register({
  op: 'RotaryEmbedding', since: 23, infer: sameAsInput,
  attrs: (a): RopeAttrs => ({ interleaved: a.int('interleaved', 0) !== 0, heads: optInt(a, 'num_heads'), rotDim: a.int('rotary_embedding_dim', 0) }),
  run: (ins, at: RopeAttrs, ctx) => {
    const x = typedInput(ins, 0, FLOAT, ctx), cos = like(ins, 1, 'cos_cache', x, 'X', ctx), sin = like(ins, 2, 'sin_cache', x, 'X', ctx);
    const pos = optTensor(ins, 3, ctx);
    // A 4-D input is [B, H, S, D]; a 3-D one is [B, S, H*D].
    const h = headsOf(x, 'input 0 (X)', at.heads, 'num_heads', ctx), B = h.batch, S = h.seq, rotDim = at.rotDim || h.dim, half = rotDim / 2;
    if (rotDim % 2 || rotDim > h.dim) fail(ctx, `rotary_embedding_dim ${rotDim} should be even and at most the head size ${h.dim}`);
    let rows: ArrayLike<number>;
    if (pos) {
      const n = cos.shape[0];
      if (pos.dtype !== 'int64') fail(ctx, `input 3 (position_ids) should be int64, got ${pos.dtype}`);
      expectShape(pos, [B, S], 'input 3 (position_ids)', ctx);
      expectShape(cos, [n, half], 'input 1 (cos_cache)', ctx);
      const ids = pos.numbers();
      if (ids.some((p) => p < 0 || p >= n)) fail(ctx, `input 3 (position_ids) values should lie in [0, ${n}), the rows of cos_cache`);
      rows = ids;
    } else {
      expectShape(cos, [B, S, half], 'input 1 (cos_cache) without position_ids', ctx);
      rows = Array.from({ length: B * S }, (_, i) => i);
    }
    expectShape(sin, cos.shape, 'input 2 (sin_cache)', ctx);
    const y = NdArray.zeros(x.dtype, x.shape), view = x.shape.length === 4 ? K.split4 : K.packed3;
    K.rotary({
      batch: B, heads: h.heads, seq: S, headDim: h.dim, rotDim, interleaved: at.interleaved,
      x: h.view, y: view(y.data as Floats, h.heads, S, h.dim), cos: cos.data as Floats, sin: sin.data as Floats, rows,
    });
    return [y];
  },
});

// ---- LinearAttention ----

interface LinAttrs { qHeads: number; kvHeads: number; scale: number; rule: string }
const RULES = ['linear', 'gated', 'delta', 'gated_delta'];

register({
  op: 'LinearAttention', since: 27,
  attrs: (a): LinAttrs => {
    const rule = a.string('update_rule', 'gated_delta');
    if (!RULES.includes(rule)) throw a.error(`update_rule should be one of ${RULES.join(', ')}, got '${rule}'`);
    return { qHeads: a.int('q_num_heads'), kvHeads: a.int('kv_num_heads'), scale: a.float('scale', 0), rule };
  },
  infer: (ins, at: LinAttrs) => {
    const q = shapeOf(ins[0]), v = shapeOf(ins[2]), dk = div(q?.[2], at.qHeads), dv = div(v?.[2], at.kvHeads);
    return [tensorType(dtypeOf(ins[0]), q && [q[0], q[1], mul(at.qHeads, dv)]), tensorType(dtypeOf(ins[3]) ?? dtypeOf(ins[0]), q && [q[0], at.kvHeads, dk, dv])];
  },
  run: (ins, at: LinAttrs, ctx) => {
    const q = typedInput(ins, 0, FLOAT, ctx), k = like(ins, 1, 'key', q, 'query', ctx), v = like(ins, 2, 'value', q, 'query', ctx);
    const { qHeads: Hq, kvHeads: Hkv } = at, [B, T, qw] = q.shape;
    if (q.shape.length !== 3 || Hq < 1 || Hkv < 1 || Hq % Hkv || qw % Hq) {
      fail(ctx, `input 0 (query) should be [B, T, q_num_heads*d_k] with q_num_heads ${Hq} a multiple of kv_num_heads ${Hkv}, got [${q.shape}]`);
    }
    const dk = qw / Hq, dv = v.shape[2] / Hkv;
    expectShape(k, [B, T, Hkv * dk], 'input 1 (key)', ctx);
    if (v.shape.length !== 3 || v.shape[0] !== B || v.shape[1] !== T || !Number.isInteger(dv)) fail(ctx, `input 2 (value) should be [${B}, ${T}, kv_num_heads*d_v], got [${v.shape}]`);
    // The state may be kept in another float type than the activations.
    const past = ins[3] === undefined ? undefined : typedInput(ins, 3, FLOAT, ctx);
    if (past) expectShape(past, [B, Hkv, dk, dv], 'input 3 (past_state)', ctx);
    const gated = at.rule.startsWith('gated'), delta = at.rule.endsWith('delta');
    const decay = gated ? optLike(ins, 4, 'decay', q, 'query', ctx) : undefined, beta = delta ? optLike(ins, 5, 'beta', q, 'query', ctx) : undefined;
    if (gated && !decay) fail(ctx, `input 4 (decay) is required by update_rule '${at.rule}'`);
    if (delta && !beta) fail(ctx, `input 5 (beta) is required by update_rule '${at.rule}'`);
    const last = (t: NdArray, ok: number[], what: string) => {
      if (t.shape.length !== 3 || t.shape[0] !== B || t.shape[1] !== T || !ok.includes(t.shape[2])) fail(ctx, `${what} should be [${B}, ${T}, ${ok.join(' or ')}], got [${t.shape}]`);
      return t.shape[2] === ok[0];
    };
    const state = new Float64Array(B * Hkv * dk * dv);
    if (past) state.set(past.data as Floats);
    const out = NdArray.zeros(q.dtype, [B, T, Hq * dv]), present = NdArray.zeros(past ? past.dtype : q.dtype, [B, Hkv, dk, dv]);
    K.linearAttention({
      batch: B, len: T, qHeads: Hq, kvHeads: Hkv, dk, dv, q: q.data as Floats, k: k.data as Floats, v: v.data as Floats, out: out.data as Floats, state,
      decay: decay && { data: decay.data as Floats, perDim: last(decay, [Hkv * dk, Hkv], 'input 4 (decay)') },
      beta: beta && { data: beta.data as Floats, perHead: last(beta, [Hkv, 1], 'input 5 (beta)') },
      scale: at.scale || 1 / Math.sqrt(dk),
    });
    (present.data as Floats).set(state);
    return [out, present];
  },
});

// ---- CausalConvWithState ----

register({
  op: 'CausalConvWithState', since: 27,
  attrs: (a) => {
    const act = a.string('activation', 'none');
    if (!['none', 'silu', 'swish'].includes(act)) throw a.error(`activation should be 'none', 'silu' or 'swish', got '${act}'`);
    return act !== 'none';
  },
  infer: (ins) => {
    const x = shapeOf(ins[0]), w = shapeOf(ins[1]), k = w?.[2];
    return [tensorType(dtypeOf(ins[0]), x), tensorType(dtypeOf(ins[0]), x && [x[0], x[1], typeof k === 'number' ? k - 1 : null])];
  },
  run: (ins, silu: boolean, ctx) => {
    const x = typedInput(ins, 0, FLOAT, ctx), w = like(ins, 1, 'weight', x, 'input', ctx);
    const bias = optLike(ins, 2, 'bias', x, 'input', ctx), past = optLike(ins, 3, 'past_state', x, 'input', ctx);
    if (x.shape.length !== 3) fail(ctx, `input 0 (input) should be [batch, channels, length], got [${x.shape}]`);
    const [B, C, L] = x.shape, k = w.shape[2];
    if (w.shape.length !== 3 || !(k >= 1)) fail(ctx, `input 1 (weight) should be [${C}, 1, k] with k >= 1, got [${w.shape}]`);
    expectShape(w, [C, 1, k], 'input 1 (weight)', ctx);
    if (bias) expectShape(bias, [C], 'input 2 (bias)', ctx);
    if (past) expectShape(past, [B, C, k - 1], 'input 3 (past_state)', ctx);
    const y = NdArray.zeros(x.dtype, x.shape), present = NdArray.zeros(x.dtype, [B, C, k - 1]);
    K.causalConv(x.data as Floats, w.data as Floats, bias?.data as Floats | undefined, past?.data as Floats | undefined, B, C, L, k, silu, y.data as Floats, present.data as Floats);
    return [y, present];
  },
});

// ---- SwiGLU ----

register({
  op: 'SwiGLU', since: 28, infer: sameAsInput,
  attrs: (a) => a.float('alpha', 1),
  run: (ins, alpha: number, ctx) => {
    const a = typedInput(ins, 0, FLOAT, ctx), b = like(ins, 1, 'B', a, 'A', ctx);
    expectShape(b, a.shape, 'input 1 (B), without broadcasting,', ctx);
    const y = NdArray.zeros(a.dtype, a.shape);
    K.swiglu(a.data as Floats, b.data as Floats, alpha, y.data as Floats);
    return [y];
  },
});
