// InferenceSession: the onnxruntime-web compatible entry point.
import { InputError, LastmileError, ModelLoadError, UnsupportedOpError } from './errors.js';
import { Arena } from './arena.js';
import { execute, type ExecHooks } from './execute.js';
import type { Dim, Model, TypeInfo, ValueInfo } from './graph.js';
import { compile, type Plan } from './plan.js';
import { NdArray, Opt, Seq, Tensor, toNdArray, toTensor, type Value } from './tensor.js';
import { inferTypes } from './infer.js';
import { loadModel } from '../loaders/onnx.js';
import type { DType } from './dtype.js';
import { planForGpu, WebGpuBackend } from './backends/webgpu.js';
import { GpuUnavailableError } from '../kernels/webgpu/device.js';
import { markConstants, unmarkConstants } from '../kernels/wasm/gemm.js';
import { defaultThreads, threadsInit, withThreads } from '../kernels/wasm/threads.js';
import '../ops/index.js';

export interface SessionOptions {
  executionProviders?: (string | { name: string })[];
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Fixes symbolic dims at creation, as onnxruntime's freeDimensionOverrides. */
  freeDimensionOverrides?: Record<string, number>;
  /** Threads for CPU kernels, the caller's included, as onnxruntime: 0 or absent for the number of cores, 1 for no workers. */
  intraOpNumThreads?: number;
  /** As onnxruntime: recycle intermediate buffers between steps and runs (CPU; default true). */
  enableCpuMemArena?: boolean;
  /** As onnxruntime: 0 verbose .. 4 fatal; above 2 silences warnings such as WebGPU fallbacks. */
  logSeverityLevel?: number;
  /** WebGPU IO binding: leave outputs in GPU buffers (all, or per output name), as onnxruntime-web. */
  preferredOutputLocation?: 'cpu' | 'gpu-buffer' | Record<string, 'cpu' | 'gpu-buffer'>;
  /** WebGPU: refuse a model in which a compute-heavy node would run on the CPU (default: warn once). */
  strict?: boolean;
}

/** As onnxruntime's: `shape` is [] when unknown, with '' for a dim that has neither a size nor a name. */
export interface ValueMetadata {
  name: string;
  isTensor: boolean;
  type?: DType;
  shape?: (number | string)[];
  /** Lastmile's extra: the full declared or inferred type (sequences, optionals, unknown dims as null). */
  typeInfo?: TypeInfo;
}

/** onnxruntime's RunOptions (accepted, none changes how this engine runs) plus Lastmile's profiling hook. */
export interface RunOptions extends Omit<ExecHooks, 'arena'> { logSeverityLevel?: number; logVerbosityLevel?: number; terminate?: boolean; tag?: string }

export type OutputValue = Tensor | Tensor[] | null;
type FeedValue = Tensor | Tensor[] | null;
type Fetches = readonly string[] | Record<string, unknown>;

const BACKENDS = ['cpu', 'webgpu'] as const;

export class InferenceSession {
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputMetadata: ValueMetadata[];
  readonly outputMetadata: ValueMetadata[];
  readonly backend: string;
  private released = false;
  /** intraOpNumThreads resolved: what the CPU kernels may use during this session's runs. */
  readonly intraOpNumThreads: number;
  /** Intermediate buffers kept between runs of this session (CPU): refilling memory in use beats fresh pages. */
  private readonly arena: Arena | undefined;
  /** Storage of the model's constants: an output holding one is copied, so callers cannot change the weights. */
  private readonly constantData: Set<unknown>;

  private constructor(readonly model: Model, private readonly plan: Plan, backend: string, private readonly options: SessionOptions,
    private readonly gpu?: WebGpuBackend) {
    const inits = model.graph.initializers;
    const inputs = model.graph.inputs.filter((i) => !inits.has(i.name));
    const types = inferTypes(model, plan, options.freeDimensionOverrides);
    gpu?.checkFallbacks(plan, types, options.strict ?? false, (options.logSeverityLevel ?? 2) > 2);
    this.inputNames = inputs.map((i) => i.name);
    this.outputNames = model.graph.outputs.map((o) => o.name);
    this.inputMetadata = inputs.map((i) => metadata(i, i.type));
    this.outputMetadata = model.graph.outputs.map((o) => metadata(o, o.type?.kind === 'tensor' && o.type.shape ? o.type : types.get(o.name) ?? o.type));
    this.backend = backend;
    this.intraOpNumThreads = resolveThreads(options.intraOpNumThreads);
    // Initializers and Constant nodes' tensors both live as long as the session, subgraphs' included
    // (models such as Silero VAD keep every weight inside If branches).
    this.constantData = new Set(constantsOf(plan).map((v) => (v instanceof NdArray ? v.data : v)));
    this.arena = options.enableCpuMemArena === false ? undefined : new Arena();
    // Weights never change: the GEMM packs them once instead of on every product.
    markConstants(this.constantData);
  }

