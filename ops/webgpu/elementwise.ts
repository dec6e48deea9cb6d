// GPU lowerings of elementwise ops: each is a WGSL expression over v0..vN in compute types (wgsl.ts).
import type { DType } from '../../engine/dtype.js';
import { broadcastShapes } from '../../kernels/cpu/broadcast.js';
import { elementwise } from '../../kernels/webgpu/elementwise.js';
import type { GpuArray } from '../../kernels/webgpu/runner.js';
import { Attrs, fail, gpuAt, registerGpu, type GpuCtx, type GpuOpDef } from '../registry.js';

const FLOATS = new Set<DType | undefined>(['float32', 'float16']);
const NUMERIC = new Set<DType | undefined>(['float32', 'float16', 'int32', 'uint32']);
const onlyFloat = (d: (DType | undefined)[]) => (d.some((x) => x && !FLOATS.has(x)) ? `dtype ${d.find((x) => x && !FLOATS.has(x))} not supported by this GPU kernel` : undefined);
const onlyNumeric = (d: (DType | undefined)[]) => (d.some((x) => x && !NUMERIC.has(x)) ? `dtype ${d.find((x) => x && !NUMERIC.has(x))} not supported by this GPU kernel` : undefined);

/** WGSL helpers shared by several expressions. */
const HELPERS = `
fn erf_(x: f32) -> f32 {
  // Abramowitz-Stegun 7.1.26 is too coarse for 1e-4; this is a rational fit with |err| < 1.2e-7.
  let z = abs(x); let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, x >= 0.0);
}
fn sigmoid_(x: f32) -> f32 { return select(exp(x) / (1.0 + exp(x)), 1.0 / (1.0 + exp(-x)), x >= 0.0); }
// Builtin tanh can overflow to NaN for large |x| and cancels badly near 0 on some drivers.
fn tanh_(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.1) { let x2 = x * x; return x * (1.0 - x2 * (1.0 / 3.0 - x2 * (2.0 / 15.0))); }
  let e = exp(-2.0 * min(a, 20.0));
  return sign(x) * (1.0 - e) / (1.0 + e);
}
// log(1 + e) loses all precision for small e in f32: use its series there.
fn log1p_(e: f32) -> f32 { return select(log(1.0 + e), e * (1.0 - e * (0.5 - e / 3.0)), e < 1e-3); }
fn softplus_(x: f32) -> f32 { return max(x, 0.0) + log1p_(exp(-abs(x))); }
fn nan_() -> f32 { var bits = 0x7fc00000u; return bitcast<f32>(bits); } // a var: constants may not be NaN
fn isnan_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn isinf_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u; }
fn pow_(x: f32, y: f32) -> f32 {
  // WGSL pow is undefined for x < 0: use |x|^y with the sign an integer exponent gives.
  if (y == 0.0) { return 1.0; }
  let m = pow(abs(x), y);
  if (x < 0.0) { if (fract(y) != 0.0) { return nan_(); } return select(m, -m, fract(y * 0.5) != 0.0); }
  return m;
}
fn fmod_(x: f32, y: f32) -> f32 { return x - y * trunc(x / y); }
fn pymod_(x: f32, y: f32) -> f32 { let r = x - y * floor(x / y); return r; }
fn imod_(x: i32, y: i32) -> i32 { let r = x % y; return select(r, r + y, r != 0 && ((r < 0) != (y < 0))); }
`;

type Expr = string | ((a: Attrs, ctx: GpuCtx) => { expr: string; params?: Record<string, number> } | string);

/** One-input float op. */
function unary(op: string, expr: Expr, since = 1, outBool = false): GpuOpDef {
  return {
    op, since, reject: onlyFloat,
    run: (ins, _a, ctx) => {
      const x = gpuAt(ins, 0, ctx), e = typeof expr === 'string' ? expr : expr(new Attrs(ctx.node), ctx), s = typeof e === 'string' ? { expr: e } : e;
      return ctx.gpu.run(elementwise({ name: op, ...s, inputs: [x], outShape: x.shape, outDtype: outBool ? 'bool' : x.dtype, helpers: HELPERS }));
    },
  };
}

