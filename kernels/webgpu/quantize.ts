// Linear quantization on the GPU: QuantizeLinear / DequantizeLinear over a parameter layout (per-tensor,
// per-axis, blocked), DynamicQuantizeLinear, and the integer GEMM behind MatMulInteger and QLinearMatMul.
// Results are bit-equal to the CPU kernels (kernels/cpu/quantize.ts): the same f32 steps, round half to
// even (WGSL's round), saturation with NaN going to the low end. One caveat: WGSL lets f32 division be
// 2.5 ulp off; the CPU-hosted adapters we test on (lavapipe) divide correctly rounded, as the CPU does,
// and a GPU that does not can move x / scale across a rounding tie by one step.
import type { DType } from '../../engine/dtype.js';
import { F16, HELPERS as CAST_HELPERS } from './cast.js';
import type { QuantLayout } from '../cpu/quantize.js';
import type { GpuArray, Program, Uniform } from './runner.js';
import { computeType, declare, entry, intRange, load, offsetFn, store, u32s } from './wgsl.js';

const WG = 256;

/** The CPU's parameter layout: element (o, a, r) of x as [outer, axisLen, inner] takes parameter
 *  o*so + floor(a/block)*sa + r*sr. */
const layoutUniforms = (l: QuantLayout): Uniform[] =>
  [u32s('axis_len', l.axisLen), u32s('inner', Math.max(1, l.inner)), u32s('block', l.block), u32s('so', l.so), u32s('sa', l.sa), u32s('sr', l.sr)];

const PARAM_INDEX = `fn param_(i: u32) -> u32 {
  let r = i % u_inner(); let t = i / u_inner();
  return (t / u_axis_len()) * u_so() + ((t % u_axis_len()) / u_block()) * u_sa() + r * u_sr();
}`;

/** WGSL: is the f32 `v` NaN (by its bits: float comparisons may be folded on the assumption of no NaN). */
const isNan = (v: string) => `((bitcast<u32>(${v}) & 0x7fffffffu) > 0x7f800000u)`;

/** round-half-even(q) + z clamped to dtype d's range, NaN to the low end (the CPU's intStore), as d's compute type. */
export function intStoreWgsl(d: DType, q: string, z: string): string {
  const [lo, hi] = intRange(d)!, t = computeType(d);
  return `${t}(select(clamp(round(${q}) + ${z}, ${lo}.0, ${hi}.0), ${lo}.0, ${isNan(q)}))`;
}

export interface QuantizeSpec {
  x: GpuArray; scale: GpuArray; zp?: GpuArray; layout: QuantLayout; out: DType;
  /** Round x, the scale and the quotient to float16 (a float16 scale and no precision), else float32. */
  half: boolean;
}

/** QuantizeLinear: out = saturate(round(x / scale) + zp), the division in the scale's float type. */
export function quantizeLinear(s: QuantizeSpec): Program {
  const { x, scale, zp, layout } = s, n = x.size;
  const uniforms = [u32s('total', n), ...layoutUniforms(layout)];
  const h = (e: string) => (s.half ? `f32(f16_(${e}))` : e);
  const ins: [string, DType][] = [['x', x.dtype], ['scale', scale.dtype], ...(zp ? [['zp', zp.dtype] as [string, DType]] : [])];
  return {
    name: 'QuantizeLinear', key: `quant.q|${x.dtype}|${scale.dtype}|${zp?.dtype ?? '-'}|${s.out}|${s.half}`,
    shader: () => [declare({ inputs: ins, outputs: [['out', s.out]], uniforms }), s.half ? F16 : '', PARAM_INDEX, entry(WG, 'u_total()', `
  let p = param_(gi);
  let q = ${h(`${h(load(x.dtype, 'x[gi]'))} / ${h(load(scale.dtype, 'scale[p]'))}`)};
  let z = ${zp ? `f32(${load(zp.dtype, 'zp[p]')})` : '0.0'};
  out[gi] = ${intStoreWgsl(s.out, 'q', 'z')};`)].join('\n'),
    inputs: [x, scale, ...(zp ? [zp] : [])], outputs: [{ dtype: s.out, shape: x.shape }], uniforms, workgroups: Math.ceil(n / WG),
  };
}

