// Attention, RotaryEmbedding, LinearAttention, CausalConvWithState and SwiGLU. Attention and RotaryEmbedding
// are checked against onnxruntime-node over random shapes and options; what it does not run (sliding
// windows, short masks, the opset 27/28 ops) against plain-loop references written here.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import type { DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { f16ToNumber, numberToF16 } from '../kernels/cpu/minifloat.js';
import { GraphBuilder, float, type AttrInput } from '../loaders/builder.js';
import { InferenceSession, Tensor } from '../index.js';
import { compareValues } from '../conformance/compare.js';
import { expectMatchesOrt, randomF32, rng, runBoth } from './helpers/oracle.js';

type Rng = ReturnType<typeof rng>;

/** One-node model; an undefined input becomes an omitted ('') input, an empty output name an omitted output. */
function oneNode(op: string, ins: [string, NdArray | undefined][], attrs: Record<string, AttrInput>, outs: string[], opset: number) {
  const g = new GraphBuilder();
  g.node(op, ins.map(([n, t]) => (t ? g.input(n, t.dtype, [...t.shape]) : '')), attrs, outs);
  outs.filter(Boolean).forEach((n) => g.output(n, null));
  return { bytes: g.model({ opset }), feeds: Object.fromEntries(ins.filter(([, t]) => t).map(([n, t]) => [n, t!])) };
}

async function ours(m: { bytes: Uint8Array; feeds: Record<string, NdArray> }): Promise<NdArray[]> {
  const s = await InferenceSession.create(m.bytes);
  const res = await s.run(Object.fromEntries(Object.entries(m.feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)])));
  return Object.values(res).map((t) => { const x = t as Tensor; return new NdArray(x.type, x.dims, x.data as never); });
}

const expectClose = (got: NdArray, want: NdArray, rtol = 1e-4, atol = 1e-5) => expect(compareValues(want, got, { rtol, atol })).toBeUndefined();
const f64 = (shape: number[], v: ArrayLike<number>) => new NdArray('float64', shape, Float64Array.from(v));
const i64 = (shape: number[], v: number[]) => new NdArray('int64', shape, BigInt64Array.from(v, BigInt));
const bools = (shape: number[], r: Rng, p: number) => new NdArray('bool', shape, Uint8Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (r.next() < p ? 1 : 0)));
const maybe = (r: Rng, p: number) => r.next() < p;

// ---- Attention ----

/** A random Attention case onnxruntime runs: layouts, GQA, cache, masks, nonpad lengths and the scores output. */
function randomAttention(r: Rng) {
  const opset = r.pick([23, 24]), B = r.int(1, 2), Hkv = r.int(1, 3), Hq = Hkv * r.int(1, 3), causal = maybe(r, 0.5);
  const S = r.int(1, 5), D = r.int(1, 8), Dv = r.int(1, 8), P = maybe(r, 0.4) ? r.int(1, 3) : 0;
  // With a past and a single query onnxruntime drops the causal bound (attends every key) where the spec
  // bounds it by the past length; they agree when the new keys are as many as the queries.
  const L = P && causal ? S : r.int(1, 6), T = P + L, packed = maybe(r, 0.5);
  const attrs: Record<string, AttrInput> = packed ? { q_num_heads: Hq, kv_num_heads: Hkv } : {};
  if (causal) attrs.is_causal = 1;
  if (maybe(r, 0.3)) attrs.softcap = float(r.float(0.5, 3));
  if (maybe(r, 0.3)) attrs.scale = float(r.float(0.1, 1));
  const qk = maybe(r, 0.4);
  if (qk) attrs.qk_matmul_output_mode = r.int(0, 3);
  const kind = r.pick(['none', 'bool', 'float']), rank = r.int(2, 4);
  // onnxruntime broadcasts the batch and head dims of a mask, not its query dim.
  const mshape = [B, Hq, S, T].slice(4 - rank).map((d, i, a) => (i < a.length - 2 && maybe(r, 0.4) ? 1 : d));
  const mask = kind === 'bool' ? bools(mshape, r, 0.8) : kind === 'float' ? randomF32(mshape, r, -2, 2) : undefined;
  const valid = opset >= 24 && !P && maybe(r, 0.4) ? i64([B], Array.from({ length: B }, () => r.int(1, T))) : undefined;
  const ins: [string, NdArray | undefined][] = [
    ['Q', randomF32(packed ? [B, S, Hq * D] : [B, Hq, S, D], r, -2, 2)],
    ['K', randomF32(packed ? [B, L, Hkv * D] : [B, Hkv, L, D], r, -2, 2)],
    ['V', randomF32(packed ? [B, L, Hkv * Dv] : [B, Hkv, L, Dv], r)],
    ['mask', mask], ['past_key', P ? randomF32([B, Hkv, P, D], r) : undefined], ['past_value', P ? randomF32([B, Hkv, P, Dv], r) : undefined],
  ];
  if (valid) ins.push(['nonpad', valid]);
  while (!ins[ins.length - 1][1]) ins.pop();
  return oneNode('Attention', ins, attrs, ['Y', P ? 'present_key' : '', P ? 'present_value' : '', qk ? 'qk' : ''], opset);
}

