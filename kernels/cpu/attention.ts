// Attention-family kernels over typed arrays: scaled dot-product attention, rotary embeddings, the
// linear-attention recurrences and the stateful causal depthwise convolution. Head-split tensors are
// addressed through strides, so the packed [B, S, H*D] layout and [B, H, S, D] need no transposes.
import { sigmoidOf } from './elementwise.js';
import { gemm, rowMajor } from './gemm.js';

type Num = { [i: number]: number; length: number };
type Floats = Float32Array | Float64Array;

/** A head-split tensor: row (b, h, s) starts at b*bs + h*hs + s*ss and its elements are contiguous. */
export interface Heads { data: Num; bs: number; hs: number; ss: number }
/** [B, H, S, D] */
export const split4 = (data: Num, h: number, s: number, d: number): Heads => ({ data, bs: h * s * d, hs: s * d, ss: d });
/** [B, S, H*D] */
export const packed3 = (data: Num, h: number, s: number, d: number): Heads => ({ data, bs: s * h * d, hs: d, ss: h * d });
const rowAt = (t: Heads, b: number, h: number, s: number) => b * t.bs + h * t.hs + s * t.ss;

/** out [B, H, P+L, D] = past [B, H, P, D] followed by the L rows of k along the sequence. */
export function appendRows(past: Num | undefined, pastLen: number, k: Heads, len: number, batch: number, heads: number, d: number, out: Floats): void {
  const total = pastLen + len;
  for (let b = 0, o = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++, o += total * d) {
      for (let i = 0, p = (b * heads + h) * pastLen * d; i < pastLen * d; i++) out[o + i] = past![p + i];
      for (let s = 0; s < len; s++) {
        const src = rowAt(k, b, h, s), dst = o + (pastLen + s) * d;
        for (let i = 0; i < d; i++) out[dst + i] = k.data[src + i];
      }
    }
  }
}

/** Which keys each query may attend; query i of batch b sits at absolute position offset[b] + i. */
export interface Masking {
  causal: boolean;
  offset: number[];
  /** Per batch, keys from this index on are padding. */
  valid?: number[];
  /** Window bounds around the query position; -1 leaves a side unbounded. */
  left: number; right: number;
  /** Bool (allow) or additive mask; keys at or past `width` are disallowed. strides: b, h, i (j is 1). */
  mask?: { data: Num; bool: boolean; width: number; strides: [number, number, number] };
}

export interface AttentionArgs {
  batch: number; qHeads: number; kvHeads: number; qLen: number; kvLen: number; headDim: number; vDim: number;
  q: Heads; k: Heads; v: Heads; y: Heads;
  scale: number; softcap: number; masking: Masking;
  /** Rounds a score row to the softmax precision, applied to its input and output. */
  round?: (x: number) => number;
  /** The optional [B, Hq, S, T] scores output: 0 raw, 1 softcapped, 2 masked, 3 probabilities. */
  scores?: { out: Floats; mode: number };
}

/** Y = softmax(mask(softcap(scale * Q K^T))) V per head; query head h reads key/value head h / (Hq/Hkv). */
export function attention(a: AttentionArgs): void {
  const S = a.qLen, T = a.kvLen, group = a.qHeads / a.kvHeads, block = new Float64Array(S * T);
  for (let b = 0; b < a.batch; b++) {
    for (let h = 0; h < a.qHeads; h++) {
      const g = Math.floor(h / group);
      block.fill(0);
      gemm(S, T, a.headDim, { data: a.q.data, off: rowAt(a.q, b, h, 0), rs: a.q.ss, cs: 1 },
        { data: a.k.data, off: rowAt(a.k, b, g, 0), rs: 1, cs: a.k.ss }, block, 0, T, a.scale);
      for (let i = 0; i < S; i++) scoreRow(block.subarray(i * T, (i + 1) * T), b, h, i, a);
      gemm(S, a.vDim, T, rowMajor(block, T), { data: a.v.data, off: rowAt(a.v, b, g, 0), rs: a.v.ss, cs: 1 }, a.y.data, rowAt(a.y, b, h, 0), a.y.ss);
    }
  }
}

