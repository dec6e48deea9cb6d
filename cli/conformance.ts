// `lastmile conformance <path>... [--backend cpu] [--json file] [--md file] [--filter regex] [--rtol x] [--atol y]
//                     [--expectations file] [--update]`
import { writeFileSync, existsSync } from 'node:fs';
import { basename } from 'node:path';
import { discoverCases, runCase, type CaseResult } from '../conformance/runner.js';
import { drift, readExpectations, writeExpectations } from '../conformance/expectations.js';
import { opTable } from '../conformance/table.js';
import { DEFAULT_TOL } from '../conformance/compare.js';
import { acquireGpu, releaseGpu } from '../kernels/webgpu/device.js';
import { flag, numFlag, parseArgs, UsageError } from './args.js';

export const DEFAULT_SUITE = process.env.LASTMILE_ONNX_TESTS ?? '../shared/onnx-node-tests';

export async function conformanceCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, ['update', 'quiet']);
  const paths = p.positional.length ? p.positional : [DEFAULT_SUITE];
  const backend = flag(p, 'backend') ?? 'cpu';
  const filter = flag(p, 'filter') ? new RegExp(flag(p, 'filter')!) : undefined;
  const tol = { rtol: numFlag(p, 'rtol', DEFAULT_TOL.rtol), atol: numFlag(p, 'atol', DEFAULT_TOL.atol) };
  const expPath = flag(p, 'expectations');
  const expectations = expPath && existsSync(expPath) ? readExpectations(expPath) : undefined;
  if (expPath && !expectations && !p.flags.has('update')) throw new UsageError(`expectations file '${expPath}' not found (use --update to create it)`);
  const quiet = p.flags.has('quiet');

  let dirs: string[];
  try { dirs = discoverCases(paths); } catch (e) {
    throw new UsageError(`${(e as Error).message}. Get the ONNX node tests (onnx/backend/test/data/node in the onnx repository) and pass their folder, or set LASTMILE_ONNX_TESTS.`);
  }
  dirs = dirs.filter((d) => !filter || filter.test(basename(d)));
  const byName = new Map(dirs.map((d) => [basename(d), d]));
  // Hold the GPU for the whole run: sessions then share one device and its pipeline cache.
  const device = backend === 'webgpu' ? await acquireGpu() : undefined;
  const results: CaseResult[] = [];
  for (const dir of dirs) {
    const name = basename(dir);
    const exp = expectations?.cases[name];
    const r: CaseResult = exp?.status === 'skipped'
      ? { name, status: 'skipped', ms: 0, message: exp.reason ?? '' }
      : await runCase(dir, { backend, tol });
    results.push(r);
    if (!quiet && r.status !== 'passed' && r.status !== 'skipped') console.log(`${r.status.toUpperCase().padEnd(7)} ${name}: ${r.message}`);
  }
  if (device) releaseGpu(device);
  const count = (s: string) => results.filter((r) => r.status === s).length;
  const summary = { backend, total: results.length, passed: count('passed'), failed: count('failed'), errored: count('errored'), skipped: count('skipped') };
  if (flag(p, 'json')) writeFileSync(flag(p, 'json')!, JSON.stringify({ ...summary, cases: results }, null, 1) + '\n');
  if (flag(p, 'md')) writeFileSync(flag(p, 'md')!, opTable(results, byName, backend));

  let code = 0;
  if (expPath && p.flags.has('update')) {
    writeExpectations(expPath, backend, results, expectations);
    console.log(`wrote ${expPath}`);
  } else if (expectations) {
    const d = drift(expectations, results);
    for (const x of d) console.log(`DRIFT   ${x.name}: expected ${x.expected}, got ${x.actual}${x.message ? ` (${x.message})` : ''}`);
    if (d.length) { console.log(`${d.length} cases drifted from ${expPath}`); code = 1; }
    else console.log(`no drift from ${expPath}`);
  }
  const gpu = results.filter((r) => r.gpu);
  if (gpu.length) {
    const fb = new Map<string, number>();
    for (const r of gpu) for (const op of r.gpu!.fallbacks) fb.set(op, (fb.get(op) ?? 0) + 1);
    const nodes = gpu.reduce((a, r) => a + r.gpu!.nodes, 0), total = gpu.reduce((a, r) => a + r.gpu!.total, 0);
    if (device) console.log(`WebGPU adapter: ${device.adapterName}${device.compat ? ' (compatibility mode)' : ''}`);
    console.log(`WebGPU: ${nodes} of ${total} nodes ran on the GPU; ${gpu.filter((r) => r.gpu!.fallbacks.length === 0).length} of ${gpu.length} cases had no CPU fallback`);
    if (fb.size) console.log(`CPU fallbacks (op: cases): ${[...fb].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`).join(', ')}`);
  }
  const slow = [...results].sort((a, b) => b.ms - a.ms).slice(0, 3).map((r) => `${r.name} ${r.ms} ms`).join(', ');
  console.log(`${summary.total} cases on ${backend}: ${summary.passed} passed, ${summary.failed} failed, ${summary.errored} errored, ${summary.skipped} skipped (${(100 * summary.passed / Math.max(1, summary.total)).toFixed(1)}%); slowest: ${slow}`);
  console.log(`${summary.passed} passed, ${summary.failed + summary.errored} failed`);
  return code;
}
