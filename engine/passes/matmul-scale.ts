// Scalar scale into MatMul (level 'all'): a MatMul whose product alone goes to a Mul or Div by a
// one-element constant (attention's QK^T / sqrt(d), or * scale) becomes FusedMatMul with `alpha`, which the
// GEMM applies to its sums as it stores them: no pass over the scores of their own. Later fusions may still
// add a bias (the attention mask, fuseMatMulAdd) and an activation after it.
// Rounding: Mul gives the unfused result when K fits one GEMM depth block (the sum scaled, rounded once),
// and differs by float rounding otherwise. Div becomes a multiply by 1/c, which is exact when c is a power
// of two and otherwise differs from the division by about an ulp (relative 1e-7 in float32), far inside
// the 1e-3 tolerance of the conformance suite and the tests.
import { floatMatMul, isMatMul } from './transpose.js';
import { scalarOperand } from './post-affine.js';
import { attr, INTERNAL, plainBinary, type View } from './view.js';

export function foldMatMulScale(v: View): boolean {
  for (const mm of v.nodes) {
    if (!isMatMul(mm) || v.touched(mm) || mm.inputs[2] || !floatMatMul(v, mm)) continue;
    if (['activation', 'alpha', 'post_affine'].some((a) => mm.attrs.has(a))) continue;
    const y = mm.outputs[0], op = v.sole(y);
    const div = plainBinary(op, 'Div');
    if (!op || !(div || plainBinary(op, 'Mul')) || (div && op.inputs[0] !== y)) continue;
    const c = scalarOperand(v, op, y), alpha = c === undefined ? undefined : div ? 1 / c : c;
    if (alpha === undefined || !Number.isFinite(alpha) || (div && !Number.isFinite(c))) continue;
    const attrs = new Map([...mm.attrs, attr('alpha', 'float', alpha)]);
    v.replace([mm, op], [{ ...mm, opType: 'FusedMatMul', domain: INTERNAL, outputs: op.outputs, attrs }]);
  }
  return v.commit();
}
