// Runs a compiled plan on the CPU. Subgraphs (If/Loop/Scan bodies) run through the same function with
// a lookup that falls back to the enclosing scope.
import { Arena, using } from './arena.js';
import { NARROW_FLOATS } from './dtype.js';
import { LastmileError, OpError, where } from './errors.js';
import type { Plan, Step } from './plan.js';
import { NdArray, Opt, Seq, type Value } from './tensor.js';
import { roundInPlace } from '../kernels/cpu/minifloat.js';
import type { RunCtx } from '../ops/registry.js';

export type Lookup = (name: string) => Value | undefined;

export interface ExecHooks {
  /** Called after each step with its wall time, inputs and outputs; used by profiling. */
  onStep?: (step: Step, ms: number, ins: readonly (Value | undefined)[], outs: readonly Value[]) => void;
  /** Recycles the buffers of values that died (engine/arena.ts); subgraph runs share it. */
  arena?: Arena;
}

export function execute(plan: Plan, feeds: Map<string, Value>, outer?: Lookup, hooks?: ExecHooks): Value[] {
  return hooks?.arena ? using(hooks.arena, () => run(plan, feeds, outer, hooks)) : run(plan, feeds, outer, hooks);
}

/**
 * A plan laid out for running, built on its first run: every value name it touches gets a slot in a
 * per-run array, so a step finds its inputs by index rather than by name. Small models run hundreds of
 * tiny steps (Silero VAD: about 180 per run, half of them Constant nodes inside If branches), where
 * name lookups and per-step allocations cost as much as the ops.
 */
interface Layout {
  slot: Map<string, number>;
  names: string[];
  /** Per slot: 1 where no step of this plan makes the value (feeds, constants, the enclosing scope). */
  outside: Uint8Array;
  /** Per slot: the constant it holds, if any (initializers, and Constant nodes' tensors hoisted out of the steps). */
  fixed: (Value | undefined)[];
  inputs: number[];
  ops: Op[];
}

interface Op {
  step: Step;
  /** Slots of the node's inputs and outputs; -1 where the name is omitted (''). */
  ins: Int32Array;
  outs: Int32Array;
  release: Int32Array;
  /** The run context of a step without subgraphs, the same on every run. */
  ctx?: RunCtx;
}

const layouts = new WeakMap<Plan, Layout>();

function layout(plan: Plan): Layout {
  let l = layouts.get(plan);
  if (l) return l;
  const slot = new Map<string, number>(), names: string[] = [];
  const at = (n: string) => {
    let s = slot.get(n);
    if (s === undefined) { s = names.length; slot.set(n, s); names.push(n); }
    return s;
  };
  const slots = (ns: readonly string[]) => Int32Array.from(ns, (n) => (n ? at(n) : -1));
  const inputs = plan.inputs.map(at), hoisted = new Map<number, Value>(), made = new Set<number>(), ops: Op[] = [];
  for (const step of plan.steps) {
    const c = hoist(step);
    if (c) { hoisted.set(at(step.node.outputs[0]), c); continue; }
    const op: Op = { step, ins: slots(step.node.inputs), outs: slots(step.node.outputs), release: Int32Array.from(step.release, at) };
    for (const n of step.implicit) at(n);
    for (const s of op.outs) if (s >= 0) made.add(s);
    if (!step.subgraphs.size) op.ctx = { node: step.node, opset: step.opset, subgraph: (attr) => missingGraph(step, attr) };
    ops.push(op);
  }
  for (const n of plan.outputs) at(n);
  const outside = Uint8Array.from(names, (_, s) => (made.has(s) ? 0 : 1));
  const fixed = names.map((n, s) => hoisted.get(s) ?? plan.constants.get(n));
  l = { slot, names, outside, fixed, inputs, ops };
  layouts.set(plan, l);
  return l;
}

/** A Constant node's tensor, taken out of the steps: it is the same object on every run. */
function hoist(step: Step): Value | undefined {
  const { node } = step;
  if (node.opType !== 'Constant' || node.domain !== '' || node.inputs.length || node.outputs.length !== 1 || !node.outputs[0]) return undefined;
  let v: Value | undefined;
  try {
    v = step.def.run([], step.attrs, { node, opset: step.opset, subgraph: (attr) => missingGraph(step, attr) })[0];
  } catch {
    return undefined; // left as a step, to fail at run time as it would have
  }
  if (!(v instanceof NdArray)) return undefined;
  if (NARROW_FLOATS.has(v.dtype)) roundInPlace(v.dtype, v.data as Float32Array);
  return v;
}

function missingGraph(step: Step, attr: string): never {
  throw new OpError(`${where(step.node)}: missing graph attribute '${attr}'`);
}

