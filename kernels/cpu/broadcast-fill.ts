// A tensor written broadcast into a dense one at memory-copy speed: the longest trailing run that the
// source holds whole is copied with `set`, and every broadcast dim replicates what is already written
// with `copyWithin`, doubling the copied span each time. Compute only: typed arrays and shapes.

type Dense = Float32Array | Float64Array;

/** dst (shape `outShape`, row-major) = src (shape `shape`) broadcast; `shape` must broadcast into `outShape`. */
export function fillBroadcast(dst: Dense, outShape: readonly number[], src: Dense, shape: readonly number[]): void {
  const rank = outShape.length, lead = rank - shape.length;
  if (lead < 0 || dst.length === 0) return;
  const dims = outShape.map((_, d) => (d < lead ? 1 : shape[d - lead]));
  const outStrides = new Array<number>(rank + 1).fill(1), srcStrides = new Array<number>(rank + 1).fill(1);
  for (let d = rank - 1; d >= 0; d--) { outStrides[d] = outStrides[d + 1] * outShape[d]; srcStrides[d] = srcStrides[d + 1] * dims[d]; }
  // From dim `whole` on, the source holds the output's trailing block as it is laid out.
  let whole = rank;
  while (whole > 0 && dims[whole - 1] === outShape[whole - 1]) whole--;
  const fill = (d: number, o: number, s: number): void => {
    if (d === whole) {
      if (outStrides[d] === 1) dst[o] = src[s];
      else dst.set(src.subarray(s, s + outStrides[d]), o);
      return;
    }
    const block = outStrides[d + 1], n = outShape[d];
    if (dims[d] !== 1) { for (let i = 0; i < n; i++) fill(d + 1, o + i * block, s + i * srcStrides[d + 1]); return; }
    fill(d + 1, o, s);
    for (let done = block, total = n * block; done < total;) {
      const span = Math.min(done, total - done);
      dst.copyWithin(o + done, o, o + span);
      done += span;
    }
  };
  fill(0, 0, 0);
}
