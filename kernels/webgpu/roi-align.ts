// RoiAlign on the GPU: one invocation per output bin (RoI, channel, row, column) averages or takes the max
// of its grid of bilinear samples, with the CPU kernel's rules (kernels/cpu/image.ts roiAlign): the grid
// size comes from the RoI unless sampling_ratio fixes it, samples more than a pixel outside the map count
// as 0 (the CPU's zero weights), and max mode takes the largest weighted corner. Positions are computed in
// f32 where the CPU uses float64.
import type { GpuArray, Program } from './runner.js';
import { declare, entry, f32u, i32u, load, store, u32s } from './wgsl.js';

const WG = 64;

export interface RoiAlignSpec {
  x: GpuArray; rois: GpuArray; batch: GpuArray; count: number;
  ph: number; pw: number; samplingRatio: number; spatialScale: number; halfPixel: boolean; max: boolean;
}

export function roiAlign(s: RoiAlignSpec): Program {
  const { x, rois } = s, [, c, h, w] = x.shape, total = s.count * c * s.ph * s.pw;
  const uniforms = [u32s('total', total), u32s('c', c), u32s('h', h), u32s('w', w), u32s('ph', s.ph), u32s('pw', s.pw),
    i32u('sr', s.samplingRatio), f32u('scale', s.spatialScale)];
  const d = x.dtype, X = (i: string) => load(d, `x[${i}]`), R = (k: number) => `${load(rois.dtype, `rois[r * 4u + ${k}u]`)} * u_scale()`;
  return {
    name: 'RoiAlign', key: `roialign|${d}|${rois.dtype}|${s.halfPixel}|${s.max}`,
    shader: () => `${declare({ inputs: [['x', d], ['rois', rois.dtype], ['batch', 'int32']], outputs: [['out', d]], uniforms })}
fn ninf_() -> f32 { var b = 0xff800000u; return bitcast<f32>(b); }
${entry(WG, 'u_total()', `  let pw = u_pw(); let ph = u_ph(); let hf = f32(u_h()); let wf = f32(u_w());
  let j = gi % pw; let i = (gi / pw) % ph; let ch = (gi / (pw * ph)) % u_c(); let r = gi / (pw * ph * u_c());
  let shift = ${s.halfPixel ? '0.5' : '0.0'};
  let sw = ${R(0)} - shift; let sh = ${R(1)} - shift;
  var rw = ${R(2)} - shift - sw; var rh = ${R(3)} - shift - sh;
  ${s.halfPixel ? '' : 'rw = max(rw, 1.0); rh = max(rh, 1.0);'}
  let bh = rh / f32(ph); let bw = rw / f32(pw);
  let gh = max(select(i32(ceil(rh / f32(ph))), u_sr(), u_sr() > 0), 0);
  let gw = max(select(i32(ceil(rw / f32(pw))), u_sr(), u_sr() > 0), 0);
  let xo = (u32(batch[r]) * u_c() + ch) * u_h() * u_w();
  var acc = ${s.max ? 'ninf_()' : '0.0'};
  for (var iy = 0; iy < gh; iy++) {
    for (var ix = 0; ix < gw; ix++) {
      var y = sh + f32(i) * bh + ((f32(iy) + 0.5) * bh) / f32(gh);
      var xx = sw + f32(j) * bw + ((f32(ix) + 0.5) * bw) / f32(gw);
      var v = vec4<f32>(0.0) * ${X('xo')};
      if (!(y < -1.0 || y > hf || xx < -1.0 || xx > wf)) {
        y = max(y, 0.0); xx = max(xx, 0.0);
        var y0 = u32(y); var x0 = u32(xx); var y1 = y0 + 1u; var x1 = x0 + 1u;
        if (y0 >= u_h() - 1u) { y0 = u_h() - 1u; y1 = y0; y = f32(y0); }
        if (x0 >= u_w() - 1u) { x0 = u_w() - 1u; x1 = x0; xx = f32(x0); }
        let ly = y - f32(y0); let lx = xx - f32(x0);
        v = vec4<f32>((1.0 - ly) * (1.0 - lx), (1.0 - ly) * lx, ly * (1.0 - lx), ly * lx) *
          vec4<f32>(${X('xo + y0 * u_w() + x0')}, ${X('xo + y0 * u_w() + x1')}, ${X('xo + y1 * u_w() + x0')}, ${X('xo + y1 * u_w() + x1')});
      }
      ${s.max ? 'acc = max(acc, max(max(v.x, v.y), max(v.z, v.w)));' : 'acc += v.x + v.y + v.z + v.w;'}
    }
  }
  out[gi] = ${store(d, s.max ? 'select(0.0, acc, gh * gw > 0)' : 'acc / f32(max(gh * gw, 1))')};`)}`,
    inputs: [x, rois, s.batch], outputs: [{ dtype: d, shape: [s.count, c, s.ph, s.pw] }], uniforms, workgroups: Math.ceil(total / WG),
  };
}
