// Whole models on WebGPU with strict: true (every compute node on the GPU), outputs against the CPU
// backend, batch 1 then 2 then 1 on ONE session; the second shape must compile no new pipeline.
import { expect, it } from 'vitest';
import { compareValues } from '../../conformance/compare.js';
import { toNdArray, toTensor } from '../../engine/tensor.js';
import { InferenceSession, Tensor } from '../../index.js';
import { acquireGpu, releaseGpu } from '../../kernels/webgpu/device.js';
import { efficientnet, mobilenetV2, resnet, squeezenet } from '../models/cnn.js';
import { MODEL_TOL, type ModelCase } from '../models/common.js';
import { gruModel, lstmClassifier } from '../models/recurrent.js';
import { bert, gpt2 } from '../models/transformer.js';
import { describeGpu } from '../helpers/gpu.js';

async function runOnGpu(c: ModelCase, lateCopies = 0) {
  const held = await acquireGpu(); // keep one device (and its pipeline cache) for the whole case
  const gpu = await InferenceSession.create(c.bytes, { executionProviders: ['webgpu'], strict: true });
  const cpu = await InferenceSession.create(c.bytes);
  try {
    let pipelines = -1;
    for (const [b, s] of [[1, 5], [2, 7], [1, 3]]) {
      const feeds = Object.fromEntries(Object.entries(c.feeds(b, s)).map(([k, v]) => [k, toTensor(v)]));
      const [g, r] = [await gpu.run(feeds), await cpu.run(feeds)];
      for (const [name, t] of Object.entries(r)) {
        expect(compareValues(toNdArray(t as Tensor), toNdArray(g[name] as Tensor), MODEL_TOL), `batch ${b}: output '${name}'`).toBeUndefined();
      }
      const count = (gpu as unknown as { gpu: { runner: { pipelineCount: number } } }).gpu.runner.pipelineCount;
      if (pipelines >= 0) expect(count, `pipelines compiled for batch ${b}`).toBe(pipelines + (b === 2 ? lateCopies : 0));
      pipelines = count;
    }
  } finally {
    await gpu.release();
    releaseGpu(held);
  }
}

describeGpu('whole models on WebGPU (strict, batch 1/2/1 on one session)', () => {
  it('ResNet-18 style', () => runOnGpu(resnet('basic')));
  it('MobileNetV2', () => runOnGpu(mobilenetV2()));
  it('EfficientNet', () => runOnGpu(efficientnet()));
  it('SqueezeNet', () => runOnGpu(squeezenet()));
  it('BERT encoder', () => runOnGpu(bert('op')));
  it('GPT-2 decoder', () => runOnGpu(gpt2('range')));
  // At batch 1 its Transpose moves only size-1 axes, a view with no dispatch; batch 2 compiles that
  // one strided copy the first time it is really needed.
  it('LSTM classifier', () => runOnGpu(lstmClassifier(), 1));
  it('GRU', () => runOnGpu(gruModel()));
});
