// The working state of graph optimisation: a graph's nodes in dependency order with producer/consumer
// indexes, which values are constants, which must be left alone, and inferred types. Passes read it,
// record rewrites (nodes replaced, values aliased) and commit them at the end; nodes are never mutated,
// only replaced, so caches keyed by node stay valid.
import type { Attr, Dim, Graph, Node, TypeInfo } from '../graph.js';
import type { CompileEnv } from '../plan.js';
import { NdArray } from '../tensor.js';
import { Attrs, lookup, type OpDef } from '../../ops/registry.js';

/** Domain of the ops that only optimisation creates (ops/fused.ts). */
export const INTERNAL = 'ai.lastmile';

export interface Resolved { def: OpDef; attrs: unknown; opset: number }
const resolved = new WeakMap<Node, Resolved | null>();

export const attr = (name: string, type: Attr['type'], value: Attr['value']): [string, Attr] => [name, { name, type, value }];
export const isFloatType = (d: string | undefined) => d === 'float32' || d === 'float64';

export class View {
  nodes: Node[];
  readonly producer = new Map<string, Node>();
  readonly consumers = new Map<string, Node[]>();
  /** Graph outputs and values read by subgraphs: never folded into, renamed or fused across. */
  readonly pinned: Set<string>;
  /** Graph inputs: an initializer listed among them can be fed, so it is no constant. */
  readonly fed: Set<string>;
  private names = new Set<string>();
  private typeMap?: Map<string, TypeInfo>;
  private removed = new Set<Node>();
  private replacement = new Map<Node, Node[]>();
  private front: Node[] = [];
  private aliases = new Map<string, string>();
  private position = new Map<Node, number>();

  constructor(readonly graph: Graph, readonly env: CompileEnv, readonly nested: boolean) {
    this.fed = new Set(graph.inputs.map((i) => i.name));
    this.pinned = new Set(graph.outputs.map((o) => o.name));
    for (const n of graph.nodes) for (const g of subgraphsOf(n)) collectReads(g, this.pinned);
    this.nodes = graph.nodes;
    this.reindex();
  }

  private reindex(): void {
    this.producer.clear();
    this.consumers.clear();
    this.position.clear();
    this.typeMap = undefined;
    for (const i of this.graph.inputs) this.names.add(i.name);
    for (const k of this.graph.initializers.keys()) this.names.add(k);
    this.nodes.forEach((n, k) => {
      this.position.set(n, k);
      for (const o of n.outputs) if (o) { this.producer.set(o, n); this.names.add(o); }
      for (const i of n.inputs) if (i) {
        const list = this.consumers.get(i);
        if (list) { if (!list.includes(n)) list.push(n); } else this.consumers.set(i, [n]);
      }
    });
  }

  /** Op definition and parsed attributes, or undefined when the op is unknown or its attributes are bad. */
  resolve(node: Node): Resolved | undefined {
    let r = resolved.get(node);
    if (r === undefined) {
      r = null;
      const opset = this.env.opsets.get(node.domain) ?? (node.domain === INTERNAL ? 1 : undefined);
      const def = opset === undefined ? undefined : lookup(node.domain, node.opType, opset);
      if (def && opset !== undefined) {
        try { r = { def, attrs: def.attrs ? def.attrs(new Attrs(node), opset) : undefined, opset }; } catch { r = null; }
      }
      resolved.set(node, r);
    }
    return r ?? undefined;
  }

  /** Opset of the default domain (what the model imports). */
  get opset(): number { return this.env.opsets.get('') ?? 1; }

  /** The tensor a value always holds: an initializer that cannot be fed, or a Constant node's output. */
  constant(name: string): NdArray | undefined {
    if (!name) return undefined;
    const init = this.graph.initializers.get(name);
    if (init) return !this.fed.has(name) && init instanceof NdArray ? init : undefined;
    const p = this.producer.get(name);
    if (p?.opType !== 'Constant' || p.domain !== '' || this.removed.has(p)) return undefined;
    const v = (this.resolve(p)?.attrs as { value?: unknown } | undefined)?.value;
    return v instanceof NdArray ? v : undefined;
  }

  /** Numbers of a small constant (axes, perms, scalars), or undefined. */
  ints(name: string | undefined): number[] | undefined {
    const c = name ? this.constant(name) : undefined;
    return c && c.size <= 64 && c.dtype !== 'string' ? c.numbers() : undefined;
  }

