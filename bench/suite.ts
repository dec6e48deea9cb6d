// `npm run bench [-- --time s --warmup s --only cnn,lstm --backend cpu|webgpu --threads N --compare ... --liftoff --out dir]`:
// the fixed suite of bench/models.ts against every peer; writes <out>/<date>-<backend>-<N>t.json, .md and .svg
// (default out: bench/results/ in the repository).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_BOOLEANS, harnessOptions, settingsOf, writeOutputs } from '../cli/bench.js';
import { flag, parseArgs, UsageError } from '../cli/args.js';
import { baselineRssMB, benchModel, type ModelResult } from './harness.js';
import { SUITE } from './models.js';
import { markdownTable, newReport } from './report.js';

const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url)); // from dist/bench/

async function main(argv: string[]): Promise<number> {
  const p = parseArgs(argv, BENCH_BOOLEANS);
  const o = harnessOptions(p, ['ort-node', 'ort-web']);
  const only = flag(p, 'only')?.split(',').map((s) => s.trim());
  const unknown = only?.filter((n) => !SUITE.some((m) => m.name === n));
  if (unknown?.length) throw new UsageError(`--only: unknown model(s) ${unknown.join(', ')} (suite: ${SUITE.map((m) => m.name).join(', ')})`);
  const results: ModelResult[] = [], skipped: string[] = [];
  for (const m of SUITE.filter((m) => !only || only.includes(m.name))) {
    const loaded = m.load();
    if (typeof loaded === 'string') { skipped.push(`${m.name}: ${loaded}`); o.log(`${m.name}: skipped: ${loaded}`); continue; }
    results.push({ ...(await benchModel(m.name, loaded.bytes, loaded.feeds, o)), source: m.source });
  }
  const report = newReport(settingsOf(o), results, await baselineRssMB(o).catch(() => undefined));
  report.notes.push(...skipped.map((s) => `Not run: ${s}.`));
  // One file set per day, backend and thread count, so runs at 1 and 2 threads sit side by side.
  const dir = flag(p, 'out') ?? RESULTS, stem = join(dir, `${report.date.slice(0, 10)}-${o.backend}-${o.threads}t`);
  mkdirSync(dir, { recursive: true });
  writeOutputs(report, `${stem}.json`, `${stem}.md`);
  process.stdout.write(`${markdownTable(report)}\n\nwrote ${stem}.json, ${stem}.md, ${stem}.svg\n`);
  return results.every((r) => r.engines[0].stats) ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  setTimeout(() => process.exit(), 2000).unref(); // peers' worker threads or a GPU device can keep Node alive
}, (e) => {
  process.stderr.write(`bench: ${e instanceof UsageError ? e.message : (e as Error)?.stack ?? e}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
