// Classic-ML kernels over float64 rows: score post-transforms, tree-ensemble traversal, SVM kernels and
// pairwise-coupled probabilities. No ONNX types: ops/ml.ts reads the attributes into these forms.
import { erf } from './math.js';

export type Post = 'NONE' | 'SOFTMAX' | 'LOGISTIC' | 'SOFTMAX_ZERO' | 'PROBIT';

export const logistic = (v: number) => 1 / (1 + Math.exp(-v));

/** erf⁻¹: Winitzki's closed form (about 1e-3 off) polished by Newton steps on erf. */
function erfinv(y: number): number {
  if (!(Math.abs(y) < 1)) return Number.isNaN(y) ? NaN : y * Infinity;
  const a = 0.147, ln = Math.log(1 - y * y), t = 2 / (Math.PI * a) + ln / 2;
  let x = Math.sign(y) * Math.sqrt(Math.sqrt(t * t - ln / a) - t);
  for (let i = 0; i < 3; i++) x -= (erf(x) - y) / (Math.exp(-x * x) * 2 / Math.sqrt(Math.PI));
  return x;
}
/** The standard normal quantile. */
export const probit = (p: number) => Math.SQRT2 * erfinv(2 * p - 1);

/** Softmax of s[o, o+e); SOFTMAX_ZERO keeps exact zeros at zero (they stand for absent scores). */
function softmaxRow(s: Float64Array, o: number, e: number, keepZeros: boolean): void {
  let max = -Infinity, sum = 0;
  for (let j = o; j < o + e; j++) if (s[j] > max) max = s[j];
  for (let j = o; j < o + e; j++) { s[j] = keepZeros && s[j] === 0 ? 0 : Math.exp(s[j] - max); sum += s[j]; }
  if (sum > 0) for (let j = o; j < o + e; j++) s[j] /= sum;
}

/** Applies `post` in place to each row of `e` scores. */
export function postTransform(post: Post, s: Float64Array, e: number): void {
  if (post === 'LOGISTIC') for (let j = 0; j < s.length; j++) s[j] = logistic(s[j]);
  else if (post === 'PROBIT') for (let j = 0; j < s.length; j++) s[j] = probit(s[j]);
  else if (post !== 'NONE') for (let o = 0; o < s.length; o += e) softmaxRow(s, o, e, post === 'SOFTMAX_ZERO');
}

// ---- tree ensembles ----

/** Node comparisons, numbered as TreeEnsemble's nodes_modes. */
export const MODES = ['BRANCH_LEQ', 'BRANCH_LT', 'BRANCH_GTE', 'BRANCH_GT', 'BRANCH_EQ', 'BRANCH_NEQ', 'BRANCH_MEMBER'];
export type Agg = 'AVERAGE' | 'SUM' | 'MIN' | 'MAX';

/** Trees in flat arrays. A root or child ref >= 0 is a node index; a ref < 0 is the leaf ~ref. */
export interface Forest {
  roots: number[];
  feature: Int32Array; split: Float64Array; mode: Uint8Array; missingTrue: Uint8Array;
  yes: Int32Array; no: Int32Array;
  /** For BRANCH_MEMBER nodes: the values that take the true branch. */
  sets: (Set<number> | undefined)[];
  /** Leaf l adds weight[k] to target[k] for k in [leafStart[l], leafStart[l + 1]). */
  leafStart: Int32Array; target: Int32Array; weight: Float64Array;
}

function branch(f: Forest, i: number, v: number): boolean {
  if (Number.isNaN(v) && f.missingTrue[i]) return true;
  const s = f.split[i];
  switch (f.mode[i]) {
    case 0: return v <= s;
    case 1: return v < s;
    case 2: return v >= s;
    case 3: return v > s;
    case 4: return v === s;
    case 5: return v !== s;
    default: return f.sets[i]!.has(v);
  }
}

/** The leaf row x[o..] reaches from `ref`, or -1 when the walk outlasts the node count (a cycle). */
function leafOf(f: Forest, ref: number, x: Float64Array, o: number): number {
  for (let steps = 0; ref >= 0; steps++) {
    if (steps > f.mode.length) return -1;
    ref = branch(f, ref, x[o + f.feature[ref]]) ? f.yes[ref] : f.no[ref];
  }
  return ~ref;
}

