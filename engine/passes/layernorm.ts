// LayerNorm recognition (level 'all'): the chain exporters write at opsets without LayerNormalization,
//   d = x - ReduceMean(x);  y = d / Sqrt(ReduceMean(d^2) + eps) * gamma (+ beta)
// over trailing axes, becomes one LayerNormalization (ONNX's from opset 17, else the internal copy).
// d^2 may be Pow(d, 2) or Mul(d, d); gamma and beta must be float32 constants over the normalised dims.
import type { Node } from '../graph.js';
import { attr, INTERNAL, otherInput, plainBinary, type View } from './view.js';

export function recogniseLayerNorm(v: View): boolean {
  for (const mean of v.nodes) {
    const m = match(v, mean);
    if (m) v.replace(m.nodes, [m.node]);
  }
  return v.commit();
}

const isOp = (n: Node | undefined, op: string): n is Node => !!n && n.opType === op && n.domain === '';

/** Trailing reduced axes as LayerNormalization's axis (-k), when the ReduceMean keeps dims and reduces a trailing block. */
function trailingAxis(v: View, n: Node): number | undefined {
  const r = v.resolve(n);
  if (!r || !isOp(n, 'ReduceMean') || Number(n.attrs.get('keepdims')?.value ?? 1) !== 1) return undefined;
  const axes = r.opset < 18 ? (n.attrs.get('axes')?.value as number[] | undefined) : v.ints(n.inputs[1]);
  const rank = v.rank(n.inputs[0]);
  if (!axes?.length || (axes.some((a) => a >= 0) && rank === undefined)) return undefined;
  const neg = axes.map((a) => (a < 0 ? a : a - rank!)).sort((a, b) => a - b);
  return neg.every((a, i) => a === -neg.length + i) ? -neg.length : undefined;
}

function match(v: View, mean: Node): { nodes: Node[]; node: Node } | undefined {
  const axis = trailingAxis(v, mean), x = mean.inputs[0];
  if (axis === undefined || v.touched(mean)) return undefined;
  const sub = v.sole(mean.outputs[0]);
  if (!plainBinary(sub, 'Sub') || sub.inputs[0] !== x || sub.inputs[1] !== mean.outputs[0]) return undefined;
  const d = sub.outputs[0], readers = v.consumers.get(d) ?? [];
  if (v.pinned.has(d) || readers.length !== 2 || readers.some((r) => v.touched(r))) return undefined;
  const sq = readers.find((r) => (isOp(r, 'Pow') && r.inputs[0] === d && v.scalar(r.inputs[1]) === 2) || (plainBinary(r, 'Mul') && r.inputs[0] === d && r.inputs[1] === d));
  const div = readers.find((r) => r !== sq);
  if (!sq || !plainBinary(div, 'Div') || div.inputs[0] !== d) return undefined;
  const variance = v.sole(sq.outputs[0]);
  if (!variance || trailingAxis(v, variance) !== axis || variance.inputs[0] !== sq.outputs[0]) return undefined;
  const addEps = v.sole(variance.outputs[0]);
  if (!plainBinary(addEps, 'Add')) return undefined;
  const eps = v.scalar(otherInput(addEps, variance.outputs[0])), sqrt = v.sole(addEps.outputs[0]);
  if (eps === undefined || !isOp(sqrt, 'Sqrt') || v.sole(sqrt.outputs[0]) !== div || div.inputs[1] !== sqrt.outputs[0]) return undefined;
  const scale = v.sole(div.outputs[0]);
  if (!plainBinary(scale, 'Mul')) return undefined;
  const gamma = otherInput(scale, div.outputs[0]), shift = v.sole(scale.outputs[0]);
  const beta = plainBinary(shift, 'Add') ? otherInput(shift, scale.outputs[0]) : undefined;
  const param = (n: string | undefined) => { const c = n ? v.constant(n) : undefined; return c?.dtype === 'float32' && c.shape.length <= -axis; };
  if (!param(gamma)) return undefined;
  const withBeta = param(beta);
  const nodes = [mean, sub, sq, variance, addEps, sqrt, div, scale, ...(withBeta ? [shift!] : [])];
  const last = nodes[nodes.length - 1];
  return {
    nodes,
    node: {
      name: `${mean.name}/LayerNorm`, opType: 'LayerNormalization', domain: v.opset >= 17 ? '' : INTERNAL,
      inputs: [x, gamma, ...(withBeta ? [beta!] : [])], outputs: [last.outputs[0]],
      attrs: new Map([attr('axis', 'int', axis), attr('epsilon', 'float', eps)]),
    },
  };
}
