// Generator programs: EyeLike, OneHot and the cosine-sum windows (Hann, Hamming, Blackman). Outputs are
// written as storage bits (copy.ts's carriers), so one pipeline serves every 4-byte dtype.
import type { DType } from '../../engine/dtype.js';
import { carrier, valueBits } from './copy.js';
import type { GpuArray, Program } from './runner.js';
import { declare, entry, f32u, i32u, load, storageType, store, u32s } from './wgsl.js';

const WG = 64;

/** A `dtype` element from the two-word uniform `name` (valueBits' layout). */
function bitsOf(c: DType, name: string): string {
  return c === 'float16' ? `bitcast<vec2<f16>>(u_${name}(0u)).x` : c === 'int64' ? `vec2<u32>(u_${name}(0u), u_${name}(1u))` : `u_${name}(0u)`;
}

/** rows x cols of `dtype`: 1 on the diagonal k (k > 0 above the main one), 0 elsewhere. */
export function eyeLike(dtype: DType, rows: number, cols: number, k: number): Program {
  const c = carrier(dtype), total = rows * cols;
  // k only matters within (-rows, cols): clamping keeps huge diagonals inside i32.
  const uniforms = [u32s('total', total), u32s('cols', cols), i32u('k', Math.min(Math.max(k, -rows - 1), cols + 1)), u32s('one', valueBits(dtype, 1))];
  return {
    name: 'EyeLike', key: `gen.eye|${c}`,
    shader: () => `${declare({ inputs: [], outputs: [['out', c]], uniforms })}
${entry(WG, 'u_total()', `  let d = i32(gi % u_cols()) - i32(gi / u_cols());
  out[gi] = select(${storageType(c)}(), ${bitsOf(c, 'one')}, d == u_k());`)}`,
    inputs: [], outputs: [{ dtype, shape: [rows, cols] }], uniforms, workgroups: Math.ceil(total / WG),
  };
}

/** fn class_(p) -> index p of `idx` as an i32 class in [0, depth) (negatives count from depth), or -1 when
 *  it is out of range or not an integer. */
function classFn(d: DType): string {
  const read = d === 'int64'
    ? 'let w = idx[p]; let v = bitcast<i32>(w.x); if (w.y != select(0u, 0xffffffffu, v < 0)) { return -1; }'
    : d === 'uint32' ? 'let u = idx[p]; if (u >= 0x80000000u) { return -1; } let v = i32(u);'
      : d === 'int32' ? 'let v = idx[p];'
        : `let f = ${load(d, 'idx[p]')}; if (fract(f) != 0.0 || abs(f) >= 2147483648.0) { return -1; } let v = i32(f);`;
  return `fn class_(p: u32) -> i32 {
  ${read}
  let n = i32(u_depth()); let c = select(v, v + n, v < 0);
  return select(-1, c, c >= 0 && c < n);
}`;
}

/** OneHot of `idx` along the output axis that splits it into [outer, inner]: on where the class matches. */
export function oneHot(idx: GpuArray, values: GpuArray, depth: number, inner: number, outShape: readonly number[]): Program {
  const c = carrier(values.dtype), total = idx.size * depth;
  const uniforms = [u32s('total', total), u32s('depth', depth), u32s('inner', inner)];
  return {
    name: 'OneHot', key: `gen.onehot|${idx.dtype}|${c}`,
    shader: () => [
      declare({ inputs: [['idx', idx.dtype], ['vals', c]], outputs: [['out', c]], uniforms }), classFn(idx.dtype),
      entry(WG, 'u_total()', `  let i = gi % u_inner(); let k = (gi / u_inner()) % u_depth(); let o = gi / (u_inner() * u_depth());
  out[gi] = vals[select(0u, 1u, class_(o * u_inner() + i) == i32(k))];`),
    ].join('\n'),
    inputs: [idx, values], outputs: [{ dtype: values.dtype, shape: outShape }], uniforms, workgroups: Math.ceil(total / WG),
  };
}

/** w[k] = Σ_j (-1)^j·a_j·cos(2πjk/N) of float `dtype`; N is `period`. The angle is reduced modulo N in
 *  integers first, so f32 keeps its precision for long windows. */
export function cosineWindow(dtype: DType, size: number, period: number, coefs: number[]): Program {
  const uniforms = [u32s('total', size), u32s('period', period), ...coefs.map((v, j) => f32u(`a${j}`, v))];
  const terms = coefs.map((_, j) => `${j % 2 ? '-' : '+'} u_a${j}() * cos(6.283185307179586 * f32((${j}u * k) % n) / f32(n))`).join(' ');
  return {
    name: 'Window', key: `gen.window|${dtype}|${coefs.length}`,
    shader: () => `${declare({ inputs: [], outputs: [['out', dtype]], uniforms })}
${entry(WG, 'u_total()', `  let k = gi; let n = max(u_period(), 1u);
  // A symmetric window of one point has no period; numpy, scipy and torch give it 1.
  out[gi] = ${store(dtype, `select(0.0 ${terms}, 1.0, u_period() == 0u)`)};`)}`,
    inputs: [], outputs: [{ dtype, shape: [size] }], uniforms, workgroups: Math.ceil(size / WG),
  };
}
