// ai.onnx.preview FlexAttention: rank-4 scaled dot-product attention with GQA whose scores and probabilities
// pass through optional user subgraphs (score_mod before the softmax, prob_mod after it). Scores, softmax and
// both modifiers live in the softmax precision (float32 unless the inputs are double or the attribute says
// otherwise); the mix with V runs in it too and is cast back to the input type, as the function body does.
import { NARROW_FLOATS, type DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { flexMix, flexScores, type FlexDims } from '../kernels/cpu/flex-attention.js';
import { roundInPlace } from '../kernels/cpu/minifloat.js';
import { softmax } from '../kernels/cpu/softmax.js';
import { FLOAT, typedInput } from './elementwise.js';
import { dtypeOf, shapeOf, tensorType } from './infer-rules.js';
import { type Attrs, fail, register, type RunCtx } from './registry.js';

type Floats = Float32Array | Float64Array;
type Mod = 'score_mod' | 'prob_mod';

const PRECISIONS: Record<number, DType> = { 1: 'float32', 10: 'float16', 11: 'float64', 16: 'bfloat16' };

interface FlexAttrs { scale?: number; precision?: DType; mods: Mod[] }

/** A modifier must be (one tensor) -> (one tensor); anything else is a model error caught at load. */
function modifier(a: Attrs, name: Mod): boolean {
  const g = a.graph(name);
  if (g && (g.inputs.length !== 1 || g.outputs.length !== 1)) {
    throw a.error(`${name} should have 1 input and 1 output (the whole [B, Hq, L, S] tensor), got ${g.inputs.length} and ${g.outputs.length}`);
  }
  return !!g;
}

function flexAttrs(a: Attrs): FlexAttrs {
  // Drafts of this op had a per-element mask_mod; FlexAttention-1 has none, and ignoring it would attend masked keys.
  if (a.has('mask_mod')) throw a.error(`attribute 'mask_mod' is not part of FlexAttention-1; express masks in score_mod as -inf scores`);
  const code = a.has('softmax_precision') ? a.int('softmax_precision') : undefined;
  if (code !== undefined && !PRECISIONS[code]) throw a.error(`softmax_precision should be 1 (float), 10 (float16), 11 (double) or 16 (bfloat16), got ${code}`);
  return {
    scale: a.has('scale') ? a.float('scale') : undefined, precision: code === undefined ? undefined : PRECISIONS[code],
    mods: (['score_mod', 'prob_mod'] as Mod[]).filter((m) => modifier(a, m)),
  };
}

/** x as `dtype`, rounded to it: the function body's Cast. */
function cast(x: NdArray, dtype: DType): NdArray {
  if (x.dtype === dtype) return x;
  const y = NdArray.zeros(dtype, x.shape);
  (y.data as Floats).set(x.data as Floats);
  if (NARROW_FLOATS.has(dtype)) roundInPlace(dtype, y.data as Float32Array);
  return y;
}

/** Runs a modifier subgraph on x; it has to hand back a tensor of x's dtype and shape. */
function modify(ctx: RunCtx, name: Mod, at: FlexAttrs, x: NdArray): NdArray {
  if (!at.mods.includes(name)) return x;
  const [y] = ctx.subgraph(name)([x]);
  if (!(y instanceof NdArray) || y.dtype !== x.dtype || y.shape.length !== 4 || y.shape.some((d, i) => d !== x.shape[i])) {
    const got = y instanceof NdArray ? `${y.dtype} [${y.shape}]` : 'a non-tensor';
    fail(ctx, `${name} should return a ${x.dtype} tensor of shape [${x.shape}] (its input's), got ${got}`);
  }
  return y;
}

/** Q, K, V checked against the spec's shapes: [B, Hq, L, E], [B, Hkv, S, E], [B, Hkv, S, Dv]. */
function dimsOf(q: NdArray, k: NdArray, v: NdArray, ctx: RunCtx): FlexDims {
  [q, k, v].forEach((t, i) => {
    if (t.shape.length !== 4) fail(ctx, `input ${i} (${'QKV'[i]}) should be rank 4, got shape [${t.shape}]`);
    if (t.dtype !== q.dtype) fail(ctx, `input ${i} (${'QKV'[i]}) has dtype ${t.dtype}; expected ${q.dtype}, the dtype of Q`);
  });
  const [B, Hq, L, E] = q.shape, [, Hkv, S] = k.shape;
  if (k.shape[0] !== B || v.shape[0] !== B) fail(ctx, `Q, K and V should share the batch size, got ${B}, ${k.shape[0]} and ${v.shape[0]}`);
  if (v.shape[1] !== Hkv || v.shape[2] !== S) fail(ctx, `K and V should share heads and sequence length, got ${Hkv}x${S} and ${v.shape[1]}x${v.shape[2]}`);
  if (k.shape[3] !== E) fail(ctx, `K head size ${k.shape[3]} should equal Q head size ${E}`);
  if (!(Hkv > 0 && Hq % Hkv === 0)) fail(ctx, `Q heads ${Hq} should be a multiple of K/V heads ${Hkv}`);
  return { batch: B, qHeads: Hq, kvHeads: Hkv, qLen: L, kvLen: S, headDim: E, vDim: v.shape[3] };
}

register({
  op: 'FlexAttention', domain: 'ai.onnx.preview', since: 1, attrs: flexAttrs,
  infer: (ins) => {
    const q = shapeOf(ins[0]), v = shapeOf(ins[2]);
    return [tensorType(dtypeOf(ins[0]), q && v ? [q[0], q[1], q[2], v[3]] : undefined)];
  },
  run: (ins, at: FlexAttrs, ctx) => {
    const q = typedInput(ins, 0, FLOAT, ctx), k = typedInput(ins, 1, FLOAT, ctx), v = typedInput(ins, 2, FLOAT, ctx);
    const d = dimsOf(q, k, v, ctx), sp = at.precision ?? (q.dtype === 'float64' ? 'float64' : 'float32');
    const rows = [d.batch, d.qHeads, d.qLen, d.kvLen];
    const scores = NdArray.zeros(sp, rows);
    flexScores(d, q.data as Floats, k.data as Floats, at.scale ?? 1 / Math.sqrt(d.headDim), scores.data as Floats);
    if (NARROW_FLOATS.has(sp)) roundInPlace(sp, scores.data as Float32Array);
    // ONNX Softmax semantics: a row the score_mod masked entirely (all -inf) comes out NaN, as in the function body.
    const s = modify(ctx, 'score_mod', at, scores), probs = NdArray.zeros(sp, rows);
    softmax(s.data as Floats, probs.data as Floats, d.batch * d.qHeads * d.qLen, d.kvLen, 1, false);
    if (NARROW_FLOATS.has(sp)) roundInPlace(sp, probs.data as Float32Array);
    const p = modify(ctx, 'prob_mod', at, probs), y = NdArray.zeros(sp, [d.batch, d.qHeads, d.qLen, d.vDim]);
    flexMix(d, p.data as Floats, cast(v, sp).data as Floats, y.data as Floats);
    if (NARROW_FLOATS.has(sp)) roundInPlace(sp, y.data as Float32Array);
    return [cast(y, q.dtype)];
  },
});
