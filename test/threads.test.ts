// Threads for the wasm GEMM: the fork-join pool on its own (every chunk runs once, workers really take
// part, a worker that cannot start or that fails leaves correct results), the threaded GEMM against the
// single-threaded one bit for bit (splitting C never changes the order of a sum), prepacked constant
// operands, memory growth with workers running, intraOpNumThreads through sessions against
// onnxruntime-node, and a Node process that used threads exiting by itself.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { compareValues } from '../conformance/compare.js';
import { InferenceSession, Tensor } from '../index.js';
import { toNdArray, type NdArray } from '../engine/tensor.js';
import { rowMajor, transposed, type Mat } from '../kernels/cpu/gemm.js';
import { buildModule, Code, T } from '../kernels/wasm/emitter.js';
import { gemmWasm, markConstants, PARALLEL_MIN_MACS, unmarkConstants, wasmGemm, WasmGemm } from '../kernels/wasm/gemm.js';
import { hasSimd, setWasmKernels, wasmKernels } from '../kernels/wasm/simd.js';
import { CTRL_BYTES, Pool, setThreads, threads, threadsInit, threadsSupported, withThreads } from '../kernels/wasm/threads.js';
import { GraphBuilder } from '../loaders/builder.js';
import { bitsDiffer, randomF32, rng } from './helpers/oracle.js';

type R = ReturnType<typeof rng>;
const fill = (len: number, r: R) => Float32Array.from({ length: len }, () => r.float());
await threadsInit;
const canThread = hasSimd && threadsSupported();

// ---- the pool ----

/** task(job, chunk, id): memory[job + 4 * chunk] += id + 1, so each chunk's word says who ran it (and a second run shows). */
const tagModule = () => {
  const c = new Code().get(0).get(1).i32(4).mul().add().get(0).get(1).i32(4).mul().add().load32().get(2).i32(1).add().add().store32();
  return buildModule([{ name: 'task', params: [T.i32, T.i32, T.i32], results: [], locals: [], body: c }], { shared: true, maxPages: 16 });
};
const sharedMem = () => new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });

describe.runIf(canThread)('Pool', () => {
  it('runs every chunk exactly once, on the workers as well as the caller, job after job', async () => {
    const memory = sharedMem(), module = new WebAssembly.Module(tagModule());
    const own = new WebAssembly.Instance(module, { env: { memory } }).exports.task as (j: number, c: number, i: number) => void;
    const pool = new Pool(module, memory, 0, own);
    expect(await pool.ready(4)).toBe(3);
    const words = new Int32Array(memory.buffer), job = CTRL_BYTES, count = 4000;
    const ran = new Set<number>();
    for (let rep = 0; rep < 50; rep++) {
      words.fill(0, job / 4, job / 4 + count);
      expect(pool.run(job, count, 4)).toBe(true);
      const tags = words.subarray(job / 4, job / 4 + count);
      expect(tags.every((t) => t >= 1 && t <= 4), `rep ${rep}`).toBe(true);
      tags.forEach((t) => ran.add(t));
    }
    expect(ran.size).toBeGreaterThan(1); // some chunks ran on workers
    pool.close();
    words.fill(0, job / 4, job / 4 + 10);
    expect(pool.run(job, 10, 4)).toBe(true); // closed: the caller alone
    expect([...words.subarray(job / 4, job / 4 + 10)]).toEqual(Array(10).fill(1));
  });

  it('a worker that cannot start leaves the work to the caller', async () => {
    // A module that imports an unshared memory cannot link against the shared one: every worker fails to start.
    const bad = new WebAssembly.Module(buildModule([{ name: 'task', params: [T.i32, T.i32, T.i32], results: [], locals: [], body: new Code() }]));
    const memory = sharedMem(), words = new Int32Array(memory.buffer), job = CTRL_BYTES;
    const pool = new Pool(bad, memory, 0, (j, c) => { words[j / 4 + c] += 1; });
    expect(await pool.ready(3, 300)).toBe(0);
    expect(pool.run(job, 100, 3)).toBe(true);
    expect([...words.subarray(job / 4, job / 4 + 100)]).toEqual(Array(100).fill(1));
    pool.close();
  });

  it('a worker whose task throws makes run report failure', async () => {
    // Traps (divides by zero) on any thread but the caller's.
    const c = new Code().get(0).get(1).i32(4).mul().add().i32(1).get(2).eqz().divS().store32();
    const module = new WebAssembly.Module(buildModule([{ name: 'task', params: [T.i32, T.i32, T.i32], results: [], locals: [], body: c }], { shared: true, maxPages: 16 }));
    const memory = sharedMem(), words = new Int32Array(memory.buffer);
    // The caller's chunks wait until the worker has failed, so the worker surely takes one.
    const pool = new Pool(module, memory, 0, () => { const end = performance.now() + 2000; while (Atomics.load(words, 5) === 0 && performance.now() < end); });
    expect(await pool.ready(2)).toBe(1);
    expect(pool.run(CTRL_BYTES, 50, 2)).toBe(false);
    pool.close();
  });
});

