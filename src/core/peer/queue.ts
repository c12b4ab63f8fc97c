/**
 * The one bounded async queue behind every async iterable ipcbor hands
 * out: a stream's items (credit bounds them) and a subscription's events
 * (bounded by count and bytes, oldest dropped first). One reader at a time;
 * `break` in a `for await` stops it and tells the producer.
 */
import { IpcborError } from '../errors.js';

export interface QueueLimits {
  /** Items held before the oldest is dropped (Infinity: never). */
  maxItems: number;
  /** Bytes held before the oldest are dropped (Infinity: never). */
  maxBytes: number;
}

export interface QueueHooks {
  /** An item left the queue (taken by the reader, dropped, or cleared): `bytes` are free again. */
  released?(bytes: number, taken: boolean): void;
  /** Items were dropped to make room. */
  dropped?(count: number): void;
  /** The reader stopped early (`return`, `throw`, `break`). */
  stopped?(): void;
}

const UNBOUNDED: QueueLimits = { maxItems: Infinity, maxBytes: Infinity };

type Waiter<T> = { resolve(r: IteratorResult<T>): void; reject(e: unknown): void };

export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  // True private fields: a queue handed to a handler (its stream of params)
  // has no own properties, so nothing of its insides shows in a validation
  // error or a log.
  #items: T[] = [];
  #sizes: number[] = [];
  #waiter: Waiter<T> | undefined;
  /** 'open' until the producer ends or fails it, or the reader stops. */
  #state: 'open' | 'ended' | 'failed' | 'stopped' = 'open';
  #failure: unknown;
  #held = 0;
  readonly #hooks: QueueHooks;
  readonly #limits: QueueLimits;

  constructor(hooks: QueueHooks = {}, limits: QueueLimits = UNBOUNDED) {
    this.#hooks = hooks;
    this.#limits = limits;
  }

  /** Bytes of the items held. */
  get heldBytes(): number {
    return this.#held;
  }

  /** Items waiting for the reader. */
  get length(): number {
    return this.#items.length;
  }

  /** True once the producer ended or failed it, or the reader stopped. */
  get done(): boolean {
    return this.#state !== 'open';
  }

  /** Add an item of `bytes` (its share of the memory budget). Ignored once done. */
  push(item: T, bytes = 0): void {
    if (this.#state !== 'open') {
      this.#hooks.released?.(bytes, false);
      return;
    }
    const w = this.#waiter;
    if (w) {
      this.#waiter = undefined;
      this.#hooks.released?.(bytes, true);
      w.resolve({ value: item, done: false });
      return;
    }
    this.#items.push(item);
    this.#sizes.push(bytes);
    this.#held += bytes;
    let dropped = 0;
    // The newest item always stays, even when it alone is over the bytes bound.
    while (this.#items.length > 1 && (this.#items.length > this.#limits.maxItems || this.#held > this.#limits.maxBytes)) {
      this.#shift(false);
      dropped++;
    }
    if (dropped > 0) this.#hooks.dropped?.(dropped);
  }

  #shift(taken: boolean): T {
    const item = this.#items.shift()!;
    const bytes = this.#sizes.shift()!;
    this.#held -= bytes;
    this.#hooks.released?.(bytes, taken);
    return item;
  }

  #clear(): void {
    while (this.#items.length > 0) this.#shift(false);
  }

  /** The producer finished: the reader gets what is queued, then `done`. */
  end(): void {
    if (this.#state !== 'open') return;
    this.#state = 'ended';
    this.#wakeDone();
  }

  /**
   * The producer failed: the reader gets what is queued, then `err`. With
   * `drop`, what is queued is released now and the reader gets `err` at
   * once (the call it belonged to is over: nobody may read it any more).
   */
  fail(err: unknown, drop = false): void {
    if (drop) this.#clear();
    if (this.#state !== 'open') return;
    this.#state = 'failed';
    this.#failure = err;
    this.#wakeDone();
  }

  /** Drop everything and end now (the connection closed under a listener that reads nothing). */
  discard(): void {
    this.#clear();
    this.end();
  }

  #wakeDone(): void {
    const w = this.#waiter;
    if (!w) return;
    this.#waiter = undefined;
    if (this.#state === 'failed') {
      this.#state = 'ended';
      w.reject(this.#failure);
    } else {
      w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#items.length > 0) return Promise.resolve({ value: this.#shift(true), done: false });
    if (this.#state === 'failed') {
      // Reported once; later reads see a finished queue.
      this.#state = 'ended';
      return Promise.reject(this.#failure);
    }
    if (this.#state !== 'open') return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter) return Promise.reject(new IpcborError('IPCBOR_ERR_PROTOCOL', 'this iterable may be read by one reader at a time'));
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  /** The reader stopped (`break`, `return`): drop what is held and tell the producer. */
  return(): Promise<IteratorResult<T>> {
    const open = this.#state === 'open';
    this.#clear();
    if (open) {
      this.#state = 'stopped';
      this.#wakeDone();
      this.#hooks.stopped?.();
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Like `return()` (the producer is told to stop), then rejects with `err`. */
  throw(err?: unknown): Promise<IteratorResult<T>> {
    void this.return();
    return Promise.reject(err);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
