// Replaces calls to model-local functions (FunctionProto) by their bodies, with values renamed apart
// and attribute references (ref_attr_name) bound to the caller's attributes or the function's defaults.
import { ModelLoadError, where } from '../errors.js';
import { funcKey, type Attr, type FunctionDef, type Graph, type Node } from '../graph.js';

// Calls nest this deep at most (a recursive function would never end), and all expansions of one
// graph together make at most MAX_NODES nodes (a function calling another twice, 32 levels deep, would
// make 2^32): both are checked on the function table before anything is expanded.
const MAX_DEPTH = 32, MAX_NODES = 1 << 20;

type Env = { functions: Map<string, FunctionDef> };

export function inlineFunctions(nodes: Node[], env: Env): Node[] {
  if (env.functions.size === 0) return nodes;
  const callee = (n: Node) => env.functions.get(funcKey(n.domain, n.opType));
  let total = 0;
  for (const n of nodes) {
    const fn = callee(n);
    total += fn ? expandedSize(fn, env, 1, n) : 1;
    if (total > MAX_NODES) throw new ModelLoadError(`${where(n)}: function calls expand to more than ${MAX_NODES} nodes`);
  }
  const out: Node[] = [];
  const visit = (list: Node[]) => {
    for (const node of list) {
      const fn = callee(node);
      if (fn) visit(expand(node, fn)); else out.push(node);
    }
  };
  visit(nodes);
  return out;
}

/** Nodes a call to `fn` becomes once fully inlined (memoised per function). */
const sizes = new WeakMap<FunctionDef, number>();
function expandedSize(fn: FunctionDef, env: Env, depth: number, at: Node): number {
  const known = sizes.get(fn);
  if (known !== undefined) return known;
  if (depth > MAX_DEPTH) throw new ModelLoadError(`${where(at)}: functions nest deeper than ${MAX_DEPTH} (recursive function?)`);
  let n = 0;
  for (const b of fn.nodes) {
    const inner = env.functions.get(funcKey(b.domain, b.opType));
    n += inner ? expandedSize(inner, env, depth + 1, b) : 1;
  }
  sizes.set(fn, n);
  return n;
}

/** Each expansion gets its own prefix: node names need not be unique, and nested calls repeat them. */
let expansions = 0;

function expand(call: Node, fn: FunctionDef): Node[] {
  if (call.inputs.length > fn.inputs.length || call.outputs.length > fn.outputs.length) {
    throw new ModelLoadError(`${where(call)}: passes ${call.inputs.length} inputs and ${call.outputs.length} outputs, but function '${fn.name}' declares ${fn.inputs.length} and ${fn.outputs.length}`);
  }
  const prefix = `${call.name}#${++expansions}`;
  const names = new Map<string, string>();
  fn.inputs.forEach((n, i) => names.set(n, call.inputs[i] ?? ''));
  fn.outputs.forEach((n, i) => names.set(n, call.outputs[i] ?? ''));
  const rename = (n: string) => {
    if (!n) return n;
    if (!names.has(n)) names.set(n, `${prefix}/${n}`);
    return names.get(n)!;
  };
  return fn.nodes.map((b) => renameNode(b, rename, call, fn, `${prefix}/${b.name}`));
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
