// Whole-model tests: small but structurally faithful versions of what torchvision and HuggingFace exporters
// emit, each run at batch 1, batch 2 and batch 1 again (text models also at several sequence lengths) through ONE Lastmile
// session and ONE onnxruntime-node session, every output compared at rtol 1e-3, atol 1e-4.
import { describe, it } from 'vitest';
import { efficientnet, mobilenetV2, mobilenetV3, resnet, shufflenetV2, squeezenet } from './models/cnn.js';
import { runCase } from './models/common.js';
import { gruModel, lstmClassifier, rnnModel } from './models/recurrent.js';
import { bert, gpt2 } from './models/transformer.js';

describe('vision models (symbolic batch: 1, 2, 1 on one session)', () => {
  it('ResNet-18 style: BasicBlock, strided 1x1 projection shortcut, padded MaxPool stem', () => runCase(resnet('basic')));
  it('ResNet-50 style: Bottleneck blocks', () => runCase(resnet('bottleneck')));
  it('MobileNetV2: depthwise conv, Clip(0, 6), inverted residuals', () => runCase(mobilenetV2()));
  it('MobileNetV3: HardSwish, HardSigmoid squeeze-excite, folded BN', () => runCase(mobilenetV3()));
  it('EfficientNet: SiLU as Sigmoid*Mul, squeeze-excite', () => runCase(efficientnet()));
  it('SqueezeNet 1.1: fire modules, ceil_mode MaxPool, Dropout, AveragePool', () => runCase(squeezenet()));
  it('ShuffleNetV2 (opset 18): dynamic channel shuffle, Split, ReduceMean', () => runCase(shufflenetV2()));
});

describe('transformer models (symbolic batch and seq: [1, 5], [2, 7], [1, 3] on one session)', () => {
  it('BERT encoder, LayerNormalization op (opset 17)', () => runCase(bert('op')));
  it('BERT encoder, decomposed LayerNorm (opset 14)', () => runCase(bert('decomposed')));
  it('GPT-2 decoder, Range/Less causal mask (opset 17)', () => runCase(gpt2('range')));
  it('GPT-2 decoder, Trilu/Where causal mask, decomposed LayerNorm (opset 14)', () => runCase(gpt2('trilu')));
});

describe('recurrent models (symbolic batch and seq)', () => {
  it('bidirectional 2-layer LSTM classifier with initial states', () => runCase(lstmClassifier()));
  it('2-layer GRU, linear_before_reset=1', () => runCase(gruModel()));
  it('RNN: bidirectional tanh with sequence_lens, then ReLU layer', () => runCase(rnnModel()));
});
