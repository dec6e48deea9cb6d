// ai.onnx.ml: label and category encoding, feature transforms, linear, SVM and tree-ensemble models.
// Batched ops read their input as [N, C] rows, a 1-D input being one row, and compute in float64.
// ZipMap, CastMap and DictVectorizer make or take maps (ZipMap a sequence of maps), which the engine's
// values cannot represent, so they are not registered.
import type { DType } from '../engine/dtype.js';
import type { Dim, TypeInfo } from '../engine/graph.js';
import { NdArray, sizeOf, type Value } from '../engine/tensor.js';
import { couple, forestScores, logistic, MODES, postTransform, svmKernel, type Agg, type Forest, type Kernel, type KernelType, type Post } from '../kernels/cpu/ml.js';
import { type Attrs, fail, type OpDef, register, tensorAt, type RunCtx } from './registry.js';
import { dtypeOf, shapeOf, tensorType } from './infer-rules.js';

/** An ai.onnx.ml op; typed so that `run` and `infer` see what `attrs` returns. */
const ml = <A>(d: OpDef<A>): OpDef<A> => ({ ...d, domain: 'ai.onnx.ml' });
type Ins = (Value | undefined)[];
type Types = (TypeInfo | undefined)[];
type Cells = { [i: number]: unknown };

const set = (...d: DType[]): ReadonlySet<DType> => new Set(d);
const NUMERIC = set('float32', 'float64', 'int64', 'int32');

function input(ins: Ins, i: number, types: ReadonlySet<DType>, ctx: RunCtx): NdArray {
  const x = tensorAt(ins, i, ctx);
  if (!types.has(x.dtype)) fail(ctx, `input ${i} ('${ctx.node.inputs[i]}') has dtype ${x.dtype}; expected one of ${[...types].join(', ')}`);
  return x;
}

/** Numeric input i as float64 rows [n, c]; a 1-D input is one row. */
function rows(ins: Ins, i: number, ctx: RunCtx, types = NUMERIC) {
  const t = input(ins, i, types, ctx);
  const n = t.shape.length < 2 ? 1 : t.shape[0], c = t.shape.length < 2 ? t.size : sizeOf(t.shape.slice(1));
  return { t, n, c, x: Float64Array.from(t.data as ArrayLike<number>, Number) };
}

/** Type of an [N, cols] output of a row-wise op. */
function rowsType(t: TypeInfo | undefined, dtype: DType, cols: Dim = null): TypeInfo {
  const s = shapeOf(t);
  return tensorType(dtype, s && [s.length < 2 ? 1 : s[0], cols]);
}

const f32 = (s: Float64Array, n: number, e: number) => new NdArray('float32', [n, e], Float32Array.from(s));

function oneOf<T extends string>(a: Attrs, name: string, options: readonly T[], def: T): T {
  const v = a.string(name, def);
  if (!options.includes(v as T)) throw a.error(`attribute '${name}' should be one of ${options.join(', ')}, got '${v}'`);
  return v as T;
}

const POSTS: Post[] = ['NONE', 'SOFTMAX', 'LOGISTIC', 'SOFTMAX_ZERO', 'PROBIT'];
const post = (a: Attrs) => oneOf(a, 'post_transform', POSTS, 'NONE');

/** A float-list attribute, or its float64 `_as_tensor` twin (opset 3 tree ensembles). */
const floatsOr = (a: Attrs, name: string, def?: number[]) => a.tensor(`${name}_as_tensor`)?.numbers() ?? a.floats(name, def);

function sameLength(a: Attrs, lists: Record<string, ArrayLike<unknown>>): number {
  const [[first, ref], ...rest] = Object.entries(lists);
  for (const [name, l] of rest) if (l.length !== ref.length) throw a.error(`'${name}' has ${l.length} entries; expected ${ref.length}, as '${first}'`);
  return ref.length;
}

// ---- class labels ----

interface Labels { ints?: bigint[]; strings?: string[]; count: number }

function labels(a: Attrs, intName: string): Labels {
  const s = a.has('classlabels_strings');
  if (s === a.has(intName)) throw a.error(`needs exactly one of 'classlabels_strings' and '${intName}'`);
  const l = s ? { strings: a.strings('classlabels_strings') } : { ints: a.ints(intName).map(BigInt) };
  return { ...l, count: (l.strings ?? l.ints)!.length };
}

const labelType = (l: Labels): DType => (l.strings ? 'string' : 'int64');

/** The label of each row's chosen class. */
function labelTensor(l: Labels, picks: ArrayLike<number>): NdArray {
  const n = picks.length;
  return l.strings ? new NdArray('string', [n], Array.from(picks, (k) => l.strings![k])) : new NdArray('int64', [n], BigInt64Array.from(picks, (k) => l.ints![k]));
}

function argmaxRows(s: Float64Array, n: number, e: number): Int32Array {
  const out = new Int32Array(n);
  for (let r = 0; r < n; r++) for (let j = 1; j < e; j++) if (s[r * e + j] > s[r * e + out[r]]) out[r] = j;
  return out;
}