/** Feeds by name (a session run) or by position of the plan's inputs (a subgraph run). */
function run(plan: Plan, feeds: Map<string, Value> | readonly (Value | undefined)[], outer: Lookup | undefined, hooks: ExecHooks | undefined): Value[] {
  const l = layout(plan);
  const vals = new Array<Value | undefined>(l.names.length).fill(undefined);
  const owners = hooks?.arena ? new Owners(hooks.arena) : undefined;
  if (feeds instanceof Map) {
    for (const [n, v] of feeds) {
      const s = l.slot.get(n);
      if (s !== undefined) vals[s] = v;
      owners?.foreign(v);
    }
  } else {
    l.inputs.forEach((s, i) => {
      const v = feeds[i];
      vals[s] = v;
      if (v !== undefined) owners?.foreign(v);
    });
  }
  /** A value by name, as subgraphs see this scope: this run's, else a constant, else the enclosing scope's. */
  const get: Lookup = (n) => {
    const s = l.slot.get(n);
    return (s === undefined ? plan.constants.get(n) : vals[s] ?? l.fixed[s]) ?? outer?.(n);
  };
  /** A step input: a value from outside the run is marked so that it is never recycled. */
  const input = (s: number): Value | undefined => {
    const v = vals[s];
    if (!l.outside[s]) return v;
    const w = v ?? l.fixed[s] ?? outer?.(l.names[s]);
    if (w !== undefined) owners?.foreign(w);
    return w;
  };
  for (const op of l.ops) {
    const { step } = op, { node } = step;
    const ins: (Value | undefined)[] = [];
    for (let i = 0; i < op.ins.length; i++) {
      const s = op.ins[i];
      const v = s < 0 ? undefined : input(s);
      if (v === undefined && s >= 0) throw new OpError(`${where(node)}: input '${node.inputs[i]}' has no value`);
      ins.push(v);
    }
    const ctx = op.ctx ?? scopeCtx(step, get, hooks);
    const t0 = hooks?.onStep ? performance.now() : 0;
    let outs: Value[];
    try {
      outs = step.def.run(ins, step.attrs, ctx);
    } catch (e) {
      if (e instanceof LastmileError) throw e;
      throw new OpError(`${where(node)}: ${(e as Error).message ?? e}`);
    }
    if (hooks?.onStep) hooks.onStep(step, performance.now() - t0, ins, outs);
    for (let i = 0; i < op.outs.length; i++) {
      const s = op.outs[i];
      if (s < 0) continue;
      const v = outs[i];
      if (v === undefined) throw new OpError(`${where(node)}: produced no value for output ${i} ('${node.outputs[i]}')`);
      if (v instanceof NdArray && NARROW_FLOATS.has(v.dtype) && !ins.some((x) => x instanceof NdArray && x.data === v.data)) {
        roundInPlace(v.dtype, v.data as Float32Array);
      }
      vals[s] = v;
      owners?.hold(v);
    }
    for (let i = 0; i < op.release.length; i++) {
      const s = op.release[i];
      if (owners) { const v = vals[s]; if (v !== undefined) owners.drop(v); }
      vals[s] = undefined;
    }
  }
  return plan.outputs.map((n) => {
    const v = get(n);
    if (v === undefined) throw new OpError(`graph '${plan.graph.name}': output '${n}' has no value`);
    return v;
  });
}

/** The run context of a step with subgraphs: they run in this run's scope, with its hooks and arena. */
function scopeCtx(step: Step, get: Lookup, hooks: ExecHooks | undefined): RunCtx {
  return {
    node: step.node, opset: step.opset,
    subgraph: (attr) => {
      const sub = step.subgraphs.get(attr);
      if (!sub) missingGraph(step, attr);
      // Already inside this run's `using` of the arena (execute), so no second one.
      return (inputs) => run(sub, inputs, get, hooks);
    },
  };
}

/**
 * Which buffers of a run may be recycled: a buffer is counted once per live value viewing it (views
 * such as Reshape or Split outputs share their input's buffer; sequences hold several), and returns to
 * the arena when the count reaches zero, unless it was ever seen coming from outside the run (feeds,
 * initializers, the enclosing graph), whose owners still hold it.
 */
class Owners {
  private readonly refs = new Map<ArrayBufferLike, number>();
  private readonly outside = new Set<ArrayBufferLike>();
  constructor(private readonly arena: Arena) {}

  foreign(v: Value): void { eachBuffer(v, (b) => this.outside.add(b)); }
  hold(v: Value): void { eachBuffer(v, (b) => this.refs.set(b, (this.refs.get(b) ?? 0) + 1)); }
  drop(v: Value): void {
    eachBuffer(v, (b) => {
      const n = (this.refs.get(b) ?? 0) - 1;
      if (n > 0) { this.refs.set(b, n); return; }
      this.refs.delete(b);
      if (!this.outside.has(b) && b instanceof ArrayBuffer) this.arena.give(b);
    });
  }
}

function eachBuffer(v: Value | null, f: (b: ArrayBufferLike) => void): void {
  if (v instanceof NdArray) { if (ArrayBuffer.isView(v.data)) f(v.data.buffer); }
  else if (v instanceof Seq) for (const t of v.items) eachBuffer(t, f);
  else if (v instanceof Opt) eachBuffer(v.value, f);
}
