// Image classifiers shaped like torchvision's ONNX exports (opset 17 unless noted), shrunk to 32x32
// inputs and tens of channels. Input 'input' is [batch, 3, H, W] with a symbolic batch; one output, logits [batch, 10].
import { randomF32, rng } from '../helpers/oracle.js';
import { Net, type ModelCase } from './common.js';

/**
 * gain scales the He bound. Random BN statistics do not renormalise, and SiLU/HardSwish and sigmoid gates
 * shrink activations layer after layer, so those nets use gains of 1.2-2 (chosen by measuring activation RMS,
 * which stays between about 0.2 and 10 in every net here).
 */
interface ConvOpts { k: number; s?: number; p?: number; g?: number; bias?: boolean; gain?: number }

/** nn.Conv2d as torch.onnx writes it: every attribute spelled out, weight [cout, cin/g, k, k], He-scaled. */
function conv(n: Net, x: string, cin: number, cout: number, o: ConvOpts): string {
  const { k, s = 1, g = 1, bias = false, gain = 1 } = o, p = o.p ?? (k - 1) >> 1;
  const ins = [x, n.he('conv_w', [cout, cin / g, k, k], (cin / g) * k * k / (gain * gain))];
  if (bias) ins.push(n.uniform('conv_b', [cout], -0.1, 0.1));
  return n.op('Conv', ins, { dilations: [1, 1], group: g, kernel_shape: [k, k], pads: [p, p, p, p], strides: [s, s] });
}

/** Inference-mode BatchNormalization with non-trivial running statistics (nothing folds to identity). */
function bn(n: Net, x: string, c: number, gain = 1): string {
  const p = (name: string, lo: number, hi: number) => n.uniform(name, [c], lo, hi);
  return n.op('BatchNormalization', [x, p('bn_scale', 0.8 * gain, 1.2 * gain), p('bn_bias', -0.1, 0.1), p('bn_mean', -0.1, 0.1), p('bn_var', 0.5, 1.5)], { epsilon: 1e-5, momentum: 0.9 });
}

/** torchvision's head: adaptive_avg_pool2d(1) -> flatten(1) -> Linear, exported as GlobalAveragePool, Flatten, Gemm(transB=1). */
function poolFlattenGemm(n: Net, x: string, c: number, classes = 10): string {
  return n.gemm(n.op('Flatten', [n.op('GlobalAveragePool', [x])], { axis: 1 }), c, classes);
}

function imageCase(n: Net, logits: string, hw: number, opset = 17): ModelCase {
  n.g.output(logits, 'float32', ['batch', 10]);
  return { bytes: n.model(opset), feeds: (b, s) => ({ input: randomF32([b, 3, hw, hw], rng(1000 + 10 * b + s)) }) };
}

/** ResNet-18 (BasicBlock) or ResNet-50 (Bottleneck, stride on the 3x3 as in torchvision v1.5) in miniature. */
export function resnet(kind: 'basic' | 'bottleneck'): ModelCase {
  const n = new Net(kind === 'basic' ? 11 : 12);
  const x = n.g.input('input', 'float32', ['batch', 3, 32, 32]);
  const cbr = (h: string, cin: number, cout: number, o: ConvOpts) => n.relu(bn(n, conv(n, h, cin, cout, o), cout));
  // Stem: 7x7/2 conv (no bias: BN follows), BN, ReLU, 3x3/2 max-pool with padding=1 -> 8x8.
  let h = cbr(x, 3, 16, { k: 7, s: 2, p: 3 });
  h = n.op('MaxPool', [h], { ceil_mode: 0, dilations: [1, 1], kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] });
  const exp = kind === 'basic' ? 1 : 4;
  const stages: [width: number, stride: number][] = kind === 'basic' ? [[16, 1], [16, 1], [32, 2], [64, 2]] : [[8, 1], [16, 2], [32, 2]];
  let cin = 16;
  for (const [width, stride] of stages) {
    const cout = width * exp;
    let y: string;
    if (kind === 'basic') y = bn(n, conv(n, cbr(h, cin, width, { k: 3, s: stride }), width, width, { k: 3 }), width);
    else y = bn(n, conv(n, cbr(cbr(h, cin, width, { k: 1 }), width, width, { k: 3, s: stride }), width, cout, { k: 1 }), cout);
    // Downsample shortcut: 1x1 strided conv + BN whenever the shape changes, identity otherwise.
    const shortcut = stride !== 1 || cin !== cout ? bn(n, conv(n, h, cin, cout, { k: 1, s: stride, p: 0 }), cout) : h;
    h = n.relu(n.add(y, shortcut));
    cin = cout;
  }
  return imageCase(n, poolFlattenGemm(n, h, cin), 32);
}

