// GPU lowerings of elementwise ops: each is a WGSL expression over v0..vN in compute types (wgsl.ts).
// Integers narrower than 32 bits compute in i32/u32 lanes and are wrapped to their width by the store
// (wgsl.ts store), which is what the CPU backend's typed-array stores do to its float64 results.
import type { DType } from '../../engine/dtype.js';
import { broadcastShapes } from '../../kernels/cpu/broadcast.js';
import { elementwise } from '../../kernels/webgpu/elementwise.js';
import type { GpuArray } from '../../kernels/webgpu/runner.js';
import { computeType } from '../../kernels/webgpu/wgsl.js';
import { Attrs, fail, gpuAt, registerGpu, type GpuCtx, type GpuOpDef } from '../registry.js';

type Ds = (DType | undefined)[];
const FLOATS = new Set<DType | undefined>(['float32', 'float16']);
/** The integer dtypes the CPU's numeric ops take that the GPU holds (sub-byte ones are not numeric there). */
const SIGNED_INTS: DType[] = ['int8', 'int16', 'int32'];
const INTS: DType[] = [...SIGNED_INTS, 'uint8', 'uint16', 'uint32'];
const NUMERIC = new Set<DType | undefined>(['float32', 'float16', ...INTS]);
const only = (types: ReadonlySet<DType | undefined>) => (d: Ds) => {
  const bad = d.find((x) => x && !types.has(x));
  return bad ? `dtype ${bad} not supported by this GPU kernel` : undefined;
};
const onlyFloat = only(FLOATS), onlyNumeric = only(NUMERIC);
const isInt = (d: DType) => computeType(d) !== 'f32';
/** The literal 0 of dtype d's compute type. */
const zero = (d: DType) => ({ f32: '0.0', i32: '0', u32: '0u' })[computeType(d)];

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
// x^e on wrapping 32-bit integers by squaring; a negative exponent is 1/x^|e| truncated toward 0 (0 for
// x = 0, whose +-Infinity the CPU's store turns into 0).
fn ipow_(x: i32, e: u32) -> i32 {
  var r = 1; var b = x; var k = e;
  loop { if (k == 0u) { break; } if ((k & 1u) != 0u) { r *= b; } b *= b; k >>= 1u; }
  return r;
}
fn ipowi_(x: i32, y: i32) -> i32 {
  if (y >= 0) { return ipow_(x, u32(y)); }
  if (x == 1) { return 1; }
  if (x == -1) { return select(1, -1, (y & 1) != 0); }
  return 0;
}
`;

type Expr = string | ((a: Attrs, ctx: GpuCtx) => { expr: string; params?: Record<string, number> } | string);

/** One-input op: `expr` for floats; with `int`, also the integer dtypes it lists, computing `int.expr(d)`. */
function unary(op: string, expr: Expr, since = 1, outBool = false, int?: { types: DType[]; expr: (d: DType) => string }): GpuOpDef {
  const types = new Set<DType | undefined>([...FLOATS, ...(int?.types ?? [])]);
  return {
    op, since, reject: only(types),
    run: (ins, _a, ctx) => {
      const x = gpuAt(ins, 0, ctx);
      const e = int && isInt(x.dtype) ? int.expr(x.dtype) : typeof expr === 'string' ? expr : expr(new Attrs(ctx.node), ctx);
      const s = typeof e === 'string' ? { expr: e } : e;
      return ctx.gpu.run(elementwise({ name: op, ...s, inputs: [x], outShape: x.shape, outDtype: outBool ? 'bool' : x.dtype, helpers: HELPERS }));
    },
  };
}

/** N-input op with broadcasting; `out` picks the output dtype from the first input's (the value inputs' for Where). */
function nary(op: string, expr: string | ((n: number, d: DType) => string), opts: { out?: (d: DType) => DType; reject?: GpuOpDef['reject']; since?: number } = {}): GpuOpDef {
  return {
    op, since: opts.since, reject: opts.reject ?? onlyNumeric,
    run: (ins, _a, ctx) => {
      const xs = ins.filter((v): v is GpuArray => v !== undefined).map((_, i) => gpuAt(ins, i, ctx));
      const vals = op === 'Where' ? xs.slice(1) : xs;
      if (vals.some((x) => x.dtype !== vals[0].dtype)) fail(ctx, `inputs must share a dtype, got ${xs.map((x) => x.dtype).join(', ')}`);
      const shape = broadcastShapes(...xs.map((x) => x.shape)) ?? fail(ctx, `shapes ${xs.map((x) => `[${x.shape}]`).join(' ')} do not broadcast`);
      const dtype = vals[0].dtype;
      const e = typeof expr === 'string' ? expr : expr(xs.length, dtype);
      return ctx.gpu.run(elementwise({ name: op, expr: e, inputs: xs, outShape: shape, outDtype: opts.out?.(dtype) ?? dtype, helpers: HELPERS }));
    },
  };
}

const bool = () => 'bool' as DType;
const fold = (f: (a: string, b: string) => string) => (n: number) => Array.from({ length: n }, (_, i) => `v${i}`).reduce(f);
const onlyBool = (d: Ds) => (d.some((x) => x && x !== 'bool') ? 'logical ops take bool' : undefined);
const onlyInts = only(new Set(INTS));

registerGpu(
  unary('Abs', 'abs(v0)', 1, false, { types: INTS, expr: () => 'abs(v0)' }),
  unary('Neg', '-v0', 1, false, { types: SIGNED_INTS, expr: () => '-v0' }),
  unary('Exp', 'exp(v0)'), unary('Log', 'log(v0)'), unary('Sqrt', 'sqrt(v0)'),
  unary('Reciprocal', '1.0 / v0'), unary('Floor', 'floor(v0)'), unary('Ceil', 'ceil(v0)'), unary('Round', 'round(v0)'),
  unary('Sign', 'sign(v0)', 1, false, { types: INTS, expr: (d) => (computeType(d) === 'u32' ? 'select(0u, 1u, v0 > 0u)' : 'select(select(0, -1, v0 < 0), 1, v0 > 0)') }),
  unary('Erf', 'erf_(v0)'), unary('Sin', 'sin(v0)'), unary('Cos', 'cos(v0)'), unary('Tan', 'tan(v0)'),
  unary('Tanh', 'tanh_(v0)'), unary('Asin', 'asin(v0)'), unary('Acos', 'acos(v0)'), unary('Atan', 'atan(v0)'),
  unary('Sinh', 'sinh(v0)'), unary('Cosh', 'cosh(v0)'), unary('Asinh', 'asinh(v0)'), unary('Acosh', 'acosh(v0)'), unary('Atanh', 'atanh(v0)'),
  unary('Sigmoid', 'sigmoid_(v0)'), unary('Relu', 'max(v0, 0.0)', 1, false, { types: SIGNED_INTS, expr: () => 'max(v0, 0)' }),
  unary('Softsign', 'v0 / (1.0 + abs(v0))'),
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
  // 32-bit sums and products wrap as Math.imul and the CPU's Int32Array stores do; narrow ones are exact
  // in the lane (|a*b| < 2^31 for 16-bit operands) and wrapped by the store.
  nary('Add', 'v0 + v1', { since: 7 }), nary('Sub', 'v0 - v1', { since: 7 }), nary('Mul', 'v0 * v1', { since: 7 }),
  // Integer division truncates toward zero like the CPU's store of the float quotient; by zero it gives 0,
  // as that store does with Infinity/NaN. WGSL's i32 MIN / -1 gives MIN, the CPU's wrapped 2^31 too.
  nary('Div', (_n, d) => (isInt(d) ? `select(v0 / v1, ${zero(d)}, v1 == ${zero(d)})` : 'v0 / v1'), { since: 7 }),
  nary('PRelu', (_n, d) => `select(v0 * v1, v0, v0 >= ${zero(d)})`, { since: 7 }),
  nary('Max', fold((a, b) => `max(${a}, ${b})`), { since: 8 }), nary('Min', fold((a, b) => `min(${a}, ${b})`), { since: 8 }),
  nary('Sum', fold((a, b) => `${a} + ${b}`), { since: 8, reject: onlyFloat }), nary('Mean', (n) => `(${fold((a, b) => `${a} + ${b}`)(n)}) / ${n}.0`, { since: 8, reject: onlyFloat }),
  nary('Equal', 'v0 == v1', { out: bool, since: 7, reject: only(new Set([...NUMERIC, 'bool'])) }),
  nary('Less', 'v0 < v1', { out: bool, since: 7 }), nary('Greater', 'v0 > v1', { out: bool, since: 7 }),
  nary('LessOrEqual', 'v0 <= v1', { out: bool, since: 12 }), nary('GreaterOrEqual', 'v0 >= v1', { out: bool, since: 12 }),
  nary('And', '(v0 & v1) != 0u', { out: bool, since: 7, reject: onlyBool }), nary('Or', '(v0 | v1) != 0u', { out: bool, since: 7, reject: onlyBool }),
  nary('Xor', '(v0 ^ v1) != 0u', { out: bool, since: 7, reject: onlyBool }), nary('Not', 'v0 == 0u', { out: bool, reject: onlyBool }),
  // In-range operands give in-range results for & | ^; ~ of a sign- or zero-extended lane is wrapped by the store.
  nary('BitwiseAnd', 'v0 & v1', { since: 18, reject: onlyInts }), nary('BitwiseOr', 'v0 | v1', { since: 18, reject: onlyInts }),
  nary('BitwiseXor', 'v0 ^ v1', { since: 18, reject: onlyInts }), nary('BitwiseNot', '~v0', { since: 18, reject: onlyInts }),
  nary('Where', 'select(v2, v1, v0 != 0u)', { since: 9, reject: (d) => (d[0] && d[0] !== 'bool' ? 'condition must be bool' : onlyNumeric(d.slice(1))) }),
);

// Pow: float bases take any GPU numeric exponent (in f32); int32 bases take integer exponents and compute the
// exact power wrapped to 32 bits, which is the CPU's float64 power stored as int32 while |x^y| < 2^53 (past
// that the CPU's double has already lost the low bits). Int bases with float exponents stay on the CPU.
registerGpu({
  op: 'Pow', since: 7,
  reject: (d) => {
    if (!d[0] || !d[1]) return undefined;
    if (FLOATS.has(d[0])) return NUMERIC.has(d[1]) ? undefined : `exponent dtype ${d[1]} not supported by this GPU kernel`;
    if (d[0] === 'int32') return INTS.includes(d[1]) ? undefined : `int32 base with a ${d[1]} exponent runs on the CPU`;
    return `base dtype ${d[0]} not supported by this GPU kernel`;
  },
  run: (ins, _a, ctx) => {
    const x = gpuAt(ins, 0, ctx), y = gpuAt(ins, 1, ctx), ey = computeType(y.dtype);
    const shape = broadcastShapes(x.shape, y.shape) ?? fail(ctx, `shapes [${x.shape}] and [${y.shape}] do not broadcast`);
    const expr = !isInt(x.dtype) ? `pow_(v0, ${ey === 'f32' ? 'v1' : 'f32(v1)'})` : ey === 'u32' ? 'ipow_(v0, v1)' : 'ipowi_(v0, v1)';
    return ctx.gpu.run(elementwise({ name: 'Pow', expr, inputs: [x, y], outShape: shape, outDtype: x.dtype, helpers: HELPERS }));
  },
});

// Mod: C fmod (fmod=1) or the divisor's sign (fmod=0); integer Mod keeps exact integers, and by zero gives 0
// (WGSL's % does; the CPU stores its NaN as 0).
registerGpu({
  op: 'Mod', since: 10, reject: onlyNumeric,
  run: (ins, _a, ctx) => {
    const x = gpuAt(ins, 0, ctx), y = gpuAt(ins, 1, ctx), fmod = new Attrs(ctx.node).int('fmod', 0), t = computeType(x.dtype);
    if (y.dtype !== x.dtype) fail(ctx, `input 1 has dtype ${y.dtype}, expected ${x.dtype} like input 0`);
    const expr = t === 'f32' ? (fmod ? 'fmod_(v0, v1)' : 'pymod_(v0, v1)') : t === 'u32' || fmod ? 'v0 % v1' : 'imod_(v0, v1)';
    const shape = broadcastShapes(x.shape, y.shape) ?? fail(ctx, `shapes [${x.shape}] and [${y.shape}] do not broadcast`);
    return ctx.gpu.run(elementwise({ name: 'Mod', expr, inputs: [x, y], outShape: shape, outDtype: x.dtype, helpers: HELPERS }));
  },
});

const UINT_BITS: Partial<Record<DType, number>> = { uint8: 8, uint16: 16, uint32: 32 };

// BitShift: WGSL takes the shift count modulo 32; ONNX (and the CPU backend) empties the value once the
// count reaches the type's width. Left shifts of narrow lanes keep their low bits through the store.
registerGpu({
  op: 'BitShift', since: 11, reject: (d) => (d.every((x) => !x || UINT_BITS[x]) ? undefined : `dtype ${d.find((x) => x && !UINT_BITS[x])} not supported by this GPU kernel`),
  run: (ins, a: { left: boolean }, ctx) => {
    const x = gpuAt(ins, 0, ctx), y = gpuAt(ins, 1, ctx);
    if (y.dtype !== x.dtype) fail(ctx, `input 1 has dtype ${y.dtype}, expected ${x.dtype} like input 0`);
    const shape = broadcastShapes(x.shape, y.shape) ?? fail(ctx, `shapes [${x.shape}] and [${y.shape}] do not broadcast`);
    const expr = `select(0u, v0 ${a.left ? '<<' : '>>'} v1, v1 < ${UINT_BITS[x.dtype]}u)`;
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
