// WebGPU BitwiseAnd/Or/Xor/Not, BitShift and SwiGLU against the CPU backend: int32 and uint32, broadcasting,
// shift counts at and beyond the width (which empty the value rather than wrap the count); SwiGLU over float dtypes.
import { it } from 'vitest';
import { NdArray } from '../../engine/tensor.js';
import { GraphBuilder } from '../../loaders/builder.js';
import { rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type Rng = ReturnType<typeof rng>;

function ints(d: 'int32' | 'uint32', shape: number[], r: Rng, hi = 2 ** 32): NdArray {
  const n = shape.reduce((a, b) => a * b, 1), v = Array.from({ length: n }, () => Math.floor(r.next() * hi));
  return new NdArray(d, shape, d === 'int32' ? Int32Array.from(v) : Uint32Array.from(v));
}

async function check(op: string, xs: NdArray[], attrs = {}) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = xs.map((x, i) => { feeds[`x${i}`] = x; return g.input(`x${i}`, x.dtype, [...x.shape]); });
  g.output(g.node(op, names, attrs)[0], null);
  await expectGpuMatchesCpu(g.model({ opset: 18 }), feeds);
}

describeGpu('WebGPU bitwise ops match the CPU backend', () => {
  it('BitwiseAnd/Or/Xor with broadcasting and BitwiseNot, int32 and uint32', async () => {
    const r = rng(101);
    for (const d of ['int32', 'uint32'] as const) {
      for (const op of ['BitwiseAnd', 'BitwiseOr', 'BitwiseXor']) {
        const out = Array.from({ length: r.int(1, 3) }, () => r.int(1, 4)), b = out.slice(r.int(0, out.length - 1)).map((v) => (r.next() < 0.3 ? 1 : v));
        await check(op, [ints(d, out, r), ints(d, b, r)]);
      }
      await check('BitwiseNot', [ints(d, [r.int(1, 5), r.int(1, 5)], r)]);
    }
  });
  it('BitShift LEFT and RIGHT, counts 0-40', async () => {
    const r = rng(102);
    for (const direction of ['LEFT', 'RIGHT']) {
      await check('BitShift', [ints('uint32', [3, 5], r), ints('uint32', [3, 5], r, 41)], { direction });
      await check('BitShift', [ints('uint32', [2, 4], r), ints('uint32', [4], r, 33)], { direction });
    }
  });
});

describeGpu('WebGPU SwiGLU matches the CPU backend', () => {
  it('random shapes, alpha values, float32 and float16', async () => {
    const r = rng(103);
    for (const [alpha, d] of [[1, 'float32'], [1.702, 'float32'], [0.5, 'float16']] as [number, 'float32' | 'float16'][]) {
      const shape = Array.from({ length: r.int(1, 4) }, () => r.int(1, 6)), n = shape.reduce((a, b) => a * b, 1);
      const vals = () => Float32Array.from({ length: n }, () => Math.round((r.next() * 8 - 4) * 64) / 64);
      const g = new GraphBuilder();
      g.output(g.node('SwiGLU', [g.input('a', d, shape), g.input('b', d, shape)], { alpha })[0], null);
      await expectGpuMatchesCpu(g.model({ opset: 28 }), { a: new NdArray(d, shape, vals()), b: new NdArray(d, shape, vals()) }, d === 'float16' ? { rtol: 1e-2, atol: 1e-2 } : undefined);
    }
  });
});
