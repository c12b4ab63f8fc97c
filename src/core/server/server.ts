/**
 * A server without sockets: it takes Transports, one per connection, and
 * runs them against one dispatcher, one executor, one event hub and one
 * byte budget. `serve()` (src/node/server.ts) only listens and hands it
 * sockets; the lazy server and the event loop reuse it with another
 * executor.
 */
import { DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_SERVER_BYTES, REFUSE_GRACE_MS } from '../constants.js';
import { IpcborError, guarded } from '../errors.js';
import { ConnectionBudget, ServerBudget } from '../peer/budget.js';
import { afterIo, WriteTurns } from '../peer/turns.js';
import { backgroundTimer } from '../peer/timers.js';
import { isService, ServiceRouter, type AnyService, type Mounted } from '../service.js';
import type { ConnectionInfo, Disposable, Transport, TransportSink } from '../transport.js';
import { disposable } from '../transport.js';
import { immediate, type Executor } from './call.js';
import { connectionShared, ServerConnection, serverLimits, type ConnectionHandle, type ConnectionHost, type ConnectionShared, type ResolvedLimits, type ServerConnectionOptions } from './connection.js';
import { handlersDispatcher, type Dispatcher, type Handler } from '../dispatcher.js';
import { EventHub } from './event-hub.js';

/**
 * The options of a server ({@link ServerCore}, and `serve()`'s
 * `ServeOptions` with them): the limits of each connection
 * ({@link ServerLimits}), of the server, and its handlers. Every default is
 * a `DEFAULT_*` constant.
 */
export interface ServerCoreOptions extends ServerConnectionOptions {
  /** With several services: the one that also answers bare method names (default: the first; null: none). */
  defaultService?: AnyService | null;
  /** Connections held at once (default {@link DEFAULT_MAX_CONNECTIONS}, 10,000); more are refused (`IPCBOR_ERR_OVERLOADED`) as they arrive. */
  maxConnections?: number;
  /** Bytes all connections together may make the server hold (default {@link DEFAULT_MAX_SERVER_BYTES}, 256 MiB). */
  maxServerBytes?: number;
  /** How long `close()` waits for a connection to finish its calls before cutting it, in ms (default {@link DEFAULT_CLOSE_TIMEOUT}, 10,000). */
  closeTimeout?: number;
}

/** Anything a server can serve: a service, several, a dispatcher, or a plain object of handlers. */
export type Servable = AnyService | readonly (AnyService | Mounted)[] | Dispatcher | Record<string, Handler>;

export function toDispatcher(target: Servable, defaultService?: AnyService | null): Dispatcher {
  if (isService(target)) return new ServiceRouter([target]);
  if (Array.isArray(target)) return new ServiceRouter(target as readonly (AnyService | Mounted)[], defaultService);
  if (typeof (target as Dispatcher).lookup === 'function' && typeof (target as Dispatcher).methodNames === 'function') return target as Dispatcher;
  return handlersDispatcher(target as Record<string, Handler>);
}

/** Connection ids are unique in the process, whichever server accepted the connection. */
let nextConnectionId = 1;

/** Refused connections answered at once, beyond the limit, before the rest are simply closed. */
export const REFUSING_MAX = 64;
/** Largest frame a refused connection may send (a hello is about 40 bytes). */
const REFUSED_FRAME_BYTES = 4096;


/**
 * @internal A connection taken only to say why it is not served: a client
 * that sends a hello hears `why` as the hello's answer, a base-framing
 * client as the error of its first call; then it closes, and it is cut
 * after REFUSE_GRACE_MS however far it got. Attach the transport to what
 * this returns.
 */
export function refuseConnection(transport: Transport, info: Omit<ConnectionInfo, 'protocol'>, why: IpcborError, options: ServerConnectionOptions, budget: ConnectionBudget): ServerConnection {
  // It has one thing to hear, a hello or a first call: a frame larger
  // than a hello is refused outright (IPCBOR_ERR_FRAME_TOO_LARGE).
  const shared = connectionShared({ executor: (call) => call.fail(why), eventNames: () => undefined }, options, { ...serverLimits(options), maxFrameBytes: REFUSED_FRAME_BYTES });
  const c = new ServerConnection(transport, shared, info, budget, why);
  const cut = backgroundTimer(() => c.destroy(why), REFUSE_GRACE_MS);
  void c.closed.then(() => clearTimeout(cut));
  return c;
}

