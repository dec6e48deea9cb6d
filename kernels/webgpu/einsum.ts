// Strided sum: the generic half of Einsum. Each output element reads one operand through arbitrary strides
// (a diagonal is two dims' strides added, a transpose is permuted strides) and sums it over a second set of
// strided dims. It covers what a batched matrix product cannot: labels summed away within one operand,
// diagonals, and the final arrangement of the result. Floats accumulate in f32; 32-bit ints wrap.
import type { DType } from '../../engine/dtype.js';
import type { GpuArray, Program } from './runner.js';
import { computeType, declare, entry, load, store, u32s } from './wgsl.js';

const WG = 64;

export interface StridedSum {
  /** Output dims and the operand's element stride along each. */
  outShape: readonly number[];
  outStrides: readonly number[];
  /** Summed dims and the operand's element stride along each (empty: a strided copy). */
  sumShape: readonly number[];
  sumStrides: readonly number[];
}

/** fn `name`(i) -> the offset of flat index i over `shape` through `strides` (uniform names). */
function walk(name: string, rank: number, shape: string, strides: string): string {
  return `fn ${name}(i: u32) -> u32 {
  var r = i; var off = 0u;
  for (var d = ${rank - 1}i; d >= 0; d--) { let n = u_${shape}(u32(d)); off += (r % n) * u_${strides}(u32(d)); r /= n; }
  return off;
}`;
}

export function stridedSum(x: GpuArray, s: StridedSum, outDtype: DType = x.dtype): Program {
  const total = s.outShape.reduce((a, b) => a * b, 1), count = s.sumShape.reduce((a, b) => a * b, 1), t = computeType(x.dtype);
  const uniforms = [u32s('total', total), u32s('count', count), u32s('oshape', s.outShape), u32s('ostr', s.outStrides),
    u32s('sshape', s.sumShape), u32s('sstr', s.sumStrides)];
  const orank = s.outShape.length, srank = s.sumShape.length;
  return {
    name: 'Einsum(sum)', key: `einsum.sum|${x.dtype}|${outDtype}|${orank}|${srank}`,
    shader: () => [
      declare({ inputs: [['x', x.dtype]], outputs: [['out', outDtype]], uniforms }),
      walk('outOff', orank, 'oshape', 'ostr'), walk('sumOff', srank, 'sshape', 'sstr'),
      entry(WG, 'u_total()', `  let base = outOff(gi);
  var acc = ${t}(0);
  for (var j = 0u; j < u_count(); j++) { acc += ${load(x.dtype, 'x[base + sumOff(j)]')}; }
  out[gi] = ${store(outDtype, 'acc')};`),
    ].join('\n'),
    inputs: [x], outputs: [{ dtype: outDtype, shape: s.outShape }], uniforms, workgroups: Math.ceil(total / WG),
  };
}
