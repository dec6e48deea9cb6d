// `lastmile inspect <model> [--backend cpu|webgpu] [--json]`: what a model is made of and what each
// backend can run. Walks the loaded graph without creating a session, so models with ops we lack still work.
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { rawByteSize } from '../engine/dtype.js';
import { ModelLoadError } from '../engine/errors.js';
import type { Dim, Graph, Model, Node, TypeInfo } from '../engine/graph.js';
import { inlineFunctions } from '../engine/passes/inline-functions.js';
import { describeType } from '../engine/session.js';
import { NdArray } from '../engine/tensor.js';
import { loadModel } from '../loaders/onnx.js';
import '../ops/index.js';
import { lookup, lookupGpu } from '../ops/registry.js';
import '../ops/webgpu/index.js';
import { CPU_BY_DESIGN, place } from '../engine/placement.js';
import { compile } from '../engine/plan.js';
import { inferTypes } from '../engine/infer.js';
import { flag, parseArgs, UsageError } from './args.js';

const BACKENDS = ['cpu', 'webgpu'] as const;
type Backend = (typeof BACKENDS)[number];

export async function inspectCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, ['json']);
  if (p.positional.length !== 1) throw new UsageError('inspect takes exactly one model file');
  const file = p.positional[0];
  const b = flag(p, 'backend');
  if (b && !(BACKENDS as readonly string[]).includes(b)) throw new UsageError(`unknown backend '${b}' (known: ${BACKENDS.join(', ')})`);
  const backends = b ? [b as Backend] : [...BACKENDS];
  let bytes: Uint8Array;
  try { bytes = readFileSync(file); } catch (e) { throw new ModelLoadError(`cannot read model file '${file}': ${(e as Error).message}`); }
  const model = loadModel(bytes, { baseDir: dirname(file), what: file });
  const report = { ...inspectModel(model, file, bytes.length, backends), ...(b === 'webgpu' ? { placement: gpuPlacement(model) } : {}) };
  process.stdout.write(p.flags.has('json') ? JSON.stringify(report, null, 1) + '\n' : render(report) + renderPlacement(report.placement));
  return 0;
}

interface OpRow { op: string; domain: string; opset: number; count: number; support: Partial<Record<Backend, string>> }

export function inspectModel(model: Model, file: string, size: number, backends: Backend[]) {
  const ops = new Map<string, OpRow>();
  let nodes = 0, params = 0, paramBytes = 0, initializers = 0;
  const walk = (g: Graph) => {
    for (const v of g.initializers.values()) if (v instanceof NdArray) {
      initializers++; params += v.size;
      paramBytes += v.dtype === 'string' ? (v.data as string[]).reduce((s, x) => s + Buffer.byteLength(x), 0) : Math.ceil(v.size * rawByteSize(v.dtype));
    }
    // Function calls count as the ops they expand to: that is what runs.
    for (const n of inlineFunctions(g.nodes, model)) {
      nodes++;
      const k = `${n.domain}:${n.opType}`;
      const row = ops.get(k) ?? { op: n.opType, domain: n.domain, opset: model.opsets.get(n.domain) ?? 0, count: 0, support: supportOf(n, model, backends) };
      row.count++;
      ops.set(k, row);
      for (const sub of subgraphs(n)) walk(sub);
    }
  };
  walk(model.graph);
  const rows = [...ops.values()].sort((a, b) => b.count - a.count || a.op.localeCompare(b.op));
  const inits = model.graph.initializers;
  const io = (vs: Graph['inputs']) => vs.filter((v) => !inits.has(v.name)).map((v) => ({ name: v.name, ...typeFields(v.type) }));
  return {
    file, bytes: size, irVersion: model.irVersion, producer: model.producer,
    opsets: Object.fromEntries([...model.opsets].map(([d, v]) => [d || 'ai.onnx', v])),
    inputs: io(model.graph.inputs), outputs: io(model.graph.outputs),
    nodes, parameters: { count: params, bytes: paramBytes, initializers },
    ops: rows.map((r) => ({ op: r.domain ? `${r.domain}.${r.op}` : r.op, opset: r.opset, count: r.count, support: r.support })),
    unsupported: Object.fromEntries(backends.map((be) => [be, rows.filter((r) => !['yes', 'cpu by design'].includes(r.support[be]!)).map((r) => (r.domain ? `${r.domain}.${r.op}` : r.op))])),
  };
}

