// Data-movement programs: strided gathers (Slice, Expand, Tile, general transposes), block copies (Concat,
// Split), fills, pads, triangle masks, and axis scans. Moving data never looks at values, so elements travel
// as their storage bits: every 4-byte dtype moves as u32 and they all share one pipeline (NaN payloads and
// int64 words survive untouched).
import type { DType } from '../../engine/dtype.js';
import { sizeOf } from '../../engine/tensor.js';
import { stridesOf } from '../cpu/broadcast.js';
import { simplify } from '../cpu/copy.js';
import { numberToF16 } from '../cpu/minifloat.js';
import type { GpuArray, Program, Uniform } from './runner.js';
import { computeType, declare, entry, i32u, load, storageType, store, u32s } from './wgsl.js';

export const WG = 256;

/** The dtype a pure copy moves `d` as: 4-byte types as uint32, float16 and int64 as themselves. */
export const carrier = (d: DType): DType => (d === 'float16' || d === 'int64' ? d : 'uint32');

/** A program's output: a new array of this shape, or an existing one written in place. An in-place
 *  destination is bound as the last input with no outputs, which puts it at the binding declare() gives
 *  the first output, so the same shader serves both. */
export type Dest = GpuArray | readonly number[];

function io(dest: Dest, dtype: DType, inputs: GpuArray[]): Pick<Program, 'inputs' | 'outputs'> {
  return Array.isArray(dest) ? { inputs, outputs: [{ dtype, shape: dest as readonly number[] }] } : { inputs: [...inputs, dest as GpuArray], outputs: [] };
}

/** Storage bits of `v` in dtype d, as the two u32 words the `valueFn` below decodes. */
export function valueBits(d: DType, v: number | bigint): [number, number] {
  switch (d) {
    case 'float32': return [new Uint32Array(Float32Array.of(Number(v)).buffer)[0], 0];
    case 'float16': return [numberToF16(Number(v)), 0];
    case 'bool': return [Number(v) !== 0 ? 1 : 0, 0];
    case 'int64': { const b = BigInt.asUintN(64, BigInt(v)); return [Number(b & 0xffffffffn), Number(b >> 32n)]; }
    default: return [Number(BigInt.asUintN(32, BigInt(Math.trunc(Number(v))))), 0];
  }
}

/** fn value_() returning the uniform `bits` as an element of carrier c. */
function valueFn(c: DType): string {
  const e = c === 'float16' ? 'bitcast<vec2<f16>>(u_bits(0u)).x' : c === 'int64' ? 'vec2<u32>(u_bits(0u), u_bits(1u))' : 'u_bits(0u)';
  return `fn value_() -> ${storageType(c)} { return ${e}; }`;
}

// ---- strided gathers -----------------------------------------------------------------------------

/** out[o] = x[base + Σ c_d·strides_d] over the coordinates c of `outShape` (strides may be negative or 0).
 *  Dims that are contiguous on both sides are merged first, so most copies run at rank 1 or 2. */
export function stridedCopy(name: string, x: GpuArray, outShape: readonly number[], strides: readonly number[], base = 0): Program {
  const m = simplify(outShape, stridesOf(outShape), strides);
  // Merging dims makes the rank depend on which sizes are 1 (batch 1 vs 2): pad to the original rank
  // with leading size-1 dims so a new input shape never needs a new pipeline.
  const pad = outShape.length - (m?.shape.length ?? 0);
  return gatherProgram(name, x, outShape, [...Array(pad).fill(1), ...(m?.shape ?? [])], [...Array(pad).fill(0), ...(m?.strides[1] ?? [])], base);
}

/** Tile: out coordinate c_d reads x at c_d mod x.shape[d]. */
export function tileCopy(x: GpuArray, outShape: readonly number[]): Program {
  return gatherProgram('Tile', x, outShape, outShape, stridesOf(x.shape), 0, x.shape);
}

function gatherProgram(name: string, x: GpuArray, outShape: readonly number[], shape: readonly number[], strides: readonly number[], base: number, wrap?: readonly number[]): Program {
  const c = carrier(x.dtype), rank = shape.length, n = sizeOf(outShape);
  const uniforms: Uniform[] = [u32s('total', n), u32s('shape', shape), i32u('strides', strides), i32u('base', base), ...(wrap ? [u32s('wrap', wrap)] : [])];
  return {
    name, key: `copy.strided|${c}|${rank}|${wrap ? 'wrap' : ''}`,
    shader: () => `${declare({ inputs: [['x', c]], outputs: [['out', c]], uniforms })}
fn src(o: u32) -> u32 {
  var r = o; var off = u_base();
  for (var d = ${rank - 1}i; d >= 0; d--) {
    let n = u_shape(u32(d)); let c = r % n; r /= n;
    off += i32(${wrap ? 'c % u_wrap(u32(d))' : 'c'}) * u_strides(u32(d));
  }
  return u32(off);
}
${entry(WG, 'u_total()', '  out[gi] = x[src(gi)];')}`,
    inputs: [x], outputs: [{ dtype: x.dtype, shape: outShape }], uniforms, workgroups: Math.ceil(n / WG),
  };
}

