// Attention fusion for WebGPU plans: the chain exporters write for scaled dot-product attention,
//   product(Q, K^T) -> [Div|Mul by a constant] -> [Add(mask) | Where(cond, ., fill)] -> Softmax(last axis)
//   -> product(., V) -> [Transpose keeping the last axis]
// where each product is a MatMul (operands possibly from Transposes) or a FusedMatMul (perms read as
// strides, no bias or activation), becomes one FusedAttention step (domain ai.lastmile). The scores'
// FusedMatMul may hold the scaling as its alpha and the additive mask as its bias (graph optimisation folds
// them there: engine/passes/matmul-scale.ts, matmul-add.ts). On the GPU it
// runs one attention program that never writes the scores to memory, reading Q, K, V and writing the
// output through head strides, so the head-split and head-merge transposes cost nothing. The step keeps
// the chain it replaced: when the shapes of a run do not fit the kernel (a mask broadcast along keys,
// say) it runs the chain's own GPU lowerings, and on the CPU it runs the chain's CPU definitions, so a
// fused plan computes what the unfused one does.
import { NARROW_FLOATS, type DType } from '../../engine/dtype.js';
import type { Graph, Node, TypeInfo } from '../../engine/graph.js';
import { INTERNAL } from '../../engine/passes/view.js';
import type { Step } from '../../engine/plan.js';
import { NdArray, type Value } from '../../engine/tensor.js';
import { stridesOf } from '../../kernels/cpu/broadcast.js';
import { roundInPlace } from '../../kernels/cpu/minifloat.js';
import { attention, TILE_MAX_DIM, type AttentionSpec, type HeadLayout } from '../../kernels/webgpu/attention.js';
import { GpuArray } from '../../kernels/webgpu/runner.js';
import { lookupGpu, registerGpu, type GpuCtx, type OpDef } from '../registry.js';

/** A chain operand: the stored tensor and the permutation that gives its logical [B, H, S, D] or [N, S, D]. */
interface Operand { name: string; perm: number[] }

type Mask = { name: string; kind: 'add' } | { name: string; kind: 'where'; inverted: boolean; fill: number };

export interface AttentionChain {
  rank: number;
  q: Operand; k: Operand; v: Operand;
  scale: number;
  mask?: Mask;
  /** A trailing Transpose absorbed: the output is stored in this order of the logical dims. */
  outPerm?: number[];
  /** The replaced steps in order, and the value the last one makes. */
  steps: Step[];
  output: string;
}

/** What the matcher may know about a value: its type (ranks) and constant value (scales, fills). */
export interface FusionInfo {
  typeOf(name: string): TypeInfo | undefined;
  constantOf(name: string): NdArray | undefined;
}

/** Info from a graph: initializers and Constant steps as constants, and the `inferred` types (engine/infer.ts). */
export function graphInfo(graph: Graph, steps: readonly Step[], inferred: ReadonlyMap<string, TypeInfo>): FusionInfo {
  const constants = new Map<string, NdArray>();
  for (const [n, v] of graph.initializers) if (v instanceof NdArray) constants.set(n, v);
  for (const s of steps) {
    const v = s.node.opType === 'Constant' ? s.node.attrs.get('value')?.value : undefined;
    if (v instanceof NdArray) constants.set(s.node.outputs[0], v);
  }
  return { typeOf: (n) => inferred.get(n), constantOf: (n) => constants.get(n) };
}

const identity = (r: number) => [...Array(r).keys()];
const swapLast = (p: number[]) => [...p.slice(0, -2), p[p.length - 1], p[p.length - 2]];
const scalarOf = (info: FusionInfo, n: string) => { const c = info.constantOf(n); return c && c.size === 1 ? c.numbers()[0] : undefined; };
const intsAttr = (n: Node, name: string) => n.attrs.get(name)?.value as number[] | undefined;

/**
 * Replaces every matching chain whose intermediates have no other reader by one FusedAttention step at
 * its last step's place. Fused steps have empty `release` lists, and kept steps may name values a
 * removed step used to free last: recompute liveness after fusing.
 */
