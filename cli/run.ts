// `lastmile run [model] [--input name=file ...] [--backend cpu|webgpu] [--dim name=N] [--out dir] [--json] [--seed N] [--profile] [--trace file]`
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../engine/errors.js';
import type { TypeInfo } from '../engine/graph.js';
import type { Step } from '../engine/plan.js';
import { InferenceSession, type ValueMetadata } from '../engine/session.js';
import { NdArray, Opt, Seq, type Value } from '../engine/tensor.js';
import { flag, flags, numFlag, parseArgs, UsageError } from './args.js';
import { DEFAULT_MODEL_NAME, defaultModel } from './default-model.js';
import { concreteShape, fromOutput, npyWidens, npyWritable, randomTensor, readInputFile, rng, tensorJson, toFeed, writeNpy } from './io.js';

export const BACKENDS = ['cpu', 'webgpu'];
type Output = NdArray | NdArray[] | null;
interface InputNote { dtype: string; dims: number[] | string; source: string }

export async function runCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, ['json', 'profile']);
  let t = performance.now();
  if (p.positional.length > 1) throw new UsageError(`run takes one model, got ${p.positional.length}: ${p.positional.join(' ')}`);
  const modelPath = p.positional[0];
  const backend = checkBackend(flag(p, 'backend') ?? 'cpu');
  const dims = parseDims(flags(p, 'dim'));

  t = performance.now();
  const session = await InferenceSession.create(modelPath ?? defaultModel(), { executionProviders: [backend], freeDimensionOverrides: Object.fromEntries(dims) });
  const loadMs = performance.now() - t;
  checkDimNames(session, dims);
  const { feeds, inputs, defaults } = prepareFeeds(session, flags(p, 'input'), dims, numFlag(p, 'seed', 0));

  // Per op type: CPU wall time of CPU-placed nodes (onStep) and GPU time of each dispatch (timestamp-query).
  const profile = new Map<string, { runs: number; ms: number }>();
  const add = (k: string, ms: number) => { const e = profile.get(k) ?? { runs: 0, ms: 0 }; profile.set(k, { runs: e.runs + 1, ms: e.ms + ms }); };
  const traceFile = flag(p, 'trace'), profiling = p.flags.has('profile') || traceFile !== undefined;
  const trace: { name: string; cat: string; ph: 'X'; ts: number; dur: number; pid: number; tid: string }[] = [];
  const onStep = (s: Step, ms: number) => {
    if (session.placements.get(s)?.device === 'gpu') return; // its GPU time comes from the timestamps
    const k = s.node.domain ? `${s.node.domain}.${s.node.opType}` : s.node.opType;
    add(k, ms);
    trace.push({ name: `${k} ${s.node.name}`, cat: 'cpu', ph: 'X', ts: 1000 * (performance.now() - ms - t), dur: 1000 * ms, pid: 1, tid: 'cpu' });
  };
  let results, runMs = 0;
  try {
    const gpuTimed = profiling && backend === 'webgpu';
    // Time a steady-state run: compile every pipeline first.
    if (gpuTimed) { await session.warmup(); session.startProfiling(); }
    t = performance.now();
    results = await session.run(Object.fromEntries([...feeds].map(([k, v]) => [k, toFeed(v)])), undefined, profiling ? { onStep } : undefined);
    runMs = performance.now() - t;
    for (const e of gpuTimed ? await session.endProfiling() : []) {
      const [op, node] = e.label.split('|');
      add(`${op} (gpu)`, e.ms);
      trace.push({ name: `${op} ${node}`, cat: 'gpu', ph: 'X', ts: 1000 * e.startMs, dur: 1000 * e.ms, pid: 1, tid: 'gpu' });
    }
  } finally {
    await session.release(); // a WebGPU session holds the device, which would keep Node alive
  }
  // Chrome's trace event format: opens in Perfetto (ui.perfetto.dev) and chrome://tracing.
  if (traceFile) writeFileSync(traceFile, JSON.stringify({ traceEvents: trace, displayTimeUnit: 'ms' }));
  const gpuUse = [...session.placements.values()];
  const outputs = Object.entries(results).map(([k, o]) => [k, fromOutput(o)] as [string, Output]);
  const written = flag(p, 'out') ? writeOutputs(flag(p, 'out')!, outputs) : [];
  const prof = [...profile].sort((a, b) => b[1].ms - a[1].ms).map(([op, e]) => ({ op, runs: e.runs, ms: round(e.ms) }));

  if (p.flags.has('json')) {
    const json = {
      model: modelPath ?? DEFAULT_MODEL_NAME, backend, loadMs: round(loadMs), runMs: round(runMs), inputs, defaults,
      outputs: Object.fromEntries(outputs.map(([k, o]) => [k, o === null ? null : Array.isArray(o) ? o.map(tensorJson) : tensorJson(o)])),
      ...(written.length ? { written } : {}), ...(p.flags.has('profile') ? { profile: prof } : {}),
    };
    process.stdout.write(JSON.stringify(json) + '\n');
    return 0;
  }
  const gpuNote = gpuUse.length ? ` (${gpuUse.filter((x) => x.device === 'gpu').length} of ${gpuUse.length} nodes on the GPU)` : '';
  const lines = [`model    ${modelPath ?? `${DEFAULT_MODEL_NAME} (no model given)`}`, `backend  ${backend}${gpuNote}`, 'inputs'];
  for (const [k, i] of Object.entries(inputs)) lines.push(`  ${k}  ${i.dtype} ${fmtDims(i.dims)}  ${i.source}`);
  if (defaults.length) lines.push(`defaults used: ${defaults.join('; ')}`);
  lines.push('outputs');
  for (const [k, o] of outputs) lines.push(...describeOutput(k, o));
  lines.push(...written.map((w) => `wrote ${w}`));
  if (prof.length) lines.push(...profileLines(prof));
  lines.push(`time     load ${round(loadMs)} ms, run ${round(runMs)} ms`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

export function checkBackend(b: string): string {
  if (!BACKENDS.includes(b)) throw new UsageError(`backend '${b}' is not available in this build (available: ${BACKENDS.join(', ')})`);
  return b;
}

function parseDims(specs: string[]): Map<string, number> {
  return new Map(specs.map((s) => {
    const m = /^([^=]+)=(\d+)$/.exec(s);
    if (!m) throw new UsageError(`--dim expects name=N with N a non-negative integer, got '${s}'`);
    return [m[1], Number(m[2])];
  }));
}

/** A --dim that names no symbolic input dim is almost always a typo: say which names exist. */
function checkDimNames(session: InferenceSession, dims: Map<string, number>) {
  const names = new Set<string>();
  const visit = (t: TypeInfo | undefined): void => {
    if (t?.kind === 'tensor') for (const d of t.shape ?? []) if (typeof d === 'string') names.add(d);
    if (t?.kind === 'sequence' || t?.kind === 'optional') visit(t.elem);
  };
  session.inputMetadata.forEach((m) => visit(m.typeInfo));
  for (const k of dims.keys()) if (!names.has(k)) throw new UsageError(`--dim ${k}: no input has a dim named '${k}' (symbolic dims: ${[...names].join(', ') || 'none'})`);
}

/** Reads the given input files, learns symbolic dims from them, and makes random values for the rest. */
function prepareFeeds(session: InferenceSession, specs: string[], dims: Map<string, number>, seed: number) {
  const meta = new Map(session.inputMetadata.map((m) => [m.name, m]));
  const feeds = new Map<string, Value>(), inputs: Record<string, InputNote> = {}, defaults: string[] = [];
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const [name, file] = eq > 0 ? [spec.slice(0, eq), spec.slice(eq + 1)] : session.inputNames.length === 1 ? [session.inputNames[0], spec] : [undefined, spec];
    if (name === undefined) throw new UsageError(`--input expects name=file; the model's inputs are: ${session.inputNames.join(', ')}`);
    if (!meta.has(name)) throw new UsageError(`--input ${name}: the model has no input '${name}'; its inputs are: ${session.inputNames.join(', ') || '(none)'}`);
    const v = readInputFile(file, meta.get(name)!.typeInfo, name);
    feeds.set(name, v);
    inputs[name] = { ...summary(v), source: file };
    learnDims(meta.get(name)!.typeInfo, v, dims);
  }
  const next = rng(seed);
  for (const m of session.inputMetadata) if (!feeds.has(m.name)) {
    const { value, range } = randomValue(m, m.typeInfo, dims, defaults, next);
    feeds.set(m.name, value);
    inputs[m.name] = { ...summary(value), source: `random (seed ${seed}): ${range}` };
  }
  return { feeds, inputs, defaults };
}

