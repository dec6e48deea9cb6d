// ai.onnx.preview.training optimizers: one update step of Adagrad, Adam or momentum (standard or Nesterov)
// for any number of tensors per node, computed in float64 and stored in each tensor's dtype.
// Gradient is not registered: it differentiates the enclosing graph, which needs autodiff of every op.
import { NdArray, type Value } from '../engine/tensor.js';
import type { TypeInfo } from '../engine/graph.js';
import { type Attrs, fail, register, tensorAt, type RunCtx } from './registry.js';

const TRAINING = 'ai.onnx.preview.training';
type Floats = Float32Array | Float64Array;

/**
 * R (float scalar), T (int64 scalar), then `roles` groups of n tensors (X_1..X_n, G_1..G_n, ...).
 * Every tensor of position i must have X_i's dtype and shape.
 */
function operands(ins: (Value | undefined)[], ctx: RunCtx, roles: string[]) {
  const r = tensorAt(ins, 0, ctx), t = tensorAt(ins, 1, ctx), n = (ins.length - 2) / roles.length;
  if (r.size !== 1 || (r.dtype !== 'float32' && r.dtype !== 'float64')) fail(ctx, `input 0 (R) should be a float scalar, got ${r.dtype} [${r.shape}]`);
  if (t.size !== 1 || t.dtype !== 'int64') fail(ctx, `input 1 (T) should be an int64 scalar, got ${t.dtype} [${t.shape}]`);
  if (!Number.isInteger(n) || n < 1) fail(ctx, `has ${ins.length - 2} tensors after R and T; expected a positive multiple of ${roles.length} (${roles.join(', ')})`);
  const groups = roles.map((role, k) => Array.from({ length: n }, (_, i) => {
    const v = tensorAt(ins, 2 + k * n + i, ctx), x = tensorAt(ins, 2 + i, ctx);
    if (v.dtype !== 'float32' && v.dtype !== 'float64') fail(ctx, `${role}_${i + 1} (input ${2 + k * n + i}) has dtype ${v.dtype}; expected float32 or float64`);
    if (v.dtype !== x.dtype || v.shape.join() !== x.shape.join()) fail(ctx, `${role}_${i + 1} is ${v.dtype} [${v.shape}]; expected ${x.dtype} [${x.shape}], as X_${i + 1}`);
    return v.data as Floats;
  }));
  const like = (i: number) => { const x = tensorAt(ins, 2 + i, ctx); return NdArray.zeros(x.dtype, x.shape); };
  return { r: Number(r.data[0]), t: Number(t.data[0]), n, groups, like };
}

const norm = (a: Attrs, def?: number) => a.float('norm_coefficient', def);

/** Outputs are `roles - 1` groups of n tensors, each typed as its X. */
const inferAs = (roles: number) => (ins: (TypeInfo | undefined)[]) => {
  const n = (ins.length - 2) / roles;
  return Number.isInteger(n) ? Array.from({ length: (roles - 1) * n }, (_, o) => ins[2 + (o % n)]) : [];
};

register({
  op: 'Adagrad', domain: TRAINING,
  attrs: (a) => ({ decay: a.float('decay_factor', 0), eps: a.float('epsilon', 0), norm: norm(a, 0) }),
  infer: inferAs(3),
  run: (ins, a, ctx) => {
    const { r, t, n, groups: [X, G, H], like } = operands(ins, ctx, ['X', 'G', 'H']);
    const rate = r / (1 + t * a.decay), xs: NdArray[] = [], hs: NdArray[] = [];
    for (let i = 0; i < n; i++) {
      const xn = like(i), hn = like(i), xo = xn.data as Floats, ho = hn.data as Floats, x = X[i], g = G[i], h = H[i];
      for (let j = 0; j < x.length; j++) {
        const gr = a.norm * x[j] + g[j], hv = h[j] + gr * gr;
        ho[j] = hv;
        xo[j] = x[j] - (rate * gr) / (Math.sqrt(hv) + a.eps);
      }
      xs.push(xn); hs.push(hn);
    }
    return [...xs, ...hs];
  },
});

register({
  op: 'Adam', domain: TRAINING,
  attrs: (a) => ({ alpha: a.float('alpha', 0.9), beta: a.float('beta', 0.999), eps: a.float('epsilon', 0), norm: norm(a, 0), post: a.float('norm_coefficient_post', 0) }),
  infer: inferAs(4),
  run: (ins, a, ctx) => {
    const { r, t, n, groups: [X, G, V, H], like } = operands(ins, ctx, ['X', 'G', 'V', 'H']);
    // Bias correction of both running averages folds into the rate.
    const rate = t > 0 ? (r * Math.sqrt(1 - a.beta ** t)) / (1 - a.alpha ** t) : r;
    const xs: NdArray[] = [], vs: NdArray[] = [], hs: NdArray[] = [];
    for (let i = 0; i < n; i++) {
      const xn = like(i), vn = like(i), hn = like(i), xo = xn.data as Floats, vo = vn.data as Floats, ho = hn.data as Floats;
      const x = X[i], g = G[i], v = V[i], h = H[i];
      for (let j = 0; j < x.length; j++) {
        const gr = a.norm * x[j] + g[j], vv = a.alpha * v[j] + (1 - a.alpha) * gr, hv = a.beta * h[j] + (1 - a.beta) * gr * gr;
        vo[j] = vv;
        ho[j] = hv;
        xo[j] = (1 - a.post) * (x[j] - (rate * vv) / (Math.sqrt(hv) + a.eps));
      }
      xs.push(xn); vs.push(vn); hs.push(hn);
    }
    return [...xs, ...vs, ...hs];
  },
});

register({
  op: 'Momentum', domain: TRAINING,
  attrs: (a) => {
    const mode = a.string('mode');
    if (mode !== 'standard' && mode !== 'nesterov') throw a.error(`attribute 'mode' should be 'standard' or 'nesterov', got '${mode}'`);
    return { alpha: a.float('alpha'), beta: a.float('beta'), norm: norm(a), nesterov: mode === 'nesterov' };
  },
  infer: inferAs(3),
  run: (ins, a, ctx) => {
    const { r, t, n, groups: [X, G, V], like } = operands(ins, ctx, ['X', 'G', 'V']);
    const beta = t > 0 ? a.beta : 1, xs: NdArray[] = [], vs: NdArray[] = [];
    for (let i = 0; i < n; i++) {
      const xn = like(i), vn = like(i), xo = xn.data as Floats, vo = vn.data as Floats, x = X[i], g = G[i], v = V[i];
      for (let j = 0; j < x.length; j++) {
        const gr = a.norm * x[j] + g[j], vv = a.alpha * v[j] + beta * gr;
        vo[j] = vv;
        xo[j] = x[j] - r * (a.nesterov ? gr + a.alpha * vv : vv);
      }
      xs.push(xn); vs.push(vn);
    }
    return [...xs, ...vs];
  },
});
