// Elementwise programs: any expression over N broadcast inputs (v0, v1, ...) and f32 parameters (p_<name>()).
// One pipeline per (expression, dtypes, rank); shapes and strides travel as uniforms.
import type { DType } from '../../engine/dtype.js';
import type { GpuArray, Program, Uniform } from './runner.js';
import { broadcastStrides, declare, entry, load, offsetFn, store, u32s } from './wgsl.js';

const WG = 64;

export interface ElementwiseSpec {
  name: string;
  /** WGSL expression in compute types over v0..vN-1 (see wgsl.ts computeType); may call `helpers`. */
  expr: string;
  inputs: GpuArray[];
  outShape: readonly number[];
  outDtype: DType;
  /** f32 parameters, read in `expr` as u_<name>(). */
  params?: Record<string, number>;
  /** Extra WGSL functions the expression calls. */
  helpers?: string;
}

export function elementwise(s: ElementwiseSpec): Program {
  const rank = s.outShape.length, n = s.outShape.reduce((a, b) => a * b, 1);
  const params = Object.entries(s.params ?? {});
  const uniforms: Uniform[] = [
    u32s('total', n), u32s('out_shape', s.outShape),
    ...s.inputs.map((x, i) => u32s(`s${i}`, broadcastStrides(x.shape, s.outShape))),
    ...params.map(([k, v]) => ({ name: k, type: 'f32' as const, value: v })),
  ];
  return {
    name: s.name,
    key: `ew|${s.name}|${s.expr}|${s.inputs.map((x) => x.dtype).join(',')}|${s.outDtype}|${rank}|${params.map(([k]) => k)}|${s.helpers ?? ''}`,
    shader: () => [
      declare({ inputs: s.inputs.map((x, i) => [`in${i}`, x.dtype] as [string, DType]), outputs: [['out', s.outDtype]], uniforms }),
      ...s.inputs.map((_, i) => offsetFn(`off${i}`, rank, 'out_shape', `s${i}`)),
      s.helpers ?? '',
      entry(WG, 'u_total()', [
        ...s.inputs.map((x, i) => `  let v${i} = ${load(x.dtype, `in${i}[off${i}(gi)]`)};`),
        `  out[gi] = ${store(s.outDtype, s.expr)};`,
      ].join('\n')),
    ].join('\n'),
    inputs: s.inputs,
    outputs: [{ dtype: s.outDtype, shape: s.outShape }],
    uniforms,
    workgroups: Math.ceil(n / WG),
  };
}
