/**
 * A call as the server runs it: the context its handler gets, how it
 * ended, and the small rules every way of running one shares.
 */
import { MAX_ERROR_TEXT } from '../constants.js';
import { IpcborError, messageOf } from '../errors.js';
import type { CallContext } from './dispatcher.js';
import { isAsyncIterable } from './streams.js';
import type { ConnectionInfo } from './transport.js';

/** How a call ended, before it is framed for the connection's protocol. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: IpcborError };

/**
 * The context a handler gets. Its AbortSignal is made only when the handler
 * asks for it: most handlers never do, and an AbortController per call is
 * a large part of a small call's cost.
 */
export class Context implements CallContext {
  private controller: AbortController | undefined;
  private reason: unknown;
  constructor(
    readonly method: string,
    readonly connection: ConnectionInfo,
    readonly deadline: number | undefined,
  ) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.reason !== undefined) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.controller) this.controller.abort(reason);
    else this.reason ??= reason;
  }
}

/** Cut text to at most `max` characters. */
export function clip(text: string, max = MAX_ERROR_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

/** Close an async iterable nobody will read, so its cleanup (`finally`) runs. */
export function discardIterable(value: unknown): void {
  if (!isAsyncIterable(value) || value instanceof Uint8Array) return;
  try {
    const it = value[Symbol.asyncIterator]();
    void Promise.resolve(it.return?.()).catch(() => undefined);
  } catch {
    // a broken iterable: nothing to close
  }
}

export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as PromiseLike<unknown>).then === 'function';
}

/** Turn whatever a handler threw into an error with a code. */
export function toIpcborError(err: unknown, method?: string): IpcborError {
  if (err instanceof IpcborError) return err;
  return new IpcborError('IPCBOR_ERR_HANDLER', messageOf(err), { cause: err, ...(method === undefined ? {} : { method }) });
}

