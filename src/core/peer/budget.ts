/**
 * Bytes held on a peer's behalf (docs/PROTOCOL.md §4, README "Limits").
 *
 * Each connection has a ConnectionBudget; a server's connections share one
 * ServerBudget. A connection is charged for what it makes us hold: bytes of
 * a frame still arriving, payloads (and their decoded size) of calls still
 * running, answers, stream items and events queued but not yet sent, items
 * received and not yet read. Past its own bound, or past its fair share of
 * the server's bound while the server is over, a connection stops reading
 * (back-pressure) until enough is released: nothing grows without bound,
 * and a connection that holds little (a new client) is always read.
 */

import type { Codec } from '../codec/cbor.js';
import { afterIo } from './turns.js';

/** Bytes of one decoded CBOR item (a JS value with its slot), charged on top of the wire bytes: a number, a short string. */
export const DECODED_ITEM_BYTES = 32;

/**
 * Bytes charged on top for each byte string, array and map decoded: each
 * is an object. Measured per item, heap after GC: an empty byte string 192
 * bytes (208 on Node 24: its view and its buffer), an empty map 64, an
 * empty array 40, a number 8, a short string 32
 * (test/integration/held-costs.test.ts).
 */
export const DECODED_OBJECT_BYTES = 224;

/**
 * What a connection may always hold and still be read, however much the
 * server holds: its calls in flight, the control frames (CREDIT, CANCEL)
 * and stream items that let them finish, a small call more. One socket
 * read's worth: a connection can hold up to this, the frame it is taking
 * in, and the read its paused socket takes ahead.
 */
export const FLOOR = 64 * 1024;

/** What holding the value `codec` decoded last costs beyond its wire bytes. */
export function decodedBytes(codec: Codec): number {
  return (codec.lastItems ?? 1) * DECODED_ITEM_BYTES + (codec.lastObjects ?? 0) * DECODED_OBJECT_BYTES;
}


/**
 * @internal For tests: `negative` is told of any budget that goes below
 * zero (a release without its charge, which would let every connection
 * take in that much more); with `servers` set, every ServerBudget made
 * joins it (an attacked server reports what it holds, and its peak).
 */
export const budgetAudit: {
  negative?: (what: 'connection' | 'server', held: number) => void;
  servers?: Set<ServerBudget>;
  /** Told how many waiters a wake of the server's budget called back. */
  woke?: (n: number) => void;
} = {};

/**
 * The server's bound is kept in two halves. The first half is first come,
 * first served: while the server holds less than it, every connection
 * takes in up to its own bound. Past it the server is "over": a connection
 * may take in more only while it holds at most its fair share of the
 * second half (that half divided by the connections now), and only while
 * the server is within its whole bound. Past the whole bound only a
 * connection that holds at most FLOOR is read (so that a client with a
 * few calls in flight can still send the frames that end them, and a new
 * one its call). Shares shrink as connections come, so they alone bound
 * nothing; the whole bound does: the server holds at most its bound, one
 * frame (the one frame that may finish when it alone keeps the server
 * over), and per connection FLOOR, a socket read in hand and one read
 * ahead, whatever the number of connections and the order they came in.
 */
export class ServerBudget {
  held = 0;
  /** Of which: bytes written and not yet sent, on all connections. */
  out = 0;
  /** Bytes written on all connections, in all (it only grows). */
  written = 0;
  /** The most it has held at once. */
  peak = 0;
  /** Connections that share the budget. */
  members = 0;
  /** Half the bound: held past it, the server is over and fair shares apply. */
  private readonly half: number;
  /** Connections (reading, or with events to send) waiting for the server to hold less. */
  private readonly room = new WaitQueue();
  /** What waits for the unsent bytes to go under half the bound (the server's write turns). */
  private readonly sent = new WaitQueue();
  /** Connections with a frame half in, waiting for the server to be within its bound without it. */
  private readonly frames = new WaitQueue();
  /** The most the server may hold for one of `frames` to go on (the bound plus the largest frame's bytes in). */
  private frameNeed = 0;

  constructor(readonly limit: number) {
    this.half = limit / 2;
    budgetAudit.servers?.add(this);
  }

  get over(): boolean {
    return this.held > this.half;
  }

  /** May a connection holding `own` bytes of this server's take in more? */
  allows(own: number): boolean {
    if (this.held <= this.half || own <= FLOOR) return true;
    return this.held <= this.limit && own <= this.half / Math.max(1, this.members);
  }

  /**
   * May the server make more to send (ask a stream's source for another
   * item)? While what waits to be sent, on all connections together, is
   * within half the bound. Not per connection: N connections each allowed
   * "one more item" would be N items. Counted apart from what peers sent,
   * so that calls held (whose streams are what ends them) never keep
   * their own streams waiting.
   */
  get mayMake(): boolean {
    return this.out <= this.half;
  }

  /** Would the server be within its whole bound without these bytes (of one connection)? */
  withinWithout(own: number): boolean {
    return this.held - own <= this.limit;
  }

  /**
   * The most bytes the server's streams make in one turn of the event
   * loop (half the bound): items written into sockets that take them at
   * once, or into sockets whose peer is gone (the write fails, and the
   * close is told only after pending I/O), never count as unsent for long.
   */
  get turnBytes(): number {
    return this.half;
  }

  addOut(n: number): void {
    const was = this.out;
    this.out += n;
    if (n > 0) this.written += n;
    // Sent: the write turns may go on.
    if (was > this.half && this.out <= this.half) this.sent.wake();
  }