export function fuseAttention(steps: readonly Step[], graphOutputs: ReadonlySet<string>, info: FusionInfo): Step[] {
  const producer = new Map<string, Step>(), readers = new Map<string, Step[]>();
  for (const s of steps) {
    for (const o of s.node.outputs) if (o) producer.set(o, s);
    for (const n of [...s.node.inputs, ...s.implicit]) if (n) readers.set(n, [...(readers.get(n) ?? []), s]);
  }
  const sole: Sole = (name, ...ops) => {
    const s = producer.get(name);
    return s && ops.some((op) => isOp(s.node, op)) && readers.get(name)?.length === 1 && !graphOutputs.has(name) ? s : undefined;
  };
  const removed = new Set<Step>(), fused = new Map<Step, Step>();
  for (const s of steps) {
    if (!isProduct(s.node)) continue;
    const chain = matchAt(s, sole, info);
    if (!chain) continue;
    const tr = trailingTranspose(s, readers, graphOutputs);
    if (tr) { chain.steps.push(tr); chain.outPerm = intsAttr(tr.node, 'perm'); chain.output = tr.node.outputs[0]; }
    if (chain.steps.some((c) => removed.has(c)) || !chain.steps.every((c) => lookupGpu(c.node.domain, c.node.opType, c.opset))) continue;
    chain.steps.forEach((c) => removed.add(c));
    fused.set(chain.steps[chain.steps.length - 1], fusedStep(chain));
  }
  return steps.filter((s) => !removed.has(s) || fused.has(s)).map((s) => fused.get(s) ?? s);
}

type Sole = (name: string, ...ops: string[]) => Step | undefined;

const isOp = (n: Node, op: string) => (op === 'FusedMatMul' ? n.domain === INTERNAL : n.domain === '') && n.opType === op;
/** The scores' product: nothing after the sum but a scale (alpha) and a mask (the bias). */
const isScores = (n: Node) => isOp(n, 'MatMul') || (isOp(n, 'FusedMatMul') && !n.attrs.has('activation') && !n.attrs.has('post_affine'));
/** A product with nothing in its epilogue. */
const isProduct = (n: Node) => isScores(n) && !n.inputs[2] && !n.attrs.has('alpha');

/** Operand `slot` of a product: its perm attribute, or a Transpose only this product reads, or as stored. */
function operandOf(s: Step, slot: 0 | 1, sole: Sole, info: FusionInfo): { op: Operand; transpose?: Step } | undefined {
  const name = s.node.inputs[slot], own = intsAttr(s.node, slot ? 'permB' : 'permA');
  if (own) return { op: { name, perm: own } };
  const tr = sole(name, 'Transpose'), p = tr && intsAttr(tr.node, 'perm');
  if (tr && p) return { op: { name: tr.node.inputs[0], perm: p }, transpose: tr };
  const t = info.typeOf(name), rank = t?.kind === 'tensor' ? t.shape?.length : undefined;
  return rank === undefined ? undefined : { op: { name, perm: identity(rank) } };
}

