// Feature detection for the WebAssembly CPU kernels, and the switch that forces the plain
// TypeScript kernels (LASTMILE_NO_WASM=1 in the environment, or setWasmKernels(false)).
import { buildModule, Code, Simd, T } from './emitter.js';

/** Whether the engine validates a function using `sub` (a binary f32x4 op, or a ternary one). */
function validates(sub: Simd, ternary: boolean): boolean {
  if (typeof WebAssembly !== 'object' || typeof WebAssembly.validate !== 'function') return false;
  const body = new Code().v128Zero().v128Zero();
  if (ternary) body.v128Zero();
  body.simd(sub);
  try {
    return WebAssembly.validate(buildModule([{ name: 'f', params: [], results: [T.v128], locals: [], body }]));
  } catch {
    return false;
  }
}

/** SIMD128 (Node 16.4+, every current browser). */
export const hasSimd = validates(Simd.f32x4Add, false);
/** Relaxed SIMD's fused multiply-add (Chrome 114+, Node 22+; behind a flag in Node 20). */
export const hasRelaxedSimd = hasSimd && validates(Simd.f32x4RelaxedMadd, true);

const env = typeof process === 'object' ? process.env?.LASTMILE_NO_WASM : undefined;
let enabled = hasSimd && env !== '1' && env !== 'true';

/** Routes kernels to WebAssembly (when supported) or forces the TypeScript fallbacks; returns the previous setting. */
export function setWasmKernels(on: boolean): boolean {
  const was = enabled;
  enabled = on && hasSimd;
  return was;
}

export const wasmKernels = (): boolean => enabled;

// Byte addresses are i32, so a kernel heap stays under 2 GiB of floats; bigger work stays in TypeScript.
export const MAX_FLOATS = 1 << 29;
/** MAX_FLOATS in 64 KB pages: the fixed maximum of the kernels' shared memories. */
export const MAX_PAGES = (MAX_FLOATS * 4) / 65536;

/**
 * Grows `memory` to hold at least `floats` float32 values; false (memory unchanged) when it cannot. The
 * caller remakes its views afterwards: growth detaches an unshared buffer.
 */
export function growTo(memory: WebAssembly.Memory, floats: number): boolean {
  const pages = Math.ceil((floats * 4) / 65536) - memory.buffer.byteLength / 65536;
  if (pages <= 0) return true;
  if (floats > MAX_FLOATS) return false;
  try {
    memory.grow(pages);
    return true;
  } catch {
    return false;
  }
}