/** Plain-loop 4-D attention (Hq = Hkv) with every masking rule, default scale. */
function referenceAttention(q: NdArray, k: NdArray, v: NdArray, o: { causal?: boolean; left?: number; right?: number; mask?: NdArray; valid?: number[] }) {
  const [B, H, S, D] = q.shape, T = k.shape[2], Dv = v.shape[3], W = o.mask?.shape[1] ?? T;
  const Q = q.data as Float32Array | Float64Array, K = k.data as typeof Q, V = v.data as typeof Q, y = new Float64Array(B * H * S * Dv);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < S; i++) {
        const p = (o.valid ? o.valid[b] - S : 0) + i;
        const ok = (j: number) => (!o.causal || j <= p) && (o.left === undefined || j >= p - o.left) && (o.right === undefined || j <= p + o.right)
          && (!o.valid || j < o.valid[b]) && (!o.mask || (j < W && o.mask.data[i * W + j] === 1));
        const s = Array.from({ length: T }, (_, j) => {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += Q[((b * H + h) * S + i) * D + d] * K[((b * H + h) * T + j) * D + d];
          return ok(j) ? dot / Math.sqrt(D) : -Infinity;
        });
        const max = Math.max(...s);
        if (max === -Infinity) continue;
        const e = s.map((x) => Math.exp(x - max)), sum = e.reduce((a, c) => a + c, 0);
        for (let j = 0; j < T; j++) for (let d = 0; d < Dv; d++) y[((b * H + h) * S + i) * Dv + d] += (e[j] / sum) * V[((b * H + h) * T + j) * Dv + d];
      }
    }
  }
  return new NdArray(q.dtype, [B, H, S, Dv], q.dtype === 'float64' ? y : Float32Array.from(y));
}

