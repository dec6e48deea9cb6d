// A small ONNX model builder: tests, benchmarks and the embedded default model make their models with it.
//   const g = new GraphBuilder();
//   const x = g.input('x', 'float32', ['batch', 4]);
//   g.output(g.node('Relu', [x]), 'float32');
//   const bytes = g.model({ opset: 17 });
import { onnxCode, type DType } from '../engine/dtype.js';
import type { Dim } from '../engine/graph.js';
import { NdArray, toTensor } from '../engine/tensor.js';
import { Msg } from './onnx-schema.js';

type Any = any;

/** Wrappers that force an attribute's ONNX type where a JS number is ambiguous. */
export const float = (v: number) => ({ __float: v });
export const floats = (v: number[]) => ({ __floats: v });
export type AttrInput =
  | number | string | readonly number[] | readonly string[] | NdArray | GraphBuilder | readonly GraphBuilder[]
  | { __float: number } | { __floats: readonly number[] }
  | undefined; // omitted: lets callers spread optional attributes

export interface TypeSpec { dtype: DType; shape?: Dim[] }

let uid = 0;

export class GraphBuilder {
  readonly nodes: Any[] = [];
  readonly inputs: Any[] = [];
  readonly outputs: Any[] = [];
  readonly initializers: Any[] = [];
  constructor(readonly name = 'graph') {}

  input(name: string, dtype: DType | null, shape?: Dim[]): string {
    this.inputs.push(valueInfo(name, dtype, shape));
    return name;
  }
  output(name: string, dtype: DType | null, shape?: Dim[]): string {
    this.outputs.push(valueInfo(name, dtype, shape));
    return name;
  }
  /** Adds an initializer; accepts an NdArray or a dtype, shape and flat values. */
  init(name: string, t: NdArray): string;
  init(name: string, dtype: DType, shape: number[], values: ArrayLike<number | bigint>): string;
  init(name: string, t: NdArray | DType, shape?: number[], values?: ArrayLike<number | bigint>): string {
    const arr = t instanceof NdArray ? t : new NdArray(t, shape!, Array.from(values!) as never);
    this.initializers.push(tensorProto(arr, name));
    return name;
  }
  /** Adds a node; returns its output names (`outputs` count or names). */
  node(op: string, inputs: string[], attrs: Readonly<Record<string, AttrInput>> = {}, outputs: number | string[] = 1, domain = ''): string[] & { 0: string } {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, i) => `${op.toLowerCase()}_${uid++}${i ? '_' + i : ''}`) : outputs;
    this.nodes.push({
      op_type: op, domain, name: `${op}_${this.nodes.length}`, input: inputs, output: outs,
      attribute: Object.entries(attrs).filter(([, v]) => v !== undefined).map(([k, v]) => attribute(k, v!)),
    });
    return outs as string[] & { 0: string };
  }
  toProto(): Any {
    return { name: this.name, node: this.nodes, input: this.inputs, output: this.outputs, initializer: this.initializers };
  }
  /** Encodes a ModelProto. `opset` is the default-domain version; `opsets` adds other domains. */
  model(opts: { opset?: number; irVersion?: number; opsets?: Record<string, number>; functions?: Any[] } = {}): Uint8Array {
    const opset_import = [{ domain: '', version: opts.opset ?? 17 }, ...Object.entries(opts.opsets ?? {}).map(([domain, version]) => ({ domain, version }))];
    const msg = Msg.Model.fromObject({ ir_version: opts.irVersion ?? 8, producer_name: 'lastmile-builder', opset_import, graph: this.toProto(), functions: opts.functions ?? [] });
    return Msg.Model.encode(msg).finish();
  }
}

function valueInfo(name: string, dtype: DType | null, shape?: Dim[]): Any {
  if (dtype === null) return { name };
  const dims = shape?.map((d) => (typeof d === 'string' ? { dim_param: d } : d === null ? {} : { dim_value: d }));
  return { name, type: { tensor_type: { elem_type: onnxCode(dtype), ...(dims ? { shape: { dim: dims } } : {}) } } };
}

export function tensorProto(a: NdArray, name = ''): Any {
  const base = { name, dims: [...a.shape], data_type: onnxCode(a.dtype) };
  if (a.dtype === 'string') return { ...base, string_data: (a.data as string[]).map((s) => new TextEncoder().encode(s)) };
  return { ...base, raw_data: rawBytes(a) };
}

/** ONNX raw_data is the public tensor form's bytes: float16 and float8 bit patterns, sub-byte types packed. */
function rawBytes(a: NdArray): Uint8Array {
  const d = toTensor(a).data as ArrayBufferView;
  return new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
}

function attribute(name: string, v: Exclude<AttrInput, undefined>): Any {
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: 2, i: v } : { name, type: 1, f: v };
  if (typeof v === 'string') return { name, type: 3, s: new TextEncoder().encode(v) };
  if (v instanceof NdArray) return { name, type: 4, t: tensorProto(v) };
  if (v instanceof GraphBuilder) return { name, type: 5, g: v.toProto() };
  if (Array.isArray(v)) {
    if (v.length && v[0] instanceof GraphBuilder) return { name, type: 10, graphs: (v as GraphBuilder[]).map((g) => g.toProto()) };
    if (v.length && typeof v[0] === 'string') return { name, type: 8, strings: (v as string[]).map((s) => new TextEncoder().encode(s)) };
    const nums = v as number[];
    return nums.every(Number.isInteger) ? { name, type: 7, ints: nums } : { name, type: 6, floats: nums };
  }
  if ('__float' in v) return { name, type: 1, f: v.__float };
  return { name, type: 6, floats: (v as { __floats: readonly number[] }).__floats };
}

/** Convenience: a float32 NdArray from a shape and values. */
export const f32 = (shape: number[], values: ArrayLike<number>) => new NdArray('float32', shape, Float32Array.from(values));
export const i64 = (shape: number[], values: ArrayLike<number>) => new NdArray('int64', shape, BigInt64Array.from(Array.from(values), BigInt));