/** Softcap, mask and softmax of one query row in place; a row with no attendable key becomes zeros. */
function scoreRow(row: Float64Array, b: number, h: number, i: number, a: AttentionArgs): void {
  const T = row.length, out = a.scores, at = ((b * a.qHeads + h) * a.qLen + i) * T;
  if (out?.mode === 0) out.out.set(row, at);
  const c = a.softcap;
  if (c) for (let j = 0; j < T; j++) row[j] = c * Math.tanh(row[j] / c);
  if (out?.mode === 1) out.out.set(row, at);
  maskRow(row, b, h, i, a.masking);
  if (out?.mode === 2) out.out.set(row, at);
  softmaxRow(row, a.round);
  if (out?.mode === 3) out.out.set(row, at);
}

function maskRow(row: Float64Array, b: number, h: number, i: number, m: Masking): void {
  const T = row.length, p = m.offset[b] + i, mk = m.mask;
  let hi = Math.min(T, m.valid?.[b] ?? T, mk?.width ?? T);
  if (m.causal) hi = Math.min(hi, p + 1);
  if (m.right >= 0) hi = Math.min(hi, p + m.right + 1);
  const lo = Math.min(T, m.left >= 0 ? Math.max(0, p - m.left) : 0);
  hi = Math.max(hi, lo);
  row.fill(-Infinity, 0, lo);
  row.fill(-Infinity, hi);
  if (!mk) return;
  const base = b * mk.strides[0] + h * mk.strides[1] + i * mk.strides[2], d = mk.data;
  if (mk.bool) { for (let j = lo; j < hi; j++) if (!d[base + j]) row[j] = -Infinity; }
  else for (let j = lo; j < hi; j++) row[j] += d[base + j];
}

/** Max-shifted softmax; an all -Infinity row (every key disallowed) is zeros rather than NaN. */
function softmaxRow(row: Float64Array, round?: (x: number) => number): void {
  const n = row.length;
  if (round) for (let j = 0; j < n; j++) row[j] = round(row[j]);
  let max = -Infinity;
  for (let j = 0; j < n; j++) if (row[j] > max || row[j] !== row[j]) max = row[j];
  if (max === -Infinity) { row.fill(0); return; }
  let sum = 0;
  for (let j = 0; j < n; j++) sum += (row[j] = Math.exp(row[j] - max));
  for (let j = 0; j < n; j++) row[j] = round ? round(row[j] / sum) : row[j] / sum;
}

export interface RotaryArgs {
  batch: number; heads: number; seq: number; headDim: number; rotDim: number; interleaved: boolean;
  x: Heads; y: Heads; cos: Num; sin: Num;
  /** Cache row of token (b, s), at index b * seq + s. */
  rows: ArrayLike<number>;
}

/** Rotates the first rotDim elements of each head row by its token's angles; the rest is copied. */
export function rotary(a: RotaryArgs): void {
  const half = a.rotDim / 2, X = a.x.data, Y = a.y.data;
  for (let b = 0; b < a.batch; b++) {
    for (let s = 0; s < a.seq; s++) {
      const c = a.rows[b * a.seq + s] * half;
      for (let h = 0; h < a.heads; h++) {
        const xi = rowAt(a.x, b, h, s), yi = rowAt(a.y, b, h, s);
        for (let k = 0; k < half; k++) {
          // Pairs are (2k, 2k+1) when interleaved, else (k, k + half).
          const i1 = a.interleaved ? 2 * k : k, i2 = a.interleaved ? 2 * k + 1 : k + half;
          const x1 = X[xi + i1], x2 = X[xi + i2], co = a.cos[c + k], si = a.sin[c + k];
          Y[yi + i1] = co * x1 - si * x2;
          Y[yi + i2] = si * x1 + co * x2;
        }
        for (let d = a.rotDim; d < a.headDim; d++) Y[yi + d] = X[xi + d];
      }
    }
  }
}

