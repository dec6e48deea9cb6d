// Det (batched determinants) and TensorScatter (the KV-cache write) on the GPU.
import type { DType } from '../../engine/dtype.js';
import type { GpuArray, Program } from './runner.js';
import { declare, entry, load, store, u32s } from './wgsl.js';

const WG = 64;

/**
 * Determinants of `count` n x n matrices, one invocation per matrix: Gaussian elimination with partial
 * pivoting (the first largest |pivot| wins, as on the CPU) in a scratch copy, in f32 where the CPU uses
 * float64. Meant for the small matrices Det sees; the scratch is the second output.
 */
export function determinants(x: GpuArray, n: number, count: number, outShape: readonly number[]): Program {
  const uniforms = [u32s('count', count), u32s('n', n)];
  return {
    name: 'Det', key: `det|${x.dtype}`,
    shader: () => `${declare({ inputs: [['x', x.dtype]], outputs: [['out', x.dtype], ['a', 'float32']], uniforms })}
${entry(WG, 'u_count()', `  let n = u_n(); let base = gi * n * n;
  for (var i = 0u; i < n * n; i++) { a[base + i] = ${load(x.dtype, 'x[base + i]')}; }
  var det = 1.0;
  for (var k = 0u; k < n; k++) {
    var p = k;
    for (var i = k + 1u; i < n; i++) { if (abs(a[base + i * n + k]) > abs(a[base + p * n + k])) { p = i; } }
    let pivot = a[base + p * n + k];
    if (pivot == 0.0) { det = 0.0; break; }
    if (p != k) {
      det = -det;
      for (var j = k; j < n; j++) { let t = a[base + k * n + j]; a[base + k * n + j] = a[base + p * n + j]; a[base + p * n + j] = t; }
    }
    det *= pivot;
    for (var i = k + 1u; i < n; i++) {
      let f = a[base + i * n + k] / pivot;
      if (f != 0.0) { for (var j = k + 1u; j < n; j++) { a[base + i * n + j] -= f * a[base + k * n + j]; } }
    }
  }
  out[gi] = ${store(x.dtype, 'det')};`)}`,
    inputs: [x], outputs: [{ dtype: x.dtype, shape: outShape }, { dtype: 'float32', shape: [count * n * n] }], uniforms,
    workgroups: Math.ceil(count / WG),
  };
}

export interface ScatterGeom { prefix: number; perBatch: number; max: number; seq: number; inner: number; circular: boolean }

/**
 * TensorScatter as a gather: each output element of past [prefix, max, inner] takes the update row that
 * lands on its sequence position (start + s, modulo max when circular), else keeps past's value. Elements
 * move in their storage type, so every GPU dtype (int64 word pairs too) copies exactly.
 */
export function tensorScatter(past: GpuArray, update: GpuArray, starts: GpuArray, g: ScatterGeom): Program {
  const total = past.size, d: DType = past.dtype;
  const uniforms = [u32s('total', total), u32s('per_batch', g.perBatch), u32s('max', g.max), u32s('seq', g.seq), u32s('inner', g.inner)];
  // Circular starts arrive reduced to [0, max); linear ones are checked to fit on the host.
  const rel = g.circular ? '(t + u_max() - u32(start)) % u_max()' : 'u32(i32(t) - start)';
  return {
    name: 'TensorScatter', key: `tscatter|${d}|${g.circular}`,
    shader: () => `${declare({ inputs: [['past', d], ['upd', d], ['starts', 'int32']], outputs: [['out', d]], uniforms })}
${entry(WG, 'u_total()', `  let e = gi % u_inner(); let row = gi / u_inner();
  let t = row % u_max(); let p = row / u_max();
  let start = starts[p / u_per_batch()];
  let s = ${rel};
  if (${g.circular ? '' : 'i32(t) >= start && '}s < u_seq()) { out[gi] = upd[(p * u_seq() + s) * u_inner() + e]; } else { out[gi] = past[gi]; }`)}`,
    inputs: [past, update, starts], outputs: [{ dtype: d, shape: past.shape }], uniforms, workgroups: Math.ceil(total / WG),
  };
}