/**
 * A server without sockets, for a transport of your own: it takes one
 * {@link Transport} per connection (`accept`) and serves `target` on them,
 * with every limit and handler of `serve()`, which is this plus listeners.
 *
 * @example
 * ```ts
 * import { ServerCore } from 'ipcbor/core';
 *
 * const server = new ServerCore(greeter, { maxConnections: 50 });
 * // for each connection your transport accepts:
 * const sink = server.accept(transport, { transport: 'pipe' });
 * if (sink) transport.attach(sink);
 * // later
 * await server.close();
 * ```
 */
export class ServerCore implements AsyncDisposable {
  /** What calls are dispatched to (the services of `target`). */
  readonly dispatcher: Dispatcher;
  /** @internal the subscribers of each event */
  readonly hub: EventHub;
  /** @internal what all connections together hold */
  readonly budget: ServerBudget;
  /** Every connection limit, resolved once. */
  private readonly limits: ResolvedLimits;
  /** What every connection shares, made once. */
  private readonly shared: ConnectionShared;
  /** One stream item made at a time across all connections, while the server's unsent bytes are within half its budget (see peer/turns.ts). */
  private readonly turns: WriteTurns;
  private readonly options: ServerCoreOptions;
  private readonly connections = new Map<number, ServerConnection>();
  private readonly host: ConnectionHost;
  private readonly connectListeners = new Set<(c: ConnectionHandle) => void>();
  private readonly closeListeners = new Set<(c: ConnectionHandle, reason: IpcborError | undefined) => void>();
  private readonly readyListeners = new Set<(c: ConnectionHandle) => void>();
  private readonly unforward: (() => void) | undefined;
  private refusing = 0;
  private closing: Promise<void> | undefined;

  /**
   * @param target - what to serve, as `serve()` takes it
   * @param options - see {@link ServerCoreOptions}
   * @param executor - how calls are run (default: each at once, as it arrives)
   */
  constructor(target: Servable, options: ServerCoreOptions = {}, executor?: Executor) {
    this.options = options;
    this.limits = serverLimits(options);
    this.dispatcher = toDispatcher(target, options.defaultService);
    this.hub = new EventHub();
    this.budget = new ServerBudget(options.maxServerBytes ?? DEFAULT_MAX_SERVER_BYTES);
    this.turns = new WriteTurns(afterIo, this.budget);
    const dispatcher = this.dispatcher;
    this.host = {
      executor: executor ?? immediate(dispatcher),
      eventNames: () => dispatcher.eventNames?.(),
      ready: (c) => {
        for (const l of this.readyListeners) guarded(() => l(c));
      },
    };
    this.shared = connectionShared(this.host, options, this.limits, this.turns);
    this.unforward = dispatcher instanceof ServiceRouter ? dispatcher.forwardEvents((name, payload, alias) => this.hub.emit(name, payload, alias)) : undefined;
  }

  /** Connections open now. */
  get size(): number {
    return this.connections.size;
  }

