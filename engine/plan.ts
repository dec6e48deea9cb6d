// Compiling a graph into a plan: ops resolved and attributes parsed once, nodes in dependency order,
// and for each step the values whose last reader it is (freed right after, so memory follows the live set).
import { ModelLoadError, UnsupportedOpError, OpError, where, LastmileError } from './errors.js';
import type { FunctionDef, Graph, Node } from './graph.js';
import { inlineFunctions } from './passes/inline-functions.js';
import { optimize, type OptimizationLevel } from './passes/index.js';
import { Attrs, lookup, type OpDef } from '../ops/registry.js';
import { NdArray, type Value } from './tensor.js';

export interface Step {
  node: Node;
  def: OpDef;
  attrs: unknown;
  opset: number;
  subgraphs: Map<string, Plan>;
  /** Values read from the enclosing scope by this node's subgraphs. */
  implicit: string[];
  release: string[];
}

export interface Plan {
  graph: Graph;
  steps: Step[];
  inputs: string[];
  outputs: string[];
  constants: Map<string, Value>;
  /** Names this graph (or its subgraphs) reads from enclosing scopes. */
  free: Set<string>;
}

export interface CompileEnv {
  opsets: Map<string, number>;
  functions: Map<string, FunctionDef>;
  /**
   * Values fixed at compile time in the enclosing graphs that a subgraph can see (initializers that
   * cannot be fed, Constant outputs), so that constant folding inside the subgraph can use them.
   */
  outerConstants?: ReadonlyMap<string, NdArray>;
}

export interface CompileOptions {
  /** Graph optimisation (engine/passes/) before scheduling; 'disabled' by default. */
  level?: OptimizationLevel;
}

export function compile(graph: Graph, env: CompileEnv, options: CompileOptions = {}, outer: ReadonlySet<string> = new Set()): Plan {
  let nodes = inlineFunctions(graph.nodes, env);
  if (options.level && options.level !== 'disabled') {
    ({ graph, env } = optimize({ ...graph, nodes }, env, options.level, outer.size > 0));
    nodes = graph.nodes;
  }
  const produced = new Set<string>([...graph.inputs.map((i) => i.name), ...graph.initializers.keys()]);
  for (const n of nodes) for (const o of n.outputs) if (o) produced.add(o);
  const visible = new Set([...outer, ...produced]);

  let prepared = nodes.map((node) => prepare(node, env));
  const optimizing = !!options.level && options.level !== 'disabled';
  const inner: CompileEnv = { ...env, outerConstants: optimizing ? scopeConstants(graph, prepared, env.outerConstants) : undefined };
  for (const p of prepared) compileSubgraphs(p, inner, options, visible);
  // Folding inside subgraphs can leave Constant nodes here that nothing reads any more.
  if (optimizing) prepared = withoutDeadConstants(prepared, graph);
  const free = new Set<string>();
  for (const p of prepared) {
    for (const name of [...p.node.inputs, ...p.implicit]) if (name && !produced.has(name)) {
      if (!outer.has(name)) throw new ModelLoadError(`${where(p.node)}: input '${name}' is not produced by any node, input or initializer`);
      free.add(name);
    }
  }
  for (const o of graph.outputs) if (!produced.has(o.name)) {
    if (!outer.has(o.name)) throw new ModelLoadError(`graph '${graph.name}': output '${o.name}' is not produced`);
    free.add(o.name);
  }
  const steps = schedule(prepared, graph);

  // Liveness: a value dies after its last reader, unless it is a graph output or a constant.
  const keep = new Set([...graph.outputs.map((o) => o.name), ...graph.initializers.keys()]);
  const last = new Map<string, number>();
  steps.forEach((s, i) => { for (const n of [...s.node.inputs, ...s.implicit]) if (n) last.set(n, i); });
  for (const [name, i] of last) if (!keep.has(name) && produced.has(name)) steps[i].release.push(name);
  // Outputs nobody reads are freed right after they are made.
  steps.forEach((s) => { for (const o of s.node.outputs) if (o && !last.has(o) && !keep.has(o)) s.release.push(o); });

  return { graph, steps, inputs: graph.inputs.map((i) => i.name), outputs: graph.outputs.map((o) => o.name), constants: graph.initializers, free };
}

