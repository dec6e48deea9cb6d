// The WebAssembly recurrent kernels piece by piece: the vector activations against Math, the gemv kernel
// and its packing against a plain product, and whole cells on the float32 wasm path against the
// TypeScript cells (float64 state) on random configurations, including the resident weight cache.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModule, Simd, T } from '../kernels/wasm/emitter.js';
import { gateWidth, NB, packedSize } from '../kernels/wasm/gemv.js';
import { rnnModule, type RnnExports } from '../kernels/wasm/rnn.js';
import { lastThreadIds, rnnThreaded, setParallelMin, setResidentLimit, startRnnThreads } from '../kernels/wasm/rnn-cells.js';
import { threadsSupported, withThreads } from '../kernels/wasm/threads.js';
import { hasSimd, setWasmKernels } from '../kernels/wasm/simd.js';
import { Fn, vexp, vexpm1, vsigmoid, vtanh } from '../kernels/wasm/math-vec.js';
import { activation, gru, lstm, rnn, type Cell, type Outputs } from '../kernels/cpu/rnn.js';
import { rng } from './helpers/oracle.js';

const run = hasSimd ? describe : describe.skip;

/** Applies each emitted activation in place over n floats at address 0. */
function activations(): Record<string, (n: number) => void> & { heap: Float32Array } {
  const fns = { exp: vexp, expm1: vexpm1, sigmoid: vsigmoid, tanh: vtanh };
  const funcs = Object.entries(fns).map(([name, emit]) => {
    const f = new Fn(name, [T.i32, T.i32]), c = f.c, x = f.local(T.v128);
    c.loop(() => {
      c.get(0).simd(Simd.load, [0, 0]).set(x).get(0);
      emit(f, x);
      c.simd(Simd.store, [0, 0]);
      c.get(0).i32(16).add().set(0).get(1).i32(4).sub().tee(1).i32(0).gtS().brIf(0);
    });
    return f.func();
  });
  const memory = new WebAssembly.Memory({ initial: 4 });
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(buildModule(funcs)), { env: { memory } });
  const heap = new Float32Array(memory.buffer);
  const out = Object.fromEntries(Object.keys(fns).map((k) => [k, (n: number) => (exports[k] as (p: number, n: number) => void)(0, n)]));
  return Object.assign(out, { heap });
}

run('vector activations', () => {
  const f = activations(), r = rng(3);
  const xs = [0, -0, 1e-30, -1e-8, 1e-4, 0.3, -0.5, 0.3466, 1, -2.5, 7, -9.1, 15, -30, 87, -87, ...Array.from({ length: 400 }, () => r.float(-20, 20)), ...Array.from({ length: 100 }, () => r.float(-0.01, 0.01))];
  const refs: Record<string, (x: number) => number> = { exp: Math.exp, expm1: Math.expm1, sigmoid: (x) => 1 / (1 + Math.exp(-x)), tanh: Math.tanh };

  it.each(Object.keys(refs))('%s is within a few float32 ulps of Math', (name) => {
    f.heap.set(xs);
    f[name](xs.length + 3);
    xs.forEach((x, i) => {
      const want = refs[name](Math.fround(x)), got = f.heap[i];
      // Relative where the result is a normal float32, absolute (far below any tolerance) near underflow.
      expect(Math.abs(got - want), `${name}(${x}) = ${got}, want ${want}`).toBeLessThanOrEqual(Math.max(3e-7 * Math.abs(want), 1e-37));
    });
  });

  it('saturate at the ends and keep NaN', () => {
    const ends = [Infinity, -Infinity, 1e30, -1e30, NaN, 200, -200, NaN];
    const check = (name: string, want: number[]) => {
      f.heap.set(ends);
      f[name](ends.length);
      want.forEach((w, i) => (Number.isNaN(w) ? expect(f.heap[i]).toBeNaN() : expect(f.heap[i]).toBeCloseTo(w, 6)));
    };
    check('sigmoid', [1, 0, 1, 0, NaN, 1, 0, NaN]);
    check('tanh', [1, -1, 1, -1, NaN, 1, -1, NaN]);
    check('exp', [Infinity, 0, Infinity, 0, NaN, Infinity, 0, NaN]);
    check('expm1', [Infinity, -1, Infinity, -1, NaN, Infinity, -1, NaN]);
  });

  it('expm1 stays finite and accurate just below the float32 overflow, where 2^k alone would not be', () => {
    const xs = [88, 88.4, 88.72, -88, -100];
    f.heap.set(xs);
    f.expm1(xs.length);
    xs.forEach((x, i) => expect(Math.abs(f.heap[i] - Math.expm1(Math.fround(x))), `expm1(${x})`).toBeLessThanOrEqual(3e-7 * Math.abs(Math.expm1(Math.fround(x)))));
  });
});

