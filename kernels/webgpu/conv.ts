// Convolution programs, NCHW with 1 to 3 spatial dims given as (D, H, W) with leading 1s (cpu/conv.ts's Geom3):
//   convProgram          - implicit GEMM per (image, group): C[mg x outSize] = W_g[mg x cg*k] · B, where B's
//                          element (ci, kd, kh, kw ; position) is gathered from X on the fly (zero in padding),
//                          so no im2col buffer exists; runs on the GEMM variants of matmul.ts.
//   depthwiseProgram     - one input channel per group: a direct sliding window per output element.
//   convTransposeProgram - gather form: each output element sums the input pixels whose window covers it.
import type { DType } from '../../engine/dtype.js';
import type { Geom3 } from '../cpu/conv.js';
import type { GpuContext } from './device.js';
import { activationWgsl } from './activation.js';
import { chooseGemmVariant, epilogueInputs, epilogueKey, epilogueUniforms, gemmProgram, load4, writeWgsl, type Epilogue, type GemmOperands, type GemmVariant } from './matmul.js';
import type { GpuArray, Program, Uniform } from './runner.js';
import { computeType, declare, entry, load, u32s } from './wgsl.js';

/** Channels and geometry of one convolution: n images, c input and m output channels in `group` groups. */
export interface ConvShape { n: number; c: number; m: number; group: number; g: Geom3 }

const prod = (v: number[]) => v[0] * v[1] * v[2];
const geomUniforms = (g: Geom3): Uniform[] => [
  u32s('in_s', g.inS), u32s('out_s', g.out), u32s('ks', g.k), u32s('st', g.s), u32s('dl', g.d), u32s('pd', g.p),
];
const outShapeOf = (s: ConvShape, spatial: readonly number[]) => [s.n, s.m, ...spatial];

/** 1x1 kernel, stride 1, no padding: B is X itself, one channel row per k. */
export const isPointwise = (g: Geom3) => g.k.every((v) => v === 1) && g.s.every((v) => v === 1) && g.p.every((v) => v === 0);

/**
 * Conv as an implicit GEMM; `spatial` is the output's spatial shape (1 to 3 dims), the bias (m values)
 * and activation ride in `ep`. The variant is chooseGemmVariant's unless forced.
 */
export function convProgram(gpu: Pick<GpuContext, 'software'>, x: GpuArray, w: GpuArray, s: ConvShape, spatial: readonly number[], ep: Epilogue = {}, variant?: GemmVariant): Program {
  const cg = s.c / s.group, mg = s.m / s.group, outSize = prod(s.g.out), k = cg * prod(s.g.k), inSize = prod(s.g.inS);
  const pointwise = isPointwise(s.g);
  const vecB = pointwise && inSize % 4 === 0;
  const T = computeType(x.dtype), dx = x.dtype, dw = w.dtype;
  const xs = (idx: string) => load(dx, vecB ? `x[(${idx}) / 4u][(${idx}) % 4u]` : `x[${idx}]`);
  const code = `fn baseA(b: u32) -> u32 { return (b % u_group()) * u_M() * u_K(); }
fn baseB(b: u32) -> u32 { return ((b / u_group()) * u_c() + (b % u_group()) * u_cg()) * u_in_size(); }
fn loadA(base: u32, row: u32, k: u32) -> ${T} { return ${load(dw, 'w[base + row * u_K() + k]')}; }
${pointwise ? pointwiseB(T, xs) : gatherB(T, xs, spatial.length)}
${vecB ? `fn loadB4(base: u32, k: u32, col: u32) -> vec4<${T}> { return ${load4(dx, 'x[(base + k * u_in_size() + col) / 4u]')}; }` : ''}
fn outIndex(b: u32, row: u32, col: u32) -> u32 { return ((b / u_group()) * u_m() + (b % u_group()) * u_M() + row) * u_N() + col; }
fn biasIndex(b: u32, row: u32, col: u32) -> u32 { return (b % u_group()) * u_M() + row; }`;
  const ops: GemmOperands = {
    key: pointwise ? 'convpw' : `conv${spatial.length}`, inputs: [w, x], names: ['w', 'x'], code, vecB, vec4Bindings: vecB ? ['x'] : [],
    uniforms: [u32s('group', s.group), u32s('c', s.c), u32s('cg', cg), u32s('m', s.m), u32s('in_size', inSize), ...geomUniforms(s.g)],
  };
  const v = variant ?? chooseGemmVariant(gpu, mg, outSize, k, false);
  const p = gemmProgram(v, x.dtype, { batch: s.n * s.group, m: mg, n: outSize, k }, ops, outShapeOf(s, spatial), ep);
  return { ...p, name: `conv_${v}` };
}

