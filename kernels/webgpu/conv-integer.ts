// ConvInteger and QLinearConv: an implicit GEMM per (image, group), output channels by output positions,
// over K = C/group x kernel taps, with the im2col gather done as the tiles load. Accumulation is i32 and
// wraps like the CPU's Int32Array store of its exact float64 sum, so results are bit-equal to the CPU's.
// As in the quantized MatMul (quantize.ts qgemm), operands move to signed bytes (uint8 minus 128) so
// dot4I8Packed applies, and the zero points come out afterwards from row and column sums of the tiles:
// Σ (w' - zw')(x' - zx') = Σ w'x' - zx'·Σw' - zw'·Σx' + K·zw'·zx'. Taps in the padding read as the x zero
// point, so they add nothing, like the CPU's zeros after its x - zero_point shift.
import type { DType } from '../../engine/dtype.js';
import type { Geom3 } from '../cpu/conv.js';
import { intStoreWgsl } from './quantize.js';
import type { GpuArray, Program, Uniform } from './runner.js';
import { computeType, declare, load, store, u32s } from './wgsl.js';

export interface ConvIntSpec {
  x: GpuArray; w: GpuArray;
  /** x's zero point (one value), w's (one value, or one per output channel with `wzPerChannel`). */
  xz?: GpuArray; wz?: GpuArray; wzPerChannel: boolean;
  n: number; c: number; m: number; group: number; geom: Geom3;
  /** QLinearConv: y = saturate(round(f32(acc + bias) * mult) + yz), mult one value or one per channel. */
  requant?: { mult: GpuArray; multPerChannel: boolean; yz: GpuArray; bias?: GpuArray; out: DType };
  outShape: readonly number[];
  /** dot4I8Packed on 4 k-lanes packed into a word (WGSL language feature packed_4x8_integer_dot_product). */
  packed: boolean;
}

const TILE = 32, KC = 16, PER = 4; // 32x32 outputs per 8x8 workgroup, 4x4 per invocation, K in chunks of 16
const prod = (v: readonly number[]) => v.reduce((a, b) => a * b, 1);

export function convInteger(s: ConvIntSpec): Program {
  const { x, w, geom: g } = s, mg = s.m / s.group, cg = s.c / s.group, positions = prod(g.out), kdim = cg * prod(g.k);
  const uniforms: Uniform[] = [
    u32s('m', s.m), u32s('mg', mg), u32s('c', s.c), u32s('cg', cg), u32s('group', s.group), u32s('pos', positions), u32s('kdim', kdim),
    u32s('ins', g.inS), u32s('outs', g.out), u32s('k', g.k), u32s('st', g.s), u32s('dl', g.d), u32s('pd', g.p),
    u32s('offx', computeType(x.dtype) === 'u32' ? 128 : 0), u32s('offw', computeType(w.dtype) === 'u32' ? 128 : 0),
    u32s('wzs', s.wzPerChannel ? 1 : 0), u32s('mults', s.requant?.multPerChannel ? 1 : 0),
  ];
  const rq = s.requant;
  const ins: [string, GpuArray][] = [['x', x], ['w', w], ...opt('xz', s.xz), ...opt('wz', s.wz),
    ...(rq ? [['mult', rq.mult], ['yz', rq.yz], ...opt('bias', rq.bias)] as [string, GpuArray][] : [])];
  const out: DType = rq ? rq.out : 'int32';
  const batches = s.n * s.group; // one workgroup layer per (image, group): at most 65535 (the caller checks)
  return {
    name: rq ? 'QLinearConv' : 'ConvInteger',
    key: `convint|${ins.map(([nm, t]) => `${nm}:${t.dtype}`)}|${out}|${s.packed}`,
    shader: () => shader(s, ins, out, uniforms),
    inputs: ins.map(([, t]) => t), outputs: [{ dtype: out, shape: s.outShape }], uniforms,
    workgroups: [Math.ceil(positions / TILE), Math.ceil(mg / TILE), batches],
  };
}

const opt = (name: string, t: GpuArray | undefined): [string, GpuArray][] => (t ? [[name, t]] : []);

/** x's im2col tap (kk, col) shifted to a signed byte: padding reads as x's zero point, taps past K as 0. */
function tapFn(xzp: string): string {
  return `fn tap_(img: u32, gi: u32, kk: u32, col: u32) -> i32 {
  if (kk >= u_kdim()) { return 0; }
  let kvol = u_k(0u) * u_k(1u) * u_k(2u);
  let ci = kk / kvol; var t = kk % kvol;
  let kw = t % u_k(2u); t /= u_k(2u);
  let kh = t % u_k(1u); let kd = t / u_k(1u);
  let ow = col % u_outs(2u); var q = col / u_outs(2u);
  let oh = q % u_outs(1u); let od = q / u_outs(1u);
  let id = i32(od * u_st(0u) + kd * u_dl(0u)) - i32(u_pd(0u));
  let ih = i32(oh * u_st(1u) + kh * u_dl(1u)) - i32(u_pd(1u));
  let iw = i32(ow * u_st(2u) + kw * u_dl(2u)) - i32(u_pd(2u));
  if (id < 0 || ih < 0 || iw < 0 || id >= i32(u_ins(0u)) || ih >= i32(u_ins(1u)) || iw >= i32(u_ins(2u))) { return ${xzp}; }
  let plane = (img * u_c() + gi * u_cg() + ci) * u_ins(0u);
  return i32(x[((plane + u32(id)) * u_ins(1u) + u32(ih)) * u_ins(2u) + u32(iw)]) - i32(u_offx());
}`;
}

