// A minimal WebAssembly binary writer: enough to build compute kernels at runtime from TypeScript
// (value types, one imported memory, functions with locals, structured loops, i32/f32 scalar and
// SIMD128 instructions). Encodings follow the WebAssembly core spec, binary format chapter.

/** Value types (plain objects rather than enums, so type-stripping and isolated compilers keep working). */
export const T = { i32: 0x7f, f32: 0x7d, v128: 0x7b } as const;
export type T = (typeof T)[keyof typeof T];

/** Unsigned LEB128 (section sizes, indices, memarg fields, SIMD sub-opcodes). */
export function uleb(v: number, out: number[] = []): number[] {
  do {
    const b = v & 0x7f;
    v >>>= 7;
    out.push(v ? b | 0x80 : b);
  } while (v);
  return out;
}

/** Signed LEB128 for i32.const immediates. */
function sleb(v: number, out: number[]): number[] {
  v |= 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && !(b & 0x40)) || (v === -1 && b & 0x40)) { out.push(b); return out; }
    out.push(b | 0x80);
  }
}

const utf8 = (s: string) => [...new TextEncoder().encode(s)];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const name = (s: string) => { const b = utf8(s); return [...uleb(b.length), ...b]; };

/** SIMD128 (0xfd-prefixed) sub-opcodes; relaxed_madd/nmadd are from the relaxed-SIMD extension. */
export const Simd = {
  load: 0x00, load32Splat: 0x09, store: 0x0b, const: 0x0c,
  i32x4Splat: 0x11, f32x4Splat: 0x13,
  i32x4ExtractLane: 0x1b, i32x4ReplaceLane: 0x1c, f32x4ExtractLane: 0x1f, f32x4ReplaceLane: 0x20,
  i32x4Eq: 0x37, i32x4GtS: 0x3b,
  f32x4Eq: 0x41, f32x4Ne: 0x42, f32x4Lt: 0x43, f32x4Gt: 0x44, f32x4Le: 0x45, f32x4Ge: 0x46,
  v128Not: 0x4d, v128And: 0x4e, v128AndNot: 0x4f, v128Or: 0x50, v128Xor: 0x51, v128Bitselect: 0x52, v128AnyTrue: 0x53,
  f32x4Ceil: 0x67, f32x4Floor: 0x68, f32x4Trunc: 0x69, f32x4Nearest: 0x6a,
  i32x4Shl: 0xab, i32x4ShrS: 0xac, i32x4ShrU: 0xad, i32x4Add: 0xae, i32x4Sub: 0xb1, i32x4Mul: 0xb5,
  i32x4MinS: 0xb6, i32x4MaxS: 0xb8,
  f32x4Abs: 0xe0, f32x4Neg: 0xe1, f32x4Sqrt: 0xe3, f32x4Add: 0xe4, f32x4Sub: 0xe5, f32x4Mul: 0xe6, f32x4Div: 0xe7,
  f32x4Min: 0xe8, f32x4Max: 0xe9, f32x4Pmin: 0xea, f32x4Pmax: 0xeb,
  i32x4TruncSatF32x4S: 0xf8, f32x4ConvertI32x4S: 0xfa,
  f32x4RelaxedMadd: 0x105, f32x4RelaxedNmadd: 0x106,
} as const;
export type Simd = (typeof Simd)[keyof typeof Simd];

