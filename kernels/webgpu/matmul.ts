// GEMM programs: C[b] = act(alpha * A[b]·B[b] + beta * bias) in three variants over one operand interface,
// so MatMul/Gemm (strided, batch-broadcast operands) and Conv (an implicit-GEMM gather of B) share them:
//   reg    - each invocation owns a 4x4 block of C and reads its operands straight from storage (vec4 loads
//            where the layout allows); no workgroup memory, no barriers.
//   shared - a 16x16 workgroup stages 64x16 / 16x64 tiles of A and B in workgroup memory between barriers,
//            each invocation again owning a 4x4 block.
//   gemv   - M = 1 or N = 1: one workgroup per output, its invocations split K and reduce in workgroup memory.
import type { DType } from '../../engine/dtype.js';
import type { GpuContext } from './device.js';
import type { GpuArray, Program, Uniform } from './runner.js';
import { activationKey, activationUniforms, activationWgsl, type Activation, type PostAffine } from './activation.js';
import { gemmVariantFor } from './gemm-tuning.js';
import { computeType, declare, f32u, load, offsetFn, storageType, store, u32s } from './wgsl.js';

export type GemmVariant = 'reg' | 'shared' | 'gemv';

// ---- variant choice --------------------------------------------------------------------------------

/**
 * The rule for the variant of an M x N x K product (per batch item), used until session.warmup has
 * measured the shape's class on the adapter (gemm-tuning.ts). Measured with bench/webgpu-matmul.ts and
 * interleaved reruns, f32, on lavapipe (Mesa 25.0, LLVM 15, 256-bit, 2 cores shared with other busy
 * processes: load average 3.5-7, so +-30%):
 *   1024^3:        reg 552 ms, shared 1356 ms (llvmpipe runs a barrier as a coroutine switch)
 *   1x4096x4096:   reg 69 ms, gemv 460 ms (row-major B: reg's invocations read adjacent columns,
 *                  gemv's read down a column)
 *   Nx1xK, A rows contiguous along K (gemv's case): K=256: reg 0.8, gemv 1.2 ms; K=512: tie;
 *                  K=1024: reg 34, gemv 19 ms; K=2048: reg 10.1, gemv 4.6 ms; K=4096: reg 316, gemv 164 ms
 * Every workgroup shape tried for reg (8x8, 8x16, 16x16, 64x1 with 4x4, 8x4, 8x8, 2x4 and 8x1 blocks per
 * invocation) was at best level with 8x8 and 4x4 blocks (512^3, min of 6: 4x4 190 ms, 2x4 256, 8x8 305,
 * 8x4 339). llvmpipe splits every storage load into per-lane scalar loads; larger blocks load less per
 * product yet ran slower, likely from register spills (not established).
 * No hardware adapter was available to measure; there the rule follows the usual GPU behaviour: a
 * workgroup per output streams a long contiguous operand coalesced once K fills its 64 invocations;
 * staging tiles in workgroup memory pays once both output dims fill a 64x64 tile and K is deep enough
 * to amortise the barriers; the register kernel covers the rest.
 * `rowsAlongK`: the long operand of a matrix-vector product is contiguous along K (A rows when N = 1,
 * B^T rows when M = 1); otherwise a workgroup per output would read it with a stride.
 */
export function chooseGemmVariant(gpu: Pick<GpuContext, 'software'>, m: number, n: number, k: number, rowsAlongK: boolean): GemmVariant {
  if ((m === 1 || n === 1) && rowsAlongK && k >= (gpu.software ? 1024 : 64)) return 'gemv';
  if (gpu.software) return 'reg';
  return m >= 64 && n >= 64 && k >= 32 ? 'shared' : 'reg';
}

// ---- epilogue --------------------------------------------------------------------------------------

export type { Activation, PostAffine } from './activation.js';

/** What happens to each accumulated value before it is stored: y = act(alpha * acc + beta * bias + residual) * s + t. */
export interface Epilogue {
  alpha?: number;
  beta?: number;
  /** Added after scaling; the operands decide how (batch, row, col) maps into it (fn biasIndex). */
  bias?: GpuArray;
  /** Added after the bias, element for element with the output (same shape and layout). */
  residual?: GpuArray;
  activation?: Activation;
  /** After the activation: a scalar Mul/Add folded into the product. */
  affine?: PostAffine;
}

