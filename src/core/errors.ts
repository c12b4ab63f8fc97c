/**
 * Errors with stable string codes. Tests and users match on `code`, never on
 * message text. `instanceof IpcborError` also holds across two installed
 * copies of the package, because the check looks for a registered symbol
 * rather than one class identity.
 */

/**
 * The code of every error ipcbor makes ({@link IpcborError.code}); match on
 * it, never on the message. A {@link RemoteError} may carry any code the
 * peer sent, so `code` is typed as this union or any string.
 */
export type ErrorCode =
  /** Connecting failed (no server at the address, refused, timed out). */
  | 'IPCBOR_ERR_CONNECT'
  /** A connection closed (or was never open) while a call waited on it. */
  | 'IPCBOR_ERR_CONNECTION_CLOSED'
  /** A call's timeout elapsed on the client. */
  | 'IPCBOR_ERR_TIMEOUT'
  /** A call's deadline passed on the server, which stopped the handler. */
  | 'IPCBOR_ERR_DEADLINE_EXCEEDED'
  /** The caller aborted (cancelled) a call. */
  | 'IPCBOR_ERR_CANCELLED'
  /** The server answered with an error (the base framing: a nonzero status, text only). */
  | 'IPCBOR_ERR_REMOTE'
  /** No handler for the method. */
  | 'IPCBOR_ERR_UNKNOWN_METHOD'
  /** The request payload is not what the method takes. */
  | 'IPCBOR_ERR_INVALID_PARAMS'
  /** A handler threw. */
  | 'IPCBOR_ERR_HANDLER'
  /** A frame's declared length is over the receiver's limit. */
  | 'IPCBOR_ERR_FRAME_TOO_LARGE'
  /** A method name is over the limit. */
  | 'IPCBOR_ERR_METHOD_TOO_LONG'
  /** A frame that cannot be parsed (bad UTF-8 method, bad extended frame). */
  | 'IPCBOR_ERR_BAD_FRAME'
  /** CBOR that the strict decoder refuses. */
  | 'IPCBOR_ERR_DECODE'
  /** A value that has no interop-safe CBOR form. */
  | 'IPCBOR_ERR_ENCODE'
  /** An address string or flag set that cannot be parsed or used. */
  | 'IPCBOR_ERR_INVALID_ADDRESS'
  /** A live server already listens on the unix socket (or service name) a server was asked to take. */
  | 'IPCBOR_ERR_ALREADY_RUNNING'
  /** The peer broke the protocol (an answer nobody asked for, a bad negotiation). */
  | 'IPCBOR_ERR_PROTOCOL'
  /** The feature needs the extended protocol but the peer speaks only the base framing. */
  | 'IPCBOR_ERR_NOT_SUPPORTED'
  /** The server is shutting down and takes no new calls. */
  | 'IPCBOR_ERR_SHUTTING_DOWN'
  /** Too many calls in flight, connections, or subscriptions. */
  | 'IPCBOR_ERR_OVERLOADED'
  /** No such event to subscribe to. */
  | 'IPCBOR_ERR_UNKNOWN_EVENT'
  /** A peer took too long to finish a frame it had started. */
  | 'IPCBOR_ERR_FRAME_TIMEOUT'
  /** A connection was idle for longer than the idle timeout. */
  | 'IPCBOR_ERR_IDLE_TIMEOUT';

const BRAND = Symbol.for('ipcbor.error');

/** The optional parts of an {@link IpcborError}. */
export interface IpcborErrorOptions {
  /** The error that caused this one (as `Error.cause`). */
  cause?: unknown;
  /** The method of the call that failed, when there is one. */
  method?: string;
  /** Structured data sent by the peer with a remote error (extended protocol). */
  data?: unknown;
}

/**
 * Every error ipcbor throws or rejects with: an `Error` with a stable
 * {@link ErrorCode} in `code`. `instanceof IpcborError` also holds for
 * errors made by another installed copy of ipcbor.
 *
 * @example
 * ```ts
 * try {
 *   await client.call('add', { a: 1, b: 2 }, { timeout: 1000 });
 * } catch (err) {
 *   if (err instanceof IpcborError && err.code === 'IPCBOR_ERR_TIMEOUT') console.log('too slow');
 *   else throw err;
 * }
 * ```
 */
export class IpcborError extends Error {
  /** What went wrong, as a stable code. */
  readonly code: ErrorCode | (string & {});
  /** The method of the call that failed, when there is one. */
  readonly method: string | undefined;
  /** Structured data the peer sent with a remote error (extended protocol); undefined otherwise. */
  readonly data: unknown;

  /**
   * @param code - the error's code
   * @param message - the text for people
   * @param options - its cause, method and data
   */
  constructor(code: ErrorCode | (string & {}), message: string, options: IpcborErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.method = options.method;
    this.data = options.data;
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** `'IpcborError'`. */
  override get name(): string {
    return 'IpcborError';
  }

  /** `instanceof IpcborError` is also true of errors made by another installed copy of ipcbor. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // Subclasses keep the ordinary prototype check; the base class also
    // recognises errors made by another installed copy of ipcbor.
    if (this !== IpcborError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/**
 * An error the remote side reported. `code` is the code the peer sent
 * (extended protocol; a handler's own {@link IpcborError} keeps its code,
 * anything else it throws arrives as `IPCBOR_ERR_HANDLER`) or
 * `IPCBOR_ERR_REMOTE` (the base framing: text only). `data` is what the
 * handler's error carried.
 *
 * @example
 * ```ts
 * try {
 *   await client.call('withdraw', { amount: 100 });
 * } catch (err) {
 *   if (err instanceof RemoteError && err.code === 'INSUFFICIENT_FUNDS') console.log(err.data);
 * }
 * ```
 */
export class RemoteError extends IpcborError {
  /** `'RemoteError'`. */
  override get name(): string {
    return 'RemoteError';
  }
}

/** The message of any thrown value, for sending on the wire; never a stack. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  try {
    return String(err);
  } catch {
    return 'unknown error';
  }
}

export interface AsIpcborErrorOptions {
  /** The code of the error made when `err` is not an IpcborError (default IPCBOR_ERR_PROTOCOL). */
  code?: ErrorCode;
  /** The method of the call that failed. */
  method?: string;
  /** Put before the message of the error made: `the answer is not valid: …`. */
  context?: string;
}

/**
 * Whatever was thrown, as an IpcborError: an IpcborError as it is, any
 * other value as a new error of `code` that keeps its text and has it as
 * its cause. The one place a foreign error becomes ours.
 */
export function asIpcborError(err: unknown, options: AsIpcborErrorOptions = {}): IpcborError {
  if (err instanceof IpcborError) return err;
  const text = messageOf(err);
  const opts: IpcborErrorOptions = { cause: err };
  if (options.method !== undefined) opts.method = options.method;
  return new IpcborError(options.code ?? 'IPCBOR_ERR_PROTOCOL', options.context === undefined ? text : `${options.context}: ${text}`, opts);
}

/**
 * A user callback threw: that is the user's bug to see (as an uncaught
 * exception, like an EventEmitter listener's), not a reason to drop a
 * connection, an event or a call.
 */
export function rethrowLater(err: unknown): void {
  queueMicrotask(() => {
    throw err;
  });
}

/** Run a user callback; what it throws is rethrown later (see rethrowLater). */
export function guarded(f: () => void): void {
  try {
    f();
  } catch (err) {
    rethrowLater(err);
  }
}