/** N-input op with broadcasting; `out` picks the output dtype from the first input's. */
function nary(op: string, expr: string | ((n: number, d: DType) => string), opts: { out?: (d: DType) => DType; reject?: GpuOpDef['reject']; since?: number } = {}): GpuOpDef {
  return {
    op, since: opts.since, reject: opts.reject ?? onlyNumeric,
    run: (ins, _a, ctx) => {
      const xs = ins.filter((v): v is GpuArray => v !== undefined).map((_, i) => gpuAt(ins, i, ctx));
      if (xs.some((x) => x.dtype !== xs[0].dtype) && op !== 'Where') fail(ctx, `inputs must share a dtype, got ${xs.map((x) => x.dtype).join(', ')}`);
      const shape = broadcastShapes(...xs.map((x) => x.shape)) ?? fail(ctx, `shapes ${xs.map((x) => `[${x.shape}]`).join(' ')} do not broadcast`);
      const dtype = xs[op === 'Where' ? 1 : 0].dtype;
      const e = typeof expr === 'string' ? expr : expr(xs.length, dtype);
      return ctx.gpu.run(elementwise({ name: op, expr: e, inputs: xs, outShape: shape, outDtype: opts.out?.(dtype) ?? dtype, helpers: HELPERS }));
    },
  };
}

const bool = () => 'bool' as DType;
const fold = (f: (a: string, b: string) => string) => (n: number) => Array.from({ length: n }, (_, i) => `v${i}`).reduce(f);
const onlyBool = (d: (DType | undefined)[]) => (d.some((x) => x && x !== 'bool') ? 'logical ops take bool' : undefined);
// 8/16-bit and 64-bit integers have no 32-bit GPU arithmetic that wraps like their storage.
const only32 = (types: DType[]) => (d: (DType | undefined)[]) => {
  const bad = d.find((x) => x && !types.includes(x));
  return bad ? `dtype ${bad} not supported by this GPU kernel` : undefined;
};
const INT32S: DType[] = ['int32', 'uint32'];