describe('Attention', () => {
  it('matches onnxruntime over layouts, GQA, KV cache, masks, nonpad lengths, softcap, scale and every scores mode', async () => {
    const r = rng(23);
    for (let i = 0; i < 60; i++) {
      const m = randomAttention(r), { mine, theirs } = await runBoth(m.bytes, m.feeds);
      expect(Object.keys(mine).sort()).toEqual(Object.keys(theirs).sort());
      for (const [name, t] of Object.entries(theirs)) {
        // onnxruntime writes -FLT_MAX where the spec's masked scores (mode 2) are -Infinity.
        const want = Float32Array.from(t.data as Float32Array, (x) => (x === -3.4028234663852886e38 ? -Infinity : x));
        const got = mine[name] as Tensor;
        expectClose(new NdArray('float32', got.dims, got.data as Float32Array), new NdArray('float32', t.dims, want), 1e-3, 1e-4);
      }
    }
  });

  it('computes in float64 and rounds the softmax to softmax_precision', async () => {
    const r = rng(5), q = f64([1, 2, 3, 4], randomF32([24], r).data), k = f64([1, 2, 5, 4], randomF32([40], r).data), v = f64([1, 2, 5, 3], randomF32([30], r).data);
    const causal = oneNode('Attention', [['Q', q], ['K', k], ['V', v]], { is_causal: 1 }, ['Y'], 23);
    expectClose((await ours(causal))[0], referenceAttention(q, k, v, { causal: true }), 1e-12, 1e-14);
    // onnxruntime's float64 result strays about 3e-8 (relative) from the exact loop above.
    await expectMatchesOrt(causal.bytes, causal.feeds, { rtol: 1e-6, atol: 1e-9 });
    const exact = (await ours(oneNode('Attention', [['Q', q], ['K', k], ['V', v]], { qk_matmul_output_mode: 3 }, ['Y', '', '', 'P'], 23)))[1];
    const half = (await ours(oneNode('Attention', [['Q', q], ['K', k], ['V', v]], { qk_matmul_output_mode: 3, softmax_precision: 10 }, ['Y', '', '', 'P'], 23)))[1];
    expectClose(half, exact, 1e-3, 1e-4);
    expect([...(half.data as Float64Array)].every((p) => f16ToNumber(numberToF16(p)) === p)).toBe(true);
    expect([...(exact.data as Float64Array)].some((p) => f16ToNumber(numberToF16(p)) !== p)).toBe(true);
  });

  it('zeroes fully masked rows in Y and in the mode-3 scores', async () => {
    const r = rng(7), q = randomF32([1, 2, 3, 4], r), k = randomF32([1, 2, 3, 4], r), v = randomF32([1, 2, 3, 4], r);
    const mask = new NdArray('bool', [3, 3], Uint8Array.of(0, 0, 0, 1, 1, 0, 1, 1, 1));
    const [y, p] = await ours(oneNode('Attention', [['Q', q], ['K', k], ['V', v], ['mask', mask]], { qk_matmul_output_mode: 3 }, ['Y', '', '', 'P'], 23));
    expectClose(y, referenceAttention(q, k, v, { mask }));
    for (const h of [0, 1]) {
      expect([...(y.data as Float32Array).slice(h * 12, h * 12 + 4)]).toEqual([0, 0, 0, 0]);
      expect([...(p.data as Float32Array).slice(h * 9, h * 9 + 3)]).toEqual([0, 0, 0]);
    }
    // A negative bottom-right offset (nonpad below the query length) empties the leading rows.
    const [y2] = await ours(oneNode('Attention', [['Q', q], ['K', k], ['V', v], ['', undefined], ['', undefined], ['', undefined], ['n', i64([1], [1])]], { is_causal: 1 }, ['Y'], 24));
    expectClose(y2, referenceAttention(q, k, v, { causal: true, valid: [1] }));
    expect([...(y2.data as Float32Array).slice(0, 8)]).toEqual(new Array(8).fill(0));
  });

  it('pads a mask shorter than the keys with disallowed positions (opset 24)', async () => {
    const r = rng(8), q = randomF32([2, 2, 3, 4], r), k = randomF32([2, 2, 6, 4], r), v = randomF32([2, 2, 6, 5], r);
    const mask = bools([3, 4], r, 0.7), valid = [3, 4];
    const m = oneNode('Attention', [['Q', q], ['K', k], ['V', v], ['mask', mask], ['', undefined], ['', undefined], ['n', i64([2], valid)]], {}, ['Y'], 24);
    expectClose((await ours(m))[0], referenceAttention(q, k, v, { mask, valid }));
  });

  it('applies sliding windows around the offset query position (opset 25)', async () => {
    const r = rng(9);
    for (const [causal, left, right] of [[1, 2, -1], [0, 2, 1], [0, 0, 0], [0, -1, 1], [1, 1, 3]]) {
      const q = randomF32([1, 2, 4, 4], r), k = randomF32([1, 2, 6, 4], r), v = randomF32([1, 2, 6, 3], r);
      const m = oneNode('Attention', [['Q', q], ['K', k], ['V', v]], { is_causal: causal, left_window_size: left, right_window_size: right }, ['Y'], 25);
      expectClose((await ours(m))[0], referenceAttention(q, k, v, { causal: !!causal, left: left < 0 ? undefined : left, right: right < 0 ? undefined : right }));
    }
  });

  it('names the input and the expectation on bad shapes and attributes', async () => {
    const q = randomF32([1, 3, 8]), k = randomF32([1, 3, 8]);
    await expect(ours(oneNode('Attention', [['Q', q], ['K', k], ['V', k]], {}, ['Y'], 23))).rejects.toThrow(/input 0 \(Q\) is 3-D, so attribute 'q_num_heads' is required/);
    await expect(ours(oneNode('Attention', [['Q', q], ['K', k], ['V', k]], { q_num_heads: 3, kv_num_heads: 2 }, ['Y'], 23))).rejects.toThrow(/hidden size 8 is not a multiple of q_num_heads=3/);
    const k16 = randomF32([1, 3, 16]);
    await expect(ours(oneNode('Attention', [['Q', q], ['K', k16], ['V', k16]], { q_num_heads: 2, kv_num_heads: 4 }, ['Y'], 23))).rejects.toThrow(/q_num_heads 2 should be a multiple of kv_num_heads 4/);
    const q4 = randomF32([1, 2, 3, 4]), m = randomF32([2, 3, 3]);
    await expect(ours(oneNode('Attention', [['Q', q4], ['K', q4], ['V', q4], ['m', randomF32([3, 4])]], {}, ['Y'], 23))).rejects.toThrow(/attn_mask\) of shape \[3,4\] does not broadcast/);
    await expect(ours(oneNode('Attention', [['Q', q4], ['K', q4], ['V', q4], ['m', m], ['pk', q4]], {}, ['Y'], 23))).rejects.toThrow(/past_key and past_value should be given together/);
    await expect(ours(oneNode('Attention', [['Q', q4], ['K', q4], ['V', q4]], { qk_matmul_output_mode: 4 }, ['Y'], 23))).rejects.toThrow(/qk_matmul_output_mode should be 0, 1, 2 or 3/);
  });
});

