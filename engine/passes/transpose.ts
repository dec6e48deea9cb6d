// Transpose elimination. Consecutive Transposes merge into one (which redundant-node removal then
// drops when it keeps every axis in place), and a 2-D Transpose read only by a Gemm flips its
// transA/transB instead (both standard rewrites: level 'basic'). At level 'all', a Transpose read only by a float MatMul is
// absorbed into a FusedMatMul, which reads the operand through strides instead of a transposed copy.
import type { Node } from '../graph.js';
import { permOf } from './redundant.js';
import { attr, INTERNAL, isFloatType, type View } from './view.js';

export function mergeTransposes(v: View): boolean {
  for (const n of v.nodes) {
    if (n.opType !== 'Transpose' || n.domain !== '' || v.touched(n)) continue;
    const inner = v.made(n.inputs[0], 'Transpose');
    if (!inner || inner.domain !== '') continue;
    const p1 = permOf(v, inner), p2 = permOf(v, n);
    if (!p1 || !p2 || p1.length !== p2.length) continue;
    // Output axis i is the inner output's axis p2[i], which is the input's axis p1[p2[i]].
    v.replace([n], [{ ...n, inputs: [inner.inputs[0]], attrs: new Map([attr('perm', 'ints', p2.map((i) => p1[i]))]) }]);
  }
  return v.commit();
}

export const isMatMul = (n: Node) => (n.opType === 'MatMul' && n.domain === '') || (n.opType === 'FusedMatMul' && n.domain === INTERNAL);

/** Float operands: FusedMatMul computes floats only. */
export const floatMatMul = (v: View, n: Node) => isFloatType(v.dtype(n.inputs[0]) ?? v.dtype(n.inputs[1]));

export function absorbTransposes(v: View): boolean {
  for (const n of v.nodes) {
    if (!isMatMul(n) || v.touched(n) || !floatMatMul(v, n)) continue;
    let fused = n;
    const absorbed: Node[] = [];
    for (const [slot, key] of [[0, 'permA'], [1, 'permB']] as const) {
      const t = v.made(n.inputs[slot], 'Transpose'), p = t && t.domain === '' ? permOf(v, t) : undefined;
      if (!t || !p || p.length < 2 || v.sole(n.inputs[slot]) !== n) continue;
      // The operand already read through `prior` from the Transpose's output reads axis p[prior[i]] of its input.
      const prior = fused.attrs.get(key)?.value as number[] | undefined;
      fused = {
        ...fused, opType: 'FusedMatMul', domain: INTERNAL,
        inputs: fused.inputs.map((x, i) => (i === slot ? t.inputs[0] : x)),
        attrs: new Map([...fused.attrs, attr(key, 'ints', prior ? prior.map((i) => p[i]) : p)]),
      };
      absorbed.push(t);
    }
    if (absorbed.length) v.replace([...absorbed, n], [fused], n);
  }
  return v.commit();
}

export function absorbIntoGemm(v: View): boolean {
  for (const g of v.nodes) {
    if (g.opType !== 'Gemm' || g.domain !== '' || v.touched(g)) continue;
    let fused = g;
    const absorbed: Node[] = [];
    for (const [slot, key] of [[0, 'transA'], [1, 'transB']] as const) {
      const t = v.made(g.inputs[slot], 'Transpose'), p = t && t.domain === '' ? permOf(v, t) : undefined;
      if (!t || p?.length !== 2 || p[0] !== 1 || v.sole(g.inputs[slot]) !== g) continue;
      const flip = Number(fused.attrs.get(key)?.value ?? 0) ? 0 : 1;
      fused = { ...fused, inputs: fused.inputs.map((x, i) => (i === slot ? t.inputs[0] : x)), attrs: new Map([...fused.attrs, attr(key, 'int', flip)]) };
      absorbed.push(t);
    }
    if (absorbed.length) v.replace([...absorbed, g], [fused], g);
  }
  return v.commit();
}
