// Epilogue fusion (level 'all'): what follows a Conv, Gemm or MatMul elementwise moves into the product
// node, applied in place on its output instead of in a node of its own with a tensor of its own.
//   Conv + Add(Z)           -> FusedConv(X, W, B, Z)    (a residual: any addend; in place when it fits)
//   product + activation    -> Fused* with `activation`  (Relu, LeakyRelu, Clip, Sigmoid, Tanh,
//                              HardSigmoid, HardSwish, Elu, Gelu, and Sigmoid + Mul as SiLU)
// A product with a post_affine (post-affine.ts) takes neither: both would have to come before the affine.
import type { Node } from '../graph.js';
import { floatMatMul, isMatMul } from './transpose.js';
import { attr, INTERNAL, isFloatType, otherInput, plainBinary, type View } from './view.js';

export function fuseConvResidual(v: View): boolean {
  for (const n of v.nodes) {
    const isConv = (n.opType === 'Conv' && n.domain === '') || (n.opType === 'FusedConv' && n.domain === INTERNAL && !n.inputs[3]);
    if (!isConv || v.touched(n) || n.attrs.has('activation') || n.attrs.has('post_affine') || !isFloatType(v.dtype(n.inputs[1]))) continue;
    const add = v.sole(n.outputs[0]);
    if (!plainBinary(add, 'Add')) continue;
    const inputs = [n.inputs[0], n.inputs[1], n.inputs[2] ?? '', otherInput(add, n.outputs[0])];
    v.replace([n, add], [{ ...n, opType: 'FusedConv', domain: INTERNAL, inputs, outputs: add.outputs }]);
  }
  return v.commit();
}

/** The fused op a product node becomes, when it is a float product with no activation yet. */
function fusedKind(v: View, n: Node): string | undefined {
  if (v.touched(n) || n.attrs.has('activation') || n.attrs.has('post_affine')) return undefined;
  if (n.domain === '' && n.opType === 'Conv') return isFloatType(v.dtype(n.inputs[1])) ? 'FusedConv' : undefined;
  if (n.domain === '' && n.opType === 'Gemm') return isFloatType(v.dtype(n.inputs[0]) ?? v.dtype(n.inputs[1])) ? 'FusedGemm' : undefined;
  if (isMatMul(n)) return floatMatMul(v, n) ? 'FusedMatMul' : undefined;
  return n.domain === INTERNAL && (n.opType === 'FusedConv' || n.opType === 'FusedGemm') ? n.opType : undefined;
}

export function fuseActivation(v: View): boolean {
  for (const n of v.nodes) {
    const kind = fusedKind(v, n), act = kind && activationAfter(v, n.outputs[0]);
    if (!act) continue;
    const attrs = new Map([...n.attrs, attr('activation', 'string', act.name), attr('activation_params', 'floats', act.params)]);
    v.replace([n, ...act.nodes], [{ ...n, opType: kind, domain: INTERNAL, outputs: [act.output], attrs }]);
  }
  return v.commit();
}

interface Activation { name: string; params: number[]; nodes: Node[]; output: string }

const num = (n: Node, name: string, def: number) => { const a = n.attrs.get(name); return a ? Number(a.value) : def; };

/** The activation applied to `y` by its only reader(s), with its parameters. */
function activationAfter(v: View, y: string): Activation | undefined {
  const silu = siluAfter(v, y);
  if (silu) return silu;
  const n = v.sole(y);
  if (!n || n.inputs[0] !== y || !n.outputs[0] || !(n.domain === '' || (n.domain === INTERNAL && (n.opType === 'Gelu' || n.opType === 'HardSwish')))) return undefined;
  const done = (name: string, params: number[] = []): Activation => ({ name, params, nodes: [n], output: n.outputs[0] });
  switch (n.opType) {
    case 'Relu': case 'Sigmoid': case 'Tanh': case 'HardSwish': return done(n.opType);
    case 'LeakyRelu': return done('LeakyRelu', [num(n, 'alpha', 0.01)]);
    case 'Elu': return done('Elu', [num(n, 'alpha', 1)]);
    case 'HardSigmoid': return done('HardSigmoid', [num(n, 'alpha', 0.2), num(n, 'beta', 0.5)]);
    case 'Gelu': {
      const mode = v.resolve(n)?.attrs;
      return mode === 'none' || mode === 'tanh' ? done(mode === 'tanh' ? 'GeluTanh' : 'Gelu') : undefined;
    }
    case 'Clip': {
      const r = v.resolve(n);
      if (!r) return undefined;
      if (r.opset < 11) { const { lo, hi } = r.attrs as { lo: number; hi: number }; return done('Clip', [lo, hi]); }
      // Bounds must be constants; an omitted one is unbounded.
      const bound = (i: number, none: number) => (n.inputs[i] ? v.scalar(n.inputs[i]) : none);
      const lo = bound(1, -Infinity), hi = bound(2, Infinity);
      return lo === undefined || hi === undefined ? undefined : done('Clip', [lo, hi]);
    }
    default: return undefined;
  }
}

/** y * Sigmoid(y): y read by exactly that Sigmoid and that Mul. */
function siluAfter(v: View, y: string): Activation | undefined {
  const readers = v.consumers.get(y);
  if (v.pinned.has(y) || readers?.length !== 2) return undefined;
  const s = readers.find((r) => r.opType === 'Sigmoid' && r.domain === ''), m = readers.find((r) => r !== s);
  if (!s || !plainBinary(m, 'Mul') || v.touched(s) || v.touched(m) || v.sole(s.outputs[0]) !== m) return undefined;
  if (otherInput(m, y) !== s.outputs[0] || m.inputs[0] === m.inputs[1]) return undefined;
  return { name: 'Silu', params: [], nodes: [s, m], output: m.outputs[0] };
}
