// DeformConv on the GPU: one invocation per output element (image, output channel, position) sums, over
// its group's input channels and the kernel taps, W times the input sampled at the tap moved by the
// learned offset (N-linear interpolation with corners outside the input counting as 0, as the CPU's
// sampleLinear), scaled by the mask when there is one. f32 arithmetic where the CPU's columns are float64.
import type { DType } from '../../engine/dtype.js';
import type { GpuArray, Program } from './runner.js';
import { declare, entry, load, store, u32s } from './wgsl.js';

const WG = 64;

export interface DeformSpec {
  x: GpuArray; w: GpuArray; offset: GpuArray; bias?: GpuArray; mask?: GpuArray;
  group: number; offsetGroup: number; outS: number[];
  /** Per spatial dim: kernel, stride, dilation, leading pad. */
  k: number[]; s: number[]; d: number[]; pb: number[];
}

const prod = (v: readonly number[]) => v.reduce((a, b) => a * b, 1);
const stridesOf = (dims: readonly number[]) => dims.map((_, i) => prod(dims.slice(i + 1)));

export function deformConv(sp: DeformSpec): Program {
  const { x, w } = sp, [n, c, ...inS] = x.shape, m = w.shape[0], r = inS.length, outSize = prod(sp.outS);
  const total = n * m * outSize, taps = prod(sp.k), cg = c / sp.group;
  const uniforms = [u32s('total', total), u32s('c', c), u32s('m', m), u32s('cg', cg), u32s('mg', m / sp.group), u32s('og', sp.offsetGroup),
    u32s('cpog', c / sp.offsetGroup), u32s('taps', taps), u32s('pos', outSize), u32s('ins', inS), u32s('istr', stridesOf(inS)),
    u32s('outs', sp.outS), u32s('ostr', stridesOf(sp.outS)), u32s('k', sp.k), u32s('kstr', stridesOf(sp.k)), u32s('st', sp.s), u32s('dl', sp.d), u32s('pb', sp.pb)];
  const dt: DType = x.dtype, L = (name: string, i: string) => load(dt, `${name}[${i}]`);
  const ins: [string, GpuArray][] = [['x', x], ['w', w], ['off', sp.offset], ...(sp.bias ? [['bias', sp.bias]] as [string, GpuArray][] : []), ...(sp.mask ? [['mask', sp.mask]] as [string, GpuArray][] : [])];
  const dims = [...Array(r).keys()];
  return {
    name: 'DeformConv', key: `deform|${dt}|${r}|${!!sp.bias}|${!!sp.mask}`,
    shader: () => `${declare({ inputs: ins.map(([nm, t]) => [nm, t.dtype] as [string, DType]), outputs: [['out', dt]], uniforms })}
${entry(WG, 'u_total()', `  let p = gi % u_pos(); let co = (gi / u_pos()) % u_m(); let b = gi / (u_pos() * u_m());
  let gr = co / u_mg();
  var acc = ${sp.bias ? L('bias', 'co') : '0.0'};
  for (var ci = 0u; ci < u_cg(); ci++) {
    let ch = gr * u_cg() + ci; let og = ch / u_cpog();
    let xo = (b * u_c() + ch) * ${dims.map((i) => `u_ins(${i}u)`).join(' * ')};
    for (var t = 0u; t < u_taps(); t++) {
      let ot = (b * u_og() + og) * u_taps() + t;
      var pos: array<f32, ${r}>;
${dims.map((i) => `      pos[${i}] = f32(i32(((p / u_ostr(${i}u)) % u_outs(${i}u)) * u_st(${i}u) + ((t / u_kstr(${i}u)) % u_k(${i}u)) * u_dl(${i}u)) - i32(u_pb(${i}u)))
        + ${L('off', `(ot * ${r}u + ${i}u) * u_pos() + p`)};`).join('\n')}
      var v = 0.0;
      for (var corner = 0u; corner < ${1 << r}u; corner++) {
        var xi = xo; var wt = 1.0; var inside = true;
${dims.map((i) => `        {
          let f = floor(pos[${i}]); let up = (corner >> ${i}u) & 1u; let q = i32(f) + i32(up); let fr = pos[${i}] - f;
          if (q < 0 || q >= i32(u_ins(${i}u))) { inside = false; } else { wt *= select(1.0 - fr, fr, up == 1u); xi += u32(q) * u_istr(${i}u); }
        }`).join('\n')}
        if (inside && wt != 0.0) { v += wt * ${L('x', 'xi')}; }
      }
      ${sp.mask ? `v *= ${L('mask', 'ot * u_pos() + p')};` : ''}
      acc += ${L('w', '(co * u_cg() + ci) * u_taps() + t')} * v;
    }
  }
  out[gi] = ${store(dt, 'acc')};`)}`,
    inputs: ins.map(([, t]) => t), outputs: [{ dtype: dt, shape: [n, m, ...sp.outS] }], uniforms, workgroups: Math.ceil(total / WG),
  };
}