  add(n: number): void {
    this.held += n;
    if (this.held > this.peak) this.peak = this.held;
  }

  remove(n: number): void {
    const was = this.held;
    this.held -= n;
    if (this.held < 0) budgetAudit.negative?.('server', this.held);
    // Back under a threshold: those waiting for room look again.
    if ((was > this.half && this.held <= this.half) || (was > this.limit && this.held <= this.limit)) this.room.wake();
    if (this.held <= this.frameNeed && this.frames.size > 0) {
      this.frameNeed = 0;
      this.frames.wake();
    }
  }

  /** Call `f` once when the server next goes under half its bound or under its bound (or a connection leaves). */
  waitUnder(f: () => void): void {
    this.room.add(f);
  }

  /**
   * Call `f` once when the server would be within its bound without the
   * `own` bytes of a frame half in (withinWithout): releases that cross no
   * threshold can make room for it.
   */
  waitWithin(f: () => void, own: number): void {
    this.frames.add(f);
    if (this.limit + own > this.frameNeed) this.frameNeed = this.limit + own;
  }

  /** Call `f` once when the unsent bytes next go under half the bound (see mayMake). */
  whenSent(f: () => void): void {
    this.sent.add(f);
  }

  forget(f: () => void): void {
    this.room.delete(f);
    this.frames.delete(f);
  }

  join(): void {
    this.members++;
  }

  /**
   * A connection left: fair shares grew. Those waiting look again, where a
   * share is more than FLOOR (a connection holding at most FLOOR is read
   * anyway, so a smaller share lets nobody go): the wakes of all the
   * connections leaving in one turn of the event loop are one, and it
   * re-checks at most WAKE_SLICE of them per turn. (What the connection
   * held was released before, and woke whom that could let go.)
   */
  leave(): void {
    this.members--;
    if (this.room.size > 0 && this.half / Math.max(1, this.members) > FLOOR) this.room.wake();
  }
}

/** The most waiters a queue re-checks in one turn of the event loop, however many wait. */
export const WAKE_SLICE = 64;

/**
 * Those waiting for room, longest waiting first. A wake calls back every
 * one waiting at that moment, after pending I/O and WAKE_SLICE per turn
 * of the event loop: all the wakes of one turn (a threshold crossed, many
 * connections closing) are one, and what they cost a turn does not grow
 * with the number of connections. A waiter still without room waits
 * again, at the back; a wake while one is under way has everyone waiting
 * then looked at again, from the front.
 */
class WaitQueue {
  private readonly waiters = new Set<() => void>();
  /** Waiters still to be called back in the wake under way, from the front. */
  private due = 0;
  /** A run is scheduled (after pending I/O). */
  private scheduled = false;

  get size(): number {
    return this.waiters.size;
  }

  add(f: () => void): void {
    this.waiters.add(f);
  }

  delete(f: () => void): void {
    this.waiters.delete(f);
  }

  wake(): void {
    this.due = this.waiters.size;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.due === 0) return;
    this.scheduled = true;
    afterIo(this.run);
  }

  private readonly run = (): void => {
    // Cleared first: a wake from inside a callback schedules the next run, once.
    this.scheduled = false;
    let called = 0;
    try {
      for (let n = Math.min(this.due, WAKE_SLICE); n > 0; n--) {
        const f = this.waiters.values().next().value;
        if (f === undefined) break;
        this.waiters.delete(f);
        this.due--;
        called++;
        f();
      }
    } finally {
      budgetAudit.woke?.(called);
      // One that threw does not strand those behind it.
      if (this.waiters.size === 0) this.due = 0;
      this.schedule();
    }
  };
}

export class ConnectionBudget {
  held = 0;
  /** Told of every release while set (the connection waits for room). */
  listener: (() => void) | undefined;
  private closed = false;
  /** Of `held`: bytes written and not yet sent. */
  private out = 0;

  constructor(
    readonly limit: number,
    readonly server: ServerBudget | undefined = undefined,
  ) {
    server?.join();
  }

  /** Charge `n` bytes written and not yet sent (a negative `n`: sent). */
  chargeOut(n: number): void {
    if (this.closed) return;
    this.out += n;
    this.server?.addOut(n);
    this.charge(n);
  }

  /** Charge `n` bytes (a negative `n` releases). */
  charge(n: number): void {
    if (n < 0) return this.release(-n);
    // Gone: close() gave back everything, and the server no longer counts us.
    if (this.closed) return;
    this.held += n;
    this.server?.add(n);
  }

  release(n: number): void {
    // After close() (which released everything), what is still let go (a
    // stream item read after the connection closed) was already given back.
    if (this.closed) return;
    this.held -= n;
    if (this.held < 0) budgetAudit.negative?.('connection', this.held);
    this.server?.remove(n);
    this.listener?.();
  }

  /** May a connection holding `bytes` of this budget take in more (its own bound, and its share of the server's)? */
  allows(bytes: number): boolean {
    return bytes <= this.limit && (this.server === undefined || this.server.allows(bytes));
  }

  /** The connection is gone: give back all it held and leave the server's count. */
  close(): void {
    if (this.closed) return;
    this.listener = undefined;
    this.server?.addOut(-this.out);
    this.out = 0;
    if (this.held !== 0) this.release(this.held);
    this.closed = true;
    this.server?.leave();
  }
}
