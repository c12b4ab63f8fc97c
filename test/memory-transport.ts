/**
 * An in-memory Transport pair: what one end writes, the other receives on
 * a later microtask, with pause/resume, a high-water mark and drain, end
 * and destroy. The protocol is unit-tested over it, with no socket.
 */
import type { OpenTransport } from '../src/core/transport.js';
import type { FrameParts } from '../src/core/frame/encoder.js';
import type { TransportSink } from '../src/core/transport.js';

export class MemoryTransport implements OpenTransport {
  other!: MemoryTransport;
  sink: TransportSink | undefined;
  /** Bytes written to us and not yet delivered to our sink (we are paused, or it is not yet our turn). */
  private inbox: Uint8Array[] = [];
  inboxBytes = 0;
  paused = false;
  closed = false;
  /** The other end asked to end once its bytes are delivered. */
  private ending = false;
  private scheduled = false;
  /** Every chunk our sink received, for tests. */
  readonly received: Uint8Array[] = [];
  written = 0;

  /**
   * `readSize`: the most one delivery hands the sink, as a socket read
   * does (default: whole writes, however large).
   */
  constructor(
    readonly highWater = 1024 * 1024,
    readonly readSize = Infinity,
  ) {}

  static pair(highWater?: number, readSize?: number): [MemoryTransport, MemoryTransport] {
    const a = new MemoryTransport(highWater, readSize);
    const b = new MemoryTransport(highWater, readSize);
    a.other = b;
    b.other = a;
    return [a, b];
  }

  attach(sink: TransportSink): void {
    this.sink = sink;
    this.schedule();
  }

  write(parts: FrameParts): boolean {
    if (this.closed || this.ending) return false;
    const [h, b] = parts;
    const chunk = new Uint8Array(h.length + b.length);
    chunk.set(h, 0);
    chunk.set(b, h.length);
    this.written += chunk.length;
    this.other.enqueue(chunk);
    return this.pendingBytes < this.highWater;
  }

  /** Raw bytes into the other end, as a misbehaving peer would send them. */
  writeRaw(bytes: Uint8Array): void {
    this.other.enqueue(bytes);
  }

  get writable(): boolean {
    return !this.closed && !this.ending;
  }

  get pendingBytes(): number {
    return this.other.inboxBytes;
  }

  private enqueue(chunk: Uint8Array): void {
    if (this.closed) return;
    this.inbox.push(chunk);
    this.inboxBytes += chunk.length;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.deliver();
    });
  }

  private deliver(): void {
    const wasFull = this.inboxBytes >= this.other.highWater;
    let delivered = false;
    while (!this.paused && !this.closed && this.sink && this.inbox.length > 0) {
      let chunk = this.inbox.shift()!;
      if (chunk.length > this.readSize) {
        this.inbox.unshift(chunk.subarray(this.readSize));
        chunk = chunk.subarray(0, this.readSize);
      }
      this.inboxBytes -= chunk.length;
      this.received.push(chunk);
      delivered = true;
      this.sink.onData(chunk);
    }
    // As the socket transport does after each flush: the writer's pending
    // bytes went down (a peer that charges them re-reads pendingBytes).
    if ((wasFull || delivered) && this.inboxBytes < this.other.highWater) this.other.sink?.onDrain();
    if (this.inbox.length === 0 && this.other.ending && !this.closed) this.closeBoth();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.schedule();
  }

  end(): void {
    if (this.closed) return;
    this.ending = true;
    this.other.schedule();
  }

  destroy(): void {
    this.closeBoth();
  }

  private closeBoth(): void {
    for (const t of [this, this.other]) {
      if (t.closed) continue;
      t.closed = true;
      t.inbox = [];
      t.inboxBytes = 0;
      queueMicrotask(() => t.sink?.onClose());
    }
  }
}
