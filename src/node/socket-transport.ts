/**
 * The Transport over a Node stream socket (net or tls). Frames written in
 * one tick leave together, at the next tick: small parts are copied into
 * one Buffer and written once (a socket write costs far more than a small
 * copy), large bodies go out as they are, without a copy.
 */
import type { Socket } from 'node:net';
import { DEFAULT_WRITE_HIGH_WATER } from '../core/constants.js';
import type { FrameParts } from '../core/frame/encoder.js';
import type { OpenTransport } from '../core/transport.js';
import type { TransportSink } from '../core/transport.js';

/** Parts up to this size are copied into the tick's batch; larger ones are written as they are. */
const COALESCE_BYTES = 16 * 1024;

/** The same memory as a Buffer (net writes Buffers without converting them). */
function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** `parts` (of `total` bytes) copied into one Buffer. */
function joined(parts: readonly Uint8Array[], total: number): Buffer {
  const buf = Buffer.allocUnsafe(total);
  let at = 0;
  for (const p of parts) {
    buf.set(p, at);
    at += p.length;
  }
  return buf;
}

/**
 * Transports written to in this tick: flushed together at its end, by one
 * process.nextTick for all of them (not one per connection: with many
 * connections busy at once, that would be an allocation and a callback
 * each).
 */
let toFlush: SocketTransport[] = [];

function flushAll(): void {
  const list = toFlush;
  let i = 0;
  // A flush can lead to more writes (a drain lets a writer go on): those
  // join this list and are flushed in this same pass.
  try {
    for (; i < list.length; i++) list[i]!.flush();
  } finally {
    toFlush = [];
    // One that threw does not strand those behind it.
    for (i++; i < list.length; i++) flushLater(list[i]!);
  }
}

function flushLater(t: SocketTransport): void {
  if (toFlush.push(t) === 1) process.nextTick(flushAll);
}

export class SocketTransport implements OpenTransport {
  private error: Error | undefined;
  private sink: TransportSink | undefined;
  /** Parts written this tick, in order, and their size. */
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  private scheduled = false;

  /** A paused net socket still reads one chunk (up to 64 KiB) into its own buffer. */
  readonly readAhead = 64 * 1024;

  constructor(readonly socket: Socket) {}

  /** Wire the socket's events to a connection. */
  attach(sink: TransportSink): void {
    const s = this.socket;
    this.sink = sink;
    // A plain Uint8Array view of each chunk, once: the frames cut from it
    // are then plain views too, cheaper to make than Buffer slices and
    // taken by the codec as they are.
    s.on('data', (chunk: Buffer) => sink.onData(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
    s.on('drain', () => sink.onDrain());
    s.on('error', (err: Error) => (this.error = err));
    s.on('close', () => sink.onClose(this.error));
    // Closed before it was attached (a relay attaches once the service's
    // connection is open): the close it missed is told now.
    if (s.closed) queueMicrotask(() => sink.onClose(this.error ?? s.errored ?? undefined));
  }

  get pendingBytes(): number {
    return this.queuedBytes + this.socket.writableLength;
  }

  write(parts: FrameParts): boolean {
    const s = this.socket;
    if (s.destroyed || s.writableEnded) return true;
    const [header, body] = parts;
    this.queued.push(header);
    if (body.length > 0) this.queued.push(body);
    this.queuedBytes += header.length + body.length;
    if (!this.scheduled) {
      this.scheduled = true;
      flushLater(this);
    }
    return s.writableLength + this.queuedBytes < DEFAULT_WRITE_HIGH_WATER;
  }

  /** Hand this tick's frames to the socket. */
  flush(): void {
    this.scheduled = false;
    const parts = this.queued;
    const total = this.queuedBytes;
    this.queued = [];
    this.queuedBytes = 0;
    const s = this.socket;
    if (parts.length === 0 || s.destroyed || s.writableEnded) return;
    if (total <= 4 * COALESCE_BYTES) {
      // The usual case: one write, which needs no cork.
      s.write(joined(parts, total));
      this.drainedNow();
      return;
    }
    s.cork();
    let run: Uint8Array[] = [];
    let runBytes = 0;
    const writeRun = () => {
      if (runBytes === 0) return;
      s.write(joined(run, runBytes));
      run = [];
      runBytes = 0;
    };
    for (const p of parts) {
      if (p.length > COALESCE_BYTES) {
        writeRun();
        s.write(asBuffer(p));
      } else {
        run.push(p);
        runBytes += p.length;
      }
    }
    writeRun();
    s.uncork();
    this.drainedNow();
  }

  /** The socket took what it could: the sink re-reads pendingBytes (when the socket backs up, its own 'drain' follows later). */
  private drainedNow(): void {
    if (this.socket.writableLength < DEFAULT_WRITE_HIGH_WATER) this.sink?.onDrain();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    this.flush();
    if (!this.socket.destroyed) this.socket.end();
  }

  destroy(): void {
    this.queued = [];
    this.queuedBytes = 0;
    this.socket.destroy();
  }
}
