// f32 MatMul GFLOP/s at N^3: Lastmile's CPU backend against onnxruntime-node and onnxruntime-web (wasm),
// same inputs, all in one process, each at the same thread count; with more than one thread Lastmile is
// also timed on one, so its speed-up is measured side by side. Run: node dist/bench/matmul.js [N] [seconds] [threads]
// onnxruntime-web reads its thread count once per process, so each count needs a run of its own.
// The peers are devDependencies: this file is never imported by the library.
import { InferenceSession, Tensor } from '../index.js';
import { wasmGemm } from '../kernels/wasm/gemm.js';
import { GraphBuilder } from '../loaders/builder.js';
import { alternate, stats } from './harness.js';

const n = Number(process.argv[2] ?? 512), seconds = Number(process.argv[3] ?? 3), threads = Number(process.argv[4] ?? 1);
if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`threads must be a positive integer, got ${process.argv[4]}`);
const g = new GraphBuilder('matmul');
g.output(g.node('MatMul', [g.input('a', 'float32', [n, n]), g.input('b', 'float32', [n, n])], {}, ['c'])[0], 'float32');
const bytes = g.model({ opset: 17 });
const a = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
const b = Float32Array.from({ length: n * n }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5);

type Engine = { name: string; run: () => Promise<Record<string, unknown>> };

async function lastmile(t: number): Promise<Engine> {
  const s = await InferenceSession.create(bytes, { intraOpNumThreads: t });
  const feeds = { a: new Tensor('float32', a, [n, n]), b: new Tensor('float32', b, [n, n]) };
  return { name: `lastmile cpu, ${t} thread${t > 1 ? 's' : ''}`, run: () => s.run(feeds) };
}

async function engines(): Promise<Engine[]> {
  // Workers start lazily, on the first product that wants them; start them now so warm-up times real runs.
  if (threads > 1) await wasmGemm(true)?.startThreads(threads);
  const list = [await lastmile(threads), ...(threads > 1 ? [await lastmile(1)] : [])];
  const ortNode = await import('onnxruntime-node');
  const sn = await ortNode.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const fn = { a: new ortNode.Tensor('float32', a, [n, n]), b: new ortNode.Tensor('float32', b, [n, n]) };
  list.push({ name: 'onnxruntime-node', run: () => sn.run(fn) });
  const ortWeb = await import('onnxruntime-web');
  ortWeb.env.wasm.numThreads = threads;
  const sw = await ortWeb.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  const fw = { a: new ortWeb.Tensor('float32', a, [n, n]), b: new ortWeb.Tensor('float32', b, [n, n]) };
  list.push({ name: 'onnxruntime-web wasm', run: () => sw.run(fw) });
  return list;
}

const list = await engines();
// Warm-up by time (V8 tiers code and WebAssembly up over the first seconds), then the engines alternate in rounds.
const { samples } = await alternate(list, seconds * 1000, 2000);
const flops = 2 * n ** 3;
const rows = list.map((e, i) => ({ name: e.name, median: stats(samples[i]).median }));
const ref = (name: string) => rows.find((r) => r.name === name)!.median;
console.log(`MatMul f32 ${n}x${n}x${n}, ${threads} thread${threads > 1 ? 's' : ''} (onnxruntime-web: numThreads ${threads}), interleaved rounds, median of ${seconds} s each after 2 s warm-up\n`);
console.log('| engine | median ms | GFLOP/s | time vs ort-web wasm | time vs ort-node |');
console.log('|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.name} | ${r.median.toFixed(2)} | ${(flops / r.median / 1e6).toFixed(1)} | ${(r.median / ref('onnxruntime-web wasm')).toFixed(2)}x | ${(r.median / ref('onnxruntime-node')).toFixed(2)}x |`);
}
// onnxruntime-web's worker threads would keep the process alive.
setTimeout(() => process.exit(), 1000).unref();
