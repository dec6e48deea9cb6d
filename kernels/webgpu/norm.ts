// Normalisation programs. Row statistics (mean, then centred squares: two passes, as accurate as the
// CPU's) come from row programs (reduce.ts); per-element parameters are read periodically from the flat
// element index, p -> (p / div) % mod, which covers per-channel, per-group and trailing-dims layouts.
import type { DType } from '../../engine/dtype.js';
import type { GpuContext } from './device.js';
import type { GpuArray, Program, Uniform } from './runner.js';
import { rowGeometry, rowProgram, type Pass } from './reduce.js';
import { declare, entry, f32u, load, store, u32s } from './wgsl.js';

/** A parameter tensor indexed by element offset p as (p / div) % mod. */
export interface Periodic { arr: GpuArray; div: number; mod: number }

const add = (a: string, b: string) => `${a} + ${b}`;
const meanPass: Pass = { name: 'mean', type: 'f32', init: '0.0', map: 'v', comb: add, fin: (a) => `${a} / f32(n)` };
/** 1 / sqrt(variance + eps), or with `outside` 1 / (sqrt(variance) + eps) (MeanVarianceNormalization). */
const invPass = (sq: string, outside = false): Pass => ({
  name: 'inv', type: 'f32', init: '0.0', map: sq, comb: add,
  fin: (a) => (outside ? `1.0 / (sqrt(${a} / f32(n)) + u_eps())` : `1.0 / sqrt(${a} / f32(n) + u_eps())`),
});

/** WGSL reader `fn <name>(p)` for a periodic parameter bound as `in<i>`, with uniforms <name>_div/<name>_mod. */
function periodicFn(name: string, i: number, d: DType): string {
  return `fn ${name}(p: u32) -> f32 { return ${load(d, `in${i}[(p / u_${name}_div()) % u_${name}_mod()]`)}; }`;
}
const periodicUniforms = (name: string, q: Periodic): Uniform[] => [u32s(`${name}_div`, q.div), u32s(`${name}_mod`, q.mod)];

export interface StandardizeSpec {
  /** x reshaped to `shape`, normalised over `axes`. */
  x: GpuArray; shape: readonly number[]; axes: number[];
  /** false: RMS (no mean subtracted). */
  center: boolean;
  eps: number;
  /** eps added to the standard deviation rather than to the variance. */
  epsOutside?: boolean;
  scale?: Periodic; bias?: Periodic;
  outDtype: DType;
  /** Also write each row's mean and inverse standard deviation (LayerNormalization) with this dtype and shape. */
  stats?: { dtype: DType; shape: readonly number[] };
}

/** y = (x - mean) * inv_std * scale + bias over rows: Layer, Instance, Group, RMS and mean-variance normalisation. */
export function standardizeProgram(ctx: GpuContext, s: StandardizeSpec): Program {
  const params = [['sc', s.scale], ['bi', s.bias]].filter((e): e is [string, Periodic] => !!e[1]);
  const y = `(${s.center ? 'v - mean' : 'v'}) * inv${s.scale ? ' * sc(p)' : ''}${s.bias ? ' + bi(p)' : ''}`;
  const stats = s.stats;
  return rowProgram(ctx, {
    name: s.center ? 'Standardize' : 'RmsNorm', key: `${s.center}|${!!s.epsOutside}|${params.map(([n]) => n)}|${!!stats}`,
    inputs: [s.x, ...params.map(([, q]) => q.arr)],
    outputs: [{ name: 'out', dtype: s.outDtype, shape: s.x.shape },
      ...(stats ? [{ name: 'mean_out', ...stats }, { name: 'inv_out', ...stats }] : [])],
    geom: rowGeometry(s.shape, s.axes), passes: s.center ? [meanPass, invPass('(v - mean) * (v - mean)', s.epsOutside)] : [invPass('v * v', s.epsOutside)],
    uniforms: [f32u('eps', s.eps), ...params.flatMap(([n, q]) => periodicUniforms(n, q))],
    helpers: params.map(([n, q], i) => periodicFn(n, i + 1, q.arr.dtype)).join('\n'),
    once: stats ? `    mean_out[row] = ${store(stats.dtype, 'mean')}; inv_out[row] = ${store(stats.dtype, 'inv')};` : undefined,
    each: `    out[p] = ${store(s.outDtype, y)};`,
  });
}

