// Mersenne Twister (MT19937) seeded the way numpy's legacy RandomState.seed(int) seeds it, with
// numpy's 53-bit double draw. ONNX reference outputs for seeded random ops come from that generator,
// so reproducing it lets a seeded op give the exact values the reference tests expect.

const N = 624, M = 397;

export class MT19937 {
  private readonly mt = new Uint32Array(N);
  private pos = N;
  constructor(seed: number) {
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const p = mt[i - 1] ^ (mt[i - 1] >>> 30);
      // 1812433253 * p overflows 2^53, so multiply in 16-bit halves to stay exact mod 2^32.
      mt[i] = ((((p >>> 16) * 1812433253) << 16) + (p & 0xffff) * 1812433253 + i) >>> 0;
    }
  }
  private twist(): void {
    const mt = this.mt;
    for (let i = 0; i < N; i++) {
      const y = (mt[i] & 0x80000000) | (mt[(i + 1) % N] & 0x7fffffff);
      mt[i] = mt[(i + M) % N] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.pos = 0;
  }
  next32(): number {
    if (this.pos >= N) this.twist();
    let y = this.mt[this.pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }
  /** Uniform in [0, 1) with 53 random bits, as numpy's random_sample. */
  nextDouble(): number {
    const a = this.next32() >>> 5, b = this.next32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }
}
