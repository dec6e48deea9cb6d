// Loss kernels over typed arrays.
type Num = { [i: number]: number; length: number };

/**
 * Negative log-likelihood over x laid out [N, C, D]: loss[n*D + d] = -x[n, t, d] * weight[t] for the
 * target t = target[n*D + d], and 0 where t is `ignore`. Returns the summed weights of the counted
 * samples, the divisor of a weighted mean.
 */
export function nllLoss(x: Num, target: ArrayLike<number>, C: number, D: number, weight: Num | undefined, ignore: number | undefined, loss: Num): number {
  let total = 0;
  for (let s = 0; s < target.length; s++) {
    const t = target[s];
    if (t === ignore) { loss[s] = 0; continue; }
    const w = weight ? weight[t] : 1, n = Math.floor(s / D);
    loss[s] = -x[(n * C + t) * D + s - n * D] * w;
    total += w;
  }
  return total;
}