describe('thread setting', () => {
  it('withThreads restores the setting; setThreads rejects non-positive counts', () => {
    const before = threads();
    expect(withThreads(3, () => threads())).toBe(3);
    expect(threads()).toBe(before);
    expect(() => setThreads(0)).toThrow(/positive integer/);
    expect(() => setThreads(1.5)).toThrow(/positive integer/);
  });
});

// ---- the GEMM on threads ----

function operand(rows: number, cols: number, layout: number, r: R): Mat<Float32Array> {
  if (layout === 0) return rowMajor(fill(rows * cols, r), cols);
  if (layout === 1) return transposed(rowMajor(fill(rows * cols, r), rows));
  return { data: fill(rows * cols * 4, r), off: cols, rs: cols * 4, cs: 1 }; // one head among four
}

/** C after g.run on `n` threads, from the same starting C. */
function product(g: WasmGemm, n: number, m: number, nn: number, k: number, a: Mat<Float32Array>, b: Mat<Float32Array>, c0: Float32Array, ldc: number, alpha: number) {
  const c = c0.slice();
  expect(withThreads(n, () => g.run(m, nn, k, a, b, c, 1, ldc, alpha))).toBe(true);
  return c;
}

describe.runIf(canThread)('WasmGemm on threads', () => {
  const g = new WasmGemm();
  beforeAll(async () => { expect(await g.startThreads(3)).toBe(2); });
  afterAll(() => g.stopThreads());

  it('equals one thread bit for bit over edge shapes, layouts, alpha and strided C', () => {
    const r = rng(3);
    // Big enough to be split: m, n around the tile and chunk sizes, k across the depth block.
    const shapes = [[1, 4096, 300], [4096, 1, 300], [17, 1031, 61], [129, 257, 33], [333, 97, 257], [64, 4097, 5], [1027, 9, 129], [128, 128, 64]];
    for (const [i, [m, n, k]] of shapes.entries()) {
      expect(m * n * k).toBeGreaterThanOrEqual(PARALLEL_MIN_MACS);
      const a = operand(m, k, i % 3, r), b = operand(k, n, (i + 1) % 3, r), ldc = n + (i % 2) * 3, c0 = fill(1 + m * ldc, r), alpha = i % 2 ? -0.75 : 1;
      const one = product(g, 1, m, n, k, a, b, c0, ldc, alpha);
      expect(bitsDiffer(product(g, 2, m, n, k, a, b, c0, ldc, alpha), one), `${m}x${n}x${k} on 2`).toBe(0);
      expect(bitsDiffer(product(g, 3, m, n, k, a, b, c0, ldc, alpha), one), `${m}x${n}x${k} on 3`).toBe(0);
    }
  });

  it('many products in a row, with memory growing in between while the workers run', async () => {
    const h = new WasmGemm(), r = rng(4);
    expect(await h.startThreads(3)).toBe(2);
    const make = ([m, n, k]: number[]) => ({ m, n, k, a: operand(m, k, 0, r), b: operand(k, n, 1, r), c0: fill(1 + m * n, r) });
    const bytes = () => (h as unknown as { memory: WebAssembly.Memory }).memory.buffer.byteLength;
    const s = make([96, 160, 120]), expected = product(h, 1, s.m, s.n, s.k, s.a, s.b, s.c0, s.n, 1);
    for (let i = 0; i < 30; i++) expect(bitsDiffer(product(h, 3, s.m, s.n, s.k, s.a, s.b, s.c0, s.n, 1), expected)).toBe(0);
    const before = bytes(), l = make([400, 900, 64]);
    const threaded = product(h, 3, l.m, l.n, l.k, l.a, l.b, l.c0, l.n, 1);
    expect(bytes()).toBeGreaterThan(before);
    expect(bitsDiffer(threaded, product(h, 1, l.m, l.n, l.k, l.a, l.b, l.c0, l.n, 1))).toBe(0);
    for (let i = 0; i < 10; i++) expect(bitsDiffer(product(h, 2, s.m, s.n, s.k, s.a, s.b, s.c0, s.n, 1), expected)).toBe(0);
    h.stopThreads();
  });
});

