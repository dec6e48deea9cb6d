// Image sampling programs: GridSample (any spatial rank, nearest/linear/cubic, zeros/border/reflection
// padding) and AffineGrid. They follow the CPU kernels (kernels/cpu/image.ts) step for step, in f32:
// coordinates are denormalised, moved inside by the padding mode, then each tap index is zeroed,
// clamped or reflected again.
import type { DType } from '../../engine/dtype.js';
import type { GpuArray, Program } from './runner.js';
import { declare, entry, load, store, u32s } from './wgsl.js';

const WG = 64;

export type GridMode = 'linear' | 'nearest' | 'cubic';
export type GridPadding = 'zeros' | 'border' | 'reflection';
export interface GridSpec { mode: GridMode; padding: GridPadding; alignCorners: boolean }

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** reflect_(x, lo, hi): x folded into [lo, hi] by mirroring at the borders as often as needed. */
const REFLECT = `fn reflect_(x: f32, lo: f32, hi: f32) -> f32 {
  let span = hi - lo;
  if (span <= 0.0) { return lo; }
  if (x >= lo && x <= hi) { return x; }
  let dx = select(x - hi, lo - x, x < lo); let n = trunc(dx / span); let r = dx - n * span;
  return select(hi - r, lo + r, (x < lo) == (fract(n * 0.5) == 0.0));
}`;

/** WGSL statement mapping tap index `i` (i32) along a dim of `len` to itself, clamped, reflected or -1. */
function tapIndex(p: GridPadding): string {
  if (p === 'zeros') return 'select(-1, i, i >= 0 && i < len)';
  if (p === 'border') return 'clamp(i, 0, len - 1)';
  return 'clamp(i32(trunc(reflect_(f32(i), lo, hi))), 0, len - 1)';
}

/** Keys' cubic convolution (A = -0.75) weight of the tap k (0..3, at -1, 0, 1, 2) for fraction t. */
const CUBIC = `fn cubic_(t: f32, k: u32) -> f32 {
  let A = -0.75;
  if (k == 0u) { let u = t + 1.0; return ((A * u - 5.0 * A) * u + 8.0 * A) * u - 4.0 * A; }
  if (k == 1u) { return ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0; }
  if (k == 2u) { let v = 1.0 - t; return ((A + 2.0) * v - (A + 3.0)) * v * v + 1.0; }
  let z = 2.0 - t; return ((A * z - 5.0 * A) * z + 8.0 * A) * z - 4.0 * A;
}`;

/** GridSample of x (n, c, inS...) at grid (n, outS..., r) into (n, c, outS...). */
export function gridSample(x: GpuArray, grid: GpuArray, outS: readonly number[], s: GridSpec): Program {
  const [n, c] = x.shape, inS = x.shape.slice(2), r = inS.length, taps = s.mode === 'cubic' ? 4 : s.mode === 'linear' ? 2 : 1;
  const total = n * c * prod(outS), strides = inS.map((_, d) => prod(inS.slice(d + 1)));
  const uniforms = [u32s('total', total), u32s('c', c), u32s('out_size', prod(outS)), u32s('in_size', prod(inS)), u32s('in_shape', inS), u32s('in_str', strides)];
  const lo = s.alignCorners ? '0.0' : '-0.5', hi = s.alignCorners ? 'lenf - 1.0' : 'lenf - 0.5';
  const denorm = s.alignCorners ? '((g + 1.0) / 2.0) * (lenf - 1.0)' : '((g + 1.0) * lenf - 1.0) / 2.0';
  const inside = s.padding === 'border' ? 'x = clamp(x, 0.0, lenf - 1.0);' : s.padding === 'reflection' ? 'x = reflect_(x, lo, hi);' : '';
  const fill = s.mode === 'nearest' ? 'ti[d][0] = at_(i32(trunc(x)), len, lo, hi); tw[d][0] = 1.0;'
    : s.mode === 'linear' ? 'let x0 = floor(x); let t = x - x0; ti[d][0] = at_(i32(x0), len, lo, hi); ti[d][1] = at_(i32(x0) + 1, len, lo, hi); tw[d][0] = 1.0 - t; tw[d][1] = t;'
      : 'let x0 = floor(x); let t = x - x0; for (var k = 0u; k < 4u; k++) { ti[d][k] = at_(i32(x0) - 1 + i32(k), len, lo, hi); tw[d][k] = cubic_(t, k); }';
  return {
    name: 'GridSample', key: `image.grid|${x.dtype}|${grid.dtype}|${s.mode}|${s.padding}|${s.alignCorners}|${r}`,
    shader: () => [
      declare({ inputs: [['x', x.dtype], ['grid', grid.dtype]], outputs: [['out', x.dtype]], uniforms }), REFLECT, CUBIC,
      `fn at_(i: i32, len: i32, lo: f32, hi: f32) -> i32 { return ${tapIndex(s.padding)}; }`,
      entry(WG, 'u_total()', `  let p = gi % u_out_size(); let bc = gi / u_out_size(); let b = bc / u_c();
  let g0 = (b * u_out_size() + p) * ${r}u;
  var ti: array<array<i32, ${taps}>, ${r}>; var tw: array<array<f32, ${taps}>, ${r}>;
  for (var d = 0u; d < ${r}u; d++) {
    let len = i32(u_in_shape(d)); let lenf = f32(len); let lo = ${lo}; let hi = ${hi};
    let g = ${load(grid.dtype, `grid[g0 + ${r - 1}u - d]`)};
    var x = ${denorm};
    ${s.mode === 'nearest' ? 'x = round(x);' : ''}
    if (x < lo || x > hi) { ${inside} }
    ${fill}
  }
  let base = bc * u_in_size();
  var acc = 0.0;
  for (var q = 0u; q < ${taps ** r}u; q++) {
    var rest = q; var off = 0i; var w = 1.0;
    for (var d = ${r - 1}i; d >= 0; d--) {
      let k = rest % ${taps}u; rest /= ${taps}u;
      let i = ti[d][k];
      if (i < 0 || off < 0) { off = -1; } else { off += i * i32(u_in_str(u32(d))); }
      w *= tw[d][k];
    }
    if (off >= 0) { acc += w * ${load(x.dtype, 'x[base + u32(off)]')}; }
  }
  out[gi] = ${store(x.dtype, 'acc')};`),
    ].join('\n'),
    inputs: [x, grid], outputs: [{ dtype: x.dtype, shape: [n, c, ...outS] }], uniforms, workgroups: Math.ceil(total / WG),
  };
}

