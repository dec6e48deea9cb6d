// GPU lowering of ReverseSequence. sequence_lens is a CPU input: checked with the CPU backend's messages
// (ops/movement.ts), then uploaded as int32 for the gather.
import { NdArray } from '../../engine/tensor.js';
import { reverseSequence } from '../../kernels/webgpu/reverse.js';
import { fail, gpuAt, registerGpu } from '../registry.js';

registerGpu({
  op: 'ReverseSequence', since: 10, cpuInputs: [1],
  run: (ins, a: { time: number; batch: number }, ctx) => {
    const x = gpuAt(ins, 0, ctx), t = ins[1];
    if (!(t instanceof NdArray) || (t.dtype !== 'int64' && t.dtype !== 'int32') || t.shape.length !== 1) fail(ctx, "input 1 ('sequence_lens') should be a 1-D int32 or int64 tensor");
    if (x.shape.length < 2) fail(ctx, `input should have rank >= 2, got [${x.shape}]`);
    if (![0, 1].includes(a.time) || ![0, 1].includes(a.batch) || a.time === a.batch) fail(ctx, 'time_axis and batch_axis should be 0 and 1 in some order');
    const T = x.shape[a.time], B = x.shape[a.batch], lens = t.numbers();
    if (lens.length !== B) fail(ctx, `sequence_lens has ${lens.length} entries for batch size ${B}`);
    lens.forEach((n, b) => { if (n < 0 || n > T) fail(ctx, `sequence_lens[${b}] = ${n} is outside [0, ${T}]`); });
    const lg = ctx.gpu.upload(new NdArray('int32', [B], Int32Array.from(lens)));
    try { return ctx.gpu.run(reverseSequence(x, lg, a.time)); } finally { ctx.gpu.release(lg); }
  },
});
