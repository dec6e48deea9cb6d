// The benchmark harness: engines run the same feeds, alternated in rounds in one process, after a warm-up
// by time; cold start and memory come from a fresh child process per engine (this file, run as a script).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { engineLabel, loadEngine, type Backend, type Engine, type EngineId, type EngineOptions, type Feeds } from './peers.js';

export interface Stats { n: number; median: number; p90: number; min: number; max: number; mean: number; perSecond: number }
/** From a fresh process: cold = create (session) + first run; import (module load) apart. Peak RSS, peak V8 heap + external. */
export interface Cold { importMs: number; createMs: number; firstRunMs: number; coldMs: number; peakRssMB: number; peakHeapMB: number }
export interface EngineResult { id: EngineId; label: string; stats?: Stats; cold?: Cold; maxAbsDiff?: number; error?: string }
export interface ModelResult { model: string; source?: string; inputs: Record<string, string>; rounds: number; engines: EngineResult[] }
export interface HarnessOptions extends EngineOptions {
  engines: EngineId[];
  warmupS: number;
  timeS: number;
  /** Children run node with --liftoff-only (the parent sets the same flag on itself). */
  liftoff: boolean;
  coldTimeoutS: number;
  log: (line: string) => void;
}

// ---- statistics ----

/** Quantile q of ascending `s` by linear interpolation between closest ranks. */
export function quantile(s: readonly number[], q: number): number {
  if (!s.length) return NaN;
  const i = (s.length - 1) * q, lo = Math.floor(i);
  return lo + 1 < s.length ? s[lo] + (s[lo + 1] - s[lo]) * (i - lo) : s[lo];
}

export function stats(samples: readonly number[]): Stats {
  const s = [...samples].sort((a, b) => a - b), mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { n: s.length, median: quantile(s, 0.5), p90: quantile(s, 0.9), min: s[0], max: s[s.length - 1], mean, perSecond: 1000 / mean };
}

// ---- timing ----

async function runFor(e: Pick<Engine, 'run'>, ms: number, out: number[]): Promise<void> {
  const end = performance.now() + ms;
  do {
    const t = performance.now();
    await e.run();
    out.push(performance.now() - t);
  } while (performance.now() < end);
}

/**
 * Warms each engine up for `warmupMs` (V8 tiers JS and WebAssembly up over the first seconds), then gives
 * each `timeMs` in rounds whose starting engine rotates, so drift (thermal, other load) hits all alike.
 * A round holds at least about three runs of the slowest engine, and there are at most ten.
 */
export async function alternate(engines: Pick<Engine, 'run'>[], timeMs: number, warmupMs: number): Promise<{ samples: number[][]; rounds: number }> {
  const typical: number[] = [];
  for (const e of engines) {
    const w: number[] = [];
    await runFor(e, warmupMs, w);
    typical.push(quantile(w.sort((a, b) => a - b), 0.5));
  }
  const rounds = Math.max(1, Math.min(10, Math.floor(timeMs / (3 * Math.max(...typical)))));
  const samples = engines.map((): number[] => []);
  for (const order of schedule(engines.length, rounds)) for (const i of order) await runFor(engines[i], timeMs / rounds, samples[i]);
  return { samples, rounds };
}

/** Engine order per round: round r starts with engine r (mod n), so no engine always runs first or after the same one. */
export const schedule = (n: number, rounds: number): number[][] =>
  Array.from({ length: rounds }, (_, r) => Array.from({ length: n }, (_, j) => (r + j) % n));

/** Largest elementwise |a - b| over the tensor outputs both engines return: a fast engine computing garbage shows here. */
export function maxAbsDiff(a: Record<string, unknown>, b: Record<string, unknown>): number {
  const data = (v: unknown) => (v as { data?: ArrayLike<unknown> } | null)?.data;
  let worst = 0;
  for (const k of Object.keys(a)) {
    const x = data(a[k]), y = data(b[k]);
    if (!x || !y) continue;
    if (x.length !== y.length) return Infinity;
    for (let i = 0; i < x.length; i++) {
      const p = typeof x[i] === 'string' ? x[i] : Number(x[i]), q = typeof y[i] === 'string' ? y[i] : Number(y[i]);
      if (p === q || (Number.isNaN(p) && Number.isNaN(q))) continue; // equal infinities, both NaN
      worst = Math.max(worst, typeof p === 'number' && typeof q === 'number' && !Number.isNaN(p - q) ? Math.abs(p - q) : Infinity);
    }
  }
  return worst;
}