function shader(s: ConvIntSpec, ins: [string, GpuArray][], out: DType, uniforms: Uniform[]): string {
  const rq = s.requant;
  const words = s.packed ? KC / 4 : KC, T = s.packed ? 'u32' : 'i32';
  // Shifted zero points: x's is per tensor, w's per output channel `co`.
  const xzp = s.xz ? `i32(${load(s.xz.dtype, 'xz[0]')}) - i32(u_offx())` : '-i32(u_offx())';
  const wzp = s.wz ? `i32(${load(s.wz.dtype, 'wz[co * u_wzs()]')}) - i32(u_offw())` : '-i32(u_offw())';
  const elemW = (kk: string) => `select(0, i32(w[co * u_kdim() + ${kk}]) - i32(u_offw()), ${kk} < u_kdim())`;
  const elemX = (kk: string) => `tap_(img, gi, ${kk}, col)`;
  const pack = (elem: (kk: string) => string) => `pack4xI8(vec4<i32>(${[0, 1, 2, 3].map((j) => elem(`k0 + 4u * wd + ${j}u`)).join(', ')}))`;
  const loadW = s.packed ? pack(elemW) : elemW('k0 + wd');
  const loadX = s.packed ? pack(elemX) : elemX('k0 + wd');
  const dot = (a: string, b: string) => (s.packed ? `dot4I8Packed(${a}, ${b})` : `${a} * ${b}`);
  const sum = (a: string) => (s.packed ? `dot4I8Packed(${a}, 0x01010101u)` : a);
  const epilogue = rq
    ? `let q = f32(acc${rq.bias ? ` + ${load(rq.bias.dtype, 'bias[co]')}` : ''}) * ${load(rq.mult.dtype, 'mult[co * u_mults()]')};
        out[o] = ${store(out, intStoreWgsl(out, 'q', `f32(${load(rq.yz.dtype, 'yz[0]')})`))};`
    : 'out[o] = acc;';
  return [
    declare({ inputs: ins.map(([nm, t]) => [nm, t.dtype] as [string, DType]), outputs: [['out', out]], uniforms }),
    tapFn(xzp),
    `var<workgroup> tw: array<array<${T}, ${words}>, ${TILE}>;
var<workgroup> tx: array<array<${T}, ${TILE}>, ${words}>;
@compute @workgroup_size(8, 8)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let img = wid.z / u_group(); let gi = wid.z % u_group();
  let r0 = wid.y * ${TILE}u; let c0 = wid.x * ${TILE}u;
  let t = lid.y * 8u + lid.x;
  var acc4: array<array<i32, ${PER}>, ${PER}>;
  var rs: array<i32, ${PER}>; var cs: array<i32, ${PER}>;
  for (var k0 = 0u; k0 < u_kdim(); k0 += ${KC}u) {
    for (var e = t; e < ${TILE * words}u; e += 64u) {
      let wd = e % ${words}u; let co = gi * u_mg() + min(r0 + e / ${words}u, u_mg() - 1u);
      tw[e / ${words}u][wd] = ${loadW};
    }
    for (var e = t; e < ${TILE * words}u; e += 64u) {
      let wd = e / ${TILE}u; let col = min(c0 + e % ${TILE}u, u_pos() - 1u);
      tx[wd][e % ${TILE}u] = ${loadX};
    }
    workgroupBarrier();
    for (var wd = 0u; wd < ${words}u; wd++) {
      var av: array<${T}, ${PER}>; var bv: array<${T}, ${PER}>;
      for (var i = 0u; i < ${PER}u; i++) { av[i] = tw[lid.y * ${PER}u + i][wd]; rs[i] += ${sum('av[i]')}; }
      for (var j = 0u; j < ${PER}u; j++) { bv[j] = tx[wd][lid.x * ${PER}u + j]; cs[j] += ${sum('bv[j]')}; }
      for (var i = 0u; i < ${PER}u; i++) { for (var j = 0u; j < ${PER}u; j++) { acc4[i][j] += ${dot('av[i]', 'bv[j]')}; } }
    }
    workgroupBarrier();
  }
  let kk = i32(u_kdim());
  let zx = ${xzp};
  for (var i = 0u; i < ${PER}u; i++) {
    let r = r0 + lid.y * ${PER}u + i;
    if (r >= u_mg()) { continue; }
    let co = gi * u_mg() + r;
    let zw = ${wzp};
    for (var j = 0u; j < ${PER}u; j++) {
      let c = c0 + lid.x * ${PER}u + j;
      if (c < u_pos()) {
        let acc = acc4[i][j] - zx * rs[i] - zw * cs[j] + kk * zw * zx;
        let o = (img * u_m() + co) * u_pos() + c;
        ${epilogue}
      }
    }
  }
}`,
  ].join('\n');
}
