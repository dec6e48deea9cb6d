// Fused scaled dot-product attention, the KV-cache append and rotary embeddings. Head-split tensors are
// addressed through (batch, head, row) strides, so packed [B, S, H*D] and [B, H, S, D] need no transposes.
// Attention per query row: scores QK^T * scale, softcap, the key window (causal, sliding, padding, mask
// width), bool or additive mask, a max-shifted softmax (a row with no key is zeros) and the product with V.
//  - row: one invocation per query row, an online softmax accumulating the output row in an f32 scratch
//    output; no shared memory or barriers: software adapters and very wide heads.
//  - tile: one workgroup per query row; keys in tiles of WG, scores and reductions in shared memory, an
//    online softmax rescaling the running output, each thread owning up to EPT output dims (a second
//    pass over the keys when the probabilities themselves are rounded).
import type { DType } from '../../engine/dtype.js';
import type { GpuArray, Program, Uniform } from './runner.js';
import { declare, entry, f32u, i32u, load, store, u32s } from './wgsl.js';

const WG = 64, EPT = 4;
/** Widest value head the tile variant serves (each of WG threads owns EPT dims). */
export const TILE_MAX_DIM = WG * EPT;

/** Row (b, h, s) of a head-split tensor starts at b*bs + h*hs + s*ss; its elements are contiguous. */
export interface HeadLayout { bs: number; hs: number; ss: number }
/** [B, H, S, D] */
export const split4 = (h: number, s: number, d: number): HeadLayout => ({ bs: h * s * d, hs: s * d, ss: d });
/** [B, S, H*D] */
export const packed3 = (h: number, s: number, d: number): HeadLayout => ({ bs: s * h * d, hs: d, ss: h * d });
const strides = (name: string, l: HeadLayout) => u32s(name, [l.bs, l.hs, l.ss]);

export interface AttentionSpec {
  batch: number; qHeads: number; kvHeads: number; qLen: number; kvLen: number; headDim: number; vDim: number;
  q: GpuArray; k: GpuArray; v: GpuArray; ql: HeadLayout; kl: HeadLayout; vl: HeadLayout;
  yShape: readonly number[]; yl: HeadLayout;
  scale: number; softcap: number; causal: boolean; left: number; right: number;
  /** Keys cached before the query block (past_key); without one, nonpad_kv_seqlen - qLen when `valid` is given. */
  past?: number;
  /** nonpad_kv_seqlen: per batch, keys from this index on are padding. */
  valid?: GpuArray;
  /** Bool (allow) or additive mask over [b, h, i] strides; keys at or past `width` are disallowed. A bool
   *  mask may be `inverted` (true masks out) and give masked keys a finite `fill` score instead of -inf,
   *  as Where(cond, fill, scores) does: a row with every key masked is then uniform, not zeros. */
  mask?: { a: GpuArray; width: number; strides: [number, number, number]; inverted?: boolean; fill?: number };
  /** Scores rounded to this precision before the softmax, and the probabilities after it. */
  round: 'none' | 'f16' | 'bf16';
  /** Round the probabilities too, which needs the row's final max and sum first (a second pass over the
   *  keys); otherwise the output is normalised once at the end. */
  exactProbs: boolean;
  /** The optional [B, Hq, S, T] scores output: 0 raw, 1 softcapped, 2 masked, 3 probabilities. */
  scoresMode?: number;
  /** The row variant has a last output, an f32 [rows, vDim] scratch accumulator the caller releases. */
  variant: 'row' | 'tile';
}

const ROUND = {
  none: 'return x;',
  // pack2x16float is undefined outside the f16 range: overflow goes to infinity as a cast would.
  f16: 'if (abs(x) < 65520.0) { return unpack2x16float(pack2x16float(vec2<f32>(x, 0.0))).x; } return x * 1e30;',
  bf16: 'let b = bitcast<u32>(x); if ((b & 0x7fffffffu) > 0x7f800000u) { return x; } return bitcast<f32>((b + 0x7fffu + ((b >> 16u) & 1u)) & 0xffff0000u);',
};

