// Runs a plan on a WebGPU session: each node where placement puts it, values moving between CPU and GPU
// only where a node on the other side needs them. GPU work is recorded into one batch and submitted when
// the CPU has to read a result.
import { LastmileError, OpError, where } from './errors.js';
import { execute, type ExecHooks } from './execute.js';
import type { Plan, Step } from './plan.js';
import { place, type InputKind, type Placement } from './placement.js';
import { NdArray, type Value } from './tensor.js';
import { GpuArray, type GpuRunner } from '../kernels/webgpu/runner.js';
import { lookupGpu, type GpuOpDef } from '../ops/registry.js';

export type AnyValue = Value | GpuArray;

export interface GpuExecState {
  gpu: GpuRunner;
  /** Uploaded constants (initializers, Constant outputs), kept for the session's lifetime. */
  constants: WeakMap<NdArray, GpuArray>;
  /** Per node: the placement chosen on the last run, for reports. */
  placements: Map<Step, Placement>;
}

const kindOf = (v: AnyValue | undefined): InputKind => (v instanceof NdArray || v instanceof GpuArray ? v.dtype : v === undefined ? undefined : 'nontensor');

export async function executeGpu(plan: Plan, feeds: Map<string, AnyValue>, st: GpuExecState, hooks?: ExecHooks): Promise<AnyValue[]> {
  const { gpu } = st;
  const env = new Map<string, AnyValue>(feeds);
  const get = (n: string): AnyValue | undefined => env.get(n) ?? plan.constants.get(n);
  const temps: GpuArray[] = [];
  const toGpu = (v: NdArray, constant: boolean): GpuArray => {
    const hit = st.constants.get(v);
    if (hit) return hit;
    const g = gpu.upload(v);
    if (constant) st.constants.set(v, g); else temps.push(g);
    return g;
  };
  const toCpu = async (v: AnyValue): Promise<Value> => (v instanceof GpuArray ? gpu.download(v) : v);
  try {
    for (const step of plan.steps) {
      const { node } = step;
      const ins = node.inputs.map((n) => (n ? get(n) : undefined));
      node.inputs.forEach((n, i) => { if (n && ins[i] === undefined) throw new OpError(`${where(node)}: input '${n}' has no value`); });
      const placement = place(step, ins.map(kindOf), gpu.ctx.f16);
      st.placements.set(step, placement);
      const t0 = hooks?.onStep ? performance.now() : 0;
      let outs: AnyValue[];
      if (placement.device === 'gpu') {
        const def = lookupGpu(node.domain, node.opType, step.opset)!;
        gpu.label = `${node.opType}|${node.name}`;
        const args = await Promise.all(ins.map(async (v, i) => {
          if (v === undefined) return undefined;
          if (def.cpuInputs?.includes(i)) return (await toCpu(v)) as NdArray;
          return v instanceof NdArray ? toGpu(v, isConstant(plan, node.inputs[i], v)) : (v as GpuArray);
        }));
        outs = runGpu(def, args, step, gpu);
        if (gpu.blocked) await gpu.drain();
      } else {
        const args = await Promise.all(ins.map((v) => (v === undefined ? undefined : toCpu(v))));
        // Subgraphs read outer values on the CPU: bring the ones they use over first.
        const outer = new Map<string, Value>();
        for (const n of step.implicit) { const v = get(n); if (v !== undefined) outer.set(n, await toCpu(v)); }
        outs = runCpu(step, args, outer, hooks);
      }
      if (hooks?.onStep) hooks.onStep(step, performance.now() - t0, [], []);
      node.outputs.forEach((name, i) => {
        let v = outs[i];
        if (!name) { if (v instanceof GpuArray && !ins.includes(v)) gpu.release(v); return; } // an omitted optional output
        if (v === undefined) throw new OpError(`${where(node)}: produced no value for output ${i} ('${name}')`);
        // An op that hands an input back unchanged shares its buffer: take a reference of our own.
        if (v instanceof GpuArray && ins.includes(v)) v = v.view();
        env.set(name, v);
      });
      for (const r of step.release) release(env, r, gpu);
    }
    return plan.outputs.map((n) => {
      const v = get(n);
      if (v === undefined) throw new OpError(`graph '${plan.graph.name}': output '${n}' has no value`);
      return v;
    });
  } finally {
    for (const t of temps) gpu.release(t);
  }
}

/** Outputs of Constant nodes per plan, found once rather than by a scan on every upload. */
const constantOutputs = new WeakMap<Plan, Set<string>>();

function isConstant(plan: Plan, name: string, v: NdArray): boolean {
  if (plan.constants.get(name) === v) return true;
  let names = constantOutputs.get(plan);
  if (!names) constantOutputs.set(plan, names = new Set(plan.steps.filter((s) => s.node.opType === 'Constant').map((s) => s.node.outputs[0])));
  return names.has(name);
}

function runGpu(def: GpuOpDef, args: (GpuArray | NdArray | undefined)[], step: Step, gpu: GpuRunner): GpuArray[] {
  try {
    return def.run(args, step.attrs, { node: step.node, opset: step.opset, gpu });
  } catch (e) {
    if (e instanceof LastmileError) throw e;
    throw new OpError(`${where(step.node)} on WebGPU: ${(e as Error).message ?? e}`);
  }
}

/** One node through the CPU executor, as a one-step plan with its outer values bound. */
function runCpu(step: Step, args: (Value | undefined)[], outer: Map<string, Value>, hooks?: ExecHooks): Value[] {
  const feeds = new Map<string, Value>();
  step.node.inputs.forEach((n, i) => { if (n && args[i] !== undefined) feeds.set(n, args[i]!); });
  const outputs = step.node.outputs.filter(Boolean);
  const mini: Plan = {
    graph: { name: step.node.name, nodes: [step.node], inputs: [], outputs: outputs.map((name) => ({ name })), initializers: new Map(), valueInfo: new Map() },
    steps: [{ ...step, release: [] }], inputs: [], outputs, constants: new Map(), free: new Set(),
  };
  const vals = execute(mini, feeds, (n) => outer.get(n), hooks ? {} : undefined);
  let k = 0;
  return step.node.outputs.map((n) => (n ? vals[k++] : (undefined as unknown as Value)));
}

function release(env: Map<string, AnyValue>, name: string, gpu: GpuRunner) {
  const v = env.get(name);
  env.delete(name);
  if (v instanceof GpuArray) gpu.release(v);
}

/** Graph outputs back on the CPU (sequences and optionals may hold only CPU tensors). */
export async function outputsToCpu(vals: AnyValue[], gpu: GpuRunner): Promise<Value[]> {
  return Promise.all(vals.map(async (v) => {
    if (!(v instanceof GpuArray)) return v as Value;
    const cpu = await gpu.download(v);
    gpu.release(v);
    return cpu;
  }));
}

