/**
 * What a server session asks of the code it serves: find the method by
 * name, then call it. Services (src/core/service.ts) build one; a plain
 * object of handler functions is wrapped by `handlersDispatcher`.
 */
import { DESCRIBE_METHOD } from './protocol/heads.js';
import type { ConnectionInfo } from './transport.js';

/**
 * What a handler gets besides its params. `App`: the type of `app`, for
 * handlers run by the lazy server (`serveLazy<App>`): a handler declared
 * `(params, ctx: CallContext<Simulation>) => …` sees `ctx.app` as a
 * Simulation, and `serveLazy<Simulation>` checks that it is served so.
 */
export interface CallContext<App = unknown> {
  /** The method name as it was called (with its service prefix, if any). */
  readonly method: string;
  /**
   * Aborts when the call is cancelled, its deadline passes, or the
   * connection goes. Its `reason` is an IpcborError saying which.
   */
  readonly signal: AbortSignal;
  /** Who is calling. */
  readonly connection: ConnectionInfo;
  /** When the server stops the call (ms since the epoch), if the caller set a deadline. */
  readonly deadline: number | undefined;
  /** What the application handed to the lazy server's `handleNewMessages(context)`; undefined elsewhere. */
  readonly app: App;
}

/**
 * A handler function of a plain handler object (`serve({ hello: (params,
 * ctx) => … }, address)`): it gets the decoded params, unchecked, and the
 * call's {@link CallContext}, and returns the result, a Promise of it, or an
 * async iterable (a result stream). One that declares no parameter takes
 * none: its payload is never decoded.
 */
// Handlers see params as the decoded request; a typed service narrows it.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handler = (params: any, ctx: CallContext) => unknown;

/** A method as a {@link Dispatcher} hands it to the server: how to run it. */
export interface MethodEntry {
  /** Run the method: validate params (throwing IPCBOR_ERR_INVALID_PARAMS) and call the handler. */
  invoke(params: unknown, ctx: CallContext): unknown;
  /**
   * False when the method takes no params (no schema, and a handler that
   * declares no parameter): its payload is never decoded, so a large
   * payload sent to it costs no decoding.
   */
  readonly takesParams?: boolean;
}

/**
 * What a server asks of the code it serves: find a method by name, list
 * the names. `serve()` builds one from a service ({@link ServiceRouter}) or a
 * plain object of handlers; implement it, and pass it to `serve()`, to route
 * calls yourself.
 */
export interface Dispatcher {
  /** The method answering to the name `method` as it was called; undefined: the call fails with IPCBOR_ERR_UNKNOWN_METHOD. */
  lookup(method: string): MethodEntry | undefined;
  /** Every callable method name, for "did you mean" answers and introspection. */
  methodNames(): string[];
  /** The event names a client may subscribe to; undefined: any name. */
  eventNames?(): ReadonlySet<string> | undefined;
}

/** A handler that declares no parameter takes none: its payload need not be decoded. */
export function takesParams(handler: (...args: never[]) => unknown): boolean {
  return handler.length > 0;
}

/** A dispatcher over a plain object of handler functions. */
export function handlersDispatcher(handlers: Record<string, Handler>): Dispatcher {
  const table = new Map<string, MethodEntry>();
  for (const [name, fn] of Object.entries(handlers)) {
    if (typeof fn !== 'function') throw new TypeError(`handler ${name} is not a function`);
    table.set(name, { invoke: fn, takesParams: takesParams(fn) });
  }
  const names = [...table.keys()];
  table.set(DESCRIBE_METHOD, { invoke: () => ({ services: [], methods: names }), takesParams: false });
  return {
    lookup: (method) => table.get(method),
    methodNames: () => names,
  };
}
