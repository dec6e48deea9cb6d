// Softmax, LogSoftmax and Hardmax along the rows of a row program (see reduce.ts): a max pass, then the
// sum of exponentials shifted by it (so exp cannot overflow), then one write per element.
import type { GpuContext } from './device.js';
import type { GpuArray, Program } from './runner.js';
import { argPasses, rowGeometry, rowProgram, type Pass } from './reduce.js';
import { store } from './wgsl.js';

export type SoftmaxKind = 'softmax' | 'logsoftmax' | 'hardmax';

const rowMax: Pass = { name: 'm', type: 'f32', init: 'inf_(true)', map: 'v', comb: (a, b) => `select(${a}, ${b}, ${b} > ${a} || isnan_(${b}))` };
const expSum = (fin?: Pass['fin']): Pass => ({ name: 's', type: 'f32', init: '0.0', map: 'exp(v - m)', comb: (a, b) => `${a} + ${b}`, fin });

/** `kind` over the rows of `x` viewed as `shape` (a reshape of x) along the axes `axes`. */
export function softmaxProgram(ctx: GpuContext, x: GpuArray, shape: readonly number[], axes: number[], kind: SoftmaxKind): Program {
  const d = x.dtype;
  const [passes, value]: [Pass[], string] = kind === 'softmax' ? [[rowMax, expSum()], 'exp(v - m) / s']
    : kind === 'logsoftmax' ? [[rowMax, expSum((a) => `m + log(${a})`)], 'v - s']
      : [argPasses('f32', true, false), 'select(0.0, 1.0, i32(j) == idx)'];
  return rowProgram(ctx, {
    name: kind, key: kind, inputs: [x], outputs: [{ name: 'out', dtype: d, shape: x.shape }], geom: rowGeometry(shape, axes), passes,
    each: `    out[p] = ${store(d, value)};`,
  });
}
