/**
 * A call as the client holds it, from the moment it is made until it
 * settles: its timeout and its abort signal are wired here, once, whether
 * it waits for a connection (client.ts) or was sent on one
 * (connection.ts).
 */
import { IpcborError } from '../errors.js';
import type { AsyncQueue } from '../peer/queue.js';
import { isAsyncIterable } from '../peer/streams.js';

/**
 * @internal Params already encoded as CBOR, sent as they are: a caller that
 * sends the same params many times (`ipcbor bench`) encodes them once.
 * The bytes are not checked; they must not change while calls use them.
 */
export class EncodedParams {
  constructor(readonly bytes: Uint8Array) {}
}

/** Where a sent call is: told when the caller gives up on it. */
export interface CallCarrier {
  abandon(call: OutgoingCall, err: IpcborError): void;
}

const noSettler = (): void => {};

/** The call whose promise is being made: the executor below is one function for all calls, not a closure per call. */
let making: OutgoingCall | undefined;

function takeSettlers(resolve: (value: never) => void, reject: (err: unknown) => void): void {
  const call = making!;
  making = undefined;
  call.resolveFn = resolve as (value: unknown) => void;
  call.rejectFn = reject;
}

export class OutgoingCall {
  /** The id it was sent with (extended protocol); 0 until then. */
  id = 0;
  /** The caller's promise is settled. */
  settled = false;
  /** Its connection counts it as done (a result stream counts until it ends). */
  over = false;
  /** The answer is a stream: its items land here. */
  stream: AsyncQueue<unknown> | undefined;
  /** The encoded params while it waits for a free server slot. */
  payload: Uint8Array | undefined;
  /** The connection it was sent on. */
  conn: CallCarrier | undefined;
  /** Streamed params. */
  readonly source: AsyncIterable<unknown> | undefined;
  /** When it began to wait, for a connection or for a free server slot (0: it never waited). */
  private waitingSince = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private onAbort: (() => void) | undefined;

  constructor(
    readonly method: string,
    readonly params: unknown,
    /** ms (already checked: see checkTimeout), or none. */
    private readonly timeout: number | undefined,
    private readonly signal: AbortSignal | undefined,
    /** The caller gave up (timeout, abort): take the call back from wherever it is. */
    giveUp: (call: OutgoingCall, err: IpcborError) => void,
  ) {
    this.source = isAsyncIterable(params) ? params : undefined;
    if (timeout !== undefined) {
      // A call's own timer keeps the process alive while the call waits.
      this.timer = setTimeout(() => giveUp(this, new IpcborError('IPCBOR_ERR_TIMEOUT', `${method} timed out after ${timeout} ms`, { method })), timeout);
    }
    if (signal) {
      this.onAbort = () => giveUp(this, cancelled(method, signal.reason));
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  /** The caller's promise, settled by finish(); made once, right after the call. */
  promise<R>(): Promise<R> {
    making = this;
    return new Promise<R>(takeSettlers);
  }

  /** @internal set by takeSettlers */
  resolveFn: (value: unknown) => void = noSettler;
  /** @internal set by takeSettlers */
  rejectFn: (err: unknown) => void = noSettler;

  /** It waits (for a connection, or for a free server slot): when it is sent, the deadline it carries is what is left of its timeout. The first wait counts from its start. */
  markWaiting(): void {
    if (this.waitingSince === 0) this.waitingSince = Date.now();
  }

  /** The deadline it carries to the server, in ms: its timeout, less the time it waited to be sent. */
  remaining(): number | undefined {
    if (this.timeout === undefined || this.waitingSince === 0) return this.timeout;
    return Math.max(0, this.timeout - (Date.now() - this.waitingSince));
  }

  /**
   * Settle the caller's promise (once): with `err` if given, else `value`.
   * With `running` (resolved with its result stream) the timer and the
   * signal still watch the call; otherwise they are released.
   */
  finish(value: unknown, err?: unknown, running = false): void {
    if (!running) {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      if (this.onAbort) this.signal!.removeEventListener('abort', this.onAbort);
      this.onAbort = undefined;
    }
    if (this.settled) return;
    this.settled = true;
    if (err !== undefined) this.rejectFn(err);
    else this.resolveFn(value);
  }
}

/** IPCBOR_ERR_CANCELLED for a call whose signal aborted. */
export function cancelled(method: string, reason: unknown): IpcborError {
  return new IpcborError('IPCBOR_ERR_CANCELLED', `${method} was cancelled`, { method, cause: reason });
}