const classifierInfer = (l: Labels, cols: Dim) => (ins: Types) => {
  const s = rowsType(ins[0], 'float32', cols);
  return [tensorType(labelType(l), s.kind === 'tensor' && s.shape ? [s.shape[0]] : undefined), s];
};

/**
 * A binary model's one score column s, for two labels: the label is the second when s passes `threshold`,
 * and the scores gain the first class's column: 1 - p beside a probability p = post(s), or post(-s)
 * beside post(s) for a margin.
 */
function binaryScores(s: Float64Array, l: Labels, p: Post, threshold: number, probability: boolean): NdArray[] {
  const n = s.length, two = new Float64Array(2 * n), picks = Int32Array.from(s, (v) => (v > threshold ? 1 : 0));
  if (probability) postTransform(p, s, 1);
  for (let r = 0; r < n; r++) { two[2 * r] = probability ? 1 - s[r] : -s[r]; two[2 * r + 1] = s[r]; }
  if (!probability) postTransform(p, two, 2);
  return [labelTensor(l, picks), f32(two, n, 2)];
}

// ---- element maps: ArrayFeatureExtractor, Binarizer, CategoryMapper, Imputer, LabelEncoder, OneHotEncoder ----

register(ml({
  op: 'ArrayFeatureExtractor',
  infer: (ins) => [tensorType(dtypeOf(ins[0]))],
  run: (ins, _a, ctx) => {
    const x = input(ins, 0, set('float32', 'float64', 'int64', 'int32', 'string'), ctx), idx = input(ins, 1, set('int64'), ctx).numbers();
    if (!x.shape.length) fail(ctx, 'input 0 (X) should have at least one dimension, got a scalar');
    const d = x.shape.at(-1)!, k = idx.length, lead = x.size / (d || 1);
    const bad = idx.find((i) => i < 0 || i >= d);
    if (bad !== undefined) fail(ctx, `input 1 (Y) holds index ${bad}, out of range for the last dimension of X (${d})`);
    const out = NdArray.zeros(x.dtype, x.shape.length === 1 ? [1, k] : [...x.shape.slice(0, -1), k]);
    const src = x.data as Cells, dst = out.data as Cells;
    for (let r = 0; r < lead; r++) for (let j = 0; j < k; j++) dst[r * k + j] = src[r * d + idx[j]];
    return [out];
  },
}));

register(ml({
  op: 'Binarizer',
  attrs: (a) => a.float('threshold', 0),
  infer: (ins) => [tensorType(dtypeOf(ins[0]), shapeOf(ins[0]))],
  run: (ins, threshold, ctx) => {
    const x = input(ins, 0, NUMERIC, ctx), out = NdArray.zeros(x.dtype, x.shape);
    const src = x.data as ArrayLike<number | bigint>, dst = out.data as Cells, one = x.dtype === 'int64' ? 1n : 1;
    for (let i = 0; i < src.length; i++) if (src[i] > threshold) dst[i] = one;
    return [out];
  },
}));

register(ml({
  op: 'CategoryMapper',
  attrs: (a) => {
    const ints = a.ints('cats_int64s').map(BigInt), strings = a.strings('cats_strings');
    sameLength(a, { cats_int64s: ints, cats_strings: strings });
    // The first of repeated categories wins, in either direction.
    const toInt = new Map<string, bigint>(), toString = new Map<bigint, string>();
    ints.forEach((v, i) => { if (!toInt.has(strings[i])) toInt.set(strings[i], v); if (!toString.has(v)) toString.set(v, strings[i]); });
    return { toInt, toString, defInt: BigInt(a.int('default_int64', -1)), defString: a.string('default_string', '_Unused') };
  },
  infer: (ins) => [tensorType(dtypeOf(ins[0]) === 'string' ? 'int64' : 'string', shapeOf(ins[0]))],
  run: (ins, a, ctx) => {
    const x = input(ins, 0, set('string', 'int64'), ctx);
    if (x.dtype === 'string') return [new NdArray('int64', x.shape, BigInt64Array.from(x.data as string[], (s) => a.toInt.get(s) ?? a.defInt))];
    return [new NdArray('string', x.shape, Array.from(x.data as BigInt64Array, (v) => a.toString.get(v) ?? a.defString))];
  },
}));