/** AffineGrid: out[b, pos..., j] = Σ_k theta[b, j, k] · base[k], base = (x, y[, z], 1) normalised (x innermost). */
export function affineGrid(theta: GpuArray, n: number, dims: readonly number[], alignCorners: boolean): Program {
  const r = dims.length, size = prod(dims), total = n * size * r, d: DType = theta.dtype;
  const uniforms = [u32s('total', total), u32s('size', size), u32s('dims', dims)];
  const coord = alignCorners ? 'select(-1.0, -1.0 + 2.0 * f32(i) / f32(len - 1u), len > 1u)' : '(2.0 * f32(i) + 1.0) / f32(len) - 1.0';
  return {
    name: 'AffineGrid', key: `image.affine|${d}|${alignCorners}|${r}`,
    shader: () => [
      declare({ inputs: [['theta', d]], outputs: [['out', d]], uniforms }),
      entry(WG, 'u_total()', `  let j = gi % ${r}u; let p = (gi / ${r}u) % u_size(); let b = gi / (${r}u * u_size());
  let row = (b * ${r}u + j) * ${r + 1}u;
  var acc = ${load(d, `theta[row + ${r}u]`)};
  var rest = p;
  for (var dd = ${r - 1}i; dd >= 0; dd--) {
    let len = u_dims(u32(dd)); let i = rest % len; rest /= len;
    acc += ${load(d, `theta[row + ${r - 1}u - u32(dd)]`)} * (${coord});
  }
  out[gi] = ${store(d, 'acc')};`),
    ].join('\n'),
    inputs: [theta], outputs: [{ dtype: d, shape: [n, ...dims, r] }], uniforms, workgroups: Math.ceil(total / WG),
  };
}

export interface Col2ImSpec { n: number; c: number; dims: number[]; nb: number[]; k: number[]; s: number[]; d: number[]; pb: number[] }

/** Col2Im as a gather: each image element sums the column entries (channel, tap t, block l) whose tap lands
 *  on it, i.e. block l·s - pb + t·d = i along every dim, so no two invocations write one element. */
export function col2im(x: GpuArray, g: Col2ImSpec): Program {
  const r = g.dims.length, size = prod(g.dims), total = g.n * g.c * size, t = x.dtype === 'float16' ? 'f32' : x.dtype === 'float32' ? 'f32' : x.dtype === 'int32' ? 'i32' : 'u32';
  const uniforms = [u32s('total', total), u32s('size', size), u32s('taps', prod(g.k)), u32s('blocks', prod(g.nb)),
    u32s('dims', g.dims), u32s('nb', g.nb), u32s('k', g.k), u32s('s', g.s), u32s('dl', g.d), u32s('pb', g.pb)];
  return {
    name: 'Col2Im', key: `image.col2im|${x.dtype}|${r}`,
    shader: () => [
      declare({ inputs: [['x', x.dtype]], outputs: [['out', x.dtype]], uniforms }),
      entry(WG, 'u_total()', `  let p = gi % u_size(); let bc = gi / u_size();
  var acc = ${t}(0);
  for (var tap = 0u; tap < u_taps(); tap++) {
    var tr = tap; var pr = p; var l = 0u; var lstride = 1u; var ok = true;
    for (var d = ${r - 1}i; d >= 0; d--) {
      let dd = u32(d); let kt = tr % u_k(dd); tr /= u_k(dd); let i = pr % u_dims(dd); pr /= u_dims(dd);
      let num = i32(i) + i32(u_pb(dd)) - i32(kt * u_dl(dd));
      let b = num / i32(u_s(dd));
      if (num < 0 || num % i32(u_s(dd)) != 0 || b >= i32(u_nb(dd))) { ok = false; }
      l += u32(max(b, 0)) * lstride; lstride *= u_nb(dd);
    }
    if (ok) { acc += ${load(x.dtype, 'x[(bc * u_taps() + tap) * u_blocks() + l]')}; }
  }
  out[gi] = ${store(x.dtype, 'acc')};`),
    ].join('\n'),
    inputs: [x], outputs: [{ dtype: x.dtype, shape: [g.n, g.c, ...g.dims] }], uniforms, workgroups: Math.ceil(total / WG),
  };
}