  /** As onnxruntime-web: a path (Node only), bytes, or an ArrayBuffer with an optional byte range. */
  static async create(model: string | Uint8Array, options?: SessionOptions): Promise<InferenceSession>;
  static async create(buffer: ArrayBufferLike, options?: SessionOptions): Promise<InferenceSession>;
  static async create(buffer: ArrayBufferLike, byteOffset: number, byteLength?: number, options?: SessionOptions): Promise<InferenceSession>;
  static async create(model: string | Uint8Array | ArrayBufferLike, a?: SessionOptions | number, b?: number, c?: SessionOptions): Promise<InferenceSession> {
    let bytes: Uint8Array, baseDir: string | undefined, what = 'model';
    if (typeof model === 'string') {
      const [{ readFile }, { dirname }] = await Promise.all([import('node:fs/promises'), import('node:path')]);
      try { bytes = await readFile(model); } catch (e) { throw new ModelLoadError(`cannot read model file '${model}': ${(e as Error).message}`); }
      baseDir = dirname(model);
      what = model;
    } else if (model instanceof Uint8Array) bytes = model;
    else if (model instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && model instanceof SharedArrayBuffer)) bytes = byteRange(model, a, b);
    else throw new TypeError(`InferenceSession.create takes a path, a Uint8Array or an ArrayBuffer, got ${describeArg(model)}`);
    const options = typeof a === 'number' ? c : a;
    if (options !== undefined && (typeof options !== 'object' || options === null)) throw new TypeError(`session options must be an object, got ${describeArg(options)}`);
    return InferenceSession.load(loadModel(bytes, { baseDir, what }), options);
  }

  /** A session on an already loaded model, on the first execution provider that is available. */
  static async load(model: Model, options: SessionOptions = {}): Promise<InferenceSession> {
    await threadsInit; // the core count, for the default intraOpNumThreads
    const names = providerNames(options.executionProviders);
    for (const [i, name] of names.entries()) {
      if (name !== 'webgpu') return new InferenceSession(model, compilePlan(model, options, 'cpu'), 'cpu', options);
      try {
        return new InferenceSession(model, compilePlan(model, options, 'webgpu'), 'webgpu', options, await WebGpuBackend.open());
      } catch (e) {
        // As onnxruntime: an unavailable provider falls through to the next one listed.
        if (!(e instanceof GpuUnavailableError) || i === names.length - 1) throw e;
      }
    }
    throw new Error('unreachable');
  }

  /** A CPU session, created synchronously. */
  static fromModel(model: Model, options: SessionOptions = {}): InferenceSession {
    if (providerNames(options.executionProviders)[0] === 'webgpu') throw new LastmileError('a WebGPU session needs InferenceSession.create or load (async)');
    return new InferenceSession(model, compilePlan(model, options, 'cpu'), 'cpu', options);
  }

  /**
   * As onnxruntime-web: `run(feeds, options?)` or `run(feeds, fetches, options?)`, where fetches is an
   * array of output names or an object keyed by them.
   */
  async run(feeds: Record<string, FeedValue>, fetches?: Fetches | RunOptions, options?: RunOptions): Promise<Record<string, OutputValue>> {
    if (!this.gpu) return this.runSync(feeds, fetches, options);
    if (this.released) throw new LastmileError('session was released');
    const [wanted, opts] = this.fetchesAndOptions(fetches, options);
    const gpuFeeds = new Map<string, Tensor>();
    const cpuFeeds = this.bindFeeds(feeds, gpuFeeds);
    const values = await this.gpu.run(this.plan, cpuFeeds, opts, gpuFeeds, this.gpuOutputs(wanted));
    const out: Record<string, OutputValue> = {};
    this.outputNames.forEach((n, i) => {
      if (!wanted.includes(n)) return;
      const v = values[i];
      out[n] = v instanceof Tensor ? v : toOutput(v, this.constantData);
    });
    return out;
  }

  /** CPU sessions only: runs without yielding to the event loop. */
  runSync(feeds: Record<string, FeedValue>, fetches?: Fetches | RunOptions, options?: RunOptions): Record<string, OutputValue> {
    if (this.released) throw new LastmileError('session was released');
    if (this.gpu) throw new LastmileError('runSync is for CPU sessions; a WebGPU session runs with run()');
    const [wanted, opts] = this.fetchesAndOptions(fetches, options);
    const bound = this.bindFeeds(feeds);
    return this.outputs(withThreads(this.intraOpNumThreads, () => execute(this.plan, bound, undefined, { ...opts, arena: this.arena })), wanted);
  }

  private outputs(values: Value[], wanted: readonly string[]): Record<string, OutputValue> {
    const out: Record<string, OutputValue> = {};
    this.outputNames.forEach((n, i) => { if (wanted.includes(n)) out[n] = toOutput(values[i], this.constantData); });
    return out;
  }

  /** Outputs the caller wants left in GPU buffers (preferredOutputLocation). */
  private gpuOutputs(wanted: readonly string[]): Set<string> {
    const pref = this.options.preferredOutputLocation;
    return new Set(wanted.filter((n) => (typeof pref === 'string' ? pref : pref?.[n]) === 'gpu-buffer'));
  }

  /** onnxruntime's rule: an object is fetches when one of its keys names an output, else it is run options. */
  private fetchesAndOptions(fetches: Fetches | RunOptions | undefined, options: RunOptions | undefined): [readonly string[], RunOptions | undefined] {
    if (fetches === undefined) return [this.outputNames, options];
    if (typeof fetches !== 'object' || fetches === null || fetches instanceof Tensor) throw new InputError(`fetches must be an array of output names or an object keyed by them, got ${describeArg(fetches)}`);
    const keys = Object.keys(fetches);
    if (!Array.isArray(fetches) && !keys.some((k) => this.outputNames.includes(k))) return [this.outputNames, fetches as RunOptions];
    const names = Array.isArray(fetches) ? (fetches as string[]) : keys;
    if (names.length === 0) throw new InputError('fetches is empty; name at least one output');
    for (const w of names) if (!this.outputNames.includes(w)) throw new InputError(`unknown output '${w}'; the model's outputs are: ${this.outputNames.join(', ')}`);
    return [names, options];
  }

  /** Runs on engine values without conversion or feed checks (the conformance runner's entry). */
  runValues(feeds: Map<string, Value>, hooks?: ExecHooks): Value[] {
    if (this.released) throw new LastmileError('session was released');
    if (this.gpu) throw new LastmileError('runValues is for CPU sessions; use runValuesAsync');
    return withThreads(this.intraOpNumThreads, () => execute(this.plan, feeds, undefined, { ...hooks, arena: this.arena }));
  }

  /** runValues for any backend. */
  async runValuesAsync(feeds: Map<string, Value>, hooks?: ExecHooks): Promise<Value[]> {
    if (!this.gpu) return this.runValues(feeds, hooks);
    if (this.released) throw new LastmileError('session was released');
    return (await this.gpu.run(this.plan, feeds, hooks)) as Value[]; // nothing kept on the GPU: all CPU values
  }

  /**
   * Compiles every GPU pipeline the session needs by running it once on zeros of the declared shapes
   * (symbolic dims from freeDimensionOverrides, else 1), so the first real run compiles nothing. On the
   * way it times the GEMM variants for the session's MatMul/Gemm shapes on this adapter and keeps the
   * fastest per shape class for the process (a second run then compiles the winners).
   */
  async warmup(): Promise<void> {
    if (!this.gpu) return;
    const over = this.options.freeDimensionOverrides ?? {};
    const feeds: Record<string, Tensor> = {};
    for (const m of this.inputMetadata) {
      if (!m.isTensor || !m.type) throw new LastmileError(`warmup needs a declared tensor type for input '${m.name}'`);
      feeds[m.name] = toTensor(NdArray.zeros(m.type, (m.shape ?? []).map((d) => (typeof d === 'number' ? d : over[d] ?? 1))));
    }
    await this.run(feeds);
    if (await this.gpu.tuneGemms()) await this.run(feeds);
  }

  /** WebGPU: times every dispatch on the GPU (timestamp-query) until endProfiling; false where the adapter cannot. */
  startProfiling(): boolean { return this.gpu?.startProfiling() ?? false; }
  /** Per dispatch: `op|node` label, start and duration in ms of GPU time. */
  async endProfiling(): Promise<{ label: string; startMs: number; ms: number }[]> { return this.gpu?.stopProfiling() ?? []; }

  /** Where each node ran on the last WebGPU run (empty on CPU sessions). */
  get placements() { return this.gpu?.lastPlacements ?? new Map(); }

  async release(): Promise<void> {
    if (!this.released) unmarkConstants(this.constantData);
    this.released = true;
    this.arena?.clear();
    this.gpu?.destroy();
  }

  /** Feeds checked against the declared inputs; tensors in GPU buffers (IO binding) come back apart. */
  private bindFeeds(feeds: Record<string, FeedValue>, gpuFeeds?: Map<string, Tensor>): Map<string, Value> {
    if (feeds === null || typeof feeds !== 'object' || Array.isArray(feeds) || feeds instanceof Tensor) throw new InputError(`feeds must be an object mapping input names to tensors, got ${describeArg(feeds)}`);
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
      if (feed instanceof Tensor && feed.location === 'gpu-buffer') {
        if (!gpuFeeds) throw new InputError(`input '${info.name}': a tensor in a GPU buffer needs a WebGPU session`);
        checkMeta(feed, info.type, info.name, dims);
        gpuFeeds.set(info.name, feed);
      } else bound.set(info.name, checkFeed(info, feed, dims));
    }
    return bound;
  }
}

