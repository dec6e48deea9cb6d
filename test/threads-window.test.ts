// Threads for the conv and pool window kernels: the pool serving further modules from its shared memory
// (compiled by the workers on first use), chunked calls (kernels/wasm/chunked.ts), and every threaded
// kernel path (depthwise, direct, im2col, col2im, max/avg pooling) on 2 and 3 threads against 1 thread
// bit for bit and against the TypeScript kernels; then a worker failing mid-call, a memory that cannot be
// shared, and a session with intraOpNumThreads against onnxruntime-node.
import * as ort from 'onnxruntime-node';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { compareValues } from '../conformance/compare.js';
import { toNdArray } from '../engine/tensor.js';
import { InferenceSession, Tensor } from '../index.js';
import { conv, convTranspose, type Geom3 } from '../kernels/cpu/conv.js';
import { pool as poolTs } from '../kernels/cpu/pool.js';
import { chunkTask, JOB_BYTES, writeJob } from '../kernels/wasm/chunked.js';
import { convTransposeWasm, depthwiseWasm, directConvWasm, im2colConvWasm, windowKernels } from '../kernels/wasm/conv.js';
import { buildModule, Code, T, type Func } from '../kernels/wasm/emitter.js';
import { poolWasm } from '../kernels/wasm/pool.js';
import { hasSimd, setWasmKernels, wasmKernels } from '../kernels/wasm/simd.js';
import { CTRL_BYTES, Pool, threadsInit, threadsSupported, withThreads } from '../kernels/wasm/threads.js';
import { CTRL } from '../kernels/wasm/worker.js';
import { layout, PARALLEL_MIN_WORK, WindowKernels, type Win2 } from '../kernels/wasm/window.js';
import { GraphBuilder } from '../loaders/builder.js';
import { bitsDiffer, randomF32, rng } from './helpers/oracle.js';

type R = ReturnType<typeof rng>;
await threadsInit;
const canThread = hasSimd && threadsSupported();
const f32 = (len: number, r: R) => Float32Array.from({ length: len }, () => r.float());
const initialWasm = wasmKernels();
afterEach(() => { setWasmKernels(initialWasm); });

/** Largest |x - y| / (|y| + rms(y)), NaN and infinities matching exactly. */
function relErr(x: Float32Array, y: Float32Array): number {
  let ss = 0, worst = 0, n = 0;
  for (const v of y) if (Number.isFinite(v)) { ss += v * v; n++; }
  const rms = Math.sqrt(ss / Math.max(1, n));
  for (let i = 0; i < y.length; i++) {
    if (!Number.isFinite(y[i])) { if (!Object.is(x[i], y[i])) return Infinity; continue; }
    worst = Math.max(worst, Math.abs(x[i] - y[i]) / (Math.abs(y[i]) + rms));
  }
  return worst;
}

// ---- the pool with further modules ----

/** task(job, chunk, id): memory[job + 4 * chunk] += tag * (id + 1), so a word says which module and which thread ran it. */
function tagModule(tag: number, pad = 0): Uint8Array<ArrayBuffer> {
  const c = new Code().get(0).get(1).i32(4).mul().add().get(0).get(1).i32(4).mul().add().load32().get(2).i32(1).add().i32(tag).mul().add().store32();
  // Unreachable filler functions make a module as big as a test needs.
  const filler: Func[] = Array.from({ length: pad }, (_, i) => ({ name: `f${i}`, params: [], results: [], locals: [], body: Array.from({ length: 200 }).reduce<Code>((b) => b.i32(1).drop(), new Code()) }));
  return buildModule([{ name: 'task', params: [T.i32, T.i32, T.i32], results: [], locals: [], body: c }, ...filler], { shared: true, maxPages: 16 });
}
const sharedMem = () => new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
const taskOf = (bytes: Uint8Array<ArrayBuffer>, memory: WebAssembly.Memory) =>
  new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports.task as (j: number, c: number, i: number) => void;

