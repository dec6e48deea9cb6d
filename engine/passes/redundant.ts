// Redundant nodes: Identity, inference-mode Dropout, a Cast to the dtype a value already has and a
// Transpose that keeps every axis in place compute nothing, so their readers read the input instead.
// When the node's output is pinned (a graph output), the input's producer is renamed to make it instead.
import type { Node } from '../graph.js';
import type { View } from './view.js';

export function removeRedundant(v: View): boolean {
  for (const n of v.nodes) {
    if (n.domain !== '' || v.touched(n)) continue;
    const src = passThrough(v, n);
    if (src) bypass(v, n, src);
  }
  return v.commit();
}

/** Transpose's permutation (reversed axes by default, which needs the rank). */
export function permOf(v: View, n: Node): number[] | undefined {
  const p = (v.resolve(n)?.attrs as { perm?: number[] } | undefined)?.perm;
  if (p) return p;
  const r = v.rank(n.inputs[0]);
  return r === undefined ? undefined : Array.from({ length: r }, (_, i) => r - 1 - i);
}

/** The input a node hands through unchanged, when it does. */
function passThrough(v: View, n: Node): string | undefined {
  const x = n.inputs[0];
  // Extra outputs (Dropout's mask) must be unused.
  if (!x || n.outputs.slice(1).some((o) => o && (v.pinned.has(o) || v.consumers.has(o)))) return undefined;
  switch (n.opType) {
    case 'Identity': return x;
    case 'Dropout': return inferenceDropout(v, n) ? x : undefined;
    case 'Cast': {
      const to = (v.resolve(n)?.attrs as { to?: string } | undefined)?.to;
      return to && v.dtype(x) === to ? x : undefined;
    }
    case 'Transpose': {
      const p = permOf(v, n);
      return p?.every((d, i) => d === i) ? x : undefined;
    }
    default: return undefined;
  }
}

/** Before opset 12 Dropout never drops at inference; from 12 only training_mode (a constant false) or ratio 0 say so. */
function inferenceDropout(v: View, n: Node): boolean {
  const r = v.resolve(n);
  if (!r) return false;
  if (r.opset < 12) return true;
  const [, ratio, training] = n.inputs;
  return !training || v.scalar(training) === 0 || (ratio !== undefined && ratio !== '' && v.scalar(ratio) === 0);
}

function bypass(v: View, n: Node, src: string): void {
  const out = n.outputs[0];
  if (!out) return; // nobody reads it: dead-code elimination's job
  if (!v.pinned.has(out)) {
    v.alias(out, src);
    v.replace([n], []);
    return;
  }
  const p = v.producer.get(src);
  if (!p || v.touched(p) || v.pinned.has(src) || v.consumers.get(src)?.length !== 1) return;
  v.replace([p, n], [{ ...p, outputs: p.outputs.map((o) => (o === src ? out : o)) }], p);
}