registerGpu(
  unary('Abs', 'abs(v0)'), unary('Neg', '-v0'), unary('Exp', 'exp(v0)'), unary('Log', 'log(v0)'), unary('Sqrt', 'sqrt(v0)'),
  unary('Reciprocal', '1.0 / v0'), unary('Floor', 'floor(v0)'), unary('Ceil', 'ceil(v0)'), unary('Round', 'round(v0)'),
  unary('Sign', 'sign(v0)'), unary('Erf', 'erf_(v0)'), unary('Sin', 'sin(v0)'), unary('Cos', 'cos(v0)'), unary('Tan', 'tan(v0)'),
  unary('Tanh', 'tanh_(v0)'), unary('Asin', 'asin(v0)'), unary('Acos', 'acos(v0)'), unary('Atan', 'atan(v0)'),
  unary('Sinh', 'sinh(v0)'), unary('Cosh', 'cosh(v0)'), unary('Asinh', 'asinh(v0)'), unary('Acosh', 'acosh(v0)'), unary('Atanh', 'atanh(v0)'),
  unary('Sigmoid', 'sigmoid_(v0)'), unary('Relu', 'max(v0, 0.0)'), unary('Softsign', 'v0 / (1.0 + abs(v0))'),
  unary('Softplus', 'softplus_(v0)'), unary('Mish', 'v0 * tanh_(softplus_(v0))'), unary('IsNaN', 'isnan_(v0)', 9, true),
  unary('LeakyRelu', (a) => ({ expr: 'select(u_alpha() * v0, v0, v0 >= 0.0)', params: { alpha: a.float('alpha', 0.01) } })),
  unary('Elu', (a) => ({ expr: 'select(u_alpha() * (exp(v0) - 1.0), v0, v0 >= 0.0)', params: { alpha: a.float('alpha', 1) } })),
  unary('Celu', (a) => ({ expr: 'select(u_alpha() * (exp(v0 / u_alpha()) - 1.0), v0, v0 > 0.0)', params: { alpha: a.float('alpha', 1) } }), 12),
  unary('ThresholdedRelu', (a) => ({ expr: 'select(0.0, v0, v0 > u_alpha())', params: { alpha: a.float('alpha', 1) } }), 10),
  unary('Selu', (a) => ({ expr: 'u_gamma() * select(u_alpha() * (exp(v0) - 1.0), v0, v0 > 0.0)', params: { alpha: a.float('alpha', 1.67326319217681884765625), gamma: a.float('gamma', 1.05070102214813232421875) } })),
  unary('HardSigmoid', (a) => ({ expr: 'clamp(u_alpha() * v0 + u_beta(), 0.0, 1.0)', params: { alpha: a.float('alpha', 0.2), beta: a.float('beta', 0.5) } })),
  unary('HardSwish', 'v0 * clamp(v0 / 6.0 + 0.5, 0.0, 1.0)', 14),
  unary('Swish', (a) => ({ expr: 'v0 * sigmoid_(u_alpha() * v0)', params: { alpha: a.float('alpha', 1) } }), 24),
  unary('Shrink', (a) => ({ expr: 'select(select(0.0, v0 - u_bias(), v0 > u_lambd()), v0 + u_bias(), v0 < -u_lambd())', params: { lambd: a.float('lambd', 0.5), bias: a.float('bias', 0) } }), 9),
  unary('Gelu', (a) => (a.string('approximate', 'none') === 'tanh'
    ? '0.5 * v0 * (1.0 + tanh_(0.7978845608028654 * (v0 + 0.044715 * v0 * v0 * v0)))' : '0.5 * v0 * (1.0 + erf_(v0 * 0.7071067811865476))'), 20),
  unary('IsInf', (a) => {
    const pos = a.int('detect_positive', 1), neg = a.int('detect_negative', 1);
    return `isinf_(v0) && ((v0 > 0.0 && ${pos ? 'true' : 'false'}) || (v0 < 0.0 && ${neg ? 'true' : 'false'}))`;
  }, 10, true),
  nary('Add', 'v0 + v1', { since: 7 }), nary('Sub', 'v0 - v1', { since: 7 }), nary('Mul', 'v0 * v1', { since: 7 }),
  // Integer division by zero gives 0, as the CPU backend's typed-array store of Infinity/NaN does.
  nary('Div', (_n, d) => (d === 'int32' ? 'select(v0 / v1, 0, v1 == 0)' : d === 'uint32' ? 'select(v0 / v1, 0u, v1 == 0u)' : 'v0 / v1'), { since: 7 }),
  nary('Pow', 'pow_(v0, v1)', { since: 7, reject: (d) => onlyFloat(d) ?? (d[0] !== d[1] ? 'mixed Pow dtypes' : undefined) }),
  nary('PRelu', 'select(v0 * v1, v0, v0 >= 0.0)', { since: 7, reject: onlyFloat }),
  nary('Max', fold((a, b) => `max(${a}, ${b})`), { since: 8 }), nary('Min', fold((a, b) => `min(${a}, ${b})`), { since: 8 }),
  nary('Sum', fold((a, b) => `${a} + ${b}`), { since: 8 }), nary('Mean', (n) => `(${fold((a, b) => `${a} + ${b}`)(n)}) / ${n}.0`, { since: 8, reject: onlyFloat }),
  nary('Equal', 'v0 == v1', { out: bool, since: 7, reject: (d) => (d.some((x) => x && !NUMERIC.has(x) && x !== 'bool') ? 'dtype not supported' : undefined) }),
  nary('Less', 'v0 < v1', { out: bool, since: 7 }), nary('Greater', 'v0 > v1', { out: bool, since: 7 }),
  nary('LessOrEqual', 'v0 <= v1', { out: bool, since: 12 }), nary('GreaterOrEqual', 'v0 >= v1', { out: bool, since: 12 }),
  nary('And', '(v0 & v1) != 0u', { out: bool, since: 7, reject: onlyBool }), nary('Or', '(v0 | v1) != 0u', { out: bool, since: 7, reject: onlyBool }),
  nary('Xor', '(v0 ^ v1) != 0u', { out: bool, since: 7, reject: onlyBool }), nary('Not', 'v0 == 0u', { out: bool, reject: onlyBool }),
  nary('BitwiseAnd', 'v0 & v1', { since: 18, reject: only32(INT32S) }), nary('BitwiseOr', 'v0 | v1', { since: 18, reject: only32(INT32S) }),
  nary('BitwiseXor', 'v0 ^ v1', { since: 18, reject: only32(INT32S) }), nary('BitwiseNot', '~v0', { since: 18, reject: only32(INT32S) }),
  nary('Where', 'select(v2, v1, v0 != 0u)', { since: 9, reject: (d) => (d[0] && d[0] !== 'bool' ? 'condition must be bool' : onlyNumeric(d.slice(1))) }),
);

