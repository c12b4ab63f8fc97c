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
import { IpcborError } from '../errors.js';
import { AsyncQueue } from '../peer/queue.js';

export interface EventMessage<T = unknown> {
  name: string;
  payload: T;
}

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
 * A user callback threw: that is the user's bug to see (as an uncaught
 * exception, like an EventEmitter listener's), not a reason to drop the
 * connection and every call on it.
 */
function rethrowLater(err: unknown): void {
  queueMicrotask(() => {
    throw err;
  });
}

export class Subscription<T = unknown> implements AsyncIterable<EventMessage<T>> {
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

  /** @internal made by the client */
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

  [Symbol.dispose](): void {
    void this.unsubscribe();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.unsubscribe();
  }

  [Symbol.asyncIterator](): AsyncIterator<EventMessage<T>> {
    if (this.listener) {
      throw new IpcborError('IPCBOR_ERR_PROTOCOL', 'this subscription hands its events to its listener; subscribe without a listener to iterate');
    }
    // Leaving the loop ends the subscription here and now; the server is
    // told without waiting for its answer.
    return this.queue;
  }
}
