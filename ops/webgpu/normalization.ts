// GPU lowerings of BatchNormalization (inference), LayerNormalization, InstanceNormalization,
// GroupNormalization, RMSNormalization, LpNormalization, MeanVarianceNormalization and LRN.
import type { DType } from '../../engine/dtype.js';
import type { Node } from '../../engine/graph.js';
import { elementwise } from '../../kernels/webgpu/elementwise.js';
import { batchNormProgram, lpNormProgram, lrnProgram, standardizeProgram, type Periodic } from '../../kernels/webgpu/norm.js';
import type { GpuArray } from '../../kernels/webgpu/runner.js';
import { fail, gpuAt, registerGpu, type GpuCtx } from '../registry.js';

const FLOATS = new Set<DType | undefined>(['float32', 'float16', undefined]);
const floatsOnly = (d: (DType | undefined)[]) => { const bad = d.find((x) => !FLOATS.has(x)); return bad ? `dtype ${bad} is not a GPU float` : undefined; };
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function normAxis(axis: number, rank: number, ctx: GpuCtx) {
  if (axis < -rank || axis >= rank) fail(ctx, `axis ${axis} is out of range for input 0 (X) of rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

/** Input i as one value per channel (or group): periodic over x's flat index with period `div`. */
function perChannel(ins: Parameters<typeof gpuAt>[0], i: number, what: string, count: number, div: number, ctx: GpuCtx): Periodic {
  const t = gpuAt(ins, i, ctx);
  if (t.size !== count) fail(ctx, `input ${i} (${what}) should have ${count} values, got shape [${t.shape}]`);
  return { arr: t, div, mod: count };
}

/**
 * Input i broadcast (right-aligned) over x's shape: its non-1 dims span x's dims [lo, hi), so element p
 * reads (p / prod(x[hi:])) % prod(x[lo:hi]). When broadcast 1s sit inside that span the parameter is
 * first expanded to it (a temporary, listed in `temps`).
 */
function broadcastParam(ins: Parameters<typeof gpuAt>[0], i: number, what: string, xs: readonly number[], ctx: GpuCtx, temps: GpuArray[]): Periodic {
  const t = gpuAt(ins, i, ctx), r = xs.length, ps = [...new Array<number>(Math.max(0, r - t.shape.length)).fill(1), ...t.shape];
  if (t.shape.length > r || ps.some((d, k) => d !== 1 && d !== xs[k])) fail(ctx, `input ${i} (${what}) of shape [${t.shape}] should broadcast to [${xs}]`);
  const spread = ps.flatMap((d, k) => (d !== 1 ? [k] : []));
  const lo = spread[0] ?? r, hi = (spread.at(-1) ?? r - 1) + 1, block = xs.slice(lo, hi);
  const q = { div: prod(xs.slice(hi)), mod: prod(block) };
  if (t.size === q.mod) return { arr: t, ...q };
  const [e] = ctx.gpu.run(elementwise({ name: 'Expand', expr: 'v0', inputs: [t], outShape: block, outDtype: t.dtype }));
  temps.push(e);
  return { arr: e, ...q };
}

/** Runs standardizeProgram and releases the expanded temporaries (recorded reads are kept). */
function runStandardize(ctx: GpuCtx, spec: Parameters<typeof standardizeProgram>[1], temps: GpuArray[]): GpuArray[] {
  const outs = ctx.gpu.run(standardizeProgram(ctx.gpu.ctx, spec));
  for (const t of temps) ctx.gpu.release(t);
  return outs;
}

/** N x C x spatial view (a 1-D X is N samples of one channel). */
const ncs = (x: GpuArray): [number, number, number] => {
  const n = x.shape[0] ?? 1, c = x.shape[1] ?? 1;
  return [n, c, n * c ? x.size / (n * c) : 0];
};

/** LayerNormalization's Mean and InvStdDev outputs are optional. */
const wantsStats = (node: Node) => !!(node.outputs[1] || node.outputs[2]);

registerGpu({
  op: 'BatchNormalization',
  // Training (batch statistics, running averages) is not an inference path: it stays on the CPU.
  reject: (d, a: { training: boolean }, ctx) => floatsOnly(d)
    ?? (a.training || (ctx.opset < 14 && ctx.node.outputs.filter(Boolean).length > 1) ? 'training mode runs on the CPU' : undefined),
  run: (ins, a: { epsilon: number }, ctx) => {
    const x = gpuAt(ins, 0, ctx), [, c, spatial] = ncs(x);
    const names = ['scale', 'B', 'input_mean', 'input_var'];
    const params = names.map((w, k) => perChannel(ins, k + 1, w, c, spatial, ctx).arr) as [GpuArray, GpuArray, GpuArray, GpuArray];
    return ctx.gpu.run(batchNormProgram(x, params, c, spatial, a.epsilon));
  },
}, {
  op: 'InstanceNormalization',
  reject: floatsOnly,
  run: (ins, a: { epsilon: number }, ctx) => {
    const x = gpuAt(ins, 0, ctx);
    if (x.shape.length < 3) fail(ctx, `input 0 (input) should be N x C x D1..., got shape [${x.shape}]`);
    const [n, c, spatial] = ncs(x);
    return runStandardize(ctx, {
      x, shape: [n * c, spatial], axes: [1], center: true, eps: a.epsilon, outDtype: x.dtype,
      scale: perChannel(ins, 1, 'scale', c, spatial, ctx), bias: perChannel(ins, 2, 'B', c, spatial, ctx),
    }, []);
  },
}, {
  op: 'GroupNormalization',
  since: 18,
  reject: floatsOnly,
  run: (ins, a: { epsilon: number; groups: number }, ctx) => {
    const x = gpuAt(ins, 0, ctx), [n, c, spatial] = ncs(x), g = a.groups;
    if (x.shape.length < 2 || g < 1 || c % g !== 0) fail(ctx, `num_groups ${g} should divide the ${c} channels of input 0 (X) [${x.shape}]`);
    // Opset 18 has one scale and bias per group; opset 21 one per channel.
    const [count, div] = ctx.opset < 21 ? [g, (c / g) * spatial] : [c, spatial];
    return runStandardize(ctx, {
      x, shape: [n * g, (c / g) * spatial], axes: [1], center: true, eps: a.epsilon, outDtype: x.dtype,
      scale: perChannel(ins, 1, 'scale', count, div, ctx), bias: perChannel(ins, 2, 'bias', count, div, ctx),
    }, []);
  },
}, {
  op: 'LayerNormalization',
  since: 17,
  reject: (d, a: { stash: DType }, ctx) => floatsOnly(d) ?? (!wantsStats(ctx.node) || a.stash === 'float32' || (a.stash === 'float16' && ctx.f16)
    ? undefined : `stash_type ${a.stash} has no GPU storage`),
  run: (ins, a: { axis: number; epsilon: number; stash: DType }, ctx) => {
    const x = gpuAt(ins, 0, ctx), rank = x.shape.length, axis = normAxis(a.axis, rank, ctx), temps: GpuArray[] = [];
    return runStandardize(ctx, {
      x, shape: x.shape, axes: [...Array(rank).keys()].slice(axis), center: true, eps: a.epsilon, outDtype: x.dtype,
      scale: broadcastParam(ins, 1, 'Scale', x.shape, ctx, temps),
      bias: ins[2] ? broadcastParam(ins, 2, 'B', x.shape, ctx, temps) : undefined,
      stats: wantsStats(ctx.node) ? { dtype: a.stash, shape: x.shape.map((d, i) => (i < axis ? d : 1)) } : undefined,
    }, temps);
  },
}, {
  op: 'RMSNormalization',
  since: 23,
  reject: floatsOnly,
  run: (ins, a: { axis: number; epsilon: number }, ctx) => {
    const x = gpuAt(ins, 0, ctx), rank = x.shape.length, axis = normAxis(a.axis, rank, ctx), temps: GpuArray[] = [];
    const scale = broadcastParam(ins, 1, 'scale', x.shape, ctx, temps);
    return runStandardize(ctx, {
      x, shape: x.shape, axes: [...Array(rank).keys()].slice(axis), center: false, eps: a.epsilon, outDtype: gpuAt(ins, 1, ctx).dtype, scale,
    }, temps);
  },
}, {
  op: 'LpNormalization',
  reject: floatsOnly,
  run: (ins, a: { axis: number; p: 1 | 2 }, ctx) => {
    const x = gpuAt(ins, 0, ctx);
    return ctx.gpu.run(lpNormProgram(ctx.gpu.ctx, x, normAxis(a.axis, x.shape.length, ctx), a.p));
  },
}, {
  op: 'MeanVarianceNormalization',
  since: 9,
  reject: floatsOnly,
  run: (ins, a: { axes: number[] }, ctx) => {
    const x = gpuAt(ins, 0, ctx), axes = a.axes.map((v) => normAxis(v, x.shape.length, ctx));
    return runStandardize(ctx, { x, shape: x.shape, axes, center: true, eps: 1e-9, epsOutside: true, outDtype: x.dtype }, []);
  },
}, {
  op: 'LRN',
  reject: floatsOnly,
  run: (ins, a: { size: number; alpha: number; beta: number; bias: number }, ctx) => {
    const x = gpuAt(ins, 0, ctx);
    if (x.shape.length < 2) fail(ctx, `input 0 (X) should be N x C x D1..., got shape [${x.shape}]`);
    const [, c, spatial] = ncs(x);
    return ctx.gpu.run(lrnProgram(x, c, spatial, a.size, a.alpha, a.beta, a.bias));
  },
});