describe.runIf(hasSimd)('prepacked constant operands', () => {
  it('one thread uses a plain-memory instance that prepacks session constants too, with the same bits as threads', () => {
    const was = wasmKernels();
    setWasmKernels(true); // gemmWasm routes only with the wasm kernels on (LASTMILE_NO_WASM=1 turns them off)
    onTestFinished(() => { setWasmKernels(was); });
    const one = wasmGemm(false)!, many = wasmGemm(true)!, r = rng(15), [m, n, k] = [128, 96, 64];
    expect(one).not.toBe(many);
    expect(one.threaded).toBe(false);
    const w = fill(k * n, r), x = fill(m * k, r), c1 = new Float32Array(m * n), c2 = new Float32Array(m * n), before = one.panelFloats;
    markConstants([w]);
    expect(withThreads(1, () => gemmWasm(m, n, k, rowMajor(x, k), rowMajor(w, n), c1, 0, n))).toBe(true);
    expect(one.panelFloats).toBeGreaterThan(before);
    expect(withThreads(2, () => gemmWasm(m, n, k, rowMajor(x, k), rowMajor(w, n), c2, 0, n))).toBe(true);
    expect(c2).toEqual(c1);
    unmarkConstants([w]);
    expect(one.panelFloats).toBe(before);
  });

  it('give the same bits as packing per call, on one thread and on three, and are freed when unmarked', async () => {
    const g = new WasmGemm(), plain = new WasmGemm(), r = rng(5);
    if (canThread) await g.startThreads(3);
    const cases: [number, number, number, number, number][] = [[300, 150, 70, 0, 1], [5, 1000, 600, 1, 0], [1, 33, 9, 0, 0], [130, 70, 513, 2, 1], [64, 64, 64, 0, 2], [1100, 2100, 3, 0, 0]];
    // The last case stages C in several passes of rows: prepacked A rows are found from each pass's first row.
    for (const [m, n, k, la, lb] of cases) {
      const a = operand(m, k, la, r), b = operand(k, n, lb, r), c0 = fill(1 + m * n, r);
      const expected = product(plain, 1, m, n, k, a, b, c0, n, 0.5);
      for (const which of ['B', 'A', 'both'] as const) {
        if (which !== 'A') g.markConstant(b.data);
        if (which !== 'B') g.markConstant(a.data);
        for (let rep = 0; rep < 3; rep++) {
          expect(bitsDiffer(product(g, 1, m, n, k, a, b, c0, n, 0.5), expected), `${m}x${n}x${k} ${which}`).toBe(0);
          expect(bitsDiffer(product(g, 3, m, n, k, a, b, c0, n, 0.5), expected), `${m}x${n}x${k} ${which} threads`).toBe(0);
        }
        expect(g.panelFloats).toBeGreaterThan(0);
        g.unmarkConstant(a.data);
        g.unmarkConstant(b.data);
        expect(g.panelFloats).toBe(0);
      }
    }
    // A view at another offset of the same constant gets panels of its own.
    const w = fill(40 * 50, r), x = rowMajor(fill(30 * 20, r), 20), c0 = fill(1 + 30 * 50, r);
    const views = [{ data: w, off: 0, rs: 50, cs: 1 }, { data: w, off: 20 * 50, rs: 50, cs: 1 }];
    const expected = views.map((v) => product(plain, 1, 30, 50, 20, x, v, c0, 50, 1));
    g.markConstant(w);
    views.forEach((v, i) => expect(bitsDiffer(product(g, 1, 30, 50, 20, x, v, c0, 50, 1), expected[i])).toBe(0));
    views.forEach((v, i) => expect(bitsDiffer(product(g, 1, 30, 50, 20, x, v, c0, 50, 1), expected[i])).toBe(0));
    g.markConstant(w); // a second holder: the first unmark keeps the panels
    g.unmarkConstant(w);
    expect(g.panelFloats).toBeGreaterThan(0);
    g.unmarkConstant(w);
    expect(g.panelFloats).toBe(0);
    g.stopThreads();
  });
});

