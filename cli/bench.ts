// `lastmile bench [model] [--backend cpu|webgpu] [--threads N] [--inputs dir] [--dim name=N] [--compare ort-node,ort-web]
//                 [--time s] [--warmup s] [--json file] [--md file] [--liftoff] [--seed N] [--cold-timeout s]`
// Times Lastmile against onnxruntime-node and onnxruntime-web on the same inputs (see bench/harness.ts).
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { InputError } from '../engine/errors.js';
import type { TypeInfo } from '../engine/graph.js';
import { InferenceSession } from '../engine/session.js';
import { NdArray, toTensor } from '../engine/tensor.js';
import { Msg } from '../loaders/onnx-schema.js';
import { decodeValueFile } from '../loaders/tensor-proto.js';
import { baselineRssMB, benchModel, type HarnessOptions } from '../bench/harness.js';
import { ENGINE_IDS, type Backend, type EngineId, type Feeds } from '../bench/peers.js';
import { markdown, markdownTable, newReport, svg, type BenchReport } from '../bench/report.js';
import { flag, flags, numFlag, parseArgs, UsageError, type Parsed } from './args.js';
import { DEFAULT_MODEL_NAME, defaultModel } from './default-model.js';
import { concreteShape, randomTensor, readInputFile, rng } from './io.js';
import { checkBackend } from './run.js';

export const BENCH_BOOLEANS = ['liftoff'];

export async function benchCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, BENCH_BOOLEANS);
  if (p.positional.length > 1) throw new UsageError(`bench takes one model, got ${p.positional.length}: ${p.positional.join(' ')}`);
  const o = harnessOptions(p, ['ort-node', 'ort-web']);
  const path = p.positional[0];
  const bytes = path ? readModel(path) : defaultModel();
  const feeds = await prepareFeeds(bytes, o.dims, flag(p, 'inputs'), numFlag(p, 'seed', 0), o.log);
  const result = await benchModel(path ? basename(path) : DEFAULT_MODEL_NAME, bytes, feeds, o);
  const report = newReport(settingsOf(o), [result], await baselineRssMB(o).catch(() => undefined));
  writeOutputs(report, flag(p, 'json'), flag(p, 'md'));
  process.stdout.write(`${markdownTable(report)}\n`);
  // Peers' worker threads or a GPU device can keep Node alive once the work is done.
  setTimeout(() => process.exit(), 2000).unref();
  return result.engines[0].stats ? 0 : 1;
}

/** Options shared by `lastmile bench` and the suite (bench/suite.ts). */
export function harnessOptions(p: Parsed, defaultPeers: EngineId[]): HarnessOptions {
  const liftoff = p.flags.has('liftoff');
  // Must precede the first WebAssembly compile in this process; children get the node flag.
  if (liftoff) setFlagsFromString('--liftoff-only');
  const positive = (name: string, def: number) => {
    const v = numFlag(p, name, def);
    if (!(v > 0)) throw new UsageError(`--${name} must be positive, got ${v}`);
    return v;
  };
  const threads = positive('threads', 1);
  if (!Number.isInteger(threads)) throw new UsageError(`--threads must be an integer, got ${threads}`);
  return {
    engines: ['lastmile', ...comparePeers(flag(p, 'compare'), defaultPeers)], backend: checkBackend(flag(p, 'backend') ?? 'cpu') as Backend, threads,
    dims: Object.fromEntries(parseDims(flags(p, 'dim'))), warmupS: Math.max(0, numFlag(p, 'warmup', 2)), timeS: positive('time', 5), liftoff,
    coldTimeoutS: positive('cold-timeout', 120), log: (line) => process.stderr.write(`${line}\n`),
  };
}

function comparePeers(spec: string | undefined, def: EngineId[]): EngineId[] {
  if (spec === undefined) return def;
  const ids = spec.split(',').map((s) => s.trim()).filter((s) => s && s !== 'none');
  const peers = ENGINE_IDS.filter((id) => id !== 'lastmile');
  for (const id of ids) if (!(peers as string[]).includes(id)) throw new UsageError(`--compare: unknown engine '${id}' (known: ${peers.join(', ')}, or none)`);
  return [...new Set(ids)] as EngineId[];
}

function parseDims(specs: string[]): Map<string, number> {
  return new Map(specs.map((s) => {
    const m = /^([^=]+)=(\d+)$/.exec(s);
    if (!m) throw new UsageError(`--dim expects name=N with N a non-negative integer, got '${s}'`);
    return [m[1], Number(m[2])];
  }));
}