// Mod: C fmod (fmod=1) or the divisor's sign (fmod=0); integer Mod keeps exact integers.
registerGpu({
  op: 'Mod', since: 10, reject: onlyNumeric,
  run: (ins, _a, ctx) => {
    const x = gpuAt(ins, 0, ctx), y = gpuAt(ins, 1, ctx), fmod = new Attrs(ctx.node).int('fmod', 0);
    const float = FLOATS.has(x.dtype);
    const expr = float ? (fmod ? 'fmod_(v0, v1)' : 'pymod_(v0, v1)') : x.dtype === 'uint32' ? 'v0 % v1' : fmod ? 'v0 % v1' : 'imod_(v0, v1)';
    const shape = broadcastShapes(x.shape, y.shape) ?? fail(ctx, `shapes [${x.shape}] and [${y.shape}] do not broadcast`);
    return ctx.gpu.run(elementwise({ name: 'Mod', expr, inputs: [x, y], outShape: shape, outDtype: x.dtype, helpers: HELPERS }));
  },
});

// BitShift: WGSL takes the shift count modulo 32; ONNX (and the CPU backend) empties the value instead.
registerGpu({
  op: 'BitShift', since: 11, reject: only32(['uint32']),
  run: (ins, a: { left: boolean }, ctx) => {
    const x = gpuAt(ins, 0, ctx), y = gpuAt(ins, 1, ctx);
    if (y.dtype !== x.dtype) fail(ctx, `input 1 has dtype ${y.dtype}, expected ${x.dtype} like input 0`);
    const shape = broadcastShapes(x.shape, y.shape) ?? fail(ctx, `shapes [${x.shape}] and [${y.shape}] do not broadcast`);
    const expr = `select(0u, v0 ${a.left ? '<<' : '>>'} v1, v1 < 32u)`;
    return ctx.gpu.run(elementwise({ name: 'BitShift', expr, inputs: [x, y], outShape: shape, outDtype: x.dtype }));
  },
});

// SwiGLU: A·sigmoid(alpha·A)·B over two same-shaped float tensors (no broadcasting, as the CPU checks).
registerGpu({
  op: 'SwiGLU', since: 28, reject: onlyFloat,
  run: (ins, alpha: number, ctx) => {
    const a = gpuAt(ins, 0, ctx), b = gpuAt(ins, 1, ctx);
    if (b.dtype !== a.dtype) fail(ctx, `input 1 (B) has dtype ${b.dtype}, expected ${a.dtype} like input 0 (A)`);
    if (b.shape.length !== a.shape.length || b.shape.some((d, i) => d !== a.shape[i])) fail(ctx, `input 1 (B), without broadcasting, should have shape [${a.shape}], got [${b.shape}]`);
    return ctx.gpu.run(elementwise({ name: 'SwiGLU', expr: 'v0 * sigmoid_(u_alpha() * v0) * v1', params: { alpha }, inputs: [a, b], outShape: a.shape, outDtype: a.dtype, helpers: HELPERS }));
  },
});