/** The module's exports over a fresh memory of `pages` pages. */
function kernels(pages = 16): { f: RnnExports; heap: Float32Array } {
  const memory = new WebAssembly.Memory({ initial: pages });
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(rnnModule()), { env: { memory } });
  return { f: exports as unknown as RnnExports, heap: new Float32Array(memory.buffer) };
}

run('gemv on packed weights', () => {
  it.each(Array.from({ length: 16 }, (_, i) => i + 1))('matches a plain product, random sizes %i', (seed) => {
    const r = rng(seed), rows = r.int(1, 4), hidden = r.int(1, 20), gates = r.int(1, 4), k = r.int(1, 9);
    const { f, heap } = kernels(), gw = gateWidth(hidden), n = roundUp(gates * gw, NB), size = packedSize(gates, hidden, k);
    const w = Float32Array.from({ length: gates * hidden * k }, () => r.float());
    const x = Float32Array.from({ length: rows * k }, () => r.float());
    const y0 = Float32Array.from({ length: rows * n }, () => r.float());
    // Layout in floats: raw W at 0, packed at 1024, x at 4096, y at 8192 (y row stride n).
    heap.set(w, 0);
    heap.fill(0, 1024, 1024 + size);
    f.pack(0, k, hidden, gates, gw, 4 * 1024);
    heap.set(x, 4096);
    heap.set(y0, 8192);
    f.gemv(rows, n / NB, k, 4 * 4096, 4 * k, 4 * 1024, 4 * 8192, 4 * n);
    for (let i = 0; i < rows; i++) {
      for (let col = 0; col < n; col++) {
        const g = Math.floor(col / gw), j = col % gw;
        let want = y0[i * n + col];
        if (g < gates && j < hidden) for (let q = 0; q < k; q++) want += x[i * k + q] * w[(g * hidden + j) * k + q];
        expect(heap[8192 + i * n + col]).toBeCloseTo(want, 5);
      }
    }
  });
});

const roundUp = (x: number, q: number) => Math.ceil(x / q) * q;
type Kind = 'LSTM' | 'GRU' | 'RNN';
const GATES = { LSTM: 4, GRU: 3, RNN: 1 };
const DEFAULTS = { LSTM: ['sigmoid', 'tanh', 'tanh'], GRU: ['sigmoid', 'tanh'], RNN: ['tanh'] };

interface Config {
  kind: Kind; seq: number; batch: number; input: number; hidden: number; reverse: boolean; layout: 0 | 1;
  lens: number[]; h0: boolean; c0: boolean; peep: boolean; clip: number; inputForget: boolean; lbr: boolean; keyed: boolean;
}

function randomConfig(kind: Kind, seed: number): Config {
  const r = rng(seed * 131 + 7), seq = r.pick([1, 2, 5, 11]), batch = r.pick([1, 2, 3, 5]);
  return {
    kind, seq, batch, input: r.int(1, 19), hidden: r.pick([1, 3, 4, 7, 8, 9, 16, 17, 33]), reverse: r.next() < 0.5, layout: r.pick([0, 1] as const),
    lens: Array.from({ length: batch }, () => (r.next() < 0.3 ? r.int(0, seq) : seq)), h0: r.next() < 0.5, c0: r.next() < 0.5, peep: r.next() < 0.5,
    clip: r.next() < 0.3 ? 0.5 : Infinity, inputForget: r.next() < 0.2, lbr: r.next() < 0.5, keyed: r.next() < 0.5,
  };
}

