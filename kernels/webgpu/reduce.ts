// Row programs: every output row folds a set of input elements in one or more passes, then may write
// once per row (a reduction's result, a statistic) and/or once per element (softmax, normalisations).
// Reduce*, ArgMax/ArgMin, Softmax and the normalisations all build on it.
//
// A row is any subset of axes of a contiguous tensor: adjacent axes of the same kind (kept or reduced)
// merge, so the index math only depends on how many kept and reduced runs there are, and the dims
// travel as uniforms. Two variants: `serial` (one invocation per row, loops over the row) and
// `parallel` (one workgroup per row, strided partial folds and a tree in workgroup memory).
import type { DType } from '../../engine/dtype.js';
import type { GpuContext } from './device.js';
import type { GpuArray, Program, Uniform } from './runner.js';
import { computeType, declare, entry, load, offsetFn, store, u32s } from './wgsl.js';

export type Acc = 'f32' | 'i32' | 'u32';

/** One fold over a row; its result is bound to `let <name>` for later passes, `once` and `each`. */
export interface Pass {
  name: string;
  type: Acc;
  init: string;
  /** Contribution of element `v` (compute type) at row index `j` (u32). */
  map: string;
  comb: (a: string, b: string) => string;
  /** Result from the accumulator expression `acc`; `n` (u32) is the row length. Default: the accumulator. */
  fin?: (acc: string) => string;
}

export interface RowGeom { kept: number[]; keptStrides: number[]; red: number[]; redStrides: number[]; rows: number; n: number }

/** Rows of a contiguous `shape` reduced over `axes`: size-1 dims dropped, adjacent dims of one kind merged. */
export function rowGeometry(shape: readonly number[], axes: readonly number[]): RowGeom {
  const g: RowGeom = { kept: [], keptStrides: [], red: [], redStrides: [], rows: 1, n: 1 };
  let stride = 1, last: boolean | undefined;
  const runs: { red: boolean; size: number; stride: number }[] = [];
  for (let i = shape.length - 1; i >= 0; stride *= shape[i--]) {
    const red = axes.includes(i);
    if (red) g.n *= shape[i]; else g.rows *= shape[i];
    if (shape[i] === 1) continue;
    // Walking inwards-out, a run's stride is that of its innermost dim.
    if (red === last) runs[runs.length - 1].size *= shape[i];
    else runs.push({ red, size: shape[i], stride });
    last = red;
  }
  for (const r of runs.reverse()) {
    (r.red ? g.red : g.kept).push(r.size);
    (r.red ? g.redStrides : g.keptStrides).push(r.stride);
  }
  return g;
}

export type Variant = 'serial' | 'parallel';

/**
 * Serial folds keep whole rows in one invocation: best when rows are many and short, or when rows are
 * strided (neighbouring rows sit next to each other in memory, so a serial loop reads coalesced).
 * Hardware GPUs otherwise want a workgroup per row, 256 wide only when rows are long enough to fill it.
 * On software adapters a workgroup runs on one CPU thread and its barriers are costly: serial wins from
 * about 4 rows up, at every row length; below that, rows of 1024+ elements fold 2-10x faster in
 * parallel (lavapipe, one output of 64K-1M elements).
 */
export function chooseVariant(ctx: GpuContext, g: RowGeom): { variant: Variant; wg: number } {
  const serial = { variant: 'serial' as const, wg: 64 }, parallel = (wg: number) => ({ variant: 'parallel' as const, wg });
  if (ctx.software) return g.rows < 4 && g.n >= 1024 ? parallel(64) : serial;
  if (g.n <= 32 || (g.redStrides.at(-1) !== 1 && g.rows >= 4096)) return serial;
  return parallel(g.n >= 2048 ? 256 : 64);
}

export interface RowSpec {
  name: string;
  /** Everything else that changes the WGSL: folds, dtypes, flags. */
  key: string;
  /** inputs[0] is the folded tensor, read as `xv(p)` in compute type; others are free for the snippets. */
  inputs: GpuArray[];
  outputs: { name: string; dtype: DType; shape: readonly number[] }[];
  geom: RowGeom;
  passes: Pass[];
  /** Statements run once per row after the passes; `row` is the row index. */
  once?: string;
  /** Statements run per element after the passes: `j`, its offset `p` and value `v`. */
  each?: string;
  uniforms?: Uniform[];
  /** Extra WGSL functions the snippets call. */
  helpers?: string;
}

/** Offset of a row or element from its multi-index over (merged) dims; rank 0 and 1 skip the division loop. */
function indexFn(name: string, rank: number, shape: string, strides: string): string {
  if (rank === 1) return `fn ${name}(o: u32) -> u32 { return o * u_${strides}(0u); }`;
  return offsetFn(name, rank, shape, strides);
}