// ---- block copies, fills -------------------------------------------------------------------------

export interface Blocks { outer: number; blk: number; srcBlk: number; srcOff: number; dstBlk: number; dstOff: number }

/** dst[dstOff + o·dstBlk + j] = src[srcOff + o·srcBlk + j] for o < outer, j < blk: one input's slab of a
 *  Concat (in place into the shared output) or one output of a Split. */
export function blockCopy(src: GpuArray, b: Blocks, dest: Dest): Program {
  const c = carrier(src.dtype), n = b.outer * b.blk;
  const uniforms = [u32s('total', n), u32s('blk', b.blk), u32s('sblk', b.srcBlk), u32s('soff', b.srcOff), u32s('dblk', b.dstBlk), u32s('doff', b.dstOff)];
  return {
    name: 'blockCopy', key: `copy.block|${c}`,
    shader: () => `${declare({ inputs: [['src', c]], outputs: [['dst', c]], uniforms })}
${entry(WG, 'u_total()', '  let o = gi / u_blk(); let j = gi % u_blk();\n  dst[u_doff() + o * u_dblk() + j] = src[u_soff() + o * u_sblk() + j];')}`,
    ...io(dest, src.dtype, [src]), uniforms, workgroups: Math.ceil(n / WG),
  };
}

/** A new array holding one value everywhere (Dropout's mask of ones). */
export function fill(dtype: DType, shape: readonly number[], value: number | bigint): Program {
  const c = carrier(dtype), n = sizeOf(shape), uniforms = [u32s('total', n), u32s('bits', valueBits(dtype, value))];
  return {
    name: 'fill', key: `copy.fill|${c}`,
    shader: () => `${declare({ inputs: [], outputs: [['out', c]], uniforms })}\n${valueFn(c)}\n${entry(WG, 'u_total()', '  out[gi] = value_();')}`,
    inputs: [], outputs: [{ dtype, shape }], uniforms, workgroups: Math.ceil(n / WG),
  };
}

// ---- pad -----------------------------------------------------------------------------------------

export type PadMode = 'constant' | 'reflect' | 'edge' | 'wrap';

/** Where output position j (relative to the kept region's start) reads inside a kept region of length k. */
const PAD_INDEX: Record<PadMode, string> = {
  constant: 'if (j < 0 || j >= k) { return -1; } let i = j;',
  edge: 'let i = clamp(j, 0, k - 1);',
  wrap: 'let i = ((j % k) + k) % k;',
  reflect: 'let p = max(2 * (k - 1), 1); let m = ((j % p) + p) % p; let i = select(p - m, m, m < k);',
};

export interface PadSpec { mode: PadMode; lead: number[]; from: number[]; kept: number[]; value: number | bigint }

/** Output coordinate c_d reads x at from_d + PAD_INDEX(c_d - lead_d, kept_d); the constant mode writes
 *  `value` where any coordinate falls outside the kept region. */
export function pad(x: GpuArray, outShape: readonly number[], s: PadSpec): Program {
  const c = carrier(x.dtype), rank = outShape.length, n = sizeOf(outShape);
  const uniforms: Uniform[] = [u32s('total', n), u32s('shape', outShape), i32u('lead', s.lead), i32u('start', s.from), i32u('kept', s.kept),
    i32u('xstr', stridesOf(x.shape)), u32s('bits', valueBits(x.dtype, s.value))];
  return {
    name: `Pad(${s.mode})`, key: `copy.pad|${c}|${rank}|${s.mode}`,
    shader: () => `${declare({ inputs: [['x', c]], outputs: [['out', c]], uniforms })}
${valueFn(c)}
fn src(o: u32) -> i32 {
  var r = o; var off = 0i;
  for (var d = ${rank - 1}i; d >= 0; d--) {
    let n = u_shape(u32(d)); let j = i32(r % n) - u_lead(u32(d)); let k = u_kept(u32(d)); r /= n;
    ${PAD_INDEX[s.mode]}
    off += (u_start(u32(d)) + i) * u_xstr(u32(d));
  }
  return off;
}
${entry(WG, 'u_total()', '  let s = src(gi);\n  if (s < 0) { out[gi] = value_(); } else { out[gi] = x[u32(s)]; }')}`,
    inputs: [x], outputs: [{ dtype: x.dtype, shape: outShape }], uniforms, workgroups: Math.ceil(n / WG),
  };
}

// ---- triangle masks ------------------------------------------------------------------------------

