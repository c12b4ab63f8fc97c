/**
 * `serve()`: put a service (or several, or a dispatcher, or a plain object
 * of handlers) on one or more addresses. The core server does everything
 * but sockets; this file listens (plain or TLS), hands it each socket, and
 * removes what it created on close. It also holds the rules for network
 * listeners: no plaintext off loopback unless `insecure`, and no
 * introspection on them unless asked for.
 */
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { DEFAULT_KEEPALIVE } from '../core/constants.js';
import { IpcborError } from '../core/errors.js';
import type { ConnectionInfo, PeerIdentity } from '../core/transport.js';
import { ServerCore, type Servable, type ServerCoreOptions } from '../core/server/server.js';
import type { Executor } from '../core/server/call.js';
import { formatAddress, isLoopbackHost, parseAddress, type Address } from './address.js';
import { listen, type Release } from './listen.js';
import { SocketTransport } from './socket-transport.js';
import { createTlsListener, type TlsServerOptions } from './tls.js';
import { errorLog } from './error-log.js';

export type { Servable } from '../core/server/server.js';

/**
 * The options of {@link serve}: the server's limits and handlers
 * ({@link ServerCoreOptions}, every default a `DEFAULT_*` constant) and its
 * listeners'.
 *
 * @example
 * ```ts
 * await serve(greeter, ['greeter', 'tls:0.0.0.0:9443'], {
 *   tls: { cert: readFileSync('server.pem'), key: readFileSync('server.key') },
 *   maxConnections: 100,
 *   onError: (err) => console.error(err),
 * });
 * ```
 */
export interface ServeOptions extends Omit<ServerCoreOptions, 'codec' | 'onError'> {
  /**
   * Told of failures an operator should see, with the connection they
   * happened on: a handler threw (its caller also gets the error, as
   * IPCBOR_ERR_HANDLER; `err.method` names the method, `err.cause` is
   * what it threw), a notification's handler threw or was dropped, a
   * client broke the protocol. Errors a handler chose to answer with (an
   * IpcborError it threw, invalid params) are answers, not failures.
   *
   * Default: one line on stderr per failure (the method, the connection,
   * the message), at most 10 lines a second; past that the lines are
   * counted, and the count printed when the second is over. `onError: ()
   * => {}` logs nothing.
   */
  onError?: (err: unknown, connection: ConnectionInfo) => void;
  /** Mode bits of a unix socket file (default 0o600: only the owner may connect). */
  permissions?: number;
  /** TCP keepalive: idle ms before the first probe (default {@link DEFAULT_KEEPALIVE}, 60,000; 0: off). Finds peers that vanished without a FIN. */
  keepAlive?: number;
  /** Connections the operating system queues for accept() (default: Node's 511, capped by the kernel's somaxconn). */
  backlog?: number;
  /**
   * The certificate and key of `tls:` addresses, and the clients' CA for
   * mutual TLS (see TlsServerOptions). Needed by a tls: address; refused
   * (IPCBOR_ERR_INVALID_ADDRESS) when no address is tls:.
   */
  tls?: TlsServerOptions;
  /**
   * Allow plaintext TCP on a network address (anything but localhost,
   * 127.0.0.0/8 and ::1), for peers that speak no TLS, such as the C
   * and Nim clients of the base framing. Default false: such an address is refused with
   * IPCBOR_ERR_INVALID_ADDRESS; serve it as tls: instead.
   */
  insecure?: boolean;
  /**
   * `$ipcbor.describe` (the list of methods and their schemas): true on
   * every listener, false on none. Default: on for unix sockets and
   * loopback TCP, off for network listeners (TCP off loopback, and TLS),
   * where it answers IPCBOR_ERR_UNKNOWN_METHOD like any unknown method.
   */
  introspection?: boolean;
}

/**
 * A running server, as {@link serve} gives it. Dispose it with
 * `await using`, or call `close()`.
 *
 * @example
 * ```ts
 * const server = await serve(timer, 'tcp:127.0.0.1:0');
 * console.log(server.addresses); // [ 'tcp:127.0.0.1:43117' ]
 * server.emit('tick', { at: Date.now() });
 * await server.close();
 * ```
 */