/** The row program for `s`, in the variant that ctx's adapter and the row shape call for. */
export function rowProgram(ctx: GpuContext, s: RowSpec): Program {
  const g = s.geom, x = s.inputs[0], { variant, wg } = chooseVariant(ctx, g);
  const uniforms: Uniform[] = [
    u32s('rows', g.rows), u32s('n', g.n), u32s('ks', g.kept), u32s('kst', g.keptStrides), u32s('rs', g.red), u32s('rst', g.redStrides),
    ...(s.uniforms ?? []),
  ];
  const io = {
    inputs: s.inputs.map((a, i): [string, DType] => [i ? `in${i}` : 'x', a.dtype]),
    outputs: s.outputs.map((o): [string, DType] => [o.name, o.dtype]),
    uniforms,
  };
  const body = variant === 'serial' ? serialBody(s, wg) : parallelBody(s, wg);
  return {
    name: s.name,
    key: `row|${s.name}|${s.key}|${variant}${wg}|${g.kept.length},${g.red.length}|${s.inputs.map((a) => a.dtype)}|${s.outputs.map((o) => o.dtype)}`,
    shader: () => [
      declare(io),
      indexFn('base', g.kept.length, 'ks', 'kst'),
      indexFn('at', g.red.length, 'rs', 'rst'),
      `fn xv(p: u32) -> ${computeType(x.dtype)} { return ${load(x.dtype, 'x[p]')}; }`,
      FLOAT_HELPERS, s.helpers ?? '',
      body,
    ].join('\n'),
    inputs: s.inputs,
    outputs: s.outputs.map((o) => ({ dtype: o.dtype, shape: o.shape })),
    uniforms,
    workgroups: variant === 'serial' ? Math.ceil(g.rows / wg) : g.rows,
  };
}

const fin = (p: Pass, acc: string) => `  let ${p.name} = ${p.fin ? p.fin(acc) : acc};`;

function serialBody(s: RowSpec, wg: number): string {
  const passes = s.passes.map((p) => `  var a_${p.name} = ${p.init};
  for (var j = 0u; j < n; j++) { let v = xv(b + at(j)); a_${p.name} = ${p.comb(`a_${p.name}`, p.map)}; }
${fin(p, `a_${p.name}`)}`);
  return entry(wg, 'u_rows()', [
    '  let row = gi; let b = base(row); let n = u_n();',
    ...passes,
    s.once ?? '',
    s.each ? `  for (var j = 0u; j < n; j++) { let p = b + at(j); let v = xv(p);\n${s.each}\n  }` : '',
  ].join('\n'));
}

function parallelBody(s: RowSpec, wg: number): string {
  const types = [...new Set(s.passes.map((p) => p.type))];
  const passes = s.passes.map((p) => `  var a_${p.name} = ${p.init};
  for (var j = li; j < n; j += ${wg}u) { let v = xv(b + at(j)); a_${p.name} = ${p.comb(`a_${p.name}`, p.map)}; }
  sh_${p.type}[li] = a_${p.name};
  workgroupBarrier();
  for (var k = ${wg / 2}u; k > 0u; k >>= 1u) {
    if (li < k) { sh_${p.type}[li] = ${p.comb(`sh_${p.type}[li]`, `sh_${p.type}[li + k]`)}; }
    workgroupBarrier();
  }
${fin(p, `sh_${p.type}[0]`)}
  workgroupBarrier();`);
  return `${types.map((t) => `var<workgroup> sh_${t}: array<${t}, ${wg}>;`).join('\n')}
@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= u_rows()) { return; }
  let b = base(row); let n = u_n();
${passes.join('\n')}
${s.once ? `  if (li == 0u) {\n${s.once}\n  }` : ''}
${s.each ? `  for (var j = li; j < n; j += ${wg}u) { let p = b + at(j); let v = xv(p);\n${s.each}\n  }` : ''}
}`;
}

/** NaN and infinities built at run time: WGSL constant expressions may not be NaN or infinite. */
export const FLOAT_HELPERS = `fn isnan_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn finite_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) < 0x7f800000u; }
fn inf_(neg: bool) -> f32 { var b = select(0x7f800000u, 0xff800000u, neg); return bitcast<f32>(b); }`;

// ---- reductions ------------------------------------------------------------------------------------

export type Fold = 'sum' | 'mean' | 'max' | 'min' | 'prod' | 'l1' | 'l2' | 'logsum' | 'logsumexp' | 'sumsquare';

/** The lowest (or highest) value of a compute type: the fold identity of max (or min). */
const extreme = (t: Acc, high: boolean) =>
  t === 'f32' ? `inf_(${!high})` : t === 'u32' ? (high ? '0xffffffffu' : '0u') : high ? '2147483647i' : '(-2147483647i - 1i)';

