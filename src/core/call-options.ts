/**
 * How a caller bounds one call: the same options for a call over a socket
 * and for a service called in-process.
 */
import { MAX_TIMER_MS } from './constants.js';

/**
 * How a caller bounds one call, remote (`client.call`, `client.service()`)
 * or in-process (a service's own methods). Without them a call waits as
 * long as it takes (a client's own `timeout` option aside).
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * await timer.echo({ message: 'hi' }, { timeout: 1000, signal: ac.signal });
 * ```
 */
export interface CallOptions {
  /**
   * Reject with IPCBOR_ERR_TIMEOUT after this many ms; the deadline also
   * travels to the server (extended protocol), whose handler sees it as
   * `ctx.deadline` and its `ctx.signal` abort. Default: the client's
   * `timeout` option for a remote call, else none. A value over
   * {@link MAX_TIMER_MS} (about 24.8 days) means none; a negative or
   * non-number value throws a RangeError. For a result stream it holds
   * until the stream ends.
   */
  timeout?: number;
  /**
   * Abort the call: it rejects with IPCBOR_ERR_CANCELLED and the server's
   * handler is signalled (extended protocol). An already aborted signal
   * rejects the call at once.
   */
  signal?: AbortSignal;
}

/**
 * A call's timeout, checked the one way both remote and in-process calls
 * do: a RangeError if it is not a duration; undefined (no deadline) when
 * absent or longer than a timer can wait (2^31-1 ms, about 24.8 days).
 */
export function checkTimeout(timeout: number | undefined): number | undefined {
  if (timeout === undefined) return undefined;
  if (typeof timeout !== 'number' || !(timeout >= 0)) {
    throw new RangeError(`timeout must be a non-negative number of milliseconds, got ${String(timeout)}`);
  }
  return timeout > MAX_TIMER_MS ? undefined : timeout;
}