// ---- RotaryEmbedding ----

describe('RotaryEmbedding', () => {
  it('matches onnxruntime: 3-D and 4-D, interleaved, partial rotation, with and without position_ids', async () => {
    const r = rng(11);
    for (let i = 0; i < 30; i++) {
      const B = r.int(1, 2), H = r.int(1, 3), S = r.int(1, 5), D = 2 * r.int(1, 5), rot = maybe(r, 0.4) ? 2 * r.int(1, D / 2) : 0, half = (rot || D) / 2;
      const packed = maybe(r, 0.5), withPos = maybe(r, 0.6), maxPos = S + r.int(0, 4);
      const x = randomF32(packed ? [B, S, H * D] : [B, H, S, D], r, -2, 2);
      const cacheShape = withPos ? [maxPos, half] : [B, S, half];
      const pos = withPos ? i64([B, S], Array.from({ length: B * S }, () => r.int(0, maxPos - 1))) : undefined;
      const attrs: Record<string, AttrInput> = { interleaved: r.int(0, 1), ...(rot ? { rotary_embedding_dim: rot } : {}), ...(packed ? { num_heads: H } : {}) };
      const m = oneNode('RotaryEmbedding', [['X', x], ['cos', randomF32(cacheShape, r)], ['sin', randomF32(cacheShape, r)], ['pos', pos]], attrs, ['Y'], 23);
      await expectMatchesOrt(m.bytes, m.feeds);
    }
  });

  it('rejects odd rotary dims, short caches and out-of-range positions', async () => {
    const x = randomF32([1, 1, 2, 4]), c = randomF32([3, 2]);
    await expect(ours(oneNode('RotaryEmbedding', [['X', x], ['c', c], ['s', c], ['p', i64([1, 2], [0, 3])]], {}, ['Y'], 23))).rejects.toThrow(/position_ids\) values should lie in \[0, 3\)/);
    await expect(ours(oneNode('RotaryEmbedding', [['X', x], ['c', c], ['s', c], ['p', i64([1, 2], [0, 1])]], { rotary_embedding_dim: 3 }, ['Y'], 23))).rejects.toThrow(/rotary_embedding_dim 3 should be even/);
    await expect(ours(oneNode('RotaryEmbedding', [['X', x], ['c', c], ['s', c]], {}, ['Y'], 23))).rejects.toThrow(/cos_cache\) without position_ids should have shape \[1,2,2\]/);
  });
});

