// GPU lowering of CumProd (CumSum lives with the data movement ops, movement.ts). The axis is a CPU input.
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { pickScan } from '../../kernels/webgpu/copy.js';
import { cumprod } from '../../kernels/webgpu/scan.js';
import { fail, gpuAt, registerGpu } from '../registry.js';
import { normAxis } from '../shape.js';

// Narrow integers multiply in their 32-bit lane, wrapping like Math.imul; the store keeps their low bits,
// which is what the CPU's typed-array store of the imul product keeps.
const SCAN_DTYPES = new Set<DType | undefined>(['float32', 'float16', 'int32', 'uint32', 'int8', 'uint8', 'int16', 'uint16']);
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

registerGpu({
  op: 'CumProd', since: 26, cpuInputs: [1],
  reject: (d) => (SCAN_DTYPES.has(d[0]) ? undefined : `dtype ${d[0]} not supported by this GPU kernel`),
  run: (ins, a: { exclusive: boolean; reverse: boolean }, ctx) => {
    const x = gpuAt(ins, 0, ctx), t = ins[1];
    if (!(t instanceof NdArray) || t.size !== 1 || (t.dtype !== 'int64' && t.dtype !== 'int32')) fail(ctx, "input 1 ('axis') should hold one integer");
    const ax = normAxis(Number(t.data[0]), x.shape.length, ctx);
    const spec = { outer: prod(x.shape.slice(0, ax)), n: x.shape[ax], inner: prod(x.shape.slice(ax + 1)), ...a };
    return ctx.gpu.run(cumprod(x, spec, pickScan(ctx.gpu.ctx.software, spec)));
  },
});
