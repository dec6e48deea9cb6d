// MatMul followed by an Add. With 2-D operands and an addend that broadcasts into the [M, N] product,
// a Gemm whose C is the addend (a standard op: level 'basic'). Otherwise, at level 'all', a FusedMatMul
// that adds the addend in place on the product (an alpha folded before stays: alpha * A·B + addend).
import type { Dim, Node } from '../graph.js';
import { floatMatMul, isMatMul } from './transpose.js';
import { INTERNAL, otherInput, plainBinary, type View } from './view.js';

/** The Add that alone reads a MatMul's product, when there is one. */
function addAfter(v: View, mm: Node): Node | undefined {
  const add = v.sole(mm.outputs[0]);
  return plainBinary(add, 'Add') ? add : undefined;
}

/** C broadcasts into [m, n] without growing it (a known dim equal to m or n, or 1). */
const fits = (c: Dim[], m: Dim, n: Dim) => {
  const same = (d: Dim, e: Dim) => d === 1 || (d !== null && d === e);
  return c.length <= 2 && (c.length < 1 || same(c[c.length - 1], n)) && (c.length < 2 || same(c[0], m));
};

export function matmulAddToGemm(v: View): boolean {
  for (const mm of v.nodes) {
    if (mm.opType !== 'MatMul' || mm.domain !== '' || v.touched(mm) || !floatMatMul(v, mm)) continue;
    const add = addAfter(v, mm);
    if (!add) continue;
    const c = otherInput(add, mm.outputs[0]), as = v.shape(mm.inputs[0]), bs = v.shape(mm.inputs[1]), cs = v.shape(c);
    if (as?.length !== 2 || bs?.length !== 2 || !cs || !fits(cs, as[0], bs[1]) || v.dtype(c) !== v.dtype(mm.inputs[1])) continue;
    v.replace([mm, add], [{ name: mm.name, opType: 'Gemm', domain: '', inputs: [...mm.inputs, c], outputs: add.outputs, attrs: new Map() }]);
  }
  return v.commit();
}

export function fuseMatMulAdd(v: View): boolean {
  for (const mm of v.nodes) {
    if (!isMatMul(mm) || v.touched(mm) || mm.inputs[2] || mm.attrs.has('activation') || mm.attrs.has('post_affine') || !floatMatMul(v, mm)) continue;
    const add = addAfter(v, mm);
    if (!add) continue;
    const inputs = [mm.inputs[0], mm.inputs[1], otherInput(add, mm.outputs[0])];
    v.replace([mm, add], [{ ...mm, opType: 'FusedMatMul', domain: INTERNAL, inputs, outputs: add.outputs }]);
  }
  return v.commit();
}
