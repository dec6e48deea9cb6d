// The GPU side of a session: tensors in pooled GPU buffers, a pipeline cache, and dispatches recorded
// into one command encoder that is submitted only when the CPU needs a result (or an upload needs it).
import type { DType } from '../../engine/dtype.js';
import { NdArray, sizeOf } from '../../engine/tensor.js';
import { f16ToNumber, numberToF16 } from '../cpu/minifloat.js';
import type { GpuContext } from './device.js';
import { NARROW_INTS, uniformSlots } from './wgsl.js';

/** Element types a GPU buffer can hold; others stay on the CPU. int64 is two u32 words (exact); bool and
 *  the integers narrower than 32 bits take a 32-bit lane each (wgsl.ts NARROW_INTS), widened on upload and
 *  narrowed on download, so a GPU buffer bound for IO holds int8/uint8/int16/uint16 as 4-byte lanes too. */
export const GPU_DTYPES: ReadonlySet<DType> = new Set<DType>(['float32', 'float16', 'int32', 'uint32', 'bool', 'int64',
  ...(Object.keys(NARROW_INTS) as DType[])]);
export const gpuElemBytes = (d: DType) => (d === 'float16' ? 2 : d === 'int64' ? 8 : 4);

class PooledBuffer {
  refs = 1;
  /** external: the caller's buffer (IO binding), never pooled or destroyed by us. */
  constructor(readonly buffer: GPUBuffer, readonly bytes: number, readonly external = false) {}
}

export class GpuArray {
  constructor(readonly dtype: DType, readonly shape: readonly number[], readonly buf: PooledBuffer) {}
  get size() { return sizeOf(this.shape); }
  get buffer() { return this.buf.buffer; }
  /** Same storage, another shape (Reshape, Squeeze...): no copy, one more reference. */
  view(shape: readonly number[] = this.shape): GpuArray { this.buf.refs++; return new GpuArray(this.dtype, shape, this.buf); }
}

export type UniformType = 'u32' | 'i32' | 'f32';
export interface Uniform { name: string; type: UniformType; value: number | readonly number[] }

export interface Program {
  /** Human name, for profiles and errors. */
  name: string;
  /** Equal keys must mean equal shader code: dtypes, rank and code-changing attributes, never dims. */
  key: string;
  /** Builds the WGSL source (only on a cache miss). */
  shader: () => string;
  inputs: GpuArray[];
  /** Fresh buffers for the results. A program that writes into an existing tensor (Concat, scatters)
   *  instead lists it last among `inputs`, declared read_write, with no outputs. */
  outputs: { dtype: DType; shape: readonly number[] }[];
  uniforms: Uniform[];
  /** Workgroups to launch: a count (split over x and y past the 65535 limit) or an explicit grid. */
  workgroups: number | [number, number, number];
}

const caches = new WeakMap<GPUDevice, { pipelines: Map<string, Promise<GPUComputePipeline>>; ready: Map<string, GPUComputePipeline> }>();

interface Pending { pipeline: Promise<GPUComputePipeline>; bind: GPUBindGroupEntry[]; grid: [number, number, number]; uniform: GPUBuffer; name: string }

export class GpuRunner {
  private free = new Map<number, GPUBuffer[]>();
  private pipelines: Map<string, Promise<GPUComputePipeline>>;
  private ready: Map<string, GPUComputePipeline>;
  private encoder: GPUCommandEncoder | undefined;
  private pending: Pending[] = [];
  private uniformsInFlight: GPUBuffer[] = [];
  private uniformFree: GPUBuffer[] = [];
  dispatches = 0;
  /** Names the dispatches recorded next (the executor sets it per node), for profiles. */
  label = '';
  private prof: Profiler | undefined;

  constructor(readonly ctx: GpuContext) {
    // Pipelines belong to the device, so sessions on it share them: a second session compiles nothing new.
    const cache = caches.get(ctx.device) ?? { pipelines: new Map(), ready: new Map() };
    caches.set(ctx.device, cache);
    this.pipelines = cache.pipelines;
    this.ready = cache.ready;
  }
  get device() { return this.ctx.device; }

