// Value conversions: Cast between the GPU dtypes and Clip. Conversions follow the CPU backend (typed-array
// stores): floats to integers truncate and wrap modulo 2^width with NaN and infinities giving 0 (to the
// sub-byte ints they round half away from zero first), integers to integers keep the low bits, integers
// to floats round to nearest once (int64 too), float32 to float16 overflows to infinity.
import type { DType } from '../../engine/dtype.js';
import type { GpuArray, Program, Uniform } from './runner.js';
import { computeType, declare, entry, f32u, i32u, load, NARROW_INTS, store, u32s } from './wgsl.js';

const WG = 256;

/** f2i64 (f32 to an int64 word pair, truncating and wrapping), i64f (int64 to f32, rounded once), rha_. */
export const HELPERS = `
fn f2i64(f: f32) -> vec2<u32> {
  if ((bitcast<u32>(f) & 0x7f800000u) == 0x7f800000u) { return vec2<u32>(0u); }
  let t = trunc(f);
  if (abs(t) < 2147483648.0) { let i = i32(t); return vec2<u32>(bitcast<u32>(i), select(0u, 0xffffffffu, i < 0)); }
  // |t| >= 2^31 is a multiple of 2^8: the split into words below is exact in f32.
  let hi = floor(t / 4294967296.0);
  let lo = u32(t - hi * 4294967296.0);
  if (abs(hi) < 2147483648.0) { return vec2<u32>(lo, bitcast<u32>(i32(hi))); }
  return vec2<u32>(lo, u32(hi - floor(hi / 4294967296.0) * 4294967296.0));
}
fn i64f(v: vec2<u32>) -> f32 {
  let neg = (v.y & 0x80000000u) != 0u;
  let lo = select(v.x, ~v.x + 1u, neg);
  let hi = select(v.y, ~v.y + select(0u, 1u, v.x == 0u), neg);
  if (hi == 0u) { return select(f32(lo), -f32(lo), neg); }
  // The top 32 significant bits with the rest folded into a sticky bit, so f32() rounds once.
  let s = countLeadingZeros(hi);
  let top = select((hi << s) | (lo >> (32u - s)), hi, s == 0u);
  let m = ldexp(f32(top | select(0u, 1u, (lo << s) != 0u)), i32(32u - s));
  return select(m, -m, neg);
}
// Round half away from zero; a - t is exact, where floor(a + 0.5) would round 0.49999997 up.
fn rha_(f: f32) -> f32 { let a = abs(f); let t = trunc(a); let r = select(t, t + 1.0, a - t >= 0.5); return select(r, -r, f < 0.0); }`;
/** f16_: f32 to f16 rounded to nearest, overflowing to infinity and keeping NaN (needs `enable f16`). */
export const F16 = `
fn f16_(f: f32) -> f16 {
  // f16() of a finite f32 beyond the f16 range is undefined in WGSL; IEEE rounding gives infinity.
  let b = bitcast<u32>(f);
  var nan = 0x7e00u; // a var: a constant NaN is a shader-creation error
  if ((b & 0x7fffffffu) > 0x7f800000u) { return bitcast<vec2<f16>>(nan).x; }
  if (abs(f) >= 65520.0) { return bitcast<vec2<f16>>(select(0x7c00u, 0xfc00u, f < 0.0)).x; }
  return f16(f);
}`;

/** The low 32 bits of source `v` as an integer: floats truncate (sub-byte targets round half away from
 *  zero first, as the CPU's wrapBits does), with NaN and infinities giving 0. */
function lowWord(from: DType, asF32: string, subByte: boolean): string {
  if (from === 'float32' || from === 'float16') return `f2i64(${subByte ? `rha_(${asF32})` : asF32}).x`;
  if (from === 'int64') return 'v.x';
  return computeType(from) === 'i32' ? 'bitcast<u32>(v)' : 'v';
}

/** WGSL expression converting the stored element `v` of dtype `from` to the storage of `to`. */
function convert(from: DType, to: DType): string {
  const float = from === 'float32' || from === 'float16', signed = computeType(from) === 'i32' && from !== 'int64';
  // Every source as f32 (for float targets) and as an int64 word pair (for integer targets).
  const asF32 = float ? load(from, 'v') : from === 'int64' ? 'i64f(v)' : `f32(v)`;
  const asI64 = float ? `f2i64(${asF32})` : from === 'int64' ? 'v' : signed ? 'vec2<u32>(bitcast<u32>(v), select(0u, 0xffffffffu, v < 0))' : 'vec2<u32>(v, 0u)';
  const narrow = NARROW_INTS[to];
  if (narrow) { // keep the low bits, as typed-array stores (and wrapBits) do
    const low = lowWord(from, asF32, narrow.bits < 8);
    return store(to, narrow.signed ? `bitcast<i32>(${low})` : low);
  }
  switch (to) {
    case 'float32': return asF32;
    case 'float16': return `f16_(${asF32})`;
    case 'int64': return asI64;
    case 'int32': return signed ? 'v' : float || from === 'int64' ? `bitcast<i32>(${asI64}.x)` : 'bitcast<i32>(v)';
    case 'uint32': return signed ? 'bitcast<u32>(v)' : float || from === 'int64' ? `${asI64}.x` : 'v';
    // NaN is true: test the bits rather than trust float comparisons.
    case 'bool': return float ? `select(0u, 1u, (bitcast<u32>(${asF32}) & 0x7fffffffu) != 0u)` : from === 'int64' ? 'select(0u, 1u, any(v != vec2<u32>(0u)))' : 'select(0u, 1u, v != 0)';
    default: throw new Error(`no GPU cast to ${to}`);
  }
}

export function cast(x: GpuArray, to: DType): Program {
  const uniforms = [u32s('total', x.size)];
  return {
    name: 'Cast', key: `cast.cast|${x.dtype}|${to}`,
    shader: () => [declare({ inputs: [['x', x.dtype]], outputs: [['out', to]], uniforms }), HELPERS, to === 'float16' ? F16 : '',
      entry(WG, 'u_total()', `  let v = x[gi];\n  out[gi] = ${convert(x.dtype, to)};`)].join('\n'),
    inputs: [x], outputs: [{ dtype: to, shape: x.shape }], uniforms, workgroups: Math.ceil(x.size / WG),
  };
}

/** Clip to [lo, hi] as the CPU does it: v < lo ? lo : v, then > hi ? hi (so NaN passes and lo > hi gives hi). */
export function clip(x: GpuArray, lo: number, hi: number): Program {
  const t = computeType(x.dtype);
  const bound = (name: string, v: number): Uniform => (t === 'f32' ? f32u(name, v) : t === 'i32' ? i32u(name, clampTo(v, -(2 ** 31), 2 ** 31 - 1)) : u32s(name, clampTo(v, 0, 2 ** 32 - 1)));
  const uniforms = [u32s('total', x.size), bound('lo', lo), bound('hi', hi)];
  return {
    name: 'Clip', key: `cast.clip|${x.dtype}`,
    shader: () => `${declare({ inputs: [['x', x.dtype]], outputs: [['out', x.dtype]], uniforms })}
${entry(WG, 'u_total()', `  let v = ${load(x.dtype, 'x[gi]')};
  let a = select(v, u_lo(), v < u_lo());
  out[gi] = ${store(x.dtype, 'select(a, u_hi(), a > u_hi())')};`)}`,
    inputs: [x], outputs: [{ dtype: x.dtype, shape: x.shape }], uniforms, workgroups: Math.ceil(x.size / WG),
  };
}

/** Integer bounds beyond the dtype's range clip nothing more than its extremes do. */
const clampTo = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
