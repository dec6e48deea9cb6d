// ai.onnx.ml ops against onnxruntime-node: encoders, feature transforms, linear and SVM models, tree
// ensembles in both encodings (random forests with every branch mode, NaNs and boundary values).
import { describe, expect, it } from 'vitest';
import { NdArray } from '../engine/tensor.js';
import { InferenceSession } from '../index.js';
import { f32, float, floats, GraphBuilder, i64, type AttrInput } from '../loaders/builder.js';
import { expectMatchesOrt, randomF32, rng, type OracleOptions } from './helpers/oracle.js';

type Attrs = Record<string, AttrInput>;
const strs = (...v: string[]) => new NdArray('string', [v.length], v);

function model(op: string, ins: NdArray[], attrs: Attrs, outputs = 1, ml = 3) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = ins.map((t, i) => ((feeds[`x${i}`] = t), g.input(`x${i}`, t.dtype, [...t.shape])));
  for (const o of g.node(op, names, attrs, outputs, 'ai.onnx.ml')) g.output(o, null);
  return { bytes: g.model({ opset: ml >= 5 ? 21 : 17, opsets: { 'ai.onnx.ml': ml } }), feeds };
}

async function check(op: string, ins: NdArray[], attrs: Attrs, outputs = 1, ml = 3, tol?: OracleOptions) {
  const m = model(op, ins, attrs, outputs, ml);
  await expectMatchesOrt(m.bytes, m.feeds, tol);
}

const near = (a: number[], b: number[]) => expect(a.map((v, i) => Math.abs(v - b[i])).every((d) => d < 1e-6)).toBe(true);

async function ours(op: string, ins: NdArray[], attrs: Attrs, outputs = 1, ml = 3) {
  const m = model(op, ins, attrs, outputs, ml);
  return (await InferenceSession.create(m.bytes)).runValues(new Map(Object.entries(m.feeds))) as NdArray[];
}

describe('LabelEncoder', () => {
  const x = strs('a', 'b', 'd', 'c', 'g', 'a');
  it('maps strings, ints and floats with list attributes (opset 2)', async () => {
    await check('LabelEncoder', [x], { keys_strings: ['a', 'b', 'c'], values_int64s: [0, 1, 2], default_int64: 42 }, 1, 2);
    await check('LabelEncoder', [x], { keys_strings: ['a', 'b', 'c'], values_floats: floats([0.5, 1, 2]) }, 1, 2);
    await check('LabelEncoder', [i64([5], [3, -1, 7, 3, 0])], { keys_int64s: [3, 7], values_strings: ['three', 'seven'], default_string: '?' }, 1, 2);
    await check('LabelEncoder', [f32([4], [1.5, -2, 2, 9])], { keys_floats: floats([1.5, -2, 2]), values_int64s: [1, 2, 3] }, 1, 2);
  });

  it('matches a NaN key to any NaN, and the last of repeated keys wins', async () => {
    // onnxruntime finds no NaN key in opset 2 (it compares with ==); the spec matches NaN bit patterns.
    const [y] = await ours('LabelEncoder', [f32([4], [1.5, NaN, 2, 9])], { keys_floats: floats([1.5, NaN, 2, 2]), values_int64s: [1, 2, 3, 4] }, 1, 2);
    expect([...(y.data as BigInt64Array)]).toEqual([1n, 2n, 4n, -1n]);
  });

  it('maps with tensor keys, values and defaults (opset 4)', async () => {
    await check('LabelEncoder', [x], { keys_tensor: strs('a', 'b', 'c'), values_tensor: i64([3], [0, 1, 2]), default_tensor: i64([1], [42]) }, 1, 4);
    await check('LabelEncoder', [i64([4], [4, 5, 6, 4])], { keys_tensor: i64([2], [4, 6]), values_tensor: new NdArray('float64', [2], Float64Array.of(0.25, -3)) }, 1, 4);
    await check('LabelEncoder', [x], { keys_strings: ['a', 'b'], values_strings: ['A', 'B'] }, 1, 4);
  });

  it('maps to int16 and int32 tensors, defaulting to -1 (opset 4; onnxruntime lacks these types)', async () => {
    const int16 = new NdArray('int16', [3], Int16Array.of(0, 1, 2));
    const [y] = await ours('LabelEncoder', [x], { keys_tensor: strs('a', 'b', 'c'), values_tensor: int16, default_tensor: new NdArray('int16', [1], Int16Array.of(42)) }, 1, 4);
    expect([y.dtype, [...(y.data as Int16Array)]]).toEqual(['int16', [0, 1, 42, 2, 42, 0]]);
    const [z] = await ours('LabelEncoder', [new NdArray('int32', [3], Int32Array.of(5, 6, 7))], { keys_tensor: new NdArray('int32', [1], Int32Array.of(6)), values_tensor: new NdArray('int32', [1], Int32Array.of(60)) }, 1, 4);
    expect([z.dtype, [...(z.data as Int32Array)]]).toEqual(['int32', [-1, 60, -1]]);
  });

  it('maps classes_strings both ways (opset 1)', async () => {
    await check('LabelEncoder', [x], { classes_strings: ['c', 'a', 'b'], default_int64: -7 }, 1, 1);
    await check('LabelEncoder', [i64([4], [0, 2, 3, -1])], { classes_strings: ['c', 'a', 'b'], default_string: 'none' }, 1, 1);
  });

  it('rejects inputs of another type than the keys, and missing key lists', async () => {
    await expect(ours('LabelEncoder', [i64([1], [1])], { keys_strings: ['a'], values_int64s: [1] }, 1, 2)).rejects.toThrow(/input 0 .* has dtype int64; expected one of string/);
    await expect(ours('LabelEncoder', [x], { values_int64s: [1] }, 1, 2)).rejects.toThrow(/exactly one of the 'keys_\*' attributes, got none/);
  });
});

