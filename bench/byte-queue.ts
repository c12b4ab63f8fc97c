/**
 * The received-bytes queue of the raw baseline (server and client). It is
 * what a competent hand-written Node parser does: keep the chunks as they
 * arrive, read lengths in place, and copy only when one frame spans chunks
 * (once per frame, never a Buffer.concat of everything per chunk). The
 * baseline must be "the Node limit", not a straw man.
 */
const EMPTY = Buffer.alloc(0);

export class ByteQueue {
  private chunks: Buffer[] = [];
  /** Read position inside chunks[0]. */
  private offset = 0;
  /** Bytes held. */
  length = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Big-endian u32 `at` bytes past the read position; the caller ensures length >= at + 4. */
  u32(at: number): number {
    const first = this.chunks[0]!;
    const o = this.offset + at;
    if (o + 4 <= first.length) return first.readUInt32BE(o);
    // Rare: the four bytes straddle chunks.
    let value = 0;
    for (let i = 0; i < 4; i++) value = value * 256 + this.byteAt(at + i);
    return value;
  }

  private byteAt(at: number): number {
    let pos = this.offset + at;
    for (const c of this.chunks) {
      if (pos < c.length) return c[pos]!;
      pos -= c.length;
    }
    throw new RangeError('read past the end of the queue');
  }

  /** The next n bytes: a view when they lie in one chunk, one copy otherwise. */
  take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const first = this.chunks[0]!;
    this.length -= n;
    if (this.offset + n <= first.length) {
      const view = first.subarray(this.offset, this.offset + n);
      this.offset += n;
      if (this.offset === first.length) this.dropFirst();
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const count = Math.min(c.length - this.offset, n - at);
      c.copy(out, at, this.offset, this.offset + count);
      at += count;
      this.offset += count;
      if (this.offset === c.length) this.dropFirst();
    }
    return out;
  }

  /** Drop the next n bytes. */
  skip(n: number): void {
    this.length -= n;
    while (n > 0) {
      const c = this.chunks[0]!;
      const count = Math.min(c.length - this.offset, n);
      n -= count;
      this.offset += count;
      if (this.offset === c.length) this.dropFirst();
    }
  }

  private dropFirst(): void {
    this.chunks.shift();
    this.offset = 0;
  }
}
