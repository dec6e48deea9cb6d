// The emitter's encodings, checked by running each instruction: a wrong opcode either fails validation
// or computes something else, so every case compares a result, not just that the module validates.
import { describe, expect, it } from 'vitest';
import { buildModule, Code, Simd, T } from '../kernels/wasm/emitter.js';
import { hasSimd } from '../kernels/wasm/simd.js';

const mem = () => new WebAssembly.Memory({ initial: 1 });

/** Runs f(a, b) with one f32 result. */
function scalarF32(body: (c: Code) => void, a: number, b: number): number {
  const c = new Code();
  body(c);
  const m = new WebAssembly.Instance(new WebAssembly.Module(buildModule([{ name: 'f', params: [T.f32, T.f32], results: [T.f32], locals: [], body: c }])), { env: { memory: mem() } });
  return (m.exports.f as (a: number, b: number) => number)(a, b);
}

/** Runs a v128 op over memory: inputs at bytes 0 and 16, the result stored at 32, read back as floats. */
function vecOp(push: (c: Code) => void, a: number[], b: number[], view: 'f32' | 'i32' = 'f32'): number[] {
  const memory = mem(), f = new Float32Array(memory.buffer), i = new Int32Array(memory.buffer);
  (view === 'f32' ? f : i).set([...a, ...b]);
  const c = new Code().i32(32);
  push(c);
  c.simd(Simd.store, [4, 0]);
  const m = new WebAssembly.Instance(new WebAssembly.Module(buildModule([{ name: 'f', params: [], results: [], locals: [], body: c }])), { env: { memory } });
  (m.exports.f as () => void)();
  return [...(view === 'f32' ? f : i).subarray(8, 12)];
}
const ld = (c: Code, at: number) => c.i32(at).simd(Simd.load, [4, 0]);