/** x / ||x||_p (p = 1 or 2) along axis `axis` of x; zero norms give 0. */
export function lpNormProgram(ctx: GpuContext, x: GpuArray, axis: number, p: 1 | 2): Program {
  const norm: Pass = { name: 'nrm', type: 'f32', init: '0.0', map: p === 1 ? 'abs(v)' : 'v * v', comb: add, fin: p === 1 ? undefined : (a) => `sqrt(${a})` };
  return rowProgram(ctx, {
    name: 'LpNorm', key: `${p}`, inputs: [x], outputs: [{ name: 'out', dtype: x.dtype, shape: x.shape }], geom: rowGeometry(x.shape, [axis]),
    passes: [norm], each: `    out[p] = ${store(x.dtype, 'select(v / nrm, 0.0, nrm == 0.0)')};`,
  });
}

const WG = 64;

/** Inference batch normalisation: y = (x - mean[c]) * scale[c] / sqrt(var[c] + eps) + bias[c], c = (p / spatial) % channels. */
export function batchNormProgram(x: GpuArray, params: [GpuArray, GpuArray, GpuArray, GpuArray], channels: number, spatial: number, eps: number): Program {
  const uniforms = [u32s('total', x.size), u32s('spatial', spatial), u32s('chans', channels), f32u('eps', eps)];
  const names = ['scale', 'bias', 'mean', 'variance'];
  return {
    name: 'BatchNorm',
    key: `bn|${x.dtype}|${params.map((q) => q.dtype)}`,
    shader: () => [
      declare({ inputs: [['x', x.dtype], ...params.map((q, i): [string, DType] => [names[i], q.dtype])], outputs: [['out', x.dtype]], uniforms }),
      entry(WG, 'u_total()', [
        '  let c = (gi / u_spatial()) % u_chans();',
        ...params.map((q, i) => `  let ${names[i]}_c = ${load(q.dtype, `${names[i]}[c]`)};`),
        `  out[gi] = ${store(x.dtype, `(${load(x.dtype, 'x[gi]')} - mean_c) * (scale_c / sqrt(variance_c + u_eps())) + bias_c`)};`,
      ].join('\n')),
    ].join('\n'),
    inputs: [x, ...params],
    outputs: [{ dtype: x.dtype, shape: x.shape }],
    uniforms,
    workgroups: Math.ceil(x.size / WG),
  };
}

/** LRN: y = x / (bias + alpha / size * sum of x^2 over channels [c - (size-1)/2 floor, c + (size-1)/2 ceil]) ^ beta. */
export function lrnProgram(x: GpuArray, channels: number, spatial: number, size: number, alpha: number, beta: number, bias: number): Program {
  const uniforms = [
    u32s('total', x.size), u32s('spatial', spatial), u32s('chans', channels), u32s('before', Math.floor((size - 1) / 2)), u32s('after', Math.ceil((size - 1) / 2)),
    f32u('scale', alpha / size), f32u('beta', beta), f32u('bias', bias),
  ];
  return {
    name: 'LRN',
    key: `lrn|${x.dtype}`,
    shader: () => [
      declare({ inputs: [['x', x.dtype]], outputs: [['out', x.dtype]], uniforms }),
      entry(WG, 'u_total()', [
        '  let c = (gi / u_spatial()) % u_chans(); let c0 = gi - c * u_spatial();',
        '  var sq = 0.0;',
        `  for (var k = max(c, u_before()) - u_before(); k <= min(u_chans() - 1u, c + u_after()); k++) { let v = ${load(x.dtype, 'x[c0 + k * u_spatial()]')}; sq += v * v; }`,
        `  out[gi] = ${store(x.dtype, `${load(x.dtype, 'x[gi]')} / pow(u_bias() + u_scale() * sq, u_beta())`)};`,
      ].join('\n')),
    ].join('\n'),
    inputs: [x],
    outputs: [{ dtype: x.dtype, shape: x.shape }],
    uniforms,
    workgroups: Math.ceil(x.size / WG),
  };
}