register(ml({
  op: 'Imputer',
  attrs: (a) => ({
    floats: a.floats('imputed_value_floats', []), ints: a.ints('imputed_value_int64s', []),
    replaceFloat: a.float('replaced_value_float', 0), replaceInt: a.int('replaced_value_int64', 0),
  }),
  infer: (ins) => [tensorType(dtypeOf(ins[0]), shapeOf(ins[0]))],
  run: (ins, a, ctx) => {
    const x = input(ins, 0, NUMERIC, ctx), float = x.dtype === 'float32' || x.dtype === 'float64';
    const values = float ? a.floats : a.ints, name = float ? 'imputed_value_floats' : 'imputed_value_int64s';
    const f = x.shape.at(-1) ?? 1;
    if (values.length !== 1 && values.length !== f) fail(ctx, `'${name}' has ${values.length} values; expected 1 or ${f} (the last dimension of input 0) for ${x.dtype} input`);
    const out = new NdArray(x.dtype, x.shape, x.data.slice() as never), d = out.data as Cells & ArrayLike<number | bigint>;
    const big = x.dtype === 'int64', old = float ? a.replaceFloat : a.replaceInt;
    for (let i = 0; i < d.length; i++) {
      const v = Number(d[i]);
      if (v === old || (Number.isNaN(v) && Number.isNaN(old))) { const w = values[values.length === 1 ? 0 : i % f]; d[i] = big ? BigInt(w) : w; }
    }
    return [out];
  },
}));

type Key = string | number | bigint;
const keyOf = (dtype: DType) => (dtype === 'int64' ? (v: unknown) => BigInt(v as number) : (v: unknown) => v as Key);

/** A LabelEncoder key or value list: the one `${kind}_*` attribute set, with its element type. */
function encoderList(a: Attrs, kind: 'keys' | 'values'): { dtype: DType; list: Key[] } {
  const forms = (['strings', 'int64s', 'floats', 'tensor'] as const).filter((f) => a.has(`${kind}_${f}`));
  if (forms.length !== 1) throw a.error(`needs exactly one of the '${kind}_*' attributes, got ${forms.length ? forms.join(', ') : 'none'}`);
  const f = forms[0], name = `${kind}_${f}`;
  if (f === 'tensor') { const t = a.tensor(name)!; return { dtype: t.dtype, list: Array.from(t.data as ArrayLike<Key>) }; }
  if (f === 'strings') return { dtype: 'string', list: a.strings(name) };
  return f === 'int64s' ? { dtype: 'int64', list: a.ints(name).map(BigInt) } : { dtype: 'float32', list: a.floats(name) };
}

const ENCODED = set('string', 'int64', 'float32', 'int32', 'int16', 'float64');

register(
  ml({
    op: 'LabelEncoder',
    attrs: (a) => ({ classes: a.strings('classes_strings'), defInt: BigInt(a.int('default_int64', -1)), defString: a.string('default_string', '_Unused') }),
    infer: (ins) => [tensorType(dtypeOf(ins[0]) === 'string' ? 'int64' : 'string', shapeOf(ins[0]))],
    run: (ins, a, ctx) => {
      const x = input(ins, 0, set('string', 'int64'), ctx);
      if (x.dtype === 'string') {
        const index = new Map<string, bigint>();
        a.classes.forEach((c, i) => { if (!index.has(c)) index.set(c, BigInt(i)); });
        return [new NdArray('int64', x.shape, BigInt64Array.from(x.data as string[], (s) => index.get(s) ?? a.defInt))];
      }
      return [new NdArray('string', x.shape, Array.from(x.data as BigInt64Array, (v) => (v >= 0n && v < a.classes.length ? a.classes[Number(v)] : a.defString)))];
    },
  }),
  ml({
    op: 'LabelEncoder', since: 2,
    attrs: (a) => {
      const keys = encoderList(a, 'keys'), values = encoderList(a, 'values');
      sameLength(a, { keys: keys.list, values: values.list });
      for (const l of [keys, values]) if (!ENCODED.has(l.dtype)) throw a.error(`keys and values should be one of ${[...ENCODED].join(', ')}, got ${l.dtype}`);
      const out = values.dtype, key = keyOf(keys.dtype), value = keyOf(out);
      // A later repeat of a key wins; Map's SameValueZero lets a NaN key match any NaN.
      const map = new Map(keys.list.map((k, i) => [key(k), value(values.list[i])]));
      const dt = a.tensor('default_tensor');
      const def = dt ? value(dt.data[0]) : out === 'string' ? a.string('default_string', '_Unused')
        : out === 'float32' || out === 'float64' ? a.float('default_float', -0) : value(a.int('default_int64', -1));
      return { in: keys.dtype, out, map, def };
    },
    infer: (ins, a) => [tensorType(a.out, shapeOf(ins[0]))],
    run: (ins, a, ctx) => {
      const x = input(ins, 0, set(a.in), ctx), y = NdArray.zeros(a.out, x.shape);
      const src = x.data as ArrayLike<Key>, dst = y.data as Cells;
      for (let i = 0; i < src.length; i++) dst[i] = a.map.get(src[i]) ?? a.def;
      return [y];
    },
  }),
);