export const epilogueUniforms = (ep: Epilogue): Uniform[] => [
  f32u('alpha', ep.alpha ?? 1), f32u('beta', ep.beta ?? 1), ...activationUniforms(ep.activation, ep.affine),
];
/** The part of a program key the epilogue's code depends on. */
export const epilogueKey = (ep: Epilogue) => `${ep.bias?.dtype ?? '-'}|${ep.residual?.dtype ?? '-'}|${activationKey(ep.activation, ep.affine)}`;
/** The epilogue's extra bindings, bound after the operands: bias, then residual. */
export const epilogueInputs = (ep: Epilogue): [string, GpuArray][] =>
  [['bias', ep.bias], ['res', ep.residual]].filter((e): e is [string, GpuArray] => e[1] !== undefined);

// ---- operands --------------------------------------------------------------------------------------

/**
 * How a GEMM reads A (M x K) and B (K x N) and where (batch, row, col) of C goes, as WGSL over the
 * bindings `inputs` (named by `names`, bound first) and `uniforms`. The code defines:
 *   fn baseA(b: u32) -> u32, fn baseB(b: u32) -> u32    per-batch offsets, computed once
 *   fn colOf(col: u32) -> BCol, with `alias BCol`: whatever B's loads need per column, computed once
 *   fn loadA(base: u32, row: u32, k: u32) -> T, fn loadB(base: u32, k: u32, c: BCol) -> T   (indices in range)
 *   fn loadB4(base, k, col) -> vec4<T> (B[k, col..col+3], if vecB)
 *   fn outIndex(b: u32, row: u32, col: u32) -> u32, and fn biasIndex(b, row, col) -> u32 when there is a bias.
 * vecB promises N % 4 == 0 and B rows contiguous, so the reg kernel reads 4 columns in one load.
 */
export interface GemmOperands {
  key: string;
  inputs: GpuArray[];
  names: string[];
  uniforms: Uniform[];
  code: string;
  vecB: boolean;
  /** Bindings (by name) to declare as vec4 arrays. */
  vec4Bindings: string[];
}

export interface GemmDims { batch: number; m: number; n: number; k: number }

/** Declarations with the named bindings as arrays of vec4 (the shared declare() knows only scalars). */
export function declareVec4(io: Parameters<typeof declare>[0], vec4: string[]): string {
  let src = declare(io);
  for (const [name, d] of [...io.inputs, ...io.outputs]) {
    if (vec4.includes(name)) src = src.replace(`${name}: array<${storageType(d)}>;`, `${name}: array<vec4<${storageType(d)}>>;`);
  }
  return src;
}

/** A vec4 load of a vec4-declared binding in compute type. */
export const load4 = (d: DType, e: string) => (d === 'float16' ? `vec4<f32>(${e})` : e);

// ---- the program -----------------------------------------------------------------------------------

const GEMV_WG = 64;