  /**
   * A new connection on `transport`: attach the transport to what this
   * returns. Over maxConnections, or while closing, the connection is
   * refused: a client that sends a hello hears IPCBOR_ERR_OVERLOADED (or
   * IPCBOR_ERR_SHUTTING_DOWN), a client of the base framing gets the same text as the
   * error of its first call, and the connection closes. Returns undefined
   * when even that is too much (the transport is already destroyed).
   * `info.introspection: false` turns `$ipcbor.describe` off on this
   * connection (network listeners, see src/node/server.ts).
   */
  accept(transport: Transport, info: Omit<ConnectionInfo, 'id' | 'protocol'>): (ConnectionHandle & TransportSink) | undefined {
    const id = nextConnectionId++;
    const full: { -readonly [K in keyof Omit<ConnectionInfo, 'protocol'>]: ConnectionInfo[K] } = { id, transport: info.transport };
    if (info.remote !== undefined) full.remote = info.remote;
    if (info.peer !== undefined) full.peer = info.peer;
    if (info.introspection === false) full.introspection = false;
    const max = this.options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    if (this.connections.size >= max || this.closing) {
      if (this.refusing >= REFUSING_MAX) {
        transport.destroy();
        return undefined;
      }
      const why = this.closing
        ? new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the server is shutting down')
        : new IpcborError('IPCBOR_ERR_OVERLOADED', `the server holds its maximum of ${max} connections`);
      return this.refuse(transport, full, why);
    }
    const budget = new ConnectionBudget(this.limits.maxConnectionBytes, this.budget);
    const c = new ServerConnection(transport, this.shared, full, budget);
    this.connections.set(id, c);
    this.hub.add(c);
    void c.closed.then((reason) => {
      this.connections.delete(id);
      this.hub.delete(c);
      // A clean close carries no error; another keeps the reason, with the fault that ended it as its cause.
      const fault = c.closeError;
      const why = fault === undefined ? undefined : fault.code === 'IPCBOR_ERR_CONNECTION_CLOSED' ? fault : new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', `the connection closed: ${fault.message}`, { cause: fault });
      for (const l of this.closeListeners) guarded(() => l(c, why));
    });
    for (const l of this.connectListeners) guarded(() => l(c));
    return c;
  }

  /** Answer the first frame with `why`, then close; cut after a short grace. */
  private refuse(transport: Transport, info: Omit<ConnectionInfo, 'protocol'>, why: IpcborError): ConnectionHandle & TransportSink {
    this.refusing++;
    // Read until its first frame has arrived: what it buffers meanwhile
    // counts against the server's budget like any connection's.
    const c = refuseConnection(transport, info, why, this.options, new ConnectionBudget(this.limits.maxConnectionBytes, this.budget));
    void c.closed.then(() => this.refusing--);
    return c;
  }

  /** The open connection with this id (`ctx.connection.id`), if any. */
  connection(id: number): ConnectionHandle | undefined {
    return this.connections.get(id);
  }

  /** Call `listener` with every new connection. */
  onConnect(listener: (c: ConnectionHandle) => void): Disposable {
    this.connectListeners.add(listener);
    return disposable(() => this.connectListeners.delete(listener));
  }

  /**
   * Call `listener` once a connection's protocol is known (its hello
   * answered, or its first request of the base framing arrived): from then
   * on `c.info.protocol` says what it speaks.
   */
  onReady(listener: (c: ConnectionHandle) => void): Disposable {
    this.readyListeners.add(listener);
    return disposable(() => this.readyListeners.delete(listener));
  }

  /**
   * Call `listener` when a connection has closed, with why: undefined for
   * a clean close (either end closed it between two frames, with no
   * error), the error otherwise.
   */
  onDisconnect(listener: (c: ConnectionHandle, reason: IpcborError | undefined) => void): Disposable {
    this.closeListeners.add(listener);
    return disposable(() => this.closeListeners.delete(listener));
  }

  /** Send event `name` to every connection subscribed to it; returns how many. */
  emit(name: string, payload: unknown = null): number {
    return this.hub.emit(name, payload);
  }

  /**
   * Take no new connections or calls, let calls in flight finish (cut
   * after closeTimeout), close every connection. Safe to call twice.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.unforward?.();
      const limit = this.options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT;
      await Promise.all(
        [...this.connections.values()].map(async (c) => {
          let timer: ReturnType<typeof setTimeout> | undefined;
          const cut = new Promise<void>((resolve) => {
            // Not a background timer: close() must settle, so code after `await close()` runs.
            timer = setTimeout(() => {
              c.destroy();
              resolve();
            }, limit);
          });
          await Promise.race([c.shutdown(), cut]);
          clearTimeout(timer);
        }),
      );
    })();
    return this.closing;
  }

  /** Stop at once: abort every handler, drop every connection. */
  destroy(): void {
    this.closing ??= Promise.resolve();
    this.unforward?.();
    for (const c of this.connections.values()) c.destroy();
  }

  /** `await using`: `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
