/**
 * What the attack server and the attack matrix share (the child imports
 * it too, so nothing here may import the test harness).
 */

/** The attack server's exit code when a byte budget went below zero. */
export const NEGATIVE_EXIT = 86;

/** What `stats` reports of the attacked server. */
export interface Stats {
  /** Its server budget now, its peak since the last `reset`, and its bound. */
  held: number;
  peak: number;
  limit: number;
  /** Bytes its sockets read since the last `reset` (closed ones included). */
  bytesRead: number;
  /** The most one open socket read since the last `reset`. */
  maxSocketRead: number;
  /** Its sockets open now. */
  sockets: number;
  /** Calls parked (lazy) or messages kept unanswered (loop). */
  waiting: number;
  /** Waiters the server budget's wakes called back since the last `reset`. */
  rechecks: number;
}

/** The length of the byte string whose CBOR encoding is exactly `size` bytes (size >= 1). */
export function padLength(size: number): number {
  for (const head of [1, 2, 3, 5, 9]) {
    const n = size - head;
    const needs = n < 24 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : n < 2 ** 32 ? 5 : 9;
    if (n >= 0 && needs === head) return n;
  }
  throw new RangeError(`no byte string encodes to exactly ${size} bytes`);
}

/** A byte string whose CBOR encoding is exactly `size` bytes. */
export const padOf = (size: number): Uint8Array => new Uint8Array(padLength(size));
