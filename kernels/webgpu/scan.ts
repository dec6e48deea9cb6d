// CumProd over the middle dim of [outer, n, inner]: the same two shapes of scan as CumSum's (copy.ts),
// with a product. Floats multiply in f32 (float16 widened); 32-bit integers wrap, as Math.imul does.
import type { GpuArray, Program } from './runner.js';
import type { ScanSpec, ScanVariant } from './copy.js';
import { computeType, declare, entry, load, store, u32s } from './wgsl.js';

const WG = 256;

export function cumprod(x: GpuArray, s: ScanSpec, variant: ScanVariant): Program {
  const lanes = s.outer * s.inner, t = computeType(x.dtype), wg = variant === 'workgroup';
  const uniforms = [u32s('lanes', lanes), u32s('n', s.n), u32s('inner', s.inner)];
  // Exclusive scans write the running product before taking the element in.
  const step = (acc: string) => (s.exclusive
    ? `out[p] = ${store(x.dtype, acc)}; ${acc} *= ${load(x.dtype, 'x[p]')};`
    : `${acc} *= ${load(x.dtype, 'x[p]')}; out[p] = ${store(x.dtype, acc)};`);
  const fns = `${declare({ inputs: [['x', x.dtype]], outputs: [['out', x.dtype]], uniforms })}
fn pos(lane: u32, j: u32) -> u32 {
  let n = u_n(); let inner = u_inner();
  return (lane / inner) * n * inner + lane % inner + ${s.reverse ? '(n - 1u - j)' : 'j'} * inner;
}`;
  return {
    name: `CumProd(${variant})`, key: `scan.cumprod|${variant}|${x.dtype}|${s.exclusive}|${s.reverse}`,
    shader: () => `${fns}\n${wg ? productWorkgroup(t, load(x.dtype, 'x[pos(lane, j)]'), step)
      : entry(64, 'u_lanes()', `  var acc = ${t}(1);\n  for (var j = 0u; j < u_n(); j++) { let p = pos(gi, j); ${step('acc')} }`)}`,
    inputs: [x], outputs: [{ dtype: x.dtype, shape: x.shape }], uniforms, workgroups: wg ? lanes : Math.ceil(lanes / 64),
  };
}

/** One workgroup per lane: chunk products, a Hillis-Steele scan of them in shared memory, then each
 *  invocation rescans its chunk from the product of the chunks before it. */
function productWorkgroup(t: string, ld: string, step: (acc: string) => string): string {
  return `var<workgroup> part: array<${t}, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) i: u32) {
  let lane = wg.x + wg.y * nwg.x;
  if (lane >= u_lanes()) { return; } // uniform per workgroup: the barriers stay in uniform control flow
  let c = (u_n() + ${WG - 1}u) / ${WG}u; let j0 = min(i * c, u_n()); let j1 = min(j0 + c, u_n());
  var prod = ${t}(1);
  for (var j = j0; j < j1; j++) { prod *= ${ld}; }
  part[i] = prod;
  for (var o = 1u; o < ${WG}u; o <<= 1u) {
    workgroupBarrier();
    var v = ${t}(1);
    if (i >= o) { v = part[i - o]; }
    workgroupBarrier();
    part[i] *= v;
  }
  workgroupBarrier();
  var acc = ${t}(1);
  if (i > 0u) { acc = part[i - 1u]; }
  for (var j = j0; j < j1; j++) { let p = pos(lane, j); ${step('acc')} }
}`;
}
