// Activation epilogues as WGSL: `fn act(v: f32) -> f32`, applied in registers to each accumulated value
// before it is stored (GEMM, convolution, layer kernels). Names and parameters are those of the fused ops'
// `activation` / `activation_params` attributes (ops/fused.ts). Parameters travel as the uniforms act_a and
// act_b, so the pipeline depends on the activation's kind only, never on its alpha or bounds. A post-activation
// affine (a scalar Mul/Add folded into the product, PostAffine) joins act() with its scale and shift as uniforms
// too: the pipeline depends only on whether there is one.
import { elementwise } from './elementwise.js';
import type { GpuArray, Program, Uniform } from './runner.js';
import { f32u } from './wgsl.js';

export const ACTIVATIONS = ['Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'Tanh', 'HardSigmoid', 'HardSwish', 'Elu', 'Gelu', 'GeluTanh', 'Silu'] as const;
export type ActivationKind = (typeof ACTIVATIONS)[number];

/** An activation and its parameters in the ONNX op's attribute order (LeakyRelu/Elu: alpha; Clip: min, max;
 *  HardSigmoid: alpha, beta). Omitted parameters take the ONNX defaults. */
export interface Activation { kind: ActivationKind; params?: readonly number[] }

export const ACTIVATION_DEFAULTS: Record<ActivationKind, [number, number]> = {
  Relu: [0, 0], LeakyRelu: [0.01, 0], Clip: [-Infinity, Infinity], Sigmoid: [0, 0], Tanh: [0, 0], HardSigmoid: [0.2, 0.5],
  HardSwish: [0, 0], Elu: [1, 0], Gelu: [0, 0], GeluTanh: [0, 0], Silu: [0, 0],
};

/**
 * y = act(v) * scale + shift: the fused ops' `post_affine` attribute (ops/fused.ts). A step a pass did not
 * fold is its identity (scale 1, shift -0: v + -0 is v for every v, signed zeros included).
 */
export interface PostAffine { scale: number; shift: number }

export const isActivation = (name: string): name is ActivationKind => (ACTIVATIONS as readonly string[]).includes(name);

// Numerically careful forms: exp of a non-positive argument only (no overflow to inf/inf = NaN), and
// tanh through exp(-2|x|) with a series near 0, where 1 - e cancels.
const SIGMOID = 'fn sigmoid_(v: f32) -> f32 { let e = exp(-abs(v)); return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0); }';
const TANH = `fn tanh_(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.1) { let x2 = x * x; return x * (1.0 - x2 * (1.0 / 3.0 - x2 * (2.0 / 15.0))); }
  let e = exp(-2.0 * min(a, 20.0));
  return sign(x) * (1.0 - e) / (1.0 + e);
}`;
// erf from the erfc Chebyshev fit (|err| < 1.2e-7): tighter than Abramowitz-Stegun at f32.
const ERF = `fn erf_(x: f32) -> f32 {
  let z = abs(x); let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, x >= 0.0);
}`;

/** The body of act(v) per kind; `a` and `b` are the two parameters. */
const BODY: Record<ActivationKind, string> = {
  Relu: 'return max(v, 0.0);',
  LeakyRelu: 'return select(v, a * v, v < 0.0);',
  Clip: 'return min(max(v, a), b);',
  Sigmoid: 'return sigmoid_(v);',
  Tanh: 'return tanh_(v);',
  HardSigmoid: 'return clamp(a * v + b, 0.0, 1.0);',
  HardSwish: 'return v * clamp(v / 6.0 + 0.5, 0.0, 1.0);',
  // exp(v) - 1 near 0 loses relative precision: the series takes over below |v| = 1e-3.
  Elu: 'if (v >= 0.0) { return v; } let m = select(exp(v) - 1.0, v * (1.0 + v * (0.5 + v / 6.0)), v > -1e-3); return a * m;',
  Gelu: 'return 0.5 * v * (1.0 + erf_(v * 0.7071067811865476));',
  GeluTanh: 'return 0.5 * v * (1.0 + tanh_(0.7978845608028654 * (v + 0.044715 * v * v * v)));',
  Silu: 'return v * sigmoid_(v);',
};

/** WGSL defining `fn act(v: f32) -> f32` (the identity without an activation), then the affine if any.
 *  Needs activationUniforms. */
export function activationWgsl(act: Activation | undefined, affine?: PostAffine): string {
  const name = affine ? 'act_only' : 'act';
  const fn = !act ? `fn ${name}(v: f32) -> f32 { return v; }` : [
    ...[SIGMOID, TANH, ERF].filter((h) => BODY[act.kind].includes(h.slice(3, h.indexOf('(')))),
    `fn ${name}(v: f32) -> f32 {\n  let a = u_act_a(); let b = u_act_b();\n  ${BODY[act.kind]}\n}`,
  ].join('\n');
  // Multiply, then add: the two roundings of the Mul and Add nodes the affine replaced.
  return affine ? `${fn}\nfn act(v: f32) -> f32 { let p = act_only(v) * u_aff_s(); return p + u_aff_t(); }` : fn;
}

/** The activation's parameters and the affine's scale and shift as uniforms (none without either). */
export function activationUniforms(act: Activation | undefined, affine?: PostAffine): Uniform[] {
  const params = act ? ACTIVATION_DEFAULTS[act.kind].map((d, i) => act.params?.[i] ?? d) : [];
  return [
    ...(act ? [f32u('act_a', params[0]), f32u('act_b', params[1])] : []),
    ...(affine ? [f32u('aff_s', affine.scale), f32u('aff_t', affine.shift)] : []),
  ];
}

/** The part of a pipeline key the activation's code depends on. */
export const activationKey = (act: Activation | undefined, affine?: PostAffine) => `${act?.kind ?? '-'}${affine ? '+affine' : ''}`;

/** act(v0 + v1), then the affine, over broadcast inputs: the epilogue of a product whose addend grows its shape. */
export function elementwiseEpilogue(inputs: [GpuArray, GpuArray], outShape: readonly number[], act: Activation | undefined, affine?: PostAffine): Program {
  const params = Object.fromEntries(activationUniforms(act, affine).map((u) => [u.name, u.value as number]));
  const name = `AddThen${act?.kind ?? ''}${affine ? 'Affine' : ''}`;
  return elementwise({ name, expr: 'act(v0 + v1)', inputs, outShape, outDtype: inputs[0].dtype, params, helpers: activationWgsl(act, affine) });
}