/**
 * Aggregated leaf weights of every tree for each of n rows of nf features: [n, targets], plus `base`.
 * A target no leaf reached under MIN or MAX scores 0 (plus base). Returns undefined on a cyclic tree.
 */
export function forestScores(f: Forest, x: Float64Array, n: number, nf: number, targets: number, agg: Agg, base?: ArrayLike<number>): Float64Array | undefined {
  const out = new Float64Array(n * targets), seen = new Uint8Array(targets);
  for (let r = 0; r < n; r++) {
    const o = r * targets;
    seen.fill(0);
    for (const root of f.roots) {
      const leaf = leafOf(f, root, x, r * nf);
      if (leaf < 0) return undefined;
      for (let k = f.leafStart[leaf]; k < f.leafStart[leaf + 1]; k++) {
        const t = o + f.target[k], w = f.weight[k];
        if (agg === 'MIN') out[t] = seen[t - o] ? Math.min(out[t], w) : w;
        else if (agg === 'MAX') out[t] = seen[t - o] ? Math.max(out[t], w) : w;
        else out[t] += w;
        seen[t - o] = 1;
      }
    }
    for (let t = 0; t < targets; t++) {
      if (agg === 'AVERAGE') out[o + t] /= f.roots.length;
      out[o + t] += base?.[t] ?? 0;
    }
  }
  return out;
}

// ---- support vector machines ----

export type KernelType = 'LINEAR' | 'POLY' | 'RBF' | 'SIGMOID';
export type Kernel = (a: Float64Array, ao: number, b: Float64Array, bo: number, n: number) => number;

function dot(a: Float64Array, ao: number, b: Float64Array, bo: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ao + i] * b[bo + i];
  return s;
}

export function svmKernel(type: KernelType, gamma: number, coef0: number, degree: number): Kernel {
  switch (type) {
    case 'LINEAR': return dot;
    case 'POLY': return (a, ao, b, bo, n) => (gamma * dot(a, ao, b, bo, n) + coef0) ** degree;
    case 'SIGMOID': return (a, ao, b, bo, n) => Math.tanh(gamma * dot(a, ao, b, bo, n) + coef0);
    case 'RBF': return (a, ao, b, bo, n) => {
      let s = 0;
      for (let i = 0; i < n; i++) { const d = a[ao + i] - b[bo + i]; s += d * d; }
      return Math.exp(-gamma * s);
    };
  }
}

/**
 * Class probabilities from pairwise ones (r[i * k + j]: P(i | i or j)) by the pairwise coupling of
 * Wu, Lin and Weng (2004, method 2): minimise sum (r_ji p_i - r_ij p_j)^2 with sum p = 1, by
 * coordinate updates until the optimality conditions hold within 0.005 / k.
 */
export function couple(r: Float64Array, k: number): Float64Array {
  const q = new Float64Array(k * k), p = new Float64Array(k).fill(1 / k), qp = new Float64Array(k);
  for (let t = 0; t < k; t++) {
    for (let j = 0; j < k; j++) {
      if (j === t) continue;
      q[t * k + t] += r[j * k + t] ** 2;
      q[t * k + j] = -r[j * k + t] * r[t * k + j];
    }
  }
  for (let iter = 0, max = Math.max(100, k); iter < max; iter++) {
    let pqp = 0;
    for (let t = 0; t < k; t++) { qp[t] = 0; for (let j = 0; j < k; j++) qp[t] += q[t * k + j] * p[j]; pqp += p[t] * qp[t]; }
    let worst = 0;
    for (let t = 0; t < k; t++) worst = Math.max(worst, Math.abs(qp[t] - pqp));
    if (worst < 0.005 / k) break;
    for (let t = 0; t < k; t++) {
      const d = (pqp - qp[t]) / q[t * k + t], s = 1 + d;
      p[t] += d;
      pqp = (pqp + d * (d * q[t * k + t] + 2 * qp[t])) / (s * s);
      for (let j = 0; j < k; j++) { qp[j] = (qp[j] + d * q[t * k + j]) / s; p[j] /= s; }
    }
  }
  return p;
}
