// ns per element of the WebAssembly SIMD math kernels (kernels/wasm/math.ts) against the TypeScript
// kernels they replace, then the per-op times of the suite's encoder and decoder with the wasm kernels
// on and off. Everything runs in one process, the two sides interleaved, in rounds; medians are printed.
// Run: node dist/bench/wasm-math.js [rounds]
import { InferenceSession, Tensor } from '../index.js';
import * as K from '../kernels/cpu/elementwise.js';
import { invStd, rowAffine, rowMoments, standardizeRows } from '../kernels/cpu/norm.js';
import { softmax } from '../kernels/cpu/softmax.js';
import { mapWasm } from '../kernels/wasm/elementwise.js';
import { layerNormWasm, softmaxWasm } from '../kernels/wasm/math.js';
import { setWasmKernels } from '../kernels/wasm/simd.js';
import { SUITE } from './models.js';

const rounds = Number(process.argv[2] ?? 7);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const random = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * Math.random());

/** ms per call of f, over enough calls to fill about 40 ms. */
function time(f: () => void): number {
  f();
  let reps = 1, t = 0;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) f();
    t = performance.now() - t0;
    if (t > 40) return t / reps;
    reps *= 2;
  }
}

interface Case { name: string; elements: number; ts: () => void; wasm: () => void }

function cases(): Case[] {
  const out: Case[] = [];
  for (const n of [128, 1024]) {
    const rows = (1 << 18) / n, x = random(rows * n, -8, 8), y = new Float32Array(x.length);
    out.push({ name: `softmax rows of ${n}`, elements: x.length, ts: () => softmax(x, y, rows, n, 1, false), wasm: () => softmaxWasm(x, y, rows, n, false) });
  }
  for (const n of [256, 768]) {
    const rows = 512, x = random(rows * n, -2, 2), y = new Float32Array(x.length), s = random(n, -1, 1), b = random(n, -1, 1);
    const mean = new Float64Array(rows), inv = new Float64Array(rows);
    const ts = () => {
      const m = rowMoments(x, rows, n), k = invStd(m.variance, 1e-5);
      standardizeRows(x, y, rows, n, m.mean, k);
      rowAffine(y, rows, n, s, b);
    };
    out.push({ name: `layernorm rows of ${n}`, elements: x.length, ts, wasm: () => layerNormWasm(x, y, rows, n, 1e-5, s, b, mean, inv) });
  }
  const x = random(1 << 20, -6, 6), y = new Float32Array(x.length);
  const silu: K.Row1 = (o, v, n) => { for (let i = 0; i < n; i++) o[i] = v[i] * K.sigmoidOf(v[i]); };
  const unary: [string, K.Row1][] = [['gelu', K.gelu], ['geluTanh', K.geluTanh], ['exp', K.exp], ['sigmoid', K.sigmoid], ['tanh', K.tanh], ['silu', silu]];
  for (const [kind, row] of unary) {
    out.push({ name: `${kind} on 1M`, elements: x.length, ts: () => row(y, x, x.length), wasm: () => mapWasm(y, x, x.length, [[kind as never]]) });
  }
  return out;
}

function kernels(): void {
  const list = cases(), ts = list.map(() => [] as number[]), wasm = list.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    list.forEach((c, i) => { ts[i].push(time(c.ts)); wasm[i].push(time(c.wasm)); });
  }
  console.log(`kernels, ns per element, median of ${rounds} interleaved rounds\n`);
  console.log('| kernel | TypeScript | wasm SIMD | speed-up |\n|---|---|---|---|');
  list.forEach((c, i) => {
    const a = (median(ts[i]) * 1e6) / c.elements, b = (median(wasm[i]) * 1e6) / c.elements;
    console.log(`| ${c.name} | ${a.toFixed(2)} | ${b.toFixed(2)} | ${(a / b).toFixed(1)}x |`);
  });
}

/** Per op type, the median over rounds of the summed onStep time of one run, wasm kernels on and off. */
async function models(): Promise<void> {
  for (const name of ['encoder', 'decoder']) {
    const m = SUITE.find((s) => s.name === name)!.load();
    if (typeof m === 'string') continue;
    const session = await InferenceSession.create(m.bytes);
    const feeds = Object.fromEntries(Object.entries(m.feeds).map(([k, f]) => [k, new Tensor(f.type as never, f.data as never, f.dims)]));
    const per = { on: new Map<string, number[]>(), off: new Map<string, number[]>() };
    for (let r = 0; r < rounds + 1; r++) {
      for (const side of ['on', 'off'] as const) {
        setWasmKernels(side === 'on');
        const sums = new Map<string, number>();
        await session.run(feeds, undefined, { onStep: (s, ms) => { const k = s.node.opType; sums.set(k, (sums.get(k) ?? 0) + ms); } });
        if (r === 0) continue; // warm-up
        for (const [k, ms] of sums) per[side].set(k, [...(per[side].get(k) ?? []), ms]);
      }
    }
    setWasmKernels(true);
    await session.release();
    console.log(`\n${name}: ms per run by op type, median of ${rounds} (wasm off turns off every wasm kernel, GEMM included)\n`);
    console.log('| op | wasm off | wasm on |\n|---|---|---|');
    const ops = [...per.on.keys()].sort((a, b) => median(per.off.get(b)!) - median(per.off.get(a)!));
    for (const op of ops) console.log(`| ${op} | ${median(per.off.get(op)!).toFixed(2)} | ${median(per.on.get(op)!).toFixed(2)} |`);
  }
}

kernels();
await models();
