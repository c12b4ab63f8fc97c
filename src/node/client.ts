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
import { createRemote, createRemoteEvents, type Remote, type RemoteEvents } from '../core/remote.js';
import { formatAddress, parseAddress, type Address } from './address.js';
import { SocketTransport } from './socket-transport.js';
import { checkUnixPeer } from './trust.js';

export interface ConnectOptions extends Omit<ClientSessionOptions, 'codec'> {
  /**
   * `auto` (default): offer the extended protocol, fall back to the seed
   * framing if the server does not speak it. `seed`: never offer it (the
   * exact bytes of a seed client). `extended`: fail unless the server speaks it.
   */
  protocol?: 'auto' | 'seed' | 'extended';
  /** Give up connecting, the hello included, after this many ms (default 10,000). */
  connectTimeout?: number;
  /** Abort connecting (rejects with IPCBOR_ERR_CANCELLED). */
  signal?: AbortSignal;
  /**
   * Unix sockets: whose socket to accept besides your own and root's (a
   * uid), or `'any'` for no check. By default a socket owned by another
   * user, or a symlink, is refused with IPCBOR_ERR_CONNECT (see trust.ts).
   */
  socketOwner?: number | 'any';
}

export interface Client extends AsyncDisposable {
  /** The address connected to. */
  readonly address: string;
  /** The framing in use on this connection. */
  readonly protocol: 'seed' | 'extended';
  /** The server's hello answer (extended protocol only). */
  readonly server: HelloResponse | undefined;
  /** Calls made and not yet settled (queued ones included; a result stream counts until it resolves). */
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
  service<S = unknown>(prefix?: string): Remote<S>;
  /**
   * The events of a service, typed from its type:
   * `client.events<typeof timer>().subscribe('on_echo_fired')`. Without
   * `prefix`, by their bare names (the server's default service).
   */
  events<S = unknown>(prefix?: string): RemoteEvents<S>;
  /** A one-way call: nothing comes back. */
  notify(method: string, params?: unknown): void;
  /** Receive the server's events `name` (`*`: all) as an async iterable, or through `listener`. */
  subscribe<T = unknown>(name: string, listener?: EventListener<T>): Subscription<T>;
  /** Wait for pending calls to settle and open result streams to end, flush, and close. Safe to call twice. */
  close(): Promise<void>;
  /** Close now; pending calls reject with IPCBOR_ERR_CONNECTION_CLOSED. */
  destroy(): void;
}

/**
 * Run `step` (connecting, then the hello) against the connect deadline and
 * the caller's signal; `undo` releases what the step holds if either wins.
 */
function bounded<T>(step: Promise<T>, deadline: number, signal: AbortSignal | undefined, address: Address, what: string, undo: () => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const fail = (err: IpcborError) => {
      cleanup();
      undo();
      reject(err);
    };
    const timer = setTimeout(
      () => fail(new IpcborError('IPCBOR_ERR_CONNECT', `could not connect to ${formatAddress(address)}: ${what} timed out`)),
      Math.max(0, deadline - Date.now()),
    );
    const onAbort = () => fail(new IpcborError('IPCBOR_ERR_CANCELLED', `connecting to ${formatAddress(address)} was cancelled`, { cause: signal!.reason }));
    signal?.addEventListener('abort', onAbort, { once: true });
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    step.then(
      (v) => {
        cleanup();
        resolve(v);
      },
      (err: unknown) => {
        cleanup();
        reject(err);
      },
    );
  });
}

function openSocket(address: Address): { socket: Socket; connected: Promise<Socket> } {
  const socket = address.kind === 'unix' ? createConnection(address.path) : createConnection({ host: address.host, port: address.port, noDelay: true });
  const connected = new Promise<Socket>((resolve, reject) => {
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      reject(new IpcborError('IPCBOR_ERR_CONNECT', `could not connect to ${formatAddress(address)}: ${err.code ?? err.message}`, { cause: err }));
    });
  });
  return { socket, connected };
}

async function open(address: Address, options: ConnectOptions, offer: boolean, deadline: number): Promise<{ session: ClientSession; transport: SocketTransport }> {
  if (options.signal?.aborted) throw new IpcborError('IPCBOR_ERR_CANCELLED', `connecting to ${formatAddress(address)} was cancelled`, { cause: options.signal.reason });
  checkUnixPeer(address, options.socketOwner);
  const { socket, connected } = openSocket(address);
  await bounded(connected, deadline, options.signal, address, 'connecting', () => socket.destroy());
  const transport = new SocketTransport(socket);
  const session = new ClientSession(transport, options);
  transport.attach(session);
  if (offer) await bounded(session.hello(), deadline, options.signal, address, 'the hello', () => session.destroy());
  return { session, transport };
}

/** How long close() waits for the peer to close its side after ours. */
const CLOSE_GRACE_MS = 2000;

export async function connect(address: string | Address, options: ConnectOptions = {}): Promise<Client> {
  const addr = parseAddress(address);
  const mode = options.protocol ?? 'auto';
  const deadline = Date.now() + (options.connectTimeout ?? 10_000);
  let opened: { session: ClientSession; transport: SocketTransport };
  try {
    opened = await open(addr, options, mode !== 'seed', deadline);
  } catch (err) {
    // A seed peer may drop a connection on a request it does not know
    // instead of answering: connect again and speak the seed framing.
    if (mode !== 'auto' || !(err instanceof IpcborError) || err.code !== 'IPCBOR_ERR_CONNECTION_CLOSED') throw err;
    opened = await open(addr, options, false, deadline);
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
    events: <S>(prefix?: string) => createRemoteEvents<S>((name, listener) => session.subscribe(name, listener), prefix),
    notify: (method, params) => session.notify(method, params),
    subscribe: <T>(name: string, listener?: EventListener<T>) => session.subscribe(name, listener as EventListener) as Subscription<T>,
    close() {
      closing ??= (async () => {
        await session.idle();
        session.end();
        // The peer closes its side in turn; one that does not is cut off.
        const cut = setTimeout(() => session.destroy(), CLOSE_GRACE_MS);
        await closed;
        clearTimeout(cut);
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