// ---- sessions ----

/** MatMul on a constant weight, a batched MatMul of two inputs, Gemm, Conv: each big enough to be split. */
function model(): Uint8Array {
  const g = new GraphBuilder('threads'), r = rng(9);
  const w = g.init('W', 'float32', [200, 150], fill(200 * 150, r));
  const mm = g.node('MatMul', [g.input('X', 'float32', [2, 97, 200]), w])[0];
  const bmm = g.node('MatMul', [mm, g.input('Y', 'float32', [2, 150, 61])])[0];
  g.output(bmm, 'float32');
  const gm = g.node('Gemm', [g.input('A', 'float32', [120, 300]), g.init('G', 'float32', [90, 300], fill(90 * 300, r)), g.init('Gb', 'float32', [90], fill(90, r))], { transB: 1 })[0];
  g.output(gm, 'float32');
  const cv = g.node('Conv', [g.input('I', 'float32', [1, 16, 40, 37]), g.init('K', 'float32', [32, 16, 3, 3], fill(32 * 16 * 9, r))], { pads: [1, 1, 1, 1] })[0];
  g.output(cv, 'float32');
  return g.model({ opset: 17 });
}

describe('intraOpNumThreads', () => {
  it('1, 2 and 3 threads give the same outputs, matching onnxruntime-node', async () => {
    if (canThread) expect(await wasmGemm()!.startThreads(3)).toBe(2);
    const bytes = model(), r = rng(10);
    const feeds: Record<string, NdArray> = { X: randomF32([2, 97, 200], r), Y: randomF32([2, 150, 61], r), A: randomF32([120, 300], r), I: randomF32([1, 16, 40, 37], r) };
    const ref = await (await ort.InferenceSession.create(bytes)).run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data as Float32Array, v.shape)])));
    let first: Record<string, Float32Array> | undefined;
    for (const n of [1, 2, 3]) {
      const s = await InferenceSession.create(bytes, { intraOpNumThreads: n });
      expect(s.intraOpNumThreads).toBe(n);
      for (let rep = 0; rep < 3; rep++) {
        const out = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor('float32', v.data as Float32Array, v.shape)])));
        for (const [name, t] of Object.entries(ref)) {
          const diff = compareValues(toNdArray(new Tensor('float32', t.data as Float32Array, t.dims)), toNdArray(out[name] as Tensor), { rtol: 1e-3, atol: 1e-4 });
          expect(diff, `${name} on ${n} threads`).toBeUndefined();
        }
        const data = Object.fromEntries(Object.entries(out).map(([k, t]) => [k, (t as Tensor).data as Float32Array]));
        if (first) for (const k of Object.keys(first)) expect(bitsDiffer(data[k], first[k]), `${k}: ${n} threads vs 1`).toBe(0);
        else first = data;
      }
      await s.release();
    }
  });

  it('defaults to the number of cores, 0 meaning the default; rejects negative or fractional counts', async () => {
    const bytes = model();
    const def = (await InferenceSession.create(bytes)).intraOpNumThreads;
    expect(def).toBeGreaterThanOrEqual(1);
    if (canThread) expect(def).toBe((await import('node:os')).availableParallelism());
    expect((await InferenceSession.create(bytes, { intraOpNumThreads: 0 })).intraOpNumThreads).toBe(def);
    await expect(InferenceSession.create(bytes, { intraOpNumThreads: -1 })).rejects.toThrow(/intraOpNumThreads/);
    await expect(InferenceSession.create(bytes, { intraOpNumThreads: 1.5 })).rejects.toThrow(/intraOpNumThreads/);
  });
});