/** The operands of one direction, and a function running it (wasm on or off) into fresh outputs. */
function cellRunner(cf: Config, seed: number) {
  const r = rng(seed), G = GATES[cf.kind], hs = cf.hidden;
  const f32 = (n: number, s = 1) => Float32Array.from({ length: n }, () => r.float(-s, s));
  const f64 = (n: number) => Float64Array.from({ length: n }, () => r.float());
  const x = f32(cf.seq * cf.batch * cf.input), w = f32(G * hs * cf.input, 0.6), rr = f32(G * hs * hs, 0.6);
  const bias = f64(G * hs), h0 = cf.h0 ? f64(cf.batch * hs) : undefined, c0 = cf.c0 ? f64(cf.batch * hs) : undefined;
  const p = cf.peep ? f64(3 * hs) : undefined, rbh = cf.lbr ? f64(hs) : new Float64Array(hs);
  const keys = cf.keyed ? { wKey: {}, rKey: {} } : {};
  const [xT, xB] = cf.layout ? [1, cf.seq] : [cf.batch, 1];
  return (wasm: boolean): Outputs => {
    const n = cf.seq * cf.batch * hs;
    const o: Outputs = cf.layout
      ? { y: new Float32Array(n), yOff: 0, yT: hs, yB: cf.seq * hs, yh: new Float32Array(cf.batch * hs), yc: new Float32Array(cf.batch * hs), sOff: 0, sB: hs }
      : { y: new Float32Array(n), yOff: 0, yT: cf.batch * hs, yB: hs, yh: new Float32Array(cf.batch * hs), yc: new Float32Array(cf.batch * hs), sOff: 0, sB: hs };
    const c: Cell = {
      seq: cf.seq, batch: cf.batch, input: cf.input, hidden: hs, x, xT, xB, w, r: rr, bias, h0, reverse: cf.reverse,
      lens: Int32Array.from(cf.lens), clip: cf.clip, acts: DEFAULTS[cf.kind].map((a) => activation(a, 0, 0)!), dir: 0, ...keys,
    };
    const was = setWasmKernels(wasm);
    try {
      if (cf.kind === 'LSTM') lstm([{ c, o, opts: { c0, p, inputForget: cf.inputForget } }]);
      else if (cf.kind === 'GRU') gru([{ c, o, opts: { linearBeforeReset: cf.lbr, rbh } }]);
      else rnn([{ c, o, opts: undefined }]);
    } finally {
      setWasmKernels(was);
    }
    return o;
  };
}

function expectClose(got: Outputs, want: Outputs, what: string) {
  for (const k of ['y', 'yh', 'yc'] as const) {
    const a = got[k]!, b = want[k]!;
    for (let i = 0; i < b.length; i++) expect(Math.abs(a[i] - b[i]), `${what}: ${k}[${i}] = ${a[i]}, want ${b[i]}`).toBeLessThanOrEqual(2e-5 + 2e-5 * Math.abs(b[i]));
  }
}

run('float32 wasm cells against the TypeScript cells', () => {
  describe.each(['LSTM', 'GRU', 'RNN'] as Kind[])('%s', (kind) => {
    it.each(Array.from({ length: 24 }, (_, i) => i + 1))('random configuration %i', (seed) => {
      const cf = randomConfig(kind, seed + GATES[kind] * 1000), go = cellRunner(cf, seed);
      const want = go(false);
      expectClose(go(true), want, JSON.stringify(cf));
      // Again: keyed weights now come from the resident cache.
      expectClose(go(true), want, `second call, ${JSON.stringify(cf)}`);
    });
  });

  it('evicts and repacks resident weights when the budget is exceeded', () => {
    const was = setResidentLimit(1500);
    try {
      const runners = [1, 2, 3, 4].map((seed) => {
        const cf = { ...randomConfig('LSTM', seed), hidden: 9, input: 6, seq: 3, keyed: true };
        const go = cellRunner(cf, seed);
        return { go, want: go(false) };
      });
      // Each cell's packed W and R take 960 floats (64 padded gate columns by k = 6 and 9): with room for
      // 1500, every call evicts the previous cell's and repacks its own.
      for (let round = 0; round < 3; round++) runners.forEach(({ go, want }, i) => expectClose(go(true), want, `round ${round}, cell ${i}`));
    } finally {
      setResidentLimit(was);
    }
  });
});