/** C = act(alpha * A·B + beta * bias) of shape `outShape` (its layout is the operands' outIndex). */
export function gemmProgram(variant: GemmVariant, dtype: DType, dims: GemmDims, ops: GemmOperands, outShape: readonly number[], ep: Epilogue = {}): Program {
  const T = computeType(dtype);
  if ((ep.activation || ep.affine) && T !== 'f32') throw new Error(`GEMM activations need a float dtype, got ${dtype}`);
  if (variant !== 'gemv' && dims.batch > 65535) throw new Error(`GEMM batch ${dims.batch} exceeds 65535 workgroups along z`);
  if (variant === 'gemv' && dims.m !== 1 && dims.n !== 1) throw new Error(`gemv needs M = 1 or N = 1, got ${dims.m}x${dims.n}`);
  const rowsMode = variant === 'gemv' && dims.n === 1; // gemv: each output is a row of C (else a column)
  const uniforms: Uniform[] = [
    u32s('M', dims.m), u32s('N', dims.n), u32s('K', dims.k), u32s('batch', dims.batch),
    ...epilogueUniforms(ep), ...ops.uniforms,
  ];
  const extra = epilogueInputs(ep);
  const inputs = [...ops.inputs, ...extra.map(([, a]) => a)];
  const io = {
    inputs: [...ops.inputs.map((x, i) => [ops.names[i], x.dtype] as [string, DType]), ...extra.map(([n, a]) => [n, a.dtype] as [string, DType])],
    outputs: [['out', dtype] as [string, DType]], uniforms,
  };
  const body = variant === 'reg' ? regKernel(T, ops) : variant === 'shared' ? sharedKernel(T) : gemvKernel(T, rowsMode);
  const tile = variant === 'reg' ? REG_TILE : SHARED_TILE;
  return {
    name: `gemm_${variant}`,
    key: `gemm|${variant}${rowsMode ? 'r' : ''}|${dtype}|${ops.key}|${+ops.vecB}|${epilogueKey(ep)}`,
    shader: () => [declareVec4(io, ops.vec4Bindings), ops.code, activationWgsl(ep.activation, ep.affine), writeWgsl(dtype, ep), body].join('\n'),
    inputs,
    outputs: [{ dtype, shape: outShape }],
    uniforms,
    workgroups: variant === 'gemv' ? dims.batch * (rowsMode ? dims.m : dims.n) : [Math.ceil(dims.n / tile), Math.ceil(dims.m / tile), dims.batch],
  };
}

/** fn write(b, row, col, acc): one accumulated value through the epilogue into out[outIndex(b, row, col)].
 *  Needs the epilogue's uniforms (epilogueUniforms) and bindings (epilogueInputs) and, with a bias, fn biasIndex. */
export function writeWgsl(dtype: DType, ep: Epilogue): string {
  const T = computeType(dtype);
  const bias = ep.bias ? `\n  v += ${T}(u_beta()) * ${load(ep.bias.dtype, 'bias[biasIndex(b, row, col)]')};` : '';
  const res = ep.residual ? `\n  v += ${load(ep.residual.dtype, 'res[o]')};` : '';
  const act = ep.activation || ep.affine ? '\n  v = act(v);' : '';
  return `fn write(b: u32, row: u32, col: u32, acc: ${T}) {
  let o = outIndex(b, row, col);
  var v = ${T}(u_alpha()) * acc;${bias}${res}${act}
  out[o] = ${store(dtype, 'v')};
}`;
}

// llvmpipe expands every storage load site into per-lane scalar loads and compiles each at the first
// dispatch, so the kernels keep few load sites: reg unrolls only its 4 rows inside the k loop, and the
// stores and the shared kernel's staging are loops (hardware compilers unroll them anyway). Fully
// unrolled, the same kernels took 10 s (reg) and 25 s (shared) to compile on a loaded lavapipe, now
// 1.5 s and 5 s, at the same speed for reg.

/** Stores the 4x4 block at (row0, col0) of batch item b from acc[i] (row i, a vec4 of columns), clipped to M x N. */
const STORE_BLOCK = `for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      if (row0 + i < M && col0 + j < N) { write(b, row0 + i, col0 + j, acc[i][j]); }
    }
  }`;

/** 8x8 invocations, each owning a 4x4 block of C: a 32x32 tile per workgroup. */
const REG_TILE = 32;

function regKernel(T: string, ops: GemmOperands): string {
  const bRow = ops.vecB ? 'loadB4(bb, k, col0)' : `vec4<${T}>(loadB(bb, k, c0), loadB(bb, k, c1), loadB(bb, k, c2), loadB(bb, k, c3))`;
  return `@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let M = u_M(); let N = u_N(); let K = u_K();
  let row0 = gid.y * 4u; let col0 = gid.x * 4u; let b = gid.z;
  if (row0 >= M || col0 >= N) { return; }
  let ab = baseA(b); let bb = baseB(b);
  // Rows and columns past the edge repeat the last one: loads stay in range, their results are not stored.
  let c = min(vec4<u32>(col0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(N - 1u));
  let c0 = colOf(c.x); let c1 = colOf(c.y); let c2 = colOf(c.z); let c3 = colOf(c.w);
  let r = min(vec4<u32>(row0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(M - 1u));
  var acc0 = vec4<${T}>(); var acc1 = vec4<${T}>(); var acc2 = vec4<${T}>(); var acc3 = vec4<${T}>();
  for (var k = 0u; k < K; k++) {
    let bk = ${bRow};
    acc0 += loadA(ab, r.x, k) * bk; acc1 += loadA(ab, r.y, k) * bk; acc2 += loadA(ab, r.z, k) * bk; acc3 += loadA(ab, r.w, k) * bk;
  }
  let acc = array<vec4<${T}>, 4>(acc0, acc1, acc2, acc3);
  ${STORE_BLOCK}
}`;
}

