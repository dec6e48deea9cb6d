// Graph IR: what a loader produces and every later stage reads. Plain data, no behaviour.
import type { DType } from './dtype.js';
import type { NdArray, Value } from './tensor.js';

/** A dimension: a known size, a symbolic name (e.g. 'batch'), or null when nothing is known. */
export type Dim = number | string | null;

export type TypeInfo =
  | { kind: 'tensor'; dtype?: DType; shape?: Dim[] }
  | { kind: 'sequence'; elem?: TypeInfo }
  | { kind: 'optional'; elem?: TypeInfo }
  | { kind: 'map'; key?: DType; value?: TypeInfo }
  | { kind: 'sparse'; dtype?: DType; shape?: Dim[] };

export interface ValueInfo { name: string; type?: TypeInfo }

export type AttrValue =
  | number | string | number[] | string[] | NdArray | NdArray[] | Graph | Graph[] | TypeInfo | TypeInfo[];

export interface Attr {
  name: string;
  type: 'float' | 'int' | 'string' | 'tensor' | 'graph' | 'floats' | 'ints' | 'strings' | 'tensors' | 'graphs'
    | 'sparse_tensor' | 'type_proto' | 'type_protos' | 'undefined';
  value: AttrValue;
  /** Inside a function body: the function attribute this one takes its value from. */
  ref?: string;
}

export interface Node {
  name: string;
  opType: string;
  domain: string;
  /** '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attrs: Map<string, Attr>;
}

export interface Graph {
  name: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Map<string, Value>;
  valueInfo: Map<string, TypeInfo>;
}

export interface FunctionDef {
  name: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrNames: string[];
  attrDefaults: Map<string, Attr>;
  nodes: Node[];
  opsets: Map<string, number>;
}

export interface Model {
  irVersion: number;
  producer: string;
  opsets: Map<string, number>;
  graph: Graph;
  functions: Map<string, FunctionDef>;
  metadata: Map<string, string>;
}

export const funcKey = (domain: string, name: string) => `${domain}::${name}`;
/** ONNX spells the default domain as '' or 'ai.onnx'. */
export const normDomain = (d: string | undefined | null) => (!d || d === 'ai.onnx' ? '' : d);