describe.runIf(canThread)('Pool with further modules', () => {
  it('runs jobs of several modules on the same workers, each chunk once, by the module the job names', async () => {
    const memory = sharedMem(), base = tagModule(1), area = { at: 4096, bytes: 8192 };
    const pool = new Pool(new WebAssembly.Module(base), memory, 0, taskOf(base, memory), area);
    const slots = [10, 100].map((tag) => { const b = tagModule(tag); return { tag, slot: pool.addModule(b, taskOf(b, memory)) }; });
    expect(await pool.ready(3)).toBe(2);
    const words = new Int32Array(memory.buffer), job = 16384, count = 3000, byWorkers = new Set<number>();
    for (let rep = 0; rep < 60; rep++) {
      const { tag, slot } = rep % 3 === 0 ? { tag: 1, slot: 0 } : slots[rep % 3 - 1];
      words.fill(0, job / 4, job / 4 + count);
      expect(pool.run(job, count, 3, slot)).toBe(true);
      const tags = words.subarray(job / 4, job / 4 + count);
      expect(tags.every((t) => t === tag || t === 2 * tag || t === 3 * tag), `rep ${rep}`).toBe(true);
      if (tags.some((t) => t !== tag)) byWorkers.add(tag);
    }
    expect(byWorkers.size).toBeGreaterThan(1); // workers ran jobs of a further module, not only the first one
    pool.close();
  });

  it('a module bigger than the area runs on the calling thread only; one that does not compile fails the job', async () => {
    const memory = sharedMem(), base = tagModule(1), area = { at: 4096, bytes: 2048 };
    const pool = new Pool(new WebAssembly.Module(base), memory, 0, taskOf(base, memory), area);
    const big = tagModule(7, 40);
    expect(big.length).toBeGreaterThan(area.bytes);
    const bigSlot = pool.addModule(big, taskOf(big, memory));
    expect(await pool.ready(2)).toBe(1);
    const words = new Int32Array(memory.buffer), job = 16384;
    expect(pool.run(job, 500, 2, bigSlot)).toBe(true);
    expect([...words.subarray(job / 4, job / 4 + 500)]).toEqual(Array(500).fill(7));
    // The caller's task waits for the worker's failure, so the worker surely takes a chunk.
    const badSlot = pool.addModule(new Uint8Array(64), () => { const end = performance.now() + 2000; while (Atomics.load(words, CTRL.FAILED) === 0 && performance.now() < end); });
    expect(pool.run(job, 50, 2, badSlot)).toBe(false);
    pool.close();
  });
});

// ---- chunked calls ----

describe.runIf(canThread)('chunked calls', () => {
  it('give each chunk its count and advanced arguments, shared arguments and f32 arguments unchanged', async () => {
    // put(dst, count, value, add, stride): dst[i * stride] = value + add + i for i < count (dst a byte address, stride in floats).
    const c = new Code(), [dst, count, value, add, stride, i] = [0, 1, 2, 3, 4, 5];
    c.i32(0).set(i).block(() => c.loop(() => {
      c.get(i).get(count).geS().brIf(1);
      c.get(dst).get(i).get(stride).mul().i32(4).mul().add();
      c.get(value).get(add).get(i).add().f32ConvertI32().f32Add().f32Store();
      c.get(i).i32(1).add().set(i).br(0);
    }));
    const put: Func = { name: 'put', params: [T.i32, T.i32, T.f32, T.i32, T.i32], results: [], locals: [T.i32], body: c };
    const other: Func = { name: 'other', params: [T.i32], results: [], locals: [], body: new Code().get(0).i32(-1).store32() };
    const funcs = [other, put], memory = sharedMem();
    const module = new WebAssembly.Module(buildModule([...funcs, chunkTask(funcs)], { shared: true, maxPages: 16 }));
    const task = new WebAssembly.Instance(module, { env: { memory } }).exports.task as (j: number, c: number, i: number) => void;
    const pool = new Pool(module, memory, 0, task);
    expect(await pool.ready(3)).toBe(2);
    const job = CTRL_BYTES, out = 4096, f = new Float32Array(memory.buffer);
    expect(JOB_BYTES).toBeLessThan(out - job);
    for (const [total, per, strideF] of [[1, 1, 1], [7, 2, 1], [1000, 9, 3], [1000, 1000, 2], [333, 250, 1]]) {
      f.fill(NaN, out / 4, out / 4 + 4000);
      // Unit u is one float at dst + 4 * stride * u: each chunk's dst advances by per units.
      writeJob(memory, job, 1, put.params, [out, total, 0.5, 3, strideF], { count: 1, steps: { 0: 4 * strideF } }, per);
      expect(pool.run(job, Math.ceil(total / per), 3)).toBe(true);
      for (let u = 0; u < total; u++) expect(f[out / 4 + u * strideF], `${total}/${per} unit ${u}`).toBe(0.5 + 3 + (u % per));
      expect(f[out / 4 + total * strideF]).toBeNaN();
    }
    pool.close();
  });
});

