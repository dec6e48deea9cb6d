// Resampling in one pass. The host turns each resized axis into a tap table (input index and weight per
// output index, as kernels/cpu/resize.ts computes them), so every coordinate mode, rounding rule and
// filter (nearest, linear, cubic, antialiased) is the CPU's exactly; the shader only walks the taps of
// every axis at once. One pipeline per (dtype, rank, nearest or weighted); shapes and table offsets are
// uniforms.
import type { DType } from '../../engine/dtype.js';
import type { Taps } from '../cpu/resize.js';
import type { GpuArray, Program } from './runner.js';
import { computeType, declare, entry, f32u, load, saturate, store, u32s } from './wgsl.js';

const WG = 64;

/** Tap tables of all axes in one int32 array: axis d's entries start at off[d]; output index x has k[d]
 *  (index, weight bits) pairs at off[d] + 2 * (x * k[d] + j), index -1 marking an output that takes the
 *  fill value. k[d] = 0 leaves axis d unchanged. */
export interface TapTable { data: Int32Array; k: number[]; off: number[] }

export function packTaps(perAxis: (Taps | undefined)[]): TapTable {
  const k = perAxis.map((t) => t?.k ?? 0), off: number[] = [];
  let n = 0;
  perAxis.forEach((t) => { off.push(n); n += t ? 2 * t.idx.length : 0; });
  const data = new Int32Array(Math.max(n, 1)), w = new Float32Array(data.buffer);
  perAxis.forEach((t, d) => {
    if (!t) return;
    for (let e = 0; e < t.idx.length; e++) {
      data[off[d] + 2 * e] = t.outside[(e / t.k) | 0] ? -1 : t.idx[e];
      w[off[d] + 2 * e + 1] = t.w[e];
    }
  });
  return { data, k, off };
}

/** Value of the fill in dtype d's storage, from the f32 uniform `fill`. */
function fillValue(d: DType): string {
  if (d === 'bool') return store(d, 'i32(u_fill()) != 0');
  const ct = computeType(d);
  return store(d, ct === 'f32' ? 'u_fill()' : `${ct}(u_fill())`);
}

/** out[outShape] from x through the tap table `table` (uploaded `TapTable.data`). Nearest copies the
 *  stored element (any dtype); weighted sums in f32 and stores integers truncated and saturated. */
export function resample(x: GpuArray, table: GpuArray, t: TapTable, outShape: readonly number[], fill: number, nearest: boolean): Program {
  const rank = x.shape.length, total = outShape.reduce((a, b) => a * b, 1);
  const strides = x.shape.map((_, d) => x.shape.slice(d + 1).reduce((a, b) => a * b, 1));
  const uniforms = [u32s('total', total), u32s('out_shape', outShape), u32s('in_strides', strides), u32s('k', t.k), u32s('off', t.off), f32u('fill', fill)];
  const dims = [...Array(rank).keys()];
  const coords = dims.map((d) => `  let c${d} = (gi / ${dims.slice(d + 1).map((e) => `u_out_shape(${e}u)`).join(' / ') || '1u'}) % u_out_shape(${d}u);`);
  const outside = dims.map((d) => `  if (u_k(${d}u) > 0u && tab[u_off(${d}u) + 2u * c${d} * u_k(${d}u)] < 0) { out[gi] = ${fillValue(x.dtype)}; return; }`);
  const body = nearest
    ? `  out[gi] = x[0u${dims.map((d) => ` + tap_i(${d}u, c${d}, 0u) * u_in_strides(${d}u)`).join('')}];`
    : weighted(rank, x.dtype);
  return {
    name: 'Resize',
    key: `resize|${x.dtype}|${rank}|${nearest ? 'nearest' : 'weighted'}`,
    shader: () => `${declare({ inputs: [['x', x.dtype], ['tab', 'int32']], outputs: [['out', x.dtype]], uniforms })}
fn tap_i(d: u32, c: u32, j: u32) -> u32 { if (u_k(d) == 0u) { return c; } return u32(tab[u_off(d) + 2u * (c * u_k(d) + j)]); }
fn tap_w(d: u32, c: u32, j: u32) -> f32 { if (u_k(d) == 0u) { return 1.0; } return bitcast<f32>(tab[u_off(d) + 2u * (c * u_k(d) + j) + 1u]); }
${entry(WG, 'u_total()', [...coords, ...outside, body].join('\n'))}`,
    inputs: [x, table],
    outputs: [{ dtype: x.dtype, shape: outShape }],
    uniforms,
    workgroups: Math.ceil(total / WG),
  };
}

/** Nested loops over the taps of every axis (an untouched axis has one tap of weight 1). */
function weighted(rank: number, dtype: DType): string {
  let code = `  var acc = 0.0;\n`, close = '';
  for (let d = 0; d < rank; d++) {
    const prev = d ? `o${d - 1}` : '0u', wprev = d ? `w${d - 1}` : '1.0';
    code += `  for (var j${d} = 0u; j${d} < max(u_k(${d}u), 1u); j${d}++) {
    let o${d} = ${prev} + tap_i(${d}u, c${d}, j${d}) * u_in_strides(${d}u); let w${d} = ${wprev} * tap_w(${d}u, c${d}, j${d});\n`;
    close += '  }\n';
  }
  const last = rank ? `o${rank - 1}` : '0u', w = rank ? `w${rank - 1}` : '1.0';
  code += `    acc += ${w} * f32(${load(dtype, `x[${last}]`)});\n${close}`;
  // Integers truncate and saturate to the dtype's range, as the CPU's storeAs does.
  return `${code}  out[gi] = ${store(dtype, saturate(dtype, 'acc'))};`;
}
