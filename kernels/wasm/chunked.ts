// Chunked calls: how the window kernels (kernels/wasm/window.ts, conv.ts, pool.ts) run on the thread pool
// of kernels/wasm/threads.ts. A job names one function of the module and its arguments for the whole
// work, which is `total` units (planes, channels, output rows) counted by one of the arguments. Chunk c
// covers units [c * per, min((c + 1) * per, total)): the task calls the function with the count argument
// set to that chunk's length and every other i32 argument advanced by the chunk's first unit times its
// step (0 for arguments shared by all chunks). So the kernels themselves know nothing of threads, and
// a chunk computes each of its elements exactly as the whole call would: results do not depend on how
// the work is split.
import { Code, T, type Func } from './emitter.js';

/** Most arguments a function called through a job may take. */
export const MAX_ARGS = 24;

/** Word offsets of a job: function index, units, units per chunk, the count argument's index, then arguments and steps. */
const J = { fn: 0, total: 1, per: 2, countArg: 3, args: 4, steps: 4 + MAX_ARGS } as const;
/** Job size in bytes. */
export const JOB_BYTES = 4 * (J.steps + MAX_ARGS);

/**
 * task(job, chunk, id) for a module whose functions are `funcs`, in that order (the task comes after
 * them): calls funcs[fn] on the chunk. f32 arguments are passed as they are.
 */
export function chunkTask(funcs: Func[]): Func {
  const [job, chunk] = [0, 1];
  const [u0, n, fn, countArg] = [3, 4, 5, 6];
  const c = new Code();
  c.get(job).load32(4 * J.per).get(chunk).mul().set(u0);
  // n = min(per, total - u0)
  c.get(job).load32(4 * J.per).get(job).load32(4 * J.total).get(u0).sub().tee(n);
  c.get(job).load32(4 * J.per).get(n).ltS().select().set(n);
  c.get(job).load32(4 * J.fn).set(fn).get(job).load32(4 * J.countArg).set(countArg);
  funcs.forEach((f, i) => {
    if (f.params.length > MAX_ARGS) throw new RangeError(`${f.name} takes ${f.params.length} arguments, more than a job holds`);
    c.get(fn).i32(i).eq().ifElse(() => {
      f.params.forEach((t, p) => {
        if (t === T.f32) { c.get(job).f32Load(4 * (J.args + p)); return; }
        // select(n, arg + u0 * step, p == countArg)
        c.get(n).get(job).load32(4 * (J.args + p)).get(u0).get(job).load32(4 * (J.steps + p)).mul().add();
        c.get(countArg).i32(p).eq().select();
      });
      c.call(i);
    });
  });
  return { name: 'task', params: [T.i32, T.i32, T.i32], results: [], locals: [T.i32, T.i32, T.i32, T.i32], body: c };
}

/** A call split into chunks: `count` is the index of the argument holding `total` units; steps[p] advances argument p per unit. */
export interface Split { count: number; steps: Record<number, number> }

/** Writes the job for calling function `fn` (its parameter types `params`) with `args`, `per` units a chunk, at byte address `at`. */
export function writeJob(memory: WebAssembly.Memory, at: number, fn: number, params: readonly T[], args: readonly number[], split: Split, per: number): void {
  const w = new Int32Array(memory.buffer, at, JOB_BYTES / 4), f = new Float32Array(memory.buffer, at, JOB_BYTES / 4);
  w[J.fn] = fn;
  w[J.total] = args[split.count];
  w[J.per] = per;
  w[J.countArg] = split.count;
  params.forEach((t, p) => {
    if (t === T.f32) f[J.args + p] = args[p];
    else w[J.args + p] = args[p];
    w[J.steps + p] = split.steps[p] ?? 0;
  });
}