/** x - zp as an f32 rounded once: exact in i32 for the narrow types; int32 needs the 64-bit difference. */
function shiftedF32(d: DType, x: string, z: string | undefined): string {
  if (!z) return `f32(${x})`;
  if (d !== 'int32') return `f32(i32(${x}) - i32(${z}))`;
  return `sub64f_(${x}, ${z})`;
}

const SUB64 = `
fn sub64f_(a: i32, b: i32) -> f32 {
  let ua = bitcast<u32>(a); let ub = bitcast<u32>(b);
  let hi = select(0u, 0xffffffffu, a < 0) - select(0u, 0xffffffffu, b < 0) - select(0u, 1u, ua < ub);
  return i64f(vec2<u32>(ua - ub, hi));
}`;

export interface DequantizeSpec { x: GpuArray; scale: GpuArray; zp?: GpuArray; layout: QuantLayout; out: DType }

/** DequantizeLinear: out = f32(x - zp) * scale, each step rounded to f32 as the reference does. */
export function dequantizeLinear(s: DequantizeSpec): Program {
  const { x, scale, zp, layout } = s, n = x.size;
  const uniforms = [u32s('total', n), ...layoutUniforms(layout)];
  const ins: [string, DType][] = [['x', x.dtype], ['scale', scale.dtype], ...(zp ? [['zp', zp.dtype] as [string, DType]] : [])];
  const y = `${shiftedF32(x.dtype, 'x[gi]', zp ? 'zp[p]' : undefined)} * ${load(scale.dtype, 'scale[p]')}`;
  return {
    name: 'DequantizeLinear', key: `quant.dq|${x.dtype}|${scale.dtype}|${zp?.dtype ?? '-'}|${s.out}`,
    shader: () => [declare({ inputs: ins, outputs: [['out', s.out]], uniforms }), s.out === 'float16' ? F16 : '',
      x.dtype === 'int32' && zp ? CAST_HELPERS + SUB64 : '', PARAM_INDEX,
      entry(WG, 'u_total()', `  let p = param_(gi);\n  out[gi] = ${s.out === 'float16' ? `f16_(${y})` : y};`)].join('\n'),
    inputs: [x, scale, ...(zp ? [zp] : [])], outputs: [{ dtype: s.out, shape: x.shape }], uniforms, workgroups: Math.ceil(n / WG),
  };
}

// ---- DynamicQuantizeLinear ----------------------------------------------------------------------

const RANGE_GROUPS = 64;

/** Pass 1: per workgroup, the min and max of its share of x (NaN skipped, as the CPU's comparisons do). */
export function rangePartials(x: GpuArray): Program {
  const uniforms = [u32s('total', x.size)];
  return {
    name: 'DynamicQuantizeLinear(range)', key: 'quant.range',
    shader: () => `${declare({ inputs: [['x', 'float32']], outputs: [['part', 'float32']], uniforms })}
var<workgroup> lo_s: array<f32, ${WG}>;
var<workgroup> hi_s: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  var lo = 0.0; var hi = 0.0;
  for (var i = wid.x * ${WG}u + lid.x; i < u_total(); i += ${RANGE_GROUPS * WG}u) {
    let v = x[i]; lo = select(lo, v, v < lo); hi = select(hi, v, v > hi);
  }
  lo_s[lid.x] = lo; hi_s[lid.x] = hi;
  for (var w = ${WG / 2}u; w > 0u; w /= 2u) {
    workgroupBarrier();
    if (lid.x < w) { lo_s[lid.x] = min(lo_s[lid.x], lo_s[lid.x + w]); hi_s[lid.x] = max(hi_s[lid.x], hi_s[lid.x + w]); }
  }
  if (lid.x == 0u) { part[2u * wid.x] = lo_s[0]; part[2u * wid.x + 1u] = hi_s[0]; }
}`,
    inputs: [x], outputs: [{ dtype: 'float32', shape: [2 * RANGE_GROUPS] }], uniforms, workgroups: [RANGE_GROUPS, 1, 1],
  };
}

