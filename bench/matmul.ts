// f32 MatMul GFLOP/s at N^3: Lastmile's CPU backend against onnxruntime-node and onnxruntime-web (wasm),
// one thread each, same inputs, all in one process. Run: node dist/bench/matmul.js [N] [seconds]
// The peers are devDependencies: this file is never imported by the library.
import { Bench } from 'tinybench';
import { InferenceSession, Tensor } from '../index.js';
import { GraphBuilder } from '../loaders/builder.js';

const n = Number(process.argv[2] ?? 512), seconds = Number(process.argv[3] ?? 3);
const g = new GraphBuilder('matmul');
g.output(g.node('MatMul', [g.input('a', 'float32', [n, n]), g.input('b', 'float32', [n, n])], {}, ['c'])[0], 'float32');
const bytes = g.model({ opset: 17 });
const a = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
const b = Float32Array.from({ length: n * n }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5);

type Engine = { name: string; run: () => Promise<unknown> };

async function engines(): Promise<Engine[]> {
  const ours = await InferenceSession.create(bytes);
  const feeds = { a: new Tensor('float32', a, [n, n]), b: new Tensor('float32', b, [n, n]) };
  const list: Engine[] = [{ name: 'lastmile cpu', run: () => ours.run(feeds) }];
  const ortNode = await import('onnxruntime-node');
  const sn = await ortNode.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const fn = { a: new ortNode.Tensor('float32', a, [n, n]), b: new ortNode.Tensor('float32', b, [n, n]) };
  list.push({ name: 'onnxruntime-node', run: () => sn.run(fn) });
  const ortWeb = await import('onnxruntime-web');
  ortWeb.env.wasm.numThreads = 1;
  const sw = await ortWeb.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  const fw = { a: new ortWeb.Tensor('float32', a, [n, n]), b: new ortWeb.Tensor('float32', b, [n, n]) };
  list.push({ name: 'onnxruntime-web wasm', run: () => sw.run(fw) });
  return list;
}

const list = await engines();
// V8 tiers code (and WebAssembly) up over the first seconds: warm up by time, not by a count.
const bench = new Bench({ time: seconds * 1000, warmupTime: 2000, warmup: true });
for (const e of list) bench.add(e.name, e.run);
await bench.run();
const flops = 2 * n ** 3;
const rows = bench.tasks.map((t) => {
  const r = t.result;
  if (r.state !== 'completed') throw new Error(`${t.name}: ${r.state === 'errored' ? r.error.message : r.state}`);
  return { name: t.name, median: r.latency.p50 };
});
const ref = (name: string) => rows.find((r) => r.name === name)!.median;
console.log(`MatMul f32 ${n}x${n}x${n}, 1 thread, median of ${seconds} s after 2 s warm-up\n`);
console.log('| engine | median ms | GFLOP/s | time vs ort-web wasm | time vs ort-node |');
console.log('|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.name} | ${r.median.toFixed(2)} | ${(flops / r.median / 1e6).toFixed(1)} | ${(r.median / ref('onnxruntime-web wasm')).toFixed(2)}x | ${(r.median / ref('onnxruntime-node')).toFixed(2)}x |`);
}
