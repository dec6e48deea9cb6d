// InferenceSession: the onnxruntime-web compatible entry point.
import { InputError, LastmileError, UnsupportedOpError } from './errors.js';
import { execute, type ExecHooks } from './execute.js';
import type { Dim, Model, TypeInfo, ValueInfo } from './graph.js';
import { compile, type Plan } from './plan.js';
import { NdArray, Opt, Seq, Tensor, toNdArray, toTensor, type Value } from './tensor.js';
import { inferTypes } from './infer.js';
import { loadModel } from '../loaders/onnx.js';
import type { DType } from './dtype.js';
import '../ops/index.js';

export interface SessionOptions {
  executionProviders?: (string | { name: string })[];
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Fixes symbolic dims at creation, as onnxruntime's freeDimensionOverrides. */
  freeDimensionOverrides?: Record<string, number>;
  intraOpNumThreads?: number;
  logSeverityLevel?: number;
}

export interface ValueMetadata {
  name: string;
  isTensor: boolean;
  type?: DType;
  shape?: (number | string | null)[];
  typeInfo?: TypeInfo;
}

export type OutputValue = Tensor | Tensor[] | null;
type FeedValue = Tensor | Tensor[] | null;

const BACKENDS = ['cpu'] as const;

export class InferenceSession {
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputMetadata: ValueMetadata[];
  readonly outputMetadata: ValueMetadata[];
  readonly backend: string;
  private released = false;

  private constructor(readonly model: Model, private readonly plan: Plan, backend: string, private readonly options: SessionOptions) {
    const inits = model.graph.initializers;
    const inputs = model.graph.inputs.filter((i) => !inits.has(i.name));
    const types = inferTypes(model, plan, options.freeDimensionOverrides);
    this.inputNames = inputs.map((i) => i.name);
    this.outputNames = model.graph.outputs.map((o) => o.name);
    this.inputMetadata = inputs.map((i) => metadata(i, i.type));
    this.outputMetadata = model.graph.outputs.map((o) => metadata(o, o.type?.kind === 'tensor' && o.type.shape ? o.type : types.get(o.name) ?? o.type));
    this.backend = backend;
  }

  static async create(model: string | Uint8Array | ArrayBuffer, options: SessionOptions = {}): Promise<InferenceSession> {
    let bytes: Uint8Array, baseDir: string | undefined, what = 'model';
    if (typeof model === 'string') {
      const [{ readFile }, { dirname }] = await Promise.all([import('node:fs/promises'), import('node:path')]);
      try { bytes = await readFile(model); } catch (e) { throw new InputError(`cannot read model file '${model}': ${(e as Error).message}`); }
      baseDir = dirname(model);
      what = model;
    } else bytes = model instanceof ArrayBuffer ? new Uint8Array(model) : model;
    return InferenceSession.fromModel(loadModel(bytes, { baseDir, what }), options);
  }

  static fromModel(model: Model, options: SessionOptions = {}): InferenceSession {
    const backend = pickBackend(options.executionProviders);
    const plan = compile(model.graph, { opsets: model.opsets, functions: model.functions });
    return new InferenceSession(model, plan, backend, options);
  }

  async run(feeds: Record<string, FeedValue>, fetches?: string[] | Record<string, unknown>, hooks?: ExecHooks): Promise<Record<string, OutputValue>> {
    return this.runSync(feeds, fetches, hooks);
  }

  runSync(feeds: Record<string, FeedValue>, fetches?: string[] | Record<string, unknown>, hooks?: ExecHooks): Record<string, OutputValue> {
    if (this.released) throw new LastmileError('session was released');
    const wanted = fetches === undefined ? this.outputNames : Array.isArray(fetches) ? fetches : Object.keys(fetches);
    for (const w of wanted) if (!this.outputNames.includes(w)) throw new InputError(`unknown output '${w}'; the model's outputs are: ${this.outputNames.join(', ')}`);
    const values = execute(this.plan, this.bindFeeds(feeds), undefined, hooks);
    const out: Record<string, OutputValue> = {};
    this.outputNames.forEach((n, i) => { if (wanted.includes(n)) out[n] = toOutput(values[i]); });
    return out;
  }

  /** Runs on engine values without conversion or feed checks (the conformance runner's entry). */
  runValues(feeds: Map<string, Value>, hooks?: ExecHooks): Value[] {
    if (this.released) throw new LastmileError('session was released');
    return execute(this.plan, feeds, undefined, hooks);
  }

  async release(): Promise<void> { this.released = true; }

  private bindFeeds(feeds: Record<string, FeedValue>): Map<string, Value> {
    if (feeds === null || typeof feeds !== 'object') throw new InputError('feeds must be an object mapping input names to tensors');
    const declared = new Map(this.model.graph.inputs.map((i) => [i.name, i]));
    for (const k of Object.keys(feeds)) {
      if (!declared.has(k)) throw new InputError(`unknown input '${k}'; the model's inputs are: ${this.inputNames.join(', ') || '(none)'}`);
    }
    const dims = new Map<string, { value: number; from: string }>(Object.entries(this.options.freeDimensionOverrides ?? {}).map(([k, v]) => [k, { value: v, from: 'freeDimensionOverrides' }]));
    const bound = new Map<string, Value>();
    for (const info of this.model.graph.inputs) {
      const feed = feeds[info.name];
      if (feed === undefined) {
        if (this.model.graph.initializers.has(info.name)) continue;
        throw new InputError(`missing input '${info.name}' (expected ${describeType(info.type)})`);
      }
      bound.set(info.name, checkFeed(info, feed, dims));
    }
    return bound;
  }
}

