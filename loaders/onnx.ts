// ONNX ModelProto bytes -> engine Model. Any decoding failure becomes a ModelLoadError that says what
// was being read; nothing here trusts a length or a count that the bytes do not back.
import { dtypeFromOnnx } from '../engine/dtype.js';
import { ModelLoadError } from '../engine/errors.js';
import { funcKey, normDomain, type Attr, type Dim, type FunctionDef, type Graph, type Model, type Node, type TypeInfo, type ValueInfo } from '../engine/graph.js';
import type { Value } from '../engine/tensor.js';
import { MAX_NESTING, Msg } from './onnx-schema.js';
import { decodeSparse, decodeTensor, num, utf8, type LoadContext } from './tensor-proto.js';

type Any = any; // decoded protobuf messages

export const MIN_IR = 3, MAX_IR = 13;

export interface LoadOptions { baseDir?: string; what?: string }

export function loadModel(bytes: Uint8Array, opts: LoadOptions = {}): Model {
  const what = opts.what ?? 'model';
  if (bytes.length === 0) throw new ModelLoadError(`${what}: empty file`);
  let m: Any;
  try {
    m = Msg.Model.decode(bytes);
  } catch (e) {
    throw new ModelLoadError(`${what}: not a valid ONNX model: protobuf decoding failed (${describe(e)}); the file is truncated, corrupt or not ONNX`);
  }
  const ir = num(m.ir_version);
  if (!m.graph) throw new ModelLoadError(`${what}: not an ONNX model: no graph (ir_version ${ir})`);
  if (ir < MIN_IR || ir > MAX_IR) throw new ModelLoadError(`${what}: ONNX IR version ${ir} is not supported (supported: ${MIN_IR} to ${MAX_IR})`);
  const ctx: LoadContext = { baseDir: opts.baseDir, what };
  try {
    const opsets = readOpsets(m.opset_import);
    if (!opsets.has('')) opsets.set('', 1);
    const functions = new Map<string, FunctionDef>();
    for (const f of m.functions as Any[]) {
      const fd = readFunction(f, ctx);
      functions.set(funcKey(fd.domain, fd.name), fd);
      // Inlined bodies run under the model's imports: add the domains only a function imports.
      for (const [d, v] of fd.opsets) if (!opsets.has(d)) opsets.set(d, v);
    }
    return {
      irVersion: ir,
      producer: [m.producer_name, m.producer_version].filter(Boolean).join(' '),
      opsets,
      graph: readGraph(m.graph, ctx, 'graph'),
      functions,
      metadata: new Map((m.metadata_props as Any[]).map((p) => [p.key, p.value])),
    };
  } catch (e) {
    if (e instanceof ModelLoadError) throw e;
    throw new ModelLoadError(`${what}: malformed model (${describe(e)})`);
  }
}

// protobufjs refuses messages nested deeper than MAX_NESTING, which also bounds how deep subgraphs
// (3 messages per level: Graph > Node > Attribute > Graph) can recurse in every later stage.
const describe = (e: unknown) => ((e as Error)?.message === 'max depth exceeded' ? `messages nest deeper than ${MAX_NESTING} levels` : (e as Error)?.message ?? String(e));

function readOpsets(list: Any[]): Map<string, number> {
  return new Map(list.map((o) => [normDomain(o.domain), num(o.version)]));
}

export function readGraph(g: Any, ctx: LoadContext, path: string): Graph {
  const initializers = new Map<string, Value>(), here = { ...ctx, what: `${ctx.what}: ${path}` };
  for (const t of g.initializer as Any[]) initializers.set(t.name, decodeTensor(t, here));
  for (const s of g.sparse_initializer as Any[]) {
    if (!s.values?.name) throw new ModelLoadError(`${here.what}: sparse initializer without a name (its values tensor must be named)`);
    initializers.set(s.values.name, decodeSparse(s, here));
  }
  const nodes = (g.node as Any[]).map((n, i) => readNode(n, i, ctx, path));
  const valueInfo = new Map<string, TypeInfo>();
  for (const v of g.value_info as Any[]) { const t = readType(v.type); if (t) valueInfo.set(v.name, t); }
  return {
    name: g.name || path,
    nodes,
    inputs: (g.input as Any[]).map(readValueInfo),
    outputs: (g.output as Any[]).map(readValueInfo),
    initializers,
    valueInfo,
  };
}

function readNode(n: Any, i: number, ctx: LoadContext, path: string): Node {
  const opType = n.op_type as string;
  if (!opType) throw new ModelLoadError(`${ctx.what}: ${path}: node ${i} has no op_type`);
  const name = n.name || `${opType}_${i}`;
  const attrs = new Map<string, Attr>();
  for (const a of n.attribute as Any[]) attrs.set(a.name, readAttr(a, ctx, `${path}/${name}`));
  return { name, opType, domain: normDomain(n.domain), inputs: [...n.input], outputs: [...n.output], attrs };
}