// ---- one model ----

/** Cold starts first (each child alone on the machine), then the engines that started are timed side by side. */
export async function benchModel(name: string, model: Uint8Array, feeds: Feeds, o: HarnessOptions): Promise<ModelResult> {
  const dir = mkdtempSync(join(tmpdir(), 'lastmile-bench-'));
  const results: EngineResult[] = o.engines.map((id) => ({ id, label: engineLabel(id, o.backend) }));
  try {
    writeFileSync(join(dir, 'model.onnx'), model);
    writeFileSync(join(dir, 'feeds.json'), encodeFeeds(feeds));
    for (const r of results) {
      try { r.cold = await coldStart(r.id, dir, o); o.log(`${name}: ${r.label} cold start ${r.cold.coldMs.toFixed(1)} ms`); } catch (e) { fail(r, e, name, o); }
    }
    const live: [EngineResult, Engine][] = [];
    for (const r of results.filter((r) => !r.error)) {
      try { live.push([r, await (await loadEngine(r.id, o.backend))(model, feeds, o)]); } catch (e) { fail(r, e, name, o); }
    }
    const rounds = await timeEngines(name, live, o);
    return { model: name, inputs: describeFeeds(feeds), rounds, engines: results };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function fail(r: EngineResult, e: unknown, model: string, o: HarnessOptions) {
  r.error = String((e as Error)?.message ?? e).split('\n')[0].slice(0, 300);
  o.log(`${model}: ${r.label} skipped: ${r.error}`);
}

async function timeEngines(name: string, live: [EngineResult, Engine][], o: HarnessOptions): Promise<number> {
  try {
    // One run each first: it checks the engines agree, and an engine that cannot run drops out here.
    let ref: Record<string, unknown> | undefined;
    for (const [r, e] of [...live]) {
      try {
        const out = await e.run();
        ref ??= out;
        r.maxAbsDiff = maxAbsDiff(ref, out);
      } catch (err) {
        fail(r, err, name, o);
        live.splice(live.findIndex(([x]) => x === r), 1);
        await e.release().catch(() => undefined);
      }
    }
    if (!live.length) return 0;
    o.log(`${name}: warming up ${live.length} engine(s) for ${o.warmupS} s each, then ${o.timeS} s each, alternated`);
    const { samples, rounds } = await alternate(live.map(([, e]) => e), o.timeS * 1000, o.warmupS * 1000);
    live.forEach(([r], i) => { r.stats = stats(samples[i]); });
    return rounds;
  } finally {
    for (const [, e] of live) await e.release().catch(() => undefined);
  }
}

export function describeFeeds(feeds: Feeds): Record<string, string> {
  return Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, `${f.type}[${f.dims.join(',')}]`]));
}

// ---- cold start in a child process ----