export interface Server extends AsyncDisposable {
  /** Where the server listens, with real ports (`tcp:127.0.0.1:43117`). */
  readonly addresses: readonly string[];
  /** Connections open now. */
  readonly connections: number;
  /** Send event `name` to every connection subscribed to it; returns how many. */
  emit(name: string, payload?: unknown): number;
  /** Stop accepting, let calls in flight finish, close every connection, remove socket files. Safe to call twice. */
  close(): Promise<void>;
  /** Stop at once: abort every handler, drop every connection, remove socket files. */
  destroy(): void;
}

/**
 * @internal serve with another executor (the lazy server, the event loop).
 * `partOfMany`: this call serves some of the addresses the options are for
 * (the event loop serves one at a time), so TLS options with no tls:
 * address among these are not a mistake.
 */
export async function serveWith(
  target: Servable,
  address: string | Address | readonly (string | Address)[],
  options: ServeOptions,
  executor: Executor | undefined,
  partOfMany = false,
): Promise<{ server: Server; core: ServerCore }> {
  // By default failures go to stderr, rate-limited: a handler that throws is seen by an operator.
  const core = new ServerCore(target, options.onError === undefined ? { ...options, onError: errorLog() } : options, executor);
  const list = (Array.isArray(address) ? address : [address]).map((a) => parseAddress(a as string | Address));
  checkListeners(list, options, partOfMany);
  let listening: Listening;
  try {
    listening = await listenAll(list, options, (a) => {
      const introspection = options.introspection ?? (a.kind === 'unix' || (a.kind === 'tcp' && isLoopbackHost(a.host)));
      return (transport, info) => {
        const connection = core.accept(transport, introspection ? info : { ...info, introspection: false });
        if (connection) transport.attach(connection);
      };
    });
  } catch (err) {
    core.destroy();
    throw err;
  }
  const { addresses: bound, stop: stopListening } = listening;

  const server: Server = {
    addresses: bound,
    get connections() {
      return core.size;
    },
    emit: (name, payload = null) => core.emit(name, payload),
    close() {
      stopListening();
      return core.close();
    },
    destroy() {
      stopListening();
      core.destroy();
    },
    [Symbol.asyncDispose]() {
      return server.close();
    },
  };
  return { server, core };
}

/** What listenAll hands on for each accepted socket. */
export type SocketAccept = (transport: SocketTransport, info: Omit<ConnectionInfo, 'id' | 'protocol'>) => void;

/** Listeners bound: their addresses (real ports), and how to stop them (once; removes socket files). */
export interface Listening {
  readonly addresses: string[];
  stop(): void;
}

/**
 * @internal Listen on every address (plain, unix or TLS), and hand each
 * accepted socket on as a transport with the facts about its peer. Used by
 * serve() and by the relay. On failure nothing stays bound.
 */
export async function listenAll(
  list: readonly Address[],
  options: Pick<ServeOptions, 'keepAlive' | 'permissions' | 'backlog' | 'tls'>,
  acceptFor: (a: Address) => SocketAccept,
  speaks: 'ipcbor' | 'http' = 'ipcbor',
): Promise<Listening> {
  const sockets: NetServer[] = [];
  const bound: string[] = [];
  const releases: Release[] = [];
  const keepAlive = options.keepAlive ?? DEFAULT_KEEPALIVE;
  const accept = (a: Address) => {
    const hand = acceptFor(a);
    return (socket: Socket, peer?: PeerIdentity) => {
      if (a.kind !== 'unix') {
        socket.setNoDelay(true);
        if (keepAlive > 0) socket.setKeepAlive(true, keepAlive);
      }
      // Errors after accept are the connection's business (its close says why).
      socket.on('error', () => {});
      // A client that left is gone, also while its connection is not read (see SocketTransport).
      hand(new SocketTransport(socket, { watchPeer: true }), {
        transport: a.kind,
        ...(socket.remoteAddress ? { remote: `${socket.remoteAddress}:${socket.remotePort}` } : {}),
        ...(peer ? { peer } : {}),
      });
    };
  };
  try {
    for (const a of list) {
      const netServer = a.kind === 'tls' ? createTlsListener(a, options.tls, accept(a), speaks) : createServer(accept(a));
      // Accept errors (EMFILE when descriptors run out) must not stop the
      // server: libuv keeps listening and accepts again once some free up.
      netServer.on('error', () => {});
      // A TLS peer reaches the core (and maxConnections) only once its
      // handshake is done; until then the listener holds it, at most
      // tls.maxHandshakes of them (see tls.ts).
      releases.push(await listen(netServer, a, options.permissions ?? 0o600, options.backlog));
      sockets.push(netServer);
      if (a.kind === 'unix') {
        bound.push(formatAddress(a));
      } else {
        const info = netServer.address();
        bound.push(formatAddress({ kind: a.kind, host: a.host, port: typeof info === 'object' && info ? info.port : a.port }));
      }
    }
  } catch (err) {
    // Socket files first, while still listening: see listen.ts.
    for (const release of releases) release();
    for (const s of sockets) s.close();
    throw err;
  }
  // Once only: a second call must not remove a socket file that another
  // server has since created at the same path.
  let stopped = false;
  return {
    addresses: bound,
    stop() {
      if (stopped) return;
      stopped = true;
      for (const release of releases) release();
      for (const s of sockets) s.close();
    },
  };
}

