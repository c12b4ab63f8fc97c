/**
 * Credit-based streams, used the same way by both ends: the receiver of a
 * stream holds an InboundStream, the sender runs `pumpStream`.
 *
 * The receiver grants `window` items up front (announced in the hello) and
 * then grants more with CREDIT frames as its consumer takes items, so
 * neither side ever buffers more than `window` items of one stream.
 */
import { IpcborError } from '../errors.js';

export interface InboundHooks {
  /** Send CREDIT for n more items. */
  grant(n: number): void;
  /** The consumer stopped early: send CANCEL. */
  cancel(): void;
}

export class InboundStream<T = unknown> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private finished = false;
  private failure: unknown = undefined;
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private waiterReject: ((e: unknown) => void) | undefined;
  private allowance: number;
  private consumed = 0;
  private stopped = false;

  constructor(
    private readonly window: number,
    private readonly hooks: InboundHooks,
  ) {
    this.allowance = window;
  }

  /** True once the stream ended, failed, or the consumer stopped. */
  get done(): boolean {
    return this.finished || this.stopped;
  }

  /** An item arrived. Returns false if the sender overran its credit. */
  push(item: T): boolean {
    if (this.done) return true;
    if (--this.allowance < 0) return false;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = this.waiterReject = undefined;
      this.took();
      w({ value: item, done: false });
    } else {
      this.items.push(item);
    }
    return true;
  }

  end(): void {
    if (this.done) return;
    this.finished = true;
    this.settleWaiter();
  }

  fail(err: unknown): void {
    if (this.done) return;
    this.finished = true;
    this.failure = err;
    this.settleWaiter();
  }

  private settleWaiter(): void {
    if (!this.waiter) return;
    const w = this.waiter;
    const r = this.waiterReject!;
    this.waiter = this.waiterReject = undefined;
    if (this.failure !== undefined) r(this.failure);
    else w({ value: undefined, done: true });
  }

  private took(): void {
    // Grant in batches of half a window: fewer CREDIT frames, no stall.
    if (++this.consumed >= Math.max(1, this.window >> 1) && !this.done) {
      this.allowance += this.consumed;
      this.hooks.grant(this.consumed);
      this.consumed = 0;
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) {
      const value = this.items.shift()!;
      this.took();
      return Promise.resolve({ value, done: false });
    }
    if (this.failure !== undefined) {
      const f = this.failure;
      this.failure = undefined;
      return Promise.reject(f);
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    if (this.waiter) return Promise.reject(new IpcborError('IPCBOR_ERR_PROTOCOL', 'a stream may be read by one reader at a time'));
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.waiterReject = reject;
    });
  }

  /** The consumer stopped (`break`, `return`): tell the sender to stop. */
  return(): Promise<IteratorResult<T>> {
    if (!this.done) {
      this.stopped = true;
      this.items.length = 0;
      this.hooks.cancel();
      this.settleWaiter();
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Like `return()` (the sender is told to stop), then rejects with `err`. */
  throw(err?: unknown): Promise<IteratorResult<T>> {
    void this.return();
    return Promise.reject(err);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** The sending side of one stream. */
export interface OutboundStream {
  /** Items the receiver still accepts. */
  credit: number;
  /** Set when the receiver cancelled or the call ended; the pump stops. */
  stopped: boolean;
  /** Wakes the pump when credit arrives or the stream is stopped. */
  wake: (() => void) | undefined;
}

export interface PumpIo {
  /** Encode and send one item; throw to fail the stream. */
  item(value: unknown): void;
  end(): void;
  error(err: unknown): void;
  /** Resolves when the transport can take more (backpressure). */
  writable(): Promise<void> | undefined;
}

/** Is `v` something to stream rather than send as one value? */
export function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

export function createOutbound(credit: number): OutboundStream {
  return { credit, stopped: false, wake: undefined };
}

/** Add credit (a CREDIT frame arrived) and wake the pump. */
export function addCredit(out: OutboundStream, n: number): void {
  out.credit += n;
  stopOrWake(out);
}

export function stopOutbound(out: OutboundStream): void {
  out.stopped = true;
  stopOrWake(out);
}

function stopOrWake(out: OutboundStream): void {
  const w = out.wake;
  out.wake = undefined;
  w?.();
}

/**
 * Send `source` item by item as credit allows. Stops, and closes the source
 * (its `finally` blocks run), as soon as the receiver cancels.
 */
export async function pumpStream(source: AsyncIterable<unknown>, out: OutboundStream, io: PumpIo): Promise<void> {
  const it = source[Symbol.asyncIterator]();
  let sourceDone = false;
  try {
    for (;;) {
      while (!out.stopped && out.credit <= 0) await new Promise<void>((r) => (out.wake = r));
      if (out.stopped) break;
      const blocked = io.writable();
      if (blocked) await blocked;
      if (out.stopped) break;
      let r: IteratorResult<unknown>;
      try {
        r = await it.next();
      } catch (err) {
        sourceDone = true;
        throw err;
      }
      if (r.done) {
        sourceDone = true;
        if (!out.stopped) io.end();
        return;
      }
      if (out.stopped) break;
      out.credit--;
      io.item(r.value);
    }
  } catch (err) {
    if (!out.stopped) io.error(err);
  } finally {
    if (!sourceDone) {
      try {
        await it.return?.();
      } catch {
        // the source's own cleanup failed; nobody is left to tell
      }
    }
  }
}
