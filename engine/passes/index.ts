// Graph optimisation, run by compile() on each graph (subgraphs included) before scheduling. Levels
// follow onnxruntime's:
//   'disabled'          the graph as loaded
//   'basic'             rewrites into standard ONNX ops only: dead-code and redundant-node removal,
//                       constant folding, shape folding, Conv + BatchNorm/affine folding, MatMul + Add
//                       to Gemm, transposes merged or absorbed into Gemm
//   'extended' / 'all'  also fusions into the internal ops of ops/fused.ts: LayerNorm, Gelu, HardSigmoid
//                       and HardSwish recognition, transposes read by MatMul through strides, bias/residual
//                       adds and activations done in place by the Conv/Gemm/MatMul that precedes them, and
//                       scalar scales and post-activation affines folded into the product's epilogue
// No pass changes results beyond float rounding, and none rewrites a graph output or a value a
// subgraph reads except to keep producing it under its name.
import type { Graph } from '../graph.js';
import type { CompileEnv } from '../plan.js';
import { foldConstants } from './constant-folding.js';
import { foldConvAffine } from './conv-bn.js';
import { removeDeadCode } from './dead-code.js';
import { fuseActivation, fuseConvResidual } from './fuse-epilogue.js';
import { recogniseGelu } from './gelu.js';
import { recogniseHardActivations } from './hard-activations.js';
import { recogniseLayerNorm } from './layernorm.js';
import { fuseMatMulAdd, matmulAddToGemm } from './matmul-add.js';
import { foldMatMulScale } from './matmul-scale.js';
import { foldPostAffine } from './post-affine.js';
import { removeRedundant } from './redundant.js';
import { foldShapes } from './shape-folding.js';
import { absorbIntoGemm, absorbTransposes, mergeTransposes } from './transpose.js';
import { INTERNAL, toposort, View } from './view.js';

export type OptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';
type Pass = (v: View) => boolean;

const BASIC: Pass[] = [removeDeadCode, removeRedundant, mergeTransposes, foldConstants, foldShapes, foldConvAffine, matmulAddToGemm, absorbIntoGemm];
// foldMatMulScale and fuseMatMulAdd come before foldPostAffine: a bare product's scalar Mul or Add is
// cheaper as alpha or bias (in the GEMM) than as an affine (a pass over the output).
const FUSIONS: Pass[] = [
  recogniseLayerNorm, recogniseGelu, recogniseHardActivations, absorbTransposes, fuseMatMulAdd, foldMatMulScale, fuseConvResidual,
  fuseActivation, foldPostAffine,
];
/** Sweeps of a pass list at most: each folds or fuses one more link of a chain that the order missed. */
const MAX_SWEEPS = 8;

/**
 * The optimised graph and the environment to compile it in (which imports the internal domain when
 * fused ops may appear). `nested` marks a subgraph, whose declared input shapes are not trusted.
 */
export function optimize(graph: Graph, env: CompileEnv, level: OptimizationLevel, nested = false): { graph: Graph; env: CompileEnv } {
  if (level === 'disabled') return { graph, env };
  const order = toposort(graph);
  if (!order) return { graph, env }; // a cycle or an unknown input: compile reports it
  const v = new View({ ...graph, nodes: order }, env, nested);
  sweep(v, BASIC);
  if (level === 'basic') return { graph: { ...graph, nodes: v.nodes }, env };
  sweep(v, FUSIONS);
  removeDeadCode(v);
  const opsets = env.opsets.has(INTERNAL) ? env.opsets : new Map([...env.opsets, [INTERNAL, 1]]);
  return { graph: { ...graph, nodes: v.nodes }, env: { ...env, opsets } };
}

function sweep(v: View, passes: Pass[]): void {
  for (let i = 0; i < MAX_SWEEPS; i++) {
    let changed = false;
    for (const p of passes) changed = p(v) || changed;
    if (!changed) return;
  }
}