/** WGSL shared by both variants: offsets, the key window of a row, and the score of one key. */
function scoreFns(s: AttentionSpec): string {
  const { q, k, valid, mask } = s;
  const masked = mask?.fill === undefined ? 'neg_inf()' : 'u_mask_fill()';
  const maskExpr = !mask ? 'x' : mask.a.dtype === 'bool'
    ? `select(${masked}, x, attn_mask[mo + j] ${mask.inverted ? '==' : '!='} 0u)` : `x + ${load(mask.a.dtype, 'attn_mask[mo + j]')}`;
  return `fn neg_inf() -> f32 { var b = 0xff800000u; return bitcast<f32>(b); }
fn tanh_(x: f32) -> f32 { let e = exp(-2.0 * abs(clamp(x, -20.0, 20.0))); return sign(x) * (1.0 - e) / (1.0 + e); }
fn rnd(x: f32) -> f32 { ${ROUND[s.round]} }
fn qof(b: u32, h: u32, i: u32) -> u32 { return b * u_qs(0u) + h * u_qs(1u) + i * u_qs(2u); }
fn kof(b: u32, g: u32, j: u32) -> u32 { return b * u_ks(0u) + g * u_ks(1u) + j * u_ks(2u); }
fn vof(b: u32, g: u32, j: u32) -> u32 { return b * u_vs(0u) + g * u_vs(1u) + j * u_vs(2u); }
fn yof(b: u32, h: u32, i: u32) -> u32 { return b * u_ys(0u) + h * u_ys(1u) + i * u_ys(2u); }
/** Keys [lo, hi) that query i of batch b may attend; the query sits at absolute position offset + i. */
fn bounds(b: u32, i: u32) -> vec2<u32> {
  let T = i32(u_kv_len());
  var off = i32(u_past());
  var hi = T;${valid ? `
  let nv = ${load(valid.dtype, 'valid[b]')};
  if (u_has_past() == 0u) { off = nv - i32(u_q_len()); }
  hi = min(hi, nv);` : ''}${mask ? '\n  hi = min(hi, i32(u_mask_width()));' : ''}
  let p = off + i32(i);
  if (u_causal() != 0u) { hi = min(hi, p + 1); }
  if (u_right() >= 0) { hi = min(hi, p + u_right() + 1); }
  var lo = 0;
  if (u_left() >= 0) { lo = max(0, p - u_left()); }
  lo = min(lo, T);
  return vec2<u32>(u32(lo), u32(max(hi, lo)));
}
fn raw_(qo: u32, ko: u32) -> f32 {
  var a = 0.0;
  for (var d = 0u; d < u_dim(); d++) { a += ${load(q.dtype, 'q[qo + d]')} * ${load(k.dtype, 'k[ko + d]')}; }
  return a * u_scale();
}
fn cap_(x: f32) -> f32 { if (u_softcap() != 0.0) { return u_softcap() * tanh_(x / u_softcap()); } return x; }
fn mask_(x: f32, mo: u32, j: u32, w: vec2<u32>) -> f32 { if (j < w.x || j >= w.y) { return neg_inf(); } return ${maskExpr}; }
fn mof(b: u32, h: u32, i: u32) -> u32 { return b * u_ms(0u) + h * u_ms(1u) + i * u_ms(2u); }
/** The score that enters the softmax. */
fn score(qo: u32, ko: u32, mo: u32, j: u32, w: vec2<u32>) -> f32 { return rnd(mask_(cap_(raw_(qo, ko)), mo, j, w)); }
fn prob(s: f32, m: f32, l: f32) -> f32 { if (s == neg_inf()) { return 0.0; } return rnd(exp(s - m) / l); }
/** What the scores output holds for key j, by mode. */
fn score_out(qo: u32, ko: u32, mo: u32, j: u32, w: vec2<u32>, m: f32, l: f32) -> f32 {
  let r = raw_(qo, ko);
  switch (u_mode()) {
    case 0u: { return r; }
    case 1u: { return cap_(r); }
    case 2u: { return mask_(cap_(r), mo, j, w); }
    default: { return prob(rnd(mask_(cap_(r), mo, j, w)), m, l); }
  }
}`;
}

/** Decomposes query row `row` into b, h, i, the kv head g, and its offsets and window. */
const ROW_SETUP = `let i = row % u_q_len(); let h = (row / u_q_len()) % u_q_heads(); let b = row / (u_q_len() * u_q_heads());
  let g = h / u_group(); let qo = qof(b, h, i); let mo = mof(b, h, i); let yo = yof(b, h, i);`;

