/**
 * `serve()`: put a dispatcher (a service, or a plain object of handlers) on
 * one or more addresses. The sessions do the protocol; this file only
 * accepts sockets, tracks them, and shuts down.
 */
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { EventHub } from '../core/rpc/event-hub.js';
import { handlersDispatcher, type Dispatcher, type Handler } from '../core/rpc/dispatcher.js';
import { isService, ServiceRouter, type AnyService, type Mounted } from '../core/service.js';
import { ServerSession, type ServerSessionOptions } from '../core/rpc/server-session.js';
import type { ConnectionInfo } from '../core/rpc/transport.js';
import { formatAddress, parseAddress, type Address } from './address.js';
import { listen, type Release } from './listen.js';
import { SocketTransport } from './socket-transport.js';

export interface ServeOptions extends Omit<ServerSessionOptions, 'codec'> {
  /** With several services: the one that also answers bare method names (default: the first; null: none). */
  defaultService?: AnyService | null;
  /** Mode bits of a unix socket file (default 0o600: only the owner may connect). */
  permissions?: number;
  /** How long `close()` waits for a connection to finish its calls before cutting it, in ms (default 10,000). */
  closeTimeout?: number;
}

/** Anything `serve` can put on a socket: a service, several, a dispatcher, or a plain object of handlers. */
export type Servable = AnyService | readonly (AnyService | Mounted)[] | Dispatcher | Record<string, Handler>;

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

function toDispatcher(target: Servable, options: ServeOptions): Dispatcher {
  if (isService(target)) return new ServiceRouter([target]);
  if (Array.isArray(target)) return new ServiceRouter(target as readonly (AnyService | Mounted)[], options.defaultService);
  if (typeof (target as Dispatcher).lookup === 'function' && typeof (target as Dispatcher).methodNames === 'function') return target as Dispatcher;
  return handlersDispatcher(target as Record<string, Handler>);
}

let nextConnectionId = 1;

export async function serve(target: Servable, address: string | Address | readonly (string | Address)[], options: ServeOptions = {}): Promise<Server> {
  const dispatcher = toDispatcher(target, options);
  const list = (Array.isArray(address) ? address : [address]).map((a) => parseAddress(a as string | Address));
  const hub = new EventHub();
  const unforward = dispatcher instanceof ServiceRouter ? dispatcher.forwardEvents((name, payload, alias) => hub.emit(name, payload, alias)) : undefined;
  const sessions = new Set<ServerSession>();
  const sockets: NetServer[] = [];
  const bound: string[] = [];
  const releases: Release[] = [];
  let closing: Promise<void> | undefined;

  const accept = (kind: string) => (socket: Socket) => {
    if (kind === 'tcp') socket.setNoDelay(true);
    const transport = new SocketTransport(socket);
    const remote = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : undefined;
    const info: Omit<ConnectionInfo, 'protocol'> = remote ? { id: nextConnectionId++, transport: kind, remote } : { id: nextConnectionId++, transport: kind };
    const session = new ServerSession(transport, dispatcher, info, options);
    sessions.add(session);
    hub.add(session);
    transport.attach({
      receive: (c) => session.receive(c),
      drained: () => session.drained(),
      closed: (cause) => {
        sessions.delete(session);
        hub.delete(session);
        session.closed(cause);
      },
    });
    if (closing) void session.shutdown();
  };

  try {
    for (const a of list) {
      const netServer = createServer(accept(a.kind));
      releases.push(await listen(netServer, a, options.permissions ?? 0o600));
      sockets.push(netServer);
      if (a.kind === 'unix') {
        bound.push(formatAddress(a));
      } else {
        const info = netServer.address();
        bound.push(formatAddress({ kind: 'tcp', host: a.host, port: typeof info === 'object' && info ? info.port : a.port }));
      }
    }
  } catch (err) {
    unforward?.();
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
    unforward?.();
    for (const release of releases) release();
    for (const s of sockets) s.close();
  };

  const server: Server = {
    addresses: bound,
    get connections() {
      return sessions.size;
    },
    emit: (name, payload = null) => hub.emit(name, payload),
    close() {
      closing ??= (async () => {
        stopListening();
        const limit = options.closeTimeout ?? 10_000;
        await Promise.all(
          [...sessions].map(async (s) => {
            let timer: ReturnType<typeof setTimeout> | undefined;
            const cut = new Promise<void>((resolve) => {
              // Not unref'd: close() must settle, so code after `await close()` runs.
              timer = setTimeout(() => {
                s.destroy();
                resolve();
              }, limit);
            });
            await Promise.race([s.shutdown(), cut]);
            clearTimeout(timer);
          }),
        );
      })();
      return closing;
    },
    destroy() {
      closing ??= Promise.resolve();
      stopListening();
      for (const s of sessions) s.destroy();
    },
    [Symbol.asyncDispose]() {
      return server.close();
    },
  };
  return server;
}
