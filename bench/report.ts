// Benchmark results as JSON, a Markdown table, and an SVG bar chart written as plain SVG text.
import os from 'node:os';
import type { EngineResult, HarnessOptions, ModelResult } from './harness.js';
import type { EngineId } from './peers.js';

export interface BenchReport {
  date: string;
  machine: { node: string; v8: string; platform: string; cpu: string; cores: number };
  settings: Pick<HarnessOptions, 'backend' | 'threads' | 'warmupS' | 'timeS' | 'liftoff' | 'engines' | 'dims'>;
  /** Peak RSS of a Node child that loads nothing: part of every cold-start RSS. */
  baselineRssMB?: number;
  notes: string[];
  models: ModelResult[];
}

export function newReport(settings: BenchReport['settings'], models: ModelResult[], baselineRssMB?: number): BenchReport {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    machine: { node: process.version, v8: process.versions.v8, platform: `${process.platform} ${process.arch}`, cpu: cpus[0]?.model.trim() ?? 'unknown', cores: cpus.length },
    settings, baselineRssMB, notes: standardNotes(settings, baselineRssMB), models,
  };
}

function standardNotes(s: BenchReport['settings'], baseline?: number): string[] {
  const notes = [
    `Median, p90 and min are of single runs (one inference each) measured after ${s.warmupS} s of warm-up per engine; runs/s is 1000 / mean. Engines were alternated in rounds within one process, each getting ${s.timeS} s in all.`,
    '"÷ X" is this row\'s median divided by X\'s median on the same model: below 1 means faster than X.',
    `Cold start is session creation plus the first run, in a fresh Node process per engine (module import excluded: importMs in the JSON). Peak RSS is that process's peak resident set (VmHWM on Linux, maxRSS elsewhere)${baseline ? `, which includes Node's own ${fmt(baseline)} MB` : ''}; peak heap is V8 heap plus external memory (ArrayBuffers, WebAssembly memory) sampled after creation and after each of four runs.`,
    'max |Δ| is the largest absolute difference between an engine\'s outputs and the first engine\'s on the same inputs: a check that every engine computes the same thing.',
    s.liftoff
      ? 'Ran with --liftoff-only: WebAssembly (onnxruntime-web) stayed in V8\'s baseline compiler, so its times are pessimistic; JavaScript is unaffected.'
      : `V8 moves onnxruntime-web's WebAssembly from its baseline compiler to optimised code while it runs, which can take tens of seconds (on a busy 2-core machine its time on the suite's encoder halved over the first ~30 s), so with ${s.warmupS} s of warm-up its numbers may be pessimistic. A longer --warmup gives settled numbers; --liftoff pins it to the baseline compiler for a stable (slower) comparison.`,
  ];
  if (s.threads > 1) notes.push(`Every engine ran with ${s.threads} intra-op threads. Lastmile splits its GEMMs (MatMul, Gemm, pointwise convolutions), its other convolution and pooling kernels, and the two directions of bidirectional recurrent layers across them; its other ops run on the calling thread.`);
  return notes;
}

// ---- numbers ----

export const fmt = (x: number | undefined): string => {
  if (x === undefined || Number.isNaN(x)) return '–';
  if (!Number.isFinite(x)) return '∞';
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : a === 0 ? '0' : x.toPrecision(2);
};
const fmtDiff = (x: number | undefined) => (x === undefined ? '–' : x === 0 ? '0' : Number.isFinite(x) ? x.toExponential(1) : '∞');

/** a's median over b's on one model; undefined when either has no timing. */
export function ratio(m: ModelResult, a: EngineId, b: EngineId): number | undefined {
  const x = m.engines.find((e) => e.id === a)?.stats?.median, y = m.engines.find((e) => e.id === b)?.stats?.median;
  return x !== undefined && y !== undefined && y > 0 ? x / y : undefined;
}

/** Engines that get a "÷" column: every engine in the report but the first (Lastmile, the subject). */
const peerIds = (r: BenchReport) => r.settings.engines.slice(1);

// ---- Markdown ----