register(ml({
  op: 'OneHotEncoder',
  attrs: (a) => {
    const s = a.has('cats_strings');
    if (s === a.has('cats_int64s')) throw a.error("needs exactly one of 'cats_strings' and 'cats_int64s'");
    const cats: Key[] = s ? a.strings('cats_strings') : a.ints('cats_int64s');
    return { strings: s, index: new Map(cats.map((c, i) => [c, i])), count: cats.length, zeros: a.int('zeros', 1) !== 0 };
  },
  infer: (ins, a) => { const s = shapeOf(ins[0]); return [tensorType('float32', s && [...s, a.count])]; },
  run: (ins, a, ctx) => {
    const x = input(ins, 0, a.strings ? set('string') : NUMERIC, ctx), out = NdArray.zeros('float32', [...x.shape, a.count]);
    const src = x.data as ArrayLike<Key>, dst = out.data as Float32Array;
    for (let i = 0; i < src.length; i++) {
      // Numbers are categories after truncation to an integer, as a cast to int64 would do.
      const k = a.index.get(a.strings ? src[i] : Math.trunc(Number(src[i])));
      if (k !== undefined) dst[i * a.count + k] = 1;
      else if (!a.zeros) fail(ctx, `input 0 holds ${String(src[i])}, which is not a category, and zeros is 0`);
    }
    return [out];
  },
}));

// ---- row transforms: FeatureVectorizer, Normalizer, Scaler ----

register(ml({
  op: 'FeatureVectorizer',
  attrs: (a) => a.ints('inputdimensions', []),
  infer: (ins, dims) => [rowsType(ins[0], 'float32', dims.reduce((s, d) => s + d, 0))],
  run: (ins, dims, ctx) => {
    if (ins.length !== dims.length) fail(ctx, `has ${ins.length} inputs but 'inputdimensions' lists ${dims.length}`);
    const parts = ins.map((_, i) => rows(ins, i, ctx)), n = parts[0]?.n ?? 0, width = dims.reduce((s, d) => s + d, 0);
    const out = new Float32Array(n * width);
    let at = 0;
    parts.forEach((p, i) => {
      if (p.n !== n) fail(ctx, `input ${i} has ${p.n} rows; expected ${n}, as input 0`);
      // Each input fills exactly its declared width: extra columns are dropped, missing ones stay 0.
      for (let r = 0; r < n; r++) for (let j = 0; j < Math.min(p.c, dims[i]); j++) out[r * width + at + j] = p.x[r * p.c + j];
      at += dims[i];
    });
    return [new NdArray('float32', [n, width], out)];
  },
}));

register(ml({
  op: 'Normalizer',
  attrs: (a) => oneOf(a, 'norm', ['MAX', 'L1', 'L2'] as const, 'MAX'),
  infer: (ins) => [tensorType('float32', shapeOf(ins[0]))],
  run: (ins, norm, ctx) => {
    const { t, c, x } = rows(ins, 0, ctx);
    for (let o = 0; o < x.length; o += c) {
      let d = norm === 'MAX' ? -Infinity : 0;
      for (let j = o; j < o + c; j++) d = norm === 'MAX' ? Math.max(d, x[j]) : norm === 'L1' ? d + Math.abs(x[j]) : d + x[j] * x[j];
      if (norm === 'L2') d = Math.sqrt(d);
      if (d !== 0) for (let j = o; j < o + c; j++) x[j] /= d;
    }
    return [new NdArray('float32', t.shape, Float32Array.from(x))];
  },
}));

register(ml({
  op: 'Scaler',
  attrs: (a) => ({ offset: a.floats('offset', [0]), scale: a.floats('scale', [1]) }),
  infer: (ins) => [tensorType('float32', shapeOf(ins[0]))],
  run: (ins, a, ctx) => {
    const { t, c, x } = rows(ins, 0, ctx);
    for (const [name, l] of Object.entries(a)) if (l.length !== 1 && l.length !== c) fail(ctx, `'${name}' has ${l.length} values; expected 1 or ${c}, the features of input 0`);
    const at = (l: number[], i: number) => l[l.length === 1 ? 0 : i % c];
    return [new NdArray('float32', t.shape, Float32Array.from(x, (v, i) => (v - at(a.offset, i)) * at(a.scale, i)))];
  },
}));

// ---- linear models ----

/** x[n, c] · wᵀ + b, with w holding e rows of c weights. */
function affine(x: Float64Array, n: number, c: number, w: ArrayLike<number>, b: ArrayLike<number>, e: number): Float64Array {
  const s = new Float64Array(n * e);
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < e; k++) {
      let v = b[k] ?? 0;
      for (let j = 0; j < c; j++) v += x[r * c + j] * w[k * c + j];
      s[r * e + k] = v;
    }
  }
  return s;
}

/** The number of weight rows: weights / features, which must divide and agree with the intercepts given. */
function modelCount(ctx: RunCtx, weights: number, c: number, intercepts: number): number {
  const e = c ? weights / c : intercepts;
  if (!Number.isInteger(e) || (intercepts && intercepts !== e)) fail(ctx, `${weights} coefficients do not make whole rows of ${c} features${intercepts ? ` for ${intercepts} intercepts` : ''}`);
  return e;
}

