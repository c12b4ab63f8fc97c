/**
 * A client over any transport: dial, offer the extended protocol within
 * the connect deadline, fall back to the seed framing when the server is a
 * seed peer, and hand out the Client. `connect()` in src/node only dials
 * sockets; a browser client dials a WebSocket and reuses all of this.
 */
import { IpcborError } from '../errors.js';
import type { HelloResponse } from '../protocol/hello.js';
import { createRemote, createRemoteEvents, type Remote, type RemoteEvents } from '../remote.js';
import type { Transport, TransportSink } from '../transport.js';
import { ClientConnection, type CallOptionsClient, type ClientConnectionOptions } from './connection.js';
import type { EventListener, Subscription } from './subscription.js';

export interface ClientOptions extends Omit<ClientConnectionOptions, 'codec'> {
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
}

/** A transport that is connected, waiting for the sink it will report to. */
export interface OpenTransport extends Transport {
  attach(sink: TransportSink): void;
}

/** Opens one transport to the server; rejects with IPCBOR_ERR_CONNECT. `signal` aborts it. */
export type Dialer = (signal: AbortSignal) => Promise<OpenTransport>;

export interface Client extends AsyncDisposable {
  /** The address connected to. */
  readonly address: string;
  /** The framing in use on this connection. */
  readonly protocol: 'seed' | 'extended';
  /** The server's hello answer (extended protocol only). */
  readonly server: HelloResponse | undefined;
  /** `open`, `closing` or `closed`. */
  readonly state: 'open' | 'closing' | 'closed';
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
 * Run `step` against the connect deadline and the caller's signal; when
 * either wins, `abort` fires (the step releases what it holds) and the
 * returned promise rejects.
 */
function bounded<T>(step: (signal: AbortSignal) => Promise<T>, deadline: number, signal: AbortSignal | undefined, address: string, what: string): Promise<T> {
  const ac = new AbortController();
  return new Promise((resolve, reject) => {
    const fail = (err: IpcborError) => {
      cleanup();
      ac.abort(err);
      reject(err);
    };
    const timer = setTimeout(() => fail(new IpcborError('IPCBOR_ERR_CONNECT', `could not connect to ${address}: ${what} timed out`)), Math.max(0, deadline - Date.now()));
    const onAbort = () => fail(new IpcborError('IPCBOR_ERR_CANCELLED', `connecting to ${address} was cancelled`, { cause: signal!.reason }));
    signal?.addEventListener('abort', onAbort, { once: true });
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    step(ac.signal).then(
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

async function open(dial: Dialer, address: string, options: ClientOptions, offer: boolean, deadline: number): Promise<ClientConnection> {
  if (options.signal?.aborted) throw new IpcborError('IPCBOR_ERR_CANCELLED', `connecting to ${address} was cancelled`, { cause: options.signal.reason });
  const transport = await bounded(
    (signal) =>
      dial(signal).then((t) => {
        // Lost the race: close what arrived too late.
        if (signal.aborted) t.destroy();
        return t;
      }),
    deadline,
    options.signal,
    address,
    'connecting',
  );
  const connection = new ClientConnection(transport, options);
  transport.attach(connection);
  if (offer) {
    await bounded(
      (signal) => {
        signal.addEventListener('abort', () => connection.destroy(signal.reason as IpcborError), { once: true });
        return connection.hello();
      },
      deadline,
      options.signal,
      address,
      'the hello',
    );
  }
  return connection;
}

/** How long close() waits for the peer to close its side after ours. */
const CLOSE_GRACE_MS = 2000;

/** Connect through `dial`: the client facade over one ClientConnection. */
export async function createClient(dial: Dialer, address: string, options: ClientOptions = {}): Promise<Client> {
  const mode = options.protocol ?? 'auto';
  const deadline = Date.now() + (options.connectTimeout ?? 10_000);
  let connection: ClientConnection;
  try {
    connection = await open(dial, address, options, mode !== 'seed', deadline);
  } catch (err) {
    // A seed peer may drop a connection on a request it does not know
    // instead of answering: connect again and speak the seed framing. Only
    // that: a close we caused (a bad answer, a deadline) is the error.
    if (mode !== 'auto' || !(err instanceof IpcborError) || err.code !== 'IPCBOR_ERR_CONNECTION_CLOSED') throw err;
    connection = await open(dial, address, options, false, deadline);
  }
  if (mode === 'extended' && connection.protocol !== 'extended') {
    connection.destroy();
    throw new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', `the server at ${address} speaks only the seed framing`);
  }
  let closing: Promise<void> | undefined;

  const client: Client = {
    address,
    get protocol() {
      return connection.protocol;
    },
    get server() {
      return connection.serverInfo;
    },
    get state() {
      return connection.state;
    },
    get inflight() {
      return connection.inflight;
    },
    closed: connection.closed,
    call: <R>(method: string, params?: unknown, callOptions?: CallOptionsClient) => connection.call(method, params, callOptions) as Promise<R>,
    service: <S>(prefix?: string) => createRemote<S>((m, p, o) => connection.call(m, p, o), prefix),
    events: <S>(prefix?: string) => createRemoteEvents<S>((name, listener) => connection.subscribe(name, listener), prefix),
    notify: (method, params) => connection.notify(method, params),
    subscribe: <T>(name: string, listener?: EventListener<T>) => connection.subscribe(name, listener as EventListener) as Subscription<T>,
    close() {
      closing ??= (async () => {
        await connection.idle();
        connection.end();
        // The peer closes its side in turn; one that does not is cut off.
        const cut = setTimeout(() => connection.destroy(), CLOSE_GRACE_MS);
        await connection.closed;
        clearTimeout(cut);
      })();
      return closing;
    },
    destroy() {
      connection.destroy();
    },
    [Symbol.asyncDispose]() {
      return client.close();
    },
  };
  return client;
}