/** The plan for a backend: every level on both (the fused internal ops have GPU lowerings too); above
 *  'basic', WebGPU also fuses attention chains into one program. */
function compilePlan(model: Model, options: SessionOptions, backend: string): Plan {
  const level = options.graphOptimizationLevel ?? 'all';
  const plan = compile(model.graph, { opsets: model.opsets, functions: model.functions }, { level });
  return backend === 'webgpu' && (level === 'all' || level === 'extended') ? planForGpu(model, plan, options.freeDimensionOverrides) : plan;
}

/** The constant values of a plan and of every subgraph in it: initializers and Constant nodes' tensors. */
function constantsOf(plan: Plan): unknown[] {
  return [...plan.constants.values(), ...plan.steps.flatMap((s) => [
    ...(s.node.opType === 'Constant' ? [...s.node.attrs.values()].map((a) => a.value) : []),
    ...[...s.subgraphs.values()].flatMap(constantsOf),
  ])];
}

/** As onnxruntime: 0 (or absent) means the number of cores. */
function resolveThreads(n: number | undefined): number {
  if (n === undefined || n === 0) return defaultThreads();
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`intraOpNumThreads must be a non-negative integer, got ${n}`);
  return n;
}

function providerNames(eps: SessionOptions['executionProviders']): string[] {
  const names = (eps ?? ['cpu']).map((e) => (typeof e === 'string' ? e : e.name)).map((n) => (n === 'wasm' ? 'cpu' : n));
  const known = names.filter((n) => (BACKENDS as readonly string[]).includes(n));
  if (!known.length) throw new UnsupportedOpError('(backend)', '', 0, '(session)', `none of the execution providers [${names.join(', ')}] is available; this build has: ${BACKENDS.join(', ')}`);
  return known;
}