function learnDims(t: TypeInfo | undefined, v: Value, dims: Map<string, number>) {
  if (t?.kind !== 'tensor' || !(v instanceof NdArray) || t.shape?.length !== v.shape.length) return;
  t.shape.forEach((d, i) => { if (typeof d === 'string' && !dims.has(d)) dims.set(d, v.shape[i]); });
}

function randomValue(m: ValueMetadata, t: TypeInfo | undefined, dims: Map<string, number>, defaults: string[], next: () => number): { value: Value; range: string } {
  const give = (why: string): never => { throw new InputError(`input '${m.name}': ${why}, so no random value can be made; give it with --input ${m.name}=file`); };
  if (!t) return give('the model declares no type');
  if (t.kind === 'sequence' || t.kind === 'optional') {
    const inner = randomValue(m, t.elem, dims, defaults, next);
    if (!(inner.value instanceof NdArray)) return give(`nested ${t.kind} types are not generated`);
    return t.kind === 'sequence'
      ? { value: new Seq([inner.value], inner.value.dtype), range: `a sequence of 1 tensor, ${inner.range}` }
      : { value: new Opt(inner.value), range: inner.range };
  }
  if (t.kind !== 'tensor') return give(`its type is ${t.kind}`);
  if (!t.dtype) return give('the model declares no dtype');
  return randomTensor(m.name, t.dtype, concreteShape(m.name, t.shape, dims, defaults), next);
}

