/**
 * How a caller bounds one call: the same options for a call over a socket
 * and for a service called in-process.
 */
import { MAX_TIMER_MS } from './constants.js';

export interface CallOptions {
  /** Reject with IPCBOR_ERR_TIMEOUT after this many ms; the deadline also travels to the server (extended protocol). */
  timeout?: number;
  /** Abort the call: it rejects with IPCBOR_ERR_CANCELLED and the server's handler is signalled (extended protocol). */
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
