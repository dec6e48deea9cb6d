// NegativeLogLikelihoodLoss programs over log-probabilities x laid out [N, C, D]: per-sample losses
// -x[n, t, d] · weight[t] (0 where t is ignore_index), then for sum/mean one row fold of the losses
// and, for mean, of the counted weights, its divisor.
import type { DType } from '../../engine/dtype.js';
import type { GpuContext } from './device.js';
import type { GpuArray, Program } from './runner.js';
import { rowGeometry, rowProgram } from './reduce.js';
import { declare, entry, i32u, load, store, u32s } from './wgsl.js';

const WG = 64;

export interface NllSpec { c: number; d: number; ignore?: number }

/** Per-sample losses (and the weights counted, when `weights`) of x [N, C, D] at int32 targets [N·D].
 *  Losses are `lossDtype`, the weights f32. */
export function nllSamples(x: GpuArray, target: GpuArray, weight: GpuArray | undefined, s: NllSpec, lossDtype: DType, weights: boolean): Program {
  const total = target.size, ig = s.ignore !== undefined;
  const uniforms = [u32s('total', total), u32s('c', s.c), u32s('d', s.d), i32u('ignore', ig ? s.ignore! : 0)];
  const inputs: [string, DType][] = [['x', x.dtype], ['tgt', 'int32'], ...(weight ? [['weight', weight.dtype]] as [string, DType][] : [])];
  const outputs: [string, DType][] = [['loss', lossDtype], ...(weights ? [['wsum', 'float32']] as [string, DType][] : [])];
  return {
    name: 'NLL', key: `loss.nll|${x.dtype}|${weight?.dtype ?? '-'}|${lossDtype}|${weights}|${ig}`,
    shader: () => [
      declare({ inputs, outputs, uniforms }),
      entry(WG, 'u_total()', `  let t = tgt[gi];
  var l = 0.0; var w = 0.0;
  if (${ig ? 't != u_ignore()' : 'true'}) {
    w = ${weight ? load(weight.dtype, 'weight[u32(t)]') : '1.0'};
    let n = gi / u_d();
    l = -${load(x.dtype, 'x[(n * u_c() + u32(t)) * u_d() + gi % u_d()]')} * w;
  }
  loss[gi] = ${store(lossDtype, 'l')};
  ${weights ? 'wsum[gi] = w;' : ''}`),
    ].join('\n'),
    inputs: [x, target, ...(weight ? [weight] : [])],
    outputs: [{ dtype: lossDtype, shape: target.shape }, ...(weights ? [{ dtype: 'float32' as DType, shape: target.shape }] : [])],
    uniforms, workgroups: Math.ceil(total / WG),
  };
}

/** The sum of f32 `loss`, divided by the sum of f32 `wsum` when given (a weighted mean), as a scalar of `d`. */
export function nllReduce(ctx: GpuContext, loss: GpuArray, wsum: GpuArray | undefined, d: DType): Program {
  const sum = (name: string, map: string) => ({ name, type: 'f32' as const, init: '0.0', map, comb: (a: string, b: string) => `${a} + ${b}` });
  return rowProgram(ctx, {
    name: 'NLL_reduce', key: wsum ? 'mean' : 'sum', inputs: wsum ? [loss, wsum] : [loss],
    outputs: [{ name: 'out', dtype: d, shape: [] }], geom: rowGeometry([loss.size], [0]),
    passes: wsum ? [sum('l', 'v'), sum('w', 'in1[b + at(j)]')] : [sum('l', 'v')],
    once: `  out[row] = ${store(d, wsum ? 'l / w' : 'l')};`,
  });
}
