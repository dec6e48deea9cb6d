// Runs a compiled plan on the CPU. Subgraphs (If/Loop/Scan bodies) run through the same function with
// a lookup that falls back to the enclosing scope.
import { NARROW_FLOATS } from './dtype.js';
import { LastmileError, OpError, where } from './errors.js';
import type { Plan, Step } from './plan.js';
import { NdArray, type Value } from './tensor.js';
import { roundInPlace } from '../kernels/cpu/minifloat.js';
import type { RunCtx } from '../ops/registry.js';

export type Lookup = (name: string) => Value | undefined;

export interface ExecHooks {
  /** Called after each step with its wall time; used by profiling. */
  onStep?: (step: Step, ms: number) => void;
}

export function execute(plan: Plan, feeds: Map<string, Value>, outer?: Lookup, hooks?: ExecHooks): Value[] {
  const env = new Map(feeds);
  const get: Lookup = (n) => env.get(n) ?? plan.constants.get(n) ?? outer?.(n);
  for (const step of plan.steps) {
    const { node } = step;
    const ins = node.inputs.map((n) => (n ? get(n) : undefined));
    node.inputs.forEach((n, i) => {
      if (n && ins[i] === undefined) throw new OpError(`${where(node)}: input '${n}' has no value`);
    });
    const ctx: RunCtx = {
      node, opset: step.opset,
      subgraph: (attr) => {
        const sub = step.subgraphs.get(attr);
        if (!sub) throw new OpError(`${where(node)}: missing graph attribute '${attr}'`);
        return (inputs) => execute(sub, new Map(sub.inputs.map((n, i) => [n, inputs[i]] as [string, Value])), get, hooks);
      },
    };
    const t0 = hooks?.onStep ? performance.now() : 0;
    let outs: Value[];
    try {
      outs = step.def.run(ins, step.attrs, ctx);
    } catch (e) {
      if (e instanceof LastmileError) throw e;
      throw new OpError(`${where(node)}: ${(e as Error).message ?? e}`);
    }
    if (hooks?.onStep) hooks.onStep(step, performance.now() - t0);
    node.outputs.forEach((name, i) => {
      if (!name) return;
      const v = outs[i];
      if (v === undefined) throw new OpError(`${where(node)}: produced no value for output ${i} ('${name}')`);
      if (v instanceof NdArray && NARROW_FLOATS.has(v.dtype) && !ins.some((x) => x instanceof NdArray && x.data === v.data)) {
        roundInPlace(v.dtype, v.data as Float32Array);
      }
      env.set(name, v);
    });
    for (const r of step.release) env.delete(r);
  }
  return plan.outputs.map((n) => {
    const v = get(n);
    if (v === undefined) throw new OpError(`graph '${plan.graph.name}': output '${n}' has no value`);
    return v;
  });
}