function matchAt(last: Step, sole: Sole, info: FusionInfo): AttentionChain | undefined {
  if (intsAttr(last.node, 'permA')) return undefined;
  const softmax = sole(last.node.inputs[0], 'Softmax');
  const v = operandOf(last, 1, sole, info);
  if (!softmax || !v) return undefined;
  const chain: Step[] = [softmax];
  let cur = softmax.node.inputs[0], scale = 1, mask: Mask | undefined;
  const add = sole(cur, 'Add'), where = add ? undefined : sole(cur, 'Where');
  if (add) {
    // The scores side is the product, directly or through the scaling.
    const product = (n: string) => !!sole(n, 'MatMul', 'FusedMatMul');
    const scores = (n: string) => product(n) || !!sole(n, 'Div', 'Mul')?.node.inputs.some(product);
    const [a, b] = add.node.inputs;
    [cur, mask] = scores(a) ? [a, { name: b, kind: 'add' }] : [b, { name: a, kind: 'add' }];
    chain.unshift(add);
  } else if (where) {
    const [c, a, b] = where.node.inputs, fa = scalarOf(info, a), fb = scalarOf(info, b);
    if ((fa === undefined) === (fb === undefined)) return undefined;
    [cur, mask] = fb !== undefined ? [a, { name: c, kind: 'where', inverted: false, fill: fb }] : [b, { name: c, kind: 'where', inverted: true, fill: fa! }];
    chain.unshift(where);
  }
  const scaling = sole(cur, 'Div', 'Mul');
  if (scaling) {
    const isDiv = scaling.node.opType === 'Div', [a, b] = scaling.node.inputs, cb = scalarOf(info, b), ca = isDiv ? undefined : scalarOf(info, a);
    const c = cb ?? ca;
    if (c === undefined || (isDiv && c === 0)) return undefined;
    scale = isDiv ? 1 / c : c;
    cur = cb !== undefined ? a : b;
    chain.unshift(scaling);
  }
  const qk = sole(cur, 'MatMul', 'FusedMatMul');
  if (!qk || !isScores(qk.node)) return undefined;
  // The product's own epilogue is alpha * QK^T + bias: a bias before a separate scaling, or beside a mask, is no chain.
  const alpha = qk.node.attrs.get('alpha')?.value as number | undefined, bias = qk.node.inputs[2];
  if (bias && (mask || scaling)) return undefined;
  if (bias) mask = { name: bias, kind: 'add' };
  if (alpha !== undefined) scale *= alpha;
  const q = operandOf(qk, 0, sole, info), kt = operandOf(qk, 1, sole, info);
  if (!q || !kt) return undefined;
  const rank = q.op.perm.length, k = { name: kt.op.name, perm: swapLast(kt.op.perm) };
  // Each operand's head rows must be contiguous (its last logical dim the stored last dim).
  if ((rank !== 3 && rank !== 4) || [q.op, k, v.op].some((o) => o.perm.length !== rank || o.perm[rank - 1] !== rank - 1)) return undefined;
  if (!softmaxOnLast(softmax, rank)) return undefined;
  const before = [q.transpose, kt.transpose, qk].filter((s): s is Step => !!s);
  return { rank, q: q.op, k, v: v.op, scale, mask, steps: [...before, ...chain, ...(v.transpose ? [v.transpose] : []), last], output: last.node.outputs[0] };
}

/** The Transpose alone reading the chain's output, when it keeps the last (head-dim) axis in place. */
function trailingTranspose(last: Step, readers: Map<string, Step[]>, graphOutputs: ReadonlySet<string>): Step | undefined {
  const out = last.node.outputs[0], r = readers.get(out);
  if (graphOutputs.has(out) || r?.length !== 1 || !isOp(r[0].node, 'Transpose')) return undefined;
  const p = intsAttr(r[0].node, 'perm');
  return p && p[p.length - 1] === p.length - 1 ? r[0] : undefined;
}

/** Softmax over the last axis: axis -1 or rank-1 (before opset 13 the default, 1, is not the last axis). */
function softmaxOnLast(s: Step, rank: number): boolean {
  const axis = (s.node.attrs.get('axis')?.value as number | undefined) ?? (s.opset >= 13 ? -1 : 1);
  return axis === -1 || axis === rank - 1;
}

// ---- the fused step ----

/** The chain's inputs from outside it, in first-use order: the fused node's inputs. */
function externalInputs(chain: AttentionChain): string[] {
  const made = new Set(chain.steps.flatMap((s) => s.node.outputs)), seen = new Set<string>();
  for (const s of chain.steps) for (const n of s.node.inputs) if (n && !made.has(n)) seen.add(n);
  return [...seen];
}

function fusedStep(chain: AttentionChain): Step {
  const last = chain.steps[chain.steps.length - 1];
  const node: Node = { name: `${last.node.name}/fused_attention`, opType: 'FusedAttention', domain: INTERNAL, inputs: externalInputs(chain), outputs: [chain.output], attrs: new Map() };
  return { node, def: CPU_DEF, attrs: chain, opset: 1, subgraphs: new Map(), implicit: [], release: [] };
}

