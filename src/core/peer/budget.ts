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
  /** The most it has held at once. */
  peak = 0;
  /** Connections that share the budget. */
  members = 0;
  /** Half the bound: held past it, the server is over and fair shares apply. */
  private readonly half: number;
  private readonly waiters = new Set<() => void>();
  private waking = false;

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

  addOut(n: number): void {
    const was = this.out;
    this.out += n;
    // Sent: streams waiting for room to make items look again.
    if (was > this.half && this.out <= this.half) this.wake();
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
    if ((was > this.half && this.held <= this.half) || (was > this.limit && this.held <= this.limit)) this.wake();
  }

  /** Call `f` once when the server next goes under half its bound or under its bound (or a member leaves). */
  waitUnder(f: () => void): void {
    this.waiters.add(f);
  }

  forget(f: () => void): void {
    this.waiters.delete(f);
  }

  join(): void {
    this.members++;
  }

  leave(): void {
    this.members--;
    // Fair shares grew: a waiting connection may read again.
    if (this.waiters.size > 0) this.wake();
  }

  /** Once per microtask, however many releases there were: each waiter re-checks for itself. */
  private wake(): void {
    if (this.waking) return;
    this.waking = true;
    queueMicrotask(() => {
      this.waking = false;
      const all = [...this.waiters];
      this.waiters.clear();
      for (const f of all) f();
    });
  }
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
