/**
 * The Transport over a Node stream socket (net or tls). Frames written in
 * one tick leave together, at the next tick (those written while the
 * connection reads a chunk: as soon as it has read it): small parts are
 * copied into one Buffer and written once (a socket write costs far more
 * than a small copy), large bodies go out as they are, without a copy. A
 * tick that writes many frames (answers to pipelined calls) sends them
 * FLUSH_FRAMES at a time, as soon as there are that many: the peer starts
 * on the first while the rest are made, so both ends work at once instead
 * of in turn.
 */
// Imported, not read from the globals: Node's `process` and `Buffer` globals are getters, run at every use.
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { nextTick } from 'node:process';
import { DEFAULT_WRITE_HIGH_WATER } from '../core/constants.js';
import type { FrameParts } from '../core/frame/encoder.js';
import type { OpenTransport } from '../core/transport.js';
import type { TransportSink } from '../core/transport.js';

/** Parts up to this size are copied into the tick's batch; larger ones are written as they are. */
const COALESCE_BYTES = 16 * 1024;

/**
 * Frames that leave together at most: with 64 calls in flight on one
 * connection, writes of 16 let client and server overlap (2.5 times the
 * calls per second of one write per tick on 2 cores, and less CPU per
 * call, as neither end sleeps between batches); 8 or 32 did less.
 */
const FLUSH_FRAMES = 16;

/** How often a paused server socket is checked for a client that left (see checkPeer). */
export const PEER_CHECK_MS = 1000;

/** A write of no bytes: nothing goes on the wire, but it fails once the operating system knows the peer is gone. */
const NOTHING = Buffer.alloc(0);

/**
 * Paused server sockets, all checked by one background timer (pauses
 * come and go with the budget: no timer is made per pause), each with the
 * question its owner asks once Node has stopped reading it (see checkPeer;
 * undefined: a write of no bytes). The timer stops at the first tick that
 * finds none.
 */
const paused = new Map<Socket, (() => void) | undefined>();
let checking: ReturnType<typeof setInterval> | undefined;

/**
 * @internal Check `socket`, which its owner has just paused, every
 * PEER_CHECK_MS for a peer that left (checkPeer), until unwatchPaused or
 * its close. Shared by the transports that pause a server's socket
 * (SocketTransport, the WebSocket bridge): one timer for all. `ask`, where
 * given, replaces the write of no bytes once Node has stopped reading it
 * (the bridge pings: see bridge.ts).
 */
export function watchPaused(socket: Socket, ask?: () => void): void {
  paused.set(socket, ask);
  if (checking !== undefined) return;
  checking = setInterval(checkPaused, PEER_CHECK_MS);
  checking.unref();
}

/** @internal `socket` is read again, or closed: it is no longer checked. */
export function unwatchPaused(socket: Socket): void {
  paused.delete(socket);
}

function checkPaused(): void {
  if (paused.size === 0) {
    clearInterval(checking);
    checking = undefined;
    return;
  }
  for (const [s, ask] of paused) {
    // Its owner lets go at its close; one that closed unseen is not kept.
    if (s.destroyed) paused.delete(s);
    else checkPeer(s, ask);
  }
}

/**
 * Has the client of this paused socket left? Node cannot say by itself: a
 * paused socket reads ahead until its buffer reaches the high-water mark
 * and then stops reading, and it emits 'end' only once everything before
 * the FIN has been read. So a connection that stays paused (its calls hold
 * its budget, and they end only when the client cancels them or leaves)
 * would never learn that its client left, and hold all it holds for good.
 */
function checkPeer(s: Socket, ask: (() => void) | undefined): void {
  const buffered = s.readableLength;
  if (buffered < s.readableHighWaterMark) {
    // Node still reads, so the FIN may have come in behind what it
    // buffered. Asking for one byte more than it holds returns it all if
    // the stream has ended, and nothing otherwise (Readable.read(size));
    // what it returns goes to the 'data' listeners, so the connection takes
    // it as its next chunk (a decoder that is held keeps it, charged), and
    // 'end' follows: the socket closes as at any FIN (allowHalfOpen is false).
    if (buffered > 0) s.read(buffered + 1);
    return;
  }
  // Node stopped reading: the FIN, if there is one, is behind bytes not
  // read, and reading them is what the pause is there to prevent. A
  // write asks instead: once a unix socket's peer has closed, or a TCP
  // peer has reset, it fails (EPIPE), and the socket closes with the error.
  // A write already waiting asks the same; TLS would send an empty record.
  // An owner's own question replaces the write (the bridge pings: bytes a
  // closed TCP peer answers with a reset, TLS or not).
  if (s.writableLength !== 0 || s.writableEnded) return;
  if (ask !== undefined) ask();
  else if ((s as { encrypted?: boolean }).encrypted !== true) s.write(NOTHING);
}

export interface SocketTransportOptions {
  /**
   * A server's socket: while paused, it is checked every PEER_CHECK_MS for
   * a client that left (checkPeer), whose connection then closes even
   * though it is not read (what the client sent before it left and was
   * not read by then is not). Default false: a client keeps what its
   * server sent before closing, to be read when its application reads it.
   */
  watchPeer?: boolean;
}

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
  if (toFlush.push(t) === 1) nextTick(flushAll);
}