register(ml({
  op: 'LinearClassifier',
  attrs: (a) => ({ labels: labels(a, 'classlabels_ints'), w: a.floats('coefficients'), b: a.floats('intercepts', []), post: post(a) }),
  infer: (ins, a) => classifierInfer(a.labels, a.labels.count)(ins),
  run: (ins, a, ctx) => {
    const { n, c, x } = rows(ins, 0, ctx), e = modelCount(ctx, a.w.length, c, a.b.length);
    const s = affine(x, n, c, a.w, a.b, e);
    // One weight row for two labels scores the second label (a binary model).
    if (e === 1 && a.labels.count === 2) return binaryScores(s, a.labels, a.post, 0, true);
    if (e !== a.labels.count) fail(ctx, `has ${e} weight rows for ${a.labels.count} class labels`);
    postTransform(a.post, s, e);
    return [labelTensor(a.labels, argmaxRows(s, n, e)), f32(s, n, e)];
  },
}));

register(ml({
  op: 'LinearRegressor',
  attrs: (a) => ({ w: a.floats('coefficients'), b: a.floats('intercepts', []), targets: a.int('targets', 1), post: post(a) }),
  infer: (ins, a) => [rowsType(ins[0], 'float32', a.targets)],
  run: (ins, a, ctx) => {
    const { n, c, x } = rows(ins, 0, ctx);
    if (modelCount(ctx, a.w.length, c, a.b.length) !== a.targets) fail(ctx, `has ${a.w.length} coefficients; expected ${a.targets} targets × ${c} features`);
    const s = affine(x, n, c, a.w, a.b, a.targets);
    postTransform(a.post, s, a.targets);
    return [f32(s, n, a.targets)];
  },
}));

// ---- support vector machines ----

function kernelAttrs(a: Attrs) {
  const [gamma = 0, coef0 = 0, degree = 0] = a.floats('kernel_params', []);
  const type = oneOf<KernelType>(a, 'kernel_type', ['LINEAR', 'POLY', 'RBF', 'SIGMOID'], 'LINEAR');
  return svmKernel(type, gamma, coef0, degree);
}

register(ml({
  op: 'SVMRegressor',
  attrs: (a) => ({
    kernel: kernelAttrs(a), coef: Float64Array.from(a.floats('coefficients', [])), sv: Float64Array.from(a.floats('support_vectors', [])),
    n: a.int('n_supports', 0), rho: a.floats('rho', [0])[0] ?? 0, oneClass: a.int('one_class', 0) !== 0, post: post(a),
  }),
  infer: (ins) => [rowsType(ins[0], 'float32', 1)],
  run: (ins, a, ctx) => {
    const { n, c, x } = rows(ins, 0, ctx), s = new Float64Array(n);
    // Without support vectors the coefficients are one weight vector through the kernel.
    const k = a.n || 1, sv = a.n ? a.sv : a.coef;
    if (sv.length !== k * c) fail(ctx, `has ${sv.length} support vector values; expected ${k} × ${c} features`);
    for (let r = 0; r < n; r++) {
      let v = a.rho;
      if (a.n) for (let j = 0; j < k; j++) v += a.coef[j] * a.kernel(x, r * c, sv, j * c, c);
      else v += a.kernel(x, r * c, sv, 0, c);
      s[r] = a.oneClass ? (v > 0 ? 1 : -1) : v;
    }
    postTransform(a.post, s, 1);
    return [f32(s, n, 1)];
  },
}));

register(ml({
  op: 'SVMClassifier',
  attrs: (a) => {
    const perClass = a.ints('vectors_per_class', []);
    return {
      labels: labels(a, 'classlabels_ints'), kernel: kernelAttrs(a), post: post(a), perClass,
      coef: Float64Array.from(a.floats('coefficients', [])), sv: Float64Array.from(a.floats('support_vectors', [])),
      rho: a.floats('rho', []), probA: a.floats('prob_a', []), probB: a.floats('prob_b', []),
    };
  },
  infer: (ins, a) => classifierInfer(a.labels, null)(ins),
  run: (ins, a, ctx) => {
    const { n, c, x } = rows(ins, 0, ctx);
    return a.perClass.length ? svc(a, x, n, c, ctx) : linearSvm(a, x, n, c, ctx);
  },
}));

type SvmAttrs = { labels: Labels; kernel: Kernel; post: Post; perClass: number[]; coef: Float64Array; sv: Float64Array; rho: number[]; probA: number[]; probB: number[] };

/** No support vectors: one coefficient row per class through the kernel, plus rho[0] (as onnxruntime). */
function linearSvm(a: SvmAttrs, x: Float64Array, n: number, c: number, ctx: RunCtx): NdArray[] {
  const e = modelCount(ctx, a.coef.length, c, 0), s = new Float64Array(n * e);
  if (e !== a.labels.count) fail(ctx, `has ${e} coefficient rows for ${a.labels.count} class labels`);
  for (let r = 0; r < n; r++) for (let k = 0; k < e; k++) s[r * e + k] = a.kernel(x, r * c, a.coef, k * c, c) + (a.rho[0] ?? 0);
  postTransform(a.post, s, e);
  return [labelTensor(a.labels, argmaxRows(s, n, e)), f32(s, n, e)];
}

