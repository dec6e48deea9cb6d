// Random draws in the order and by the methods of numpy's legacy RandomState: 53-bit uniform doubles,
// polar-method Gaussians with a cached spare, and binomial(1, p) by inversion. ONNX's reference
// implementation seeds RandomState with a node's seed, so a seeded node here gives its values.
import { MT19937 } from './mt19937.js';

export class Draws {
  private readonly mt: MT19937;
  private spare: number | undefined;
  constructor(seed: number) { this.mt = new MT19937(seed); }

  uniform(): number { return this.mt.nextDouble(); }

  /** Standard normal (Marsaglia's polar method); each pair of uniforms in the unit disc gives two values. */
  normal(): number {
    if (this.spare !== undefined) { const v = this.spare; this.spare = undefined; return v; }
    let x1: number, x2: number, r2: number;
    do {
      x1 = 2 * this.uniform() - 1;
      x2 = 2 * this.uniform() - 1;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1 || r2 === 0);
    const f = Math.sqrt((-2 * Math.log(r2)) / r2);
    this.spare = f * x1;
    return f * x2;
  }

  /**
   * 1 with probability p, as numpy's legacy binomial(1, p): one draw inverted on min(p, 1 - p), and
   * another in the case, reachable only through rounding, where the inversion runs past 1.
   */
  bernoulli(p: number): number {
    const flip = p > 0.5, s = flip ? 1 - p : p, q = 1 - s, q1 = Math.exp(Math.log(q));
    for (;;) {
      const u = this.uniform();
      if (u <= q1) return flip ? 1 : 0;
      if (u - q1 <= (s * q1) / q) return flip ? 0 : 1;
    }
  }
}

/** `samples` draws for each of `rows` rows of k cumulative weights: out(i, first class whose cumulative weight exceeds u · total). */
export function sampleRows(draws: Draws, cdf: Float64Array, rows: number, k: number, samples: number, out: (i: number, v: number) => void): void {
  for (let r = 0; r < rows; r++) {
    const o = r * k, total = cdf[o + k - 1];
    for (let s = 0; s < samples; s++) {
      const target = draws.uniform() * total;
      let lo = 0, hi = k - 1;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (cdf[o + mid] > target) hi = mid; else lo = mid + 1; }
      out(r * samples + s, lo);
    }
  }
}
