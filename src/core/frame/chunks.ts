/** Chunks shorter than this are copied into a shared buffer instead of being kept one object each. */
const SMALL_CHUNK = 512;
const POOL_BYTES = 16 * 1024;

/**
 * A queue of received chunks. `take(n)` hands out a view into a chunk when
 * the n bytes lie inside one chunk, and copies only when they span chunks;
 * nothing is ever concatenated per chunk received.
 *
 * A chunk that arrives to an empty queue is kept as it is (the common case:
 * it holds whole frames, handed out as views, and nothing is copied). Tiny
 * chunks behind it (a peer trickling a frame a byte at a time) are gathered
 * into a shared buffer, so holding a frame costs about its own size, not an
 * object per byte. Bytes there are never overwritten: a full pool is
 * replaced, not reused, because views into it may have been handed out.
 * When the queue empties, it lets go of the pool: an idle connection holds
 * no read buffer.
 */
export class ChunkQueue {
  private chunks: Uint8Array[] = [];
  /** Read position inside chunks[0]. */
  private offset = 0;
  /** Bytes held and not yet taken. */
  length = 0;
  private pool: Uint8Array | undefined;
  private poolUsed = 0;
  private poolStart = 0;
  /** The last element of `chunks` when it is a view of the pool that may still grow. */
  private poolView: Uint8Array | undefined;

  /** Chunks held (for tests and diagnostics). */
  get parts(): number {
    return this.chunks.length;
  }

  push(chunk: Uint8Array): void {
    const n = chunk.length;
    if (n === 0) return;
    const empty = this.length === 0;
    this.length += n;
    if (n >= SMALL_CHUNK || empty) {
      this.chunks.push(chunk);
      this.poolView = undefined;
      return;
    }
    const last = this.chunks[this.chunks.length - 1];
    if (this.pool !== undefined && last !== undefined && last === this.poolView && this.poolUsed + n <= POOL_BYTES) {
      // Grow the trailing view; a view's start stays, so `offset` stays valid.
      this.pool.set(chunk, this.poolUsed);
      this.poolUsed += n;
      this.poolView = this.pool.subarray(this.poolStart, this.poolUsed);
      this.chunks[this.chunks.length - 1] = this.poolView;
      return;
    }
    if (this.pool === undefined || this.poolUsed + n > POOL_BYTES) {
      this.pool = new Uint8Array(POOL_BYTES);
      this.poolUsed = 0;
    }
    this.poolStart = this.poolUsed;
    this.pool.set(chunk, this.poolUsed);
    this.poolUsed += n;
    this.poolView = this.pool.subarray(this.poolStart, this.poolUsed);
    this.chunks.push(this.poolView);
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

  /** Forget the pool once nothing is held: the next small chunk starts afresh. */
  private emptied(): void {
    if (this.length !== 0) return;
    this.pool = undefined;
    this.poolView = undefined;
    this.poolUsed = 0;
  }

  /** The next n bytes: a view when they lie in one chunk, a copy otherwise. */
  take(n: number): Uint8Array {
    const first = this.chunks[0];
    if (n === 0 || first === undefined) return new Uint8Array(0);
    this.length -= n;
    const avail = first.length - this.offset;
    if (n <= avail) {
      // A view made directly: subarray() would look up the species constructor, per frame.
      const view = new Uint8Array(first.buffer, first.byteOffset + this.offset, n);
      this.offset += n;
      if (this.offset === first.length) {
        this.chunks.shift();
        this.offset = 0;
      }
      this.emptied();
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
    this.emptied();
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
    this.emptied();
  }

  /** Bytes of memory held for the bytes not yet taken (pool included): what an idle connection must keep at zero. */
  /**
   * What holding the bytes not yet taken costs, in O(1): they, the part of
   * the first chunk already taken (the chunk is held whole), and the pool
   * while there is one. At least retainedBytes.
   */
  get heldBytes(): number {
    return this.length === 0 ? 0 : this.length + this.offset + (this.pool === undefined ? 0 : POOL_BYTES);
  }

  get retainedBytes(): number {
    let n = this.pool?.length ?? 0;
    for (const c of this.chunks) if (c.buffer !== this.pool?.buffer) n += c.length;
    return n;
  }
}
