// Post-activation affine (level 'all'): a scalar Mul and/or Add after a fused product, as PaddleOCR exports
// write after each HardSwish, moves into the product as `post_affine` = [s, t], applied after the activation:
//   FusedConv(act) -> Mul(y, s) -> Add(_, t)   ->  FusedConv(act, post_affine [s, t])
// Either node alone folds too, the other step stored as its identity (s = 1, t = -0: x + -0 is x for every
// x), and the constant may be on either side. FusedGemm and FusedMatMul fold with or without an activation;
// a Conv needs one, as a scalar map of a bare Conv already went into its weights (conv-bn.ts). A MatMul with
// nothing after its product yet is left to matmul-scale.ts (alpha) and fuseMatMulAdd (bias), which the GEMM
// applies at no extra pass over the output.
import type { Node } from '../graph.js';
import { floatMatMul, isMatMul } from './transpose.js';
import { attr, INTERNAL, isFloatType, otherInput, plainBinary, type View } from './view.js';

/** A one-element float constant of y's dtype on the other side of `op`, broadcasting without growing y. */
export function scalarOperand(v: View, op: Node, y: string): number | undefined {
  const c = v.constant(otherInput(op, y)), rank = v.rank(y);
  if (!c || c.size !== 1 || c.dtype !== v.dtype(y) || c.shape.length > (rank ?? 0)) return undefined;
  return Number(c.data[0]);
}

/** The fused op `n` becomes with an affine after it, or undefined when it takes none. */
function affineKind(v: View, n: Node): string | undefined {
  if (v.touched(n) || n.attrs.has('post_affine') || !isFloatType(v.dtype(n.outputs[0]))) return undefined;
  const act = n.attrs.has('activation');
  if (n.domain === INTERNAL && n.opType === 'FusedConv') return act ? n.opType : undefined;
  if ((n.domain === '' && n.opType === 'Gemm') || (n.domain === INTERNAL && n.opType === 'FusedGemm')) return 'FusedGemm';
  if (isMatMul(n) && floatMatMul(v, n) && (act || n.inputs[2] || n.attrs.has('alpha'))) return 'FusedMatMul';
  return undefined;
}

/** The `op` node alone reading y, with its scalar constant. */
function scalarStep(v: View, y: string, op: 'Mul' | 'Add'): { node: Node; value: number } | undefined {
  const node = v.sole(y);
  if (!plainBinary(node, op) || node.outputs.length !== 1) return undefined;
  const value = scalarOperand(v, node, y);
  return value === undefined ? undefined : { node, value };
}

export function foldPostAffine(v: View): boolean {
  for (const n of v.nodes) {
    const kind = affineKind(v, n);
    if (!kind) continue;
    const mul = scalarStep(v, n.outputs[0], 'Mul');
    const add = scalarStep(v, mul ? mul.node.outputs[0] : n.outputs[0], 'Add');
    const folded = [mul?.node, add?.node].filter((x): x is Node => !!x);
    if (!folded.length) continue;
    const attrs = new Map([...n.attrs, attr('post_affine', 'floats', [mul?.value ?? 1, add?.value ?? -0])]);
    v.replace([n, ...folded], [{ ...n, opType: kind, domain: INTERNAL, outputs: folded[folded.length - 1].outputs, attrs }]);
  }
  return v.commit();
}