// ---- LinearAttention ----

interface LinCase { B: number; T: number; Hq: number; Hkv: number; dk: number; dv: number; rule: string; perDim: boolean; betaShared: boolean }

/** Plain recurrence per (batch, kv head): S <- diag(e) S; S += b k (v - S^T k)^T (delta) or k v^T; o = scale q^T S. */
function referenceLinear(c: LinCase, q: Float32Array, k: Float32Array, v: Float32Array, past: Float32Array | undefined, decay?: Float32Array, beta?: Float32Array) {
  const { B, T, Hq, Hkv, dk, dv } = c, g = Hq / Hkv, out = new Float32Array(B * T * Hq * dv), present = new Float32Array(B * Hkv * dk * dv);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hkv; h++) {
      const S = Array.from({ length: dk }, (_, i) => Array.from({ length: dv }, (_, j) => (past ? past[((b * Hkv + h) * dk + i) * dv + j] : 0)));
      for (let t = 0; t < T; t++) {
        const kt = Array.from({ length: dk }, (_, i) => k[((b * T + t) * Hkv + h) * dk + i]), vt = Array.from({ length: dv }, (_, j) => v[((b * T + t) * Hkv + h) * dv + j]);
        if (decay) for (let i = 0; i < dk; i++) S[i] = S[i].map((s) => s * Math.exp(decay[c.perDim ? ((b * T + t) * Hkv + h) * dk + i : (b * T + t) * Hkv + h]));
        const rate = beta ? beta[c.betaShared ? b * T + t : (b * T + t) * Hkv + h] : 1;
        const err = vt.map((x, j) => (beta ? x - kt.reduce((a, ki, i) => a + ki * S[i][j], 0) : x));
        for (let i = 0; i < dk; i++) for (let j = 0; j < dv; j++) S[i][j] += rate * kt[i] * err[j];
        for (let hq = h * g; hq < (h + 1) * g; hq++) {
          for (let j = 0; j < dv; j++) {
            let acc = 0;
            for (let i = 0; i < dk; i++) acc += q[((b * T + t) * Hq + hq) * dk + i] * S[i][j];
            out[((b * T + t) * Hq + hq) * dv + j] = acc / Math.sqrt(dk);
          }
        }
      }
      S.forEach((row, i) => row.forEach((s, j) => { present[((b * Hkv + h) * dk + i) * dv + j] = s; }));
    }
  }
  return [out, present];
}