describe('element and row transforms', () => {
  it('ArrayFeatureExtractor picks last-axis indices of any rank', async () => {
    const idx = i64([2], [0, 2]);
    await check('ArrayFeatureExtractor', [randomF32([3, 4]), idx], {});
    await check('ArrayFeatureExtractor', [randomF32([2, 3, 4]), i64([1, 3], [3, 3, 1])], {});
    await check('ArrayFeatureExtractor', [randomF32([5]), idx], {});
    await check('ArrayFeatureExtractor', [new NdArray('string', [2, 2], ['a', 'b', 'c', 'd']), i64([1], [1])], {});
    await check('ArrayFeatureExtractor', [i64([2, 3], [1, 2, 3, 4, 5, 6]), idx], {});
    await expect(ours('ArrayFeatureExtractor', [randomF32([2, 3]), i64([1], [3])], {})).rejects.toThrow(/index 3, out of range .* \(3\)/);
  });

  it('Binarizer thresholds floats and ints', async () => {
    await check('Binarizer', [f32([6], [-1, 0, 0.5, 1, 2, 1.0001])], { threshold: float(1) });
    await check('Binarizer', [randomF32([3, 4, 5], rng(2), -3, 3)], {});
    // onnxruntime implements float only.
    const [y] = await ours('Binarizer', [i64([4], [-2, 0, 3, 1])], { threshold: float(0.5) });
    expect([...(y.data as BigInt64Array)]).toEqual([0n, 0n, 1n, 1n]);
  });

  it('CategoryMapper maps strings to ints and back', async () => {
    const attrs = { cats_strings: ['cat', 'dog', 'cow'], cats_int64s: [1, 5, 9] };
    await check('CategoryMapper', [strs('dog', 'x', 'cat', 'cow')], { ...attrs, default_int64: -3 });
    await check('CategoryMapper', [i64([2, 2], [9, 1, 4, 5])], { ...attrs, default_string: 'none' });
  });

  it('Imputer replaces values, NaN included, with one or per-feature values', async () => {
    await check('Imputer', [f32([2, 3], [NaN, 1, 2, 3, NaN, 5])], { imputed_value_floats: floats([10, 20, 30]), replaced_value_float: float(NaN) });
    await check('Imputer', [f32([2, 3], [0, 1, 2, 3, 0, 5])], { imputed_value_floats: floats([-1.5]) });
    await check('Imputer', [i64([2, 2], [7, 1, 7, 7])], { imputed_value_int64s: [100, 200], replaced_value_int64: 7 });
  });

  it('OneHotEncoder encodes strings and numbers, with zeros for unknown categories', async () => {
    await check('OneHotEncoder', [new NdArray('string', [2, 2], ['a', 'z', 'c', 'a'])], { cats_strings: ['a', 'b', 'c'] });
    await check('OneHotEncoder', [i64([3], [4, 1, 8])], { cats_int64s: [1, 4, 5] });
    await check('OneHotEncoder', [new NdArray('float64', [2, 1], Float64Array.of(2, 3))], { cats_int64s: [3, 2] });
    await expect(ours('OneHotEncoder', [i64([1], [2])], { cats_int64s: [1], zeros: 0 })).rejects.toThrow(/holds 2, which is not a category/);
  });

  it('FeatureVectorizer concatenates, pads and truncates to the declared widths', async () => {
    const g = new GraphBuilder();
    g.output(g.node('FeatureVectorizer', [g.input('a', 'float32', [2, 3]), g.input('b', 'float32', [2, 1]), g.input('c', 'float32', [2, 2])], { inputdimensions: [3, 1, 2] }, 1, 'ai.onnx.ml')[0], null);
    const feeds = { a: randomF32([2, 3]), b: f32([2, 1], [4, -5]), c: f32([2, 2], [1, 2, 3, 4]) };
    await expectMatchesOrt(g.model({ opsets: { 'ai.onnx.ml': 3 } }), feeds);
  });

  it('Normalizer scales rows by max, L1 and L2 norms', async () => {
    const x = f32([3, 3], [1, -2, 3, -4, -5, -6, 0, 0, 0]);
    for (const norm of ['MAX', 'L1', 'L2']) await check('Normalizer', [x], { norm });
    await check('Normalizer', [i64([4], [1, 2, 3, 4])], { norm: 'L2' });
  });

  it('Scaler offsets then scales, per feature or for all', async () => {
    await check('Scaler', [randomF32([3, 2])], { offset: floats([0.5, -1]), scale: floats([2, 3.5]) });
    await check('Scaler', [new NdArray('int32', [4], Int32Array.of(1, 2, 3, 4))], { offset: floats([1.5]), scale: floats([0.5]) });
  });
});