/** Trilu over the last two dims: keeps column j of row i where j - i >= k (upper) or <= k (lower), zero elsewhere. */
export function trilu(x: GpuArray, k: number, upper: boolean): Program {
  const c = carrier(x.dtype), r = x.shape.length, rows = x.shape[r - 2], cols = x.shape[r - 1];
  // k only matters within (-rows, cols): clamping keeps huge int64 diagonals inside i32.
  const kk = Math.min(Math.max(k, -rows - 1), cols + 1);
  const uniforms = [u32s('total', x.size), u32s('rows', rows), u32s('cols', cols), i32u('k', kk)];
  return {
    name: 'Trilu', key: `copy.trilu|${c}|${upper}`,
    shader: () => `${declare({ inputs: [['x', c]], outputs: [['out', c]], uniforms })}
${entry(WG, 'u_total()', `  let d = i32(gi % u_cols()) - i32((gi / u_cols()) % u_rows());
  out[gi] = select(${storageType(c)}(), x[gi], d ${upper ? '>=' : '<='} u_k());`)}`,
    inputs: [x], outputs: [{ dtype: x.dtype, shape: x.shape }], uniforms, workgroups: Math.ceil(x.size / WG),
  };
}

// ---- axis scans ----------------------------------------------------------------------------------

export interface ScanSpec { outer: number; n: number; inner: number; exclusive: boolean; reverse: boolean }
export type ScanVariant = 'serial' | 'workgroup';

/** Lanes walking their axis serially fill a GPU only when there are many of them; a few long lanes get a
 *  workgroup each. A CPU rasteriser runs invocations one after another anyway: barriers only cost there. */
export const pickScan = (software: boolean, s: ScanSpec): ScanVariant =>
  (!software && s.n >= 1024 && s.outer * s.inner <= 4096 ? 'workgroup' : 'serial');

/** A scan's combining operator in WGSL and its identity, in the compute type. */
const FOLDS = { CumSum: { op: '+', id: '0' }, CumProd: { op: '*', id: '1' } } as const;
type Fold = keyof typeof FOLDS;

/** CumSum over the middle dim of [outer, n, inner], accumulating in the compute type (f32 for float16,
 *  wrapping for integers). */
export const cumsum = (x: GpuArray, s: ScanSpec, variant: ScanVariant): Program => axisScan('CumSum', x, s, variant);
/** CumProd likewise: 32-bit integer products wrap, as Math.imul does on the CPU. */
export const cumprod = (x: GpuArray, s: ScanSpec, variant: ScanVariant): Program => axisScan('CumProd', x, s, variant);

function axisScan(fold: Fold, x: GpuArray, s: ScanSpec, variant: ScanVariant): Program {
  const lanes = s.outer * s.inner, t = computeType(x.dtype), wg = variant === 'workgroup', { op, id } = FOLDS[fold];
  const uniforms = [u32s('lanes', lanes), u32s('n', s.n), u32s('inner', s.inner)];
  // Exclusive scans write the running value before taking the element in.
  const step = (acc: string) => (s.exclusive
    ? `out[p] = ${store(x.dtype, acc)}; ${acc} ${op}= ${load(x.dtype, 'x[p]')};`
    : `${acc} ${op}= ${load(x.dtype, 'x[p]')}; out[p] = ${store(x.dtype, acc)};`);
  const fns = `${declare({ inputs: [['x', x.dtype]], outputs: [['out', x.dtype]], uniforms })}
fn pos(lane: u32, j: u32) -> u32 {
  let n = u_n(); let inner = u_inner();
  return (lane / inner) * n * inner + lane % inner + ${s.reverse ? '(n - 1u - j)' : 'j'} * inner;
}`;
  return {
    name: `${fold}(${variant})`, key: `copy.${fold}|${variant}|${x.dtype}|${s.exclusive}|${s.reverse}`,
    shader: () => `${fns}\n${wg ? scanWorkgroup(t, op, id, load(x.dtype, 'x[pos(lane, j)]'), step) : entry(64, 'u_lanes()', `  var acc = ${t}(${id});\n  for (var j = 0u; j < u_n(); j++) { let p = pos(gi, j); ${step('acc')} }`)}`,
    inputs: [x], outputs: [{ dtype: x.dtype, shape: x.shape }], uniforms, workgroups: wg ? lanes : Math.ceil(lanes / 64),
  };
}

/** One workgroup per lane: each invocation folds a contiguous chunk, the chunk values are scanned in
 *  shared memory (Hillis-Steele), then each invocation rescans its chunk from its prefix. */
function scanWorkgroup(t: string, op: string, id: string, ld: string, step: (acc: string) => string): string {
  return `var<workgroup> part: array<${t}, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) i: u32) {
  let lane = wg.x + wg.y * nwg.x;
  if (lane >= u_lanes()) { return; } // uniform per workgroup: the barriers stay in uniform control flow
  let c = (u_n() + ${WG - 1}u) / ${WG}u; let j0 = min(i * c, u_n()); let j1 = min(j0 + c, u_n());
  var part0 = ${t}(${id});
  for (var j = j0; j < j1; j++) { part0 ${op}= ${ld}; }
  part[i] = part0;
  for (var o = 1u; o < ${WG}u; o <<= 1u) {
    workgroupBarrier();
    var v = ${t}(${id});
    if (i >= o) { v = part[i - o]; }
    workgroupBarrier();
    part[i] ${op}= v;
  }
  workgroupBarrier();
  var acc = ${t}(${id});
  if (i > 0u) { acc = part[i - 1u]; }
  for (var j = j0; j < j1; j++) { let p = pos(lane, j); ${step('acc')} }
}`;
}