describe('LinearAttention', () => {
  it('matches a plain recurrence for every update rule, GQA, decay and beta layouts, with and without a past', async () => {
    const r = rng(13);
    for (let i = 0; i < 24; i++) {
      const Hkv = r.int(1, 3), c: LinCase = {
        B: r.int(1, 2), T: r.int(1, 5), Hq: Hkv * r.int(1, 3), Hkv, dk: r.int(1, 5), dv: r.int(1, 5),
        rule: ['linear', 'gated', 'delta', 'gated_delta'][i % 4], perDim: maybe(r, 0.5), betaShared: maybe(r, 0.3),
      };
      const { B, T, Hq, dk, dv } = c, gated = c.rule.startsWith('gated'), delta = c.rule.endsWith('delta');
      const q = randomF32([B, T, Hq * dk], r), k = randomF32([B, T, Hkv * dk], r), v = randomF32([B, T, Hkv * dv], r);
      const past = maybe(r, 0.5) ? randomF32([B, Hkv, dk, dv], r) : undefined;
      const decay = gated ? randomF32([B, T, c.perDim ? Hkv * dk : Hkv], r, -0.5, 0) : undefined;
      const beta = delta ? randomF32([B, T, c.betaShared ? 1 : Hkv], r, 0, 1) : undefined;
      const m = oneNode('LinearAttention', [['q', q], ['k', k], ['v', v], ['past', past], ['decay', decay], ['beta', beta]], { q_num_heads: Hq, kv_num_heads: Hkv, update_rule: c.rule }, ['o', 'state'], 27);
      const [o, state] = await ours(m);
      const [eo, es] = referenceLinear(c, ...([q, k, v, past, decay, beta].map((t) => t?.data) as [Float32Array, Float32Array, Float32Array, Float32Array?, Float32Array?, Float32Array?]));
      expectClose(o, new NdArray('float32', [B, T, Hq * dv], eo));
      expectClose(state, new NdArray('float32', [B, Hkv, dk, dv], es));
    }
  });

  it('prefill equals token-by-token decode through present_state, and honours an explicit scale', async () => {
    const r = rng(14), [B, T, H, d] = [2, 4, 2, 3], attrs = { q_num_heads: H, kv_num_heads: H };
    const q = randomF32([B, T, H * d], r), k = randomF32([B, T, H * d], r), v = randomF32([B, T, H * d], r), decay = randomF32([B, T, H], r, -0.5, 0), beta = randomF32([B, T, H], r, 0, 1);
    const step = (t: NdArray, s: number) => new NdArray('float32', [B, 1, t.shape[2]], Float32Array.from({ length: B * t.shape[2] }, (_, i) => (t.data as Float32Array)[(Math.floor(i / t.shape[2]) * T + s) * t.shape[2] + (i % t.shape[2])]));
    const [full, fullState] = await ours(oneNode('LinearAttention', [['q', q], ['k', k], ['v', v], ['p', undefined], ['g', decay], ['b', beta]], attrs, ['o', 's'], 27));
    let state = new NdArray('float32', [B, H, d, d], new Float32Array(B * H * d * d));
    for (let s = 0; s < T; s++) {
      const [o, next] = await ours(oneNode('LinearAttention', [['q', step(q, s)], ['k', step(k, s)], ['v', step(v, s)], ['p', state], ['g', step(decay, s)], ['b', step(beta, s)]], attrs, ['o', 's'], 27));
      expectClose(o, step(full, s));
      state = next;
    }
    expectClose(state, fullState);
    const [scaled] = await ours(oneNode('LinearAttention', [['q', q], ['k', k], ['v', v], ['p', undefined], ['g', decay], ['b', beta]], { ...attrs, scale: float(0.25) }, ['o', 's'], 27));
    expectClose(scaled, new NdArray('float32', full.shape, (full.data as Float32Array).map((x) => x * 0.25 * Math.sqrt(d))));
  });

  it('requires the inputs its update rule reads', async () => {
    const q = randomF32([1, 2, 4]);
    await expect(ours(oneNode('LinearAttention', [['q', q], ['k', q], ['v', q]], { q_num_heads: 2, kv_num_heads: 2 }, ['o', 's'], 27))).rejects.toThrow(/input 4 \(decay\) is required by update_rule 'gated_delta'/);
    await expect(ours(oneNode('LinearAttention', [['q', q], ['k', q], ['v', q]], { q_num_heads: 2, kv_num_heads: 2, update_rule: 'delta' }, ['o', 's'], 27))).rejects.toThrow(/input 5 \(beta\) is required/);
    await expect(ours(oneNode('LinearAttention', [['q', q], ['k', q], ['v', q]], { q_num_heads: 2, kv_num_heads: 2, update_rule: 'fast' }, ['o', 's'], 27))).rejects.toThrow(/update_rule should be one of/);
  });
});

// ---- CausalConvWithState ----