describe.runIf(canThread)('process lifetime', () => {
  it('a Node process whose session used threads exits by itself', async () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..');
    // The built package (as test/cli.test.ts uses): a child process cannot load the TypeScript sources.
    const script = `
      import { InferenceSession, Tensor } from ${JSON.stringify(join(root, 'dist/index.js'))};
      import { wasmGemm } from ${JSON.stringify(join(root, 'dist/kernels/wasm/gemm.js'))};
      import { GraphBuilder } from ${JSON.stringify(join(root, 'dist/loaders/builder.js'))};
      const g = new GraphBuilder('mm');
      g.output(g.node('MatMul', [g.input('a', 'float32', [256, 256]), g.input('b', 'float32', [256, 256])])[0], 'float32');
      const s = await InferenceSession.create(g.model({ opset: 17 }), { intraOpNumThreads: 2 });
      const ready = await wasmGemm().startThreads(2);
      const x = new Tensor('float32', new Float32Array(65536).fill(1), [256, 256]);
      const out = await s.run({ a: x, b: x });
      console.log(JSON.stringify({ ready, v: out[s.outputNames[0]].data[0] }));
    `;
    const t0 = performance.now();
    const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => { out += d; });
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('the child did not exit within 20 s')); }, 20_000);
      child.on('close', (c) => { clearTimeout(timer); resolve({ code: c, out }); });
    });
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ ready: 1, v: 256 });
    expect(performance.now() - t0).toBeLessThan(20_000);
  });

  it('a product run before the worker API has loaded does not keep threads off for good', async () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..');
    // The first product runs synchronously at import time, before threadsInit resolves: it runs on this
    // thread alone, and workers must still start later (a benchmark once measured 2 threads as 1 this way).
    const script = `
      import { wasmGemm } from ${JSON.stringify(join(root, 'dist/kernels/wasm/gemm.js'))};
      import { withThreads } from ${JSON.stringify(join(root, 'dist/kernels/wasm/threads.js'))};
      const n = 128, a = new Float32Array(n * n).fill(1), c = new Float32Array(n * n);
      const m = { data: a, off: 0, rs: n, cs: 1 };
      withThreads(2, () => wasmGemm().run(n, n, n, m, m, c, 0, n));
      const ready = await wasmGemm(true).startThreads(2);
      console.log(JSON.stringify({ ready, v: c[0] }));
      process.exit(0);
    `;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (d) => { text += d; });
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('the child did not exit within 20 s')); }, 20_000);
      child.on('close', () => { clearTimeout(timer); resolve(text); });
    });
    expect(JSON.parse(out)).toEqual({ ready: 1, v: 128 });
  });
});
