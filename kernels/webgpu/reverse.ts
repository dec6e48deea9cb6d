// ReverseSequence: out[t, b, ...] = x[n_b - 1 - t, b, ...] for t < n_b (time and batch being axes 0 and 1 in
// either order), x elsewhere. A gather, so elements move as storage bits (copy.ts's carriers).
import { carrier } from './copy.js';
import type { GpuArray, Program } from './runner.js';
import { declare, entry, u32s } from './wgsl.js';

const WG = 256;

/** `lens` holds one int32 length per batch entry, already checked against the time dim. */
export function reverseSequence(x: GpuArray, lens: GpuArray, timeAxis: number): Program {
  const c = carrier(x.dtype), [d0, d1] = x.shape, inner = x.size / Math.max(1, d0 * d1);
  const uniforms = [u32s('total', x.size), u32s('d1', d1), u32s('inner', inner), u32s('time0', timeAxis === 0 ? 1 : 0)];
  return {
    name: 'ReverseSequence', key: `reverse.seq|${c}`,
    shader: () => `${declare({ inputs: [['x', c], ['lens', 'int32']], outputs: [['out', c]], uniforms })}
${entry(WG, 'u_total()', `  let i = gi % u_inner(); let a1 = (gi / u_inner()) % u_d1(); let a0 = gi / (u_inner() * u_d1());
  let time0 = u_time0() == 1u;
  let t = select(a1, a0, time0); let b = select(a0, a1, time0);
  let n = u32(lens[b]);
  let src = select(t, n - 1u - t, t < n);
  let s0 = select(a0, src, time0); let s1 = select(src, a1, time0);
  out[gi] = x[(s0 * u_d1() + s1) * u_inner() + i];`)}`,
    inputs: [x, lens], outputs: [{ dtype: x.dtype, shape: x.shape }], uniforms, workgroups: Math.ceil(x.size / WG),
  };
}
