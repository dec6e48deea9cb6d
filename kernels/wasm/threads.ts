// Threads for the WebAssembly kernels: the thread-count setting, and a fork-join pool of workers
// (worker_threads in Node, Web Workers in browsers) that run one kernel module on one shared memory.
// Kernels stay synchronous: the calling thread publishes a job in a control block in that memory, wakes
// the workers with Atomics.notify, claims chunks of the job itself alongside them, then waits until
// every worker that accepted the job has left (workers that had not woken by then are withdrawn). A pool
// can also serve further modules on the same memory (addModule; the window kernels specialise one per
// geometry), which workers instantiate on first use. Workers start lazily, on the first job that wants
// them, and a job never waits for a worker to start: until a worker says it is ready, the others (at least the caller)
// do its share. So a worker that fails to start costs nothing but speed. Node workers are unref()'d:
// idle workers blocked in Atomics.wait do not keep the process alive.
// Blocking: Node's main thread may Atomics.wait. A browser's main thread may not (it throws), so
// there the caller spins on Atomics.load until the workers are done; in a browser worker it waits.
import { CTRL, CTRL_BYTES, WORKER_SOURCE } from './worker.js';

export { CTRL_BYTES };

interface NodeEnv { Worker: new (src: string, o: { eval: true; workerData: unknown }) => NodeWorker; cores: number }
interface NodeWorker { unref(): void; terminate(): Promise<number>; on(ev: 'error', f: (e: unknown) => void): void }

const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';
let nodeEnv: NodeEnv | null = null;

/**
 * Resolves once the platform's worker API and core count are known (Node loads them by dynamic import,
 * so this module keeps no static node: import and still loads in browsers). Sessions await it at creation.
 */
export const threadsInit: Promise<void> = isNode
  ? Promise.all([import('node:worker_threads'), import('node:os')]).then(([wt, os]) => {
    nodeEnv = { Worker: wt.Worker as unknown as NodeEnv['Worker'], cores: os.availableParallelism?.() ?? os.cpus().length };
  }, () => undefined)
  : Promise.resolve();

/** Memory workers can share: shared, with maxPages as its fixed maximum (threads need one); null where SharedArrayBuffer is unavailable (no cross-origin isolation). */
export function sharedMemory(initial: number, maxPages: number): WebAssembly.Memory | null {
  if (typeof SharedArrayBuffer === 'undefined') return null;
  try {
    return new WebAssembly.Memory({ initial, maximum: maxPages, shared: true });
  } catch {
    return null;
  }
}

/** Whether this platform can run threads at all: shared wasm memory (cross-origin isolation in browsers) and workers. */
export function threadsSupported(): boolean {
  if (typeof SharedArrayBuffer === 'undefined' || typeof Atomics !== 'object') return false;
  return isNode ? nodeEnv !== null : typeof Worker === 'function' && typeof Blob === 'function' && typeof URL?.createObjectURL === 'function';
}

/** The number of cores, as onnxruntime's default for intraOpNumThreads; 1 where threads cannot run. */
export function defaultThreads(): number {
  if (!threadsSupported()) return 1;
  const n = isNode ? nodeEnv!.cores : (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(MAX_THREADS, Math.floor(n)));
}

/** Workers plus the calling thread; the control block has room for this many. */
export const MAX_THREADS = 64;

let current: number | undefined;

/** Threads the kernels may use from now on (1: the calling thread only); returns the previous setting. */
export function setThreads(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`thread count must be a positive integer, got ${n}`);
  const was = threads();
  current = Math.min(n, MAX_THREADS);
  return was;
}

/** The current setting: what setThreads last set, else the number of cores. */
export const threads = (): number => current ?? defaultThreads();

/** Runs fn with the thread count set to n, restoring the previous count after (fn is synchronous). */
export function withThreads<R>(n: number, fn: () => R): R {
  const was = current;
  setThreads(n);
  try {
    return fn();
  } finally {
    current = was;
  }
}

// A browser's main thread cannot block; asked once (Atomics.wait on a mismatched value throws there).
let canBlock: boolean | undefined;
function blockingAllowed(v: Int32Array): boolean {
  if (canBlock === undefined) {
    try { Atomics.wait(v, CTRL.FAILED, -2, 0); canBlock = true; } catch { canBlock = false; }
  }
  return canBlock;
}

type Task = (job: number, chunk: number, id: number) => void;

/** Where a pool's workers find the bytes of further modules: a region of the shared memory the pool may overwrite between jobs. */
export interface ModuleArea { at: number; bytes: number }

/**
 * Workers sharing one memory and one kernel module (which exports task(job, chunk, id)); `task` is the
 * caller's own instance of it. The control block occupies CTRL_BYTES at byte address `ctrl`. With a
 * module area, further modules (addModule) run on the same workers: see kernels/wasm/worker.ts.
 */
export class Pool {
  private readonly workers: (NodeWorker | Worker)[] = [];
  private readonly view: Int32Array;
  private broken = false;
  /** Slot s > 0: the module's bytes and the caller's task of it. */
  private readonly slots: { bytes: Uint8Array; task: Task }[] = [];
  /** The slot whose bytes the module area holds now (0: none). */
  private inArea = 0;

  constructor(private readonly module: WebAssembly.Module, private readonly memory: WebAssembly.Memory, private readonly ctrl: number, private readonly task: Task,
    private readonly area?: ModuleArea) {
    this.view = new Int32Array(memory.buffer, ctrl, CTRL_BYTES / 4);
  }