/**
 * Both directions of a bidirectional node as the op runs them: one call, one X, each direction with its
 * own weights and slots in a shared Y ([seq, 2, batch, hidden], or layout 1's [batch, seq, 2, hidden]).
 * `acts` per direction (default: the kind's defaults), so one direction can leave the wasm path.
 */
function pairRunner(cf: Config, seed: number, acts?: string[][]) {
  const r = rng(seed), G = GATES[cf.kind], hs = cf.hidden, { seq, batch } = cf;
  const f32 = (n: number, s = 1) => Float32Array.from({ length: n }, () => r.float(-s, s));
  const f64 = (n: number) => Float64Array.from({ length: n }, () => r.float());
  const x = f32(seq * batch * cf.input), [xT, xB] = cf.layout ? [1, seq] : [batch, 1];
  // Weights shrink with the hidden size as trained ones do: a large chaotic cell parts float32 from float64.
  const scale = Math.min(0.6, 2 / Math.sqrt(hs));
  const dirs = [0, 1].map((d) => ({
    w: f32(G * hs * cf.input, scale), r: f32(G * hs * hs, scale), bias: f64(G * hs), h0: cf.h0 ? f64(batch * hs) : undefined,
    c0: cf.c0 ? f64(batch * hs) : undefined, p: cf.peep ? f64(3 * hs) : undefined, rbh: cf.lbr ? f64(hs) : new Float64Array(hs),
    keys: cf.keyed ? { wKey: {}, rKey: {} } : {}, acts: (acts?.[d] ?? DEFAULTS[cf.kind]).map((a) => activation(a, 0.5, 0.5)!),
  }));
  return (): Outputs[] => {
    const y = new Float32Array(seq * 2 * batch * hs), yh = new Float32Array(2 * batch * hs), yc = new Float32Array(2 * batch * hs);
    const outs = [0, 1].map((d): Outputs => (cf.layout
      ? { y, yOff: d * hs, yT: 2 * hs, yB: seq * 2 * hs, yh, yc, sOff: d * hs, sB: 2 * hs }
      : { y, yOff: d * batch * hs, yT: 2 * batch * hs, yB: hs, yh, yc, sOff: d * batch * hs, sB: hs }));
    const cells = dirs.map((D, d): Cell => ({
      seq, batch, input: cf.input, hidden: hs, x, xT, xB, w: D.w, r: D.r, bias: D.bias, h0: D.h0, reverse: d === 1,
      lens: Int32Array.from(cf.lens), clip: cf.clip, acts: D.acts, dir: d, ...D.keys,
    }));
    if (cf.kind === 'LSTM') lstm(cells.map((c, d) => ({ c, o: outs[d], opts: { c0: dirs[d].c0, p: dirs[d].p, inputForget: cf.inputForget } })));
    else if (cf.kind === 'GRU') gru(cells.map((c, d) => ({ c, o: outs[d], opts: { linearBeforeReset: cf.lbr, rbh: dirs[d].rbh } })));
    else rnn(cells.map((c, d) => ({ c, o: outs[d], opts: undefined })));
    return outs;
  };
}

/** Runs fn with wasm kernels on or off, restoring the setting. */
function withWasm<R>(on: boolean, fn: () => R): R {
  const was = setWasmKernels(on);
  try {
    return fn();
  } finally {
    setWasmKernels(was);
  }
}

const bits = (o: Outputs) => (['y', 'yh', 'yc'] as const).map((k) => Array.from(new Uint32Array((o[k] as Float32Array).buffer)));

