// The CPU memory arena: buffers of dead intermediates are reused within a run and across runs, never
// while any live value (a view, a sequence, a graph output, a constant) still reads them.
import { describe, expect, it } from 'vitest';
import { Arena } from '../engine/arena.js';
import { allocStorage } from '../engine/dtype.js';
import { execute } from '../engine/execute.js';
import { compile } from '../engine/plan.js';
import { NdArray, Tensor, type Value } from '../engine/tensor.js';
import { InferenceSession } from '../index.js';
import { loadModel } from '../loaders/onnx.js';
import { GraphBuilder } from '../loaders/builder.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

describe('Arena', () => {
  it('takes back only buffers it handed out, up to its limit', () => {
    const a = new Arena(64);
    const t = a.take(32);
    expect(t.stale).toBe(false);
    a.give(new ArrayBuffer(32)); // not born here: refused
    expect(a.keptBytes).toBe(0);
    a.give(t.buf);
    expect(a.keptBytes).toBe(32);
    const again = a.take(32);
    expect(again).toEqual({ buf: t.buf, stale: true });
    const big = a.take(128);
    a.give(big.buf); // over the limit: left to the garbage collector
    expect(a.keptBytes).toBe(0);
    expect(a.stats).toEqual({ reused: 1, fresh: 2 });
  });

  it('clears recycled storage for every dtype', () => {
    const a = new Arena();
    for (const d of ['float32', 'int64', 'uint8', 'float16', 'complex64'] as const) {
      // Dirty a buffer born in the arena, return it, and allocate the same size through it again.
      const t = a.take(64);
      new Uint8Array(t.buf).fill(0xff);
      a.give(t.buf);
      const s = withArenaAlloc(a, () => allocStorage(d, 64 / bytesOf(d))) as Float32Array | BigInt64Array | Uint8Array;
      expect(s.buffer, d).toBe(t.buf);
      expect(Array.from(s as ArrayLike<number | bigint>).every((v) => v === 0 || v === 0n), d).toBe(true);
    }
  });
});

const bytesOf = (d: string) => (d === 'int64' ? 8 : d === 'uint8' ? 1 : d === 'complex64' ? 8 : 4);

/** Runs fn inside a run holding `a` (allocStorage reaches the arena only then): a plan of one step whose op calls fn. */
function withArenaAlloc<T>(a: Arena, fn: () => T): T {
  let out: T | undefined;
  const step = { node: { opType: 'X', domain: '', inputs: [], outputs: [''], attrs: new Map(), name: 'x' }, def: { run: () => { out = fn(); return [undefined]; } }, attrs: undefined, opset: 1, subgraphs: new Map(), implicit: [], release: [] };
  execute({ steps: [step], outputs: [], constants: new Map(), inputs: [], graph: { name: 'g' } } as never, new Map(), undefined, { arena: a });
  return out as T;
}

/** A graph full of aliasing: views (Reshape, Identity, Split), a sequence, a Constant node, and an output that is a view. */
function aliasingModel() {
  const g = new GraphBuilder('alias');
  const x = g.input('x', 'float32', [4, 6]);
  const r = g.node('Relu', [x])[0];
  const flat = g.node('Reshape', [r, g.init('shape', 'int64', [2], BigInt64Array.of(6n, 4n))])[0];
  const [s0, s1] = g.node('Split', [flat, g.init('split', 'int64', [2], BigInt64Array.of(2n, 4n))], { axis: 0 }, 2);
  const k = g.node('Constant', [], { value: new NdArray('float32', [4], Float32Array.of(1, 2, 3, 4)) })[0];
  const a = g.node('Mul', [s0, k])[0];
  const b = g.node('Add', [s1, g.node('Identity', [k])[0]])[0];
  const seq = g.node('SequenceConstruct', [a, b])[0];
  const first = g.node('SequenceAt', [seq, g.init('zero', 'int64', [], BigInt64Array.of(0n))])[0];
  const cat = g.node('Concat', [g.node('Sigmoid', [first])[0], g.node('Tanh', [b])[0]], { axis: 0 })[0];
  g.output(g.node('Reshape', [cat, g.init('back', 'int64', [2], BigInt64Array.of(4n, 6n))])[0], 'float32');
  g.output(g.node('Sub', [cat, k])[0], 'float32');
  g.output(k, 'float32');
  return g.model({ opset: 17 });
}

describe('CPU sessions with the arena', () => {
  it('reuse buffers across runs and keep every run correct', async () => {
    const bytes = aliasingModel();
    const r = rng(7);
    const session = await InferenceSession.create(bytes);
    const held: { out: Record<string, unknown>; copy: Map<string, number[]> }[] = [];
    for (let run = 0; run < 4; run++) {
      const x = randomF32([4, 6], r);
      await expectMatchesOrt(bytes, { x });
      const out = session.runSync({ x: new Tensor('float32', x.data as Float32Array, [4, 6]) });
      held.push({ out, copy: new Map(Object.entries(out).map(([k, t]) => [k, [...((t as Tensor).data as Float32Array)]])) });
    }
    // Outputs handed to the caller are never recycled: later runs left them as they were.
    for (const { out, copy } of held) for (const [k, v] of copy) expect([...((out[k] as Tensor).data as Float32Array)], k).toEqual(v);
    // The Constant node's tensor stays intact run after run.
    expect([...((held[3].out[Object.keys(held[3].out)[2]] as Tensor).data as Float32Array)]).toEqual([1, 2, 3, 4]);
  });

  it('serves later runs from recycled buffers', () => {
    const { graph, opsets, functions } = loadModel(aliasingModel());
    const plan = compile(graph, { opsets, functions }, { level: 'disabled' });
    const arena = new Arena();
    const x = randomF32([4, 6], rng(3));
    const first = execute(plan, new Map<string, Value>([['x', x]]), undefined, { arena });
    const fresh = arena.stats.fresh;
    const second = execute(plan, new Map<string, Value>([['x', x]]), undefined, { arena });
    expect(arena.stats.reused).toBeGreaterThan(0);
    expect(arena.stats.fresh - fresh).toBeLessThan(fresh);
    // The same inputs give the same outputs, and the first run's outputs are untouched.
    second.forEach((v, i) => expect([...((v as NdArray).data as Float32Array)]).toEqual([...((first[i] as NdArray).data as Float32Array)]));
  });

  it('can be turned off (enableCpuMemArena: false)', async () => {
    const bytes = aliasingModel();
    const x = new Tensor('float32', randomF32([4, 6], rng(5)).data as Float32Array, [4, 6]);
    const on = await InferenceSession.create(bytes), off = await InferenceSession.create(bytes, { enableCpuMemArena: false });
    for (let i = 0; i < 3; i++) {
      const a = on.runSync({ x }), b = off.runSync({ x });
      for (const k of Object.keys(a)) expect([...((a[k] as Tensor).data as Float32Array)]).toEqual([...((b[k] as Tensor).data as Float32Array)]);
    }
  });
});