/** B is X itself: row k is input channel k's plane. */
const pointwiseB = (T: string, xs: (idx: string) => string) => `alias BCol = u32;
fn colOf(col: u32) -> u32 { return col; }
fn loadB(base: u32, k: u32, col: u32) -> ${T} { return ${xs('base + k * u_in_size() + col')}; }`;

/**
 * B gathered from X: column `col` is an output position, whose window origin (position * stride - pad
 * per spatial dim) colOf computes once per column; row k is (channel, taps...) of the kernel. Only the
 * conv's own spatial dims appear in the code (integer division is costly everywhere, and scalarised
 * per lane on llvmpipe). Unsigned wrap-around makes a tap in the leading padding a huge index, so one
 * compare per dim bounds it.
 */
function gatherB(T: string, xs: (idx: string) => string, rank: number): string {
  const dims = [0, 1, 2].slice(3 - rank), rev = dims.slice().reverse();
  // Peels the trailing dims off q (innermost first); the first spatial dim of a position takes the rest.
  const peel = (name: string, size: (d: number) => string, rest: boolean) => rev.map((d) => (d === dims[0] && !rest
    ? `let ${name}${d} = q;` : `let ${name}${d} = q % ${size(d)}; q /= ${size(d)};`)).join(' ');
  return `alias BCol = array<u32, ${rank}>;
fn colOf(col: u32) -> BCol {
  var q = col; ${peel('o', (d) => `u_out_s(${d}u)`, false)}
  return BCol(${dims.map((d) => `o${d} * u_st(${d}u) - u_pd(${d}u)`).join(', ')});
}
fn loadB(base: u32, k: u32, c: BCol) -> ${T} {
  var q = k; ${peel('t', (d) => `u_ks(${d}u)`, true)}
  ${dims.map((d, j) => `let i${d} = c[${j}] + t${d} * u_dl(${d}u);`).join(' ')}
  if (${dims.map((d) => `i${d} >= u_in_s(${d}u)`).join(' || ')}) { return ${T}(0); }
  return ${xs(`base + ${dims.reduce((acc, d) => `(${acc}) * u_in_s(${d}u) + i${d}`, 'q')}`)};
}`;
}

/** Bindings x, w, optional bias, out; uniforms geometry + channels + epilogue; the shader body per element. */
function directProgram(name: string, x: GpuArray, w: GpuArray, s: ConvShape, spatial: readonly number[], ep: Epilogue, body: string): Program {
  const total = s.n * s.m * prod(s.g.out), dtype = x.dtype;
  const uniforms: Uniform[] = [
    u32s('total', total), u32s('c', s.c), u32s('m', s.m), u32s('cg', s.c / s.group), u32s('mg', s.m / s.group),
    u32s('in_size', prod(s.g.inS)), u32s('out_size', prod(s.g.out)), u32s('k_size', prod(s.g.k)), ...geomUniforms(s.g), ...epilogueUniforms(ep),
  ];
  const named: [string, GpuArray][] = [['x', x], ['w', w], ...epilogueInputs(ep)], inputs = named.map(([, a]) => a);
  const io = { inputs: named.map(([n, a]) => [n, a.dtype] as [string, DType]), outputs: [['out', dtype] as [string, DType]], uniforms };
  return {
    name, key: `${name}|${dtype}|${w.dtype}|${epilogueKey(ep)}`,
    shader: () => [
      declare(io), activationWgsl(ep.activation, ep.affine), writeWgsl(dtype, ep),
      // Output element (image b, channel row, position col), as the GEMM epilogue addresses it.
      'fn outIndex(b: u32, row: u32, col: u32) -> u32 { return (b * u_m() + row) * u_out_size() + col; }',
      'fn biasIndex(b: u32, row: u32, col: u32) -> u32 { return row; }',
      entry(64, 'u_total()', `  let col = gi % u_out_size(); let bm = gi / u_out_size(); let mo = bm % u_m(); let b = bm / u_m();
  let ow = col % u_out_s(2u); let q = col / u_out_s(2u); let oh = q % u_out_s(1u); let od = q / u_out_s(1u);
  var s = 0.0;
${body}
  write(b, mo, col, s);`),
    ].join('\n'),
    inputs, outputs: [{ dtype, shape: outShapeOf(s, spatial) }], uniforms, workgroups: Math.ceil(total / 64),
  };
}

