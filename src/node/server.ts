/**
 * `serve()`: put a service (or several, or a dispatcher, or a plain object
 * of handlers) on one or more addresses. The core server does everything
 * but sockets; this file listens, hands it each socket, and removes what it
 * created on close.
 */
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { DEFAULT_KEEPALIVE } from '../core/constants.js';
import { ServerCore, type Servable, type ServerCoreOptions } from '../core/server/server.js';
import type { Executor } from '../core/server/call.js';
import { formatAddress, parseAddress, type Address } from './address.js';
import { listen, type Release } from './listen.js';
import { SocketTransport } from './socket-transport.js';

export type { Servable } from '../core/server/server.js';

export interface ServeOptions extends Omit<ServerCoreOptions, 'codec'> {
  /** Mode bits of a unix socket file (default 0o600: only the owner may connect). */
  permissions?: number;
  /** TCP keepalive: idle ms before the first probe (default 60,000; 0: off). Finds peers that vanished without a FIN. */
  keepAlive?: number;
  /** Connections the operating system queues for accept() (default: Node's 511, capped by the kernel's somaxconn). */
  backlog?: number;
}

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

/** @internal serve with another executor (the lazy server, the event loop). */
export async function serveWith(target: Servable, address: string | Address | readonly (string | Address)[], options: ServeOptions, executor: Executor | undefined): Promise<{ server: Server; core: ServerCore }> {
  const core = new ServerCore(target, options, executor);
  const list = (Array.isArray(address) ? address : [address]).map((a) => parseAddress(a as string | Address));
  const sockets: NetServer[] = [];
  const bound: string[] = [];
  const releases: Release[] = [];
  const keepAlive = options.keepAlive ?? DEFAULT_KEEPALIVE;

  const accept = (kind: string) => (socket: Socket) => {
    if (kind === 'tcp') {
      socket.setNoDelay(true);
      if (keepAlive > 0) socket.setKeepAlive(true, keepAlive);
    }
    const transport = new SocketTransport(socket);
    // Errors after accept are the connection's business (its close says why).
    socket.on('error', () => {});
    const remote = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : undefined;
    const connection = core.accept(transport, remote === undefined ? { transport: kind } : { transport: kind, remote });
    if (connection) transport.attach(connection);
  };

  try {
    for (const a of list) {
      const netServer = createServer(accept(a.kind));
      // Accept errors (EMFILE when descriptors run out) must not stop the
      // server: libuv keeps listening and accepts again once some free up.
      netServer.on('error', () => {});
      releases.push(await listen(netServer, a, options.permissions ?? 0o600, options.backlog));
      sockets.push(netServer);
      if (a.kind === 'unix') {
        bound.push(formatAddress(a));
      } else {
        const info = netServer.address();
        bound.push(formatAddress({ kind: 'tcp', host: a.host, port: typeof info === 'object' && info ? info.port : a.port }));
      }
    }
  } catch (err) {
    core.destroy();
    // Socket files first, while still listening: see listen.ts.
    for (const release of releases) release();
    for (const s of sockets) s.close();
    throw err;
  }

  // Once only: a second call must not remove a socket file that another
  // server has since created at the same path.
  let stopped = false;
  const stopListening = () => {
    if (stopped) return;
    stopped = true;
    for (const release of releases) release();
    for (const s of sockets) s.close();
  };

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

export async function serve(target: Servable, address: string | Address | readonly (string | Address)[], options: ServeOptions = {}): Promise<Server> {
  return (await serveWith(target, address, options, undefined)).server;
}
