// Window pooling (max, average, Lp) over planes of 1 to 3 spatial dims, padded to (D, H, W): one
// invocation per output element walks its window and skips taps that fall in the padding. Pads never
// contribute values, only (average with count_include_pad) to the divisor.
import type { DType } from '../../engine/dtype.js';
import type { GpuArray, Program } from './runner.js';
import { FLOAT_HELPERS } from './reduce.js';
import { computeType, declare, entry, f32u, intRange, load, store, u32s } from './wgsl.js';

const WG = 64;

/** Per spatial dim (D, H, W): input and output sizes, kernel, stride, dilation, leading and trailing pads. */
export interface PoolGeom { inS: number[]; out: number[]; k: number[]; s: number[]; d: number[]; p: number[]; pe: number[] }

export type PoolHow = { kind: 'max'; indices: boolean; colMajor: boolean } | { kind: 'avg'; countPad: boolean } | { kind: 'lp'; p: number };

/** Accumulator declarations, the per-tap update (tap value `v` at in-plane offset `off`) and the result `y`. */
function kindCode(how: PoolHow, d: DType): { init: string; tap: string; y: string } {
  switch (how.kind) {
    case 'max': {
      // Column-major indices (storage_order=1) renumber the plane as d + D * (h + H * w).
      const at = how.colMajor ? 'i32(id + u_ins(0u) * (ih + u_ins(1u) * iw))' : 'i32(off)';
      // Integers (MaxPool takes int8 and uint8) start from their type's minimum, floats from -infinity.
      const lo = intRange(d)?.[0], t = computeType(d);
      return { init: `var best = ${lo === undefined ? 'inf_(true)' : `${t}(${lo})`}; var at = -1i;`, tap: `if (v > best || at < 0) { best = v; at = ${at}; }`, y: 'best' };
    }
    case 'avg': return {
      init: 'var acc = 0.0; var cnt = 0u;', tap: 'acc += v; cnt++;',
      y: `acc / f32(${how.countPad ? 'padded(0u, od) * padded(1u, oh) * padded(2u, ow)' : 'cnt'})`,
    };
    case 'lp': return { init: 'var acc = 0.0;', tap: 'acc += pow(abs(v), u_p());', y: 'pow(acc, 1.0 / u_p())' };
  }
}

/** Pooling of x (N x C x spatial, contiguous planes) into `outShape`, plus int64 indices for max with `indices`. */
export function poolProgram(x: GpuArray, outShape: readonly number[], g: PoolGeom, how: PoolHow): Program {
  const total = outShape.reduce((a, b) => a * b, 1), d = x.dtype, c = kindCode(how, d);
  const withIdx = how.kind === 'max' && how.indices;
  const uniforms = [
    u32s('total', total), u32s('ins', g.inS), u32s('outs', g.out), u32s('k', g.k), u32s('st', g.s), u32s('dl', g.d), u32s('pb', g.p), u32s('pe', g.pe),
    ...(how.kind === 'lp' ? [f32u('p', how.p)] : []),
  ];
  const outputs: [string, DType][] = [['out', d], ...(withIdx ? [['idx', 'int64'] as [string, DType]] : [])];
  const variant = how.kind === 'max' ? `max${how.indices ? (how.colMajor ? 'c' : 'r') : ''}` : how.kind === 'avg' ? `avg${how.countPad ? 'p' : ''}` : 'lp';
  const tapLoop = (i: number, name: string, o: string, inner: string) => `for (var t${name} = 0u; t${name} < u_k(${i}u); t${name}++) {
    let s${name} = i32(${o} * u_st(${i}u) + t${name} * u_dl(${i}u)) - i32(u_pb(${i}u));
    if (s${name} < 0 || s${name} >= i32(u_ins(${i}u))) { continue; }
    let i${name} = u32(s${name});
    ${inner}
  }`;
  return {
    name: `Pool_${how.kind}`,
    key: `pool|${variant}|${d}`,
    shader: () => [
      declare({ inputs: [['x', d]], outputs, uniforms }),
      FLOAT_HELPERS,
      // Taps of output index o along dim i inside the input or its padding (count_include_pad's divisor).
      how.kind === 'avg' && how.countPad ? `fn padded(i: u32, o: u32) -> u32 {
  var c = 0u;
  for (var t = 0u; t < u_k(i); t++) { if (i32(o * u_st(i) + t * u_dl(i)) - i32(u_pb(i)) < i32(u_ins(i) + u_pe(i))) { c++; } }
  return c;
}` : '',
      entry(WG, 'u_total()', [
        '  let ow = gi % u_outs(2u); let oh = (gi / u_outs(2u)) % u_outs(1u); let od = (gi / (u_outs(2u) * u_outs(1u))) % u_outs(0u);',
        '  let base = (gi / (u_outs(0u) * u_outs(1u) * u_outs(2u))) * u_ins(0u) * u_ins(1u) * u_ins(2u);',
        `  ${c.init}`,
        `  ${tapLoop(0, 'd', 'od', tapLoop(1, 'h', 'oh', tapLoop(2, 'w', 'ow', `let off = (id * u_ins(1u) + ih) * u_ins(2u) + iw; let v = ${load(d, 'x[base + off]')}; ${c.tap}`)))}`,
        `  out[gi] = ${store(d, c.y)};`,
        withIdx ? `  idx[gi] = ${store('int64', 'i32(base) + at')};` : '',
      ].join('\n')),
    ].join('\n'),
    inputs: [x],
    outputs: outputs.map(([, dt]) => ({ dtype: dt, shape: outShape })),
    uniforms,
    workgroups: Math.ceil(total / WG),
  };
}

/** MaxUnpool as a gather: out[i] = x[src[i]] where src (int32, from the host's scan of the indices) names the
 *  last element of x written to i, or -1 for the zeros. */
export function unpoolProgram(x: GpuArray, src: GpuArray, outShape: readonly number[]): Program {
  const total = outShape.reduce((a, b) => a * b, 1), d = x.dtype, uniforms = [u32s('total', total)];
  return {
    name: 'MaxUnpool', key: `unpool|${d}`,
    shader: () => `${declare({ inputs: [['x', d], ['src', 'int32']], outputs: [['out', d]], uniforms })}
${entry(WG, 'u_total()', `  let s = src[gi];\n  if (s >= 0) { out[gi] = x[u32(s)]; } else { out[gi] = ${store(d, '0.0')}; }`)}`,
    inputs: [x, src], outputs: [{ dtype: d, shape: outShape }], uniforms, workgroups: Math.ceil(total / WG),
  };
}