  /** A constant scalar (any single-element tensor) as a number. */
  scalar(name: string | undefined): number | undefined {
    const c = name ? this.constant(name) : undefined;
    return c && c.size === 1 && c.dtype !== 'string' && c.dtype !== 'bool' ? Number(c.data[0]) : undefined;
  }

  /** The only reader of a value that may be fused away: not pinned, one consumer, one use. */
  sole(name: string): Node | undefined {
    if (!name || this.pinned.has(name)) return undefined;
    const c = this.consumers.get(name);
    if (c?.length !== 1 || this.touched(c[0])) return undefined;
    return c[0].inputs.filter((i) => i === name).length === 1 ? c[0] : undefined;
  }

  /** The producer of a value when it is an untouched node of one of `ops` (default or internal domain). */
  made(name: string, ...ops: string[]): Node | undefined {
    const p = this.producer.get(name);
    return p && !this.touched(p) && ops.includes(p.opType) && (p.domain === '' || p.domain === INTERNAL) ? p : undefined;
  }

  touched(n: Node): boolean { return this.removed.has(n) || this.replacement.has(n); }

  // ---- types ----

  types(): Map<string, TypeInfo> {
    return (this.typeMap ??= inferTypes(this));
  }
  dtype(name: string): string | undefined {
    const c = this.constant(name);
    if (c) return c.dtype;
    const t = this.types().get(name);
    return t?.kind === 'tensor' ? t.dtype : undefined;
  }
  shape(name: string): Dim[] | undefined {
    const c = this.constant(name);
    if (c) return [...c.shape];
    const t = this.types().get(name);
    return t?.kind === 'tensor' ? t.shape : undefined;
  }
  rank(name: string): number | undefined { return this.shape(name)?.length; }

  // ---- edits ----

  /** A name no value in this graph has. */
  fresh(hint: string): string {
    let n = `${hint}/lm`, k = 0;
    while (this.names.has(n)) n = `${hint}/lm${++k}`;
    this.names.add(n);
    return n;
  }

  /** A new Constant node holding `value`; returns the value's name. */
  addConstant(hint: string, value: NdArray, name = this.fresh(hint)): string {
    this.front.push(constantNode(name, value));
    return name;
  }

  /** `olds` go away; `news` take the place of `at`, by default the last of them (all their inputs exist by then). */
  replace(olds: Node[], news: Node[], at?: Node): void {
    const anchor = at ?? olds.reduce((a, b) => (this.position.get(b)! > this.position.get(a)! ? b : a));
    for (const o of olds) if (o !== anchor) this.removed.add(o);
    this.replacement.set(anchor, news);
  }

  /** Every reader of `from` reads `to` instead (`from` must not be pinned). */
  alias(from: string, to: string): void { this.aliases.set(from, to); }

  /** Applies the recorded edits; true when anything changed. */
  commit(): boolean {
    if (!this.removed.size && !this.replacement.size && !this.front.length && !this.aliases.size) return false;
    const target = (n: string) => { let t = n; for (let i = 0; this.aliases.has(t) && i < 1000; i++) t = this.aliases.get(t)!; return t; };
    const redirect = (n: Node): Node => (n.inputs.some((i) => this.aliases.has(i)) ? { ...n, inputs: n.inputs.map((i) => (i ? target(i) : i)) } : n);
    const out: Node[] = [...this.front];
    for (const n of this.nodes) {
      if (this.removed.has(n)) continue;
      out.push(...(this.replacement.get(n) ?? [n]));
    }
    this.nodes = this.aliases.size ? out.map(redirect) : out;
    this.removed.clear(); this.replacement.clear(); this.front = []; this.aliases.clear();
    this.reindex();
    return true;
  }
}

export function constantNode(name: string, value: NdArray): Node {
  return { name: `${name}/const`, opType: 'Constant', domain: '', inputs: [], outputs: [name], attrs: new Map([attr('value', 'tensor', value)]) };
}

export function subgraphsOf(n: Node): Graph[] {
  const out: Graph[] = [];
  for (const a of n.attrs.values()) {
    if (a.type === 'graph') out.push(a.value as Graph);
    else if (a.type === 'graphs') out.push(...(a.value as Graph[]));
  }
  return out;
}