function metadata(v: ValueInfo, t: TypeInfo | undefined): ValueMetadata {
  if (t && t.kind !== 'tensor') return { name: v.name, isTensor: false, typeInfo: t };
  return { name: v.name, isTensor: true, type: t?.dtype, shape: (t?.shape ?? []).map((d) => d ?? ''), typeInfo: t };
}

function byteRange(buf: ArrayBufferLike, offset?: unknown, length?: unknown): Uint8Array {
  if (typeof offset !== 'number') return new Uint8Array(buf);
  if (!Number.isSafeInteger(offset) || offset < 0 || offset >= buf.byteLength) throw new RangeError(`byteOffset ${offset} is outside [0, ${buf.byteLength})`);
  const len = length ?? buf.byteLength - offset;
  if (typeof len !== 'number' || !Number.isSafeInteger(len) || len <= 0 || offset + len > buf.byteLength) throw new RangeError(`byteLength ${len} is outside (0, ${buf.byteLength - offset}]`);
  return new Uint8Array(buf, offset, len);
}

const describeArg = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? (v as object).constructor?.name ?? 'an object' : typeof v);

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
    if (!Array.isArray(feed)) throw err(`expected ${describeType(t)} (an array of tensors), got ${describeArg(feed)}`);
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
  if (!isTensorLike(feed)) throw err(`expected ${describeType(t)}, got ${describeArg(feed)}`);
  // Tensors from another library (onnxruntime-web's, say) are re-checked by our constructor.
  let tensor: Tensor;
  try { tensor = feed instanceof Tensor ? feed : new Tensor(feed.type, feed.data, feed.dims); } catch (e) { throw err((e as Error).message); }
  checkMeta(tensor, t, name, dims);
  return toNdArray(tensor);
}

function checkMeta(tensor: Tensor, t: TypeInfo | undefined, name: string, dims: Map<string, { value: number; from: string }>) {
  if (t?.kind !== 'tensor') return;
  if (t.dtype && tensor.type !== t.dtype) throw new InputError(`input '${name}': expected dtype ${t.dtype}, got ${tensor.type}`);
  if (t.shape) checkShape(t.shape, tensor.dims, name, dims);
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

function toOutput(v: Value, constants: Set<unknown>): OutputValue {
  const one = (a: NdArray) => toTensor(constants.has(a.data) ? new NdArray(a.dtype, a.shape, a.data.slice()) : a);
  if (v instanceof NdArray) return one(v);
  if (v instanceof Seq) return v.items.map(one);
  return v.value === null ? null : toOutput(v.value, constants);
}