/** Runs the chain's steps in order over values keyed by name; `run` does one step. */
function runChain<V>(chain: AttentionChain, node: Node, ins: (V | undefined)[], run: (s: Step, args: (V | undefined)[]) => V[], drop?: (v: V) => void): V {
  const env = new Map<string, V>();
  node.inputs.forEach((n, i) => { if (ins[i] !== undefined) env.set(n, ins[i]!); });
  const made: V[] = [];
  for (const s of chain.steps) {
    const outs = run(s, s.node.inputs.map((n) => (n ? env.get(n) : undefined)));
    s.node.outputs.forEach((o, i) => { if (o) { env.set(o, outs[i]); made.push(outs[i]); } });
  }
  const y = env.get(chain.output)!;
  if (drop) for (const v of made) if (v !== y) drop(v);
  return y;
}

const roundNarrow = (v: Value) => { if (v instanceof NdArray && NARROW_FLOATS.has(v.dtype)) roundInPlace(v.dtype, v.data as Float32Array); return v; };

/** The CPU definition: the replaced steps themselves, so a fallback computes exactly what they did. */
const CPU_DEF: OpDef<AttentionChain> = {
  op: 'FusedAttention', domain: INTERNAL,
  infer: (ins, chain, ctx) => [runChain<TypeInfo>(chain, ctx.node, ins, (s, args) =>
    (s.def.infer?.(args, s.attrs, { node: s.node, opset: s.opset }) ?? [args[0]]) as TypeInfo[])],
  run: (ins, chain, ctx) => [runChain<Value>(chain, ctx.node, ins, (s, args) =>
    s.def.run(args, s.attrs, { ...ctx, node: s.node, opset: s.opset }).map(roundNarrow))],
};

// ---- the GPU lowering ----

const FLOATS = new Set<DType | undefined>([undefined, 'float32', 'float16']);

registerGpu({
  op: 'FusedAttention', domain: INTERNAL,
  reject: (d, chain: AttentionChain, ctx) => {
    const at = (name: string) => d[ctx.node.inputs.indexOf(name)];
    const bad = [chain.q, chain.k, chain.v].map((o) => at(o.name)).find((x) => !FLOATS.has(x));
    return bad ? `dtype ${bad} not supported by the GPU attention kernel (float32, float16)` : undefined;
  },
  run: (ins, chain: AttentionChain, ctx) => {
    const get = (name: string) => ins[ctx.node.inputs.indexOf(name)];
    const spec = kernelSpec(chain, get, ctx);
    if (!spec) return [runChain<GpuArray>(chain, ctx.node, ins as (GpuArray | undefined)[], (s, args) => chainStepOnGpu(s, args, ctx), (v) => ctx.gpu.release(v))];
    const [y, ...rest] = ctx.gpu.run(attention(spec));
    for (const r of rest) ctx.gpu.release(r); // the row variant's scratch accumulator
    return [y];
  },
});

function chainStepOnGpu(s: Step, args: (GpuArray | undefined)[], ctx: GpuCtx): GpuArray[] {
  const def = lookupGpu(s.node.domain, s.node.opType, s.opset)!;
  // An op that hands an input back shares its buffer: take a reference of our own, as the executor does.
  return def.run(args, s.attrs, { node: s.node, opset: s.opset, gpu: ctx.gpu }).map((o) => (args.includes(o) ? o.view() : o));
}

/** Logical shape and element strides of a stored tensor read through `perm`. */
function logical(x: GpuArray, perm: number[]) {
  const st = stridesOf(x.shape);
  return { shape: perm.map((p) => x.shape[p]), strides: perm.map((p) => st[p]) };
}

/** Batch, heads, rows and dim of a 3-D [N, S, D] (one head) or 4-D [B, H, S, D] logical view, with its
 *  row layout; a dim of 1 broadcasts (stride 0). */
function heads(l: { shape: number[]; strides: number[] }, rank: number) {
  const [b, h, s, d] = rank === 4 ? l.shape : [l.shape[0], 1, l.shape[1], l.shape[2]];
  const [bs, hs, ss] = rank === 4 ? l.strides : [l.strides[0], 0, l.strides[1]];
  return { b, h, s, d, layout: { bs: b === 1 ? 0 : bs, hs: h === 1 ? 0 : hs, ss } as HeadLayout };
}

