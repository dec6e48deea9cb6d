// GPU lowerings of Det and TensorScatter (ops/linalg.ts holds their semantics and the CPU checks).
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { determinants, tensorScatter } from '../../kernels/webgpu/linalg.js';
import { fail, gpuAt, registerGpu } from '../registry.js';
import { normAxis } from '../shape.js';

const FLOATS = new Set<DType | undefined>(['float32', 'float16']);
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

registerGpu({
  op: 'Det', since: 11,
  reject: (d) => (FLOATS.has(d[0]) ? undefined : `dtype ${d[0]} not supported by this GPU kernel`),
  run: (ins, _a, ctx) => {
    const x = gpuAt(ins, 0, ctx), r = x.shape.length;
    if (r < 2 || x.shape[r - 1] !== x.shape[r - 2]) fail(ctx, `input 0 should be [*, M, M] (square matrices), got shape [${x.shape}]`);
    const outShape = x.shape.slice(0, -2);
    const [det, scratch] = ctx.gpu.run(determinants(x, x.shape[r - 1], prod(outShape), outShape));
    ctx.gpu.release(scratch);
    return [det];
  },
});

registerGpu({
  op: 'TensorScatter', since: 24, cpuInputs: [2],
  run: (ins, a: { axis: number; circular: boolean }, ctx) => {
    const past = gpuAt(ins, 0, ctx), upd = gpuAt(ins, 1, ctx), idx = ins[2], r = past.shape.length;
    const axis = normAxis(a.axis, r, ctx);
    if (axis === 0) fail(ctx, 'axis should not be 0, the batch dimension');
    if (upd.dtype !== past.dtype) fail(ctx, `update has dtype ${upd.dtype}; expected ${past.dtype}, the dtype of past_cache`);
    if (upd.shape.length !== r || upd.shape.some((d, i) => i !== axis && d !== past.shape[i]) || upd.shape[axis] > past.shape[axis]) {
      fail(ctx, `update shape [${upd.shape}] should equal past_cache shape [${past.shape}] except for a sequence dim (axis ${axis}) no longer than ${past.shape[axis]}`);
    }
    const batch = past.shape[0], max = past.shape[axis], seq = upd.shape[axis];
    if (idx !== undefined && (!(idx instanceof NdArray) || idx.dtype !== 'int64' || idx.shape.length !== 1 || idx.shape[0] !== batch)) {
      fail(ctx, `write_indices should be int64 of shape [${batch}], got ${idx.dtype} [${idx.shape}]`);
    }
    const given = idx instanceof NdArray ? idx.numbers() : new Array<number>(batch).fill(0);
    if (!a.circular) {
      const bad = given.findIndex((s) => s < 0 || s + seq > max);
      if (bad >= 0) fail(ctx, `write_indices[${bad}] = ${given[bad]} with ${seq} updates overruns the cache length ${max} (mode 'linear')`);
    }
    const starts = ctx.gpu.upload(new NdArray('int32', [batch], Int32Array.from(given, (s) => (a.circular ? ((s % max) + max) % max : s))));
    try {
      const perBatch = prod(past.shape.slice(1, axis));
      return ctx.gpu.run(tensorScatter(past, upd, starts, { prefix: batch * perBatch, perBatch, max, seq, inner: prod(past.shape.slice(axis + 1)), circular: a.circular }));
    } finally {
      ctx.gpu.release(starts); // the dispatch keeps its read
    }
  },
});
