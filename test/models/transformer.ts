// Transformer encoders and decoders shaped like HuggingFace's torch.onnx exports (BERT, GPT-2), shrunk to
// hidden 64, 4 heads, 2 layers. Token inputs are int64 [batch, seq] with both dims symbolic.
import { f32 } from '../../loaders/builder.js';
import { NdArray } from '../../engine/tensor.js';
import { rng } from '../helpers/oracle.js';
import { Net, type Feeds, type ModelCase } from './common.js';

export type LayerNormForm = 'op' | 'decomposed';
const FLOAT_MIN = -3.4028234663852886e38; // torch.finfo(torch.float32).min, HF's additive mask value

/**
 * LayerNorm over the last axis: the opset-17 LayerNormalization op, or the ReduceMean/Sub/Pow/ReduceMean/
 * Add/Sqrt/Div/Mul/Add chain torch emits at opsets without it.
 */
function layerNorm(n: Net, x: string, c: number, form: LayerNormForm, eps: number): string {
  const gamma = n.uniform('ln_w', [c], 0.8, 1.2), beta = n.uniform('ln_b', [c], -0.1, 0.1);
  if (form === 'op') return n.op('LayerNormalization', [x, gamma, beta], { axis: -1, epsilon: eps });
  const d = n.op('Sub', [x, n.op('ReduceMean', [x], { axes: [-1], keepdims: 1 })]);
  const variance = n.op('ReduceMean', [n.op('Pow', [d, n.f32(2)])], { axes: [-1], keepdims: 1 });
  return n.add(n.mul(n.op('Div', [d, n.op('Sqrt', [n.add(variance, n.f32(eps))])]), gamma), beta);
}

const ints = (shape: number[], r: ReturnType<typeof rng>, hi: number) =>
  new NdArray('int64', shape, BigInt64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => BigInt(r.int(0, hi - 1))));

/**
 * BERT encoder: word + token-type + position embeddings (position_ids is a buffer sliced to the traced
 * sequence length), extended attention mask (1 - mask[:, None, None, :]) * finfo.min, per-layer
 * self-attention with heads split by Reshape to [b, s, 4, 16] built from Shape/Gather/Concat, K^T as two
 * Transposes, scores / sqrt(16), Softmax, heads merged by Reshape [0, 0, 64], erf-GELU FFN, post-LN residuals,
 * and the pooler (first token -> Gemm -> Tanh). Opset 17 with the LayerNormalization op, opset 14 decomposed.
 */
export function bert(form: LayerNormForm): ModelCase {
  const [V, H, NH, HD, FF, L, P] = [100, 64, 4, 16, 128, 2, 32];
  const n = new Net(form === 'op' ? 71 : 72);
  const ids = n.g.input('input_ids', 'int64', ['batch', 'seq']);
  const mask = n.g.input('attention_mask', 'int64', ['batch', 'seq']);
  const types = n.g.input('token_type_ids', 'int64', ['batch', 'seq']);
  const ln = (x: string) => layerNorm(n, x, H, form, 1e-12);

  const posBuffer = n.g.init('position_ids', 'int64', [1, P], BigInt64Array.from({ length: P }, (_, i) => BigInt(i)));
  const positions = n.op('Slice', [posBuffer, n.i64([0]), n.dim(ids, 1), n.i64([1]), n.i64([1])]);
  const embed = (table: string, idx: string) => n.op('Gather', [table, idx], { axis: 0 });
  let h = n.add(n.add(embed(n.uniform('word_emb', [V, H], -1, 1), ids), embed(n.uniform('type_emb', [2, H], -0.5, 0.5), types)),
    embed(n.uniform('pos_emb', [P, H], -0.5, 0.5), positions));
  h = ln(h);

  const extMask = n.mul(n.op('Sub', [n.f32(1), n.op('Cast', [n.op('Unsqueeze', [mask, n.i64([1, 2])])], { to: 1 })]), n.f32(FLOAT_MIN));
  const gelu = (x: string) => n.mul(n.mul(x, n.f32(0.5)), n.add(n.op('Erf', [n.op('Div', [x, n.f32(Math.SQRT2)])]), n.f32(1)));
  // transpose_for_scores: x.size()[:-1] + (heads, head_dim), each traced size a Shape -> Gather -> Unsqueeze.
  const splitHeads = (t: string) => n.op('Transpose', [n.op('Reshape', [t, n.op('Concat', [n.dim(t, 0), n.dim(t, 1), n.i64([NH, HD])], { axis: 0 })])], { perm: [0, 2, 1, 3] });

  for (let l = 0; l < L; l++) {
    const q = splitHeads(n.linear(h, H, H, 'q'));
    const kT = n.op('Transpose', [splitHeads(n.linear(h, H, H, 'k'))], { perm: [0, 1, 3, 2] });
    const v = splitHeads(n.linear(h, H, H, 'v'));
    const scores = n.add(n.op('Div', [n.op('MatMul', [q, kT]), n.f32(Math.sqrt(HD))]), extMask);
    const ctx = n.op('Transpose', [n.op('MatMul', [n.op('Softmax', [scores], { axis: -1 }), v])], { perm: [0, 2, 1, 3] });
    const merged = n.op('Reshape', [ctx, n.i64([0, 0, H])]); // 0 copies batch and seq from the input
    h = ln(n.add(n.linear(merged, H, H, 'attn_out'), h));
    h = ln(n.add(n.linear(gelu(n.linear(h, H, FF, 'ffn_in')), FF, H, 'ffn_out'), h));
  }
  n.g.output(h, 'float32', ['batch', 'seq', H]);
  const first = n.op('Gather', [h, n.i64(0)], { axis: 1 }); // hidden_states[:, 0]
  n.g.output(n.op('Tanh', [n.gemm(first, H, H, 'pooler')]), 'float32', ['batch', H]);

  return {
    bytes: n.model(form === 'op' ? 17 : 14),
    feeds: (b, s) => {
      const r = rng(300 + 10 * b + s);
      // Right padding in every row after the first: the mask must really cut keys out.
      const m = new NdArray('int64', [b, s], BigInt64Array.from({ length: b * s }, (_, i) => (Math.floor(i / s) > 0 && i % s >= s - 1 - Math.floor(i / s) ? 0n : 1n)));
      return { input_ids: ints([b, s], r, V), attention_mask: m, token_type_ids: ints([b, s], r, 2) } satisfies Feeds;
    },
  };
}