/** An instruction sequence; each method appends one instruction and returns this for chaining. */
export class Code {
  readonly bytes: number[] = [];
  private op(...b: number[]): this { this.bytes.push(...b); return this; }
  get(i: number) { this.bytes.push(0x20); uleb(i, this.bytes); return this; }
  set(i: number) { this.bytes.push(0x21); uleb(i, this.bytes); return this; }
  tee(i: number) { this.bytes.push(0x22); uleb(i, this.bytes); return this; }
  i32(v: number) { this.bytes.push(0x41); sleb(v, this.bytes); return this; }
  add() { return this.op(0x6a); }
  sub() { return this.op(0x6b); }
  mul() { return this.op(0x6c); }
  eq() { return this.op(0x46); }
  ne() { return this.op(0x47); }
  eqz() { return this.op(0x45); }
  ltS() { return this.op(0x48); }
  ltU() { return this.op(0x49); }
  gtS() { return this.op(0x4a); }
  gtU() { return this.op(0x4b); }
  leS() { return this.op(0x4c); }
  geS() { return this.op(0x4e); }
  divS() { return this.op(0x6d); }
  remS() { return this.op(0x6f); }
  and() { return this.op(0x71); }
  or() { return this.op(0x72); }
  shl() { return this.op(0x74); }
  shrS() { return this.op(0x75); }
  shrU() { return this.op(0x76); }
  /** Pops (x, y, cond): x if cond is nonzero, else y. */
  select() { return this.op(0x1b); }
  drop() { return this.op(0x1a); }
  /** i32.load / i32.store with a byte offset (bit-exact 4-byte copies; alignment hint 4). */
  load32(offset = 0) { this.bytes.push(0x28, 2); uleb(offset, this.bytes); return this; }
  store32(offset = 0) { this.bytes.push(0x36, 2); uleb(offset, this.bytes); return this; }
  // ---- f32 scalars ----
  f32(v: number) { this.bytes.push(0x43, ...new Uint8Array(Float32Array.of(v).buffer)); return this; }
  f32Load(offset = 0) { this.bytes.push(0x2a, 2); uleb(offset, this.bytes); return this; }
  f32Store(offset = 0) { this.bytes.push(0x38, 2); uleb(offset, this.bytes); return this; }
  f32Lt() { return this.op(0x5d); }
  f32Gt() { return this.op(0x5e); }
  f32Abs() { return this.op(0x8b); }
  f32Neg() { return this.op(0x8c); }
  f32Floor() { return this.op(0x8e); }
  f32Sqrt() { return this.op(0x91); }
  f32Add() { return this.op(0x92); }
  f32Sub() { return this.op(0x93); }
  f32Mul() { return this.op(0x94); }
  f32Div() { return this.op(0x95); }
  f32Min() { return this.op(0x96); }
  f32Max() { return this.op(0x97); }
  /** i32.trunc_sat_f32_s: saturating, never traps (0xfc prefix). */
  i32TruncSatF32() { return this.op(0xfc, 0x00); }
  f32ConvertI32() { return this.op(0xb2); }
  i32ReinterpretF32() { return this.op(0xbc); }
  f32ReinterpretI32() { return this.op(0xbe); }
  // ---- control ----
  /** A block that `br`/`brIf` with the block's depth jumps out of (to its end); blocktype empty. */
  block(body: (c: this) => void) { this.op(0x02, 0x40); body(this); return this.op(0x0b); }
  br(depth: number) { this.bytes.push(0x0c); uleb(depth, this.bytes); return this; }
  /** Calls function `index` (functions are indexed in the order given to buildModule). */
  call(index: number) { this.bytes.push(0x10); uleb(index, this.bytes); return this; }
  ret() { return this.op(0x0f); }
  /** A loop whose body may `brIf(0)` back to its start; blocktype empty. */
  loop(body: (c: this) => void) { this.op(0x03, 0x40); body(this); return this.op(0x0b); }
  /** Pops a condition: runs `then` if nonzero, else `otherwise`. */
  ifElse(then: (c: this) => void, otherwise?: (c: this) => void) {
    this.op(0x04, 0x40);
    then(this);
    if (otherwise) { this.op(0x05); otherwise(this); }
    return this.op(0x0b);
  }
  brIf(depth: number) { this.bytes.push(0x0d); uleb(depth, this.bytes); return this; }
  /** A SIMD instruction; memory forms take (log2 alignment, byte offset) as their memarg. */
  simd(sub: Simd, memarg?: [number, number]) {
    this.bytes.push(0xfd);
    uleb(sub, this.bytes);
    if (memarg) { uleb(memarg[0], this.bytes); uleb(memarg[1], this.bytes); }
    return this;
  }
  v128Zero() { this.simd(Simd.const); for (let i = 0; i < 16; i++) this.bytes.push(0); return this; }
}

export interface Func { name: string; params: T[]; results: T[]; locals: T[]; body: Code }

/**
 * A module importing one memory as env.memory (minimum 1 page, no maximum, so any grown memory
 * matches; or, with `shared`, a shared memory whose maximum is maxPages) and exporting each function by name.
 */
export function buildModule(funcs: Func[], memory: { shared?: boolean; maxPages?: number } = {}): Uint8Array<ArrayBuffer> {
  const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
  const types = funcs.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))]);
  // Limits: flag 0 = min only; 3 = shared with a maximum (threads need a fixed-maximum shared memory).
  const limits = memory.shared ? [0x03, ...uleb(1), ...uleb(memory.maxPages ?? 65536)] : [0x00, 0x01];
  const imports = [[...name('env'), ...name('memory'), 0x02, ...limits]];
  const codes = funcs.map((f) => {
    // Locals are declared as runs of equal types, in the order the function indexes them.
    const runs: number[][] = [];
    f.locals.forEach((t, i) => (i > 0 && t === f.locals[i - 1] ? runs[runs.length - 1][0]++ : runs.push([1, t])));
    const body = [...vec(runs.map(([n, t]) => [...uleb(n), t])), ...f.body.bytes, 0x0b];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec(imports)),
    ...section(3, vec(funcs.map((_, i) => uleb(i)))),
    ...section(7, vec(funcs.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(codes)),
  ]);
}
