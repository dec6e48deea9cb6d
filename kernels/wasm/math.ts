// JS entry points of the WebAssembly SIMD math kernels (built by math-module.ts). Data lives in JS
// Float32Arrays, so each call copies through a fixed staging area of wasm memory with TypedArray.set
// (memcpy speed): memory stays bounded whatever the tensor size. Every entry point returns false,
// having done nothing, when it does not apply (no SIMD, kernels switched off, not float32, too
// small to pay for the call), and the caller runs its TypeScript kernel.
import { AT, mathModule, PAGES, STAGE } from './math-module.js';
import { hasSimd, wasmKernels } from './simd.js';

type F = (...args: number[]) => number;
type Exports = Record<'rowMax' | 'expSum' | 'expSumStore' | 'rowSum' | 'sumSqDev' | 'scale' | 'sub2' | 'lnAffine' | 'softmax' | 'logSoftmaxStats' | 'subRows' | 'layerNorm', F>;

// Byte addresses of the areas.
const DATA = AT.data * 4, STATS = AT.stats * 4, SCALE = AT.scale * 4, BIAS = AT.bias * 4;

/** One instance over its own fixed memory: statistics, scale and bias rows, and the data stage. */
class WasmMath {
  private readonly heap: Float32Array;
  private readonly fn: Exports;

  constructor() {
    const memory = new WebAssembly.Memory({ initial: PAGES });
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(mathModule()), { env: { memory } });
    this.fn = exports as unknown as Exports;
    this.heap = new Float32Array(memory.buffer);
  }

  softmax(x: Float32Array, out: Float32Array, rows: number, n: number, log: boolean): void {
    if (n > STAGE) { for (let r = 0; r < rows; r++) this.longSoftmax(x, out, r * n, n, log); return; }
    const heap = this.heap, per = Math.floor(STAGE / n);
    for (let r = 0; r < rows; r += per) {
      const k = Math.min(per, rows - r), lo = r * n, len = k * n;
      heap.set(x.subarray(lo, lo + len), AT.data);
      if (log) {
        this.fn.logSoftmaxStats(DATA, k, n, STATS);
        for (let i = 0, at = AT.stats + 1; i < k; i++, at += 2) heap[at] = Math.log(heap[at]);
        this.fn.subRows(DATA, k, n, STATS);
      } else {
        this.fn.softmax(DATA, k, n);
      }
      out.set(heap.subarray(AT.data, AT.data + len), lo);
    }
  }

  /** One row longer than the stage, in three chunked passes: max, sum of exponentials, normalise. */
  private longSoftmax(x: Float32Array, out: Float32Array, base: number, n: number, log: boolean): void {
    let max = -Infinity, sum = 0;
    this.chunks(x, base, n, (len) => { max = Math.max(max, this.fn.rowMax(DATA, len)); });
    this.chunks(x, base, n, (len, at) => {
      sum += (log ? this.fn.expSum : this.fn.expSumStore)(DATA, len, max);
      if (!log) out.set(this.heap.subarray(AT.data, AT.data + len), base + at);
    });
    this.chunks(log ? x : out, base, n, (len, at) => {
      if (log) this.fn.sub2(DATA, len, max, Math.log(sum));
      else this.fn.scale(DATA, len, 1 / sum);
      out.set(this.heap.subarray(AT.data, AT.data + len), base + at);
    });
  }

  /** Copies x[base + at, +len) into the data stage for each chunk of n floats and calls body(len, at). */
  private chunks(x: Float32Array, base: number, n: number, body: (len: number, at: number) => void): void {
    for (let at = 0; at < n; at += STAGE) {
      const len = Math.min(STAGE, n - at);
      this.heap.set(x.subarray(base + at, base + at + len), AT.data);
      body(len, at);
    }
  }

  layerNorm(x: Float32Array, y: Float32Array, rows: number, n: number, eps: number, scale: Float32Array, bias: Float32Array | undefined, mean: Float64Array, inv: Float64Array): void {
    const heap = this.heap;
    if (n > STAGE) { for (let r = 0; r < rows; r++) this.longLayerNorm(x, y, r * n, n, eps, scale, bias, mean, inv, r); return; }
    heap.set(scale, AT.scale);
    if (bias) heap.set(bias, AT.bias);
    else heap.fill(0, AT.bias, AT.bias + n);
    const per = Math.floor(STAGE / n);
    for (let r = 0; r < rows; r += per) {
      const k = Math.min(per, rows - r), lo = r * n, len = k * n;
      heap.set(x.subarray(lo, lo + len), AT.data);
      this.fn.layerNorm(DATA, k, n, eps, SCALE, BIAS, STATS);
      y.set(heap.subarray(AT.data, AT.data + len), lo);
      for (let i = 0; i < k; i++) { mean[r + i] = heap[AT.stats + 2 * i]; inv[r + i] = heap[AT.stats + 2 * i + 1]; }
    }
  }

  /** Sums of `rows` contiguous rows of n floats (rows longer than the stage in chunks, added in float64). */
  rowSums(x: Float32Array, rows: number, n: number, out: Float32Array | Float64Array, scale: number): void {
    const per = Math.max(1, Math.floor(STAGE / n));
    for (let r = 0; r < rows; r += per) {
      const k = Math.min(per, rows - r);
      if (n > STAGE) { let t = 0; this.chunks(x, r * n, n, (len) => { t += this.fn.rowSum(DATA, len); }); out[r] = t * scale; continue; }
      this.heap.set(x.subarray(r * n, (r + k) * n), AT.data);
      for (let i = 0; i < k; i++) out[r + i] = this.fn.rowSum(DATA + 4 * i * n, n) * scale;
    }
  }

  /** One row longer than the stage: chunk sums (added in float64) for the mean, then the variance, then the affine pass. */
  private longLayerNorm(x: Float32Array, y: Float32Array, base: number, n: number, eps: number, scale: Float32Array, bias: Float32Array | undefined,
    mean: Float64Array, inv: Float64Array, r: number): void {
    let s = 0, v = 0;
    this.chunks(x, base, n, (len) => { s += this.fn.rowSum(DATA, len); });
    const m = Math.fround(s / n);
    this.chunks(x, base, n, (len) => { v += this.fn.sumSqDev(DATA, len, m); });
    const k = Math.fround(1 / Math.sqrt(v / n + eps));
    if (!bias) this.heap.fill(0, AT.bias, AT.bias + STAGE);
    this.chunks(x, base, n, (len, at) => {
      this.heap.set(scale.subarray(at, at + len), AT.scale);
      if (bias) this.heap.set(bias.subarray(at, at + len), AT.bias);
      this.fn.lnAffine(DATA, len, m, k, SCALE, BIAS);
      y.set(this.heap.subarray(AT.data, AT.data + len), base + at);
    });
    mean[r] = m; inv[r] = k;
  }
}

