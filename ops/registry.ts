// The op table. An op declares its name, domain, the first opset it covers, how it reads its attributes
// (once, at session creation), optionally its output types, and how it runs on the CPU.
import { OpError, where } from '../engine/errors.js';
import type { Attr, Graph, Node, TypeInfo } from '../engine/graph.js';
import { NdArray, type Value } from '../engine/tensor.js';
import type { DType } from '../engine/dtype.js';
import { GpuArray, type GpuRunner } from '../kernels/webgpu/runner.js';

/** Runs a subgraph attribute (If/Loop/Scan bodies) with the given inputs in the node's scope. */
export type SubgraphRunner = (inputs: Value[]) => Value[];

export interface RunCtx {
  node: Node;
  opset: number;
  subgraph(attr: string): SubgraphRunner;
}

export interface InferCtx { node: Node; opset: number }

export interface OpDef<A = any> {
  op: string;
  domain?: string;
  /** Lowest opset version this definition covers (default 1). */
  since?: number;
  attrs?: (a: Attrs, opset: number) => A;
  /** Output types from input types; omitted outputs are inferred as 'same dtype as input 0, unknown shape'. */
  infer?: (ins: (TypeInfo | undefined)[], a: A, ctx: InferCtx) => (TypeInfo | undefined)[];
  run: (ins: (Value | undefined)[], a: A, ctx: RunCtx) => Value[];
}

type Versioned = { op: string; domain?: string; since?: number };
const key = (domain: string, op: string) => `${domain}:${op}`;

/** Definitions per (domain, op), newest `since` first; shared by the CPU and GPU tables. */
function add<D extends Versioned>(t: Map<string, D[]>, defs: D[]): void {
  for (const d of defs) {
    const k = key(d.domain ?? '', d.op);
    const list = t.get(k) ?? [];
    list.push(d);
    list.sort((x, y) => (y.since ?? 1) - (x.since ?? 1));
    t.set(k, list);
  }
}

/** The definition covering `opset`: the one with the highest `since` not above it. */
const find = <D extends Versioned>(t: Map<string, D[]>, domain: string, op: string, opset: number): D | undefined =>
  t.get(key(domain, op))?.find((d) => (d.since ?? 1) <= opset);

const table = new Map<string, OpDef[]>();
export const register = (...defs: OpDef[]): void => add(table, defs);
export const lookup = (domain: string, op: string, opset: number): OpDef | undefined => find(table, domain, op, opset);

export function registeredOps(): { domain: string; op: string; since: number }[] {
  return [...table.values()].flat().map((d) => ({ domain: d.domain ?? '', op: d.op, since: d.since ?? 1 }));
}

/** Typed attribute access with defaults; a missing required attribute names the node. */
export class Attrs {
  constructor(readonly node: Node) {}
  private get(name: string, types: Attr['type'][]): Attr | undefined {
    const a = this.node.attrs.get(name);
    if (a && !types.includes(a.type)) throw this.error(`attribute '${name}' should be ${types.join(' or ')}, got ${a.type}`);
    return a;
  }
  private need<T>(name: string, v: T | undefined): T {
    if (v === undefined) throw this.error(`missing required attribute '${name}'`);
    return v;
  }
  error(msg: string) { return new OpError(`${where(this.node)}: ${msg}`); }
  has(name: string) { return this.node.attrs.has(name); }
  int(name: string, def?: number): number { return this.need(name, (this.get(name, ['int'])?.value as number | undefined) ?? def); }
  float(name: string, def?: number): number { return this.need(name, (this.get(name, ['float', 'int'])?.value as number | undefined) ?? def); }
  string(name: string, def?: string): string { return this.need(name, (this.get(name, ['string'])?.value as string | undefined) ?? def); }
  ints(name: string, def?: number[]): number[] {
    const a = this.get(name, ['ints', 'int']);
    return this.need(name, a === undefined ? def : [a.value as number | number[]].flat());
  }
  floats(name: string, def?: number[]): number[] { return this.need(name, (this.get(name, ['floats'])?.value as number[] | undefined) ?? def); }
  strings(name: string, def?: string[]): string[] { return this.need(name, (this.get(name, ['strings'])?.value as string[] | undefined) ?? def); }
  tensor(name: string): NdArray | undefined { const v = this.get(name, ['tensor', 'sparse_tensor'])?.value; return v as NdArray | undefined; }
  graph(name: string): Graph | undefined { return this.get(name, ['graph'])?.value as Graph | undefined; }
  type(name: string): TypeInfo | undefined { return this.get(name, ['type_proto'])?.value as TypeInfo | undefined; }
  raw(name: string): Attr | undefined { return this.node.attrs.get(name); }
}

/** Input i as a tensor; throws an OpError naming the node and input when absent or not a tensor. */
export function tensorAt(ins: (Value | undefined)[], i: number, ctx: { node: Node }): NdArray {
  const v = ins[i];
  if (v instanceof NdArray) return v;
  throw new OpError(`${where(ctx.node)}: input ${i} ('${ctx.node.inputs[i] ?? ''}') ${v === undefined ? 'is required but missing' : 'should be a tensor'}`);
}

/** Optional input i: undefined when omitted (empty name) or absent. */
export function optTensor(ins: (Value | undefined)[], i: number, ctx: { node: Node }): NdArray | undefined {
  return ins[i] === undefined ? undefined : tensorAt(ins, i, ctx);
}

export function fail(ctx: { node: Node }, msg: string): never {
  throw new OpError(`${where(ctx.node)}: ${msg}`);
}

// ---- WebGPU lowerings ------------------------------------------------------------------------------
// A GPU lowering reuses the CPU definition's parsed attributes and turns a node into GPU programs.

export interface GpuCtx { node: Node; opset: number; gpu: GpuRunner }

export interface GpuOpDef<A = any> {
  op: string;
  domain?: string;
  since?: number;
  /** Why this node cannot run on the GPU for these input dtypes and attributes; undefined when it can. */
  reject?: (dtypes: (DType | undefined)[], a: A, ctx: { node: Node; opset: number; f16: boolean }) => string | undefined;
  /** Inputs read on the CPU (shapes, axes, pads...): given as NdArray, downloaded first if they live on the GPU. */
  cpuInputs?: readonly number[];
  run: (ins: (GpuArray | NdArray | undefined)[], a: A, ctx: GpuCtx) => GpuArray[];
}

const gpuTable = new Map<string, GpuOpDef[]>();

export const registerGpu = (...defs: GpuOpDef[]): void => add(gpuTable, defs);
export const lookupGpu = (domain: string, op: string, opset: number): GpuOpDef | undefined => find(gpuTable, domain, op, opset);

/** A GPU tensor input, or an OpError naming the node and input. */
export function gpuAt(ins: (GpuArray | NdArray | undefined)[], i: number, ctx: { node: Node }): GpuArray {
  const v = ins[i];
  if (v instanceof GpuArray) return v;
  throw new OpError(`${where(ctx.node)}: input ${i} ('${ctx.node.inputs[i] ?? ''}') ${v === undefined ? 'is required but missing' : 'should be on the GPU'}`);
}
