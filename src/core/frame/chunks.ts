/**
 * A queue of received chunks. `take(n)` hands out a view into a chunk when
 * the n bytes lie inside one chunk, and copies only when they span chunks;
 * nothing is ever concatenated per chunk received.
 */
export class ChunkQueue {
  private chunks: Uint8Array[] = [];
  /** Read position inside chunks[0]. */
  private offset = 0;
  /** Bytes held and not yet taken. */
  length = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The big-endian u32 at the read position; the caller ensures length >= 4. */
  peekU32(): number {
    const first = this.chunks[0]!;
    const o = this.offset;
    if (first.length - o >= 4) {
      return ((first[o]! << 24) | (first[o + 1]! << 16) | (first[o + 2]! << 8) | first[o + 3]!) >>> 0;
    }
    let value = 0;
    let i = 0;
    for (const chunk of this.chunks) {
      for (let j = chunk === first ? o : 0; j < chunk.length && i < 4; j++, i++) value = value * 256 + chunk[j]!;
      if (i === 4) break;
    }
    return value;
  }

  /** The next n bytes: a view when they lie in one chunk, a copy otherwise. */
  take(n: number): Uint8Array {
    const first = this.chunks[0];
    if (n === 0 || first === undefined) return new Uint8Array(0);
    this.length -= n;
    const avail = first.length - this.offset;
    if (n <= avail) {
      const view = first.subarray(this.offset, this.offset + n);
      this.offset += n;
      if (this.offset === first.length) {
        this.chunks.shift();
        this.offset = 0;
      }
      return view;
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const chunk = this.chunks[0]!;
      const count = Math.min(chunk.length - this.offset, n - at);
      out.set(chunk.subarray(this.offset, this.offset + count), at);
      at += count;
      this.offset += count;
      if (this.offset === chunk.length) {
        this.chunks.shift();
        this.offset = 0;
      }
    }
    return out;
  }

  /** Drop the next n bytes. */
  skip(n: number): void {
    this.length -= n;
    while (n > 0) {
      const chunk = this.chunks[0]!;
      const count = Math.min(chunk.length - this.offset, n);
      n -= count;
      this.offset += count;
      if (this.offset === chunk.length) {
        this.chunks.shift();
        this.offset = 0;
      }
    }
  }
}
