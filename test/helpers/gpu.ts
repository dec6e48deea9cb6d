// WebGPU test helpers: the CPU backend is the reference for GPU kernels. Without an adapter the GPU
// suites are skipped with the reason shown, except under CI=true, where that is a failure.
import { describe, expect } from 'vitest';
import { InferenceSession, Tensor } from '../../index.js';
import { compareValues } from '../../conformance/compare.js';
import { acquireGpu, releaseGpu } from '../../kernels/webgpu/device.js';
import { NdArray, toNdArray, toTensor } from '../../engine/tensor.js';

async function probe(): Promise<string | undefined> {
  try { releaseGpu(await acquireGpu()); return undefined; } catch (e) { return (e as Error).message; }
}
const missing = await probe();

export function describeGpu(name: string, fn: () => void) {
  if (!missing) return describe(name, fn);
  if (process.env.CI === 'true') return describe(name, () => { throw new Error(`WebGPU is required under CI=true: ${missing}`); });
  return describe.skip(`${name} [skipped: no WebGPU adapter: ${missing}]`, fn);
}

/** Runs `bytes` on WebGPU (strict: every compute node on the GPU) and on the CPU; compares every output. */
export async function expectGpuMatchesCpu(bytes: Uint8Array, feeds: Record<string, NdArray>, tol = { rtol: 1e-3, atol: 1e-4 }, strict = true) {
  const gpu = await InferenceSession.create(bytes, { executionProviders: ['webgpu'], strict });
  const cpu = await InferenceSession.create(bytes);
  try {
    const pub = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toTensor(v)]));
    const [g, c] = [await gpu.run(pub), await cpu.run(pub)];
    for (const [name, t] of Object.entries(c)) {
      const diff = compareValues(toNdArray(t as Tensor), toNdArray(g[name] as Tensor), tol);
      expect(diff, `output '${name}'`).toBeUndefined();
    }
    return gpu;
  } finally {
    await gpu.release();
  }
}
