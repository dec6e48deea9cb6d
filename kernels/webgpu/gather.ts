// Indexing programs: Gather, GatherElements, GatherND and the scatter phase of ScatterND/ScatterElements.
// Indices are int32 or int64 (the low word, checked against the high one); negative ones wrap once. An
// index still out of range cannot raise an error on the GPU: gathers read 0 and scatters skip it.
import type { DType } from '../../engine/dtype.js';
import { sizeOf } from '../../engine/tensor.js';
import { stridesOf } from '../cpu/broadcast.js';
import { carrier } from './copy.js';
import type { GpuArray, Program, Uniform } from './runner.js';
import { declare, entry, load, storageType, store, u32s } from './wgsl.js';

const WG = 256;

/** index_(i): element i of `idx` as an i32 (int64 beyond i32 becomes i32 min, out of range for any dim);
 *  at_(v, n): v wrapped into [0, n), or -1 when out of range. */
function indexFns(d: DType): string {
  const read = d === 'int64'
    ? 'let v = idx[i]; let lo = bitcast<i32>(v.x); return select(bitcast<i32>(0x80000000u), lo, v.y == select(0u, 0xffffffffu, lo < 0));'
    : 'return idx[i];';
  return `fn index_(i: u32) -> i32 { ${read} }
fn at_(v: i32, n: u32) -> i32 { let m = i32(n); if (v < -m || v >= m) { return -1; } return select(v, v + m, v < 0); }`;
}

const zero = (c: DType) => `${storageType(c)}()`;

function program(name: string, key: string, x: GpuArray, idx: GpuArray, outShape: readonly number[], uniforms: Uniform[], fns: string, body: string): Program {
  const c = carrier(x.dtype), n = sizeOf(outShape);
  return {
    name, key: `${key}|${c}|${idx.dtype}`,
    shader: () => [declare({ inputs: [['x', c], ['idx', idx.dtype]], outputs: [['out', c]], uniforms }), indexFns(idx.dtype), fns, entry(WG, 'u_total()', body)].join('\n'),
    inputs: [x, idx], outputs: [{ dtype: x.dtype, shape: outShape }], uniforms, workgroups: Math.ceil(n / WG),
  };
}

/** Gather over x viewed as [outer, d, inner]: out[o, k, i] = x[o, idx[k], i]. */
export function gather(x: GpuArray, idx: GpuArray, outShape: readonly number[], d: number, inner: number): Program {
  const uniforms = [u32s('total', sizeOf(outShape)), u32s('n', idx.size), u32s('d', d), u32s('inner', inner)];
  return program('Gather', 'gather.gather', x, idx, outShape, uniforms, '', `  let i = gi % u_inner(); let t = gi / u_inner();
  let k = at_(index_(t % u_n()), u_d());
  if (k < 0) { out[gi] = ${zero(carrier(x.dtype))}; return; }
  out[gi] = x[((t / u_n()) * u_d() + u32(k)) * u_inner() + i];`);
}

/** GatherElements: out[c] = x[c with c_axis replaced by idx[c]]. */
export function gatherElements(x: GpuArray, idx: GpuArray, axis: number): Program {
  const rank = idx.shape.length, xs = stridesOf(x.shape);
  const uniforms = [u32s('total', idx.size), u32s('shape', idx.shape), u32s('xstr', xs.map((s, a) => (a === axis ? 0 : s))), u32s('d', x.shape[axis]), u32s('st', xs[axis])];
  return program('GatherElements', `gather.elements|${rank}`, x, idx, idx.shape, uniforms, '', `  var r = gi; var off = 0u;
  for (var a = ${rank - 1}i; a >= 0; a--) { let n = u_shape(u32(a)); off += (r % n) * u_xstr(u32(a)); r /= n; }
  let k = at_(index_(gi), u_d());
  if (k < 0) { out[gi] = ${zero(carrier(x.dtype))}; return; }
  out[gi] = x[off + u32(k) * u_st()];`);
}

/** Tuples of GatherND/ScatterND: tuple t starts at (t / perBatch)·batchSize + Σ_j at_(idx[t·k + j], dims_j)·strides_j. */
export interface Tuples { k: number; dims: number[]; strides: number[]; perBatch: number; batchSize: number; slice: number }

const tupleUniforms = (t: Tuples) => [u32s('k', t.k), u32s('dims', t.dims), u32s('strides', t.strides), u32s('per_batch', t.perBatch), u32s('batch_size', t.batchSize), u32s('slice', t.slice)];

/** fn tuple_(t) -> data offset of tuple t, or -1 when one of its indices is out of range. */
const TUPLE_FN = `fn tuple_(t: u32) -> i32 {
  var off = (t / u_per_batch()) * u_batch_size();
  for (var j = 0u; j < u_k(); j++) {
    let a = at_(index_(t * u_k() + j), u_dims(j));
    if (a < 0) { return -1; }
    off += u32(a) * u_strides(j);
  }
  return i32(off);
}`;

