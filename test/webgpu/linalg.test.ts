// WebGPU Det and TensorScatter against the CPU backend: Det over batches of random, singular and
// pivoting-heavy matrices (f32 on the GPU, float64 on the CPU: compared to 1e-4 relative); TensorScatter
// bit for bit over axes, linear and circular modes (negative and wrapping starts), and several dtypes.
import { it } from 'vitest';
import { allocStorage, type DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { GraphBuilder } from '../../loaders/builder.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

describeGpu('WebGPU Det matches the CPU backend', () => {
  it('batches of 1x1 to 7x7 matrices, singular ones and zero leading pivots', async () => {
    const r = rng(501);
    for (const [batch, n] of [[[], 1], [[3], 2], [[2, 3], 3], [[5], 4], [[1], 7], [[4, 2], 5]] as [number[], number][]) {
      const x = randomF32([...batch, n, n], r, -2, 2), d = x.data;
      if (n > 1) {
        for (let j = 0; j < n; j++) d[j] = 0; // a zero first column entry forces a row swap
        d[n] = d[n] === 0 ? 1 : d[n];
        if (d.length > n * n) for (let j = 0; j < n; j++) d[n * n + n + j] = d[n * n + j]; // second matrix: two equal rows
      }
      const g = new GraphBuilder();
      g.output(g.node('Det', [g.input('x', 'float32', x.shape as number[])])[0], null);
      await expectGpuMatchesCpu(g.model({ opset: 11 }), { x }, { rtol: 1e-4, atol: 1e-5 });
    }
  });
});

function values(d: DType, shape: number[], r: ReturnType<typeof rng>): NdArray {
  const n = shape.reduce((a, b) => a * b, 1);
  if (d === 'float32') return randomF32(shape, r);
  if (d === 'int64') return new NdArray(d, shape, BigInt64Array.from({ length: n }, () => BigInt(r.int(-1e9, 1e9)) * 4099n));
  const data = allocStorage(d, n) as Int32Array;
  for (let i = 0; i < n; i++) data[i] = r.int(-128, 127);
  return new NdArray(d, shape, data);
}

describeGpu('WebGPU TensorScatter matches the CPU backend exactly', () => {
  it('axes, linear and circular writes, omitted write_indices, several dtypes', async () => {
    const r = rng(502);
    for (let t = 0; t < 10; t++) {
      const d = r.pick<DType>(['float32', 'int64', 'int8', 'float32']), rank = r.int(2, 4), shape = Array.from({ length: rank }, () => r.int(1, 6));
      const axis = r.int(1, rank - 1), max = shape[axis], seq = r.int(1, max), circular = r.next() < 0.5;
      const upd = shape.map((v, i) => (i === axis ? seq : v));
      const starts = Array.from({ length: shape[0] }, () => (circular ? r.int(-2 * max, 2 * max) : r.int(0, max - seq)));
      const g = new GraphBuilder(), withIdx = r.next() < 0.8;
      const ins = [g.input('past', d, shape), g.input('upd', d, upd), ...(withIdx ? [g.input('idx', 'int64', [shape[0]])] : [])];
      g.output(g.node('TensorScatter', ins, { axis: r.next() < 0.5 ? axis : axis - rank, mode: circular ? 'circular' : 'linear' })[0], null);
      const feeds: Record<string, NdArray> = { past: values(d, shape, r), upd: values(d, upd, r) };
      if (withIdx) feeds.idx = new NdArray('int64', [shape[0]], BigInt64Array.from(starts.map(BigInt)));
      await expectGpuMatchesCpu(g.model({ opset: 24 }), feeds, { rtol: 0, atol: 0 });
    }
  });
});