function summary(v: Value): Omit<InputNote, 'source'> {
  if (v instanceof NdArray) return { dtype: v.dtype, dims: [...v.shape] };
  if (v instanceof Seq) return { dtype: `sequence<${v.elemType ?? '?'}>`, dims: `${v.items.length} items` };
  return v.value === null ? { dtype: 'optional', dims: 'none' } : summary(v.value);
}

function writeOutputs(dir: string, outputs: [string, Output][]): string[] {
  mkdirSync(dir, { recursive: true });
  const safe = (s: string) => s.replace(/[^\w.-]/g, '_');
  const written: string[] = [];
  const write = (base: string, a: NdArray) => {
    // Strings have no .npy form we write; they go out in the JSON input format instead.
    const file = join(dir, `${base}.${npyWritable(a.dtype) ? 'npy' : 'json'}`);
    writeFileSync(file, npyWritable(a.dtype) ? writeNpy(a) : JSON.stringify(tensorJson(a)) + '\n');
    written.push(file + (npyWidens(a.dtype) ? ` (${a.dtype} widened for numpy)` : ''));
  };
  for (const [k, o] of outputs) {
    if (Array.isArray(o)) o.forEach((a, i) => write(`${safe(k)}_${i}`, a));
    else if (o) write(safe(k), o);
  }
  return written;
}

function describeOutput(name: string, o: Output): string[] {
  if (o === null) return [`  ${name}  optional: none`];
  if (!Array.isArray(o)) return [`  ${name}  ${o.dtype} ${fmtDims(o.shape)}  ${preview(o)}`];
  return [`  ${name}  sequence of ${o.length} tensors`, ...o.map((a, i) => `    [${i}] ${a.dtype} ${fmtDims(a.shape)}  ${preview(a)}`)];
}

const PREVIEW = 8;
function preview(a: NdArray): string {
  const vals = Array.from((a.data as ArrayLike<unknown>), (v) => v).slice(0, PREVIEW * (a.dtype.startsWith('complex') ? 2 : 1)).map((v) => fmtValue(v, a.dtype));
  return vals.join(' ') + (a.size > PREVIEW ? ` ... (${a.size} values)` : '');
}

const fmtValue = (v: unknown, dtype: string) =>
  typeof v === 'string' ? JSON.stringify(v) : dtype === 'bool' ? String(!!v) : typeof v === 'number' ? String(Number(v.toPrecision(5))) : String(v);
const fmtDims = (d: readonly number[] | string) => (typeof d === 'string' ? d : `[${d.join(', ')}]`);
const round = (ms: number) => Math.round(ms * 100) / 100;

function profileLines(prof: { op: string; runs: number; ms: number }[]): string[] {
  const total = prof.reduce((s, e) => s + e.ms, 0) || 1, w = Math.max(...prof.map((e) => e.op.length));
  return ['profile  (per op type: runs, summed time, share; control-flow ops include their bodies)',
    ...prof.map((e) => `  ${e.op.padEnd(w)}  ${String(e.runs).padStart(4)}  ${e.ms.toFixed(2).padStart(9)} ms  ${(100 * e.ms / total).toFixed(1).padStart(5)}%`)];
}
