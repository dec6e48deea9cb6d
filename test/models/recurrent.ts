// Recurrent models shaped like torch.onnx exports of nn.LSTM / nn.GRU / nn.RNN with batch_first=True:
// the exporter transposes to ONNX's [seq, batch, feature], emits one ONNX node per layer (slicing that
// layer's initial states out of h0 [layers*dirs, batch, H]) and reshapes bidirectional outputs back.
// Weights use PyTorch's default U(-1/sqrt(H), 1/sqrt(H)) init. Sequence inputs are [batch, seq], both symbolic.
import { NdArray } from '../../engine/tensor.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { Net, type ModelCase } from './common.js';

const tokens = (b: number, s: number, vocab: number, seed: number) => {
  const r = rng(seed);
  return new NdArray('int64', [b, s], BigInt64Array.from({ length: b * s }, () => BigInt(r.int(0, vocab - 1))));
};
/** [seq, dirs, batch, H] -> [seq, batch, dirs*H]: torch's Transpose(perm 0,2,1,3) then Reshape [0, 0, -1]. */
const mergeDirections = (n: Net, y: string) => n.op('Reshape', [n.op('Transpose', [y], { perm: [0, 2, 1, 3] }), n.i64([0, 0, -1])]);
const batchFirst = (n: Net, x: string) => n.op('Transpose', [x], { perm: [1, 0, 2] });
/** Gate weights W [dirs, gates*H, din], R [dirs, gates*H, H], B [dirs, 2*gates*H]. */
const gateWeights = (n: Net, dirs: number, gates: number, din: number, H: number) =>
  [n.torchDefault('W', [dirs, gates * H, din], H), n.torchDefault('R', [dirs, gates * H, H], H), n.torchDefault('B', [dirs, 2 * gates * H], H)];

/**
 * Text classifier: Embedding -> 2-layer bidirectional LSTM with given (h0, c0) -> last time step -> Linear.
 * Outputs logits [batch, 5] and the final states h_n, c_n [4, batch, 32] (per-layer Y_h/Y_c concatenated).
 */
export function lstmClassifier(): ModelCase {
  const [V, E, H, L, C] = [50, 32, 32, 2, 5];
  const n = new Net(81);
  const ids = n.g.input('tokens', 'int64', ['batch', 'seq']);
  const h0 = n.g.input('h0', 'float32', [2 * L, 'batch', H]);
  const c0 = n.g.input('c0', 'float32', [2 * L, 'batch', H]);
  let x = batchFirst(n, n.op('Gather', [n.uniform('emb', [V, E], -1, 1), ids], { axis: 0 }));
  const hs: string[] = [], cs: string[] = [];
  for (let l = 0, din = E; l < L; l++, din = 2 * H) {
    const layerState = (t: string) => n.op('Slice', [t, n.i64([2 * l]), n.i64([2 * l + 2]), n.i64([0])]);
    const [y, yh, yc] = n.ops('LSTM', [x, ...gateWeights(n, 2, 4, din, H), '', layerState(h0), layerState(c0)], { direction: 'bidirectional', hidden_size: H }, 3);
    hs.push(yh); cs.push(yc);
    x = mergeDirections(n, y);
  }
  const last = n.op('Gather', [batchFirst(n, x), n.i64(-1)], { axis: 1 }); // output[:, -1, :]
  n.g.output(n.gemm(last, 2 * H, C), 'float32', ['batch', C]);
  n.g.output(n.op('Concat', hs, { axis: 0 }), 'float32', [2 * L, 'batch', H]);
  n.g.output(n.op('Concat', cs, { axis: 0 }), 'float32', [2 * L, 'batch', H]);
  return {
    bytes: n.model(17),
    feeds: (b, s) => ({ tokens: tokens(b, s, V, 700 + b), h0: randomF32([2 * L, b, H], rng(710 + b), -0.5, 0.5), c0: randomF32([2 * L, b, H], rng(720 + b), -0.5, 0.5) }),
  };
}

/**
 * Embedding -> 2-layer GRU with linear_before_reset=1 (PyTorch's GRU formulation), Squeeze of the
 * direction axis (axes as an input, opset 13+), outputs the sequence [batch, seq, 32], h_n and a Linear
 * over the last layer's final state.
 */
export function gruModel(): ModelCase {
  const [V, E, H, L, C] = [50, 24, 32, 2, 5];
  const n = new Net(82);
  const ids = n.g.input('tokens', 'int64', ['batch', 'seq']);
  const h0 = n.g.input('h0', 'float32', [L, 'batch', H]);
  let x = batchFirst(n, n.op('Gather', [n.uniform('emb', [V, E], -1, 1), ids], { axis: 0 }));
  const hs: string[] = [];
  for (let l = 0, din = E; l < L; l++, din = H) {
    const init = n.op('Slice', [h0, n.i64([l]), n.i64([l + 1]), n.i64([0])]);
    const [y, yh] = n.ops('GRU', [x, ...gateWeights(n, 1, 3, din, H), '', init], { hidden_size: H, linear_before_reset: 1 }, 2);
    hs.push(yh);
    x = n.op('Squeeze', [y, n.i64([1])]);
  }
  n.g.output(batchFirst(n, x), 'float32', ['batch', 'seq', H]);
  n.g.output(n.op('Concat', hs, { axis: 0 }), 'float32', [L, 'batch', H]);
  n.g.output(n.gemm(n.op('Squeeze', [hs[L - 1], n.i64([0])]), H, C), 'float32', ['batch', C]);
  return { bytes: n.model(17), feeds: (b, s) => ({ tokens: tokens(b, s, V, 800 + b), h0: randomF32([L, b, H], rng(810 + b), -0.5, 0.5) }) };
}

/**
 * Plain Elman RNN over float features: a bidirectional tanh layer honouring per-row sequence_lens (what a
 * packed padded sequence exports to), no initial state, then a ReLU layer (nonlinearity='relu'), then a
 * Linear regressor on the last layer's h_n.
 */
export function rnnModel(): ModelCase {
  const [F, H] = [16, 24];
  const n = new Net(83);
  const feats = n.g.input('features', 'float32', ['batch', 'seq', F]);
  const lens = n.g.input('lengths', 'int32', ['batch']);
  const [y1, yh1] = n.ops('RNN', [batchFirst(n, feats), ...gateWeights(n, 2, 1, F, H), lens], { activations: ['Tanh', 'Tanh'], direction: 'bidirectional', hidden_size: H }, 2);
  const [y2, yh2] = n.ops('RNN', [mergeDirections(n, y1), ...gateWeights(n, 1, 1, 2 * H, H)], { activations: ['Relu'], hidden_size: H }, 2);
  n.g.output(batchFirst(n, n.op('Squeeze', [y2, n.i64([1])])), 'float32', ['batch', 'seq', H]);
  n.g.output(yh1, 'float32', [2, 'batch', H]);
  n.g.output(n.gemm(n.op('Squeeze', [yh2, n.i64([0])]), H, 1), 'float32', ['batch', 1]);
  return {
    bytes: n.model(17),
    // Row 0 uses the full length; later rows are shorter, so padding must be skipped (and zeroed in Y).
    feeds: (b, s) => ({ features: randomF32([b, s, F], rng(900 + b)), lengths: new NdArray('int32', [b], Int32Array.from({ length: b }, (_, i) => Math.max(1, s - 3 * i))) }),
  };
}