// SPARSE_TENSORS (12) is read as 'tensors': sparse values are densified on load.
const ATTR_TYPES: Record<number, Attr['type']> = {
  1: 'float', 2: 'int', 3: 'string', 4: 'tensor', 5: 'graph', 6: 'floats', 7: 'ints', 8: 'strings',
  9: 'tensors', 10: 'graphs', 11: 'sparse_tensor', 12: 'tensors', 13: 'type_proto', 14: 'type_protos',
};

function readAttr(a: Any, ctx: LoadContext, path: string): Attr {
  const set = (f: string) => Object.prototype.hasOwnProperty.call(a, f) && a[f] != null;
  // IR < 3 writers may omit the type: infer it from the field present.
  let type = ATTR_TYPES[a.type ?? 0];
  if (!type) {
    type = set('f') ? 'float' : set('i') ? 'int' : set('s') ? 'string' : set('t') ? 'tensor' : set('g') ? 'graph'
      : a.floats.length ? 'floats' : a.ints.length ? 'ints' : a.strings.length ? 'strings' : a.tensors.length ? 'tensors'
      : a.graphs.length ? 'graphs' : 'undefined';
  }
  const here = { ...ctx, what: `${ctx.what}: ${path} attribute '${a.name}'` };
  const need = (f: string) => (set(f) ? a[f] : fail(`${here.what} of type ${type} has no value`));
  const sub = (g: Any, k: number | string) => readGraph(g, ctx, `${path}.${a.name}${k === '' ? '' : '[' + k + ']'}`);
  const value = (() => {
    switch (type) {
      case 'float': return a.f ?? 0;
      case 'int': return num(a.i);
      case 'string': return utf8(a.s ?? '');
      case 'tensor': return decodeTensor(need('t'), here);
      case 'graph': return sub(need('g'), '');
      case 'floats': return [...a.floats];
      case 'ints': return (a.ints as Any[]).map(num);
      case 'strings': return (a.strings as Uint8Array[]).map(utf8);
      case 'tensors': return [...(a.tensors as Any[]).map((t) => decodeTensor(t, here)), ...(a.sparse_tensors as Any[]).map((t) => decodeSparse(t, here))];
      case 'graphs': return (a.graphs as Any[]).map(sub);
      case 'sparse_tensor': return decodeSparse(need('sparse_tensor'), here);
      case 'type_proto': return readType(a.tp) ?? { kind: 'tensor' as const };
      case 'type_protos': return (a.type_protos as Any[]).map((t) => readType(t) ?? { kind: 'tensor' as const });
      default: return 0;
    }
  })();
  return { name: a.name, type, value, ref: a.ref_attr_name || undefined };
}

const fail = (msg: string): never => { throw new ModelLoadError(msg); };

function readValueInfo(v: Any): ValueInfo {
  return { name: v.name, type: readType(v.type) };
}

export function readType(t: Any): TypeInfo | undefined {
  if (!t) return undefined;
  if (t.tensor_type) return { kind: 'tensor', dtype: dtypeFromOnnx(t.tensor_type.elem_type ?? 0), shape: readShape(t.tensor_type.shape) };
  if (t.sparse_tensor_type) return { kind: 'sparse', dtype: dtypeFromOnnx(t.sparse_tensor_type.elem_type ?? 0), shape: readShape(t.sparse_tensor_type.shape) };
  if (t.sequence_type) return { kind: 'sequence', elem: readType(t.sequence_type.elem_type) };
  if (t.optional_type) return { kind: 'optional', elem: readType(t.optional_type.elem_type) };
  if (t.map_type) return { kind: 'map', key: dtypeFromOnnx(t.map_type.key_type ?? 0), value: readType(t.map_type.value_type) };
  return undefined;
}

function readShape(s: Any): Dim[] | undefined {
  if (!s) return undefined;
  // A negative dim_value (some exporters write -1) means unknown, like an absent one.
  return (s.dim as Any[]).map((d): Dim => {
    if (d.dim_param) return d.dim_param;
    const v = Object.prototype.hasOwnProperty.call(d, 'dim_value') && d.dim_value != null ? num(d.dim_value) : -1;
    return v >= 0 ? v : null;
  });
}

function readFunction(f: Any, ctx: LoadContext): FunctionDef {
  if (!f.name) throw new ModelLoadError(`${ctx.what}: a model-local function has no name`);
  const path = `function ${f.domain ? f.domain + '.' : ''}${f.name}`;
  const attrDefaults = new Map<string, Attr>();
  for (const a of f.attribute_proto as Any[]) attrDefaults.set(a.name, readAttr(a, ctx, path));
  return {
    name: f.name,
    domain: normDomain(f.domain),
    inputs: [...f.input],
    outputs: [...f.output],
    attrNames: [...f.attribute, ...attrDefaults.keys()],
    attrDefaults,
    nodes: (f.node as Any[]).map((n, i) => readNode(n, i, ctx, path)),
    opsets: readOpsets(f.opset_import),
  };
}
