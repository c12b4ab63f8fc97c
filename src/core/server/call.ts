/**
 * A call as the server runs it. Decoding a frame makes an IncomingCall and
 * hands it to an executor; the executor decides when it runs (the usual
 * server: at once; the lazy server: when the application asks). Running it
 * means `dispatch`: find the method, decode and check the params, call the
 * handler, and settle the call once with `reply` or `fail`.
 */
import { IpcborError, asIpcborError, messageOf } from '../errors.js';
import { DESCRIBE_METHOD } from '../protocol/heads.js';
import type { ConnectionInfo } from '../transport.js';
import type { CallContext, Dispatcher } from '../dispatcher.js';

/**
 * The context a handler gets. Its AbortSignal is made only when the handler
 * asks for it: most handlers never do, and an AbortController per call is
 * a large part of a small call's cost.
 */
export class Context implements CallContext {
  private controller: AbortController | undefined;
  private reason: unknown;
  /** What the application passed to the executor that ran the call (the lazy server's context). */
  app: unknown = undefined;

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

/**
 * A decoded call, waiting to be run by an executor: run it with
 * {@link dispatch}, or answer it yourself with `reply` or `fail`. It stays
 * charged to its connection's byte budget until settled.
 */
export interface IncomingCall {
  /** The method called (`greet`, `timer.now`, `$ipcbor.describe`). */
  readonly method: string;
  /** What its handler gets: the method, deadline, cancellation signal and connection ({@link CallContext}). */
  readonly ctx: Context;
  /**
   * The params: decoded on first use (a method that takes none never pays
   * for decoding), charged to the connection's budget; throws
   * IPCBOR_ERR_INVALID_PARAMS when the payload is not valid CBOR. A
   * streamed call's params are its stream.
   */
  params(): unknown;
  /** Settle with the handler's value (an async iterable becomes a stream). Later calls are ignored. */
  reply(value: unknown): void;
  /** Settle with an error. Later calls are ignored. */
  fail(err: IpcborError): void;
  /** True once settled, cancelled, or its connection closed: running it is pointless. */
  readonly done: boolean;
  /** A notification: nobody waits for its answer (reply and fail only end it). */
  readonly oneWay?: boolean;
  /** Tell the server's `onError` (a handler threw): the caller hears of it through `fail`, the operator through this. */
  report?(err: IpcborError): void;
}

/**
 * Decides when calls run: the server hands it each call as it is decoded.
 * The usual server runs each at once ({@link dispatch}); an executor may
 * instead keep calls and run or answer them later.
 */
export type Executor = ((call: IncomingCall) => void) & {
  /**
   * What the executor itself holds per call it keeps (a queue entry, a
   * message object), in bytes, charged to the call's connection on top of
   * the call. Default 0.
   */
  readonly heldBytes?: number;
};

/** Run a call now: the usual server's executor, given its dispatcher. */
export function immediate(dispatcher: Dispatcher): Executor {
  return (call) => dispatch(call, dispatcher);
}

/**
 * Run one call against a dispatcher and settle it: at once when the
 * handler returns a plain value (no promise, no extra microtask), or when
 * its promise settles.
 */
export function dispatch(call: IncomingCall, dispatcher: Dispatcher, app?: unknown): void {
  if (call.done) return;
  const method = call.method;
  if (app !== undefined) call.ctx.app = app;
  // Introspection turned off for this connection: describe is unknown, like any unknown method.
  const entry = method === DESCRIBE_METHOD && call.ctx.connection.introspection === false ? undefined : dispatcher.lookup(method);
  if (entry === undefined) {
    call.fail(new IpcborError('IPCBOR_ERR_UNKNOWN_METHOD', `unknown method: ${method}`, { method }));
    return;
  }
  let params: unknown;
  if (entry.takesParams !== false) {
    try {
      params = call.params();
    } catch (err) {
      call.fail(asIpcborError(err, { method, code: 'IPCBOR_ERR_INVALID_PARAMS' }));
      return;
    }
  }
  let value: unknown;
  try {
    value = entry.invoke(params, call.ctx);
  } catch (err) {
    call.fail(handlerFailed(call, err));
    return;
  }
  if (isThenable(value)) {
    value.then(
      (v) => call.reply(v),
      (err: unknown) => call.fail(handlerFailed(call, err)),
    );
  } else {
    call.reply(value);
  }
}

/**
 * A handler threw (or its promise rejected): the error its caller gets.
 * What is not an IpcborError is a failure of the handler's own, not an
 * answer it chose (an IpcborError, such as invalid params): that is also
 * reported to the server's `onError`, where an operator sees it.
 */
function handlerFailed(call: IncomingCall, err: unknown): IpcborError {
  const e = asIpcborError(err, { method: call.method, code: 'IPCBOR_ERR_HANDLER' });
  if (e !== err) call.report?.(e);
  return e;
}

export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as PromiseLike<unknown>).then === 'function';
}