/** Pass 2 (one invocation): scale and zero point from the range widened to hold 0, as the spec's formulas. */
export function rangeParams(part: GpuArray): Program {
  const uniforms = [u32s('groups', RANGE_GROUPS)];
  return {
    name: 'DynamicQuantizeLinear(params)', key: 'quant.params',
    shader: () => `${declare({ inputs: [['part', 'float32']], outputs: [['scale', 'float32'], ['zp', 'uint8']], uniforms })}
${entry(1, '1u', `  var lo = 0.0; var hi = 0.0;
  for (var g = 0u; g < u_groups(); g++) { lo = min(lo, part[2u * g]); hi = max(hi, part[2u * g + 1u]); }
  let s = select((hi - lo) / 255.0, 1.0, hi == lo);
  scale[0] = s;
  zp[0] = u32(round(clamp(-(lo / s), 0.0, 255.0)));`)}`,
    inputs: [part], outputs: [{ dtype: 'float32', shape: [] }, { dtype: 'uint8', shape: [] }], uniforms, workgroups: 1,
  };
}

/** Pass 3: y = saturate(round(x / scale) + zp) to uint8 with the computed parameters. */
export function dynamicApply(x: GpuArray, scale: GpuArray, zp: GpuArray): Program {
  const uniforms = [u32s('total', x.size)];
  return {
    name: 'DynamicQuantizeLinear', key: 'quant.dyn',
    shader: () => `${declare({ inputs: [['x', 'float32'], ['scale', 'float32'], ['zp', 'uint8']], outputs: [['out', 'uint8']], uniforms })}
${entry(WG, 'u_total()', `  let q = x[gi] / scale[0];\n  out[gi] = ${intStoreWgsl('uint8', 'q', 'f32(zp[0])')};`)}`,
    inputs: [x, scale, zp], outputs: [{ dtype: 'uint8', shape: x.shape }], uniforms, workgroups: Math.ceil(x.size / WG),
  };
}

// ---- integer GEMM ---------------------------------------------------------------------------------

/** A zero point or requantization parameter of the product [...batch, M, N]: its tensor, and the strides of
 *  its elements over the batch dims, the row and the column (0 where it does not vary). Offsets are then one
 *  batch term per invocation plus row and column terms, which keeps the epilogue free of rank loops. */
export interface Param { t: GpuArray; batch: readonly number[]; row: number; col: number }

export interface QGemmSpec {
  a: GpuArray; b: GpuArray; m: number; n: number; k: number;
  batch: readonly number[]; aBatchStrides: readonly number[]; bBatchStrides: readonly number[];
  /** Zero points: za per row (col stride 0), zb per column (row stride 0). */
  za?: Param; zb?: Param;
  /** QLinearMatMul's requantization: y = saturate(round(f32(acc) * mult) + yz). */
  requant?: { mult: Param; yz?: Param; out: DType };
  outShape: readonly number[];
  /** Use dot4I8Packed on 4 k-lanes packed into a word (WGSL language feature packed_4x8_integer_dot_product). */
  packed: boolean;
}

/** The optional parameters, by binding name. */
const PARAMS: [string, (s: QGemmSpec) => Param | undefined][] = [['za', (s) => s.za], ['zb', (s) => s.zb], ['mult', (s) => s.requant?.mult], ['yz', (s) => s.requant?.yz]];

const TILE = 32, KC = 16, PER = 4; // 32x32 outputs per 8x8 workgroup, 4x4 per invocation, K in chunks of 16