describe('wasm emitter', () => {
  it('encodes f32 scalar arithmetic', () => {
    expect(scalarF32((c) => c.get(0).get(1).f32Sub(), 5, 3)).toBe(2);
    expect(scalarF32((c) => c.get(0).get(1).f32Div(), 6, 4)).toBe(1.5);
    expect(scalarF32((c) => c.get(0).get(1).f32Min(), 6, 4)).toBe(4);
    expect(scalarF32((c) => c.get(0).get(1).f32Max(), 6, 4)).toBe(6);
    expect(scalarF32((c) => c.get(0).f32Sqrt(), 9, 0)).toBe(3);
    expect(scalarF32((c) => c.get(0).f32Neg().f32Abs(), 2.5, 0)).toBe(2.5);
    expect(scalarF32((c) => c.get(0).f32Floor(), -2.5, 0)).toBe(-3);
    expect(scalarF32((c) => c.f32(0.75).get(0).f32Mul(), 2, 0)).toBe(1.5);
    expect(scalarF32((c) => c.get(0).i32TruncSatF32().i32(3).shl().f32ConvertI32(), 2.7, 0)).toBe(16);
    expect(scalarF32((c) => c.get(0).i32ReinterpretF32().i32(1).add().f32ReinterpretI32(), 1, 0)).toBe(1 + 2 ** -23);
    expect(scalarF32((c) => c.get(0).get(1).get(0).get(1).f32Lt().select(), 4, 7)).toBe(4);
  });

  it('encodes blocks, branches and calls', () => {
    // g(x) = x * 2; f(n) = sum of g(i) for i < n, leaving the block once i reaches n.
    const g = new Code().get(0).i32(1).shl();
    const f = new Code().i32(0).set(1).i32(0).set(2).block((c) => {
      c.loop(() => {
        c.get(1).get(0).geS().brIf(1);
        c.get(2).get(1).call(1).add().set(2).get(1).i32(1).add().set(1).br(0);
      });
    }).get(2);
    const m = new WebAssembly.Instance(new WebAssembly.Module(buildModule([
      { name: 'f', params: [T.i32], results: [T.i32], locals: [T.i32, T.i32], body: f },
      { name: 'g', params: [T.i32], results: [T.i32], locals: [], body: g },
    ])), { env: { memory: mem() } });
    expect((m.exports.f as (n: number) => number)(5)).toBe(20);
  });

  it.runIf(hasSimd)('encodes f32x4 and i32x4 operations', () => {
    const a = [1, -2, 3.5, -4], b = [2, 2, -1, 0.5];
    const bin = (op: number) => vecOp((c) => { ld(c, 0); ld(c, 16); c.simd(op as Simd); }, a, b);
    expect(bin(Simd.f32x4Sub)).toEqual([-1, -4, 4.5, -4.5]);
    expect(bin(Simd.f32x4Div)).toEqual([0.5, -1, -3.5, -8]);
    expect(bin(Simd.f32x4Min)).toEqual([1, -2, -1, -4]);
    expect(bin(Simd.f32x4Max)).toEqual([2, 2, 3.5, 0.5]);
    expect(bin(Simd.f32x4Pmin)).toEqual([1, -2, -1, -4]);
    expect(bin(Simd.f32x4Pmax)).toEqual([2, 2, 3.5, 0.5]);
    const un = (op: number) => vecOp((c) => { ld(c, 0); c.simd(op as Simd); }, [2.5, -2.5, 9, -0.5], []);
    expect(un(Simd.f32x4Abs)).toEqual([2.5, 2.5, 9, 0.5]);
    expect(un(Simd.f32x4Neg)).toEqual([-2.5, 2.5, -9, 0.5]);
    expect(un(Simd.f32x4Floor)).toEqual([2, -3, 9, -1]);
    expect(un(Simd.f32x4Ceil)).toEqual([3, -2, 9, -0]);
    expect(un(Simd.f32x4Trunc)).toEqual([2, -2, 9, -0]);
    expect(un(Simd.f32x4Nearest)).toEqual([2, -2, 9, -0]);
    expect(vecOp((c) => { ld(c, 0); c.simd(Simd.f32x4Sqrt); }, [4, 9, 16, 25], [])).toEqual([2, 3, 4, 5]);
    // Comparisons give all-ones lanes, read back as int -1.
    const cmp = (op: number) => vecOp((c) => { ld(c, 0); ld(c, 16); c.simd(op as Simd); }, a, b).map((x) => (Number.isNaN(x) ? -1 : x));
    expect(cmp(Simd.f32x4Lt)).toEqual([-1, -1, 0, -1]);
    expect(cmp(Simd.f32x4Gt)).toEqual([0, 0, -1, 0]);
    expect(cmp(Simd.f32x4Le)).toEqual([-1, -1, 0, -1]);
    expect(cmp(Simd.f32x4Ge)).toEqual([0, 0, -1, 0]);
    expect(cmp(Simd.f32x4Eq)).toEqual([0, 0, 0, 0]);
    expect(cmp(Simd.f32x4Ne)).toEqual([-1, -1, -1, -1]);
    // Bitselect takes a's bits where the mask is set: min through a comparison mask.
    expect(vecOp((c) => { ld(c, 0); ld(c, 16); ld(c, 0); ld(c, 16); c.simd(Simd.f32x4Lt).simd(Simd.v128Bitselect); }, a, b)).toEqual([1, -2, -1, -4]);
    const ints = (op: number, x: number[], y: number[]) => vecOp((c) => { ld(c, 0); ld(c, 16); c.simd(op as Simd); }, x, y, 'i32');
    expect(ints(Simd.i32x4Add, [1, 2, 3, 4], [10, 20, 30, 40])).toEqual([11, 22, 33, 44]);
    expect(ints(Simd.i32x4Sub, [1, 2, 3, 4], [10, 20, 30, 40])).toEqual([-9, -18, -27, -36]);
    expect(ints(Simd.i32x4Mul, [1, 2, 3, 4], [10, 20, 30, 40])).toEqual([10, 40, 90, 160]);
    expect(ints(Simd.i32x4MinS, [1, -2, 3, 4], [0, 2, 3, 5])).toEqual([0, -2, 3, 4]);
    expect(ints(Simd.i32x4MaxS, [1, -2, 3, 4], [0, 2, 3, 5])).toEqual([1, 2, 3, 5]);
    expect(ints(Simd.i32x4Eq, [1, 2, 3, 4], [1, 0, 3, 0])).toEqual([-1, 0, -1, 0]);
    expect(ints(Simd.i32x4GtS, [1, 2, 3, 4], [0, 2, 4, 0])).toEqual([-1, 0, 0, -1]);
    expect(ints(Simd.v128And, [12, 10, -1, 0], [10, 6, 7, 5])).toEqual([8, 2, 7, 0]);
    expect(ints(Simd.v128Or, [12, 10, -1, 0], [10, 6, 7, 5])).toEqual([14, 14, -1, 5]);
    expect(ints(Simd.v128Xor, [12, 10, -1, 0], [10, 6, 7, 5])).toEqual([6, 12, -8, 5]);
    expect(ints(Simd.v128AndNot, [12, 10, -1, 0], [10, 6, 7, 5])).toEqual([4, 8, -8, 0]);
    const shift = (op: number) => vecOp((c) => { ld(c, 0); c.i32(2).simd(op as Simd); }, [8, -8, 1, 256], [], 'i32');
    expect(shift(Simd.i32x4Shl)).toEqual([32, -32, 4, 1024]);
    expect(shift(Simd.i32x4ShrS)).toEqual([2, -2, 0, 64]);
    expect(shift(Simd.i32x4ShrU)).toEqual([2, 1073741822, 0, 64]);
    expect(vecOp((c) => { ld(c, 0); c.simd(Simd.v128Not); }, [0, -1, 5, 1], [], 'i32')).toEqual([-1, 0, -6, -2]);
    // Conversions both ways; splats and lanes.
    expect(vecOp((c) => { ld(c, 0); c.simd(Simd.i32x4TruncSatF32x4S).simd(Simd.f32x4ConvertI32x4S); }, [1.7, -1.7, 3e10, 0], [])).toEqual([1, -1, 2147483648, 0]);
    expect(vecOp((c) => { c.i32(7).simd(Simd.i32x4Splat); }, [], [], 'i32')).toEqual([7, 7, 7, 7]);
    expect(vecOp((c) => { ld(c, 0); c.f32(9).simd(Simd.f32x4ReplaceLane); c.bytes.push(2); }, [1, 2, 3, 4], [])).toEqual([1, 2, 9, 4]);
    expect(vecOp((c) => { ld(c, 0); c.simd(Simd.f32x4ExtractLane); c.bytes.push(3); c.simd(Simd.f32x4Splat); }, [1, 2, 3, 4], [])).toEqual([4, 4, 4, 4]);
    expect(vecOp((c) => { ld(c, 0); c.simd(Simd.i32x4ExtractLane); c.bytes.push(1); c.simd(Simd.i32x4Splat); }, [5, 6, 7, 8], [], 'i32')).toEqual([6, 6, 6, 6]);
    expect(vecOp((c) => { ld(c, 0); c.i32(9).simd(Simd.i32x4ReplaceLane); c.bytes.push(0); }, [5, 6, 7, 8], [], 'i32')).toEqual([9, 6, 7, 8]);
  });

  it('declares a shared memory with its maximum', () => {
    const shared = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
    const mod = new WebAssembly.Module(buildModule([{ name: 'f', params: [], results: [T.i32], locals: [], body: new Code().i32(0).load32() }], { shared: true, maxPages: 4 }));
    new Int32Array(shared.buffer)[0] = 42;
    expect((new WebAssembly.Instance(mod, { env: { memory: shared } }).exports.f as () => number)()).toBe(42);
  });
});