const POSTS = ['NONE', 'SOFTMAX', 'LOGISTIC', 'SOFTMAX_ZERO', 'PROBIT'];
const list = (n: number, r = rng(n), lo = -1, hi = 1) => floats(Array.from({ length: n }, () => r.float(lo, hi)));

describe('linear models', () => {
  it('LinearRegressor with one or more targets and each post transform', async () => {
    const x = randomF32([4, 3], rng(3));
    await check('LinearRegressor', [x], { coefficients: list(3), intercepts: floats([0.25]) });
    for (const post of ['NONE', 'SOFTMAX', 'LOGISTIC']) await check('LinearRegressor', [x], { coefficients: list(6), intercepts: list(2), targets: 2, post_transform: post });
    await check('LinearRegressor', [f32([3], [1, 2, 3])], { coefficients: list(3) });
  });

  it('PROBIT is the normal quantile (onnxruntime approximates it to about 2e-3)', async () => {
    const x = f32([5, 1], [0.01, 0.2, 0.5, 0.77, 0.999]), attrs = { coefficients: floats([1]), post_transform: 'PROBIT' };
    await check('LinearRegressor', [x], attrs, 1, 3, { rtol: 3e-3 });
    const [y] = await ours('LinearRegressor', [f32([3, 1], [0.975, 0.5, 0.001])], attrs);
    near([...(y.data as Float32Array)], [1.959963984540054, 0, -3.090232306167813]);
  });

  it('SOFTMAX_ZERO leaves zero scores at zero', async () => {
    const attrs = { coefficients: floats([1, 0, 0, 1, 2, 2]), intercepts: floats([0, 0, 0]), classlabels_ints: [1, 2, 3], post_transform: 'SOFTMAX_ZERO' };
    await check('LinearClassifier', [f32([2, 2], [0, 1, 1, -1])], attrs, 2);
    // An all-zero row stays zero (onnxruntime divides 0 by 0).
    const [, z] = await ours('LinearClassifier', [f32([1, 2], [0, 0])], attrs, 2);
    expect([...(z.data as Float32Array)]).toEqual([0, 0, 0]);
  });

  it('LinearClassifier picks the best class, with int or string labels', async () => {
    const x = randomF32([5, 4], rng(4));
    for (const post of POSTS.slice(0, 4)) {
      await check('LinearClassifier', [x], { coefficients: list(12), intercepts: list(3), classlabels_ints: [7, 8, 9], post_transform: post }, 2);
    }
    await check('LinearClassifier', [x], { coefficients: list(8), intercepts: list(2), classlabels_strings: ['no', 'yes'] }, 2);
  });

  it('LinearClassifier scores both classes of a binary model', async () => {
    const x = randomF32([6, 2], rng(5), -2, 2);
    for (const post of ['NONE', 'LOGISTIC']) {
      await check('LinearClassifier', [x], { coefficients: list(2), intercepts: floats([0.1]), classlabels_ints: [0, 1], post_transform: post }, 2);
    }
  });
});