/** 16x16 invocations, each owning a 4x4 block of C: a 64x64 tile per workgroup, K staged 16 deep. */
const SHARED_TILE = 64;

function sharedKernel(T: string): string {
  // As[kk * 64 + r] holds A row r of the tile at depth kk (Bs likewise for columns). Each of the 256
  // invocations stages 4 elements of each tile, A with k and B with columns varying fastest across
  // invocations (coalesced for row-major operands). Scalar arrays, not vec4 ones written by component:
  // llvmpipe takes 3x longer to compile dynamic component access in workgroup memory.
  const quad = (arr: string, o: string) => `vec4<${T}>(${arr}[${o}], ${arr}[${o} + 1u], ${arr}[${o} + 2u], ${arr}[${o} + 3u])`;
  return `var<workgroup> As: array<${T}, 1024>;
var<workgroup> Bs: array<${T}, 1024>;
@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let M = u_M(); let N = u_N(); let K = u_K();
  let tid = lid.y * 16u + lid.x; let b = wid.z;
  let ab = baseA(b); let bb = baseB(b);
  var acc: array<vec4<${T}>, 4>;
  for (var t = 0u; t < K; t += 16u) {
    for (var l = 0u; l < 4u; l++) {
      let i = tid + l * 256u;
      let ar = i / 16u; let ak = t + i % 16u;
      As[(i % 16u) * 64u + ar] = select(${T}(0), loadA(ab, min(wid.y * 64u + ar, M - 1u), min(ak, K - 1u)), ak < K);
      let bc = i % 64u; let bk = t + i / 64u;
      Bs[(i / 64u) * 64u + bc] = select(${T}(0), loadB(bb, min(bk, K - 1u), colOf(min(wid.x * 64u + bc, N - 1u))), bk < K);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let a = ${quad('As', 'kk * 64u + lid.y * 4u')}; let bv = ${quad('Bs', 'kk * 64u + lid.x * 4u')};
      for (var i = 0u; i < 4u; i++) { acc[i] += a[i] * bv; }
    }
    workgroupBarrier();
  }
  let row0 = wid.y * 64u + lid.y * 4u; let col0 = wid.x * 64u + lid.x * 4u;
  ${STORE_BLOCK}
}`;
}

function gemvKernel(T: string, rowsMode: boolean): string {
  return `var<workgroup> part: array<${T}, ${GEMV_WG}>;
@compute @workgroup_size(${GEMV_WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let E = ${rowsMode ? 'u_M()' : 'u_N()'}; let K = u_K();
  let w = wid.x + wid.y * nwg.x;
  if (w >= E * u_batch()) { return; }
  let b = w / E; let e = w % E;
  let row = ${rowsMode ? 'e' : '0u'}; let col = ${rowsMode ? '0u' : 'e'};
  let ab = baseA(b); let bb = baseB(b); let bc = colOf(col);
  var s = ${T}(0);
  for (var k = lid.x; k < K; k += ${GEMV_WG}u) { s += loadA(ab, row, k) * loadB(bb, k, bc); }
  part[lid.x] = s;
  workgroupBarrier();
  for (var h = ${GEMV_WG / 2}u; h > 0u; h >>= 1u) {
    if (lid.x < h) { part[lid.x] += part[lid.x + h]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { write(b, row, col, part[0]); }
}`;
}

// ---- MatMul / Gemm operands ------------------------------------------------------------------------

/** One strided matrix operand: element (i, j) of batch item b at batchOffset(b) + i * s0 + j * s1. */
export interface MatrixOperand {
  x: GpuArray;
  /** Element strides of the operand's two matrix dims (A: row, k; B: k, col); a transposed input swaps them. */
  strides: [number, number];
  /** Element strides over the output batch dims (0 where broadcast). */
  batchStrides: readonly number[];
}

