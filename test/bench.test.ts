// The benchmark harness: statistics, alternation, report rendering, and `lastmile bench` end to end on a tiny
// model (cpu, 0.2 s). Nothing here depends on timing values, only on the shape of the results.
import { execSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from './helpers/build.js';
import { alternate, decodeFeeds, schedule, encodeFeeds, maxAbsDiff, quantile, stats, type ModelResult } from '../bench/harness.js';
import { fmt, markdown, markdownTable, ratio, svg, type BenchReport } from '../bench/report.js';
import { f32, GraphBuilder, tensorProto } from '../loaders/builder.js';
import { Msg } from '../loaders/onnx-schema.js';

let dir: string;

describe('statistics', () => {
  it('interpolates quantiles between ranks', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([10], 0.9)).toBe(10);
    expect(quantile([0, 10], 0.9)).toBeCloseTo(9);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it('summarises samples in any order', () => {
    const s = stats([4, 1, 3, 2, 10]);
    expect(s).toMatchObject({ n: 5, median: 3, min: 1, max: 10, mean: 4, perSecond: 250 });
    expect(s.p90).toBeCloseTo(7.6);
  });

  it('compares outputs elementwise, tolerating matching NaN and infinities', () => {
    const t = (...v: number[]) => ({ data: Float32Array.from(v) });
    expect(maxAbsDiff({ y: t(1, 2, NaN, Infinity) }, { y: t(1, 2.5, NaN, Infinity) })).toBe(0.5);
    expect(maxAbsDiff({ y: t(1) }, { y: t(NaN) })).toBe(Infinity);
    expect(maxAbsDiff({ y: t(1, 2) }, { y: t(1) })).toBe(Infinity);
    expect(maxAbsDiff({ y: { data: BigInt64Array.of(3n) }, z: null }, { y: { data: BigInt64Array.of(5n) }, z: null })).toBe(2);
  });

  it('rotates the engine order from round to round', () => {
    expect(schedule(3, 4)).toEqual([[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 1, 2]]);
  });

  it('warms up, then gives every engine samples in each round', async () => {
    const runs = { a: 0, b: 0 };
    const engine = (name: 'a' | 'b') => ({ run: async () => { runs[name]++; await new Promise((r) => setTimeout(r, 1)); return {}; } });
    const { samples, rounds } = await alternate([engine('a'), engine('b')], 60, 5);
    expect(rounds).toBeGreaterThanOrEqual(1);
    expect(rounds).toBeLessThanOrEqual(10);
    samples.forEach((s, i) => {
      expect(s.length).toBeGreaterThanOrEqual(rounds);
      expect(runs[i ? 'b' : 'a']).toBeGreaterThan(s.length); // warm-up runs are not samples
    });
  });

  it('round-trips feeds for the cold-start child', () => {
    const feeds = { x: { type: 'float32', dims: [2], data: Float32Array.of(1.5, -2) }, n: { type: 'int64', dims: [], data: BigInt64Array.of(7n) }, s: { type: 'string', dims: [1], data: ['hi'] } };
    const back = decodeFeeds(encodeFeeds(feeds));
    expect(back.x.data).toEqual(feeds.x.data);
    expect(back.n.data).toEqual(feeds.n.data);
    expect(back.s).toEqual(feeds.s);
  });
});

function fakeReport(): BenchReport {
  const st = (median: number) => ({ n: 10, median, p90: median * 1.5, min: median / 2, max: median * 2, mean: median, perSecond: 1000 / median });
  const cold = { importMs: 5, createMs: 20, firstRunMs: 10, coldMs: 30, peakRssMB: 80, peakHeapMB: 12 };
  const model: ModelResult = {
    model: 'tiny <&> net', inputs: { x: 'float32[1,4]' }, rounds: 3, engines: [
      { id: 'lastmile', label: 'lastmile cpu', stats: st(2), cold, maxAbsDiff: 0 },
      { id: 'ort-node', label: 'onnxruntime-node cpu', stats: st(1), cold, maxAbsDiff: 1e-7 },
      { id: 'ort-web', label: 'onnxruntime-web wasm', error: 'no | backend' },
    ],
  };
  return {
    date: '2026-01-02T03:04:05.000Z', machine: { node: 'v20', v8: '11', platform: 'linux x64', cpu: 'cpu', cores: 2 },
    settings: { backend: 'cpu', threads: 1, warmupS: 2, timeS: 5, liftoff: false, engines: ['lastmile', 'ort-node', 'ort-web'], dims: {} },
    notes: ['a note'], models: [model],
  };
}

describe('report', () => {
  it('formats numbers to about three significant digits', () => {
    expect([fmt(1234.5), fmt(12.345), fmt(1.2345), fmt(0.012345), fmt(0), fmt(undefined), fmt(Infinity)]).toEqual(['1235', '12.3', '1.23', '0.012', '0', '–', '∞']);
  });

  it('renders a Markdown table with ratios to each peer and skipped engines', () => {
    const r = fakeReport();
    expect(ratio(r.models[0], 'lastmile', 'ort-node')).toBe(2);
    expect(ratio(r.models[0], 'lastmile', 'ort-web')).toBeUndefined();
    const lines = markdownTable(r).split('\n');
    expect(lines[0]).toContain('÷ ort-node');
    expect(lines[0]).toContain('÷ ort-web');
    expect(lines[2]).toMatch(/^\| \*\*tiny <&> net\*\* \| lastmile cpu \| 2\.00 \| 3\.00 \| 1\.00 \| 500 \| 30\.0 \| 80\.0 \| 12\.0 \| 0 \| 2\.00 \| – \|$/);
    expect(lines[4]).toContain('skipped: no \\| backend');
    // Every row has as many cells as the header.
    const cells = (l: string) => l.replace(/\\\|/g, '').split('|').length;
    expect(new Set(lines.map(cells)).size).toBe(1);
    const doc = markdown(r, 'chart.svg');
    expect(doc).toContain('![median time per model](chart.svg)');
    expect(doc).toContain('- a note');
    expect(doc).toContain('- tiny <&> net: x float32[1,4]');
  });

  it('draws an SVG bar chart with escaped text', () => {
    const s = svg(fakeReport());
    expect(s.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(s.trim().endsWith('</svg>')).toBe(true);
    expect(s).toContain('tiny &lt;&amp;&gt; net');
    expect(s).not.toContain('<&>');
    expect(s.match(/<rect [^>]*fill="#2b6cb0"/g)?.length).toBe(2); // legend + lastmile's bar
    expect(s).toContain('(0.50× lastmile)');
    // The slowest engine's bar spans the full width.
    expect(s).toMatch(/<rect x="190" y="\d+" width="400\.0"/);
  });
});


describe('lastmile bench', () => {
  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'lastmile-bench-test-'));
    const g = new GraphBuilder('tiny');
    const h = g.node('MatMul', [g.input('x', 'float32', ['batch', 8]), g.init('w', f32([8, 4], Array.from({ length: 32 }, (_, i) => (i % 7) / 7 - 0.5)))])[0];
    g.output(g.node('Relu', [h], {}, ['y'])[0], 'float32', ['batch', 4]);
    writeFileSync(join(dir, 'tiny.onnx'), g.model({ opset: 17 }));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const bench = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'dist/cli/main.js'), 'bench', ...args], { cwd: dir, encoding: 'utf8', timeout: 110_000 });

  it('times lastmile and onnxruntime-node on the same inputs and writes JSON, Markdown and SVG', () => {
    const r = bench('tiny.onnx', '--time', '0.2', '--warmup', '0.1', '--dim', 'batch=3', '--compare', 'ort-node', '--json', 'out.json', '--md', 'out.md');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('| lastmile cpu |');
    const rep = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as BenchReport;
    expect(rep.settings).toMatchObject({ backend: 'cpu', threads: 1, engines: ['lastmile', 'ort-node'], dims: { batch: 3 } });
    const m = rep.models[0];
    expect(m.inputs).toEqual({ x: 'float32[3,8]' });
    for (const e of m.engines) {
      expect(e.error).toBeUndefined();
      expect(e.stats!.n).toBeGreaterThanOrEqual(1);
      expect(e.stats!.min).toBeLessThanOrEqual(e.stats!.median);
      expect(e.cold!.peakRssMB).toBeGreaterThan(0);
      expect(e.cold!.coldMs).toBeGreaterThan(0);
    }
    expect(m.engines[1].maxAbsDiff).toBeLessThan(1e-5);
    expect(readFileSync(join(dir, 'out.md'), 'utf8')).toContain('](out.svg)');
    expect(readFileSync(join(dir, 'out.svg'), 'utf8')).toContain('</svg>');
  });

  it('reads a test_data_set folder and rejects bad flags', () => {
    const data = join(dir, 'test_data_set_0');
    execSync(`mkdir -p ${data}`);
    writeFileSync(join(data, 'input_0.pb'), Msg.Tensor.encode(Msg.Tensor.fromObject(tensorProto(f32([2, 8], Array(16).fill(1)), 'x'))).finish());
    const r = bench('tiny.onnx', '--time', '0.2', '--warmup', '0', '--compare', 'none', '--inputs', data, '--json', 'in.json');
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(readFileSync(join(dir, 'in.json'), 'utf8')) as BenchReport).models[0].inputs).toEqual({ x: 'float32[2,8]' });
    expect(bench('tiny.onnx', '--compare', 'tensorflow').stderr).toContain("unknown engine 'tensorflow'");
    expect(bench('tiny.onnx', '--dim', 'batchh=2').stderr).toContain("no input has a dim named 'batchh'");
    expect(bench('tiny.onnx', '--time', '0').status).toBe(2);
  });
});