/** onnxruntime's depthwise Conv over past (or zeros) concatenated with x, plus SiLU, for comparison. */
async function ortCausalConv(x: NdArray, w: NdArray, bias: NdArray | undefined, past: NdArray | undefined, silu: boolean) {
  const [B, C, L] = x.shape, k = w.shape[2], padded = new Float32Array(B * C * (L + k - 1));
  for (let bc = 0; bc < B * C; bc++) {
    for (let p = 0; p < k - 1; p++) padded[bc * (L + k - 1) + p] = past ? (past.data as Float32Array)[bc * (k - 1) + p] : 0;
    for (let t = 0; t < L; t++) padded[bc * (L + k - 1) + k - 1 + t] = (x.data as Float32Array)[bc * L + t];
  }
  const g = new GraphBuilder();
  const conv = g.node('Conv', [g.input('x', 'float32', [B, C, L + k - 1]), g.input('w', 'float32', [C, 1, k]), ...(bias ? [g.input('b', 'float32', [C])] : [])], { group: C })[0];
  g.output(silu ? g.node('Mul', [conv, g.node('Sigmoid', [conv])[0]])[0] : conv, 'float32');
  const s = await ort.InferenceSession.create(g.model({ opset: 17 }));
  const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', padded, [B, C, L + k - 1]), w: new ort.Tensor('float32', w.data as Float32Array, w.shape as number[]) };
  if (bias) feeds.b = new ort.Tensor('float32', bias.data as Float32Array, [C]);
  const y = Object.values(await s.run(feeds))[0];
  const state = new Float32Array(B * C * (k - 1));
  for (let bc = 0; bc < B * C; bc++) for (let p = 0; p < k - 1; p++) state[bc * (k - 1) + p] = padded[bc * (L + k - 1) + L + p];
  return [new NdArray('float32', [B, C, L], y.data as Float32Array), new NdArray('float32', [B, C, k - 1], state)];
}

describe('CausalConvWithState', () => {
  it('matches onnxruntime Conv(group=C) over the padded sequence, with bias, past state and SiLU', async () => {
    const r = rng(17);
    for (let i = 0; i < 20; i++) {
      const B = r.int(1, 2), C = r.int(1, 4), L = r.int(1, 6), k = r.int(1, 5), silu = maybe(r, 0.5);
      const x = randomF32([B, C, L], r), w = randomF32([C, 1, k], r), bias = maybe(r, 0.5) ? randomF32([C], r) : undefined, past = maybe(r, 0.5) ? randomF32([B, C, k - 1], r) : undefined;
      const attrs = silu ? { activation: r.pick(['silu', 'swish']) } : {};
      const [y, state] = await ours(oneNode('CausalConvWithState', [['x', x], ['w', w], ['b', bias], ['p', past]], attrs, ['y', 's'], 27));
      const [ey, es] = await ortCausalConv(x, w, bias, past, silu);
      expectClose(y, ey);
      expectClose(state, es);
    }
  });

  it('rejects a weight that is not [C, 1, k] and an unknown activation', async () => {
    const x = randomF32([1, 2, 3]);
    await expect(ours(oneNode('CausalConvWithState', [['x', x], ['w', randomF32([2, 2, 3])]], {}, ['y', 's'], 27))).rejects.toThrow(/input 1 \(weight\) should have shape \[2,1,3\]/);
    await expect(ours(oneNode('CausalConvWithState', [['x', x], ['w', randomF32([2, 1, 3])]], { activation: 'relu' }, ['y', 's'], 27))).rejects.toThrow(/activation should be/);
  });
});

// ---- SwiGLU ----

describe('SwiGLU', () => {
  it('is Swish_alpha(A) * B elementwise, in float32 and float64', async () => {
    const r = rng(19);
    for (const dtype of ['float32', 'float64'] as DType[]) {
      const alpha = r.float(0.2, 2), a = randomF32([3, 5], r, -4, 4), b = randomF32([3, 5], r, -2, 2);
      const cast = (t: NdArray) => (dtype === 'float64' ? f64(t.shape as number[], t.data as Float32Array) : t);
      const [y] = await ours(oneNode('SwiGLU', [['a', cast(a)], ['b', cast(b)]], { alpha: float(alpha) }, ['y'], 28));
      const A = a.data as Float32Array, Bv = b.data as Float32Array;
      expectClose(y, cast(new NdArray('float32', [3, 5], A.map((x, i) => (x / (1 + Math.exp(-alpha * x))) * Bv[i]))), 1e-6, 1e-7);
    }
    await expect(ours(oneNode('SwiGLU', [['a', randomF32([2, 3])], ['b', randomF32([1, 3])]], {}, ['y'], 28))).rejects.toThrow(/should have shape \[2,3\]/);
  });
});
