// Transposes. A permutation is first reduced: size-1 axes dropped and axes that stay neighbours merged,
// so NCHW->NHWC becomes a batched 2-D swap. A batched swap of the last two axes has a shared-memory tiled
// kernel (both global reads and writes coalesced); every other permutation is a strided gather.
import type { DType } from '../../engine/dtype.js';
import { stridesOf } from '../cpu/broadcast.js';
import { carrier, stridedCopy } from './copy.js';
import type { GpuArray, Program } from './runner.js';
import { declare, storageType, u32s } from './wgsl.js';

const TILE = 16;

export type TransposeVariant = 'tiled' | 'gather';

/** Input shape and permutation with size-1 axes dropped and runs of consecutive axes merged. */
export function reducePerm(shape: readonly number[], perm: readonly number[]): { shape: number[]; perm: number[] } {
  const kept = shape.map((_, i) => i).filter((i) => shape[i] !== 1);
  const order = perm.filter((p) => shape[p] !== 1).map((p) => kept.indexOf(p));
  const runs: number[][] = [];
  for (const a of order) {
    const last = runs[runs.length - 1];
    if (last && last[last.length - 1] + 1 === a) last.push(a); else runs.push([a]);
  }
  const byInput = [...runs].sort((a, b) => a[0] - b[0]);
  return {
    shape: byInput.map((run) => run.reduce((p, a) => p * shape[kept[a]], 1)),
    perm: runs.map((run) => byInput.indexOf(run)),
  };
}

/** [batch, rows, cols] when the reduced permutation only swaps the last two axes. */
export function batchedSwap(r: { shape: number[]; perm: number[] }): [number, number, number] | undefined {
  const n = r.perm.length;
  if (n < 2 || r.perm[n - 1] !== n - 2 || r.perm[n - 2] !== n - 1 || r.perm.slice(0, n - 2).some((p, i) => p !== i)) return undefined;
  return [r.shape.slice(0, n - 2).reduce((a, b) => a * b, 1), r.shape[n - 2], r.shape[n - 1]];
}

/** The tiled kernel pays for its barrier with coalesced accesses on GPUs; a CPU rasteriser (lavapipe) has
 *  no coalescing to win and pays dearly for barriers. Planes smaller than a tile gain nothing either way. */
export const pickTranspose = (software: boolean, rows: number, cols: number): TransposeVariant =>
  (!software && rows >= TILE && cols >= TILE ? 'tiled' : 'gather');

/** x transposed by `perm`; `variant` overrides the rule (tests exercise both kernels on any adapter). */
export function transpose(x: GpuArray, perm: readonly number[], software: boolean, variant?: TransposeVariant): Program {
  const outShape = perm.map((p) => x.shape[p]);
  const swap = batchedSwap(reducePerm(x.shape, perm));
  if (swap && (variant ?? pickTranspose(software, swap[1], swap[2])) === 'tiled') return tiledSwap(x, outShape, ...swap);
  const st = stridesOf(x.shape);
  return stridedCopy('Transpose', x, outShape, perm.map((p) => st[p]));
}

/** One workgroup per 16x16 tile of one batch plane: reads rows of the tile, writes rows of its transpose.
 *  The tile row is padded to 17 so the column reads hit distinct shared-memory banks. */
function tiledSwap(x: GpuArray, outShape: readonly number[], batch: number, rows: number, cols: number): Program {
  const c: DType = carrier(x.dtype), tr = Math.ceil(rows / TILE), tc = Math.ceil(cols / TILE);
  const uniforms = [u32s('tiles', batch * tr * tc), u32s('tr', tr), u32s('tc', tc), u32s('rows', rows), u32s('cols', cols)];
  return {
    name: 'Transpose(tiled)', key: `transpose.tiled|${c}`,
    shader: () => `${declare({ inputs: [['x', c]], outputs: [['out', c]], uniforms })}
var<workgroup> tile: array<array<${storageType(c)}, ${TILE + 1}>, ${TILE}>;
@compute @workgroup_size(${TILE}, ${TILE})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let w = wg.x + wg.y * nwg.x;
  if (w >= u_tiles()) { return; } // uniform per workgroup: the barrier below stays in uniform control flow
  let rows = u_rows(); let cols = u_cols();
  let t = w / u_tc(); let base = (t / u_tr()) * rows * cols;
  let r0 = (t % u_tr()) * ${TILE}u; let c0 = (w % u_tc()) * ${TILE}u;
  if (r0 + l.y < rows && c0 + l.x < cols) { tile[l.y][l.x] = x[base + (r0 + l.y) * cols + c0 + l.x]; }
  workgroupBarrier();
  if (c0 + l.y < cols && r0 + l.x < rows) { out[base + (c0 + l.y) * rows + r0 + l.x] = tile[l.x][l.y]; }
}`,
    inputs: [x], outputs: [{ dtype: x.dtype, shape: outShape }], uniforms, workgroups: batch * tr * tc,
  };
}
