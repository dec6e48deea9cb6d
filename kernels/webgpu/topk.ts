// TopK along the middle axis of an [outer, n, inner] layout: values in the input's storage type and
// int64 indices, best first, equal values lower index first. Elements are ranked by a u32 sort key (an
// order-preserving map of the value, NaN above everything, -0 equal to +0), flipped for `largest`, so
// both variants order (key, index) pairs ascending with integer compares.
//  - select: one invocation per row, insertion into the sorted outputs (O(n) for small k).
//  - bitonic: one workgroup per chunk of CHUNK elements of a row, sorted in shared memory; a chunk keeps
//    its k best as (key, index) candidates, and further passes sort candidates until a row fits a chunk.
import type { DType } from '../../engine/dtype.js';
import type { GpuArray, Program } from './runner.js';
import { computeType, declare, entry, load, u32s } from './wgsl.js';

export const CHUNK = 1024;
const WG = 256, SELECT_WG = 64;

export interface TopKLayout { outer: number; n: number; inner: number; axis: number; k: number; largest: boolean }

/** WGSL fn key_(v) -> u32 for a value in dtype d's compute type; `u_largest()` flips the order. */
function keyFn(d: DType): string {
  const ct = computeType(d);
  const raw = ct === 'f32'
    ? `if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) { return 0xffffffffu; } // NaN ranks above +inf
  let b = bitcast<u32>(select(v, 0.0, v == 0.0));
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);`
    : ct === 'i32' ? 'return bitcast<u32>(v) ^ 0x80000000u;' : 'return v;';
  return `fn raw_key(v: ${ct}) -> u32 {\n  ${raw}\n}
fn key_(v: ${ct}) -> u32 { return select(raw_key(v), ~raw_key(v), u_largest() != 0u); }`;
}

const layoutUniforms = (l: TopKLayout) => [u32s('n', l.n), u32s('inner', l.inner), u32s('k', l.k), u32s('largest', l.largest ? 1 : 0)];
function outShapes(x: GpuArray, l: TopKLayout) {
  const shape = x.shape.map((d, i) => (i === l.axis ? l.k : d));
  return [{ dtype: x.dtype, shape }, { dtype: 'int64' as DType, shape }];
}

/** One invocation per row: keeps the row's best k in the outputs, sorted, by insertion. */
export function topkSelect(x: GpuArray, l: TopKLayout): Program {
  const rows = l.outer * l.inner, uniforms = [u32s('rows', rows), ...layoutUniforms(l)];
  const keyAt = (e: string) => `key_(${load(x.dtype, e)})`;
  return {
    name: 'TopK', key: `topk-select|${x.dtype}`,
    shader: () => `${declare({ inputs: [['x', x.dtype]], outputs: [['vals', x.dtype], ['idx', 'int64']], uniforms })}
${keyFn(x.dtype)}
${entry(SELECT_WG, 'u_rows()', `  let inner = u_inner(); let n = u_n(); let k = u_k();
  let base = (gi / inner) * n * inner + gi % inner; let ob = (gi / inner) * k * inner + gi % inner;
  var count = 0u;
  for (var j = 0u; j < n; j++) {
    let v = x[base + j * inner]; let kj = key_(${load(x.dtype, 'v')});
    // j comes after every kept index, so it must be strictly better than the entry it displaces.
    if (count == k && kj >= ${keyAt('vals[ob + (k - 1u) * inner]')}) { continue; }
    var p = min(count, k - 1u);
    while (p > 0u && kj < ${keyAt('vals[ob + (p - 1u) * inner]')}) {
      vals[ob + p * inner] = vals[ob + (p - 1u) * inner]; idx[ob + p * inner] = idx[ob + (p - 1u) * inner]; p--;
    }
    vals[ob + p * inner] = v; idx[ob + p * inner] = vec2<u32>(j, 0u);
    count = min(count + 1u, k);
  }`)}`,
    inputs: [x], outputs: outShapes(x, l), uniforms, workgroups: Math.ceil(rows / SELECT_WG),
  };
}

