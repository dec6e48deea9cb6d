// Linear algebra and cache updates that fit no other family: Det (batched determinants) and
// TensorScatter (the KV-cache write of opset 24).
import { lanes } from '../engine/dtype.js';
import { NdArray, sizeOf } from '../engine/tensor.js';
import { copyRange } from '../kernels/cpu/copy.js';
import { determinants } from '../kernels/cpu/linalg.js';
import { fail, optTensor, register, tensorAt } from './registry.js';
import { FLOAT, typedInput } from './elementwise.js';
import { dtypeOf, shapeOf, tensorType } from './infer-rules.js';
import { normAxis } from './shape.js';

register({
  op: 'Det', since: 11,
  infer: (ins) => {
    const s = shapeOf(ins[0]);
    return [tensorType(dtypeOf(ins[0]), s && s.length >= 2 ? s.slice(0, -2) : undefined)];
  },
  run: (ins, _a, ctx) => {
    const x = typedInput(ins, 0, FLOAT, ctx), r = x.shape.length;
    if (r < 2 || x.shape[r - 1] !== x.shape[r - 2]) fail(ctx, `input 0 should be [*, M, M] (square matrices), got shape [${x.shape}]`);
    const out = NdArray.zeros(x.dtype, x.shape.slice(0, -2));
    determinants(x.data as Float32Array, x.shape[r - 1], out.data as Float32Array);
    return [out];
  },
});

register({
  op: 'TensorScatter', since: 24,
  attrs: (a) => {
    const mode = a.string('mode', 'linear');
    if (mode !== 'linear' && mode !== 'circular') throw a.error(`attribute 'mode' should be 'linear' or 'circular', got '${mode}'`);
    return { axis: a.int('axis', -2), circular: mode === 'circular' };
  },
  infer: (ins) => [ins[0]],
  run: (ins, a, ctx) => {
    const past = tensorAt(ins, 0, ctx), upd = tensorAt(ins, 1, ctx), idx = optTensor(ins, 2, ctx), r = past.shape.length;
    const axis = normAxis(a.axis, r, ctx);
    if (axis === 0) fail(ctx, 'axis should not be 0, the batch dimension');
    if (upd.dtype !== past.dtype) fail(ctx, `update has dtype ${upd.dtype}; expected ${past.dtype}, the dtype of past_cache`);
    if (upd.shape.length !== r || upd.shape.some((d, i) => i !== axis && d !== past.shape[i]) || upd.shape[axis] > past.shape[axis]) {
      fail(ctx, `update shape [${upd.shape}] should equal past_cache shape [${past.shape}] except for a sequence dim (axis ${axis}) no longer than ${past.shape[axis]}`);
    }
    const batch = past.shape[0], max = past.shape[axis], seq = upd.shape[axis];
    if (idx && (idx.dtype !== 'int64' || idx.shape.length !== 1 || idx.shape[0] !== batch)) fail(ctx, `write_indices should be int64 of shape [${batch}], got ${idx.dtype} [${idx.shape}]`);
    const starts = idx?.numbers() ?? new Array<number>(batch).fill(0);
    if (!a.circular) {
      const bad = starts.findIndex((s) => s < 0 || s + seq > max);
      if (bad >= 0) fail(ctx, `write_indices[${bad}] = ${starts[bad]} with ${seq} updates overruns the cache length ${max} (mode 'linear')`);
    }
    const out = new NdArray(past.dtype, past.shape, past.data.slice());
    // Rows of `inner` elements (all dims after the axis) move whole; a prefix is every index before the axis.
    const l = lanes(past.dtype), inner = sizeOf(past.shape.slice(axis + 1)) * l, perBatch = sizeOf(past.shape.slice(1, axis));
    for (let p = 0; p < batch * perBatch; p++) {
      const start = starts[Math.floor(p / perBatch)];
      for (let s = 0; s < seq; s++) {
        const t = a.circular ? (((start + s) % max) + max) % max : start + s;
        copyRange(out.data, (p * max + t) * inner, upd.data, (p * seq + s) * inner, inner);
      }
    }
    return [out];
  },
});