/** Every name a subgraph (or one nested in it) reads: a superset of what it takes from outside. */
function collectReads(g: Graph, into: Set<string>): void {
  for (const n of g.nodes) {
    for (const i of n.inputs) if (i) into.add(i);
    for (const s of subgraphsOf(n)) collectReads(s, into);
  }
  for (const o of g.outputs) into.add(o.name);
}

/** Stable dependency order (the file's order when it is already valid); undefined on a cycle or a dangling input. */
export function toposort(graph: Graph): Node[] | undefined {
  const producer = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const state = new Map<Node, 1 | 2>(), out: Node[] = [];
  const visit = (n: Node): boolean => {
    const s = state.get(n);
    if (s) return s === 2;
    state.set(n, 1);
    for (const i of n.inputs) { const p = i ? producer.get(i) : undefined; if (p && !visit(p)) return false; }
    state.set(n, 2);
    out.push(n);
    return true;
  };
  for (const n of graph.nodes) if (!visit(n)) return undefined;
  return out;
}

/** Types from declared inputs, constants and each op's `infer` rule, as engine/infer.ts does for a plan. */
function inferTypes(v: View): Map<string, TypeInfo> {
  const types = new Map<string, TypeInfo>();
  for (const i of v.graph.inputs) {
    // A loop-carried subgraph input may change shape between iterations whatever its declaration says.
    if (i.type) types.set(i.name, v.nested && i.type.kind === 'tensor' ? { kind: 'tensor', dtype: i.type.dtype } : i.type);
  }
  for (const [name, t] of v.graph.initializers) {
    if (t instanceof NdArray && !v.fed.has(name)) types.set(name, { kind: 'tensor', dtype: t.dtype, shape: [...t.shape] });
  }
  let fresh = 0;
  for (const n of v.nodes) {
    const r = v.resolve(n), ins = n.inputs.map((i) => (i ? named(types.get(i), () => `${UNKNOWN_DIM}${fresh++}`) : undefined));
    let outs: (TypeInfo | undefined)[] = [];
    try {
      if (r?.def.infer) outs = r.def.infer(ins, r.attrs, { node: n, opset: r.opset });
      else if (r && ins[0]?.kind === 'tensor') outs = [{ kind: 'tensor', dtype: ins[0].dtype }];
    } catch { outs = []; }
    n.outputs.forEach((o, k) => {
      const t = unnamed(outs[k]) ?? v.graph.valueInfo.get(o);
      if (o && t) types.set(o, t);
    });
  }
  return types;
}

// Shape folding bakes inferred dims into constants, so an unknown dim must never pass for a known one.
// Some rules read an unknown (null) dim as 1 when broadcasting; a unique symbolic name in its place is
// kept apart from every other dim, and turns back into null afterwards.
const UNKNOWN_DIM = '\u0000unknown';
const named = (t: TypeInfo | undefined, name: () => string): TypeInfo | undefined =>
  t?.kind === 'tensor' && t.shape?.includes(null) ? { ...t, shape: t.shape.map((d) => d ?? name()) } : t;
/** Placeholders back to null, and so is any number that is no dim (NaN from arithmetic on a name). */
const unnamed = (t: TypeInfo | undefined): TypeInfo | undefined => {
  const bad = (d: Dim) => (typeof d === 'string' ? d.startsWith(UNKNOWN_DIM) : typeof d === 'number' && !(Number.isSafeInteger(d) && d >= 0));
  return t?.kind === 'tensor' && t.shape?.some(bad) ? { ...t, shape: t.shape.map((d) => (bad(d) ? null : d)) } : t;
};

/** Element count when every dim is known. */
export const staticSize = (shape: Dim[] | undefined) =>
  shape && shape.every((d) => typeof d === 'number') ? (shape as number[]).reduce((a, b) => a * b, 1) : undefined;

/** A default-domain binary op without the pre-opset-7 broadcast attributes (numpy broadcasting). */
export const plainBinary = (n: Node | undefined, op: string): n is Node =>
  !!n && n.opType === op && n.domain === '' && n.inputs.length === 2 && !n.attrs.has('broadcast') && !n.attrs.has('axis');

/** The other input of a binary node, given one of them. */
export const otherInput = (n: Node, x: string) => (n.inputs[0] === x ? n.inputs[1] : n.inputs[0]);
