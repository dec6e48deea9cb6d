// Type and shape inference over a compiled plan. Symbolic dims (a name such as 'batch') flow through
// ops that declare an `infer` rule; a dim nobody can know is null. Used for metadata and `inspect`.
import type { Model, TypeInfo } from './graph.js';
import type { Plan } from './plan.js';
import { NdArray } from './tensor.js';

export function inferTypes(model: Model, plan: Plan, overrides: Record<string, number> = {}): Map<string, TypeInfo> {
  const types = new Map<string, TypeInfo>();
  for (const [name, v] of model.graph.initializers) if (v instanceof NdArray) types.set(name, { kind: 'tensor', dtype: v.dtype, shape: [...v.shape] });
  for (const i of model.graph.inputs) if (i.type && !types.has(i.name)) types.set(i.name, fixDims(i.type, overrides));
  for (const [name, t] of model.graph.valueInfo) types.set(name, t);
  for (const step of plan.steps) {
    const ins = step.node.inputs.map((n) => (n ? types.get(n) : undefined));
    let outs: (TypeInfo | undefined)[] = [];
    try {
      outs = step.def.infer ? step.def.infer(ins, step.attrs, { node: step.node, opset: step.opset }) : [];
    } catch { outs = []; } // inference is advisory: the run itself checks and reports
    step.node.outputs.forEach((o, k) => {
      if (!o || types.has(o)) return;
      const t = outs[k] ?? (k === 0 && ins[0]?.kind === 'tensor' && !step.def.infer ? { kind: 'tensor' as const, dtype: ins[0].dtype } : undefined);
      if (t) types.set(o, t);
    });
  }
  return types;
}

function fixDims(t: TypeInfo, overrides: Record<string, number>): TypeInfo {
  if (t.kind !== 'tensor' || !t.shape) return t;
  return { ...t, shape: t.shape.map((d) => (typeof d === 'string' && d in overrides ? overrides[d] : d)) };
}
