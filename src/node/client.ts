/**
 * `connect()`: a client over a unix socket or TCP. It offers the extended
 * protocol and falls back to the seed framing by itself when the server is
 * a seed peer.
 */
import { createConnection, type Socket } from 'node:net';
import { IpcborError } from '../core/errors.js';
import { ClientSession, type CallOptionsClient, type ClientSessionOptions } from '../core/rpc/client-session.js';
import type { EventListener, Subscription } from '../core/rpc/subscription.js';
import type { HelloResponse } from '../core/rpc/protocol.js';
import { createRemote, type Remote } from '../core/remote.js';
import { formatAddress, parseAddress, type Address } from './address.js';
import { SocketTransport } from './socket-transport.js';

export interface ConnectOptions extends Omit<ClientSessionOptions, 'codec'> {
  /**
   * `auto` (default): offer the extended protocol, fall back to the seed
   * framing if the server does not speak it. `seed`: never offer it (the
   * exact bytes of a seed client). `extended`: fail unless the server speaks it.
   */
  protocol?: 'auto' | 'seed' | 'extended';
  /** Give up connecting after this many ms (default 10,000). */
  connectTimeout?: number;
}

export interface Client extends AsyncDisposable {
  /** The address connected to. */
  readonly address: string;
  /** The framing in use on this connection. */
  readonly protocol: 'seed' | 'extended';
  /** The server's hello answer (extended protocol only). */
  readonly server: HelloResponse | undefined;
  /** Calls sent and not yet answered. */
  readonly inflight: number;
  /** Resolves (with the reason) once the connection has closed, however it closed. */
  readonly closed: Promise<IpcborError>;
  /** Call `method` with `params` (default `{}`); resolves with the result, rejects with an IpcborError. */
  call<R = unknown>(method: string, params?: unknown, options?: CallOptionsClient): Promise<R>;
  /**
   * A typed view of a service, from its type alone:
   * `client.service<typeof timer>().echo({ req })`. Without `prefix` the
   * methods are called by their bare names (the server's default service);
   * with it, as `prefix.method`.
   */
  service<S>(prefix?: string): Remote<S>;
  /** A one-way call: nothing comes back. */
  notify(method: string, params?: unknown): void;
  /** Receive the server's events `name` (`*`: all) as an async iterable, or through `listener`. */
  subscribe<T = unknown>(name: string, listener?: EventListener<T>): Subscription<T>;
  /** Wait for pending calls to settle, flush, and close. Safe to call twice. */
  close(): Promise<void>;
  /** Close now; pending calls reject with IPCBOR_ERR_CONNECTION_CLOSED. */
  destroy(): void;
}

function openSocket(address: Address, timeout: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = address.kind === 'unix' ? createConnection(address.path) : createConnection({ host: address.host, port: address.port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new IpcborError('IPCBOR_ERR_CONNECT', `could not connect to ${formatAddress(address)}: timed out after ${timeout} ms`));
    }, timeout);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new IpcborError('IPCBOR_ERR_CONNECT', `could not connect to ${formatAddress(address)}: ${err.code ?? err.message}`, { cause: err }));
    });
  });
}

async function open(address: Address, options: ConnectOptions, offer: boolean): Promise<{ session: ClientSession; transport: SocketTransport }> {
  const socket = await openSocket(address, options.connectTimeout ?? 10_000);
  const transport = new SocketTransport(socket);
  const session = new ClientSession(transport, options);
  transport.attach(session);
  if (offer) await session.hello();
  return { session, transport };
}

export async function connect(address: string | Address, options: ConnectOptions = {}): Promise<Client> {
  const addr = parseAddress(address);
  const mode = options.protocol ?? 'auto';
  let opened: { session: ClientSession; transport: SocketTransport };
  try {
    opened = await open(addr, options, mode !== 'seed');
  } catch (err) {
    // A seed peer may drop a connection on a request it does not know
    // instead of answering: connect again and speak the seed framing.
    if (mode !== 'auto' || !(err instanceof IpcborError) || err.code !== 'IPCBOR_ERR_CONNECTION_CLOSED') throw err;
    opened = await open(addr, options, false);
  }
  const { session } = opened;
  if (mode === 'extended' && session.protocol !== 'extended') {
    session.destroy();
    throw new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', `the server at ${formatAddress(addr)} speaks only the seed framing`);
  }
  const closed = new Promise<IpcborError>((resolve) => session.onClose(resolve));
  let closing: Promise<void> | undefined;

  const client: Client = {
    address: formatAddress(addr),
    get protocol() {
      return session.protocol;
    },
    get server() {
      return session.serverInfo;
    },
    get inflight() {
      return session.inflight;
    },
    closed,
    call: <R>(method: string, params?: unknown, callOptions?: CallOptionsClient) => session.call(method, params, callOptions) as Promise<R>,
    service: <S>(prefix?: string) => createRemote<S>((m, p, o) => session.call(m, p, o), prefix),
    notify: (method, params) => session.notify(method, params),
    subscribe: <T>(name: string, listener?: EventListener<T>) => session.subscribe(name, listener as EventListener) as Subscription<T>,
    close() {
      closing ??= (async () => {
        await session.idle();
        session.end();
        await closed;
      })();
      return closing;
    },
    destroy() {
      session.destroy();
    },
    [Symbol.asyncDispose]() {
      return client.close();
    },
  };
  return client;
}
