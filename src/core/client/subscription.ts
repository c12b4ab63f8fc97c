/**
 * A client's subscription to server events: a handle that is an async
 * iterable and is disposable. It lives until it is disposed or the
 * connection closes.
 *
 * Overflow policy (README, docs/PROTOCOL.md §10): a reader that falls
 * behind never slows anyone else. The server keeps a bounded queue per
 * connection; this handle keeps one for its iterator, bounded by count and
 * by bytes. When either is full the oldest event is dropped and counted in
 * `dropped` (observable also through the `onDrop` callback).
 */
import { IpcborError, rethrowLater } from '../errors.js';
import { AsyncQueue } from '../peer/queue.js';

/** One event, as a {@link Subscription}'s iterator yields it. */
export interface EventMessage<T = unknown> {
  /** The event's name (with `*`, tells which event it is). */
  name: string;
  /** What the server emitted with it. */
  payload: T;
}

/** A callback that receives a subscription's events (`client.subscribe(name, listener)`). */
export type EventListener<T = unknown> = (payload: T, name: string) => void;

/**
 * How many events a subscription's iterator may hold, and what a full
 * queue does: `drop` its oldest event, or `pause` the connection (it
 * stops reading until the reader takes one; the server then queues, and
 * drops, for the whole connection).
 */
export interface EventLimits {
  maxItems: number;
  maxBytes: number;
  overflow: 'drop' | 'pause';
}

/**
 * A subscription to the server's events of one name (or `*`: all), made by
 * `client.subscribe()`: an async iterable of {@link EventMessage}s (unless
 * made with a listener), disposable with `using`. It lives until
 * `unsubscribe()`, disposal, or the client's close; with `reconnect` it
 * survives reconnections.
 *
 * A reader that falls behind slows no one: past the client's `eventQueue`
 * ({@link DEFAULT_EVENT_QUEUE}) events or `eventQueueBytes`
 * ({@link DEFAULT_EVENT_QUEUE_BYTES}) bytes, the oldest event is dropped and
 * counted in `dropped` (unless the client's `eventOverflow` is `pause`).
 * `ready` rejects with `IPCBOR_ERR_UNKNOWN_EVENT` (no such event),
 * `IPCBOR_ERR_OVERLOADED` (over the server's `maxSubscriptions`) or
 * `IPCBOR_ERR_NOT_SUPPORTED` (a server of the base framing only).
 *
 * @example
 * ```ts
 * using sub = client.subscribe<{ at: number }>('tick');
 * await sub.ready;
 * for await (const { payload } of sub) {
 *   console.log(payload.at);
 *   if (payload.at > 10) break; // ends the subscription
 * }
 * ```
 */
export class Subscription<T = unknown> implements AsyncIterable<EventMessage<T>> {
  /** The event name subscribed to (`*`: all). */
  readonly name: string;
  /** Events lost to overflow (server side or in this handle's queue). */
  dropped = 0;
  /** Called with the number of events lost each time some are. */
  onDrop: ((count: number) => void) | undefined;
  /** Resolves once the server has registered the subscription; rejects if it refused. */
  ready: Promise<void> = Promise.resolve();

  private readonly listener: EventListener<T> | undefined;
  private readonly detach: (s: Subscription<T>) => Promise<void>;
  private readonly queue: AsyncQueue<EventMessage<T>>;
  private readonly limits: EventLimits;
  /** @internal with `pause`: the connection delivering to it re-reads its state when the reader takes an event */
  onRoom: (() => void) | undefined;

  /**
   * Made by the client (`client.subscribe`).
   * @hidden
   */
  constructor(name: string, listener: EventListener<T> | undefined, limits: EventLimits, detach: (s: Subscription<T>) => Promise<void>) {
    this.name = name;
    this.listener = listener;
    this.detach = detach;
    this.limits = limits;
    // With `pause` nothing is dropped here: the connection stops reading
    // once the queue is at its bound (one event past it at most).
    const bounds = limits.overflow === 'pause' ? { maxItems: Infinity, maxBytes: Infinity } : limits;
    this.queue = new AsyncQueue({ dropped: (n) => this.noteDropped(n), stopped: () => void this.detach(this), released: () => this.onRoom?.() }, bounds);
  }

  /** @internal `pause` only: the reader is a full queue behind, so the connection should stop reading. */
  get full(): boolean {
    const q = this.queue;
    return this.limits.overflow === 'pause' && !q.done && (q.length >= this.limits.maxItems || q.heldBytes >= this.limits.maxBytes);
  }

