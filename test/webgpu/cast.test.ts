// WebGPU Cast, CastLike and Clip against the CPU backend: every pair of GPU dtypes, with values that
// probe rounding, wrapping, NaN and infinities, int64 beyond 2^53 and float16 overflow.
import { afterAll, beforeAll, it } from 'vitest';
import type { DType } from '../../engine/dtype.js';
import { NdArray } from '../../engine/tensor.js';
import { acquireGpu, releaseGpu, type GpuContext } from '../../kernels/webgpu/device.js';
import { GraphBuilder, type AttrInput } from '../../loaders/builder.js';
import { onnxCode } from '../../engine/dtype.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

const FLOATS = [0, -0, 0.5, -0.5, 1.5, -2.5, 7.99, -7.99, 65504, 65519, 65520, -70000, 1e-8, 2 ** 31, -(2 ** 31) - 256, 3e9, -3e9,
  2 ** 40 + 2 ** 20, -(2 ** 52), 1.5e19, -9.3e18, 1e30, -1e30, NaN, Infinity, -Infinity];
const INT64 = [0n, 1n, -1n, 2n ** 31n, -(2n ** 31n) - 1n, 2n ** 32n - 1n, 2n ** 53n + 1n, -(2n ** 53n) - 3n, 2n ** 62n + 2n ** 38n + 1n,
  -(2n ** 63n), 2n ** 63n - 1n, 16777217n, -16777217n, 2n ** 40n + 2n ** 16n + 1n];
const INT32 = [0, 1, -1, 16777217, -16777217, 2 ** 31 - 1, -(2 ** 31), 123456789, -987654321, 65519, 70000];

function sample(dtype: DType): NdArray {
  switch (dtype) {
    case 'float32': return new NdArray(dtype, [FLOATS.length], Float32Array.from(FLOATS));
    case 'float16': return new NdArray(dtype, [8], Float32Array.of(0, -1.5, 2049, 65504, -0.0009765625, Infinity, NaN, 300.5));
    case 'int64': return new NdArray(dtype, [INT64.length], BigInt64Array.from(INT64));
    case 'int32': return new NdArray(dtype, [INT32.length], Int32Array.from(INT32));
    case 'uint32': return new NdArray(dtype, [INT32.length], Uint32Array.from(INT32, (v) => v >>> 0));
    default: return new NdArray(dtype, [5], Uint8Array.of(1, 0, 0, 1, 1));
  }
}

async function run(op: string, ins: NdArray[], attrs: Record<string, AttrInput> = {}, opset = 21, cpu: NdArray[] = []) {
  const g = new GraphBuilder(), feeds: Record<string, NdArray> = {};
  const names = ins.map((v, i) => { feeds[`x${i}`] = v; return g.input(`x${i}`, v.dtype, [...v.shape]); });
  cpu.forEach((c, i) => names.push(g.init(`c${i}`, c)));
  g.output(g.node(op, names, attrs)[0], null);
  await expectGpuMatchesCpu(g.model({ opset }), feeds, { rtol: 0, atol: 0 });
}

let gpu: GpuContext | undefined;
// Holding the device keeps its pipeline cache across the sessions below.
beforeAll(async () => { gpu = await acquireGpu().catch(() => undefined); });
afterAll(() => { if (gpu) releaseGpu(gpu); });

const GPU_TYPES: DType[] = ['float32', 'float16', 'int32', 'uint32', 'bool', 'int64'];

describeGpu('WebGPU casts match the CPU backend exactly', () => {
  it('Cast between every pair of GPU dtypes (all-int64/bool inputs stay on the CPU by design)', async () => {
    for (const from of GPU_TYPES) for (const to of GPU_TYPES) if (from !== to) await run('Cast', [sample(from)], { to: onnxCode(to) });
  });

  it('CastLike takes the target from its second input, int64 sources included', async () => {
    await run('CastLike', [sample('int64'), new NdArray('float32', [1], Float32Array.of(0))]);
    await run('CastLike', [sample('int64'), new NdArray('float16', [1], Float32Array.of(0))]);
    await run('CastLike', [sample('float32'), new NdArray('int64', [1], BigInt64Array.of(0n))]);
    await run('CastLike', [sample('bool'), new NdArray('int32', [1], Int32Array.of(0))]);
  });

  it('Clip with attribute bounds, input bounds, one bound, and min > max', async () => {
    const r = rng(7), x = randomF32([3, 4, 5], r, -3, 3);
    x.data[0] = NaN;
    await run('Clip', [x], { min: -1, max: 1.5 }, 6);
    await run('Clip', [x], { max: 0.25 }, 6);
    const f = (v: number) => new NdArray('float32', [], Float32Array.of(v));
    await run('Clip', [x], {}, 13, [f(-0.5), f(2)]);
    await run('Clip', [x], {}, 13, [f(1), f(-1)]);
    await run('Clip', [new NdArray('int32', [6], Int32Array.of(-9, -3, 0, 3, 9, 2 ** 31 - 1))], {}, 13, [new NdArray('int32', [], Int32Array.of(-4))]);
    await run('Clip', [new NdArray('float16', [4], Float32Array.of(-2, -0.5, 0.5, 2))], {}, 13, [new NdArray('float16', [], Float32Array.of(-1)), new NdArray('float16', [], Float32Array.of(1))]);
  });
});
