// GEMM variant choice by measurement. Each MatMul/Gemm program built without a forced variant notes its
// shape class; tuneGemms (session.warmup) times every applicable variant once per class on this adapter
// and remembers the fastest for the process. Until a class is measured, or where measuring fails, the
// rule (chooseGemmVariant) decides. Every variant computes the same products (within float rounding),
// so the choice changes speed only.
import type { GpuContext } from './device.js';
import { chooseGemmVariant, matmulProgram, type GemmVariant, type MatmulSpec } from './matmul.js';
import type { GpuRunner, Program } from './runner.js';

/** One product to measure: M x N x K, and whether the long operand of a matrix-vector product runs along K. */
export interface GemmShape { m: number; n: number; k: number; rowsAlongK: boolean }

/** Power-of-two buckets per dim, 1 apart ('v': it admits gemv), so nearby sizes share one measurement. */
const bucket = (x: number) => (x <= 1 ? 'v' : String(Math.ceil(Math.log2(x))));
export const shapeClass = (s: GemmShape) => `${bucket(s.m)}x${bucket(s.n)}x${bucket(s.k)}${s.rowsAlongK ? 'r' : ''}`;

/** Per adapter: measured winners, and classes seen but not yet measured (with their first shape). */
const measured = new Map<string, Map<string, GemmVariant>>();
const pending = new Map<string, Map<string, GemmShape>>();
const forAdapter = <V>(t: Map<string, Map<string, V>>, a: string) => { let m = t.get(a); if (!m) t.set(a, m = new Map()); return m; };

/** The variant for a product: the measured winner of its class on this adapter, else the rule's (noting
 *  the class for the next tuneGemms). */
export function gemmVariantFor(gpu: Pick<GpuContext, 'software' | 'adapterName'>, s: GemmShape): GemmVariant {
  const cls = shapeClass(s), won = measured.get(gpu.adapterName)?.get(cls);
  if (won) return won;
  const wait = forAdapter(pending, gpu.adapterName);
  if (!wait.has(cls)) wait.set(cls, s);
  return chooseGemmVariant(gpu, s.m, s.n, s.k, s.rowsAlongK);
}

/** The measured winners on an adapter, by shape class (for reports and tests). */
export const measuredVariants = (adapterName: string): ReadonlyMap<string, GemmVariant> => measured.get(adapterName) ?? new Map();

export interface TuneOptions {
  /** Classes measured per call at most (the rest wait for the next call). */
  maxClasses?: number;
  /** Timed dispatches per variant at most; fewer when one takes long. */
  maxReps?: number;
  /** GPU time a variant's timed dispatches aim to fill, in ms. */
  targetMs?: number;
}

/**
 * Times each applicable variant for every pending shape class on the runner's adapter and records the
 * fastest. Returns the classes whose winner differs from the rule (their pipelines are new). A class
 * whose measurement fails keeps the rule and is not retried.
 */
export async function tuneGemms(runner: GpuRunner, opts: TuneOptions = {}): Promise<string[]> {
  const gpu = runner.ctx, wait = forAdapter(pending, gpu.adapterName), won = forAdapter(measured, gpu.adapterName), changed: string[] = [];
  for (const [cls, s] of [...wait].slice(0, opts.maxClasses ?? 16)) {
    wait.delete(cls);
    const rule = chooseGemmVariant(gpu, s.m, s.n, s.k, s.rowsAlongK);
    try {
      const best = await fastest(runner, s, opts);
      won.set(cls, best);
      if (best !== rule) changed.push(cls);
    } catch {
      won.set(cls, rule); // measuring is impossible here (a compile or device failure): the rule stands
    }
  }
  return changed;
}

/** reg and shared always; gemv for matrix-vector products. */
export const applicableVariants = (s: GemmShape): GemmVariant[] => (s.m === 1 || s.n === 1 ? ['reg', 'shared', 'gemv'] : ['reg', 'shared']);

/** The canonical f32 product of a shape (no epilogue), with the layout rowsAlongK describes. */
function canonical(runner: GpuRunner, s: GemmShape, variant: GemmVariant): { p: Program; free: () => void } {
  const a = runner.alloc('float32', [s.m, s.k]), b = runner.alloc('float32', [s.k, s.n]);
  // A matrix-vector product's long operand runs along K when asked: A's rows (N = 1) or B's columns (M = 1).
  const bT = s.m === 1 && s.rowsAlongK;
  const spec: MatmulSpec = {
    a: { x: a, strides: [s.k, 1], batchStrides: [] }, b: { x: b, strides: bT ? [1, s.k] : [s.n, 1], batchStrides: [] },
    dims: { batch: 1, m: s.m, n: s.n, k: s.k }, batchShape: [], variant,
  };
  return { p: matmulProgram(runner.ctx, spec, [s.m, s.n]), free: () => { runner.release(a); runner.release(b); } };
}

async function fastest(runner: GpuRunner, s: GemmShape, opts: TuneOptions): Promise<GemmVariant> {
  let best: { v: GemmVariant; ms: number } | undefined;
  for (const v of applicableVariants(s)) {
    const { p, free } = canonical(runner, s, v);
    try {
      await runner.compile(p);
      // Software adapters compile the shader at its first dispatch: that one is not timed.
      await timeDispatches(runner, p, 1);
      const once = await timeDispatches(runner, p, 1);
      // A variant far slower than the best so far is out without more dispatches.
      if (best && once > 3 * best.ms) continue;
      // One dispatch that already fills the target is timed enough: more would only add seconds on slow adapters.
      const target = opts.targetMs ?? 20, reps = Math.min(opts.maxReps ?? 8, Math.floor(target / Math.max(once, 1e-3)));
      const ms = reps < 1 ? once : Math.min(once, await timeDispatches(runner, p, reps));
      if (!best || ms < best.ms) best = { v, ms };
    } finally { free(); }
  }
  return best!.v;
}

/** Mean time of `reps` dispatches of p: GPU time from timestamp queries where the adapter has them, else
 *  the wall time until the queue reports the work done. */
async function timeDispatches(runner: GpuRunner, p: Program, reps: number): Promise<number> {
  await runner.drain();
  runner.submit();
  await runner.device.queue.onSubmittedWorkDone();
  const timestamps = runner.startProfiling();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) runner.release(runner.run(p)[0]);
  await runner.drain();
  runner.submit();
  await runner.device.queue.onSubmittedWorkDone();
  const wall = (performance.now() - t0) / reps;
  if (!timestamps) return wall;
  const spans = await runner.stopProfiling();
  return spans.length ? spans.reduce((t, e) => t + e.ms, 0) / spans.length : wall;
}