/** GatherND: out[t, j] = x[tuple(t) + j] for j < slice. */
export function gatherND(x: GpuArray, idx: GpuArray, outShape: readonly number[], t: Tuples): Program {
  const uniforms = [u32s('total', sizeOf(outShape)), ...tupleUniforms(t)];
  return program('GatherND', 'gather.nd', x, idx, outShape, uniforms, TUPLE_FN, `  let s = tuple_(gi / u_slice());
  if (s < 0) { out[gi] = ${zero(carrier(x.dtype))}; return; }
  out[gi] = x[u32(s) + gi % u_slice()];`);
}

// ---- scatters ------------------------------------------------------------------------------------

export type Reduction = 'none' | 'add' | 'mul' | 'max' | 'min';

/** WGSL statement merging update u into out[p], in the dtype's arithmetic; bool adds and maxes with or,
 *  multiplies and mins with and, as the CPU backend does. */
function combine(d: DType, r: Reduction): string {
  if (r === 'none') return 'out[p] = upd[q];';
  if (d === 'bool') return `out[p] = out[p] ${r === 'add' || r === 'max' ? '|' : '&'} upd[q];`;
  const o = load(d, 'out[p]'), u = load(d, 'upd[q]');
  const e = { add: `${o} + ${u}`, mul: `${o} * ${u}`, max: `select(${o}, ${u}, ${u} > ${o})`, min: `select(${o}, ${u}, ${u} < ${o})` }[r];
  return `out[p] = ${store(d, e)};`;
}

function scatterProgram(name: string, key: string, dest: GpuArray, idx: GpuArray, upd: GpuArray, r: Reduction, uniforms: Uniform[], lanes: number, fns: string, body: string): Program {
  // Plain stores move bits; reductions need the real dtype's arithmetic.
  const d = r === 'none' ? carrier(dest.dtype) : dest.dtype;
  return {
    name, key: `${key}|${d}|${idx.dtype}|${r}`,
    shader: () => [declare({ inputs: [['idx', idx.dtype], ['upd', d]], outputs: [['out', d]], uniforms }), indexFns(idx.dtype), fns,
      `fn put(p: u32, q: u32) { ${combine(d, r)} }`, entry(64, 'u_total()', body)].join('\n'),
    inputs: [idx, upd, dest], outputs: [], uniforms, workgroups: Math.ceil(lanes / 64),
  };
}

/** ScatterND into `dest` (a copy of the data, written in place). Invocation j applies element j of every
 *  update slice, tuple after tuple: tuple offsets are multiples of the slice size, so only equal j can
 *  collide and duplicates land in the order the CPU backend applies them. */
export function scatterND(dest: GpuArray, idx: GpuArray, upd: GpuArray, t: Tuples, tuples: number, r: Reduction): Program {
  const uniforms = [u32s('total', t.slice), u32s('tuples', tuples), ...tupleUniforms(t)];
  return scatterProgram('ScatterND', 'gather.scatter-nd', dest, idx, upd, r, uniforms, t.slice, TUPLE_FN, `  for (var t = 0u; t < u_tuples(); t++) {
    let s = tuple_(t);
    if (s >= 0) { put(u32(s) + gi, t * u_slice() + gi); }
  }`);
}

/** ScatterElements into `dest` (written in place). Updates collide only along the axis, so each invocation
 *  owns one line of the indices (all coordinates but the axis) and walks it in order, as the CPU does. */
export function scatterElements(dest: GpuArray, idx: GpuArray, upd: GpuArray, axis: number, r: Reduction): Program {
  const rank = idx.shape.length, lines = idx.shape.map((n, a) => (a === axis ? 1 : n)), xs = stridesOf(dest.shape), is = stridesOf(idx.shape);
  const uniforms = [u32s('total', sizeOf(lines)), u32s('lines', lines), u32s('istr', is), u32s('xstr', xs),
    u32s('n', idx.shape[axis]), u32s('d', dest.shape[axis]), u32s('ist', is[axis]), u32s('xst', xs[axis])];
  return scatterProgram('ScatterElements', `gather.scatter-elements|${rank}`, dest, idx, upd, r, uniforms, sizeOf(lines), '', `  var r = gi; var q = 0u; var p = 0u;
  for (var a = ${rank - 1}i; a >= 0; a--) { let n = u_lines(u32(a)); let c = r % n; r /= n; q += c * u_istr(u32(a)); p += c * u_xstr(u32(a)); }
  for (var j = 0u; j < u_n(); j++) {
    let k = at_(index_(q + j * u_ist()), u_d());
    if (k >= 0) { put(p + u32(k) * u_xst(), q + j * u_ist()); }
  }`);
}
