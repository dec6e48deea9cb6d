// A first-fit allocator for long-lived blocks at the bottom of a wasm heap (the GEMM's prepacked weight
// panels). Everything above `top` is the per-call scratch, so freeing the last blocks lowers `top` and
// gives that room back to scratch. Sizes and addresses are in floats, 16-float (64-byte) aligned.

const ALIGN = 16;
const up = (x: number) => Math.ceil(x / ALIGN) * ALIGN;

export class BlockHeap {
  /** Free holes below top, sorted by address, never adjacent (merged). */
  private readonly holes: { at: number; size: number }[] = [];
  private end: number;
  private used = 0;

  constructor(readonly base: number) { this.end = up(base); }

  /** First address above every live block: where scratch may start. */
  get top(): number { return this.end; }
  /** Floats held by live blocks. */
  get live(): number { return this.used; }

  alloc(size: number): number {
    size = up(size);
    this.used += size;
    const i = this.holes.findIndex((h) => h.size >= size);
    if (i < 0) {
      const at = this.end;
      this.end += size;
      return at;
    }
    const h = this.holes[i], at = h.at;
    if (h.size === size) this.holes.splice(i, 1);
    else { h.at += size; h.size -= size; }
    return at;
  }

  free(at: number, size: number): void {
    size = up(size);
    this.used -= size;
    let i = this.holes.findIndex((h) => h.at > at);
    if (i < 0) i = this.holes.length;
    this.holes.splice(i, 0, { at, size });
    // Merge with the next hole, then the previous one.
    if (i + 1 < this.holes.length && at + size === this.holes[i + 1].at) { this.holes[i].size += this.holes[i + 1].size; this.holes.splice(i + 1, 1); }
    if (i > 0 && this.holes[i - 1].at + this.holes[i - 1].size === at) { this.holes[i - 1].size += this.holes[i].size; this.holes.splice(i, 1); i--; }
    const last = this.holes[this.holes.length - 1];
    if (last && last.at + last.size === this.end) { this.end = last.at; this.holes.pop(); }
  }
}
