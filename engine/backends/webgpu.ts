// The WebGPU backend of a session: owns the GPU runner, places nodes, checks `strict`, runs plans.
import { UnsupportedOpError } from '../errors.js';
import type { ExecHooks } from '../execute.js';
import { executeGpu, outputsToCpu, type AnyValue, type GpuExecState } from '../execute-gpu.js';
import type { Model, TypeInfo } from '../graph.js';
import { inferTypes } from '../infer.js';
import type { Plan, Step } from '../plan.js';
import { place, type InputKind, type Placement } from '../placement.js';
import { Tensor, toTensor, type Value } from '../tensor.js';
import { acquireGpu, releaseGpu } from '../../kernels/webgpu/device.js';
import { tuneGemms } from '../../kernels/webgpu/gemm-tuning.js';
import { GpuArray, GpuRunner } from '../../kernels/webgpu/runner.js';
import { fuseAttention, graphInfo } from '../../ops/webgpu/attention-fusion.js';
import '../../ops/webgpu/index.js';

/** The plan a WebGPU session runs: attention chains fused into one program each (a GPU-only rewrite: the
 *  CPU keeps the graph optimiser's plan), with liveness recomputed over the new steps. */
export function planForGpu(model: Model, plan: Plan, overrides?: Record<string, number>): Plan {
  const info = graphInfo(plan.graph, plan.steps, inferTypes(model, plan, overrides));
  const steps = fuseAttention(plan.steps, new Set(plan.outputs), info);
  return steps.length === plan.steps.length ? plan : { ...plan, steps: withLiveness(steps, plan) };
}

/** Each value freed after its last reader (as compile() does), unless it is an output, a constant or
 *  read from an enclosing scope; outputs nobody reads are freed right after they are made. */
function withLiveness(steps: Step[], plan: Plan): Step[] {
  const keep = new Set([...plan.outputs, ...plan.graph.initializers.keys()]);
  const out = steps.map((s) => ({ ...s, release: [] as string[] }));
  const last = new Map<string, number>();
  out.forEach((s, i) => { for (const n of [...s.node.inputs, ...s.implicit]) if (n) last.set(n, i); });
  for (const [name, i] of last) if (!keep.has(name) && !plan.free.has(name)) out[i].release.push(name);
  out.forEach((s) => { for (const o of s.node.outputs) if (o && !last.has(o) && !keep.has(o)) s.release.push(o); });
  return out;
}

export class WebGpuBackend {
  private readonly state: GpuExecState;
  private constructor(readonly runner: GpuRunner) {
    this.state = { gpu: runner, constants: new WeakMap(), placements: new Map() };
  }

  static async open(): Promise<WebGpuBackend> {
    return new WebGpuBackend(new GpuRunner(await acquireGpu()));
  }

  get adapter() { return this.runner.ctx.adapterName; }

  /** Placement of every node from inferred types (dtypes unknown at creation count as GPU-able). */
  plan(plan: Plan, types: Map<string, TypeInfo>): Map<Step, Placement> {
    const out = new Map<Step, Placement>();
    for (const s of plan.steps) {
      const dtypes = s.node.inputs.map((n): InputKind => { const t = types.get(n); return t?.kind === 'tensor' ? t.dtype : t ? 'nontensor' : undefined; });
      out.set(s, place(s, dtypes, this.runner.ctx.f16));
    }
    return out;
  }

  /** Refuses (strict) or reports once (otherwise) compute-heavy nodes that would run on the CPU. */
  checkFallbacks(plan: Plan, types: Map<string, TypeInfo>, strict: boolean, quiet = false): void {
    const fallbacks = [...this.plan(plan, types)].filter(([, p]) => p.fallback);
    if (!fallbacks.length) return;
    const ops = [...new Set(fallbacks.map(([s, p]) => `${s.node.opType} (${p.reason})`))];
    if (strict) {
      const [s, p] = fallbacks[0];
      throw new UnsupportedOpError(s.node.opType, s.node.domain, s.opset, s.node.name,
        `strict WebGPU session: ${fallbacks.length} compute node(s) would run on the CPU: ${ops.join('; ')}; first: ${p.reason}`);
    }
    if (!quiet) console.warn(`lastmile: WebGPU session runs ${fallbacks.length} node(s) on the CPU: ${ops.join('; ')}`);
  }

  /** Runs the plan; outputs named in `keepOnGpu` come back as GPU-buffer Tensors the caller disposes. */
  async run(plan: Plan, feeds: Map<string, Value>, hooks?: ExecHooks, gpuFeeds = new Map<string, Tensor>(), keepOnGpu = new Set<string>()): Promise<(Value | Tensor)[]> {
    const all = new Map<string, AnyValue>(feeds);
    for (const [k, t] of gpuFeeds) all.set(k, this.runner.wrap(t.gpuBuffer, t.type, t.dims));
    const vals: AnyValue[] = await executeGpu(plan, all, this.state, hooks);
    return Promise.all(vals.map(async (v, i) => {
      if (!(v instanceof GpuArray)) return v;
      if (keepOnGpu.has(plan.outputs[i])) return this.gpuTensor(v);
      return (await outputsToCpu([v], this.runner))[0];
    }));
  }

  private gpuTensor(a: GpuArray): Tensor {
    return Tensor.fromGpuBuffer(a.buffer, {
      dataType: a.dtype, dims: a.shape,
      download: async () => toTensor(await this.runner.download(a)).data,
      dispose: () => this.runner.release(a),
    });
  }

  /** Placements chosen on the last run (actual dtypes), for reports. */
  get lastPlacements(): ReadonlyMap<Step, Placement> { return this.state.placements; }

  /** Times the GEMM variants for the product shapes seen so far (gemm-tuning.ts); true when a winner
   *  differs from the rule, so a run compiles new pipelines. */
  async tuneGemms(): Promise<boolean> { return (await tuneGemms(this.runner)).length > 0; }

  startProfiling(): boolean { return this.runner.startProfiling(); }
  stopProfiling() { return this.runner.stopProfiling(); }

  destroy(): void {
    this.runner.destroy();
    releaseGpu(this.runner.ctx);
  }
}