export interface LinearAttentionArgs {
  batch: number; len: number; qHeads: number; kvHeads: number; dk: number; dv: number;
  /** Packed [B, T, H*d]. */
  q: Num; k: Num; v: Num; out: Num;
  /** [B, Hkv, dk, dv], the past state on entry and the present state on return. */
  state: Float64Array;
  /** Log-space decay per key dim ([B, T, Hkv*dk]) or per head ([B, T, Hkv]). */
  decay?: { data: Num; perDim: boolean };
  /** Update rate per head ([B, T, Hkv]) or shared ([B, T, 1]); present for the delta rules. */
  beta?: { data: Num; perHead: boolean };
  scale: number;
}

/** The linear-attention recurrence, token by token: decay, the plain or delta update, then o = scale q^T S. */
export function linearAttention(a: LinearAttentionArgs): void {
  const { dk, dv, kvHeads: H } = a, group = a.qHeads / H, u = new Float64Array(dv), S = a.state;
  for (let b = 0; b < a.batch; b++) {
    for (let t = 0; t < a.len; t++) {
      const bt = b * a.len + t;
      for (let g = 0; g < H; g++) {
        const so = (b * H + g) * dk * dv, ko = (bt * H + g) * dk, vo = (bt * H + g) * dv;
        if (a.decay) {
          const dd = a.decay.data;
          for (let i = 0; i < dk; i++) {
            const e = Math.exp(dd[a.decay.perDim ? ko + i : bt * H + g]);
            for (let j = 0, p = so + i * dv; j < dv; j++, p++) S[p] *= e;
          }
        }
        // Delta rules write beta * (v - S^T k), the error of the decayed state's prediction; else v.
        let rate = 1;
        for (let j = 0; j < dv; j++) u[j] = a.v[vo + j];
        if (a.beta) {
          rate = a.beta.data[a.beta.perHead ? bt * H + g : bt];
          for (let i = 0; i < dk; i++) {
            const ki = a.k[ko + i];
            for (let j = 0, p = so + i * dv; j < dv; j++, p++) u[j] -= S[p] * ki;
          }
        }
        for (let i = 0; i < dk; i++) {
          const ki = rate * a.k[ko + i];
          for (let j = 0, p = so + i * dv; j < dv; j++, p++) S[p] += ki * u[j];
        }
        for (let h = g * group; h < (g + 1) * group; h++) {
          const qo = (bt * a.qHeads + h) * dk, oo = (bt * a.qHeads + h) * dv;
          for (let j = 0; j < dv; j++) {
            let acc = 0;
            for (let i = 0, p = so + j; i < dk; i++, p += dv) acc += a.q[qo + i] * S[p];
            a.out[oo + j] = a.scale * acc;
          }
        }
      }
    }
  }
}

/**
 * Depthwise causal convolution of x [B, C, L] with w [C, 1, K] over past [B, C, K-1] (zeros when absent)
 * followed by x; present gets the last K-1 positions of that sequence.
 */
export function causalConv(x: Num, w: Num, bias: Num | undefined, past: Num | undefined, batch: number, ch: number, len: number, k: number, silu: boolean, y: Num, present: Num): void {
  const keep = k - 1;
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < ch; c++) {
      const xo = (b * ch + c) * len, po = (b * ch + c) * keep, wo = c * k;
      const seq = (p: number) => (p >= keep ? x[xo + p - keep] : past ? past[po + p] : 0);
      for (let t = 0; t < len; t++) {
        let s = bias ? bias[c] : 0;
        for (let i = 0; i < k; i++) s += w[wo + i] * seq(t + i);
        y[xo + t] = silu ? s * sigmoidOf(s) : s;
      }
      for (let p = 0; p < keep; p++) present[po + p] = seq(len + p);
    }
  }
}

/** y = a * sigmoid(alpha * a) * b elementwise. */
export function swiglu(a: Num, b: Num, alpha: number, y: Num): void {
  for (let i = 0; i < y.length; i++) y[i] = a[i] * sigmoidOf(alpha * a[i]) * b[i];
}