/** Conv with one input channel per group (cg = 1; m / c output channels per input channel). */
export function depthwiseProgram(x: GpuArray, w: GpuArray, s: ConvShape, spatial: readonly number[], ep: Epilogue = {}): Program {
  if (s.c !== s.group) throw new Error(`depthwise conv needs one input channel per group, got ${s.c} channels in ${s.group} groups`);
  const lx = load(x.dtype, 'x[xb + (id * u_in_s(1u) + ih) * u_in_s(2u) + iw]'), lw = load(w.dtype, 'w[wb + (kd * u_ks(1u) + kh) * u_ks(2u) + kw]');
  return directProgram('conv_depthwise', x, w, s, spatial, ep, `  let xb = (b * u_c() + mo / u_mg()) * u_in_size(); let wb = mo * u_k_size();
  for (var kd = 0u; kd < u_ks(0u); kd++) {
    let id = od * u_st(0u) + kd * u_dl(0u) - u_pd(0u);
    if (id >= u_in_s(0u)) { continue; }
    for (var kh = 0u; kh < u_ks(1u); kh++) {
      let ih = oh * u_st(1u) + kh * u_dl(1u) - u_pd(1u);
      if (ih >= u_in_s(1u)) { continue; }
      for (var kw = 0u; kw < u_ks(2u); kw++) {
        let iw = ow * u_st(2u) + kw * u_dl(2u) - u_pd(2u);
        if (iw < u_in_s(2u)) { s += ${lx} * ${lw}; }
      }
    }
  }`);
}

/**
 * ConvTranspose: W is [c, m/group, k...]; output position o receives input position i through tap t
 * when o = i * stride - pad + t * dilation, so each output walks its taps and keeps those landing on an
 * input position exactly.
 */
export function convTransposeProgram(x: GpuArray, w: GpuArray, s: ConvShape, spatial: readonly number[], ep: Epilogue = {}): Program {
  const tap = (d: number, o: string, kv: string) => `let t${d} = i32(${o} + u_pd(${d}u)) - i32(${kv} * u_dl(${d}u));
      if (t${d} < 0 || t${d} % i32(u_st(${d}u)) != 0 || u32(t${d}) / u_st(${d}u) >= u_in_s(${d}u)) { continue; }
      let i${d} = u32(t${d}) / u_st(${d}u);`;
  const lx = load(x.dtype, 'x[xo + ci * u_in_size()]'), lw = load(w.dtype, 'w[wo + ci * u_mg() * u_k_size()]');
  return directProgram('conv_transpose', x, w, s, spatial, ep, `  let g = mo / u_mg();
  let xb = (b * u_c() + g * u_cg()) * u_in_size(); let wb = (g * u_cg() * u_mg() + mo % u_mg()) * u_k_size();
  for (var kd = 0u; kd < u_ks(0u); kd++) {
    ${tap(0, 'od', 'kd')}
    for (var kh = 0u; kh < u_ks(1u); kh++) {
      ${tap(1, 'oh', 'kh')}
      for (var kw = 0u; kw < u_ks(2u); kw++) {
        ${tap(2, 'ow', 'kw')}
        let xo = xb + (i0 * u_in_s(1u) + i1) * u_in_s(2u) + i2; let wo = wb + (kd * u_ks(1u) + kh) * u_ks(2u) + kw;
        for (var ci = 0u; ci < u_cg(); ci++) { s += ${lx} * ${lw}; }
      }
    }
  }`);
}