describe('SVM', () => {
  const x = randomF32([5, 3], rng(6));
  const kernels: [string, number[]][] = [['LINEAR', []], ['POLY', [0.5, 1, 3]], ['RBF', [0.7, 0, 0]], ['SIGMOID', [0.3, 0.2, 0]]];

  it('SVMRegressor with support vectors, each kernel, and one-class', async () => {
    for (const [kernel_type, params] of kernels) {
      const attrs = { kernel_type, kernel_params: floats(params.length ? params : [0.1, 0, 1]), n_supports: 4, support_vectors: list(12), coefficients: list(4), rho: floats([0.3]) };
      await check('SVMRegressor', [x], attrs);
      await check('SVMRegressor', [x], { ...attrs, one_class: 1 });
    }
    await check('SVMRegressor', [x], { coefficients: list(3), rho: floats([-0.2]), kernel_params: floats([0.1, 0, 1]) });
  });

  it('SVMClassifier one-vs-one votes and scores, for each kernel', async () => {
    for (const [kernel_type, params] of kernels) {
      const attrs = {
        kernel_type, kernel_params: floats(params.length ? params : [0.1, 0, 1]), vectors_per_class: [2, 1, 2], support_vectors: list(15, rng(7)),
        coefficients: list(10, rng(8), -2, 2), rho: list(3, rng(9)), classlabels_ints: [0, 1, 2],
      };
      await check('SVMClassifier', [x], attrs, 2);
    }
  });

  it('SVMClassifier probabilities from Platt scaling and pairwise coupling', async () => {
    const attrs = {
      kernel_type: 'RBF', kernel_params: floats([0.5, 0, 0]), vectors_per_class: [2, 2, 1, 1], support_vectors: list(18, rng(10)),
      coefficients: list(18, rng(11), -2, 2), rho: list(6, rng(12)), prob_a: list(6, rng(13), -3, -1), prob_b: list(6, rng(14)),
      classlabels_strings: ['a', 'b', 'c', 'd'],
    };
    await check('SVMClassifier', [x], attrs, 2);
  });

  it('SVMClassifier labels by votes even with probabilities, and scores two classes as -d, d', async () => {
    const base = { kernel_type: 'RBF', kernel_params: floats([0.5, 0, 0]), support_vectors: list(6, rng(15)), vectors_per_class: [1, 1, 1], coefficients: list(6, rng(16), -2, 2), rho: list(3, rng(17)) };
    const x2 = randomF32([6, 2], rng(18));
    await check('SVMClassifier', [x2], { ...base, classlabels_ints: [3, 7, 9], prob_a: floats([-2.1, -1, -3]), prob_b: floats([0.3, 0, 0.1]) }, 2);
    const binary = { ...base, vectors_per_class: [2, 1], coefficients: list(3, rng(19), -2, 2), rho: floats([0.1]), classlabels_ints: [3, 7] };
    for (const post_transform of ['NONE', 'LOGISTIC']) await check('SVMClassifier', [x2], { ...binary, post_transform }, 2);
    await check('SVMClassifier', [x2], { ...binary, prob_a: floats([-2.1]), prob_b: floats([0.3]) }, 2);
  });

  it('SVMClassifier without support vectors scores each class linearly', async () => {
    await check('SVMClassifier', [x], { coefficients: list(9), rho: list(3), classlabels_ints: [1, 2, 3], kernel_params: floats([0.1, 0, 1]) }, 2);
  });
});