export class SocketTransport implements OpenTransport {
  private error: Error | undefined;
  private sink: TransportSink | undefined;
  /** Parts written this tick, in order, and their size. */
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  /** Frames in `queued`. */
  private queuedFrames = 0;
  /**
   * What was unsent when frames were last sent from inside write(): until
   * the tick's flush, pendingBytes does not fall below it. Bytes leaving
   * release budget, and a release wakes the connection (held frames run,
   * a writer goes on); that must happen at the flush, as it did, and not
   * in the middle of the write of whoever is writing now.
   */
  private sentEarly = 0;
  private scheduled = false;
  /** The sink is taking a chunk in: what it writes meanwhile leaves once it is done (see attach). */
  private reading = false;
  /** Written while reading: the flush is the read's to make, at its end. */
  private flushAfterRead = false;

  /** A paused net socket still reads one chunk (up to 64 KiB) into its own buffer. */
  readonly readAhead = 64 * 1024;
  private readonly watchPeer: boolean;

  constructor(
    readonly socket: Socket,
    options: SocketTransportOptions = {},
  ) {
    this.watchPeer = options.watchPeer === true;
  }

  /** Wire the socket's events to a connection. */
  attach(sink: TransportSink): void {
    const s = this.socket;
    this.sink = sink;
    // A plain Uint8Array view of each chunk, once: the frames cut from it
    // are then plain views too, cheaper to make than Buffer slices and
    // taken by the codec as they are.
    s.on('data', (chunk: Buffer) => {
      const outer = this.reading;
      this.reading = true;
      try {
        sink.onData(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } finally {
        this.reading = outer;
        // The answers to the calls in this chunk leave now, together, as
        // the tick's flush would send them: a server answering at once
        // then needs no deferred callback per chunk it reads.
        if (!outer && this.flushAfterRead) {
          this.flushAfterRead = false;
          this.flush();
        }
      }
    });
    s.on('drain', () => sink.onDrain());
    s.on('error', (err: Error) => (this.error = err));
    s.on('close', () => {
      unwatchPaused(s);
      sink.onClose(this.error);
    });
    // Closed before it was attached (a relay attaches once the service's
    // connection is open): the close it missed is told now.
    if (s.closed) queueMicrotask(() => sink.onClose(this.error ?? s.errored ?? undefined));
  }

  get writable(): boolean {
    return !this.socket.destroyed && !this.socket.writableEnded;
  }

  get pendingBytes(): number {
    const pending = this.queuedBytes + this.socket.writableLength;
    return pending > this.sentEarly ? pending : this.sentEarly;
  }

  write(parts: FrameParts): boolean {
    const s = this.socket;
    if (s.destroyed || s.writableEnded) return false;
    const [header, body] = parts;
    this.queued.push(header);
    if (body.length > 0) this.queued.push(body);
    this.queuedBytes += header.length + body.length;
    if (++this.queuedFrames >= FLUSH_FRAMES) {
      // Enough to be worth a write of their own: they leave now. The
      // tick's flush, scheduled by the first of them, sends what follows
      // and tells the sink.
      this.sentEarly = this.pendingBytes;
      this.send();
    } else if (!this.scheduled) {
      this.scheduled = true;
      if (this.reading) this.flushAfterRead = true;
      else flushLater(this);
    }
    return s.writableLength + this.queuedBytes < DEFAULT_WRITE_HIGH_WATER;
  }

  /** Hand this tick's frames to the socket. */
  flush(): void {
    this.scheduled = false;
    const sentEarly = this.sentEarly > 0;
    this.sentEarly = 0;
    // Also after frames sent from inside write() and nothing since: the sink hears of the room now.
    if (this.send() || sentEarly) this.drainedNow();
  }

  /**
   * Write what is queued; false when there was nothing to write (or the
   * socket is gone). The sink hears of the room made at the tick's flush,
   * not here: send() also runs from inside write(), in the middle of its
   * caller's work.
   */
  private send(): boolean {
    const parts = this.queued;
    const total = this.queuedBytes;
    this.queued = [];
    this.queuedBytes = 0;
    this.queuedFrames = 0;
    const s = this.socket;
    if (parts.length === 0 || s.destroyed || s.writableEnded) return false;
    if (total <= 4 * COALESCE_BYTES) {
      // The usual case: one write, which needs no cork.
      s.write(joined(parts, total));
      return true;
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
    return true;
  }

  /** The socket took what it could: the sink re-reads pendingBytes (when the socket backs up, its own 'drain' follows later). */
  private drainedNow(): void {
    if (this.socket.writableLength < DEFAULT_WRITE_HIGH_WATER) this.sink?.onDrain();
  }

  pause(): void {
    this.socket.pause();
    if (this.watchPeer) watchPaused(this.socket);
  }

  resume(): void {
    unwatchPaused(this.socket);
    this.socket.resume();
  }

  end(): void {
    this.flush();
    if (!this.socket.destroyed) this.socket.end();
  }

  destroy(): void {
    this.queued = [];
    this.queuedBytes = 0;
    this.queuedFrames = 0;
    this.sentEarly = 0;
    unwatchPaused(this.socket);
    this.socket.destroy();
  }
}
