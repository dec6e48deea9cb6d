// GPU lowerings of the internal ops made by graph optimisation (ops/fused.ts, domain ai.lastmile):
//   FusedConv(X, W, B?, Z?)      the Conv program with Z, the activation and post_affine in its epilogue
//   FusedGemm(A, B, C?)          the Gemm program with the activation and post_affine in its epilogue
//   FusedMatMul(A, B, bias?)     permA/permB read as strides by the MatMul program; alpha, bias, activation and
//                                post_affine in its epilogue
//   LayerNormalization, Gelu,    the ONNX ops' GPU lowerings, for models whose opset predates them
//   HardSwish
// Each activation, and the affine after it, is WGSL applied in registers before the store (kernels/webgpu/activation.ts).
import type { DType } from '../../engine/dtype.js';
import type { Node } from '../../engine/graph.js';
import { INTERNAL } from '../../engine/passes/view.js';
import { isActivation, type Activation } from '../../kernels/webgpu/activation.js';
import type { ConvAttrs } from '../conv.js';
import type { PostAffine } from '../fused.js';
import { fail, gpuAt, lookupGpu, registerGpu, type GpuCtx, type GpuOpDef } from '../registry.js';
import { rejectNonFloat, runConv } from './conv.js';
import { runGemm, stridedMatMul, viewOf, type GemmAttrs } from './matmul.js';
import './normalization.js';
import './elementwise.js';

const FLOATS = new Set<DType | undefined>([undefined, 'float32', 'float16']);
const rejectFloats: GpuOpDef['reject'] = (d) => {
  const bad = d.find((x) => !FLOATS.has(x));
  return bad ? `dtype ${bad} not supported by the fused GPU kernels (float32, float16)` : undefined;
};

/** The node's `activation` and `activation_params`, as the CPU definition reads them. */
function activationOf(node: Node, ctx: GpuCtx): Activation | undefined {
  const name = node.attrs.get('activation')?.value;
  if (name === undefined) return undefined;
  if (typeof name !== 'string' || !isActivation(name)) fail(ctx, `unknown activation '${String(name)}'`);
  return { kind: name, params: (node.attrs.get('activation_params')?.value as number[] | undefined) ?? [] };
}

/** An activation without a WGSL epilogue (one a newer pass may produce) keeps the node on the CPU. */
const withActivation = (reject: GpuOpDef['reject']): GpuOpDef['reject'] => (d, a, ctx) => {
  const name = ctx.node.attrs.get('activation')?.value;
  return reject?.(d, a, ctx) ?? (name === undefined || (typeof name === 'string' && isActivation(name)) ? undefined : `activation '${String(name)}' has no GPU epilogue`);
};

/** The CPU definitions' parsed attributes: `base` holds the ONNX op's. */
interface Fused<A> { base: A; affine?: PostAffine }

registerGpu({
  op: 'FusedConv', domain: INTERNAL, reject: withActivation(rejectNonFloat),
  run: (ins, at: Fused<ConvAttrs>, ctx) => runConv(ins.slice(0, 3), at.base, ctx, ins[3] === undefined ? undefined : gpuAt(ins, 3, ctx), activationOf(ctx.node, ctx), at.affine),
}, {
  op: 'FusedGemm', domain: INTERNAL, reject: withActivation(rejectFloats),
  run: (ins, at: Fused<GemmAttrs>, ctx) => runGemm(ins, at.base, ctx, activationOf(ctx.node, ctx), at.affine),
}, {
  op: 'FusedMatMul', domain: INTERNAL, reject: withActivation(rejectFloats),
  run: (ins, at: { permA?: number[]; permB?: number[]; alpha: number; affine?: PostAffine }, ctx) => {
    const a = viewOf(gpuAt(ins, 0, ctx), at.permA, 'permA', ctx), b = viewOf(gpuAt(ins, 1, ctx), at.permB, 'permB', ctx);
    const post = { alpha: at.alpha, activation: activationOf(ctx.node, ctx), affine: at.affine };
    return [stridedMatMul(a, b, ctx, ins[2] === undefined ? undefined : gpuAt(ins, 2, ctx), post)];
  },
});

/** The ONNX op's GPU lowering at `opset`, under the internal domain (the CPU side is ops/fused.ts's adopt). */
function adopt(op: string, opset: number): GpuOpDef {
  const def = lookupGpu('', op, opset);
  if (!def) throw new Error(`no GPU lowering of ${op} at opset ${opset} to adopt`);
  return {
    op, domain: INTERNAL, cpuInputs: def.cpuInputs,
    reject: def.reject && ((d, a, ctx) => def.reject!(d, a, { ...ctx, opset })),
    run: (ins, a, ctx) => def.run(ins, a, { ...ctx, opset }),
  };
}

registerGpu(adopt('LayerNormalization', 17), adopt('Gelu', 20), adopt('HardSwish', 14));