/** MobileNetV2: ReLU6 as Clip with min/max inputs (opset >= 11), depthwise convs, linear bottlenecks, residual Add. */
export function mobilenetV2(): ModelCase {
  const n = new Net(21);
  const x = n.g.input('input', 'float32', ['batch', 3, 32, 32]);
  const relu6 = (h: string) => n.op('Clip', [h, n.f32(0), n.f32(6)]);
  const cbr6 = (h: string, cin: number, cout: number, o: ConvOpts) => relu6(bn(n, conv(n, h, cin, cout, o), cout));
  let h = cbr6(x, 3, 16, { k: 3, s: 2 });
  let cin = 16;
  // (expand ratio t, out channels c, stride s), the first block without expansion as in the real net.
  for (const [t, c, s] of [[1, 8, 1], [6, 12, 2], [6, 12, 1], [6, 16, 2], [6, 16, 1]]) {
    const hid = cin * t;
    let y = t === 1 ? h : cbr6(h, cin, hid, { k: 1 });
    y = cbr6(y, hid, hid, { k: 3, s, g: hid });
    y = bn(n, conv(n, y, hid, c, { k: 1 }), c); // linear bottleneck: no activation
    h = s === 1 && cin === c ? n.add(h, y) : y;
    cin = c;
  }
  h = cbr6(h, cin, 64, { k: 1 });
  return imageCase(n, poolFlattenGemm(n, h, 64), 32);
}

/**
 * MobileNetV3-Small: exported in eval mode, so BN is folded into conv biases. HardSwish activations,
 * squeeze-excite gated by HardSigmoid(alpha=1/6, beta=0.5), 5x5 depthwise convs, Linear-HardSwish-Linear head.
 */
export function mobilenetV3(): ModelCase {
  const n = new Net(31);
  const x = n.g.input('input', 'float32', ['batch', 3, 32, 32]);
  const hswish = (h: string) => n.op('HardSwish', [h]);
  const cb = (h: string, cin: number, cout: number, o: ConvOpts) => conv(n, h, cin, cout, { ...o, bias: true });
  const divisible8 = (v: number) => Math.max(8, Math.round(v / 8) * 8);
  let h = hswish(cb(x, 3, 16, { k: 3, s: 2 }));
  let cin = 16;
  const cfg: [k: number, exp: number, out: number, se: boolean, hs: boolean, s: number][] =
    [[3, 16, 16, true, false, 2], [3, 48, 24, false, false, 2], [3, 64, 24, false, false, 1], [5, 96, 40, true, true, 2], [5, 120, 40, true, true, 1]];
  for (const [k, exp, out, se, hs, s] of cfg) {
    const [act, gain] = hs ? [hswish, 1.3] : [(t: string) => n.relu(t), 1];
    let y = exp === cin ? h : act(cb(h, cin, exp, { k: 1, gain }));
    y = act(cb(y, exp, exp, { k, s, g: exp, gain }));
    if (se) {
      const sq = divisible8(exp / 4);
      // Pooled activations are small: larger SE weights make the gates actually vary across channels.
      const gate = n.op('HardSigmoid', [cb(n.relu(cb(n.op('GlobalAveragePool', [y]), exp, sq, { k: 1, gain: 2 })), sq, exp, { k: 1, gain: 2 })], { alpha: 1 / 6, beta: 0.5 });
      y = n.mul(gate, y);
    }
    y = cb(y, exp, out, { k: 1, gain: se ? 1.5 : 1 });
    h = s === 1 && cin === out ? n.add(y, h) : y;
    cin = out;
  }
  h = hswish(cb(h, cin, 96, { k: 1, gain: 1.3 }));
  const feat = n.op('Flatten', [n.op('GlobalAveragePool', [h])], { axis: 1 });
  return imageCase(n, n.gemm(hswish(n.gemm(feat, 96, 128)), 128, 10), 32);
}

/** EfficientNet-B0 style MBConv: SiLU as Sigmoid*Mul, squeeze-excite GAP -> Conv -> SiLU -> Conv -> Sigmoid -> Mul. */
export function efficientnet(): ModelCase {
  const n = new Net(41);
  const x = n.g.input('input', 'float32', ['batch', 3, 32, 32]);
  const cbs = (h: string, cin: number, cout: number, o: ConvOpts) => n.silu(bn(n, conv(n, h, cin, cout, o), cout, 1.2));
  let h = cbs(x, 3, 16, { k: 3, s: 2 });
  let cin = 16;
  for (const [e, k, s, out] of [[1, 3, 1, 8], [6, 3, 2, 12], [6, 5, 2, 20], [6, 5, 1, 20]]) {
    const hid = cin * e, sq = Math.max(1, Math.floor(cin / 4));
    let y = e === 1 ? h : cbs(h, cin, hid, { k: 1 });
    y = cbs(y, hid, hid, { k, s, g: hid });
    const se = (t: string, cin: number, cout: number) => conv(n, t, cin, cout, { k: 1, bias: true, gain: 2 });
    const scale = n.op('Sigmoid', [se(n.silu(se(n.op('GlobalAveragePool', [y]), hid, sq)), sq, hid)]);
    y = bn(n, conv(n, n.mul(scale, y), hid, out, { k: 1 }), out, 1.5);
    h = s === 1 && cin === out ? n.add(y, h) : y; // stochastic depth is the identity at inference
    cin = out;
  }
  return imageCase(n, poolFlattenGemm(n, cbs(h, cin, 64, { k: 1 }), 64), 32);
}

