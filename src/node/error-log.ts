/**
 * The default `onError` of `serve()`, `serveLazy()` and `createLoop()`:
 * one line on stderr per failure (what failed, on which connection, the
 * error's message), at most `perSecond` lines a second. What a flood of
 * failures would print beyond that is counted, and the count printed once
 * the second is over.
 */
import { IpcborError, messageOf } from '../core/errors.js';
import type { ConnectionInfo } from '../core/transport.js';

/** Lines the default error log prints a second, at most. */
export const ERROR_LOG_PER_SECOND = 10;

export interface ErrorLogOptions {
  /** Where a line goes (default: stderr). */
  write?: (line: string) => void;
  /** Lines a second, at most (default ERROR_LOG_PER_SECOND). */
  perSecond?: number;
  /** The clock (default Date.now). */
  now?: () => number;
  /** Schedules the count of what was left out (default: an unref'd setTimeout, so it never keeps a process alive). */
  later?: (f: () => void, ms: number) => void;
}

/** One line for `err` on `connection`, control characters escaped (a peer chooses method names). */
export function errorLine(err: unknown, connection: ConnectionInfo): string {
  const method = err instanceof IpcborError && err.method !== undefined ? err.method : undefined;
  const code = err instanceof IpcborError ? `${err.code}: ` : '';
  const where = `connection ${connection.id} (${connection.transport}${connection.remote ? ` ${connection.remote}` : ''})`;
  return escapeControls(`ipcbor: ${method === undefined ? '' : `${method} failed on `}${where}: ${code}${messageOf(err)}`);
}

/** Longest line written for one failure (a peer chooses the method name and much of the text). */
const MAX_LINE = 1024;

/**
 * What a peer sent, made safe for a terminal or a log: C0 and C1 controls,
 * and the characters that reorder or break a line when displayed (bidi
 * overrides and isolates, line and paragraph separators), written as
 * escapes; the line cut to MAX_LINE characters.
 */
function escapeControls(s: string): string {
  const line = s.length > MAX_LINE ? `${s.slice(0, MAX_LINE)}… (${s.length} characters)` : s;
  // eslint-disable-next-line no-control-regex
  return line.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** A rate-limited error log, as `onError` takes it. */
export function errorLog(options: ErrorLogOptions = {}): (err: unknown, connection: ConnectionInfo) => void {
  const write = options.write ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const perSecond = options.perSecond ?? ERROR_LOG_PER_SECOND;
  const now = options.now ?? Date.now;
  const later =
    options.later ??
    ((f: () => void, ms: number) => {
      setTimeout(f, ms).unref();
    });
  let windowStart = -Infinity;
  let printed = 0;
  let suppressed = 0;
  let flushScheduled = false;
  const flush = () => {
    if (suppressed > 0) write(`ipcbor: ${suppressed} more error${suppressed === 1 ? '' : 's'} not logged (at most ${perSecond} a second)`);
    suppressed = 0;
  };
  return (err, connection) => {
    const t = now();
    if (t - windowStart >= 1000) {
      flush();
      windowStart = t;
      printed = 0;
    }
    if (printed < perSecond) {
      printed++;
      write(errorLine(err, connection));
      return;
    }
    suppressed++;
    if (flushScheduled) return;
    flushScheduled = true;
    // Once the window this count belongs to is over, say how many (an
    // error in a later window may have said it already: then nothing is left).
    const tick = () => {
      const left = windowStart + 1000 - now();
      if (left > 0) return later(tick, left);
      flushScheduled = false;
      flush();
    };
    later(tick, windowStart + 1000 - t);
  };
}