/**
 * Σ_k (a - za)(b - zb) in i32 (wrapping like the CPU's Int32Array store of an exact sum). Operands are
 * moved to signed bytes (uint8 minus 128) so that dot4I8Packed applies, and the zero points are taken out
 * afterwards: Σ a'b' - zb'·Σa' - za'·Σb' + K·za'·zb', with the row and column sums from the same tiles.
 */
export function qgemm(s: QGemmSpec): Program {
  const { a, b, m, n, k, batch } = s, br = batch.length, rq = s.requant;
  const batches = batch.reduce((x, y) => x * y, 1);
  const uniforms: Uniform[] = [
    u32s('m', m), u32s('n', n), u32s('k', k), u32s('bshape', batch), u32s('abstr', s.aBatchStrides), u32s('bbstr', s.bBatchStrides),
    u32s('offa', computeType(a.dtype) === 'u32' ? 128 : 0), u32s('offb', computeType(b.dtype) === 'u32' ? 128 : 0),
    ...PARAMS.flatMap(([nm, pick]) => { const p = pick(s); return p ? [u32s(`${nm}_b`, p.batch), u32s(`${nm}_r`, p.row), u32s(`${nm}_c`, p.col)] : []; }),
  ];
  const ins: [string, GpuArray][] = [['a', a], ['b', b], ...PARAMS.flatMap(([nm, pick]): [string, GpuArray][] => { const p = pick(s); return p ? [[nm, p.t]] : []; })];
  const out: DType = rq ? rq.out : 'int32';
  const key = `quant.gemm|${a.dtype}|${b.dtype}|${br}|${PARAMS.map(([, pick]) => pick(s)?.t.dtype ?? '-')}|${rq?.out}|${s.packed}`;
  return {
    name: rq ? 'QLinearMatMul' : 'MatMulInteger', key,
    shader: () => qgemmShader(s, ins, out, uniforms),
    inputs: ins.map(([, t]) => t), outputs: [{ dtype: out, shape: s.outShape }], uniforms,
    workgroups: [Math.ceil(n / TILE), Math.ceil(m / TILE), batches],
  };
}