/**
 * SqueezeNet 1.1: fire modules (squeeze 1x1, then expand 1x1 and 3x3 concatenated on channels), MaxPool
 * with ceil_mode=1, and the conv classifier Dropout -> Conv -> ReLU -> AveragePool -> Flatten. The 34x34
 * input makes every ceil_mode pool produce one more row/column than floor would (16 -> 8 -> 4 -> 2).
 */
export function squeezenet(): ModelCase {
  const n = new Net(51);
  const x = n.g.input('input', 'float32', ['batch', 3, 34, 34]);
  const cr = (h: string, cin: number, cout: number, k: number, p = 0, s = 1) => n.relu(conv(n, h, cin, cout, { k, p, s, bias: true }));
  const pool = (h: string) => n.op('MaxPool', [h], { ceil_mode: 1, dilations: [1, 1], kernel_shape: [3, 3], pads: [0, 0, 0, 0], strides: [2, 2] });
  const fire = (h: string, cin: number, sq: number, e: number) => {
    const s = cr(h, cin, sq, 1);
    return n.op('Concat', [cr(s, sq, e, 1), cr(s, sq, e, 3, 1)], { axis: 1 });
  };
  let h = pool(cr(x, 3, 32, 3, 0, 2));
  h = pool(fire(fire(h, 32, 8, 16), 32, 8, 16));
  h = pool(fire(fire(h, 32, 12, 24), 48, 12, 24));
  h = fire(h, 48, 16, 32);
  h = n.op('Dropout', [h, n.f32(0.5)]); // ratio as an input (opset >= 12); identity at inference
  h = n.op('AveragePool', [cr(h, 64, 10, 1)], { ceil_mode: 0, count_include_pad: 0, kernel_shape: [2, 2], pads: [0, 0, 0, 0], strides: [2, 2] });
  return imageCase(n, n.op('Flatten', [h], { axis: 1 }), 34);
}

/**
 * ShuffleNetV2 at opset 18: channel_shuffle traced as Reshape [b, g, c/g, h, w] -> Transpose -> Reshape [b, -1, h, w]
 * with every size read back through Shape/Gather/Unsqueeze/Concat (and c/g as an int64 Div) because the batch
 * is dynamic; x.chunk(2, dim=1) as Split with a 'split' input; head x.mean([2, 3]) as ReduceMean with axes input.
 */
export function shufflenetV2(): ModelCase {
  const n = new Net(61);
  const x = n.g.input('input', 'float32', ['batch', 3, 32, 32]);
  const cb = (h: string, cin: number, cout: number, o: ConvOpts) => bn(n, conv(n, h, cin, cout, o), cout);
  const shuffle = (h: string, g: number) => {
    const [b, hh, w] = [n.dim(h, 0), n.dim(h, 2), n.dim(h, 3)];
    const c = n.op('Gather', [n.op('Shape', [h]), n.i64(1)], { axis: 0 });
    const cpg = n.op('Unsqueeze', [n.op('Div', [c, n.i64(g)]), n.i64([0])]);
    const grouped = n.op('Reshape', [h, n.op('Concat', [b, n.i64([g]), cpg, hh, w], { axis: 0 })]);
    const t = n.op('Transpose', [grouped], { perm: [0, 2, 1, 3, 4] });
    return n.op('Reshape', [t, n.op('Concat', [b, n.i64([-1]), hh, w], { axis: 0 })]);
  };
  const unit = (h: string, cin: number, cout: number, stride: number) => {
    const bf = cout / 2;
    const branch2 = (t: string, c: number) => n.relu(cb(cb(n.relu(cb(t, c, bf, { k: 1 })), bf, bf, { k: 3, s: stride, g: bf }), bf, bf, { k: 1 }));
    let out: string;
    if (stride === 1) {
      const [x1, x2] = n.ops('Split', [h, n.i64([bf, bf])], { axis: 1 }, 2);
      out = n.op('Concat', [x1, branch2(x2, bf)], { axis: 1 });
    } else {
      const b1 = n.relu(cb(cb(h, cin, cin, { k: 3, s: 2, g: cin }), cin, bf, { k: 1 }));
      out = n.op('Concat', [b1, branch2(h, cin)], { axis: 1 });
    }
    return shuffle(out, 2);
  };
  let h = n.relu(cb(x, 3, 16, { k: 3, s: 2 }));
  h = n.op('MaxPool', [h], { ceil_mode: 0, dilations: [1, 1], kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] });
  let cin = 16;
  for (const [cout, repeats] of [[32, 2], [64, 2]]) {
    h = unit(h, cin, cout, 2);
    for (let r = 1; r < repeats; r++) h = unit(h, cout, cout, 1);
    cin = cout;
  }
  h = n.relu(cb(h, cin, 128, { k: 1 }));
  h = n.op('ReduceMean', [h, n.i64([2, 3])], { keepdims: 0 });
  return imageCase(n, n.gemm(h, 128, 10), 32, 18);
}