// ---- tree ensembles ----

const MODES = ['BRANCH_LEQ', 'BRANCH_LT', 'BRANCH_GTE', 'BRANCH_GT', 'BRANCH_EQ', 'BRANCH_NEQ'];
const THRESHOLDS = [-0.5, 0, 0.25, 0.5];

/** Random trees in the opset 1/3 encoding; each leaf gets `weights(r)` [id, weight] votes. */
function legacyTrees(seed: number, trees: number, features: number, weights: (r: ReturnType<typeof rng>) => [number, number][]) {
  const r = rng(seed), n: Record<string, number[] | string[]> = {};
  const cols = ['nodes_treeids', 'nodes_nodeids', 'nodes_featureids', 'nodes_modes', 'nodes_values', 'nodes_truenodeids', 'nodes_falsenodeids', 'nodes_missing_value_tracks_true'];
  for (const c of cols) n[c] = [];
  const w = { treeids: [] as number[], nodeids: [] as number[], ids: [] as number[], weights: [] as number[] };
  for (let t = 0; t < trees; t++) {
    let next = 0;
    const grow = (depth: number): number => {
      const id = next++, leaf = depth === 0 || r.next() < 0.15, row = n.nodes_treeids.length;
      (n.nodes_treeids as number[]).push(t); (n.nodes_nodeids as number[]).push(id); (n.nodes_featureids as number[]).push(r.int(0, features - 1));
      (n.nodes_modes as string[]).push(leaf ? 'LEAF' : r.pick(MODES)); (n.nodes_values as number[]).push(r.pick(THRESHOLDS));
      (n.nodes_missing_value_tracks_true as number[]).push(r.int(0, 1));
      (n.nodes_truenodeids as number[]).push(0); (n.nodes_falsenodeids as number[]).push(0);
      if (leaf) for (const [k, v] of weights(r)) { w.treeids.push(t); w.nodeids.push(id); w.ids.push(k); w.weights.push(v); }
      else { n.nodes_truenodeids[row] = grow(depth - 1); n.nodes_falsenodeids[row] = grow(depth - 1); }
      return id;
    };
    grow(r.int(1, 4));
  }
  return { ...n, nodes_values: floats(n.nodes_values as number[]), w };
}

/** Features drawn from the thresholds (so equality branches fire), other values and NaN. */
function treeInput(seed: number, rows: number, features: number) {
  const r = rng(seed);
  return f32([rows, features], Array.from({ length: rows * features }, () => (r.next() < 0.1 ? NaN : r.next() < 0.5 ? r.pick(THRESHOLDS) : r.float(-1, 1))));
}

const classAttrs = ({ w, ...nodes }: ReturnType<typeof legacyTrees>): Attrs =>
  ({ ...nodes, class_treeids: w.treeids, class_nodeids: w.nodeids, class_ids: w.ids, class_weights: floats(w.weights) });