export const settingsOf = (o: HarnessOptions): BenchReport['settings'] =>
  ({ backend: o.backend, threads: o.threads, warmupS: o.warmupS, timeS: o.timeS, liftoff: o.liftoff, engines: o.engines, dims: o.dims });

/** JSON as is; Markdown with the SVG chart written beside it (same name, .svg) and linked. */
export function writeOutputs(report: BenchReport, jsonFile?: string, mdFile?: string) {
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify(report, null, 2) + '\n');
  if (!mdFile) return;
  const svgFile = mdFile.replace(/\.md$/i, '') + '.svg';
  writeFileSync(svgFile, svg(report));
  writeFileSync(mdFile, markdown(report, basename(svgFile)));
}

function readModel(path: string): Uint8Array {
  try { return readFileSync(path); } catch (e) { throw new UsageError(`cannot read model '${path}': ${(e as Error).message}`); }
}

/**
 * The feeds every engine gets: files from --inputs (an ONNX test_data_set folder of input_K.pb, or <input>.npy /
 * .json files), random values (seeded) for the rest, shaped by --dim and by the dims the given files fix.
 */
export async function prepareFeeds(bytes: Uint8Array, dims: Record<string, number>, dir: string | undefined, seed: number, log: (l: string) => void): Promise<Feeds> {
  const session = await InferenceSession.create(bytes, { freeDimensionOverrides: dims, logSeverityLevel: 3 });
  const meta = session.inputMetadata, known = new Map(Object.entries(dims));
  checkDimNames(meta.map((m) => m.typeInfo), known);
  const given = dir ? readInputDir(dir, meta) : new Map<string, NdArray>();
  for (const m of meta) learnDims(m.typeInfo, given.get(m.name), known);
  const next = rng(seed), defaults: string[] = [], feeds: Feeds = {};
  for (const m of meta) {
    let v = given.get(m.name);
    if (!v) {
      if (!m.isTensor || !m.type) throw new InputError(`input '${m.name}' is not a tensor of a declared type: give it in --inputs`);
      v = randomTensor(m.name, m.type, concreteShape(m.name, m.typeInfo?.kind === 'tensor' ? m.typeInfo.shape : undefined, known, defaults), next).value;
    }
    const t = toTensor(v);
    feeds[m.name] = { type: t.type, dims: t.dims, data: t.data as ArrayLike<unknown> };
  }
  if (defaults.length) log(`defaults used: ${defaults.join('; ')}`);
  await session.release();
  return feeds;
}

/** input_K.pb names its input in the TensorProto or by position K; <name>.npy / <name>.json by file name. */
function readInputDir(dir: string, meta: InferenceSession['inputMetadata']): Map<string, NdArray> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--inputs: '${dir}' is not a folder`);
  const out = new Map<string, NdArray>(), names = meta.map((m) => m.name);
  for (const f of readdirSync(dir).sort()) {
    const file = join(dir, f), pb = /^input_(\d+)\.pb$/.exec(f);
    let name: string | undefined, v;
    if (pb) {
      const bytes = readFileSync(file), proto = Msg.Tensor.decode(bytes) as { name?: string };
      name = proto.name && names.includes(proto.name) ? proto.name : names[Number(pb[1])];
      v = name && decodeValueFile(bytes, 'tensor', file);
    } else if (['.npy', '.json'].includes(extname(f)) && names.includes(basename(f, extname(f)))) {
      name = basename(f, extname(f));
      v = readInputFile(file, meta.find((m) => m.name === name)?.typeInfo, name);
    }
    if (name && v instanceof NdArray) out.set(name, v);
  }
  if (!out.size) throw new UsageError(`--inputs: no input_K.pb or <input>.npy/.json files for inputs ${names.join(', ')} in '${dir}'`);
  return out;
}

function learnDims(t: TypeInfo | undefined, v: NdArray | undefined, dims: Map<string, number>) {
  if (t?.kind !== 'tensor' || !v || t.shape?.length !== v.shape.length) return;
  t.shape.forEach((d, i) => { if (typeof d === 'string' && !dims.has(d)) dims.set(d, v.shape[i]); });
}

/** A --dim naming no symbolic dim is almost always a typo: say which names exist. */
function checkDimNames(types: (TypeInfo | undefined)[], dims: Map<string, number>) {
  const names = new Set(types.flatMap((t) => (t?.kind === 'tensor' ? t.shape ?? [] : []).filter((d): d is string => typeof d === 'string')));
  for (const k of dims.keys()) if (!names.has(k)) throw new UsageError(`--dim ${k}: no input has a dim named '${k}' (symbolic dims: ${[...names].join(', ') || 'none'})`);
}
