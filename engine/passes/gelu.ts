// Gelu recognition (level 'all'): the elementwise chains exporters write for GELU become one Gelu
// (ONNX's from opset 20, else the internal copy), which activation fusion can then move into a MatMul.
//   exact:  x * 0.5 * (1 + Erf(x / sqrt(2)))                             (also x * (1/sqrt 2))
//   tanh:   x * 0.5 * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))      (x^3 as Pow or Muls)
// with the final products in any association. Constants must match to float32 precision.
import type { Node } from '../graph.js';
import { attr, INTERNAL, isFloatType, otherInput, plainBinary, type View } from './view.js';

export function recogniseGelu(v: View): boolean {
  for (const n of v.nodes) {
    if (n.domain !== '' || v.touched(n) || (n.opType !== 'Erf' && n.opType !== 'Tanh')) continue;
    const x = n.opType === 'Erf' ? erfArgument(v, n) : tanhArgument(v, n);
    if (!x || !isFloatType(v.dtype(x.x))) continue;
    const tail = halfXTimesOnePlus(v, n.outputs[0], x.x);
    if (!tail || [...x.nodes, ...tail.nodes].some((m) => v.touched(m))) continue;
    const attrs = new Map(n.opType === 'Tanh' ? [attr('approximate', 'string', 'tanh')] : []);
    v.replace([...x.nodes, n, ...tail.nodes], [{
      name: `${n.name}/Gelu`, opType: 'Gelu', domain: v.opset >= 20 ? '' : INTERNAL, inputs: [x.x], outputs: [tail.output], attrs,
    }]);
  }
  return v.commit();
}

const near = (c: number | undefined, target: number) => c !== undefined && Math.abs(c - target) <= 1e-6 * Math.abs(target);
type Part = { x: string; nodes: Node[] };

/** The constant operand of a binary node and its other input. */
function split(v: View, n: Node): { c: number; other: string } | undefined {
  const [a, b] = n.inputs, ca = v.scalar(a), cb = v.scalar(b);
  return cb !== undefined ? { c: cb, other: a } : ca !== undefined ? { c: ca, other: b } : undefined;
}

/** Erf's input as x / sqrt(2) or x * (1/sqrt(2)). */
function erfArgument(v: View, erf: Node): Part | undefined {
  const p = v.producer.get(erf.inputs[0]);
  if (!p || v.touched(p) || v.sole(p.outputs[0]) !== erf) return undefined;
  if (plainBinary(p, 'Div') && near(v.scalar(p.inputs[1]), Math.SQRT2)) return { x: p.inputs[0], nodes: [p] };
  const s = plainBinary(p, 'Mul') ? split(v, p) : undefined;
  return s && near(s.c, Math.SQRT1_2) ? { x: s.other, nodes: [p] } : undefined;
}

/** Tanh's input as sqrt(2/pi) * (x + 0.044715 * x^3). */
function tanhArgument(v: View, tanh: Node): Part | undefined {
  const outer = v.producer.get(tanh.inputs[0]), s = plainBinary(outer, 'Mul') ? split(v, outer) : undefined;
  if (!outer || !s || !near(s.c, Math.sqrt(2 / Math.PI)) || v.sole(outer.outputs[0]) !== tanh) return undefined;
  const sum = v.producer.get(s.other);
  if (!plainBinary(sum, 'Add') || v.sole(sum.outputs[0]) !== outer) return undefined;
  for (const x of sum.inputs) {
    const scaled = v.producer.get(otherInput(sum, x)), k = plainBinary(scaled, 'Mul') ? split(v, scaled) : undefined;
    if (!scaled || !k || !near(k.c, 0.044715) || v.sole(scaled.outputs[0]) !== sum) continue;
    const cube = cubeOf(v, k.other, x);
    if (cube) return { x, nodes: [...cube, scaled, sum, outer] };
  }
  return undefined;
}

/** The nodes computing `y` = x^3, as Pow(x, 3) or two Muls. */
function cubeOf(v: View, y: string, x: string): Node[] | undefined {
  const p = v.producer.get(y);
  if (!p || v.touched(p) || v.sole(y) === undefined) return undefined;
  if (p.opType === 'Pow' && p.domain === '' && p.inputs[0] === x && v.scalar(p.inputs[1]) === 3) return [p];
  if (!plainBinary(p, 'Mul')) return undefined;
  const sqName = p.inputs[0] === x ? p.inputs[1] : p.inputs[1] === x ? p.inputs[0] : undefined, sq = sqName ? v.producer.get(sqName) : undefined;
  return plainBinary(sq, 'Mul') && sq.inputs[0] === x && sq.inputs[1] === x && v.sole(sq.outputs[0]) === p && !v.touched(sq) ? [sq, p] : undefined;
}

/** From t = Erf(..) or Tanh(..): x * 0.5 * (1 + t) in any association; returns its nodes and output. */
function halfXTimesOnePlus(v: View, t: string, x: string): { nodes: Node[]; output: string } | undefined {
  const plus = v.sole(t), one = plainBinary(plus, 'Add') ? split(v, plus) : undefined;
  if (!plus || one?.c !== 1 || one.other !== t) return undefined;
  const g = plus.outputs[0], m1 = v.sole(g);
  if (!plainBinary(m1, 'Mul')) return undefined;
  const other = otherInput(m1, g), h = m1.outputs[0], m2 = v.sole(h);
  if (v.scalar(other) === 0.5) { // (0.5 * g) * x
    return plainBinary(m2, 'Mul') && otherInput(m2, h) === x ? { nodes: [plus, m1, m2], output: m2.outputs[0] } : undefined;
  }
  if (other === x) { // (x * g) * 0.5
    return plainBinary(m2, 'Mul') && v.scalar(otherInput(m2, h)) === 0.5 ? { nodes: [plus, m1, m2], output: m2.outputs[0] } : undefined;
  }
  const half = v.producer.get(other), hs = plainBinary(half, 'Mul') ? split(v, half) : undefined; // (x * 0.5) * g
  if (!half || v.touched(half) || hs?.c !== 0.5 || hs.other !== x || v.sole(other) !== m1) return undefined;
  return { nodes: [plus, half, m1], output: h };
}