/** Row variant: one pass over the keys with an online softmax; the f32 output row accumulates in a
 *  scratch output (no private arrays: indexed in loops they compile very slowly on software adapters)
 *  and is rescaled whenever the running max grows. With exactProbs, the pass only finds the max and sum
 *  and a second one accumulates the rounded probabilities. */
function rowBody(s: AttentionSpec): string {
  const accumulate = `for (var e = 0u; e < u_vdim(); e++) { acc[ao + e] = acc[ao + e] * f + p * ${load(s.v.dtype, 'v[vo + e]')}; }`;
  return `  let row = gi;
  ${ROW_SETUP}
  let w = bounds(b, i); let ao = row * u_vdim();
  for (var e = 0u; e < u_vdim(); e++) { acc[ao + e] = 0.0; }
  var m = neg_inf(); var l = 0.0;
  for (var j = w.x; j < w.y; j++) {
    let x = score(qo, kof(b, g, j), mo, j, w);
    if (x == neg_inf()) { continue; }
    let mn = max(m, x);
    var f = 0.0;
    if (m != neg_inf()) { f = exp(m - mn); }
    let p = exp(x - mn);
    l = l * f + p; m = mn;${s.exactProbs ? '' : `
    let vo = vof(b, g, j);
    ${accumulate}`}
  }${s.exactProbs ? `
  for (var j = w.x; j < w.y; j++) {
    let p = prob(score(qo, kof(b, g, j), mo, j, w), m, l); let f = 1.0; let vo = vof(b, g, j);
    ${accumulate}
  }` : ''}
  for (var e = 0u; e < u_vdim(); e++) { y[yo + e] = ${store(s.q.dtype, s.exactProbs ? 'acc[ao + e]' : 'select(0.0, acc[ao + e] / l, l > 0.0)')}; }${scoresLoop(s, 'j = 0u', 'j++')}`;
}

function tileBody(s: AttentionSpec): string {
  const yStore = (v: string) => store(s.q.dtype, v);
  const accumulate = (alpha: string) => `    let n = min(${WG}u, w.y - t0);
    for (var c = 0u; c < ${EPT}u; c++) {
      let e = lid + c * ${WG}u;
      if (e < u_vdim()) {
        var a = acc[c] * ${alpha};
        for (var jj = 0u; jj < n; jj++) { a += sp[jj] * ${load(s.v.dtype, 'v[vof(b, g, t0 + jj) + e]')}; }
        acc[c] = a;
      }
    }`;
  return `  let row = wg.x + wg.y * nwg.x;
  if (row >= u_rows()) { return; }
  ${ROW_SETUP}
  if (lid == 0u) { win = bounds(b, i); }
  // Broadcast the window through shared memory: it bounds loops with barriers, so it must be uniform.
  let w = workgroupUniformLoad(&win);
  var m = neg_inf(); var l = 0.0; var acc: array<f32, ${EPT}>;
  for (var t0 = w.x; t0 < w.y; t0 += ${WG}u) {
    let j = t0 + lid;
    var x = neg_inf();
    if (j < w.y) { x = score(qo, kof(b, g, j), mo, j, w); }
    red[lid] = x;
    workgroupBarrier();
    for (var r = ${WG / 2}u; r > 0u; r >>= 1u) { if (lid < r) { red[lid] = max(red[lid], red[lid + r]); } workgroupBarrier(); }
    let mn = max(m, red[0]);
    workgroupBarrier();
    var p = 0.0;
    if (x != neg_inf()) { p = exp(x - mn); }
    sp[lid] = p; red[lid] = p;
    workgroupBarrier();
    for (var r = ${WG / 2}u; r > 0u; r >>= 1u) { if (lid < r) { red[lid] += red[lid + r]; } workgroupBarrier(); }
    var alpha = 0.0;
    if (m != neg_inf()) { alpha = exp(m - mn); }
    l = l * alpha + red[0];
    m = mn;
${s.exactProbs ? '' : `${accumulate('alpha')}
`}    workgroupBarrier();
  }${s.exactProbs ? `
  for (var t0 = w.x; t0 < w.y; t0 += ${WG}u) {
    let j = t0 + lid;
    var p = 0.0;
    if (j < w.y) { p = prob(score(qo, kof(b, g, j), mo, j, w), m, l); }
    sp[lid] = p;
    workgroupBarrier();
${accumulate('1.0')}
    workgroupBarrier();
  }` : ''}
  for (var c = 0u; c < ${EPT}u; c++) {
    let e = lid + c * ${WG}u;
    if (e < u_vdim()) { y[yo + e] = ${yStore(s.exactProbs ? 'acc[c]' : 'select(0.0, acc[c] / l, l > 0.0)')}; }
  }${scoresLoop(s, 'j = lid', `j += ${WG}u`)}`;
}