/**
 * GPT-2 decoder: positions from Range(0, seq), pre-LN blocks, HF Conv1D layers (Reshape to 2-D -> Gemm ->
 * Reshape back to x.size()[:-1] + (out,)), fused qkv Split, K transposed by perm [0, 2, 3, 1], tanh-GELU with
 * Pow(x, 3), causal masking with Where, and the LM head tied to the token embedding via Transpose + MatMul.
 * Mask 'range': Less(Range[:, None], Range[None, :]) at opset 17 with LayerNormalization.
 * Mask 'trilu': Trilu(ConstantOfShape([s, s], 1)) cast to bool, at opset 14 with decomposed LayerNorm.
 */
export function gpt2(maskKind: 'range' | 'trilu'): ModelCase {
  const [V, H, NH, HD, L, P] = [96, 64, 4, 16, 2, 32];
  const form: LayerNormForm = maskKind === 'range' ? 'op' : 'decomposed';
  const n = new Net(maskKind === 'range' ? 91 : 92);
  const ids = n.g.input('input_ids', 'int64', ['batch', 'seq']);
  const ln = (x: string) => layerNorm(n, x, H, form, 1e-5);
  const shapeUpTo = (t: string, end: number) => n.op('Slice', [n.op('Shape', [t]), n.i64([0]), n.i64([end])]);
  const conv1d = (x: string, din: number, dout: number) => {
    const y = n.op('Gemm', [n.op('Reshape', [x, n.i64([-1, din])]), n.xavier('c_w', [din, dout], din, dout), n.uniform('c_b', [dout], -0.1, 0.1)]);
    return n.op('Reshape', [y, n.op('Concat', [shapeUpTo(x, -1), n.i64([dout])], { axis: 0 })]);
  };
  const geluTanh = (x: string) => {
    const inner = n.mul(n.add(x, n.mul(n.f32(0.044715), n.op('Pow', [x, n.f32(3)]))), n.f32(Math.sqrt(2 / Math.PI)));
    return n.mul(n.mul(x, n.f32(0.5)), n.add(n.f32(1), n.op('Tanh', [inner])));
  };

  const wte = n.uniform('wte', [V, H], -0.5, 0.5);
  const seq = n.op('Gather', [n.op('Shape', [ids]), n.i64(1)], { axis: 0 }); // 0-d int64
  const steps = n.op('Range', [n.i64(0), seq, n.i64(1)]);
  let h = n.add(n.op('Gather', [wte, ids], { axis: 0 }), n.op('Gather', [n.uniform('wpe', [P, H], -0.3, 0.3), n.op('Unsqueeze', [steps, n.i64([0])])], { axis: 0 }));

  // The causal mask depends only on seq: built once, shared by every layer.
  let applyMask: (w: string) => string;
  if (maskKind === 'range') {
    const future = n.op('Less', [n.op('Unsqueeze', [steps, n.i64([1])]), n.op('Unsqueeze', [steps, n.i64([0])])]);
    applyMask = (w) => n.op('Where', [future, n.f32(FLOAT_MIN), w]);
  } else {
    const s1 = n.op('Unsqueeze', [seq, n.i64([0])]);
    const ones = n.op('ConstantOfShape', [n.op('Concat', [s1, s1], { axis: 0 })], { value: f32([1], [1]) });
    const allowed = n.op('Cast', [n.op('Trilu', [ones], { upper: 0 })], { to: 9 });
    applyMask = (w) => n.op('Where', [allowed, w, n.f32(FLOAT_MIN)]);
  }

  for (let l = 0; l < L; l++) {
    const [q, k, v] = n.ops('Split', [conv1d(ln(h), H, 3 * H), n.i64([H, H, H])], { axis: 2 }, 3);
    const heads = (t: string, perm: number[]) => n.op('Transpose', [n.op('Reshape', [t, n.op('Concat', [shapeUpTo(t, -1), n.i64([NH, HD])], { axis: 0 })])], { perm });
    const w = applyMask(n.op('Div', [n.op('MatMul', [heads(q, [0, 2, 1, 3]), heads(k, [0, 2, 3, 1])]), n.f32(Math.sqrt(HD))]));
    const ctx = n.op('Transpose', [n.op('MatMul', [n.op('Softmax', [w], { axis: -1 }), heads(v, [0, 2, 1, 3])])], { perm: [0, 2, 1, 3] });
    const merged = n.op('Reshape', [ctx, n.op('Concat', [shapeUpTo(ctx, -2), n.i64([H])], { axis: 0 })]);
    h = n.add(h, conv1d(merged, H, H));
    h = n.add(h, conv1d(geluTanh(conv1d(ln(h), H, 4 * H)), 4 * H, H));
  }
  const logits = n.op('MatMul', [ln(h), n.op('Transpose', [wte], { perm: [1, 0] })]);
  n.g.output(logits, 'float32', ['batch', 'seq', V]);
  return { bytes: n.model(maskKind === 'range' ? 17 : 14), feeds: (b, s) => ({ input_ids: ints([b, s], rng(500 + 10 * b + s), V) }) };
}
