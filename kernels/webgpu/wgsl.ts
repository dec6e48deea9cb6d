// WGSL building blocks shared by every GPU program: declarations of bindings and uniforms, the entry
// point with a flat global index, dtype mapping, and index math driven by shape/stride uniforms (so one
// pipeline serves every shape of a given rank).
import type { DType } from '../../engine/dtype.js';
import type { Uniform, UniformType } from './runner.js';

/** Storage type of each GPU dtype: bool is a u32 0/1, int64 a vec2<u32> (low, high) word pair. */
export function storageType(d: DType): string {
  switch (d) {
    case 'float32': return 'f32';
    case 'float16': return 'f16';
    case 'int32': return 'i32';
    case 'uint32': case 'bool': return 'u32';
    case 'int64': return 'vec2<u32>';
    default: throw new Error(`no WGSL storage for ${d}`);
  }
}

/** Type arithmetic happens in: floats in f32 (f16 widened, as the CPU backend does), ints natively. */
export function computeType(d: DType): 'f32' | 'i32' | 'u32' {
  return d === 'float32' || d === 'float16' ? 'f32' : d === 'int32' || d === 'int64' ? 'i32' : 'u32';
}

/** Expression converting a stored element `e` of dtype d to its compute type. */
export function load(d: DType, e: string): string {
  if (d === 'float16') return `f32(${e})`;
  if (d === 'int64') return `bitcast<i32>((${e}).x)`; // shape-sized int64 values fit the low word
  return e;
}

/** Expression converting a compute-type value `v` to the storage of dtype d. */
export function store(d: DType, v: string): string {
  if (d === 'float16') return `f16(${v})`;
  if (d === 'int64') return `vec2<u32>(bitcast<u32>(i32(${v})), select(0u, 0xffffffffu, i32(${v}) < 0))`;
  if (d === 'bool') return `select(0u, 1u, ${v})`;
  return v;
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