// ---- the kernels on threads ----

/** y after f on n threads, from the same starting y. */
function on(n: number, y0: Float32Array, f: (y: Float32Array) => boolean): Float32Array {
  const y = y0.slice();
  expect(withThreads(n, () => f(y))).toBe(true);
  return y;
}

/** Window geometry with these sizes; out of range sizes leave undefined. */
function geom(H: number, W: number, k: [number, number], s: [number, number], d: [number, number], pb: [number, number], pe: [number, number]): Geom3 | undefined {
  const out = [0, 1].map((i) => Math.floor(([H, W][i] + pb[i] + pe[i] - (k[i] - 1) * d[i] - 1) / s[i]) + 1);
  if (out[0] < 1 || out[1] < 1) return undefined;
  return { inS: [1, H, W], out: [1, out[0], out[1]], k: [1, ...k], s: [1, ...s], d: [1, ...d], p: [0, ...pb] };
}

/** A random 2-D (or, a quarter of the time, 1-D) window of a layer of moderate size, odd widths included. */
function randomGeom(r: R, kernels: number[]): Geom3 {
  for (;;) {
    const oneD = r.next() < 0.25, k = r.pick(kernels), kh = oneD ? 1 : k, s = r.pick([1, 1, 2, 3]), d = r.pick([1, 1, 2]);
    const H = oneD ? 1 : r.int(9, 45), W = oneD ? r.int(200, 900) : r.int(9, 70);
    const g = geom(H, W, [kh, k], [oneD ? 1 : s, s], [oneD ? 1 : d, d], [oneD ? 0 : r.int(0, kh - 1), r.int(0, k - 1)], [oneD ? 0 : r.int(0, kh - 1), r.int(0, k - 1)]);
    if (g) return g;
  }
}

const plane = (v: number[]) => v[1] * v[2];

/** Enough units of `per` work each to pass the threshold, plus some. */
const enough = (per: number, r: R) => Math.ceil(PARALLEL_MIN_WORK / Math.max(1, per)) + r.int(0, 5);