function scoresLoop(s: AttentionSpec, init: string, next: string): string {
  if (s.scoresMode === undefined) return '';
  return `
  let so = ((b * u_q_heads() + h) * u_q_len() + i) * u_kv_len();
  for (var ${init}; j < u_kv_len(); ${next}) { scores[so + j] = ${store(s.q.dtype, 'score_out(qo, kof(b, g, j), mo, j, w, m, l)')}; }`;
}

export function attention(s: AttentionSpec): Program {
  const rows = s.batch * s.qHeads * s.qLen;
  const uniforms: Uniform[] = [
    u32s('rows', rows), u32s('q_heads', s.qHeads), u32s('group', s.qHeads / Math.max(s.kvHeads, 1)), u32s('q_len', s.qLen),
    u32s('kv_len', s.kvLen), u32s('dim', s.headDim), u32s('vdim', s.vDim), u32s('past', s.past ?? 0), u32s('has_past', s.past === undefined ? 0 : 1),
    strides('qs', s.ql), strides('ks', s.kl), strides('vs', s.vl), strides('ys', s.yl), u32s('ms', s.mask?.strides ?? [0, 0, 0]),
    u32s('mask_width', s.mask?.width ?? 0), u32s('causal', s.causal ? 1 : 0), i32u('left', s.left), i32u('right', s.right),
    u32s('mode', s.scoresMode ?? 0), f32u('scale', s.scale), f32u('softcap', s.softcap), f32u('mask_fill', s.mask?.fill ?? 0),
  ];
  const ins = ([['q', s.q], ['k', s.k], ['v', s.v], ['attn_mask', s.mask?.a], ['valid', s.valid]] as [string, GpuArray | undefined][])
    .filter((e): e is [string, GpuArray] => !!e[1]);
  const outs: [string, DType][] = [['y', s.q.dtype], ...(s.scoresMode === undefined ? [] : [['scores', s.q.dtype] as [string, DType]]),
    ...(s.variant === 'row' ? [['acc', 'float32'] as [string, DType]] : [])];
  const head = () => `${declare({ inputs: ins.map(([n, a]) => [n, a.dtype]), outputs: outs, uniforms })}\n${scoreFns(s)}`;
  const shader = () => s.variant === 'row' ? `${head()}\n${entry(WG, 'u_rows()', rowBody(s))}` : `${head()}
var<workgroup> red: array<f32, ${WG}>;
var<workgroup> sp: array<f32, ${WG}>;
var<workgroup> win: vec2<u32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${tileBody(s)}
}`;
  const scoresShape = [s.batch, s.qHeads, s.qLen, s.kvLen];
  return {
    name: 'Attention',
    key: `attention|${s.variant}|${ins.map(([n, a]) => `${n}:${a.dtype}`)}|${s.round}|${s.exactProbs}|${s.scoresMode !== undefined}|${+!!s.mask?.inverted}${+(s.mask?.fill !== undefined)}`,
    shader, inputs: ins.map(([, a]) => a),
    outputs: [{ dtype: s.q.dtype, shape: s.yShape }, ...(s.scoresMode === undefined ? [] : [{ dtype: s.q.dtype, shape: scoresShape }]),
      ...(s.variant === 'row' ? [{ dtype: 'float32' as DType, shape: [rows, s.vDim] }] : [])],
    uniforms, workgroups: s.variant === 'row' ? Math.ceil(rows / WG) : rows,
  };
}