/** Feeds as JSON: each typed array by its constructor name and base64 bytes (strings as a list). */
export function encodeFeeds(feeds: Feeds): string {
  return JSON.stringify(Object.fromEntries(Object.entries(feeds).map(([k, f]) => {
    if (!ArrayBuffer.isView(f.data)) return [k, { type: f.type, dims: f.dims, list: Array.from(f.data) }];
    const v = f.data as unknown as Uint8Array;
    return [k, { type: f.type, dims: f.dims, array: v.constructor.name, b64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') }];
  })));
}

export function decodeFeeds(text: string): Feeds {
  const raw = JSON.parse(text) as Record<string, { type: string; dims: number[]; list?: unknown[]; array?: string; b64?: string }>;
  return Object.fromEntries(Object.entries(raw).map(([k, f]) => {
    if (f.list) return [k, { type: f.type, dims: f.dims, data: f.list }];
    const bytes = Buffer.from(f.b64!, 'base64'), copy = new Uint8Array(bytes.length);
    copy.set(bytes); // an aligned buffer of its own: Node's Buffers may sit at any offset in a pool
    const C = (globalThis as unknown as Record<string, new (b: ArrayBuffer) => ArrayLike<unknown>>)[f.array!];
    return [k, { type: f.type, dims: f.dims, data: new C(copy.buffer) }];
  }));
}

const SCRIPT = fileURLToPath(import.meta.url);
const MARK = '@@lastmile-bench-cold ';

interface ChildSpec { id: EngineId | 'node'; dir: string; backend: Backend; threads: number; dims: Record<string, number> }

function spawnChild(spec: ChildSpec, o: Pick<HarnessOptions, 'liftoff' | 'coldTimeoutS'>): Promise<Cold> {
  const args = [...(o.liftoff ? ['--liftoff-only'] : []), SCRIPT, '--cold-child', JSON.stringify(spec)];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    // A peer that never finishes (a WebGPU driver that hangs, say) must not hang the benchmark.
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`cold start did not finish in ${o.coldTimeoutS} s`)); }, o.coldTimeoutS * 1000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith(MARK));
      if (code === 0 && line) resolve(JSON.parse(line.slice(MARK.length)));
      else reject(new Error(err.trim().split('\n').filter((l) => !/^\s*(at |Warning:)/.test(l)).slice(-1)[0] || `child exited with code ${code}`));
    });
  });
}

export const coldStart = (id: EngineId, dir: string, o: HarnessOptions) => spawnChild({ id, dir, backend: o.backend, threads: o.threads, dims: o.dims }, o);

/** Peak RSS of a child that loads nothing: what every cold-start RSS includes before any engine. */
export async function baselineRssMB(o: Pick<HarnessOptions, 'liftoff' | 'coldTimeoutS'>): Promise<number> {
  return (await spawnChild({ id: 'node', dir: '', backend: 'cpu', threads: 1, dims: {} }, o)).peakRssMB;
}

/** The child: times import, create and first run, then a few more runs so peak memory includes steady-state buffers. */
async function coldChild(spec: ChildSpec): Promise<Cold> {
  let peakHeap = 0;
  const sample = () => { const m = process.memoryUsage(); peakHeap = Math.max(peakHeap, m.heapUsed + m.external); };
  const cold: Cold = { importMs: 0, createMs: 0, firstRunMs: 0, coldMs: 0, peakRssMB: 0, peakHeapMB: 0 };
  if (spec.id !== 'node') {
    const model = readFileSync(join(spec.dir, 'model.onnx')), feeds = decodeFeeds(readFileSync(join(spec.dir, 'feeds.json'), 'utf8'));
    let t = performance.now();
    const factory = await loadEngine(spec.id, spec.backend);
    cold.importMs = performance.now() - t;
    t = performance.now();
    const engine = await factory(new Uint8Array(model), feeds, spec);
    cold.createMs = performance.now() - t;
    sample();
    t = performance.now();
    await engine.run();
    cold.firstRunMs = performance.now() - t;
    for (let i = 0; i < 3; i++) { sample(); await engine.run(); }
    sample();
    await engine.release();
  }
  sample();
  return { ...cold, coldMs: cold.createMs + cold.firstRunMs, peakRssMB: peakRssKB() / 1024, peakHeapMB: peakHeap / 2 ** 20 };
}

/**
 * Linux: VmHWM, the peak of this process image. maxRSS would be wrong there: Node spawns by fork then exec,
 * and the kernel carries the forked copy's peak (the parent's RSS) over the exec into maxRSS.
 */
function peakRssKB(): number {
  try { return Number(/VmHWM:\s*(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]); } catch { return process.resourceUsage().maxRSS; }
}

if (process.argv[1] === SCRIPT && process.argv[2] === '--cold-child') {
  coldChild(JSON.parse(process.argv[3])).then((c) => {
    process.stdout.write(`${MARK}${JSON.stringify(c)}\n`, () => process.exit(0)); // peers' worker threads would keep it alive
  }, (e) => { process.stderr.write(`${(e as Error)?.stack ?? e}\n`); process.exit(1); });
}