/**
 * Support vector classification, one-vs-one as libsvm: the pair (i, j) scores its two classes' support
 * vectors (coefficient row j - 1 for class i's, row i for class j's) plus rho, and votes i when positive.
 * The label is the most voted class, as scikit-learn's predict; with prob_a/prob_b the scores are class
 * probabilities, pair scores made probabilities (Platt) then coupled.
 */
function svc(a: SvmAttrs, x: Float64Array, n: number, c: number, ctx: RunCtx): NdArray[] {
  const k = a.perClass.length, total = a.perClass.reduce((s, v) => s + v, 0), pairs = (k * (k - 1)) / 2;
  const start = a.perClass.map((_, i) => a.perClass.slice(0, i).reduce((s, v) => s + v, 0));
  if (k !== a.labels.count) fail(ctx, `'vectors_per_class' has ${k} classes for ${a.labels.count} class labels`);
  if (a.sv.length !== total * c) fail(ctx, `has ${a.sv.length} support vector values; expected ${total} vectors × ${c} features`);
  if (a.coef.length !== (k - 1) * total || a.rho.length < pairs) fail(ctx, `needs ${(k - 1) * total} coefficients and ${pairs} rho values, got ${a.coef.length} and ${a.rho.length}`);
  const proba = a.probA.length > 0;
  if (proba && (a.probA.length < pairs || a.probB.length < pairs)) fail(ctx, `needs ${pairs} prob_a and prob_b values, got ${a.probA.length} and ${a.probB.length}`);
  const kv = new Float64Array(total), scores = new Float64Array(n * (proba ? k : pairs)), picks = new Int32Array(n);
  const votes = new Int32Array(k), r2 = new Float64Array(k * k);
  for (let r = 0; r < n; r++) {
    for (let v = 0; v < total; v++) kv[v] = a.kernel(x, r * c, a.sv, v * c, c);
    votes.fill(0);
    for (let i = 0, p = 0; i < k; i++) {
      for (let j = i + 1; j < k; j++, p++) {
        let d = a.rho[p];
        for (let m = 0; m < a.perClass[i]; m++) d += a.coef[(j - 1) * total + start[i] + m] * kv[start[i] + m];
        for (let m = 0; m < a.perClass[j]; m++) d += a.coef[i * total + start[j] + m] * kv[start[j] + m];
        votes[d > 0 ? i : j]++;
        if (!proba) { scores[r * pairs + p] = d; continue; }
        const q = Math.min(Math.max(1 - logistic(d * a.probA[p] + a.probB[p]), 1e-7), 1 - 1e-7);
        r2[i * k + j] = q;
        r2[j * k + i] = 1 - q;
      }
    }
    if (proba) scores.set(couple(r2, k), r * k);
    picks[r] = argmaxRows(Float64Array.from(votes), 1, k)[0];
  }
  // Two classes without probabilities have one score d; the columns are -d and d (as onnxruntime).
  const e = proba || k === 2 ? k : pairs, z = k === 2 && !proba ? Float64Array.from({ length: 2 * n }, (_, i) => (i % 2 ? 1 : -1) * scores[i >> 1]) : scores;
  postTransform(a.post, z, e);
  return [labelTensor(a.labels, picks), f32(z, n, e)];
}

// ---- tree ensembles ----

const AGGS: Agg[] = ['AVERAGE', 'SUM', 'MIN', 'MAX'];

/** An enum attribute stored as an int (TreeEnsemble) naming one of `options`. */
function enumInt<T>(a: Attrs, name: string, options: T[], def: number): T {
  const v = a.int(name, def);
  if (!(v >= 0 && v < options.length)) throw a.error(`attribute '${name}' should be in [0, ${options.length}), got ${v}`);
  return options[v];
}

function needTensor(a: Attrs, name: string): NdArray {
  return a.tensor(name) ?? (() => { throw a.error(`missing required attribute '${name}'`); })();
}

/** Checks a forest's references: children and roots within the nodes and leaves, leaf targets within targets. */
function checkForest(a: Attrs, f: Forest, leaves: number, targets: number): Forest {
  const nodes = f.mode.length;
  const bad = (ref: number) => (ref >= 0 ? ref >= nodes : ~ref >= leaves);
  for (let i = 0; i < nodes; i++) if (f.mode[i] <= 6 && (bad(f.yes[i]) || bad(f.no[i]))) throw a.error(`node ${i} has a child out of range (${nodes} nodes, ${leaves} leaves)`);
  const root = f.roots.find(bad);
  if (root !== undefined) throw a.error(`tree root ${root} is out of range for ${nodes} nodes`);
  const t = f.target.find((v) => v < 0 || v >= targets);
  if (t !== undefined) throw a.error(`a leaf targets ${t}, out of range for ${targets} targets`);
  return f;
}

