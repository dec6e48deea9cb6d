// WGSL building blocks shared by every GPU program: declarations of bindings and uniforms, the entry
// point with a flat global index, dtype mapping, and index math driven by shape/stride uniforms (so one
// pipeline serves every shape of a given rank).
import type { DType } from '../../engine/dtype.js';
import type { Uniform, UniformType } from './runner.js';

/** Integers narrower than 32 bits (8- and 16-bit, and the sub-byte ones the CPU holds unpacked) live in
 *  one 32-bit lane per element: 4x the memory of int8, but every kernel indexes, loads and computes them
 *  like int32/uint32 with no byte packing, and the values are exact. Width in bits, and signedness. */
export const NARROW_INTS: Readonly<Partial<Record<DType, { bits: number; signed: boolean }>>> = {
  int8: { bits: 8, signed: true }, uint8: { bits: 8, signed: false }, int16: { bits: 16, signed: true }, uint16: { bits: 16, signed: false },
  int4: { bits: 4, signed: true }, uint4: { bits: 4, signed: false }, int2: { bits: 2, signed: true }, uint2: { bits: 2, signed: false },
};

/** [lo, hi] of an integer dtype held in 32-bit lanes (int32/uint32 and the narrow ones). */
export function intRange(d: DType): [number, number] | undefined {
  const n = NARROW_INTS[d];
  if (n) return n.signed ? [-(2 ** (n.bits - 1)), 2 ** (n.bits - 1) - 1] : [0, 2 ** n.bits - 1];
  return d === 'int32' ? [-(2 ** 31), 2 ** 31 - 1] : d === 'uint32' ? [0, 2 ** 32 - 1] : undefined;
}

/** Storage type of each GPU dtype: bool is a u32 0/1, int64 a vec2<u32> (low, high) word pair, narrow
 *  integers an i32/u32 lane (see NARROW_INTS). */
export function storageType(d: DType): string {
  switch (d) {
    case 'float32': return 'f32';
    case 'float16': return 'f16';
    case 'int32': return 'i32';
    case 'uint32': case 'bool': return 'u32';
    case 'int64': return 'vec2<u32>';
    default: {
      const n = NARROW_INTS[d];
      if (n) return n.signed ? 'i32' : 'u32';
      throw new Error(`no WGSL storage for ${d}`);
    }
  }
}

/** Type arithmetic happens in: floats in f32 (f16 widened, as the CPU backend does), ints natively. */
export function computeType(d: DType): 'f32' | 'i32' | 'u32' {
  if (d === 'float32' || d === 'float16') return 'f32';
  return d === 'int32' || d === 'int64' || NARROW_INTS[d]?.signed ? 'i32' : 'u32';
}

/** Expression converting a stored element `e` of dtype d to its compute type. */
export function load(d: DType, e: string): string {
  if (d === 'float16') return `f32(${e})`;
  if (d === 'int64') return `bitcast<i32>((${e}).x)`; // shape-sized int64 values fit the low word
  return e;
}

/** Expression converting a compute-type value `v` to the storage of dtype d. Narrow integers keep the
 *  low bits, sign-extended: 32-bit arithmetic wraps to their width as typed-array stores do on the CPU. */
export function store(d: DType, v: string): string {
  if (d === 'float16') return `f16(${v})`;
  if (d === 'int64') return `vec2<u32>(bitcast<u32>(i32(${v})), select(0u, 0xffffffffu, i32(${v}) < 0))`;
  if (d === 'bool') return `select(0u, 1u, ${v})`;
  const n = NARROW_INTS[d];
  if (n) return n.signed ? `((${v}) << ${32 - n.bits}u) >> ${32 - n.bits}u` : `(${v}) & ${2 ** n.bits - 1}u`;
  return v;
}

/** An f32 value `v` as dtype d's compute type, truncated and saturated to d's range for integers (NaN
 *  gives 0): what the CPU backend's clamping stores (Resize) do. */