function prepare(node: Node, env: CompileEnv): Step {
  const opset = env.opsets.get(node.domain);
  if (opset === undefined) throw new UnsupportedOpError(node.opType, node.domain, 0, node.name, `domain '${node.domain}' is not imported by the model`);
  const def = lookup(node.domain, node.opType, opset);
  if (!def) throw new UnsupportedOpError(node.opType, node.domain, opset, node.name);
  let attrs: unknown;
  try {
    attrs = def.attrs ? def.attrs(new Attrs(node), opset) : undefined;
  } catch (e) {
    if (e instanceof LastmileError) throw e;
    throw new OpError(`${where(node)}: bad attributes: ${(e as Error).message}`);
  }
  return { node, def, attrs, opset, subgraphs: new Map(), implicit: [], release: [] };
}

/** Compiles the node's graph attributes into the step, and notes what they read from enclosing scopes. */
function compileSubgraphs(step: Step, env: CompileEnv, options: CompileOptions, visible: ReadonlySet<string>): void {
  const implicit = new Set<string>();
  for (const a of step.node.attrs.values()) {
    const graphs = a.type === 'graph' ? [a.value as Graph] : a.type === 'graphs' ? (a.value as Graph[]) : [];
    for (const g of graphs) {
      const p = compile(g, env, options, visible);
      step.subgraphs.set(a.name, p);
      for (const f of p.free) implicit.add(f);
    }
  }
  step.implicit = [...implicit];
}

/** The Constant node's tensor, when the step is one (default domain, parsed attributes). */
export function constantOf(step: Step): NdArray | undefined {
  if (step.node.opType !== 'Constant' || step.node.domain !== '' || step.node.inputs.length) return undefined;
  const v = (step.attrs as { value?: unknown } | undefined)?.value;
  return v instanceof NdArray ? v : undefined;
}

/**
 * The compile-time constants a subgraph of this graph sees: the enclosing scopes', less any name this
 * graph defines again (its inputs, which may be fed or loop-carried, and its node outputs), plus this
 * graph's initializers that are not inputs and its Constant outputs.
 */
function scopeConstants(graph: Graph, steps: Step[], outer: ReadonlyMap<string, NdArray> | undefined): Map<string, NdArray> {
  const out = new Map(outer);
  const fed = new Set(graph.inputs.map((i) => i.name));
  for (const n of fed) out.delete(n);
  for (const s of steps) for (const o of s.node.outputs) if (o) out.delete(o);
  for (const [name, v] of graph.initializers) if (v instanceof NdArray && !fed.has(name)) out.set(name, v);
  for (const s of steps) { const c = constantOf(s); if (c) out.set(s.node.outputs[0], c); }
  return out;
}

/** Steps less the Constant nodes whose value no node, subgraph or graph output reads. */
function withoutDeadConstants(steps: Step[], graph: Graph): Step[] {
  const read = new Set(graph.outputs.map((o) => o.name));
  for (const s of steps) for (const n of [...s.node.inputs, ...s.implicit]) if (n) read.add(n);
  return steps.filter((s) => !constantOf(s) || read.has(s.node.outputs[0]));
}

/** Stable topological order: keeps the file's order when it is already valid (the common case). */
function schedule(steps: Step[], graph: Graph): Step[] {
  const ready = new Set<string>([...graph.inputs.map((i) => i.name), ...graph.initializers.keys()]);
  const producer = new Map<string, Step>();
  for (const s of steps) for (const o of s.node.outputs) if (o) producer.set(o, s);
  const out: Step[] = [];
  const state = new Map<Step, 0 | 1 | 2>(); // 1 = visiting, 2 = done
  const visit = (s: Step) => {
    const st = state.get(s);
    if (st === 2) return;
    if (st === 1) throw new ModelLoadError(`${where(s.node)}: the graph has a cycle through this node`);
    state.set(s, 1);
    for (const n of [...s.node.inputs, ...s.implicit]) {
      const p = n && !ready.has(n) ? producer.get(n) : undefined;
      if (p) visit(p);
    }
    state.set(s, 2);
    out.push(s);
  };
  for (const s of steps) visit(s);
  return out;
}