describe.runIf(canThread)('conv and pool kernels on threads', () => {
  // One thread gets plain memory (see windowKernels): the arena with workers is the one for more than one.
  let jobs: ReturnType<typeof vi.fn>;
  beforeAll(async () => {
    const K = withThreads(3, () => windowKernels())!;
    expect(await K.startThreads(3)).toBe(2);
    // Counts the jobs given to the pool, so each case shows it really took the threaded path.
    const pool = (K as unknown as { pool: Pool }).pool, run = pool.run.bind(pool);
    jobs = vi.fn(run);
    pool.run = jobs as typeof pool.run;
  });
  // On even under LASTMILE_NO_WASM=1: these test the wasm kernels themselves (afterEach restores the setting).
  beforeEach(() => { setWasmKernels(true); });

  /**
   * Asserts 2 and 3 threads give 1 thread's bits and the TypeScript kernel's values, with a bias and
   * accumulating. Returns whether the kernel split the work (layers with little work per float do not).
   */
  function check(what: string, len: number, r: R, wasm: (y: Float32Array, bias: boolean) => boolean, ts: (y: Float32Array, bias: boolean) => void): boolean {
    const y0 = f32(len, r);
    let split = true;
    for (const bias of [true, false]) {
      const one = on(1, y0, (y) => wasm(y, bias));
      for (const n of [2, 3]) {
        jobs.mockClear();
        expect(bitsDiffer(on(n, y0, (y) => wasm(y, bias)), one), `${what} bias ${bias} on ${n}`).toBe(0);
        split &&= jobs.mock.calls.some(([, count, nt]) => count > 1 && nt === n);
      }
      setWasmKernels(false);
      const ref = y0.slice();
      ts(ref, bias);
      setWasmKernels(true);
      expect(relErr(one, ref), `${what} bias ${bias} vs TypeScript`).toBeLessThan(1e-5);
    }
    return split;
  }

  it('depthwise: random windows, 1 or 2 outputs per channel, 1 or 2 images', () => {
    const r = rng(11);
    let split = 0;
    for (let t = 0; t < 12; t++) {
      const g = randomGeom(r, [1, 3, 5, 7]), mg = r.int(1, 2), n = r.int(1, 2), kk = g.k[1] * g.k[2];
      const c = enough(plane(g.out) * kk * mg, r), m = c * mg;
      expect(m * plane(g.out) * kk).toBeGreaterThanOrEqual(PARALLEL_MIN_WORK);
      const x = f32(n * c * plane(g.inS), r), w = f32(m * kk, r), b = f32(m, r), what = `${JSON.stringify(g)} c=${c} mg=${mg} n=${n}`;
      if (check(what, n * m * plane(g.out), r, (y, bias) => depthwiseWasm(x, w, y, n, c, mg, g, bias ? b : undefined), (y, bias) => conv(x, w, y, n, c, m, c, g, bias ? b : undefined))) split++;
    }
    expect(split).toBeGreaterThanOrEqual(6);
  });

  it('direct and im2col: random windows, dense and grouped', () => {
    const r = rng(12);
    for (let t = 0; t < 10; t++) {
      const g = randomGeom(r, [1, 3, 5]), group = r.pick([1, 1, 2]), cg = r.int(3, 12), n = r.int(1, 2), kk = g.k[1] * g.k[2];
      // The direct kernel splits output rows (work per channel: cg * kk * rows * OW), im2col copies cg * kk taps per output.
      const mg = Math.max(r.int(1, 9), Math.ceil(PARALLEL_MIN_WORK / (cg * kk * plane(g.out)))), c = group * cg, m = group * mg;
      const x = f32(n * c * plane(g.inS), r), w = f32(m * cg * kk, r), b = f32(m, r), what = `${JSON.stringify(g)} c=${c} m=${m} group=${group} n=${n}`;
      const ts = (y: Float32Array, bias: boolean) => conv(x, w, y, n, c, m, group, g, bias ? b : undefined);
      expect(check(`direct ${what}`, n * m * plane(g.out), r, (y, bias) => directConvWasm(x, w, y, n, c, m, group, g, bias ? b : undefined), ts), `direct ${what} split`).toBe(true);
      if (cg * kk * plane(g.out) >= PARALLEL_MIN_WORK) {
        expect(check(`im2col ${what}`, n * m * plane(g.out), r, (y, bias) => im2colConvWasm(x, w, y, n, c, m, group, g, bias ? b : undefined), ts)).toBe(true);
      }
    }
    // im2col split across channels, with output widths that leave partial vectors at the ends of runs.
    for (const [H, W] of [[21, 5], [17, 7], [13, 13], [40, 3]]) {
      const g = geom(H, W, [3, 3], [1, 1], [1, 1], [1, 1], [1, 1])!, c = Math.ceil(PARALLEL_MIN_WORK / (9 * H * W)) + 3, m = 6;
      const x = f32(c * H * W, r), w = f32(m * c * 9, r), b = f32(m, r);
      expect(check(`im2col ${H}x${W}`, m * H * W, r, (y, bias) => im2colConvWasm(x, w, y, 1, c, m, 1, g, bias ? b : undefined), (y, bias) => conv(x, w, y, 1, c, m, 1, g, bias ? b : undefined))).toBe(true);
    }
  });

  it('ConvTranspose: col2im split across output channels', () => {
    const r = rng(13);
    for (let t = 0; t < 6; t++) {
      const k = r.pick([2, 3, 4]), s = r.pick([1, 2]), H = r.int(12, 40), W = r.int(12, 40), pb = r.int(0, 1), group = r.pick([1, 2]);
      const g: Geom3 = { inS: [1, H, W], out: [1, s * (H - 1) + k - 2 * pb, s * (W - 1) + k - 2 * pb], k: [1, k, k], s: [1, s, s], d: [1, 1, 1], p: [0, pb, pb] };
      const mg = Math.ceil(PARALLEL_MIN_WORK / (k * k * H * W)) + r.int(0, 3), cg = r.int(2, 6), c = group * cg, m = group * mg;
      const x = f32(c * H * W, r), w = f32(c * mg * k * k, r), b = f32(m, r), what = `${JSON.stringify(g)} c=${c} m=${m} group=${group}`;
      expect(check(what, m * plane(g.out), r, (y, bias) => convTransposeWasm(x, w, y, 1, c, m, group, g, bias ? b : undefined),
        (y, bias) => convTranspose(x, w, y, 1, c, m, group, g, bias ? b : undefined)), `${what} split`).toBe(true);
    }
  });

  it.each(['max', 'avg', 'avg-count-pad'])('%s pooling: random windows', (kind) => {
    const r = rng(14 + kind.length);
    let split = 0;
    for (let t = 0; t < 8; t++) {
      const g = randomGeom(r, [2, 3, 5]), padEnd = [0, r.int(0, g.k[1] - 1), r.int(0, g.k[2] - 1)], kk = g.k[1] * g.k[2];
      const planes = enough(plane(g.out) * kk, r), x = f32(planes * plane(g.inS), r), what = `${JSON.stringify(g)} planes=${planes}`;
      const how = kind === 'max' ? { kind: 'max' as const, colMajor: false } : { kind: 'avg' as const, countPad: kind === 'avg-count-pad', padEnd };
      if (check(what, planes * plane(g.out), r, (y) => poolWasm(x, y, planes, g, kind === 'max' ? 'max' : 'avg', kind === 'avg-count-pad' ? padEnd : undefined),
        (y) => poolTs(x, y, planes, g, how))) split++;
    }
    expect(split).toBeGreaterThanOrEqual(4);
  });
});