/** TreeEnsemble (opset 5): nodes and leaves in separate lists, each branch saying whether it ends in a leaf. */
function forest5(a: Attrs): Forest & { targets: number } {
  const feature = a.ints('nodes_featureids'), yes = a.ints('nodes_truenodeids'), no = a.ints('nodes_falsenodeids');
  const yesLeaf = a.ints('nodes_trueleafs'), noLeaf = a.ints('nodes_falseleafs'), mode = needTensor(a, 'nodes_modes').numbers();
  const split = needTensor(a, 'nodes_splits').numbers(), missing = a.ints('nodes_missing_value_tracks_true', feature.map(() => 0));
  const nodes = sameLength(a, {
    nodes_featureids: feature, nodes_truenodeids: yes, nodes_falsenodeids: no, nodes_trueleafs: yesLeaf, nodes_falseleafs: noLeaf,
    nodes_modes: mode, nodes_splits: split, nodes_missing_value_tracks_true: missing,
  });
  const target = a.ints('leaf_targetids'), weight = needTensor(a, 'leaf_weights').numbers();
  const leaves = sameLength(a, { leaf_targetids: target, leaf_weights: weight });
  const bad = mode.find((m) => !(m >= 0 && m <= 6));
  if (bad !== undefined) throw a.error(`nodes_modes holds ${bad}; expected 0 to 6`);
  // membership_values lists the sets of the BRANCH_MEMBER nodes in node order, each ended by a NaN.
  const members = a.tensor('membership_values')?.numbers() ?? [], sets: (Set<number> | undefined)[] = [];
  let at = 0;
  for (let i = 0; i < nodes; i++) {
    if (mode[i] !== 6) continue;
    const s = new Set<number>();
    while (at < members.length && !Number.isNaN(members[at])) s.add(members[at++]);
    if (at++ > members.length) throw a.error(`membership_values has fewer sets than the ${mode.filter((m) => m === 6).length} BRANCH_MEMBER nodes`);
    sets[i] = s;
  }
  const f: Forest = {
    roots: a.ints('tree_roots'), feature: Int32Array.from(feature), split: Float64Array.from(split), mode: Uint8Array.from(mode),
    missingTrue: Uint8Array.from(missing), yes: Int32Array.from(yes, (v, i) => (yesLeaf[i] ? ~v : v)), no: Int32Array.from(no, (v, i) => (noLeaf[i] ? ~v : v)),
    sets, leafStart: Int32Array.from({ length: leaves + 1 }, (_, i) => i), target: Int32Array.from(target), weight: Float64Array.from(weight),
  };
  const targets = a.int('n_targets', target.reduce((m, v) => Math.max(m, v), -1) + 1);
  return { ...checkForest(a, f, leaves, targets), targets };
}

/**
 * The opset 1/3 encoding: nodes named by (tree id, node id), LEAF nodes carrying weights listed in
 * `${p}_treeids/_nodeids/_ids/_weights`. Each tree's root is its first node listed (as onnxruntime).
 */
function legacyForest(a: Attrs, p: 'target' | 'class') {
  const tree = a.ints('nodes_treeids'), id = a.ints('nodes_nodeids'), feature = a.ints('nodes_featureids'), modes = a.strings('nodes_modes');
  const yesId = a.ints('nodes_truenodeids'), noId = a.ints('nodes_falsenodeids'), split = floatsOr(a, 'nodes_values', tree.map(() => 0));
  const missing = a.ints('nodes_missing_value_tracks_true', tree.map(() => 0));
  const nodes = sameLength(a, {
    nodes_treeids: tree, nodes_nodeids: id, nodes_featureids: feature, nodes_modes: modes, nodes_truenodeids: yesId,
    nodes_falsenodeids: noId, nodes_values: split, nodes_missing_value_tracks_true: missing,
  });
  const mode = modes.map((m) => (m === 'LEAF' ? 255 : MODES.indexOf(m)));
  const badMode = modes.find((_, i) => mode[i] < 0);
  if (badMode !== undefined) throw a.error(`nodes_modes holds '${badMode}'; expected one of ${MODES.join(', ')}, LEAF`);
  const index = new Map<string, number>(), leafOf = new Int32Array(nodes).fill(-1);
  let leaves = 0;
  tree.forEach((t, i) => { index.set(`${t}:${id[i]}`, i); if (mode[i] === 255) leafOf[i] = leaves++; });
  const node = (t: number, k: number, what: string) => index.get(`${t}:${k}`) ?? (() => { throw a.error(`${what} names node ${k} of tree ${t}, which does not exist`); })();
  const ref = (i: number) => (leafOf[i] >= 0 ? ~leafOf[i] : i);
  const yes = new Int32Array(nodes), no = new Int32Array(nodes);
  for (let i = 0; i < nodes; i++) {
    if (mode[i] === 255) continue;
    yes[i] = ref(node(tree[i], yesId[i], 'nodes_truenodeids'));
    no[i] = ref(node(tree[i], noId[i], 'nodes_falsenodeids'));
  }
  const roots = new Map<number, number>();
  tree.forEach((t, i) => { if (!roots.has(t)) roots.set(t, ref(i)); });
  // Weights grouped by leaf, in list order. Weights on branch nodes, which old converters wrote, are ignored.
  const wTree = a.ints(`${p}_treeids`, []), wNode = a.ints(`${p}_nodeids`, []), wId = a.ints(`${p}_ids`, []), w = floatsOr(a, `${p}_weights`, []);
  sameLength(a, { [`${p}_treeids`]: wTree, [`${p}_nodeids`]: wNode, [`${p}_ids`]: wId, [`${p}_weights`]: w });
  const byLeaf: number[][] = Array.from({ length: leaves }, () => []);
  wTree.forEach((t, k) => byLeaf[leafOf[node(t, wNode[k], `${p}_nodeids`)]]?.push(k));
  const order = byLeaf.flat(), leafStart = new Int32Array(leaves + 1);
  byLeaf.forEach((l, i) => { leafStart[i + 1] = leafStart[i] + l.length; });
  const f: Forest = {
    roots: [...roots.values()], feature: Int32Array.from(feature), split: Float64Array.from(split), mode: Uint8Array.from(mode),
    missingTrue: Uint8Array.from(missing), yes, no, sets: [], leafStart,
    target: Int32Array.from(order, (k) => wId[k]), weight: Float64Array.from(order, (k) => w[k]),
  };
  return { f, leaves, ids: wId };
}