function qgemmShader(s: QGemmSpec, ins: [string, GpuArray][], out: DType, uniforms: Uniform[]): string {
  const br = s.batch.length, rq = s.requant, params = PARAMS.filter(([, pick]) => pick(s));
  // Packed: one u32 holds 4 signed bytes of consecutive k; scalar: one i32 per k.
  const words = s.packed ? KC / 4 : KC;
  const elemA = (kk: string) => `i32(a[aoff + row * u_k() + ${kk}]) - i32(u_offa())`;
  const elemB = (kk: string) => `i32(b[boff + (${kk}) * u_n() + col]) - i32(u_offb())`;
  const pack = (elem: (kk: string) => string, kBase: string) =>
    `pack4_(${[0, 1, 2, 3].map((j) => `select(0, ${elem(`${kBase} + ${j}u`)}, ${kBase} + ${j}u < u_k())`).join(', ')})`;
  const loadA = s.packed ? pack(elemA, 'k0 + 4u * w') : `select(0, ${elemA('k0 + w')}, k0 + w < u_k())`;
  const loadB = s.packed ? pack(elemB, 'k0 + 4u * w') : `select(0, ${elemB('k0 + w')}, k0 + w < u_k())`;
  const T = s.packed ? 'u32' : 'i32';
  const dot = (x: string, y: string) => (s.packed ? `dot4I8Packed(${x}, ${y})` : `${x} * ${y}`);
  const sum = (x: string) => (s.packed ? `dot4I8Packed(${x}, 0x01010101u)` : x);
  /** Element of parameter `nm` at row r, column c (its batch term is `nm_0`, computed once). */
  const at = (nm: string, p: Param, col = 'c') => load(p.t.dtype, `${nm}[${nm}_0 + r * u_${nm}_r() + ${col} * u_${nm}_c()]`);
  const zp = (p: Param | undefined, nm: string, off: string, col?: string) => (p ? `i32(${at(nm, p, col)}) - i32(${off})` : `-i32(${off})`);
  const epilogue = rq
    ? `let o = (bi * u_m() + r) * u_n() + c;
        let q = f32(acc) * ${at('mult', rq.mult)};
        out[o] = ${store(out, intStoreWgsl(out, 'q', rq.yz ? `f32(${at('yz', rq.yz)})` : '0.0'))};`
    : 'out[(bi * u_m() + r) * u_n() + c] = acc;';
  return [
    declare({ inputs: ins.map(([nm, t]) => [nm, t.dtype] as [string, DType]), outputs: [['out', out]], uniforms }),
    offsetFn('a_boff', br, 'bshape', 'abstr'), offsetFn('b_boff', br, 'bshape', 'bbstr'),
    ...params.map(([nm]) => offsetFn(`${nm}_boff`, br, 'bshape', `${nm}_b`)),
    s.packed ? 'fn pack4_(x: i32, y: i32, z: i32, w: i32) -> u32 { return pack4xI8(vec4<i32>(x, y, z, w)); }' : '',
    `var<workgroup> ta: array<array<${T}, ${words}>, ${TILE}>;
var<workgroup> tb: array<array<${T}, ${TILE}>, ${words}>;
@compute @workgroup_size(8, 8)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let bi = wid.z;
  let aoff = a_boff(bi); let boff = b_boff(bi);${params.map(([nm]) => ` let ${nm}_0 = ${nm}_boff(bi);`).join('')}
  let r0 = wid.y * ${TILE}u; let c0 = wid.x * ${TILE}u;
  let t = lid.y * 8u + lid.x;
  var acc4: array<array<i32, ${PER}>, ${PER}>;
  var rs: array<i32, ${PER}>; var cs: array<i32, ${PER}>;
  for (var k0 = 0u; k0 < u_k(); k0 += ${KC}u) {
    for (var e = t; e < ${TILE * words}u; e += 64u) {
      let w = e % ${words}u; let row = min(r0 + e / ${words}u, u_m() - 1u);
      ta[e / ${words}u][w] = ${loadA};
    }
    for (var e = t; e < ${TILE * words}u; e += 64u) {
      let w = e / ${TILE}u; let col = min(c0 + e % ${TILE}u, u_n() - 1u);
      tb[w][e % ${TILE}u] = ${loadB};
    }
    workgroupBarrier();
    for (var w = 0u; w < ${words}u; w++) {
      var av: array<${T}, ${PER}>; var bv: array<${T}, ${PER}>;
      for (var i = 0u; i < ${PER}u; i++) { av[i] = ta[lid.y * ${PER}u + i][w]; rs[i] += ${sum('av[i]')}; }
      for (var j = 0u; j < ${PER}u; j++) { bv[j] = tb[w][lid.x * ${PER}u + j]; cs[j] += ${sum('bv[j]')}; }
      for (var i = 0u; i < ${PER}u; i++) { for (var j = 0u; j < ${PER}u; j++) { acc4[i][j] += ${dot('av[i]', 'bv[j]')}; } }
    }
    workgroupBarrier();
  }
  let kk = i32(u_k());
  for (var i = 0u; i < ${PER}u; i++) {
    let r = r0 + lid.y * ${PER}u + i;
    if (r >= u_m()) { continue; }
    let zav = ${zp(s.za, 'za', 'u_offa()', '0u')};
    for (var j = 0u; j < ${PER}u; j++) {
      let c = c0 + lid.x * ${PER}u + j;
      if (c < u_n()) {
        let zbv = ${zp(s.zb, 'zb', 'u_offb()')};
        let acc = acc4[i][j] - zbv * rs[i] - zav * cs[j] + kk * zav * zbv;
        ${epilogue}
      }
    }
  }
}`,
  ].join('\n');
}