/**
 * One bitonic pass over rows of `len` entries: from x itself (no `cand`) or from the (key, index) u32
 * pairs of a previous pass. A final pass (len <= CHUNK) writes the k best values and indices; an
 * earlier one writes min(k, CHUNK) candidates per chunk, [rows, chunks * keep, 2].
 */
export function topkBitonicPass(x: GpuArray, cand: GpuArray | undefined, l: TopKLayout, len: number): Program {
  const rows = l.outer * l.inner, chunks = Math.ceil(len / CHUNK), final = chunks === 1;
  const sort = final ? 2 ** Math.ceil(Math.log2(Math.max(len, 2))) : CHUNK, keep = Math.min(l.k, CHUNK);
  const uniforms = [u32s('rows', rows), u32s('len', len), u32s('chunks', chunks), u32s('sort', sort), u32s('keep', keep), ...layoutUniforms(l)];
  // A middle pass (candidates to candidates) never reads x: binding it would break the 'auto' layout.
  const ins: [string, GpuArray][] = [...(cand && !final ? [] : [['x', x] as [string, GpuArray]]), ...(cand ? [['cand', cand] as [string, GpuArray]] : [])];
  const outputs: [string, DType][] = final ? [['vals', x.dtype], ['idx', 'int64']] : [['next', 'uint32']];
  const source = cand
    ? `let e = 2u * (row * u_len() + pos); kv = cand[e]; iv = cand[e + 1u];`
    : `kv = key_(${load(x.dtype, 'x[base + pos * u_inner()]')}); iv = pos;`;
  const sink = final
    ? `let o = (row / u_inner()) * u_k() * u_inner() + row % u_inner() + t * u_inner();
    vals[o] = x[base + si[t] * u_inner()]; idx[o] = vec2<u32>(si[t], 0u);`
    : `let e = 2u * ((row * u_chunks() + chunk) * u_keep() + t); next[e] = sk[t]; next[e + 1u] = si[t];`;
  return {
    name: 'TopK', key: `topk-bitonic|${x.dtype}|${cand ? 'cand' : 'x'}|${final ? 'out' : 'cand'}`,
    shader: () => `${declare({ inputs: ins.map(([k, a]) => [k, a.dtype]), outputs, uniforms })}
${keyFn(x.dtype)}
var<workgroup> sk: array<u32, ${CHUNK}>;
var<workgroup> si: array<u32, ${CHUNK}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wid = wg.x + wg.y * nwg.x;
  if (wid >= u_rows() * u_chunks()) { return; }
  let row = wid / u_chunks(); let chunk = wid % u_chunks(); let n = u_sort();
  let base = (row / u_inner()) * u_n() * u_inner() + row % u_inner();
  for (var t = lid; t < n; t += ${WG}u) {
    let pos = chunk * ${CHUNK}u + t;
    // Padding sorts after every real entry, NaN keys included (its index is larger).
    var kv = 0xffffffffu; var iv = 0xffffffffu;
    if (pos < u_len()) { ${source} }
    sk[t] = kv; si[t] = iv;
  }
  workgroupBarrier();
  for (var size = 2u; size <= n; size <<= 1u) {
    for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
      for (var t = lid; t < n / 2u; t += ${WG}u) {
        let lo = 2u * stride * (t / stride) + t % stride; let hi = lo + stride;
        let hiFirst = sk[hi] < sk[lo] || (sk[hi] == sk[lo] && si[hi] < si[lo]);
        if (hiFirst == ((lo & size) == 0u)) { let a = sk[lo]; sk[lo] = sk[hi]; sk[hi] = a; let b = si[lo]; si[lo] = si[hi]; si[hi] = b; }
      }
      workgroupBarrier();
    }
  }
  for (var t = lid; t < ${final ? 'u_k()' : 'u_keep()'}; t += ${WG}u) {
    ${sink}
  }
}`,
    inputs: ins.map(([, a]) => a),
    outputs: final ? outShapes(x, l) : [{ dtype: 'uint32', shape: [rows * chunks * keep * 2] }],
    uniforms, workgroups: rows * chunks,
  };
}