/** Max/min that lets NaN through (as the CPU backend does) on floats. */
function pick(t: Acc, high: boolean, nan: boolean): (a: string, b: string) => string {
  const cmp = high ? '>' : '<';
  return t === 'f32'
    ? (a, b) => `select(${a}, ${b}, ${b} ${cmp} ${a}${nan ? ` || isnan_(${b})` : ''})`
    : (a, b) => `${high ? 'max' : 'min'}(${a}, ${b})`;
}

const add = (a: string, b: string) => `${a} + ${b}`;

/** Passes computing `fold` of elements of compute type `t`; the last pass's name is `r`. Integer data
 *  folds in its own arithmetic (wrapping like the CPU's 32-bit stores), except the logarithmic and L2
 *  folds, which are float by nature. */
export function foldPasses(fold: Fold, t: Acc): Pass[] {
  const zero = t === 'f32' ? '0.0' : t === 'u32' ? '0u' : '0i', one = t === 'f32' ? '1.0' : t === 'u32' ? '1u' : '1i';
  const sum = (map: string, fn?: (acc: string) => string): Pass => ({ name: 'r', type: t, init: zero, map, comb: add, fin: fn });
  const fsum = (map: string, fn: (acc: string) => string): Pass => ({ name: 'r', type: 'f32', init: '0.0', map, comb: add, fin: fn });
  switch (fold) {
    case 'sum': return [sum('v')];
    case 'mean': return [sum('v', (a) => `${a} / ${t}(n)`)];
    case 'max': case 'min': return [{ name: 'r', type: t, init: extreme(t, fold === 'min'), map: 'v', comb: pick(t, fold === 'max', true) }];
    case 'prod': return [{ name: 'r', type: t, init: one, map: 'v', comb: (a, b) => `${a} * ${b}` }];
    case 'l1': return [sum(t === 'u32' ? 'v' : 'abs(v)')];
    case 'sumsquare': return [sum('v * v')];
    case 'l2': return [fsum('f32(v) * f32(v)', (a) => `sqrt(${a})`)];
    case 'logsum': return [fsum('f32(v)', (a) => `log(${a})`)];
    case 'logsumexp': return [
      { name: 'm', type: 'f32', init: 'inf_(true)', map: 'f32(v)', comb: pick('f32', true, true), fin: (a) => `select(0.0, ${a}, finite_(${a}))` },
      fsum('exp(f32(v) - m)', (a) => `m + log(${a})`),
    ];
  }
}

/** Output dtype `d` from the fold result `r` (float folds of integer data truncate, as typed-array stores do). */
const storeResult = (d: DType, fold: Fold) => store(d, ['l2', 'logsum', 'logsumexp'].includes(fold) && computeType(d) !== 'f32' ? `${computeType(d)}(r)` : 'r');

/** Reduction of `x` over `axes` (non-negative) into an output of `outShape` (the kept dims, keepdims or not). */
export function reduceProgram(ctx: GpuContext, x: GpuArray, axes: number[], fold: Fold, outShape: readonly number[]): Program {
  return rowProgram(ctx, {
    name: `Reduce_${fold}`, key: fold, inputs: [x], outputs: [{ name: 'out', dtype: x.dtype, shape: outShape }], geom: rowGeometry(x.shape, axes),
    passes: foldPasses(fold, computeType(x.dtype)), once: `  out[row] = ${storeResult(x.dtype, fold)};`,
  });
}

/** Passes finding the best value (`best`) and then its first or last index (`idx`, i32) along the row. */
export function argPasses(t: Acc, high: boolean, last: boolean): Pass[] {
  const none = last ? '-1i' : '2147483647i';
  return [
    { name: 'best', type: t, init: extreme(t, !high), map: 'v', comb: pick(t, high, false) },
    {
      name: 'idx', type: 'i32', init: none, map: `select(${none}, i32(j), v == best)`,
      comb: (a, b) => `${last ? 'max' : 'min'}(${a}, ${b})`, fin: (a) => `select(${a}, 0i, ${a} == ${none})`,
    },
  ];
}

/** ArgMax/ArgMin along `axis` into an int64 tensor of `outShape`. */
export function argProgram(ctx: GpuContext, x: GpuArray, axis: number, high: boolean, last: boolean, outShape: readonly number[]): Program {
  return rowProgram(ctx, {
    name: high ? 'ArgMax' : 'ArgMin', key: `${high}${last}`, inputs: [x], outputs: [{ name: 'out', dtype: 'int64', shape: outShape }],
    geom: rowGeometry(x.shape, [axis]), passes: argPasses(computeType(x.dtype), high, last), once: `  out[row] = ${store('int64', 'idx')};`,
  });
}