const bcast = (x: number, y: number) => (x === y || y === 1 ? x : x === 1 ? y : undefined);

/** The attention program's spec for this run's shapes, or undefined when they do not fit the kernel. */
function kernelSpec(chain: AttentionChain, get: (name: string) => GpuArray | NdArray | undefined, ctx: GpuCtx): AttentionSpec | undefined {
  const [q, k, v] = [chain.q, chain.k, chain.v].map((o) => get(o.name));
  if (!(q instanceof GpuArray) || !(k instanceof GpuArray) || !(v instanceof GpuArray)) return undefined;
  if (k.dtype !== q.dtype || v.dtype !== q.dtype || [q, k, v].some((t, i) => t.shape.length !== chain.rank || (i === 0 && !FLOATS.has(t.dtype)))) return undefined;
  const r = chain.rank, Q = heads(logical(q, chain.q.perm), r), K = heads(logical(k, chain.k.perm), r), V = heads(logical(v, chain.v.perm), r);
  const B = bcast(bcast(Q.b, K.b) ?? -1, V.b), H = bcast(bcast(Q.h, K.h) ?? -1, V.h);
  if (B === undefined || B < 0 || H === undefined || H < 0 || Q.d !== K.d || K.s !== V.s) return undefined;
  const S = Q.s, T = K.s, Dv = V.d;
  const yLogical = r === 4 ? [B, H, S, Dv] : [B, S, Dv], perm = chain.outPerm ?? identity(r);
  const yShape = perm.map((p) => yLogical[p]), ys = stridesOf(yShape), inv = perm.map((_, i) => perm.indexOf(i));
  const yStr = inv.map((j) => ys[j]);
  const yl: HeadLayout = r === 4 ? { bs: yStr[0], hs: yStr[1], ss: yStr[2] } : { bs: yStr[0], hs: 0, ss: yStr[1] };
  const mask = chain.mask && maskOf(chain.mask, get(chain.mask.name), r === 4 ? [B, H, S, T] : [B, S, T], q.dtype);
  if (chain.mask && !mask) return undefined;
  const round: AttentionSpec['round'] = q.dtype === 'float16' ? 'f16' : 'none';
  return {
    batch: B, qHeads: H, kvHeads: H, qLen: S, kvLen: T, headDim: Q.d, vDim: Dv,
    q, ql: Q.layout, k, kl: K.layout, v, vl: V.layout, yShape, yl,
    scale: chain.scale, softcap: 0, causal: false, left: -1, right: -1, mask, round, exactProbs: false,
    // Workgroup tiles need a parallel GPU; software adapters run one query row per invocation.
    variant: !ctx.gpu.ctx.software && Dv <= TILE_MAX_DIM ? 'tile' : 'row',
  };
}

/** The mask over the scores' [b, h, i] rows (keys contiguous), or undefined when it does not fit: it must
 *  span every key and may not grow the scores' shape. */
function maskOf(m: Mask, t: GpuArray | NdArray | undefined, scores: number[], dtype: DType): AttentionSpec['mask'] | undefined {
  if (!(t instanceof GpuArray) || t.shape.length > scores.length) return undefined;
  if (m.kind === 'add' ? t.dtype !== dtype : t.dtype !== 'bool') return undefined;
  const lead = scores.length - t.shape.length, full = [...new Array<number>(lead).fill(1), ...t.shape], T = scores[scores.length - 1];
  if (full[full.length - 1] !== T || full.some((d, i) => d !== 1 && d !== scores[i])) return undefined;
  const st = stridesOf(full).map((s, i) => (full[i] === 1 ? 0 : s));
  const strides: [number, number, number] = scores.length === 4 ? [st[0], st[1], st[2]] : [st[0], 0, st[1]];
  if (m.kind === 'add') return { a: t, width: T, strides };
  return { a: t, width: T, strides, inverted: m.inverted, fill: m.fill === -Infinity ? undefined : m.fill };
}