function pickBackend(eps: SessionOptions['executionProviders']): string {
  const names = (eps ?? ['cpu']).map((e) => (typeof e === 'string' ? e : e.name));
  for (const n of names) if ((BACKENDS as readonly string[]).includes(n === 'wasm' ? 'cpu' : n)) return 'cpu';
  throw new UnsupportedOpError('(backend)', '', 0, '(session)', `none of the execution providers [${names.join(', ')}] is available; this build has: ${BACKENDS.join(', ')}`);
}

function metadata(v: ValueInfo, t: TypeInfo | undefined): ValueMetadata {
  const isTensor = !t || t.kind === 'tensor';
  return { name: v.name, isTensor, type: t?.kind === 'tensor' ? t.dtype : undefined, shape: t?.kind === 'tensor' ? t.shape : undefined, typeInfo: t };
}

export function describeType(t: TypeInfo | undefined): string {
  if (!t) return 'a value';
  if (t.kind === 'tensor') return `${t.dtype ?? '?'} tensor${t.shape ? ` of shape [${t.shape.map((d) => d ?? '?').join(', ')}]` : ''}`;
  if (t.kind === 'sequence') return `sequence of ${describeType(t.elem)}`;
  if (t.kind === 'optional') return `optional ${describeType(t.elem)}`;
  return t.kind;
}

type TensorLike = { type: DType; dims: readonly number[]; data: Tensor['data'] };
const isTensorLike = (v: unknown): v is TensorLike =>
  v instanceof Tensor || (typeof v === 'object' && v !== null && 'type' in v && 'dims' in v && 'data' in v);

function checkFeed(info: ValueInfo, feed: FeedValue, dims: Map<string, { value: number; from: string }>): Value {
  const t = info.type;
  const err = (msg: string) => new InputError(`input '${info.name}': ${msg}`);
  if (t?.kind === 'sequence') {
    if (!Array.isArray(feed)) throw err(`expected ${describeType(t)}, got ${typeof feed}`);
    return new Seq(feed.map((x) => checkTensor(x, t.elem, info.name, dims)), t.elem?.kind === 'tensor' ? t.elem.dtype : undefined);
  }
  if (t?.kind === 'optional') {
    if (feed === null) return new Opt(null, t.elem?.kind === 'sequence' ? 'sequence' : 'tensor');
    if (Array.isArray(feed)) return new Opt(checkFeed({ name: info.name, type: t.elem }, feed, dims) as Seq, 'sequence');
    return new Opt(checkTensor(feed, t.elem, info.name, dims), 'tensor');
  }
  return checkTensor(feed, t, info.name, dims);
}

function checkTensor(feed: unknown, t: TypeInfo | undefined, name: string, dims: Map<string, { value: number; from: string }>): NdArray {
  const err = (msg: string) => new InputError(`input '${name}': ${msg}`);
  if (!isTensorLike(feed)) throw err(`expected ${describeType(t)}, got ${feed === null ? 'null' : typeof feed}`);
  const tensor = feed instanceof Tensor ? feed : new Tensor(feed.type, feed.data, feed.dims);
  if (t?.kind === 'tensor') {
    if (t.dtype && tensor.type !== t.dtype) throw err(`expected dtype ${t.dtype}, got ${tensor.type}`);
    if (t.shape) checkShape(t.shape, tensor.dims, name, dims);
  }
  return toNdArray(tensor);
}

function checkShape(shape: Dim[], got: readonly number[], name: string, dims: Map<string, { value: number; from: string }>) {
  const err = (msg: string) => new InputError(`input '${name}': ${msg}`);
  if (shape.length !== got.length) throw err(`expected rank ${shape.length} [${shape.map((d) => d ?? '?').join(', ')}], got rank ${got.length} [${got.join(', ')}]`);
  shape.forEach((d, i) => {
    if (typeof d === 'number' && d !== got[i]) throw err(`dim ${i} should be ${d}, got ${got[i]} (shape [${got.join(', ')}])`);
    if (typeof d === 'string') {
      const seen = dims.get(d);
      if (seen && seen.value !== got[i]) throw err(`dim ${i} ('${d}') is ${got[i]}, but '${d}' is ${seen.value} from ${seen.from}`);
      if (!seen) dims.set(d, { value: got[i], from: `input '${name}'` });
    }
  });
}

function toOutput(v: Value): OutputValue {
  if (v instanceof NdArray) return toTensor(v);
  if (v instanceof Seq) return v.items.map(toTensor);
  return v.value === null ? null : toOutput(v.value) as OutputValue;
}
