// Folds per-output-channel affine maps that follow a Conv or ConvTranspose into its weights and bias: an
// inference-mode BatchNormalization with constant parameters (y = a*x + b per channel), a Mul or Div by a
// constant per channel, an Add or Sub of one. The weights and bias must be float32/float64 constants; new
// weights are new constants (the originals may have other readers).
import type { Node } from '../graph.js';
import { NdArray } from '../tensor.js';
import { isFloatType, plainBinary, type View } from './view.js';

type Affine = { scale?: Float64Array; shift?: Float64Array };

export function foldConvAffine(v: View): boolean {
  for (const conv of v.nodes) {
    const transposed = conv.opType === 'ConvTranspose';
    if ((conv.opType !== 'Conv' && !transposed) || conv.domain !== '' || v.touched(conv)) continue;
    const w = v.constant(conv.inputs[1]), b = conv.inputs[2] ? v.constant(conv.inputs[2]) : undefined;
    if (!w || !isFloatType(w.dtype) || w.shape.length < 3 || (conv.inputs[2] && b?.dtype !== w.dtype)) continue;
    const group = Number(conv.attrs.get('group')?.value ?? 1);
    if (!Number.isInteger(group) || group < 1 || w.shape[0] % group) continue; // the op reports it
    // Output channels: Conv weights are [M, C/group, k...]; ConvTranspose weights [C, M/group, k...].
    const m = transposed ? w.shape[1] * group : w.shape[0];
    const next = v.sole(conv.outputs[0]);
    const f = next && affineOf(v, next, conv.outputs[0], w, m);
    if (!f) continue;
    const kk = w.size / (w.shape[0] * w.shape[1]), wd = w.data as Float32Array, bd = b?.data as Float32Array | undefined;
    const w2 = NdArray.zeros(w.dtype, w.shape), b2 = NdArray.zeros(w.dtype, [m]);
    const nw = w2.data as Float32Array, nb = b2.data as Float32Array;
    // Each run of kk weights (one (shape[0], shape[1]) pair) feeds one output channel.
    for (let i = 0; i < w.shape[0]; i++) {
      for (let j = 0; j < w.shape[1]; j++) {
        const o = transposed ? Math.floor(i / (w.shape[0] / group)) * w.shape[1] + j : i, s = f.scale?.[o] ?? 1;
        for (let q = (i * w.shape[1] + j) * kk, e = q + kk; q < e; q++) nw[q] = wd[q] * s;
      }
    }
    for (let o = 0; o < m; o++) nb[o] = (bd?.[o] ?? 0) * (f.scale?.[o] ?? 1) + (f.shift?.[o] ?? 0);
    const inputs = [conv.inputs[0], v.addConstant(conv.inputs[1], w2), v.addConstant(conv.inputs[2] || `${conv.name}/B`, b2)];
    v.replace([conv, next], [{ ...conv, inputs, outputs: [next.outputs[0]] }]);
  }
  return v.commit();
}

/** The per-channel map `next` applies to the Conv output `y`, when it is one with constant parameters. */
function affineOf(v: View, next: Node, y: string, w: NdArray, m: number): Affine | undefined {
  if (next.domain !== '' || next.outputs.length < 1 || next.outputs.slice(1).some(Boolean)) return undefined;
  if (next.opType === 'BatchNormalization') {
    const at = v.resolve(next)?.attrs as { epsilon: number; training: boolean } | undefined;
    const [x, ...params] = next.inputs, p = params.map((n) => perChannel(v.constant(n), m, 1, w));
    // The op itself insists on exactly m values per parameter.
    if (!at || at.training || x !== y || p.length !== 4 || params.some((n) => v.constant(n)?.size !== m) || p.some((q) => !q)) return undefined;
    const [scale, bias, mean, variance] = p as Float64Array[];
    const a = scale.map((s, i) => s / Math.sqrt(variance[i] + at.epsilon));
    return { scale: a, shift: bias.map((bb, i) => bb - mean[i] * a[i]) };
  }
  if (!plainBinary(next, next.opType)) return undefined;
  const [l, r] = next.inputs, other = l === y ? r : l, first = l === y;
  const c = perChannel(v.constant(other), m, w.shape.length, w);
  if (!c) return undefined;
  switch (next.opType) {
    case 'Add': return { shift: c };
    case 'Sub': return first ? { shift: c.map((x) => -x) } : undefined;
    case 'Mul': return { scale: c, shift: new Float64Array(m) };
    case 'Div': return first && c.every((x) => x !== 0) ? { scale: c.map((x) => 1 / x), shift: new Float64Array(m) } : undefined;
    default: return undefined;
  }
}

/**
 * A constant's m per-channel values when it broadcasts against an N x M x spatial tensor of rank
 * `rank` along the channel axis only (one value broadcast to all channels counts too); BatchNorm's
 * parameters (rank 1) are vectors of m.
 */
function perChannel(c: NdArray | undefined, m: number, rank: number, w: NdArray): Float64Array | undefined {
  if (!c || c.dtype !== w.dtype || c.shape.length > rank) return undefined;
  const lead = rank === 1 ? 0 : rank - c.shape.length;
  const ok = c.shape.every((d, i) => d === 1 || (i + lead === (rank === 1 ? 0 : 1) && d === m));
  if (!ok || (c.size !== 1 && c.size !== m)) return undefined;
  return Float64Array.from({ length: m }, (_, i) => Number(c.data[c.size === 1 ? 0 : i]));
}