function supportOf(n: Node, model: Model, backends: Backend[]): Partial<Record<Backend, string>> {
  const opset = model.opsets.get(n.domain);
  const cpu = opset === undefined ? `no (domain '${n.domain}' not imported)` : lookup(n.domain, n.opType, opset) ? 'yes' : 'no';
  // An op the CPU lacks runs nowhere: the GPU column then says so too.
  const gpu = cpu !== 'yes' ? cpu : lookupGpu(n.domain, n.opType, opset!) ? 'yes' : CPU_BY_DESIGN.has(n.opType) ? 'cpu by design' : 'no (runs on the CPU)';
  return Object.fromEntries(backends.map((b) => [b, b === 'cpu' ? cpu : gpu]));
}

function subgraphs(n: Node): Graph[] {
  return [...n.attrs.values()].flatMap((a) => (a.type === 'graph' ? [a.value as Graph] : a.type === 'graphs' ? (a.value as Graph[]) : []));
}

/** Tensors as dtype and shape (symbolic dims kept, unknown ones null); other kinds described in words. */
function typeFields(t: TypeInfo | undefined): { dtype: string | null; shape: Dim[] | null } | { type: string } {
  return t?.kind === 'tensor' ? { dtype: t.dtype ?? null, shape: t.shape ?? null } : { type: describeType(t) };
}

type Report = ReturnType<typeof inspectModel>;

function render(r: Report): string {
  const kib = (n: number) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`);
  const io = (v: Report['inputs'][number]) => `  ${v.name}  ${'type' in v ? v.type : `${v.dtype ?? '?'} ${v.shape ? `[${v.shape.map((d) => d ?? '?').join(', ')}]` : '(shape unknown)'}`}`;
  const backends = Object.keys(r.unsupported) as Backend[];
  const table = [['op', 'opset', 'count', ...backends], ...r.ops.map((o) => [o.op, String(o.opset), String(o.count), ...backends.map((b) => o.support[b]!)])];
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)));
  const lines = [
    `file        ${r.file} (${kib(r.bytes)})`,
    `ir version  ${r.irVersion}`,
    `producer    ${r.producer || '(none)'}`,
    `opsets      ${Object.entries(r.opsets).map(([d, v]) => `${d} ${v}`).join(', ')}`,
    'inputs', ...r.inputs.map(io),
    'outputs', ...r.outputs.map(io),
    `parameters  ${r.parameters.count.toLocaleString('en-US')} in ${r.parameters.initializers} initializers (${kib(r.parameters.bytes)})`,
    `ops         ${r.nodes} nodes, ${r.ops.length} op types (subgraphs included)`,
    ...table.map((row) => '  ' + row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()),
    ...backends.map((b) => r.unsupported[b].length
      ? `${b}: ${b === 'webgpu' ? 'no GPU kernel (these run on the CPU)' : 'UNSUPPORTED ops'}: ${r.unsupported[b].join(', ')}` : `${b}: every op supported`),
  ];
  return lines.join('\n') + '\n';
}

/** Per node: where a WebGPU session runs it and why, from inferred dtypes (float16 assumed GPU-able:
 *  on adapters without shader-f16 those nodes run on the CPU). Needs every op to exist on the CPU. */
function gpuPlacement(model: Model): { node: string; op: string; device: string; reason: string }[] | string {
  try {
    const plan = compile(model.graph, { opsets: model.opsets, functions: model.functions });
    const types = inferTypes(model, plan);
    return plan.steps.map((s) => {
      const dtypes = s.node.inputs.map((n) => { const t = types.get(n); return t?.kind === 'tensor' ? t.dtype : t ? 'nontensor' as const : undefined; });
      const p = place(s, dtypes, true);
      return { node: s.node.name, op: s.node.opType, device: p.fallback ? 'cpu (fallback)' : p.device, reason: p.reason };
    });
  } catch (e) {
    return `no placement: ${(e as Error).message}`;
  }
}

function renderPlacement(p: ReturnType<typeof gpuPlacement> | undefined): string {
  if (p === undefined) return '';
  if (typeof p === 'string') return `placement   ${p}\n`;
  const w = [Math.max(4, ...p.map((x) => x.node.length)), Math.max(2, ...p.map((x) => x.op.length)), 14];
  const row = (c: string[]) => '  ' + c.map((x, i) => (i < 3 ? x.padEnd(w[i]) : x)).join('  ');
  const fallbacks = p.filter((x) => x.device === 'cpu (fallback)').length;
  return ['placement (webgpu)', row(['node', 'op', 'device', 'why']), ...p.map((x) => row([x.node, x.op, x.device, x.reason])),
    `${p.filter((x) => x.device === 'gpu').length} of ${p.length} nodes on the GPU, ${fallbacks} compute node(s) falling back to the CPU`].join('\n') + '\n';
}
