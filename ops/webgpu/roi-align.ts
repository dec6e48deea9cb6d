// GPU lowering of RoiAlign (ops/image.ts holds the semantics and checks); batch indices are read on the CPU,
// checked against the batch size as there, and uploaded as int32.
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { roiAlign } from '../../kernels/webgpu/roi-align.js';
import { fail, gpuAt, registerGpu } from '../registry.js';

const FLOATS = new Set<DType | undefined>(['float32', 'float16']);
interface RoiAttrs { mode: 'avg' | 'max'; oh: number; ow: number; samplingRatio: number; spatialScale: number; halfPixel: boolean }

registerGpu({
  op: 'RoiAlign', since: 10, cpuInputs: [2],
  reject: (d) => (FLOATS.has(d[0]) && d[1] === d[0] ? undefined : `x ${d[0]} and rois ${d[1]}: the GPU kernel takes one float type`),
  run: (ins, at: RoiAttrs, ctx) => {
    const x = gpuAt(ins, 0, ctx), rois = gpuAt(ins, 1, ctx), bi = ins[2];
    if (x.shape.length !== 4) fail(ctx, `input 0 ('${ctx.node.inputs[0]}') has shape [${x.shape}]; expected N x C x H x W`);
    const count = rois.shape[0];
    if (rois.shape.length !== 2 || rois.shape[1] !== 4) fail(ctx, `input 1 ('${ctx.node.inputs[1]}') has shape [${rois.shape}]; expected [${count}, 4]`);
    if (!(bi instanceof NdArray) || bi.dtype !== 'int64' || bi.shape.length !== 1 || bi.shape[0] !== count) {
      fail(ctx, `input 2 ('${ctx.node.inputs[2] ?? ''}') should be int64 of shape [${count}] (one batch index per RoI)`);
    }
    const batch = bi.numbers();
    if (batch.some((b) => b < 0 || b >= x.shape[0])) fail(ctx, `input 2 ('${ctx.node.inputs[2]}') holds a batch index outside [0, ${x.shape[0]})`);
    const bt = ctx.gpu.upload(new NdArray('int32', [count], Int32Array.from(batch)));
    try {
      return ctx.gpu.run(roiAlign({ x, rois, batch: bt, count, ph: at.oh, pw: at.ow, samplingRatio: at.samplingRatio, spatialScale: at.spatialScale, halfPixel: at.halfPixel, max: at.mode === 'max' }));
    } finally {
      ctx.gpu.release(bt); // the dispatch keeps its read
    }
  },
});
