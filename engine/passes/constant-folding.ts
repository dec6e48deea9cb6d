// Constant folding: a node whose inputs are all constants runs once, now, through its own CPU op
// definition and the executor, and becomes Constant nodes holding its outputs under the same names.
// Random ops, nodes with subgraphs and nodes that would make large tensors are left to run time.
// Inside a subgraph (If/Loop/Scan body), a node may also fold on constants of the enclosing graphs
// (CompileEnv.outerConstants): their values are the same on every run of the body, whereas the body's
// own inputs (loop-carried values, the iteration number) and anything fed are not.
import type { Node } from '../graph.js';
import { execute } from '../execute.js';
import type { Plan } from '../plan.js';
import { NdArray, sizeOf, type Value } from '../tensor.js';
import { constantNode, staticSize, subgraphsOf, type View } from './view.js';

/** A folded tensor may have at most this many elements, unless no input of its node is smaller. */
const MAX_FOLDED = 1 << 20;
const RANDOM = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Bernoulli', 'Multinomial', 'Dropout']);
// Ops whose output can dwarf their inputs: folded only when the output size is known beforehand.
const GROWING = new Set(['ConstantOfShape', 'Expand', 'Tile', 'Range', 'OneHot', 'Resize', 'Upsample', 'Pad', 'EyeLike', 'Col2Im',
  'CenterCropPad', 'HannWindow', 'HammingWindow', 'BlackmanWindow', 'MelWeightMatrix', 'DFT', 'STFT']);
// Products: folded only when the product of their two operands' sizes (an upper bound on the work) is modest.
const HEAVY = new Set(['MatMul', 'Gemm', 'Conv', 'ConvTranspose', 'Einsum', 'MatMulInteger', 'ConvInteger', 'QLinearMatMul', 'QLinearConv']);
const MAX_WORK = 2 ** 32;

export function foldConstants(v: View): boolean {
  // Values folded in this sweep: nodes are in dependency order, so whole chains fold in one sweep.
  const folded = new Map<string, NdArray>();
  const constant = (n: string) => (n ? folded.get(n) ?? v.constant(n) ?? outerConstant(v, n) : undefined);
  for (const node of v.nodes) {
    if (!candidate(v, node)) continue;
    const ins = node.inputs.map(constant);
    if (node.inputs.some((n, i) => n && !ins[i])) continue;
    const outs = evaluate(v, node, ins);
    if (!outs) continue;
    const news: Node[] = [];
    node.outputs.forEach((name, k) => { if (name) { folded.set(name, outs[k]); news.push(constantNode(name, outs[k])); } });
    v.replace([node], news);
  }
  return v.commit();
}

/** An enclosing graph's constant, unless this graph defines the name itself (which then shadows it). */
function outerConstant(v: View, name: string): NdArray | undefined {
  const c = v.env.outerConstants?.get(name);
  return c && !v.producer.has(name) && !v.fed.has(name) && !v.graph.initializers.has(name) ? c : undefined;
}

function candidate(v: View, node: Node): boolean {
  if (node.opType === 'Constant' || (node.domain === '' && RANDOM.has(node.opType)) || subgraphsOf(node).length) return false;
  if (node.outputs.some((o) => o && v.pinned.has(o))) return false;
  return node.outputs.some((o) => o && v.consumers.has(o)) && v.resolve(node) !== undefined;
}

/** Runs the node as a one-step plan; undefined when it fails, makes a non-tensor or breaks the size rules. */
export function evaluate(v: View, node: Node, ins: (NdArray | undefined)[]): NdArray[] | undefined {
  const biggest = Math.max(0, ...ins.map((t) => t?.size ?? 0)), limit = Math.max(MAX_FOLDED, biggest);
  const known = node.outputs.map((o) => (o ? staticSize(v.shape(o)) : 0));
  if (known.some((s) => s !== undefined && s > limit)) return undefined;
  if (GROWING.has(node.opType) && known.some((s) => s === undefined) && !((growth(node.opType, ins) ?? Infinity) <= limit)) return undefined;
  if (HEAVY.has(node.opType) && (ins[0]?.size ?? 0) * (ins[1]?.size ?? 0) > MAX_WORK) return undefined;
  const r = v.resolve(node)!, outputs = node.outputs.filter(Boolean), constants = new Map<string, Value>();
  node.inputs.forEach((n, i) => { if (n) constants.set(n, ins[i]!); });
  const plan: Plan = {
    graph: { name: node.name, nodes: [node], inputs: [], outputs: outputs.map((name) => ({ name })), initializers: constants, valueInfo: new Map() },
    steps: [{ node, def: r.def, attrs: r.attrs, opset: r.opset, subgraphs: new Map(), implicit: [], release: [] }],
    inputs: [], outputs, constants, free: new Set(),
  };
  let vals: Value[];
  try { vals = execute(plan, new Map()); } catch { return undefined; } // the error belongs to run time
  if (!vals.every((t) => t instanceof NdArray && t.size <= limit)) return undefined;
  let k = 0;
  return node.outputs.map((o) => (o ? (vals[k++] as NdArray) : (undefined as unknown as NdArray)));
}

/** Output size of a growing op from its constant inputs, where that is simple to tell. */
function growth(op: string, ins: (NdArray | undefined)[]): number | undefined {
  const nums = (i: number) => ins[i]?.numbers();
  const x = ins[0];
  switch (op) {
    case 'ConstantOfShape': return nums(0)?.reduce((a, b) => a * Math.max(b, 0), 1);
    case 'Expand': { const s = nums(1); return x && s ? sizeOf(broadcastLoose(x.shape, s)) : undefined; }
    case 'Tile': { const r = nums(1); return x && r ? x.shape.reduce((a, d, i) => a * d * Math.max(r[i] ?? 1, 0), 1) : undefined; }
    case 'Range': {
      const [s, l, d] = [0, 1, 2].map((i) => Number(ins[i]?.data[0]));
      return d ? Math.max(0, Math.ceil((l - s) / d)) : undefined;
    }
    default: return undefined;
  }
}

/** Broadcast shape by the largest dim on each axis (an upper bound; validity is the op's business). */
function broadcastLoose(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  return Array.from({ length: r }, (_, i) => Math.max(a[a.length - r + i] ?? 1, b[b.length - r + i] ?? 1, 0));
}