// ---- failures and fallbacks ----

/** Accumulating depthwise 3x3 over `c` planes through K.windowed on nt threads: y0 + conv(x, w). */
function windowedConv(K: WindowKernels, v: Win2, c: number, x: Float32Array, w: Float32Array, y0: Float32Array, nt: number): Float32Array {
  const L = layout(v), x0 = K.arena.base, ppAt = x0 + c * v.H * v.W, wAt = ppAt + c * L.planeFloats + 64, outAt = wAt + c * 9 + 64;
  expect(K.arena.reserve(outAt + c * v.OH * L.OWp + 64)).toBe(true);
  const stage = () => K.arena.putRows(y0, 0, c, v.OH, v.OW, outAt, L.OWp);
  K.arena.f32.set(x, x0);
  K.arena.f32.set(w, wAt);
  stage();
  K.windowed('conv', v, L, c, 1, x0, ppAt, wAt, outAt, 0, 0, nt, stage);
  const y = new Float32Array(y0.length);
  K.arena.getRows(y, 0, c, v.OH, v.OW, outAt, L.OWp);
  return y;
}

describe.runIf(hasSimd)('window kernels when threads fail or cannot run', () => {
  const v: Win2 = { H: 30, W: 30, OH: 30, OW: 30, KH: 3, KW: 3, sh: 1, sw: 1, dh: 1, dw: 1, ph: 1, pw: 1 };
  const r = rng(15), c = 300, x = f32(c * 900, r), w = f32(c * 9, r), y0 = f32(c * 900, r);
  let expected: Float32Array;
  beforeAll(() => { expected = windowedConv(windowKernels()!, v, c, x, w, y0, 1); });

  it.runIf(canThread)('a worker that fails part way: the call is redone from the restaged output, and later calls run on one thread', async () => {
    let failed = false;
    // The worker must accept a job to fail it: retried with a fresh pool should it not wake in time.
    for (let attempt = 0; attempt < 5 && !failed; attempt++) {
      const K = new WindowKernels();
      expect(await K.startThreads(2)).toBe(1);
      expect(bitsDiffer(windowedConv(K, v, c, x, w, y0, 1), expected)).toBe(0); // builds the geometry's module (slot 1)
      // Bytes that do not compile: the worker fails when it first takes a job of that module.
      const pool = (K as unknown as { pool: { slots: { bytes: Uint8Array }[]; broken: boolean } }).pool;
      pool.slots[0].bytes = new Uint8Array(16);
      expect(bitsDiffer(windowedConv(K, v, c, x, w, y0, 2), expected)).toBe(0);
      failed = pool.broken;
      expect(bitsDiffer(windowedConv(K, v, c, x, w, y0, 2), expected)).toBe(0);
    }
    expect(failed).toBe(true);
  });

  it('one thread runs on plain memory, more on shared memory where it exists', () => {
    expect(withThreads(1, () => windowKernels())!.arena.shared).toBe(false);
    expect(withThreads(2, () => windowKernels())!.arena.shared).toBe(canThread);
  });

  it('a memory that cannot be shared: one thread, the same bits', () => {
    vi.stubGlobal('SharedArrayBuffer', undefined);
    try {
      const K = new WindowKernels();
      expect(K.arena.shared).toBe(false);
      expect(K.threadsFor(1e9)).toBe(1);
      expect(bitsDiffer(withThreads(2, () => windowedConv(K, v, c, x, w, y0, K.threadsFor(1e9))), expected)).toBe(0);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

// ---- sessions ----

/** A small CNN whose window layers are each big enough to be split: conv, depthwise, pools, ConvTranspose. */
function cnn(): Uint8Array {
  const g = new GraphBuilder('cnn-threads'), r = rng(16);
  const init = (name: string, shape: number[]) => g.init(name, 'float32', shape, f32(shape.reduce((a, b) => a * b, 1), r));
  let h = g.node('Conv', [g.input('x', 'float32', [1, 3, 66, 70]), init('w0', [16, 3, 3, 3]), init('b0', [16])], { pads: [1, 1, 1, 1], strides: [1, 1] })[0];
  h = g.node('Relu', [h])[0];
  h = g.node('Conv', [h, init('w1', [16, 1, 5, 5]), init('b1', [16])], { group: 16, pads: [2, 2, 2, 2] })[0];
  h = g.node('MaxPool', [h], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })[0];
  h = g.node('Conv', [h, init('w2', [24, 16, 3, 3])], { pads: [1, 1, 1, 1] })[0];
  h = g.node('AveragePool', [h], { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1] })[0];
  h = g.node('ConvTranspose', [h, init('w3', [24, 8, 2, 2]), init('b3', [8])], { strides: [2, 2] })[0];
  g.output(h, 'float32');
  return g.model({ opset: 17 });
}

describe('intraOpNumThreads on a CNN', () => {
  it('1, 2 and 3 threads give the same bits, matching onnxruntime-node', async () => {
    if (canThread) expect(await withThreads(3, () => windowKernels())!.startThreads(3)).toBe(2);
    const bytes = cnn(), x = randomF32([1, 3, 66, 70], rng(17));
    const ref = await (await ort.InferenceSession.create(bytes)).run({ x: new ort.Tensor('float32', x.data, x.shape) });
    const name = Object.keys(ref)[0], want = toNdArray(new Tensor('float32', ref[name].data as Float32Array, ref[name].dims));
    let first: Float32Array | undefined;
    for (const n of [1, 2, 3]) {
      const s = await InferenceSession.create(bytes, { intraOpNumThreads: n });
      for (let rep = 0; rep < 2; rep++) {
        const out = (await s.run({ x: new Tensor('float32', x.data, x.shape) }))[name] as Tensor;
        expect(compareValues(want, toNdArray(out), { rtol: 1e-3, atol: 1e-4 }), `${n} threads`).toBeUndefined();
        const data = out.data as Float32Array;
        if (first) expect(bitsDiffer(data, first), `${n} threads vs 1`).toBe(0);
        else first = data;
      }
      await s.release();
    }
  });
});
