// Shape folding: Shape and Size of a value whose shape is known (declared input shapes flowing through
// the ops' inference rules) become constants, so the shape arithmetic behind them folds too. With some
// dims unknown (a symbolic batch), a Gather or Slice that picks only known dims out of the Shape still
// folds: it runs on a stand-in shape whose unknown dims are negative markers, and is kept when none of
// them reaches its result.
import type { Node } from '../graph.js';
import { NdArray } from '../tensor.js';
import { evaluate } from './constant-folding.js';
import { constantNode, type View } from './view.js';

/** Marker for unknown dim i: negative, which no real dim is. */
const UNKNOWN = -(2 ** 40);

export function foldShapes(v: View): boolean {
  for (const node of v.nodes) {
    if (node.domain !== '' || (node.opType !== 'Shape' && node.opType !== 'Size') || v.touched(node)) continue;
    const x = node.inputs[0], dims = x ? v.shape(x) : undefined, out = node.outputs[0];
    if (!dims || !out || v.constant(x)) continue; // a constant's Shape is plain constant folding
    const stand = new NdArray(v.dtype(x) === 'string' ? 'float32' : (v.dtype(x) as NdArray['dtype']) ?? 'float32',
      dims.map((d, i) => (typeof d === 'number' ? d : UNKNOWN - i)), new Float32Array(0));
    if (dims.every((d) => typeof d === 'number')) {
      if (!v.pinned.has(out)) replaceBy(v, node, [stand]);
    } else if (node.opType === 'Shape') foldPicks(v, node, stand);
  }
  return v.commit();
}

/** Gathers and Slices of a partly known Shape that select known dims only. */
function foldPicks(v: View, shapeNode: Node, stand: NdArray): void {
  const marked = evaluate(v, shapeNode, [stand])?.[0];
  if (!marked) return;
  for (const c of v.consumers.get(shapeNode.outputs[0]) ?? []) {
    if (v.touched(c) || c.domain !== '' || (c.opType !== 'Gather' && c.opType !== 'Slice') || c.inputs[0] !== shapeNode.outputs[0]) continue;
    if (c.outputs.some((o) => v.pinned.has(o))) continue;
    const rest = c.inputs.slice(1).map((n) => (n ? v.constant(n) : undefined));
    if (c.inputs.slice(1).some((n, i) => n && !rest[i])) continue;
    const picked = evaluate(v, c, [marked, ...rest])?.[0];
    if (picked && !(picked.data as BigInt64Array).some((d) => d < 0n)) v.replace([c], [constantNode(c.outputs[0], picked)]);
  }
}

function replaceBy(v: View, node: Node, ins: NdArray[]): void {
  const outs = evaluate(v, node, ins);
  if (outs) v.replace([node], [constantNode(node.outputs[0], outs[0])]);
}
