// Shared pieces of the whole-model tests: a graph-building helper with deterministic weights, and an
// oracle that runs several feed sets (batch 1, batch 2, ...) through ONE Lastmile session and ONE
// onnxruntime-node session, so symbolic dims really are resolved per run rather than per session.
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import { compareValues } from '../../conformance/compare.js';
import { NdArray } from '../../engine/tensor.js';
import { InferenceSession, Tensor } from '../../index.js';
import { float, GraphBuilder, type AttrInput } from '../../loaders/builder.js';
import { rng } from '../helpers/oracle.js';

export type Feeds = Record<string, NdArray>;
export interface Tol { rtol: number; atol: number }
export const MODEL_TOL: Tol = { rtol: 1e-3, atol: 1e-4 };

/** A built model plus a feed factory: feeds(batch, seq) returns inputs for that batch (and sequence) size. */
export interface ModelCase { bytes: Uint8Array; feeds: (batch: number, seq: number) => Feeds }

const describeFeeds = (f: Feeds) => Object.entries(f).map(([k, v]) => `${k}[${v.shape}]`).join(' ');

/** Every feed set through the same pair of sessions; every output compared. */
export async function expectSessionMatchesOrt(bytes: Uint8Array, feedSets: Feeds[], tol: Tol = MODEL_TOL) {
  const ours = await InferenceSession.create(bytes);
  const ref = await ort.InferenceSession.create(bytes);
  for (const feeds of feedSets) {
    const label = describeFeeds(feeds);
    const mine = await ours.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)])));
    const theirs = await ref.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor(v.dtype as never, v.data as never, v.shape as number[])])));
    expect(Object.keys(mine).sort(), label).toEqual(Object.keys(theirs).sort());
    for (const [name, t] of Object.entries(theirs)) {
      const got = mine[name] as Tensor;
      const diff = compareValues(new NdArray(t.type as never, t.dims, t.data as never), new NdArray(got.type, got.dims, got.data as never), tol);
      expect(diff, `feeds ${label}: output '${name}'`).toBeUndefined();
    }
  }
}

/**
 * Runs a case at batch 1, batch 2, then batch 1 again (with different sequence lengths for text models) on one
 * session each: the third run catches state or shape caches that a first run would leave behind.
 */
export function runCase(c: ModelCase, runs: [batch: number, seq: number][] = [[1, 5], [2, 7], [1, 3]], tol = MODEL_TOL) {
  return expectSessionMatchesOrt(c.bytes, runs.map(([b, s]) => c.feeds(b, s)), tol);
}

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/**
 * GraphBuilder plus deterministic weights and terse node helpers. Weight initialisers are uniform with a
 * bound chosen from fan-in (He for ReLU-family nets, Xavier/PyTorch-default elsewhere) so activations
 * stay O(1) through the whole network and the 1e-3/1e-4 tolerance tests arithmetic, not overflow.
 */
export class Net {
  readonly g = new GraphBuilder('model');
  readonly r: ReturnType<typeof rng>;
  private n = 0;
  private consts = new Map<string, string>();
  constructor(seed: number) { this.r = rng(seed); }

  uid(prefix: string) { return `${prefix}_${this.n++}`; }
  uniform(prefix: string, shape: number[], lo: number, hi: number): string {
    return this.g.init(this.uid(prefix), 'float32', shape, Float32Array.from({ length: prod(shape) }, () => this.r.float(lo, hi)));
  }
  /** U(-b, b) with b = sqrt(6 / fanIn): He-uniform, variance 2/fanIn (keeps ReLU activations O(1)). */
  he(prefix: string, shape: number[], fanIn: number) { const b = Math.sqrt(6 / fanIn); return this.uniform(prefix, shape, -b, b); }
  /** U(-b, b) with b = 1/sqrt(fanIn): PyTorch's default Linear/RNN init, variance 1/(3 fanIn). */
  torchDefault(prefix: string, shape: number[], fanIn: number) { const b = 1 / Math.sqrt(fanIn); return this.uniform(prefix, shape, -b, b); }
  /** U(-b, b) with b = sqrt(6 / (fanIn + fanOut)). */
  xavier(prefix: string, shape: number[], fanIn: number, fanOut: number) { const b = Math.sqrt(6 / (fanIn + fanOut)); return this.uniform(prefix, shape, -b, b); }

  /** Shared constant initialisers (one per distinct value), as exporters' constant folding leaves them. */
  f32(v: number | number[]): string { return this.constant('float32', v); }
  i64(v: number | number[]): string { return this.constant('int64', v); }
  private constant(dtype: 'float32' | 'int64', v: number | number[]): string {
    const key = `${dtype}:${JSON.stringify(v)}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.uid(dtype === 'float32' ? 'cf' : 'ci');
      const vals = [v].flat();
      this.g.init(name, dtype, Array.isArray(v) ? [v.length] : [], dtype === 'int64' ? BigInt64Array.from(vals, BigInt) : Float32Array.from(vals));
      this.consts.set(key, name);
    }
    return name;
  }
  /** A Constant node (what torch.onnx emits for traced Python literals that are not folded into initialisers). */
  constNode(t: NdArray): string { return this.op('Constant', [], { value: t }); }

  op(type: string, inputs: string[], attrs: Record<string, AttrInput> = {}): string { return this.g.node(type, inputs, attrs)[0]; }
  ops(type: string, inputs: string[], attrs: Record<string, AttrInput>, n: number): string[] { return this.g.node(type, inputs, attrs, n); }

  // Small building blocks reused by several families.
  add(a: string, b: string) { return this.op('Add', [a, b]); }
  mul(a: string, b: string) { return this.op('Mul', [a, b]); }
  relu(x: string) { return this.op('Relu', [x]); }
  /** SiLU / Swish as torch < 1.x and EfficientNet exports emit it: x * sigmoid(x). */
  silu(x: string) { return this.mul(x, this.op('Sigmoid', [x])); }
  /** x @ W + b with W [in, out] (torch nn.Linear on a rank-3 input exports MatMul then Add). */
  linear(x: string, din: number, dout: number, prefix = 'linear') {
    return this.add(this.op('MatMul', [x, this.xavier(`${prefix}_w`, [din, dout], din, dout)]), this.uniform(`${prefix}_b`, [dout], -0.1, 0.1));
  }
  /** nn.Linear on a rank-2 input: Gemm with the weight stored [out, in] and transB=1. */
  gemm(x: string, din: number, dout: number, prefix = 'fc') {
    return this.op('Gemm', [x, this.torchDefault(`${prefix}_w`, [dout, din], din), this.uniform(`${prefix}_b`, [dout], -0.1, 0.1)], { alpha: float(1), beta: float(1), transB: 1 });
  }
  /** Shape(x)[i] as a 0-d int64, then unsqueezed to [1] for Concat: torch's traced x.size(i). */
  dim(x: string, i: number): string {
    return this.op('Unsqueeze', [this.op('Gather', [this.op('Shape', [x]), this.i64(i)], { axis: 0 }), this.i64([0])]);
  }

  model(opset = 17): Uint8Array { return this.g.model({ opset }); }
}
