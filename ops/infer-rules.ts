// Shared type/shape inference rules that op definitions reuse.
import type { DType } from '../engine/dtype.js';
import type { Dim, TypeInfo } from '../engine/graph.js';

type Ins = (TypeInfo | undefined)[];

export const tensorType = (dtype?: DType, shape?: Dim[]): TypeInfo => ({ kind: 'tensor', dtype, shape });
export const dtypeOf = (t: TypeInfo | undefined) => (t?.kind === 'tensor' ? t.dtype : undefined);
export const shapeOf = (t: TypeInfo | undefined) => (t?.kind === 'tensor' ? t.shape : undefined);

/** Output 0 has input 0's type and shape. */
export const sameAsInput = (ins: Ins): TypeInfo[] => (ins[0] ? [ins[0]] : []);

/** Broadcast of all input shapes (symbolic dims kept when they agree); dtype from input 0 or `dtype`. */
export const broadcastInfer = (dtype?: DType) => (ins: Ins): TypeInfo[] => {
  const shapes = ins.map(shapeOf);
  const out = tensorType(dtype ?? dtypeOf(ins[0]));
  if (shapes.some((s) => !s)) return [out];
  const rank = Math.max(...shapes.map((s) => s!.length));
  const dims: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1, unknown = false;
    for (const s of shapes) {
      const k = s!.length - rank + i;
      if (k < 0) continue; // a missing leading dim broadcasts as 1
      const x = s![k];
      if (x === 1) continue;
      if (x === null) { unknown = true; continue; }
      if (d === 1) d = x;
      else if (d !== x) d = typeof d === 'number' && typeof x === 'number' ? d : null;
    }
    // An unknown dim is either 1 or the others' size: known only when another input fixes a size > 1.
    dims.push(unknown && d === 1 ? null : d);
  }
  return [tensorType(out.kind === 'tensor' ? out.dtype : undefined, dims)];
};