  // ---- buffers -------------------------------------------------------------------------------------
  /** Size classes: powers of two from 256 bytes, so freed buffers are found again for similar tensors. */
  private static sizeClass(bytes: number) { return Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(bytes, 1)))); }

  alloc(dtype: DType, shape: readonly number[]): GpuArray {
    const bytes = GpuRunner.sizeClass(sizeOf(shape) * gpuElemBytes(dtype));
    const list = this.free.get(bytes);
    const buffer = list?.pop() ?? this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    return new GpuArray(dtype, shape, new PooledBuffer(buffer, bytes));
  }

  /** A caller's GPUBuffer as a tensor (IO binding); it stays the caller's. */
  wrap(buffer: GPUBuffer, dtype: DType, shape: readonly number[]): GpuArray {
    if (buffer.size < sizeOf(shape) * gpuElemBytes(dtype)) throw new Error(`GPU buffer of ${buffer.size} bytes is too small for ${dtype} [${shape}]`);
    return new GpuArray(dtype, shape, new PooledBuffer(buffer, buffer.size, true));
  }

  /** Drops one reference; the last one returns the buffer to the pool. Dispatches already recorded keep
   *  their reads: later users of the buffer are ordered after them in the same queue. */
  release(a: GpuArray): void {
    if (--a.buf.refs > 0) return;
    if (a.buf.refs < 0) throw new Error('GPU buffer released twice');
    if (a.buf.external) return;
    const list = this.free.get(a.buf.bytes) ?? [];
    list.push(a.buf.buffer);
    this.free.set(a.buf.bytes, list);
  }

  // ---- transfers -----------------------------------------------------------------------------------
  upload(x: NdArray): GpuArray {
    // A pooled buffer may still be read by recorded, unsubmitted work; writeBuffer would overtake it.
    this.submit();
    const out = this.alloc(x.dtype, x.shape);
    const data = toGpuBytes(x);
    if (data.byteLength) this.device.queue.writeBuffer(out.buffer, 0, data.buffer as ArrayBuffer, data.byteOffset, alignedLength(data.byteLength));
    return out;
  }

  async download(a: GpuArray): Promise<NdArray> {
    await this.drain();
    const bytes = alignedLength(a.size * gpuElemBytes(a.dtype));
    if (bytes === 0) return NdArray.zeros(a.dtype, a.shape);
    const staging = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.enc().copyBufferToBuffer(a.buffer, 0, staging, 0, bytes);
    this.submit();
    await staging.mapAsync(GPUMapMode.READ);
    const copy = staging.getMappedRange().slice(0);
    staging.unmap();
    staging.destroy();
    return fromGpuBytes(a.dtype, a.shape, copy);
  }

  // ---- programs ------------------------------------------------------------------------------------
  /** Records a program; returns its outputs at once (the GPU fills them in queue order). */
  run(p: Program): GpuArray[] {
    const outs = p.outputs.map((o) => this.alloc(o.dtype, o.shape));
    const grid = typeof p.workgroups === 'number' ? splitGrid(p.workgroups) : p.workgroups;
    if (grid[0] * grid[1] * grid[2] === 0) return outs;
    const { key, pipeline } = this.pipelineFor(p);
    const uniform = this.uniformBuffer(p.uniforms);
    const bind: GPUBindGroupEntry[] = [...p.inputs, ...outs].map((a, i) => ({ binding: i, resource: { buffer: a.buffer } }));
    bind.push({ binding: bind.length, resource: { buffer: uniform } });
    const ready = this.ready.get(key);
    if (ready && this.pending.length === 0) this.encode(ready, bind, grid);
    else this.pending.push({ pipeline, bind, grid, uniform, name: p.name });
    return outs;
  }

  /** Whether recorded programs still wait for their pipelines; `drain()` resolves them in order. */
  get blocked() { return this.pending.length > 0; }

  async drain(): Promise<void> {
    while (this.pending.length) {
      const p = this.pending[0];
      const pl = await p.pipeline;
      this.pending.shift();
      this.encode(pl, p.bind, p.grid);
    }
  }

  /** Compiles a program's pipeline without running it (session.warmup). */
  async compile(p: Pick<Program, 'key' | 'shader' | 'name'>): Promise<void> { await this.pipelineFor(p).pipeline; }

  private pipelineFor(p: Pick<Program, 'key' | 'shader' | 'name'>): { key: string; pipeline: Promise<GPUComputePipeline> } {
    const key = `${p.key}|${this.ctx.f16 ? 'h' : ''}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const code = p.shader();
      const module = this.device.createShaderModule({ code, label: p.name });
      pipeline = this.device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } })
        .catch((e: Error) => { throw new Error(`WebGPU pipeline '${p.name}' failed to compile: ${e.message}\n${code}`); });
      pipeline.then((pl) => this.ready.set(key, pl), () => this.pipelines.delete(key));
      this.pipelines.set(key, pipeline);
    }
    return { key, pipeline };
  }

  get pipelineCount() { return this.pipelines.size; }

  /** Starts timing each dispatch on the GPU (timestamp-query); false when the adapter cannot. */
  startProfiling(): boolean {
    if (!this.ctx.timestamps) return false;
    this.submit();
    this.prof = new Profiler(this.device);
    return true;
  }

  /** Stops profiling: each dispatch's label, start (ms, relative to the first) and GPU duration. */
  async stopProfiling(): Promise<{ label: string; startMs: number; ms: number }[]> {
    const prof = this.prof;
    if (!prof) return [];
    await this.drain();
    this.submit();
    this.prof = undefined;
    return prof.results();
  }

  submit(): void {
    if (!this.encoder) return;
    this.prof?.resolve(this.encoder);
    this.device.queue.submit([this.encoder.finish()]);
    this.prof?.collect();
    this.encoder = undefined;
    this.uniformFree.push(...this.uniformsInFlight);
    this.uniformsInFlight = [];
  }

  private enc(): GPUCommandEncoder { return (this.encoder ??= this.device.createCommandEncoder()); }

  private encode(pipeline: GPUComputePipeline, entries: GPUBindGroupEntry[], grid: [number, number, number]) {
    if (this.prof && this.prof.used === PROFILE_SLOTS) this.submit();
    const timestampWrites = this.prof ? this.prof.slot(this.label) : undefined;
    const pass = this.enc().beginComputePass(timestampWrites ? { timestampWrites } : {});
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
    pass.dispatchWorkgroups(grid[0], grid[1], grid[2]);
    pass.end();
    this.dispatches++;
  }

  /** Each dispatch gets its own uniform buffer, recycled only after the batch that reads it is submitted. */
  private uniformBuffer(us: Uniform[]): GPUBuffer {
    const data = packUniforms(us);
    const buf = this.uniformFree.find((b) => b.size >= data.byteLength);
    if (buf) this.uniformFree.splice(this.uniformFree.indexOf(buf), 1);
    const b = buf ?? this.device.createBuffer({ size: Math.max(256, data.byteLength), usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    // Safe to write now: this buffer is not read by any recorded or submitted-but-unfinished dispatch
    // that comes after this write in queue order.
    this.device.queue.writeBuffer(b, 0, data);
    this.uniformsInFlight.push(b);
    return b;
  }

  destroy(): void {
    this.submit();
    for (const b of this.uniformsInFlight) b.destroy();
    for (const list of this.free.values()) for (const b of list) b.destroy();
    for (const b of this.uniformFree) b.destroy();
    this.free.clear();
    this.uniformFree = [];
  }
}

const alignedLength = (n: number) => Math.ceil(n / 4) * 4;

function splitGrid(n: number): [number, number, number] {
  if (n <= 65535) return [n, 1, 1];
  const y = Math.ceil(n / 65535);
  return [Math.ceil(n / y), y, 1];
}

/** Uniform block layout: every field is an array of vec4 (16-byte aligned), matching wgsl.ts's struct. */
export function packUniforms(us: Uniform[]): ArrayBuffer {
  const slots = us.map(uniformSlots);
  const buf = new ArrayBuffer(Math.max(16, slots.reduce((a, b) => a + b, 0) * 16));
  const i32 = new Int32Array(buf), u32 = new Uint32Array(buf), f32 = new Float32Array(buf);
  let at = 0;
  us.forEach((u, k) => {
    const vals = typeof u.value === 'number' ? [u.value] : u.value;
    const view = u.type === 'f32' ? f32 : u.type === 'i32' ? i32 : u32;
    vals.forEach((v, j) => { view[at + j] = v; });
    at += slots[k] * 4;
  });
  return buf;
}

function toGpuBytes(x: NdArray): Uint8Array {
  const d = x.data;
  switch (x.dtype) {
    case 'float16': { const s = d as Float32Array, o = new Uint16Array(alignedLength(s.length * 2) / 2); for (let i = 0; i < s.length; i++) o[i] = numberToF16(s[i]); return new Uint8Array(o.buffer); }
    case 'bool': return new Uint8Array(Uint32Array.from(d as Uint8Array).buffer);
    // Narrow integers: sign- or zero-extended to their 32-bit lane by the typed-array conversion.
    case 'int8': case 'int16': case 'int4': case 'int2': return new Uint8Array(Int32Array.from(d as Int8Array).buffer);
    case 'uint8': case 'uint16': case 'uint4': case 'uint2': return new Uint8Array(Uint32Array.from(d as Uint8Array).buffer);
    case 'float32': case 'int32': case 'uint32': case 'int64': {
      const v = d as Float32Array;
      return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    }
    default: throw new Error(`dtype ${x.dtype} cannot live on the GPU`);
  }
}

function fromGpuBytes(dtype: DType, shape: readonly number[], buf: ArrayBuffer): NdArray {
  const n = sizeOf(shape);
  switch (dtype) {
    case 'float16': { const s = new Uint16Array(buf, 0, n), o = new Float32Array(n); for (let i = 0; i < n; i++) o[i] = f16ToNumber(s[i]); return new NdArray(dtype, shape, o); }
    case 'bool': return new NdArray(dtype, shape, Uint8Array.from(new Uint32Array(buf, 0, n), (v) => (v ? 1 : 0)));
    case 'float32': return new NdArray(dtype, shape, new Float32Array(buf, 0, n));
    case 'int32': return new NdArray(dtype, shape, new Int32Array(buf, 0, n));
    case 'uint32': return new NdArray(dtype, shape, new Uint32Array(buf, 0, n));
    case 'int64': return new NdArray(dtype, shape, new BigInt64Array(buf, 0, n));
    default: {
      const narrow = NARROW_INTS[dtype];
      if (!narrow) throw new Error(`dtype ${dtype} cannot live on the GPU`);
      // Kernels store narrow integers wrapped to their width, so each lane's value fits the CPU storage.
      const out = NdArray.zeros(dtype, shape);
      (out.data as Int32Array).set(narrow.signed ? new Int32Array(buf, 0, n) : new Uint32Array(buf, 0, n));
      return out;
    }
  }
}

const PROFILE_SLOTS = 1024;

/** Timestamp pairs per dispatch into a query set, resolved and read back per submitted batch. */
class Profiler {
  private set: GPUQuerySet;
  used = 0;
  private labels: string[] = [];
  private batches: Promise<{ label: string; t0: bigint; t1: bigint }[]>[] = [];
  private resolved: { buf: GPUBuffer; q: GPUBuffer; labels: string[] } | undefined;
  constructor(private device: GPUDevice) { this.set = device.createQuerySet({ type: 'timestamp', count: 2 * PROFILE_SLOTS }); }
  slot(label: string): GPUComputePassTimestampWrites {
    this.labels.push(label);
    const i = this.used++;
    return { querySet: this.set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }
  resolve(enc: GPUCommandEncoder) {
    if (!this.used) return;
    const bytes = 16 * this.used;
    const q = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const buf = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    enc.resolveQuerySet(this.set, 0, 2 * this.used, q, 0);
    enc.copyBufferToBuffer(q, 0, buf, 0, bytes);
    this.resolved = { buf, q, labels: this.labels };
    this.labels = [];
    this.used = 0;
  }
  collect() {
    const r = this.resolved;
    if (!r) return;
    this.resolved = undefined;
    this.batches.push(r.buf.mapAsync(GPUMapMode.READ).then(() => {
      const t = new BigUint64Array(r.buf.getMappedRange().slice(0));
      r.buf.destroy();
      r.q.destroy();
      return r.labels.map((label, i) => ({ label, t0: t[2 * i], t1: t[2 * i + 1] }));
    }));
  }
  async results() {
    const all = (await Promise.all(this.batches)).flat();
    this.set.destroy();
    const base = all.reduce((m, e) => (e.t0 < m ? e.t0 : m), all[0]?.t0 ?? 0n);
    return all.map((e) => ({ label: e.label, startMs: Number(e.t0 - base) / 1e6, ms: Number(e.t1 - e.t0) / 1e6 }));
  }
}