/** present [B, H, P+L, d] = past [B, H, P, d] (optional) followed by the L rows of x (head-split layout xl). */
export function appendKv(past: GpuArray | undefined, x: GpuArray, xl: HeadLayout, dims: { batch: number; heads: number; past: number; len: number; dim: number }): Program {
  const T = dims.past + dims.len, total = dims.batch * dims.heads * T * dims.dim;
  const uniforms = [u32s('total', total), u32s('t', T), u32s('p', dims.past), u32s('d', dims.dim), u32s('heads', dims.heads), strides('xs', xl)];
  const ins = ([['past', past], ['x', x]] as [string, GpuArray | undefined][]).filter((e): e is [string, GpuArray] => !!e[1]);
  const fromX = 'x[b * u_xs(0u) + h * u_xs(1u) + (t - u_p()) * u_xs(2u) + e]';
  return {
    name: 'AppendKv', key: `append-kv|${ins.map(([n, a]) => `${n}:${a.dtype}`)}`,
    shader: () => `${declare({ inputs: ins.map(([n, a]) => [n, a.dtype]), outputs: [['out', x.dtype]], uniforms })}
${entry(WG, 'u_total()', `  let e = gi % u_d(); let t = (gi / u_d()) % u_t(); let bh = gi / (u_d() * u_t());
  let h = bh % u_heads(); let b = bh / u_heads();
  ${past ? `if (t < u_p()) { out[gi] = past[(bh * u_p() + t) * u_d() + e]; return; }` : ''}
  out[gi] = ${fromX};`)}`,
    inputs: ins.map(([, a]) => a), outputs: [{ dtype: x.dtype, shape: [dims.batch, dims.heads, T, dims.dim] }], uniforms,
    workgroups: Math.ceil(total / WG),
  };
}

export interface RotarySpec {
  x: GpuArray; cos: GpuArray; sin: GpuArray;
  /** position_ids [B, S]: cache row of each token; without them token (b, s) reads row b * S + s. */
  pos?: GpuArray;
  batch: number; heads: number; seq: number; headDim: number; rotDim: number; interleaved: boolean;
  /** x is [B, S, H*D] rather than [B, H, S, D]. */
  packed: boolean;
}

/** Rotates the first rotDim elements of each head row by its token's angles; the rest is copied. */
export function rotary(s: RotarySpec): Program {
  const total = s.x.shape.reduce((a, b) => a * b, 1);
  const uniforms = [u32s('total', total), u32s('heads', s.heads), u32s('seq', s.seq), u32s('hd', s.headDim), u32s('rot', s.rotDim),
    u32s('packed', s.packed ? 1 : 0), u32s('interleaved', s.interleaved ? 1 : 0)];
  const ins = ([['x', s.x], ['cos_c', s.cos], ['sin_c', s.sin], ['pos', s.pos]] as [string, GpuArray | undefined][]).filter((e): e is [string, GpuArray] => !!e[1]);
  const dt = s.x.dtype, ld = (e: string) => load(dt, e);
  return {
    name: 'RotaryEmbedding', key: `rotary|${ins.map(([n, a]) => `${n}:${a.dtype}`)}`,
    shader: () => `${declare({ inputs: ins.map(([n, a]) => [n, a.dtype]), outputs: [['y', dt]], uniforms })}
${entry(WG, 'u_total()', `  let d = gi % u_hd(); let r = gi / u_hd();
  // Token (b, s) of this row: [B, S, H] rows when packed, [B, H, S] otherwise.
  let s = select(r % u_seq(), (r / u_heads()) % u_seq(), u_packed() != 0u);
  let b = r / (u_heads() * u_seq());
  if (d >= u_rot()) { y[gi] = x[gi]; return; }
  let half = u_rot() / 2u;
  // Pairs are (2k, 2k+1) when interleaved, else (k, k + half).
  let il = u_interleaved() != 0u;
  let k = select(d % half, d / 2u, il);
  let first = select(d < half, d % 2u == 0u, il);
  let i1 = select(k, 2u * k, il); let i2 = select(k + half, 2u * k + 1u, il);
  let row = ${s.pos ? `u32(${load(s.pos.dtype, 'pos[b * u_seq() + s]')})` : 'b * u_seq() + s'};
  let c = ${ld('cos_c[row * half + k]')}; let sn = ${ld('sin_c[row * half + k]')};
  let x1 = ${ld('x[gi - d + i1]')}; let x2 = ${ld('x[gi - d + i2]')};
  y[gi] = ${store(dt, 'select(sn * x1 + c * x2, c * x1 - sn * x2, first)')};`)}`,
    inputs: ins.map(([, a]) => a), outputs: [{ dtype: dt, shape: s.x.shape }], uniforms, workgroups: Math.ceil(total / WG),
  };
}