/**
 * Refuse, before anything listens: a tls: address without certificate,
 * TLS options with no tls: address (a listener the caller believes is
 * encrypted and is not), and plaintext TCP on a network address unless
 * `insecure`.
 */
export function checkListeners(list: readonly Address[], options: Pick<ServeOptions, 'tls' | 'insecure'>, partOfMany: boolean): void {
  if (options.tls !== undefined && !partOfMany && !list.some((a) => a.kind === 'tls')) {
    throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', `the tls option was given but no address is tls: (${list.map(formatAddress).join(', ')}): nothing would be encrypted`);
  }
  for (const a of list) {
    if (a.kind === 'tls' && (options.tls?.cert === undefined || options.tls.key === undefined)) {
      throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', `${formatAddress(a)} needs the tls option with the server's cert and key (PEM)`);
    }
    if (a.kind === 'tcp' && !isLoopbackHost(a.host) && options.insecure !== true) {
      const where = formatAddress(a);
      throw new IpcborError(
        'IPCBOR_ERR_INVALID_ADDRESS',
        `refusing plaintext TCP on the network address ${where}: anyone who can reach it could call every method, unencrypted and unauthenticated. ` +
          `Serve ${formatAddress({ ...a, kind: 'tls' })} with a certificate instead (the tls option; --tls HOST PORT --cert FILE --key FILE for programs), ` +
          `or a loopback address (tcp:127.0.0.1:${a.port}); to serve plaintext anyway (the C and Nim clients speak no TLS), pass insecure: true (--insecure)`,
      );
    }
  }
}

/**
 * Serve `target` (a service made by {@link defineService}, an array of
 * services, each maybe mounted under a prefix, a {@link Dispatcher}, or a
 * plain object of handlers) on one or more addresses: a service name (a
 * socket in the runtime directory, see {@link socketPathFor}),
 * `unix:/path`, `tcp:HOST:PORT` (port 0: any free one), `tls:HOST:PORT`, or
 * an {@link Address}. Resolves once every address listens.
 *
 * Rejects with `IPCBOR_ERR_INVALID_ADDRESS` (an address it cannot parse; a
 * `tls:` address without `tls.cert` and `tls.key`; `tls` options and no `tls:`
 * address; plaintext TCP off loopback without `insecure`) and
 * `IPCBOR_ERR_ALREADY_RUNNING` (a live server already has that unix socket);
 * other errors of `listen` (EADDRINUSE, EACCES) as Node gives them. Nothing
 * stays bound when it rejects.
 *
 * @param target - what to serve
 * @param address - one address or several
 * @param options - see {@link ServeOptions}
 * @example
 * ```ts
 * import { serve } from 'ipcbor';
 * import { greeter } from './greeter.js';
 *
 * const server = await serve(greeter, 'greeter');
 * process.once('SIGTERM', () => void server.close());
 * ```
 */
export async function serve(target: Servable, address: string | Address | readonly (string | Address)[], options: ServeOptions = {}): Promise<Server> {
  return (await serveWith(target, address, options, undefined)).server;
}