  /** True once the subscription has ended (unsubscribed, disposed, or its client closed). */
  get closed(): boolean {
    return this.queue.done;
  }

  /** @internal an event arrived; `bytes` is its encoded size */
  deliver(name: string, payload: T, bytes: number): void {
    if (this.queue.done) return;
    if (this.listener) {
      try {
        this.listener(payload, name);
      } catch (err) {
        rethrowLater(err);
      }
      return;
    }
    this.queue.push({ name, payload }, bytes);
  }

  /** @internal events were lost */
  noteDropped(count: number): void {
    this.dropped += count;
    try {
      this.onDrop?.(count);
    } catch (err) {
      rethrowLater(err);
    }
  }

  /** @internal the connection closed (with `err`) or the server refused the subscription */
  close(err?: unknown): void {
    if (err === undefined) this.queue.end();
    else this.queue.fail(err);
  }

  /** Stop receiving. Safe to call twice. */
  unsubscribe(): Promise<void> {
    if (this.queue.done) return Promise.resolve();
    this.queue.discard();
    return this.detach(this);
  }

  /** `using`: unsubscribe without waiting. */
  [Symbol.dispose](): void {
    void this.unsubscribe();
  }

  /** `await using`: unsubscribe. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.unsubscribe();
  }

  /** The events, in order; `break` unsubscribes. Ends when the subscription does. */
  [Symbol.asyncIterator](): AsyncIterator<EventMessage<T>> {
    if (this.listener) {
      throw new IpcborError('IPCBOR_ERR_PROTOCOL', 'this subscription hands its events to its listener; subscribe without a listener to iterate');
    }
    // Leaving the loop ends the subscription here and now; the server is
    // told without waiting for its answer.
    return this.queue;
  }
}

/**
 * @internal
 * A client's subscriptions by event name: one registry for the client,
 * whichever connection delivers the events (a reconnecting client's
 * outlive each connection).
 */
export class SubscriptionSet {
  private readonly byName = new Map<string, Set<Subscription>>();
  /** With `pause`: told when a reader took an event, so the connection may read on. */
  onRoom: (() => void) | undefined;

  constructor(readonly limits: EventLimits) {}

  add(sub: Subscription): void {
    let set = this.byName.get(sub.name);
    if (!set) {
      set = new Set();
      this.byName.set(sub.name, set);
    }
    set.add(sub);
    if (this.limits.overflow === 'pause') sub.onRoom = () => this.onRoom?.();
  }

  /** Take `sub` out; true when it was the last of its name. */
  delete(sub: Subscription): boolean {
    const set = this.byName.get(sub.name);
    if (!set?.delete(sub)) return false;
    if (set.size > 0) return false;
    this.byName.delete(sub.name);
    return true;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** Every subscription, once. */
  all(): Subscription[] {
    const out: Subscription[] = [];
    for (const set of this.byName.values()) for (const s of set) out.push(s);
    return out;
  }

  /** Every name subscribed to. */
  names(): string[] {
    return [...this.byName.keys()];
  }

  /** `pause`: is some reader a full queue behind? */
  get full(): boolean {
    if (this.limits.overflow !== 'pause') return false;
    for (const set of this.byName.values()) for (const s of set) if (s.full) return true;
    return false;
  }

  /** Does an event of `name` (or `alias`) reach anyone? */
  wanted(name: string, alias: string | undefined): boolean {
    return this.byName.has(name) || (alias !== undefined && this.byName.has(alias)) || this.byName.has('*');
  }

  /** Hand an event to the subscriptions of its name, of its alias, and of `*`. */
  deliver(name: string, alias: string | undefined, value: unknown, bytes: number): void {
    const named = this.byName.get(name);
    if (named) for (const s of named) s.deliver(name, value, bytes);
    if (alias !== undefined) {
      const aliased = this.byName.get(alias);
      if (aliased) for (const s of aliased) s.deliver(alias, value, bytes);
    }
    // `*` names an event the way it is subscribed to by name: a default
    // service's events by their bare name.
    const all = this.byName.get('*');
    if (all) for (const s of all) s.deliver(alias ?? name, value, bytes);
  }

  /** The server dropped `n` events for this connection: every subscription hears of it. */
  noteDropped(n: number): void {
    for (const set of this.byName.values()) for (const s of set) s.noteDropped(n);
  }
}