run('the directions of a node in one call, on one or two threads', () => {
  // Workers start lazily; start them now so the 2-thread runs below can hand a direction over.
  let ready: Promise<number>, was = 0;
  // Every size of work goes to the threads here, so small random shapes exercise the threaded path.
  beforeAll(() => { ready = startRnnThreads(2); was = setParallelMin(0); });
  afterAll(() => { setParallelMin(was); });

  it('has a worker to run the second direction (shared memory and workers work in Node)', async () => {
    expect(rnnThreaded() && threadsSupported()).toBe(true);
    expect(await ready).toBe(1);
  });

  describe.each(['LSTM', 'GRU', 'RNN'] as Kind[])('%s', (kind) => {
    it.each(Array.from({ length: 16 }, (_, i) => i + 1))('random configuration %i: 2 threads bit-identical to 1, both close to TypeScript', async (seed) => {
      await ready;
      const cf = randomConfig(kind, seed + GATES[kind] * 2000), go = pairRunner(cf, seed);
      const want = withWasm(false, go)[0];
      const one = withWasm(true, () => withThreads(1, go))[0];
      expect(lastThreadIds()).toEqual([0, 0]);
      expectClose(one, want, JSON.stringify(cf));
      // Tiny directions are often both done by the caller before the worker wakes: the bits must match either way.
      const two = withWasm(true, () => withThreads(2, go))[0];
      expect(bits(two), JSON.stringify(cf)).toEqual(bits(one));
    });
  });

  it.each(['LSTM', 'GRU', 'RNN'] as Kind[])('%s directions big enough to wait for the worker run on it, with the same bits', async (kind) => {
    await ready;
    const cf: Config = { ...randomConfig(kind, 23), seq: 48, batch: 2, input: 40, hidden: 64, lens: [48, 31], clip: Infinity, keyed: true };
    const go = pairRunner(cf, 23), one = withWasm(true, () => withThreads(1, go))[0];
    expectClose(one, withWasm(false, go)[0], JSON.stringify(cf));
    // A worker may still miss a job (descheduled on a busy machine past the caller doing both): retry a while.
    const end = performance.now() + 5000;
    let two: Outputs;
    do two = withWasm(true, () => withThreads(2, go))[0]; while (!lastThreadIds().includes(1) && performance.now() < end);
    expect(lastThreadIds(), 'a direction ran on the worker').toContain(1);
    expect(bits(two)).toEqual(bits(one));
  });

  it.each(['LSTM', 'GRU', 'RNN'] as Kind[])('%s edge shapes: hidden 1 and 17, batch 1 and 3, a zero-length row, one timestep', async (kind) => {
    await ready;
    const shapes = [[1, 1, 1, 1, [1]], [1, 3, 2, 17, [1, 0, 1]], [7, 3, 5, 17, [7, 0, 4]], [4, 1, 33, 3, [4]]] as const;
    for (const [seq, batch, input, hidden, lens] of shapes) {
      const cf: Config = { ...randomConfig(kind, seq + hidden), seq, batch, input, hidden, lens: [...lens] };
      const go = pairRunner(cf, hidden);
      const want = withWasm(false, go)[0], one = withWasm(true, () => withThreads(1, go))[0];
      expectClose(one, want, JSON.stringify(cf));
      expect(bits(withWasm(true, () => withThreads(2, go))[0])).toEqual(bits(one));
    }
  });

  it('the wasm direction of a mixed pair gives the same bits as in a wasm pair', async () => {
    await ready;
    const cf: Config = { ...randomConfig('LSTM', 5), seq: 9, batch: 2, input: 6, hidden: 12, lens: [9, 5], keyed: true, layout: 1 }, go = pairRunner(cf, 3);
    const pair = withWasm(true, () => withThreads(2, go))[0];
    // Non-default activations on the reverse direction send it to TypeScript; the forward one stays on
    // wasm, alone in its call. Layout 1 puts the two directions in alternate rows of Y.
    const mixed = withWasm(true, () => withThreads(2, pairRunner(cf, 3, [DEFAULTS.LSTM, ['hardsigmoid', 'tanh', 'tanh']])))[0];
    const hs = cf.hidden, fwd = (o: Outputs) => bits(o)[0].filter((_, i) => Math.floor(i / hs) % 2 === 0);
    expect(fwd(mixed)).toEqual(fwd(pair));
    expect(lastThreadIds()).toEqual([0]);
  });

  it('a pair with one direction off the wasm path matches the TypeScript cells', async () => {
    await ready;
    for (const kind of ['LSTM', 'GRU', 'RNN'] as Kind[]) {
      const acts = [DEFAULTS[kind], DEFAULTS[kind].map((a, i) => (i === 0 ? 'hardsigmoid' : a))];
      const cf = randomConfig(kind, 17), go = pairRunner(cf, 17, acts.reverse());
      expectClose(withWasm(true, () => withThreads(2, go))[0], withWasm(false, go)[0], JSON.stringify(cf));
    }
  });
});