// Built on first use; null when instantiation failed (a page whose CSP forbids WebAssembly compilation).
let shared: WasmMath | null | undefined;

function instance(): WasmMath | null {
  if (shared === undefined) {
    try {
      shared = hasSimd ? new WasmMath() : null;
    } catch {
      shared = null;
    }
  }
  return shared;
}

const ready = (): WasmMath | null => (wasmKernels() ? instance() : null);

// Below this many values the fixed cost of a call (copies, subarrays, the JS-to-wasm transition)
// outweighs the faster arithmetic: measured, the two broke even near 16 elements for a softmax row, and
// wasm was 2-5x faster from 64 on (bench/wasm-math.ts times the large sizes).
export const MIN_ROWS = 32;
/** Softmax (or LogSoftmax) of `rows` contiguous float32 rows of n elements; false when it does not apply. */
export function softmaxWasm(x: Float32Array, out: Float32Array, rows: number, n: number, log: boolean): boolean {
  if (rows * n < MIN_ROWS) return false;
  const m = ready();
  if (!m) return false;
  m.softmax(x, out, rows, n, log);
  return true;
}

/**
 * LayerNormalization of `rows` contiguous float32 rows of n elements: y = (x - mean) / sqrt(var + eps)
 * * scale + bias, with scale and bias (optional) of n values; each row's mean and 1/std go to mean and
 * inv. False when it does not apply.
 */
export function layerNormWasm(x: Float32Array, y: Float32Array, rows: number, n: number, eps: number, scale: Float32Array, bias: Float32Array | undefined,
  mean: Float64Array, inv: Float64Array): boolean {
  if (rows * n < MIN_ROWS || scale.length !== n || (bias && bias.length !== n)) return false;
  const m = ready();
  if (!m) return false;
  m.layerNorm(x, y, rows, n, eps, scale, bias, mean, inv);
  return true;
}

/** out[r] = scale * (sum of row r) for `rows` contiguous float32 rows of n (GlobalAveragePool's means); false when it does not apply. */
export function rowSumsWasm(x: unknown, rows: number, n: number, out: unknown, scale: number): boolean {
  if (n < MIN_ROWS || !(x instanceof Float32Array) || !(out instanceof Float32Array || out instanceof Float64Array)) return false;
  const m = ready();
  if (!m) return false;
  m.rowSums(x, rows, n, out, scale);
  return true;
}