export interface MatmulSpec {
  a: MatrixOperand;
  b: MatrixOperand;
  dims: GemmDims;
  /** Output batch dims (flattened into dims.batch). */
  batchShape: readonly number[];
  /** Bias element strides along (flat batch item, row, col); 0 where broadcast. */
  biasStrides?: [number, number, number];
  /** Bias element strides along each output batch dim (added to the flat one): a bias with batch dims of its own. */
  biasBatchStrides?: readonly number[];
  epilogue?: Epilogue;
  /** Forces a variant (benchmarks, tests, measurement); by default the measured winner of the shape's
   *  class on this adapter (gemm-tuning.ts), else chooseGemmVariant, decides. */
  variant?: GemmVariant;
}

/** A batched, broadcast MatMul/Gemm C = A·B, C row-major [batch..., M, N]. */
export function matmulProgram(gpu: Pick<GpuContext, 'software' | 'adapterName'>, s: MatmulSpec, outShape: readonly number[]): Program {
  const { m, n, k } = s.dims;
  const rowsAlongK = n === 1 ? s.a.strides[1] === 1 : s.b.strides[0] === 1;
  const variant = s.variant ?? gemmVariantFor(gpu, { m, n, k, rowsAlongK });
  return { ...gemmProgram(variant, s.a.x.dtype, s.dims, matmulOperands(s), outShape, s.epilogue), name: `matmul_${variant}` };
}

function matmulOperands(s: MatmulSpec): GemmOperands {
  const { n } = s.dims, da = s.a.x.dtype, db = s.b.x.dtype, rank = s.batchShape.length;
  // vec4 reads need the row contiguous and every vector start aligned to 4 elements.
  const vecB = s.b.strides[1] === 1 && s.b.strides[0] === n && n % 4 === 0 && s.b.batchStrides.every((v) => v % 4 === 0);
  const loadScalarB = (idx: string) => load(db, vecB ? `b[(${idx}) / 4u][(${idx}) % 4u]` : `b[${idx}]`);
  const code = `${offsetFn('aBatch', rank, 'bshape', 'a_bstr')}
${offsetFn('bBatch', rank, 'bshape', 'b_bstr')}
${offsetFn('cBatch', rank, 'bshape', 'c_bstr')}
fn baseA(b: u32) -> u32 { return aBatch(b); }
fn baseB(b: u32) -> u32 { return bBatch(b); }
fn loadA(base: u32, row: u32, k: u32) -> ${computeType(da)} { return ${load(da, 'a[base + row * u_a_str(0u) + k * u_a_str(1u)]')}; }
alias BCol = u32;
fn colOf(col: u32) -> u32 { return col; }
fn loadB(base: u32, k: u32, col: u32) -> ${computeType(db)} { return ${loadScalarB('base + k * u_b_str(0u) + col * u_b_str(1u)')}; }
${vecB ? `fn loadB4(base: u32, k: u32, col: u32) -> vec4<${computeType(db)}> { return ${load4(db, 'b[(base + k * u_b_str(0u) + col) / 4u]')}; }` : ''}
fn outIndex(b: u32, row: u32, col: u32) -> u32 { return (b * u_M() + row) * u_N() + col; }
fn biasIndex(b: u32, row: u32, col: u32) -> u32 { return b * u_c_str(0u) + cBatch(b) + row * u_c_str(1u) + col * u_c_str(2u); }`;
  return {
    key: `mm${rank}`, inputs: [s.a.x, s.b.x], names: ['a', 'b'], code, vecB, vec4Bindings: vecB ? ['b'] : [],
    uniforms: [
      u32s('bshape', s.batchShape), u32s('a_bstr', s.a.batchStrides), u32s('b_bstr', s.b.batchStrides),
      u32s('a_str', s.a.strides), u32s('b_str', s.b.strides),
      u32s('c_str', s.biasStrides ?? [0, 0, 0]), u32s('c_bstr', s.biasBatchStrides ?? s.batchShape.map(() => 0)),
    ],
  };
}
