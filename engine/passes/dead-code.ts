// Dead-code elimination: nodes none of whose outputs reaches a graph output or a subgraph go away
// (ONNX ops have no side effects), sweeping backwards so whole dead chains go in one sweep.
import type { View } from './view.js';

export function removeDeadCode(v: View): boolean {
  const live = new Set(v.pinned);
  for (let i = v.nodes.length - 1; i >= 0; i--) {
    const n = v.nodes[i];
    if (n.outputs.some((o) => o && live.has(o))) for (const x of n.inputs) live.add(x);
    else v.replace([n], []);
  }
  return v.commit();
}