export function saturate(d: DType, v: string): string {
  const t = computeType(d), r = intRange(d);
  if (t === 'f32' || !r) return v;
  // WGSL's f32 -> i32/u32 conversion already saturates at 32 bits; NaN is tested by its bits.
  const clamped = r[1] < 2 ** 24 ? `clamp(${v}, ${r[0]}.0, ${r[1]}.0)` : v;
  return `select(${t}(${clamped}), ${t}(0), (bitcast<u32>(${v}) & 0x7fffffffu) > 0x7f800000u)`;
}

export interface ShaderIO { inputs: [string, DType][]; outputs: [string, DType][]; uniforms: Uniform[] }

/** Bindings in the runner's order (inputs, outputs, then the uniform block) and uniform accessors:
 *  `u_<name>()` for scalars and `u_<name>(i)` for arrays (uniforms whose value is a list). */
export function declare(io: ShaderIO): string {
  const all = [...io.inputs, ...io.outputs];
  const f16 = all.some(([, d]) => d === 'float16');
  const lines = f16 ? ['enable f16;'] : [];
  all.forEach(([name, d], i) => {
    const access = i < io.inputs.length ? 'read' : 'read_write';
    lines.push(`@group(0) @binding(${i}) var<storage, ${access}> ${name}: array<${storageType(d)}>;`);
  });
  const fields = io.uniforms.map((u) => `  ${u.name}: array<vec4<${u.type}>, ${uniformSlots(u)}>,`);
  lines.push(`struct Uniforms {\n${fields.length ? fields.join('\n') : '  _pad: vec4<u32>,'}\n};`);
  lines.push(`@group(0) @binding(${all.length}) var<uniform> u: Uniforms;`);
  for (const uf of io.uniforms) {
    lines.push(typeof uf.value !== 'number'
      ? `fn u_${uf.name}(i: u32) -> ${uf.type} { return u.${uf.name}[i / 4u][i % 4u]; }`
      : `fn u_${uf.name}() -> ${uf.type} { return u.${uf.name}[0].x; }`);
  }
  return lines.join('\n');
}

export const MAX_RANK = 8;
/** Vec4 slots of a uniform: lists get room for MAX_RANK values, so the struct (and the pipeline) never depends on dims. */
export const uniformSlots = (u: Pick<Uniform, 'value'>) => (typeof u.value === 'number' ? 1 : MAX_RANK / 4);

/** Entry point over a flat index `gi`, guarded by `total`; runner splits big launches over x and y. */
export function entry(workgroupSize: number, total: string, body: string): string {
  return `@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let gi = gid.x + gid.y * nwg.x * ${workgroupSize}u;
  if (gi >= ${total}) { return; }
${body}
}`;
}

/** fn `name`(o) mapping a flat output offset to an input offset through uniforms `<shape>` and `<strides>`
 *  (0 strides on broadcast dims). */
export function offsetFn(name: string, rank: number, shape: string, strides: string): string {
  if (rank === 0) return `fn ${name}(o: u32) -> u32 { return 0u; }`;
  return `fn ${name}(o: u32) -> u32 {
  var r = o; var off = 0u;
  for (var d = ${rank - 1}i; d >= 0; d--) { let n = u_${shape}(u32(d)); off += (r % n) * u_${strides}(u32(d)); r /= n; }
  return off;
}`;
}

/** Uniform helpers for the host side. */
export const u32s = (name: string, value: number | readonly number[]): Uniform => ({ name, type: 'u32', value: padRank(value) });
export const f32u = (name: string, value: number): Uniform => ({ name, type: 'f32', value });
export const i32u = (name: string, value: number | readonly number[]): Uniform => ({ name, type: 'i32' as UniformType, value: padRank(value) });

function padRank(v: number | readonly number[]) {
  if (typeof v === 'number') return v;
  if (v.length > MAX_RANK) throw new Error(`rank ${v.length} exceeds the GPU limit of ${MAX_RANK}`);
  return v;
}

/** Broadcast strides are the same host-side arithmetic as the CPU kernels'. */
export { broadcastStrides } from '../cpu/broadcast.js';
