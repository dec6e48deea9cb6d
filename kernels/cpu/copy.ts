// Strided data movement over flat arrays (typed arrays or string[]): the loops behind slicing, padding,
// tiling, concatenation, broadcasting and transposes. Compute only: arrays, shapes, strides, offsets.
//
// Moving data never looks at values, so the kernels work on `units`: an integer view of the same bytes
// (Int32Array for 4- and 8-byte types, with 2 units per 8-byte element). The loops then see at most four
// array kinds whatever the dtype mix of a model, which keeps V8 from going megamorphic (10x slower), and
// bit patterns (NaN payloads, int64) are copied exactly.

export type Buf = { [i: number]: any; length: number };
export type Units = Int32Array | Uint16Array | Uint8Array | unknown[];
type Typed = { set(a: Typed, o: number): void; subarray(a: number, b: number): Typed };

/** `a` as units, and units per element. */
export function units(a: Buf): [Units, number] {
  if (Array.isArray(a)) return [a, 1];
  const v = a as unknown as ArrayBufferView & { length: number; BYTES_PER_ELEMENT: number }, b = v.BYTES_PER_ELEMENT;
  if (b >= 4) return [new Int32Array(v.buffer, v.byteOffset, (v.length * b) / 4), b / 4];
  return [b === 2 ? new Uint16Array(v.buffer, v.byteOffset, v.length) : new Uint8Array(v.buffer, v.byteOffset, v.length), 1];
}

/** dst[d .. d+n) = src[s .. s+n). Long runs of typed arrays use a native block copy (a view costs more than a short loop). */
export function copyRange(dst: Buf, d: number, src: Buf, s: number, n: number): void {
  if (n >= 64 && ArrayBuffer.isView(dst) && ArrayBuffer.isView(src)) (dst as unknown as Typed).set((src as unknown as Typed).subarray(s, s + n), d);
  else for (let i = 0; i < n; i++) dst[d + i] = src[s + i];
}

/** copy(d, s, n): n elements from src offset s to dst offset d (element offsets), moved through unit views. */
export function rowCopier(dst: Buf, src: Buf): (d: number, s: number, n: number) => void {
  const [su, l] = units(src), [du] = units(dst);
  return l === 1 ? (d, s, n) => copyRange(du, d, su, s, n) : (d, s, n) => copyRange(du, d * l, su, s * l, n * l);
}

/** dst[0 .. n) = v. */
export function fill(dst: Buf, v: unknown): void {
  (dst as unknown as { fill(v: unknown): void }).fill(v);
}

/**
 * Drops size-1 dims and merges neighbours that are contiguous under every stride set, so that the
 * loops below run over as few, as long dims as possible. Returns null when the shape is empty (size 0).
 */
export function simplify(shape: readonly number[], ...strides: (readonly number[])[]): { shape: number[]; strides: number[][] } | null {
  const sh: number[] = [], st: number[][] = strides.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 0) return null;
    if (shape[i] === 1) continue;
    const k = sh.length - 1;
    if (k >= 0 && strides.every((s, j) => st[j][k] === s[i] * shape[i])) {
      sh[k] *= shape[i];
      strides.forEach((s, j) => { st[j][k] = s[i]; });
    } else {
      sh.push(shape[i]);
      strides.forEach((s, j) => st[j].push(s[i]));
    }
  }
  return { shape: sh, strides: st };
}

/**
 * Calls fn(a, b) once per index of `shape`, where a = a0 + Σ i_k·sa_k and b = b0 + Σ i_k·sb_k.
 * Callers pass the outer dims only and run the innermost dim in their own tight loop.
 */
export function walk(shape: readonly number[], sa: readonly number[], sb: readonly number[], a0: number, b0: number, fn: (a: number, b: number) => void): void {
  const rank = shape.length, idx = new Array<number>(rank).fill(0);
  if (shape.some((d) => d === 0)) return;
  let a = a0, b = b0;
  for (;;) {
    fn(a, b);
    let d = rank - 1;
    for (; d >= 0; d--) {
      a += sa[d]; b += sb[d];
      if (++idx[d] < shape[d]) break;
      a -= sa[d] * shape[d]; b -= sb[d] * shape[d]; idx[d] = 0;
    }
    if (d < 0) return;
  }
}

/** Shape and strides in units: each element becomes a trailing run of `l` contiguous units. */
const inUnits = (l: number, shape: readonly number[], ...strides: (readonly number[])[]): [number[], ...number[][]] =>
  l === 1 ? [[...shape], ...strides.map((s) => [...s])] : [[...shape, l], ...strides.map((s) => [...s.map((x) => x * l), 1])];

/** dst[dOff + Σ i_k·dStr_k] = src[sOff + Σ i_k·sStr_k] for every index of `shape`. Strides may be 0 or negative. */
export function stridedCopy(src: Buf, sOff: number, sStr: readonly number[], dst: Buf, dOff: number, dStr: readonly number[], shape: readonly number[]): void {
  const [su, l] = units(src), [du] = units(dst), [ush, uss, uds] = inUnits(l, shape, sStr, dStr);
  const s = simplify(ush, uss, uds);
  if (s) copyUnits(su, sOff * l, du, dOff * l, s.shape, s.strides[0], s.strides[1]);
}

function copyUnits(src: Units, sOff: number, dst: Units, dOff: number, sh: number[], ss: number[], ds: number[]): void {
  const r = sh.length;
  if (r === 0) { dst[dOff] = src[sOff]; return; }
  const n = sh[r - 1], si = ss[r - 1], di = ds[r - 1];
  const outer = sh.slice(0, r - 1), os = ss.slice(0, r - 1), od = ds.slice(0, r - 1);
  if (si === 1 && di === 1) walk(outer, os, od, sOff, dOff, (a, b) => copyRange(dst, b, src, a, n));
  else walk(outer, os, od, sOff, dOff, (a, b) => copyRun(src, a, si, dst, b, di, n));
}

/** dst[b + k·di] = src[a + k·si] for k < n. */
function copyRun(src: Units, a: number, si: number, dst: Units, b: number, di: number, n: number): void {
  for (let k = 0; k < n; k++, a += si, b += di) dst[b] = src[a];
}

/**
 * Dense gather where output axis k reads source element offset maps[k][i_k]:
 * dst[flat(i)] = src[Σ maps[k][i_k]]. Used for reflect/edge/wrap padding, where every axis has its own index map.
 */
export function gatherAxisMaps(src: Buf, maps: readonly Int32Array[], dst: Buf): void {
  const [su, l] = units(src), [du] = units(dst);
  const um = l === 1 ? maps : [...maps.map((m) => m.map((x) => x * l)), Int32Array.from({ length: l }, (_, i) => i)];
  if (um.length === 0) { du[0] = su[0]; return; }
  if (!um.some((m) => m.length === 0)) gatherUnits(su, um, du);
}

function gatherUnits(src: Units, maps: readonly Int32Array[], dst: Units): void {
  const r = maps.length, inner = maps[r - 1], n = inner.length, idx = new Array<number>(r).fill(0);
  let base = 0;
  for (let k = 0; k < r - 1; k++) base += maps[k][0];
  for (let o = 0; ; o += n) {
    for (let j = 0; j < n; j++) dst[o + j] = src[base + inner[j]];
    let d = r - 2;
    for (; d >= 0; d--) {
      const m = maps[d];
      base -= m[idx[d]];
      if (++idx[d] < m.length) { base += m[idx[d]]; break; }
      idx[d] = 0; base += m[0];
    }
    if (d < 0) return;
  }
}
