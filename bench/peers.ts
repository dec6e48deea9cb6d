// The engines a benchmark compares: Lastmile and its peers, each behind one small interface. The peers
// (onnxruntime-node, onnxruntime-web) are devDependencies, loaded only here and only when asked for.

export const ENGINE_IDS = ['lastmile', 'ort-node', 'ort-web'] as const;
export type EngineId = (typeof ENGINE_IDS)[number];
export type Backend = 'cpu' | 'webgpu';

/** A tensor every engine accepts: onnxruntime's public form (float16 as Uint16Array bit patterns). */
export interface Feed { type: string; dims: readonly number[]; data: ArrayLike<unknown> }
export type Feeds = Record<string, Feed>;
export interface EngineOptions { backend: Backend; threads: number; dims: Record<string, number> }

export interface Engine {
  id: EngineId;
  label: string;
  /** Outputs by name: tensors (with .data), or for Lastmile also sequences and optionals. */
  run(): Promise<Record<string, unknown>>;
  release(): Promise<void>;
}

type Ctor = new (type: never, data: never, dims: readonly number[]) => unknown;
const wrap = (feeds: Feeds, T: Ctor) => Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, new T(f.type as never, f.data as never, f.dims)]));

const LABELS: Record<EngineId, string> = { lastmile: 'lastmile', 'ort-node': 'onnxruntime-node', 'ort-web': 'onnxruntime-web' };
export const engineLabel = (id: EngineId, backend: Backend) => `${LABELS[id]} ${id === 'ort-web' && backend === 'cpu' ? 'wasm' : backend}`;

/**
 * Loads an engine's modules and returns its session factory: two steps, so a cold start can tell the
 * import (for onnxruntime-web, the wasm glue) from session creation.
 */
export async function loadEngine(id: EngineId, backend: Backend): Promise<(model: Uint8Array, feeds: Feeds, o: EngineOptions) => Promise<Engine>> {
  const makers: Record<EngineId, (b: Backend) => Promise<Maker>> = { lastmile, 'ort-node': ortNode, 'ort-web': ortWeb };
  const make = await makers[id](backend);
  return async (model, feeds, o) => ({ id, label: engineLabel(id, backend), ...(await make(model, feeds, o)) });
}

export const createEngine = async (id: EngineId, model: Uint8Array, feeds: Feeds, o: EngineOptions) => (await loadEngine(id, o.backend))(model, feeds, o);

type Maker = (model: Uint8Array, feeds: Feeds, o: EngineOptions) => Promise<Pick<Engine, 'run' | 'release'>>;

async function lastmile(): Promise<Maker> {
  const { InferenceSession, Tensor } = await import('../index.js');
  return async (model, feeds, o) => {
    // intraOpNumThreads as for onnxruntime: the GEMM (MatMul, Gemm, Conv) splits across that many threads.
    const s = await InferenceSession.create(model, { executionProviders: [o.backend], freeDimensionOverrides: o.dims, intraOpNumThreads: o.threads, logSeverityLevel: 3 });
    const f = wrap(feeds, Tensor as unknown as Ctor) as Record<string, InstanceType<typeof Tensor>>;
    return { run: () => s.run(f), release: () => s.release() };
  };
}

async function ortNode(): Promise<Maker> {
  const ort = await import('onnxruntime-node');
  return async (model, feeds, o) => {
    const s = await ort.InferenceSession.create(model, {
      executionProviders: [o.backend], intraOpNumThreads: o.threads, interOpNumThreads: 1, freeDimensionOverrides: o.dims, logSeverityLevel: 3,
    });
    const f = wrap(feeds, ort.Tensor as unknown as Ctor) as Record<string, InstanceType<typeof ort.Tensor>>;
    return { run: () => s.run(f), release: () => s.release() };
  };
}

async function ortWeb(backend: Backend): Promise<Maker> {
  const ort = backend === 'webgpu' ? await ortWebGpuOnce() : await import('onnxruntime-web');
  return async (model, feeds, o) => {
    ort.env.wasm.numThreads = o.threads; // read once, when the first session loads the wasm
    // Bytes, not a path: onnxruntime-web's Node build fetches paths, which Node cannot do for files.
    const s = await ort.InferenceSession.create(model, { executionProviders: [backend === 'webgpu' ? 'webgpu' : 'wasm'], freeDimensionOverrides: o.dims, logSeverityLevel: 3 });
    const f = wrap(feeds, ort.Tensor as unknown as Ctor) as Record<string, InstanceType<typeof ort.Tensor>>;
    return { run: () => s.run(f), release: () => s.release() };
  };
}

let ortWebGpu: ReturnType<typeof importOrtWebGpu> | undefined;
const ortWebGpuOnce = () => (ortWebGpu ??= importOrtWebGpu()); // one navigator.gpu and one writeBuffer wrapper per process

/** onnxruntime-web's WebGPU build expects a browser: give it Dawn's bindings (the `webgpu` package) as navigator.gpu. */
async function importOrtWebGpu() {
  const pkg = 'webgpu';
  const { create, globals } = (await import(pkg)) as { create(o: string[]): GPU; globals: object };
  Object.assign(globalThis, globals);
  const nav = (globalThis as { navigator?: object }).navigator;
  Object.defineProperty(globalThis, 'navigator', { value: { ...nav, gpu: create([]) }, configurable: true, writable: true });
  // Its threaded wasm heap is a SharedArrayBuffer, which Dawn's writeBuffer rejects: hand it a copy.
  const write = GPUQueue.prototype.writeBuffer;
  GPUQueue.prototype.writeBuffer = function (this: GPUQueue, buffer: GPUBuffer, offset: number, data: BufferSource | SharedArrayBuffer, dataOffset?: number, size?: number) {
    const shared = (b: unknown) => typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer;
    // A typed array keeps its type (dataOffset and size count its elements); a DataView counts bytes, as Uint8Array.
    if (data instanceof DataView && shared(data.buffer)) data = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    else if (ArrayBuffer.isView(data) && shared(data.buffer)) data = (data as Uint8Array).slice();
    else if (shared(data)) data = (data as SharedArrayBuffer).slice(0);
    return write.call(this, buffer, offset, data as BufferSource, dataOffset, size);
  } as typeof write;
  return import('onnxruntime-web/webgpu');
}
