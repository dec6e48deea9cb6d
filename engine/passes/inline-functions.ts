// Replaces calls to model-local functions (FunctionProto) by their bodies, with values renamed apart
// and attribute references (ref_attr_name) bound to the caller's attributes or the function's defaults.
import { ModelLoadError, where } from '../errors.js';
import { funcKey, type Attr, type FunctionDef, type Graph, type Node } from '../graph.js';

const MAX_DEPTH = 32;

export function inlineFunctions(nodes: Node[], env: { functions: Map<string, FunctionDef> }, depth = 0): Node[] {
  if (env.functions.size === 0) return nodes;
  const out: Node[] = [];
  for (const node of nodes) {
    const fn = env.functions.get(funcKey(node.domain, node.opType));
    if (!fn) { out.push(node); continue; }
    if (depth >= MAX_DEPTH) throw new ModelLoadError(`${where(node)}: functions nest deeper than ${MAX_DEPTH} (recursive function?)`);
    out.push(...inlineFunctions(expand(node, fn), env, depth + 1));
  }
  return out;
}

function expand(call: Node, fn: FunctionDef): Node[] {
  const names = new Map<string, string>();
  fn.inputs.forEach((n, i) => names.set(n, call.inputs[i] ?? ''));
  fn.outputs.forEach((n, i) => names.set(n, call.outputs[i] ?? ''));
  const rename = (n: string) => {
    if (!n) return n;
    if (!names.has(n)) names.set(n, `${call.name}/${n}`);
    return names.get(n)!;
  };
  return fn.nodes.map((b) => renameNode(b, rename, call, fn, `${call.name}/${b.name}`));
}

function renameNode(b: Node, rename: (n: string) => string, call: Node, fn: FunctionDef, name: string): Node {
  const attrs = new Map<string, Attr>();
  for (const [k, a] of b.attrs) {
    if (a.ref) {
      const bound = call.attrs.get(a.ref) ?? fn.attrDefaults.get(a.ref);
      if (bound) attrs.set(k, { ...bound, name: k });
      continue;
    }
    attrs.set(k, a.type === 'graph' ? { ...a, value: renameGraph(a.value as Graph, rename, call, fn) }
      : a.type === 'graphs' ? { ...a, value: (a.value as Graph[]).map((g) => renameGraph(g, rename, call, fn)) } : a);
  }
  return { ...b, name, inputs: b.inputs.map(rename), outputs: b.outputs.map(rename), attrs };
}

/** Inside a body's subgraph only names from the function's scope are renamed; the subgraph's own stay. */
function renameGraph(g: Graph, rename: (n: string) => string, call: Node, fn: FunctionDef): Graph {
  const own = new Set<string>([...g.inputs.map((i) => i.name), ...g.initializers.keys()]);
  for (const n of g.nodes) for (const o of n.outputs) own.add(o);
  const r = (n: string) => (own.has(n) ? n : rename(n));
  return {
    ...g,
    nodes: g.nodes.map((n) => renameNode(n, r, call, fn, n.name)),
    outputs: g.outputs.map((o) => ({ ...o, name: r(o.name) })),
  };
}