export function markdownTable(r: BenchReport): string {
  const peers = peerIds(r);
  const head = ['model', 'engine', 'median ms', 'p90 ms', 'min ms', 'runs/s', 'cold start ms', 'peak RSS MB', 'peak heap MB', 'max \\|Δ\\|', ...peers.map((p) => `÷ ${p}`)];
  const rows = r.models.flatMap((m) => m.engines.map((e, i) => row(m, e, i === 0, peers)));
  return [head, head.map((h, i) => (i < 2 ? '---' : '---:')), ...rows].map((c) => `| ${c.join(' | ')} |`).join('\n');
}

function row(m: ModelResult, e: EngineResult, first: boolean, peers: EngineId[]): string[] {
  const name = first ? `**${m.model}**` : '';
  if (e.error && !e.stats) return [name, e.label, `skipped: ${e.error.replace(/\|/g, '\\|')}`, ...Array(7 + peers.length).fill('')];
  const s = e.stats, c = e.cold;
  return [name, e.label, fmt(s?.median), fmt(s?.p90), fmt(s?.min), fmt(s?.perSecond), fmt(c?.coldMs), fmt(c?.peakRssMB), fmt(c?.peakHeapMB), fmtDiff(e.maxAbsDiff),
    ...peers.map((p) => { const x = ratio(m, e.id, p); return x === undefined ? '–' : `${x.toFixed(2)}`; })];
}

export function markdown(r: BenchReport, svgFile?: string): string {
  const s = r.settings, m = r.machine;
  const inputs = r.models.map((x) => `- ${x.model}: ${Object.entries(x.inputs).map(([k, v]) => `${k} ${v}`).join(', ')}${x.source ? ` (${x.source})` : ''}`);
  return [
    `# Lastmile benchmark, ${r.date.slice(0, 10)}`, '',
    `Node ${m.node} (V8 ${m.v8}), ${m.platform}, ${m.cpu} (${m.cores} cores). Backend ${s.backend}, ${s.threads} thread${s.threads > 1 ? 's' : ''}, warm-up ${s.warmupS} s, ${s.timeS} s per engine.`, '',
    ...(svgFile ? [`![median time per model](${svgFile})`, ''] : []),
    markdownTable(r), '',
    '## Notes', '', ...r.notes.map((n) => `- ${n}`), '',
    '## Inputs', '', ...inputs, '',
  ].join('\n');
}

// ---- SVG ----

const COLORS: Record<string, string> = { lastmile: '#2b6cb0', 'ort-node': '#dd6b20', 'ort-web': '#2f855a' };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Horizontal bars of median time, one group per model, each group scaled to its slowest engine. */
export function svg(r: BenchReport): string {
  const W = 760, left = 190, barMax = 400, bar = 16, gap = 4, head = 22;
  const out: string[] = [];
  let y = 56;
  const text = (x: number, yy: number, s: string, extra = '') => out.push(`<text x="${x}" y="${yy}"${extra}>${esc(s)}</text>`);
  text(12, 22, `Median time per run (shorter is faster; bars scaled per model) - backend ${r.settings.backend}`, ' font-weight="bold"');
  r.settings.engines.forEach((id, i) => {
    const x = 12 + i * 170;
    out.push(`<rect x="${x}" y="32" width="12" height="12" fill="${COLORS[id] ?? '#718096'}"/>`);
    text(x + 18, 42, r.models.flatMap((m) => m.engines).find((e) => e.id === id)?.label ?? id);
  });
  for (const m of r.models) {
    y += head;
    text(12, y - 6, m.model, ' font-weight="bold"');
    const worst = Math.max(...m.engines.map((e) => e.stats?.median ?? 0)) || 1;
    for (const e of m.engines) {
      text(24, y + bar - 4, e.label);
      if (e.stats) {
        const w = Math.max(1, (barMax * e.stats.median) / worst), vs = ratio(m, e.id, r.settings.engines[0]);
        out.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${bar}" fill="${COLORS[e.id] ?? '#718096'}"/>`);
        text(left + w + 6, y + bar - 4, `${fmt(e.stats.median)} ms${vs !== undefined && e.id !== r.settings.engines[0] ? ` (${fmt(vs)}× ${r.settings.engines[0]})` : ''}`);
      } else text(left, y + bar - 4, `skipped${e.error ? `: ${e.error.slice(0, 60)}` : ''}`, ' fill="#a0aec0"');
      y += bar + gap;
    }
  }
  const h = y + 12;
  return [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${h}" fill="#ffffff"/>`, ...out, '</svg>', ''].join('\n');
}
