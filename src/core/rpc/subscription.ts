/**
 * A client's subscription to server events: a handle that is an async
 * iterable and is disposable. It lives until it is disposed or the
 * connection closes.
 *
 * Overflow policy (documented in README and docs/PROTOCOL.md): a reader that
 * falls behind never slows anyone else. The server keeps a bounded queue per
 * connection; this handle keeps a bounded queue for its iterator. When
 * either is full the oldest event is dropped and counted in `dropped`
 * (observable also through the `onDrop` callback).
 */
import { IpcborError } from '../errors.js';

export interface EventMessage<T = unknown> {
  name: string;
  payload: T;
}

export type EventListener<T = unknown> = (payload: T, name: string) => void;

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
  private readonly max: number;
  private readonly detach: (s: Subscription<T>) => Promise<void>;
  private readonly queue: EventMessage<T>[] = [];
  private waiter: { resolve: (r: IteratorResult<EventMessage<T>>) => void; reject: (e: unknown) => void } | undefined;
  private ended = false;
  private failure: unknown;

  constructor(name: string, listener: EventListener<T> | undefined, max: number, detach: (s: Subscription<T>) => Promise<void>) {
    this.name = name;
    this.listener = listener;
    this.max = max;
    this.detach = detach;
  }

  get closed(): boolean {
    return this.ended;
  }

  /** @internal an event arrived */
  deliver(name: string, payload: T): void {
    if (this.ended) return;
    if (this.listener) {
      try {
        this.listener(payload, name);
      } catch (err) {
        rethrowLater(err);
      }
      return;
    }
    const message = { name, payload };
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: message, done: false });
      return;
    }
    if (this.queue.length >= this.max) {
      this.queue.shift();
      this.noteDropped(1);
    }
    this.queue.push(message);
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
    if (this.ended) return;
    this.ended = true;
    this.failure = err;
    const w = this.waiter;
    this.waiter = undefined;
    if (w) {
      if (err !== undefined && this.queue.length === 0) w.reject(err);
      else w.resolve({ value: undefined, done: true });
    }
  }

  /** Stop receiving. Safe to call twice. */
  unsubscribe(): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.close();
    this.failure = undefined;
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
    return {
      next: () => {
        const value = this.queue.shift();
        if (value) return Promise.resolve({ value, done: false });
        if (this.ended) {
          if (this.failure !== undefined) {
            const f = this.failure;
            this.failure = undefined;
            return Promise.reject(f);
          }
          return Promise.resolve({ value: undefined, done: true });
        }
        if (this.waiter) return Promise.reject(new IpcborError('IPCBOR_ERR_PROTOCOL', 'a subscription may be read by one reader at a time'));
        return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
      },
      // Leaving the loop ends the subscription here and now; the server is
      // told without waiting for its answer.
      return: () => {
        void this.unsubscribe();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