function runForest(ins: Ins, ctx: RunCtx, f: Forest, targets: number, agg: Agg, base?: number[], types = NUMERIC) {
  const { t, n, c, x } = rows(ins, 0, ctx, types);
  const far = f.feature.find((v, i) => f.mode[i] <= 6 && (v < 0 || v >= c));
  if (far !== undefined) fail(ctx, `a node tests feature ${far}, but input 0 has ${c} features`);
  const s = forestScores(f, x, n, c, targets, agg, base) ?? fail(ctx, 'a tree has a cycle');
  return { t, n, s };
}

register(ml({
  op: 'TreeEnsemble', since: 5,
  attrs: (a) => ({ f: forest5(a), agg: enumInt(a, 'aggregate_function', AGGS, 1), post: enumInt(a, 'post_transform', POSTS, 0) }),
  infer: (ins, a) => [rowsType(ins[0], dtypeOf(ins[0]) ?? 'float32', a.f.targets)],
  run: (ins, a, ctx) => {
    const { t, n, s } = runForest(ins, ctx, a.f, a.f.targets, a.agg, undefined, set('float32', 'float64', 'float16'));
    postTransform(a.post, s, a.f.targets);
    return [new NdArray(t.dtype, [n, a.f.targets], t.dtype === 'float64' ? s : Float32Array.from(s))];
  },
}));

register(ml({
  op: 'TreeEnsembleRegressor',
  attrs: (a) => {
    const { f, leaves, ids } = legacyForest(a, 'target');
    const targets = a.int('n_targets', ids.reduce((m, v) => Math.max(m, v), -1) + 1);
    return { f: checkForest(a, f, leaves, targets), targets, agg: oneOf(a, 'aggregate_function', AGGS, 'SUM'), base: floatsOr(a, 'base_values', []), post: post(a) };
  },
  infer: (ins, a) => [rowsType(ins[0], 'float32', a.targets)],
  run: (ins, a, ctx) => {
    const { n, s } = runForest(ins, ctx, a.f, a.targets, a.agg, a.base);
    postTransform(a.post, s, a.targets);
    return [f32(s, n, a.targets)];
  },
}));

register(ml({
  op: 'TreeEnsembleClassifier',
  attrs: (a) => {
    const l = labels(a, 'classlabels_int64s'), { f, leaves, ids } = legacyForest(a, 'class');
    // Two labels with weights for one class only: the ensemble scores that class alone (a binary model).
    const binary = l.count === 2 && new Set(ids).size === 1;
    return {
      labels: l, f: checkForest(a, f, leaves, l.count), base: floatsOr(a, 'base_values', []), post: post(a), binary, scored: ids[0] ?? 0,
      probabilities: f.weight.every((w) => w >= 0),
    };
  },
  infer: (ins, a) => classifierInfer(a.labels, a.labels.count)(ins),
  run: (ins, a, ctx) => {
    const { n, s } = runForest(ins, ctx, a.f, a.labels.count, 'SUM', a.base);
    if (!a.binary) {
      postTransform(a.post, s, a.labels.count);
      return [labelTensor(a.labels, argmaxRows(s, n, a.labels.count)), f32(s, n, a.labels.count)];
    }
    // A binary model picks the second label when its one score passes 0.5 (probabilities) or 0 (margins).
    // Scoring the second class, its columns are those of both classes; scoring the first, they are made.
    const threshold = a.probabilities ? 0.5 : 0, one = Float64Array.from({ length: n }, (_, r) => s[2 * r + a.scored]);
    if (!a.scored) return binaryScores(one, a.labels, a.post, threshold, a.probabilities);
    postTransform(a.post, s, 2);
    return [labelTensor(a.labels, Int32Array.from(one, (v) => (v > threshold ? 1 : 0))), f32(s, n, 2)];
  },
}));