  /**
   * Registers a further module (its bytes, and `task` from the caller's own instance of it) and returns
   * its slot for run(). A module too big for the area runs on the calling thread only.
   */
  addModule(bytes: Uint8Array, task: Task): number {
    this.slots.push({ bytes, task });
    return this.slots.length;
  }

  /** Starts workers up to n - 1 (never waits for them); false if none can be started here. */
  private grow(n: number): boolean {
    // Before threadsInit has loaded Node's worker API there is nothing to start with: not a failure.
    if (!threadsSupported()) return this.workers.length > 0;
    while (!this.broken && this.workers.length < n - 1) {
      const id = this.workers.length + 1, data = { module: this.module, memory: this.memory, ctrl: this.ctrl, id };
      try {
        if (isNode) {
          const w = new nodeEnv!.Worker(WORKER_SOURCE, { eval: true, workerData: data });
          // A worker that fails (to start, most likely) never says it is ready, so it is never given work;
          // the listener keeps its error from surfacing as an uncaught exception of this thread.
          w.on('error', () => undefined);
          w.unref();
          this.workers.push(w);
        } else {
          const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
          const w = new Worker(url);
          URL.revokeObjectURL(url);
          w.onerror = (e) => e.preventDefault();
          w.postMessage(data);
          this.workers.push(w);
        }
      } catch {
        this.broken = this.workers.length === 0; // a page whose CSP forbids blob workers, say
        return false;
      }
    }
    return this.workers.length > 0;
  }

  /** Resolves when n - 1 workers are ready (or after timeoutMs): for tests and benchmarks that want threads from the first call. */
  async ready(n: number, timeoutMs = 5000): Promise<number> {
    await threadsInit;
    this.grow(n);
    const end = performance.now() + timeoutMs;
    while (this.readyCount(n) < n - 1 && performance.now() < end) await new Promise((r) => setTimeout(r, 2));
    return this.readyCount(n);
  }

  private readyCount(n: number): number {
    let r = 0;
    for (let id = 1; id < Math.min(n, this.workers.length + 1); id++) r += Atomics.load(this.view, CTRL.READY + id);
    return r;
  }

  /**
   * Runs task(job, c, id) for every chunk c < count on up to n threads, returning when all are done;
   * `slot` picks the module (0: the pool's own, else one from addModule).
   * Returns false if a worker's task threw: chunks may then be half done, and the caller must redo the job.
   */
  run(job: number, count: number, n: number, slot = 0): boolean {
    const v = this.view, mod = slot ? this.slots[slot - 1] : undefined, task = mod ? mod.task : this.task;
    const joined: number[] = [];
    const shareable = !mod || (this.area !== undefined && mod.bytes.length <= this.area.bytes);
    if (n > 1 && count > 1 && shareable && threadsSupported() && this.grow(n)) {
      for (let id = 1; id < Math.min(n, this.workers.length + 1) && joined.length < count - 1; id++) if (Atomics.load(v, CTRL.READY + id)) joined.push(id);
    }
    if (!joined.length) {
      for (let c = 0; c < count; c++) task(job, c, 0);
      return true;
    }
    if (mod && this.inArea !== slot) {
      // No worker is inside a job now, so none is reading the area (a worker reads it only after accepting).
      new Uint8Array(this.memory.buffer, this.area!.at, mod.bytes.length).set(mod.bytes);
      Atomics.store(v, CTRL.MOD_AT, this.area!.at);
      Atomics.store(v, CTRL.MOD_LEN, mod.bytes.length);
      this.inArea = slot;
    }
    Atomics.store(v, CTRL.SLOT, slot);
    const gen = (Atomics.load(v, CTRL.GEN) + 1) & 0x3fffffff;
    Atomics.store(v, CTRL.JOB, job);
    Atomics.store(v, CTRL.COUNT, count);
    Atomics.store(v, CTRL.NEXT, 0);
    Atomics.store(v, CTRL.FAILED, 0);
    Atomics.store(v, CTRL.PENDING, joined.length);
    for (const id of joined) Atomics.store(v, CTRL.JOINED + id, gen);
    Atomics.store(v, CTRL.GEN, gen);
    Atomics.notify(v, CTRL.GEN);
    try {
      for (let c = Atomics.add(v, CTRL.NEXT, 1); c < count; c = Atomics.add(v, CTRL.NEXT, 1)) task(job, c, 0);
    } finally {
      // Workers that have not woken yet are withdrawn rather than waited for (a descheduled worker on a
      // busy machine can take a whole time slice to wake). Those that accepted may be mid-chunk: even when
      // this thread's share threw, none may still be writing when the caller moves on.
      for (const id of joined) if (Atomics.compareExchange(v, CTRL.JOINED + id, gen, 0) === gen) Atomics.sub(v, CTRL.PENDING, 1);
      const block = blockingAllowed(v);
      for (let p = Atomics.load(v, CTRL.PENDING); p !== 0; p = Atomics.load(v, CTRL.PENDING)) if (block) Atomics.wait(v, CTRL.PENDING, p);
    }
    if (Atomics.load(v, CTRL.FAILED) === 0) return true;
    this.close(); // a worker's task threw: whatever broke it, the caller's thread alone is the safe way on
    return false;
  }

  /** Tells the workers to quit and lets them go; the pool then runs everything on the calling thread. */
  close(): void {
    this.broken = true;
    Atomics.store(this.view, CTRL.GEN, -1);
    Atomics.notify(this.view, CTRL.GEN);
    for (const w of this.workers) if ('terminate' in w) void w.terminate();
    this.workers.length = 0;
  }
}
