// HardSigmoid / HardSwish recognition (level 'all'): the elementwise chains exporters write for them
// (paddle2onnx and torch below opset 14 among them) become one node, which activation fusion can then
// move into the Conv before it. With constants matching to float32 precision and operands in any order:
//   HardSigmoid  clip(x * a + b, 0, 1)          (x * a also as x / d)
//                clip(x + b, 0, h) / h          (/ h also as * (1/h)): alpha = 1/h, beta = b/h
//   HardSwish    x * clip(x + 3, 0, 6) / 6      as (x * clip) / 6, x * (clip / 6) or (x / 6) * clip
//                x * HardSigmoid(x; 1/6, 0.5)   (a HardSigmoid node, written or recognised)
// HardSwish is ONNX's from opset 14, else the internal copy; HardSigmoid exists from opset 6.
import type { Node } from '../graph.js';
import { attr, INTERNAL, isFloatType, otherInput, plainBinary, type View } from './view.js';

export function recogniseHardActivations(v: View): boolean {
  if (v.opset < 6) return false;
  for (const n of v.nodes) {
    if (n.domain !== '' || v.touched(n)) continue;
    if (n.opType === 'Clip') fromClip(v, n);
    else if (n.opType === 'HardSigmoid') fromHardSigmoid(v, n);
  }
  return v.commit();
}

const near = (c: number | undefined, target: number) => c !== undefined && Math.abs(c - target) <= 1e-6 * Math.abs(target);

/** The constant operand of a binary node and its other input. */
function split(v: View, n: Node): { c: number; other: string } | undefined {
  const [a, b] = n.inputs, ca = v.scalar(a), cb = v.scalar(b);
  return cb !== undefined ? { c: cb, other: a } : ca !== undefined ? { c: ca, other: b } : undefined;
}

/** The factor a node multiplies its non-constant input by: Mul by a constant, or Div by one (as 1/d). */
function factor(v: View, n: Node | undefined): { c: number; other: string } | undefined {
  if (!n || n.opType === 'Mul') return plainBinary(n, 'Mul') ? split(v, n) : undefined;
  const d = plainBinary(n, 'Div') ? v.scalar(n.inputs[1]) : undefined;
  return d ? { c: 1 / d, other: n.inputs[0] } : undefined;
}

/** Clip's constant bounds: attributes before opset 11, scalar inputs after (an omitted one is unbounded). */
function clipBounds(v: View, clip: Node): { lo: number; hi: number } | undefined {
  const r = v.resolve(clip);
  if (!r) return undefined;
  if (r.opset < 11) return r.attrs as { lo: number; hi: number };
  const bound = (i: number, none: number) => (clip.inputs[i] ? v.scalar(clip.inputs[i]) : none);
  const lo = bound(1, -Infinity), hi = bound(2, Infinity);
  return lo === undefined || hi === undefined ? undefined : { lo, hi };
}

/** The untouched producer of `name` when `reader` is its only reader. */
function feeding(v: View, name: string, reader: Node): Node | undefined {
  const p = v.producer.get(name);
  return p && !v.touched(p) && v.sole(name) === reader ? p : undefined;
}

function fromClip(v: View, clip: Node): void {
  const b = clipBounds(v, clip), add = feeding(v, clip.inputs[0], clip);
  const shift = plainBinary(add, 'Add') ? split(v, add) : undefined;
  if (!b || b.lo !== 0 || !(b.hi > 0) || !shift || !isFloatType(v.dtype(clip.inputs[0]))) return;
  if (b.hi === 1) { // clip(x * a + b, 0, 1)
    const mul = feeding(v, shift.other, add!), f = factor(v, mul);
    if (f && f.c !== 0) hardSigmoid(v, [mul!, add!, clip], f.other, f.c, shift.c, clip.outputs[0]);
    return;
  }
  const x = shift.other, c = clip.outputs[0], next = v.sole(c);
  const scaled = factor(v, next);
  if (scaled && scaled.other === c && near(scaled.c, 1 / b.hi)) { // clip(x + b, 0, h) / h
    hardSigmoid(v, [add!, clip, next!], x, 1 / b.hi, shift.c / b.hi, next!.outputs[0]);
    return;
  }
  if (shift.c !== 3 || b.hi !== 6 || !plainBinary(next, 'Mul')) return;
  const m = next.outputs[0], partner = otherInput(next, c);
  if (partner === x) { // (x * clip) / 6
    const last = v.sole(m), s = factor(v, last);
    if (s && s.other === m && near(s.c, 1 / 6)) hardSwish(v, [add!, clip, next, last!], x, last!.outputs[0]);
    return;
  }
  const pre = feeding(v, partner, next), s = factor(v, pre); // (x / 6) * clip
  if (s && s.other === x && near(s.c, 1 / 6)) hardSwish(v, [add!, clip, pre!, next], x, m);
}

/**
 * Whether the chain's constant operands leave x's shape as it is: a 1-element constant of higher rank
 * (say [1, 1, 1, 1] against a 2-D x) adds dims, which the single op would drop.
 */
function keepsShape(v: View, nodes: Node[], x: string): boolean {
  const rank = v.rank(x), consts = nodes.flatMap((n) => (n.opType === 'Clip' ? [] : n.inputs.filter((i) => v.constant(i))));
  return consts.every((c) => { const r = v.constant(c)!.shape.length; return r === 0 || (rank !== undefined && r <= rank); });
}

/** HardSigmoid(x) replacing `nodes`, or HardSwish when its only reader multiplies it by x. */
function hardSigmoid(v: View, nodes: Node[], x: string, alpha: number, beta: number, out: string): void {
  if (!isFloatType(v.dtype(x)) || !keepsShape(v, nodes, x)) return;
  const swish = near(alpha, 1 / 6) && near(beta, 0.5) ? timesX(v, out, x) : undefined;
  if (swish) { hardSwish(v, [...nodes, swish], x, swish.outputs[0]); return; }
  const attrs = new Map([attr('alpha', 'float', alpha), attr('beta', 'float', beta)]);
  v.replace(nodes, [{ name: `${nodes[nodes.length - 1].name}/HardSigmoid`, opType: 'HardSigmoid', domain: '', inputs: [x], outputs: [out], attrs }]);
}

function fromHardSigmoid(v: View, n: Node): void {
  const r = v.resolve(n), x = n.inputs[0], swish = timesX(v, n.outputs[0], x);
  const a = n.attrs.get('alpha')?.value, b = n.attrs.get('beta')?.value;
  if (r && swish && near(a === undefined ? 0.2 : Number(a), 1 / 6) && near(b === undefined ? 0.5 : Number(b), 0.5) && isFloatType(v.dtype(x))) {
    hardSwish(v, [n, swish], x, swish.outputs[0]);
  }
}

/** The only reader of `gate` when it is gate * x. */
function timesX(v: View, gate: string, x: string): Node | undefined {
  const m = v.sole(gate);
  return plainBinary(m, 'Mul') && otherInput(m, gate) === x && m.inputs[0] !== m.inputs[1] ? m : undefined;
}

function hardSwish(v: View, nodes: Node[], x: string, out: string): void {
  if (nodes.some((n) => v.touched(n)) || !keepsShape(v, nodes, x)) return;
  const last = nodes[nodes.length - 1];
  v.replace(nodes, [{ name: `${last.name}/HardSwish`, opType: 'HardSwish', domain: v.opset >= 14 ? '' : INTERNAL, inputs: [x], outputs: [out], attrs: new Map() }]);
}
