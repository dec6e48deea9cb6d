// The model `lastmile run` uses when given none: a small residual CNN image classifier with fixed
// pseudo-random weights, so the command shows a real workload on a fresh install with no files.
import { f32, GraphBuilder } from '../loaders/builder.js';
import { rng } from './io.js';

export const DEFAULT_MODEL_NAME = 'built-in tiny residual CNN';

export function defaultModel(): Uint8Array {
  const g = new GraphBuilder('tiny_resnet');
  const next = rng(2024);
  const param = (name: string, shape: number[], center: number, spread: number) =>
    g.init(name, f32(shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => center + spread * (2 * next() - 1))));

  // Conv 3x3 (He-uniform weights) + BatchNormalization (inference statistics) + optional Relu.
  const convBn = (x: string, cin: number, cout: number, stride: number, name: string, relu = true) => {
    const w = param(`${name}.conv.weight`, [cout, cin, 3, 3], 0, Math.sqrt(6 / (cin * 9)));
    const c = g.node('Conv', [x, w], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [stride, stride] })[0];
    const bn = g.node('BatchNormalization', [c, param(`${name}.bn.scale`, [cout], 1, 0.2), param(`${name}.bn.bias`, [cout], 0, 0.1),
      param(`${name}.bn.mean`, [cout], 0, 0.1), param(`${name}.bn.var`, [cout], 1, 0.2)], { epsilon: 1e-5 })[0];
    return relu ? g.node('Relu', [bn])[0] : bn;
  };

  const image = g.input('image', 'float32', ['batch', 3, 32, 32]);
  const stem = convBn(convBn(image, 3, 8, 1, 'stem'), 8, 16, 2, 'down'); // -> [batch, 16, 16, 16]
  const branch = convBn(convBn(stem, 16, 16, 1, 'res.a'), 16, 16, 1, 'res.b', false);
  const joined = g.node('Relu', [g.node('Add', [branch, stem])[0]])[0];
  const pooled = g.node('Flatten', [g.node('GlobalAveragePool', [joined])[0]], { axis: 1 })[0];
  const logits = g.node('Gemm', [pooled, param('fc.weight', [10, 16], 0, 1), param('fc.bias', [10], 0, 0.1)], { transB: 1 })[0];
  g.node('Softmax', [logits], { axis: 1 }, ['probabilities']);
  g.output('probabilities', 'float32', ['batch', 10]);
  return g.model({ opset: 17 });
}