describe('TreeEnsembleRegressor and TreeEnsembleClassifier', () => {
  it('regress with every aggregate, base values and post transform', async () => {
    const x = treeInput(20, 30, 3);
    for (const [i, agg] of ['SUM', 'AVERAGE', 'MIN', 'MAX'].entries()) {
      const { w, ...nodes } = legacyTrees(21 + i, 4, 3, (r) => (r.next() < 0.5 ? [[0, r.float(-1, 1)]] : [[0, r.float(-1, 1)], [1, r.float(-1, 1)]]));
      const attrs = { ...nodes, target_treeids: w.treeids, target_nodeids: w.nodeids, target_ids: w.ids, target_weights: floats(w.weights), n_targets: 2, aggregate_function: agg };
      await check('TreeEnsembleRegressor', [x], attrs);
      await check('TreeEnsembleRegressor', [x], { ...attrs, base_values: floats([0.5, -1]), post_transform: i % 2 ? 'LOGISTIC' : 'SOFTMAX' });
    }
  });

  it('read float64 thresholds, weights and base values from the _as_tensor attributes', async () => {
    const d = (...v: number[]) => new NdArray('float64', [v.length], Float64Array.from(v));
    const { w, ...nodes } = legacyTrees(25, 3, 2, (r) => [[0, r.float(-1, 1)]]), x = treeInput(26, 20, 2);
    const attrs = { ...nodes, nodes_values_as_tensor: d(...(nodes.nodes_values as { __floats: number[] }).__floats), target_treeids: w.treeids, target_nodeids: w.nodeids, target_ids: w.ids, target_weights_as_tensor: d(...w.weights), base_values_as_tensor: d(0.5), n_targets: 1 };
    delete (attrs as Attrs).nodes_values;
    await check('TreeEnsembleRegressor', [new NdArray('float64', x.shape, Float64Array.from(x.data as Float32Array))], attrs);
  });

  it('classify with votes for every class (int and string labels)', async () => {
    const x = treeInput(30, 25, 4), attrs = classAttrs(legacyTrees(31, 5, 4, (r) => [[0, r.float(0, 1)], [1, r.float(0, 1)], [2, r.float(0, 1)]]));
    await check('TreeEnsembleClassifier', [x], { ...attrs, classlabels_int64s: [10, 20, 30] }, 2);
    await check('TreeEnsembleClassifier', [x], { ...attrs, classlabels_strings: ['x', 'y', 'z'], post_transform: 'SOFTMAX', base_values: floats([0.1, 0.2, 0.3]) }, 2);
  });

  it('classify binary models that score one class, with probabilities or margins', async () => {
    const x = treeInput(40, 25, 2), labels = { classlabels_int64s: [0, 1] };
    for (const cls of [0, 1]) {
      const mixed = classAttrs(legacyTrees(41, 3, 2, (r) => [[cls, r.float(-1, 1)]]));
      const positive = classAttrs(legacyTrees(42, 3, 2, (r) => [[cls, r.float(0, 0.3)]]));
      for (const post_transform of ['NONE', 'LOGISTIC']) {
        await check('TreeEnsembleClassifier', [x], { ...mixed, ...labels, post_transform }, 2);
        await check('TreeEnsembleClassifier', [x], { ...positive, ...labels, post_transform }, 2);
      }
    }
    // The common converted form (gradient boosting): margins of the first class, a base value, LOGISTIC.
    const gbm = classAttrs(legacyTrees(43, 4, 2, (r) => [[0, r.float(-1, 1)]]));
    await check('TreeEnsembleClassifier', [x], { ...gbm, ...labels, post_transform: 'LOGISTIC', base_values: floats([0.2]) }, 2);
  });
});

