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

/** SIMD128 (0xfd-prefixed) sub-opcodes used here; relaxed_madd is from the relaxed-SIMD extension. */
export const Simd = {
  load: 0x00, load32Splat: 0x09, store: 0x0b, const: 0x0c, f32x4Splat: 0x13,
  f32x4Add: 0xe4, f32x4Mul: 0xe6, f32x4RelaxedMadd: 0x105,
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
  ltU() { return this.op(0x49); }
  gtU() { return this.op(0x4b); }
  /** Pops (x, y, cond): x if cond is nonzero, else y. */
  select() { return this.op(0x1b); }
  /** i32.load / i32.store with a byte offset (bit-exact 4-byte copies; alignment hint 4). */
  load32(offset = 0) { this.bytes.push(0x28, 2); uleb(offset, this.bytes); return this; }
  store32(offset = 0) { this.bytes.push(0x36, 2); uleb(offset, this.bytes); return this; }
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
 * matches) and exporting each function by name.
 */
export function buildModule(funcs: Func[]): Uint8Array<ArrayBuffer> {
  const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
  const types = funcs.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))]);
  const imports = [[...name('env'), ...name('memory'), 0x02, 0x00, 0x01]];
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
