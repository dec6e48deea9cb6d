// WebGPU Einsum (strided GEMM contractions plus the strided-sum kernel) against the CPU backend.
import { afterAll, beforeAll, it } from 'vitest';
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { GraphBuilder } from '../../loaders/builder.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

type Rng = ReturnType<typeof rng>;

function data(dtype: DType, shape: number[], r: Rng): NdArray {
  const f = randomF32(shape, r, -3, 3).data;
  if (dtype === 'int32') return new NdArray(dtype, shape, Int32Array.from(f, Math.round));
  return new NdArray(dtype, shape, dtype === 'float16' ? f.map((v) => Math.round(v * 8) / 8) : f);
}

/** Shapes for an equation's terms with random label sizes; '...' takes `ell` (broadcast dims may be 1). */
function shapesFor(eq: string, r: Rng, ell: number[][] = []): number[][] {
  const size = new Map<string, number>();
  return eq.split('->')[0].split(',').map((t, i) => t.replace('...', '.').split('').flatMap((c) => {
    if (c === '.') return ell[i] ?? [];
    if (!size.has(c)) size.set(c, r.int(1, 6));
    return [size.get(c)!];
  }));
}

async function check(eq: string, dtype: DType, r: Rng, ell?: number[][]) {
  const shapes = shapesFor(eq, r, ell), g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = shapes.map((s, i) => { feeds[`x${i}`] = data(dtype, s, r); return g.input(`x${i}`, dtype, s); });
  g.output(g.node('Einsum', names, { equation: eq })[0], null);
  await expectGpuMatchesCpu(g.model({ opset: 12 }), feeds, dtype === 'float16' ? { rtol: 1e-2, atol: 1e-2 } : undefined);
}

let gpu: GpuContext;
beforeAll(async () => { gpu = await acquireGpu().catch(() => undefined as never); });
afterAll(() => { if (gpu) releaseGpu(gpu); });

const EQUATIONS = [
  'ij,jk->ik', 'bij,bjk->bik', 'bhqd,bhkd->bhqk', 'bhqk,bhkd->bhqd', 'ij->ji', 'ii->i', 'ii', 'ij->', 'i,i', 'i,j->ij', 'ij,ij->ij',
  'ij,jk,kl->il', 'iij,jk->ik', 'ijk,ikj->i', 'abc,bd->acd', 'abc,cb->a', 'bij->bj', 'ij,kj->ki', 'abcd,dcb->a', 'abc,abd->cdab', 'i,i->',
];

describeGpu('WebGPU Einsum matches the CPU backend', () => {
  it('common equations over random label sizes, float32', async () => {
    const r = rng(71);
    for (const eq of EQUATIONS) for (let k = 0; k < 2; k++) await check(eq, 'float32', r);
  });
  it('int32 and float16 operands', async () => {
    const r = rng(72);
    for (const eq of ['ij,jk->ik', 'bij->bj', 'iij,jk->ik', 'abc,bd->acd']) for (const d of ['int32', 'float16'] as DType[]) await check(eq, d, r);
  });
  it('ellipses with broadcasting and implicit outputs', async () => {
    const r = rng(73);
    await check('...ij,...jk->...ik', 'float32', r, [[2, 3], [1, 3]]);
    await check('...ij,jk', 'float32', r, [[2]]);
    await check('...ii->...i', 'float32', r, [[3, 1]]);
    await check('b...,b...->b', 'float32', r, [[4], [1]]);
  });
  it('a product with an empty dim gives zeros', async () => {
    const g = new GraphBuilder();
    g.output(g.node('Einsum', [g.input('a', 'float32', [3, 0]), g.input('b', 'float32', [0, 2])], { equation: 'ij,jk->ik' })[0], null);
    await expectGpuMatchesCpu(g.model({ opset: 12 }), { a: randomF32([3, 0], rng(1)), b: randomF32([0, 2], rng(2)) });
  });
});