describe('TreeEnsemble (opset 5)', () => {
  it('passes the set-membership example of the spec', async () => {
    const attrs = {
      n_targets: 4, aggregate_function: 1, post_transform: 0, tree_roots: [0],
      membership_values: f32([8], [1.2, 3.7, 8, 9, NaN, 12, 7, NaN]), nodes_modes: new NdArray('uint8', [3], Uint8Array.of(0, 6, 6)),
      nodes_featureids: [0, 0, 0], nodes_splits: f32([3], [11, 232344, NaN]), nodes_trueleafs: [0, 1, 1], nodes_truenodeids: [1, 0, 1],
      nodes_falseleafs: [1, 0, 1], nodes_falsenodeids: [2, 2, 3], leaf_targetids: [0, 1, 2, 3], leaf_weights: f32([4], [1, 10, 1000, 100]),
    };
    const [y] = await ours('TreeEnsemble', [f32([6, 1], [1.2, 3.4, -0.12, NaN, 12, 7])], attrs, 1, 5);
    expect([...(y.data as Float32Array)]).toEqual([1, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 100, 0, 0, 1000, 0, 0, 0, 1000, 0, 0, 10, 0, 0]);
  });

  it('matches onnxruntime on random forests with every mode and aggregate', async () => {
    const x = treeInput(50, 30, 3);
    for (const agg of [0, 1, 2, 3]) {
      const r = rng(51 + agg), roots: number[] = [], n: Record<string, number[]> = {};
      for (const c of ['featureids', 'modes', 'splits', 'trueleafs', 'truenodeids', 'falseleafs', 'falsenodeids', 'missing']) n[c] = [];
      const members: number[] = [], leafTargets: number[] = [], leafWeights: number[] = [];
      const leaf = () => { leafTargets.push(r.int(0, 1)); leafWeights.push(r.float(-2, 2)); return leafWeights.length - 1; };
      const grow = (depth: number): number => {
        const i = n.modes.length, mode = r.int(0, 6);
        n.featureids.push(r.int(0, 2)); n.modes.push(mode); n.splits.push(r.pick(THRESHOLDS)); n.missing.push(r.int(0, 1));
        for (const k of ['true', 'false']) { n[`${k}leafs`].push(0); n[`${k}nodeids`].push(0); }
        // onnxruntime takes integral members only, and misplaces negative ones: {-1, 0} holds 0.5 there.
        if (mode === 6) members.push(r.int(0, 2), r.int(0, 2), NaN);
        for (const k of ['true', 'false']) {
          const isLeaf = depth === 0 || r.next() < 0.2;
          n[`${k}leafs`][i] = isLeaf ? 1 : 0;
          n[`${k}nodeids`][i] = isLeaf ? leaf() : grow(depth - 1);
        }
        return i;
      };
      for (let t = 0; t < 3; t++) roots.push(grow(3));
      const attrs: Attrs = {
        n_targets: 2, aggregate_function: agg, post_transform: agg === 1 ? 3 : 0, tree_roots: roots,
        nodes_modes: new NdArray('uint8', [n.modes.length], Uint8Array.from(n.modes)), nodes_featureids: n.featureids,
        nodes_splits: f32([n.splits.length], n.splits), nodes_trueleafs: n.trueleafs, nodes_truenodeids: n.truenodeids,
        nodes_falseleafs: n.falseleafs, nodes_falsenodeids: n.falsenodeids, nodes_missing_value_tracks_true: n.missing,
        leaf_targetids: leafTargets, leaf_weights: f32([leafWeights.length], leafWeights),
        ...(members.length ? { membership_values: f32([members.length], members) } : {}),
      };
      await check('TreeEnsemble', [x], attrs, 1, 5);
      if (agg) continue;
      // onnxruntime swaps SOFTMAX (1) and LOGISTIC (2) here, so the transforms are checked on our raw scores.
      const [raw] = await ours('TreeEnsemble', [x], attrs, 1, 5), [logit] = await ours('TreeEnsemble', [x], { ...attrs, post_transform: 2 }, 1, 5);
      const [soft] = await ours('TreeEnsemble', [x], { ...attrs, post_transform: 1 }, 1, 5), v = [...(raw.data as Float32Array)];
      const e = v.map(Math.exp), sums = e.map((_, i) => e[i - (i % 2)] + e[i - (i % 2) + 1]);
      near([...(logit.data as Float32Array)], v.map((s) => 1 / (1 + Math.exp(-s))));
      near([...(soft.data as Float32Array)], e.map((s, i) => s / sums[i]));
    }
  });

  it('rejects out-of-range children and features the input lacks', async () => {
    const base = {
      tree_roots: [0], nodes_modes: new NdArray('uint8', [1], Uint8Array.of(0)), nodes_featureids: [3], nodes_splits: f32([1], [0]),
      nodes_trueleafs: [1], nodes_truenodeids: [0], nodes_falseleafs: [1], nodes_falsenodeids: [1], leaf_targetids: [0, 0], leaf_weights: f32([2], [1, 2]),
    };
    await expect(ours('TreeEnsemble', [randomF32([2, 2])], base, 1, 5)).rejects.toThrow(/tests feature 3, but input 0 has 2 features/);
    await expect(ours('TreeEnsemble', [randomF32([2, 4])], { ...base, nodes_falsenodeids: [5] }, 1, 5)).rejects.toThrow(/node 0 has a child out of range/);
  });
});
