/**
 * A client over any transport: dial, offer the extended protocol within
 * the connect deadline, fall back to the base framing when the server is a
 * base-framing peer, and hand out the Client. `connect()` in src/node only dials
 * sockets; a browser client dials a WebSocket and reuses all of this.
 */
import { checkTimeout, type CallOptions } from '../call-options.js';
import { DEFAULT_CLOSE_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_QUEUED, DEFAULT_RECONNECT, STATE_BACKLOG } from '../constants.js';
import { IpcborError, asIpcborError } from '../errors.js';
import { AsyncQueue } from '../peer/queue.js';
import { discardIterable } from '../peer/streams.js';
import { SUBSCRIBE_METHOD } from '../protocol/heads.js';
import type { HelloResponse } from '../protocol/hello.js';
import type { Dialer, PeerIdentity } from '../transport.js';
import { ClientConnection } from './connection.js';
import { clientConnectionOptions, type ClientConnectionOptions, type ResolvedClientOptions } from './options.js';
import { cancelled, OutgoingCall } from './outgoing.js';
import { createRemote, createRemoteEvents, prefixOf, type Remote, type RemoteEvents, type ServiceArgs } from './remote.js';
import { Subscription, SubscriptionSet, type EventListener } from './subscription.js';

/**
 * The options of every client: Node's `connect()` (its `ConnectOptions`
 * adds the socket ones), the browser's `connect()` and {@link createClient}.
 * All are optional; the defaults are the `DEFAULT_*` constants named.
 *
 * @example
 * ```ts
 * const client = await connect('greeter', {
 *   timeout: 5000,                       // every call, unless it says otherwise
 *   reconnect: { maxDelay: 2000 },       // connect again when the connection drops
 *   whileDisconnected: 'wait',           // and hold calls made meanwhile
 * });
 * ```
 */
export interface ClientOptions extends Omit<ClientConnectionOptions, 'codec'> {
  /**
   * `auto` (default): offer the extended protocol, fall back to the base
   * framing if the server does not speak it. `base` (the base framing):
   * never offer it (the exact bytes of a client of the base framing).
   * `extended`: fail with `IPCBOR_ERR_NOT_SUPPORTED` unless the server speaks it.
   */
  protocol?: 'auto' | 'base' | 'extended';
  /** Give up connecting, the hello included, after this many ms (default {@link DEFAULT_CONNECT_TIMEOUT}, 10,000): rejects with `IPCBOR_ERR_CONNECT`. */
  connectTimeout?: number;
  /** Abort connecting (rejects with IPCBOR_ERR_CANCELLED). Only the first connect: reconnecting stops with close() or destroy(). */
  signal?: AbortSignal;
  /**
   * Connect again when the connection drops (not after close() or
   * destroy()): `true` for the defaults, or the backoff. Off by default.
   * Each attempt is a new connection with its own hello, bounded by
   * `connectTimeout`. Subscriptions are restored; calls in flight when the
   * connection dropped reject with IPCBOR_ERR_CONNECTION_CLOSED and are
   * never sent again (README, "Reconnection").
   */
  reconnect?: boolean | ReconnectOptions;
  /**
   * With `reconnect`: what a call (or notify) made while the client is
   * disconnected does. `fail` (default): reject at once with
   * IPCBOR_ERR_CONNECTION_CLOSED. `wait`: wait, bounded by `maxQueued` and
   * by the call's own timeout and signal, and be sent once reconnected.
   */
  whileDisconnected?: 'fail' | 'wait';
  /** With `whileDisconnected: 'wait'`: calls and notifications held at most (default {@link DEFAULT_MAX_QUEUED}, 1024); more reject with IPCBOR_ERR_OVERLOADED. */
  maxQueued?: number;
  /**
   * How long `close()` waits for calls in flight and open result streams to
   * end before it closes anyway (what is left then fails with
   * IPCBOR_ERR_CONNECTION_CLOSED), in ms (default {@link DEFAULT_CLOSE_TIMEOUT}, 10,000).
   */
  closeTimeout?: number;
}

/**
 * The backoff between reconnection attempts (`reconnect`): attempt n waits
 * a random time in `[cap·(1 - jitter), cap]`, cap = min(maxDelay,
 * initialDelay·factor^(n-1)). The defaults are {@link DEFAULT_RECONNECT}.
 *
 * @example
 * ```ts
 * await connect('greeter', { reconnect: { initialDelay: 50, maxDelay: 5000, maxAttempts: 20 } });
 * ```
 */
export interface ReconnectOptions {
  /** ms, the cap of the first attempt's delay (default 100). */
  initialDelay?: number;
  /** ms, the largest delay (default 10,000). */
  maxDelay?: number;
  /** Growth of the cap per attempt (default 2). */
  factor?: number;
  /** 0..1: the share of the delay that is random (default 1, "full jitter": uniform in [0, cap]). */
  jitter?: number;
  /** Give up after this many failed attempts in a row (default: never); `closed` then resolves. */
  maxAttempts?: number;
}

/**
 * `open`: connected. `reconnecting`: the connection dropped, waiting
 * before the next attempt. `connecting`: an attempt is under way (dial,
 * hello, restoring subscriptions). `closing`: close() waits for calls to
 * finish. `closed`: for good.
 */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed';

/** One change of a client's state, as `states()` yields it. */
export interface ClientStateChange {
  /** The state the client is in now. */
  readonly state: ClientState;
  /** `reconnecting`, `connecting`: which attempt (from 1, since the connection dropped). */
  readonly attempt?: number;
  /** `reconnecting`: ms until that attempt. */
  readonly delay?: number;
  /** `reconnecting`: why the connection or the last attempt failed. `closed`: why the client closed. */
  readonly error?: IpcborError;
}

/**
 * A connection to a server (with `reconnect`, one at a time), as Node's
 * `connect()`, the browser's `connect()` and {@link createClient} give it.
 * Calls reject with an {@link IpcborError}: `IPCBOR_ERR_TIMEOUT`,
 * `IPCBOR_ERR_CANCELLED`, `IPCBOR_ERR_CONNECTION_CLOSED`, a
 * {@link RemoteError} for what the server answered (`IPCBOR_ERR_UNKNOWN_METHOD`,
 * `IPCBOR_ERR_INVALID_PARAMS`, `IPCBOR_ERR_HANDLER`, a handler's own code), and
 * `IPCBOR_ERR_ENCODE` for params with no CBOR form. Dispose it with
 * `await using`, or call `close()`.
 *
 * @example
 * ```ts
 * await using client = await connect('greeter');
 * const g = client.service<typeof greeter>();   // typed from the service's type
 * const { text } = await g.hello({ name: 'ada' }, { timeout: 1000 });
 * const raw = await client.call('hello', { name: 'bob' }); // untyped, by method name
 * client.notify('log', { line: 'no answer expected' });
 * for await (const change of client.states()) console.log(change.state);
 * ```
 */
export interface Client extends AsyncDisposable {
  /** The address connected to. */
  readonly address: string;
  /** The framing in use on this connection: `'extended'`, or `'base'` (the base framing). */
  readonly protocol: 'base' | 'extended';
  /** The server's hello answer (extended protocol only). */
  readonly server: HelloResponse | undefined;
  /** The server's verified identity, where the transport has one (`tls:` addresses: its certificate), from the last dial whose handshake completed (a failed dial leaves it as it was: while reconnecting it may name a server not connected now); undefined otherwise. */
  readonly peer: PeerIdentity | undefined;
  /** `open`, `closing` or `closed`; with `reconnect` also `reconnecting` and `connecting`. */
  readonly state: ClientState;
  /**
   * The state now, then each change, as an async iterable (`break` stops
   * it); it ends after `closed`. A reader that falls more than 64 changes
   * behind loses the oldest.
   */
  states(): AsyncIterableIterator<ClientStateChange>;
  /** Calls made and not yet settled (queued ones included; a result stream counts until it resolves). */
  readonly inflight: number;
  /**
   * Resolves (with the reason, IPCBOR_ERR_CONNECTION_CLOSED) once the
   * client has closed for good: the connection closed, or with
   * `reconnect`, close()/destroy() was called or reconnecting gave up.
   */
  readonly closed: Promise<IpcborError>;
  /**
   * Call `method` with `params` (default `{}`); resolves with the result,
   * rejects with an IpcborError. `options.timeout` (default: the client's
   * `timeout`, else none) and `options.signal` bound it; on the extended
   * protocol the server hears of the cancellation too.
   */
  call<R = unknown>(method: string, params?: unknown, options?: CallOptions): Promise<R>;
  /**
   * A typed view of a service, from its type alone:
   * `client.service<typeof timer>('timer').echo({ req })` calls
   * `timer.echo`; the name is checked against the service's own
   * (`'tmier'` does not compile). Without a name the methods are called by
   * their bare names: the server's default service (the first one served),
   * and the only way to a base-framing peer. `{ prefix: 'other' }`: a service
   * mounted under another prefix than its name.
   */
  service<S = unknown>(...args: ServiceArgs<S>): Remote<S>;
  /**
   * The events of a service, typed from its type:
   * `client.events<typeof timer>('timer').subscribe('on_echo_fired')`.
   * The name as for `service()`; without it, by their bare names (the
   * server's default service).
   */
  events<S = unknown>(...args: ServiceArgs<S>): RemoteEvents<S>;
  /**
   * A one-way call: nothing comes back, not even an error (the base
   * framing has no notifications: there it is a call whose answer is
   * ignored). Throws `IPCBOR_ERR_ENCODE` for params with no CBOR form.
   */
  notify(method: string, params?: unknown): void;
  /**
   * Receive the server's events `name` (`*`: all) as an async iterable, or
   * through `listener`. With `reconnect` the subscription survives a
   * reconnect (events emitted while disconnected are lost, and not counted
   * in `dropped`); `ready` is then the promise of the latest registration.
   */
  subscribe<T = unknown>(name: string, listener?: EventListener<T>): Subscription<T>;
  /** Wait for pending calls to settle and open result streams to end, flush, and close (stops reconnecting; queued calls reject). Safe to call twice. */
  close(): Promise<void>;
  /** Close now (stops reconnecting); pending calls reject with IPCBOR_ERR_CONNECTION_CLOSED. */
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
    const timer = setTimeout(
      () => fail(new IpcborError('IPCBOR_ERR_CONNECT', `could not connect to ${address}: ${what} timed out`, { cause: new IpcborError('IPCBOR_ERR_TIMEOUT', 'the connect deadline passed') })),
      Math.max(0, deadline - Date.now()),
    );
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

/** What a connection is made with: the caller's options, resolved once, and the client's subscriptions. */
interface Making {
  readonly options: ClientOptions;
  readonly resolved: ResolvedClientOptions;
  readonly subs: SubscriptionSet;
}

async function open(dial: Dialer, address: string, making: Making, signal: AbortSignal | undefined, offer: boolean, deadline: number): Promise<ClientConnection> {
  if (signal?.aborted) throw new IpcborError('IPCBOR_ERR_CANCELLED', `connecting to ${address} was cancelled`, { cause: signal.reason });
  const transport = await bounded(
    (signal) =>
      dial(signal).then((t) => {
        // Lost the race: close what arrived too late.
        if (signal.aborted) t.destroy();
        return t;
      }),
    deadline,
    signal,
    address,
    'connecting',
  );
  const connection = new ClientConnection(transport, making.resolved, making.subs);
  transport.attach(connection.peer);
  if (offer) {
    await bounded(
      (signal) => {
        signal.addEventListener('abort', () => connection.destroy(signal.reason as IpcborError), { once: true });
        return connection.hello();
      },
      deadline,
      signal,
      address,
      'the hello',
    );
  }
  return connection;
}

const noop = (): void => {};

/** The dialer's explanation of a hello that met a close (see Dialer), within the deadline and the caller's signal; undefined when it has none. */
async function explainClose(dial: Dialer, signal: AbortSignal | undefined, deadline: number): Promise<IpcborError | undefined> {
  if (dial.explainClose === undefined) return undefined;
  const ac = new AbortController();
  const stop = () => ac.abort();
  const timer = setTimeout(stop, Math.max(0, deadline - Date.now()));
  signal?.addEventListener('abort', stop, { once: true });
  try {
    return await dial.explainClose(ac.signal);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', stop);
  }
}

/**
 * One connection, ready to use: dial, offer the hello (unless `base`), fall
 * back to the base framing when the server is a base-framing peer (`auto`), all
 * within `deadline`.
 *
 * What makes a base-framing peer: its answer to the hello, an error with a short
 * text (ClientConnection.hello). A close before any answer says nothing:
 * a base-framing peer that drops requests it does not know does it, and so do an
 * ipcbor server past its refusals and a server that accepts and drops.
 * With `closeMeansBase` (a first connect, or a client that has so far only
 * met the base framing there) such a close is taken for a base-framing peer, and
 * the client connects again in the base framing; without it (a reconnect
 * to an address that answered in the extended protocol) it is a failed
 * attempt, and the next one offers the hello again. Before a close is
 * taken for a base-framing peer (or, in `extended` mode, reported as a close), the
 * dialer's explainClose may name the real cause (node: a TLS port reached
 * in plaintext).
 */
async function establish(dial: Dialer, address: string, making: Making, signal: AbortSignal | undefined, deadline: number, closeMeansBase = true): Promise<ClientConnection> {
  const mode = making.options.protocol ?? 'auto';
  let connection: ClientConnection;
  try {
    connection = await open(dial, address, making, signal, mode !== 'base', deadline);
  } catch (err) {
    // Only a close before the answer: a close we caused (a bad answer, a
    // deadline) is the error.
    if (!closeMeansBase || !(err instanceof IpcborError) || err.code !== 'IPCBOR_ERR_CONNECTION_CLOSED') throw err;
    // Before it is taken for a base-framing peer, the dialer may know better (a TLS port).
    const why = await explainClose(dial, signal, deadline);
    if (why) throw why;
    if (mode !== 'auto') throw err;
    connection = await open(dial, address, making, signal, false, deadline);
  }
  if (mode === 'extended' && connection.protocol !== 'extended') {
    connection.destroy();
    throw new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', `the server at ${address} speaks only the base framing`);
  }
  return connection;
}

interface Policy {
  initialDelay: number;
  maxDelay: number;
  factor: number;
  jitter: number;
  maxAttempts: number;
}

function policyOf(option: ClientOptions['reconnect']): Policy | undefined {
  if (option === undefined || option === false) return undefined;
  const o: ReconnectOptions = option === true ? {} : option;
  const num = (name: keyof ReconnectOptions, value: number | undefined, fallback: number, ok: (v: number) => boolean): number => {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || Number.isNaN(value) || !ok(value)) throw new RangeError(`reconnect.${name} is not valid: ${String(value)}`);
    return value;
  };
  const d = DEFAULT_RECONNECT;
  const p: Policy = {
    initialDelay: num('initialDelay', o.initialDelay, d.initialDelay, (v) => v >= 0 && v !== Infinity),
    maxDelay: num('maxDelay', o.maxDelay, d.maxDelay, (v) => v >= 0 && v !== Infinity),
    factor: num('factor', o.factor, d.factor, (v) => v >= 1 && v !== Infinity),
    jitter: num('jitter', o.jitter, d.jitter, (v) => v >= 0 && v <= 1),
    maxAttempts: num('maxAttempts', o.maxAttempts, d.maxAttempts, (v) => v >= 1),
  };
  return p;
}

/** The delay before attempt `n` (from 1): exponential, capped, with jitter. */
export function backoffDelay(p: Policy, n: number): number {
  return Math.round(backoffCap(p, n) * (1 - p.jitter * Math.random()));
}

/** The largest delay before attempt `n` (from 1). */
function backoffCap(p: Policy, n: number): number {
  return Math.min(p.maxDelay, p.initialDelay * p.factor ** (n - 1));
}

/** A notification made while disconnected (`whileDisconnected: 'wait'`). */
interface WaitingNotification {
  method: string;
  params: unknown;
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
  settled: boolean;
}

function deferred(): Deferred {
  const d = { settled: false } as Deferred;
  d.promise = new Promise<void>((resolve, reject) => {
    d.resolve = () => {
      d.settled = true;
      resolve();
    };
    d.reject = (err) => {
      d.settled = true;
      reject(err);
    };
  });
  d.promise.catch(noop);
  return d;
}


/**
 * The Client: the one layer over its connections, one at a time. It owns
 * what outlives a connection: the subscriptions (registered again on each
 * new connection), the calls waiting for a connection, the state, and
 * with `reconnect`, making a new connection when one drops. Each call's
 * timeout and abort are wired once (outgoing.ts), wherever the call is.
 */
class ClientImpl implements Client {
  readonly closed: Promise<IpcborError>;
  private resolveClosed!: (reason: IpcborError) => void;
  private conn: ClientConnection;
  private st: ClientState = 'open';
  /** close() or destroy() was called, or reconnecting gave up: no more connections. */
  private final = false;
  private finished = false;
  private closing: Promise<void> | undefined;
  private readonly watchers = new Set<AsyncQueue<ClientStateChange>>();
  /** The subscriptions, by name (shared with each connection, which delivers to them). */
  private readonly subs: SubscriptionSet;
  /** Each subscription, and the promise its `ready` is now. */
  private readonly readiness = new Map<Subscription, Deferred>();
  /** Calls and notifications made while disconnected (`whileDisconnected: 'wait'`), in order. */
  private waiting: (OutgoingCall | WaitingNotification)[] = [];
  private attempt = 0;
  /**
   * The backoff's step: the attempts since the last connection that stayed
   * up at least as long as that step's delay cap. Unlike `attempt` it is not
   * reset by a connection that drops at once (a server that answers the
   * hello and then closes), or such a server would be redialed every
   * initialDelay forever.
   */
  private step = 0;
  /** When the connection now in use was opened (ms). */
  private openedAt = Date.now();
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private attemptAbort: AbortController | undefined;
  private readonly whileDisconnected: 'fail' | 'wait';
  private readonly maxQueued: number;
  private readonly defaultTimeout: number | undefined;
  /** The caller gave up on a call (its timeout, its signal): take it back from wherever it is. */
  private readonly giveUp = (call: OutgoingCall, err: IpcborError): void => {
    if (call.conn) return call.conn.abandon(call, err);
    const i = this.waiting.indexOf(call);
    if (i >= 0) this.waiting.splice(i, 1);
    discardIterable(call.params);
    call.finish(undefined, err);
  };

  constructor(
    private readonly dial: Dialer,
    readonly address: string,
    private readonly making: Making,
    private readonly policy: Policy | undefined,
    connection: ClientConnection,
  ) {
    const options = making.options;
    this.conn = connection;
    this.subs = making.subs;
    this.whileDisconnected = options.whileDisconnected ?? 'fail';
    this.maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.defaultTimeout = making.resolved.timeout;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.watch(connection);
  }

  get protocol(): 'base' | 'extended' {
    return this.conn.protocol;
  }

  get server(): HelloResponse | undefined {
    return this.conn.serverInfo;
  }

  // A getter of the class, not a property set on each client: clients
  // given properties of their own each get a hidden class of their own,
  // and every property read on the call path then goes through a lookup.
  get peer(): PeerIdentity | undefined {
    return this.dial.identity?.();
  }

  get state(): ClientState {
    // Without reconnect, the connection's state, exactly.
    return this.policy ? this.st : this.conn.state;
  }

  get inflight(): number {
    let waiting = 0;
    for (const w of this.waiting) if (w instanceof OutgoingCall) waiting++;
    return this.conn.inflight + waiting;
  }

  /** With reconnect and not closing: is there no usable connection right now? */
  private get disconnected(): boolean {
    return this.policy !== undefined && !this.final && (this.st !== 'open' || this.conn.state !== 'open');
  }

  states(): AsyncIterableIterator<ClientStateChange> {
    const q: AsyncQueue<ClientStateChange> = new AsyncQueue({ stopped: () => this.watchers.delete(q) }, { maxItems: STATE_BACKLOG, maxBytes: Infinity });
    q.push({ state: this.state });
    if (this.finished) q.end();
    else this.watchers.add(q);
    return q;
  }

  private setState(state: ClientState, detail: Omit<ClientStateChange, 'state'> = {}): void {
    this.st = state;
    const change: ClientStateChange = { state, ...detail };
    for (const q of this.watchers) {
      q.push(change);
      if (state === 'closed') q.end();
    }
    if (state === 'closed') this.watchers.clear();
  }

  // ---- calls -----------------------------------------------------------------

  call<R>(method: string, params: unknown = {}, options?: CallOptions): Promise<R> {
    let signal: AbortSignal | undefined;
    let timeout: number | undefined;
    if (options === undefined) {
      // The usual call: nothing to read or check.
      timeout = this.defaultTimeout;
    } else {
      signal = options.signal;
      if (signal?.aborted) {
        discardIterable(params);
        return Promise.reject(cancelled(method, signal.reason));
      }
      try {
        timeout = options.timeout === undefined || options.timeout === null ? this.defaultTimeout : checkTimeout(options.timeout);
      } catch (err) {
        discardIterable(params);
        return Promise.reject(err);
      }
    }
    if (!this.disconnected) {
      const call = new OutgoingCall(method, params, timeout, signal, this.giveUp);
      const promise = call.promise<R>();
      try {
        this.conn.send(call);
      } catch (err) {
        // As when the executor sent it: the caller's promise rejects, call() does not throw.
        call.finish(undefined, err);
      }
      return promise;
    }
    if (this.whileDisconnected === 'fail') return this.refuse(method, params, this.notConnected(method));
    if (this.waiting.length >= this.maxQueued) return this.refuse(method, params, this.queueFull(method));
    const call = new OutgoingCall(method, params, timeout, signal, this.giveUp);
    const promise = call.promise<R>();
    call.markWaiting();
    this.waiting.push(call);
    return promise;
  }

  private refuse<R>(method: string, params: unknown, err: IpcborError): Promise<R> {
    discardIterable(params);
    return Promise.reject(err);
  }

  notify(method: string, params: unknown = {}): void {
    if (!this.disconnected) return this.conn.notify(method, params);
    if (this.whileDisconnected === 'fail') throw this.notConnected(method);
    if (this.waiting.length >= this.maxQueued) throw this.queueFull(method);
    this.making.resolved.codec.encode(params); // an encoding error is the caller's, now
    this.waiting.push({ method, params });
  }

  /** Reconnected: send what waited, in order, each call with what is left of its timeout. */
  private flush(): void {
    const queued = this.waiting;
    this.waiting = [];
    for (const w of queued) {
      if (w instanceof OutgoingCall) {
        if (!w.settled) this.conn.send(w);
        continue;
      }
      try {
        this.conn.notify(w.method, w.params);
      } catch {
        // Only the connection closing again can get here: a notification is not kept.
      }
    }
  }

  private notConnected(method: string): IpcborError {
    return new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', `not connected to ${this.address} (${this.st})`, { method, ...(this.conn.reason ? { cause: this.conn.reason } : {}) });
  }

  private queueFull(method: string): IpcborError {
    return new IpcborError('IPCBOR_ERR_OVERLOADED', `${this.maxQueued} calls already wait for the connection to ${this.address}`, { method });
  }

  service<S>(...args: ServiceArgs<S>): Remote<S> {
    return createRemote<S>((m, p, o) => this.call(m, p, o), prefixOf(args[0]));
  }

  events<S>(...args: ServiceArgs<S>): RemoteEvents<S> {
    return createRemoteEvents<S>((name, listener) => this.subscribe(name, listener), prefixOf(args[0]));
  }

  // ---- subscriptions -----------------------------------------------------------

  subscribe<T>(name: string, listener?: EventListener<T>): Subscription<T> {
    if (this.conn.protocol !== 'extended') {
      throw new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', 'events need the extended protocol, which this server does not speak');
    }
    if (this.final || (!this.policy && this.conn.state !== 'open')) {
      throw this.policy ? new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', `the client of ${this.address} is closed`, { method: SUBSCRIBE_METHOD }) : this.conn.closedError(SUBSCRIBE_METHOD);
    }
    const sub = new Subscription(name, listener as EventListener | undefined, this.subs.limits, (s) => this.unsubscribe(s));
    const d = deferred();
    sub.ready = d.promise;
    this.readiness.set(sub, d);
    this.subs.add(sub);
    if (!this.disconnected) void this.register(this.conn, sub);
    return sub as Subscription<T>;
  }

  /**
   * Register `sub` on `conn`. Settles its `ready` unless the connection
   * closed first (the next connection registers it again). A refusal ends
   * the subscription with the server's error.
   */
  private register(conn: ClientConnection, sub: Subscription): Promise<void> {
    let d = this.readiness.get(sub)!;
    if (d.settled) {
      d = deferred();
      sub.ready = d.promise;
      this.readiness.set(sub, d);
    }
    const mine = d;
    return conn.register(sub.name).then(
      () => {
        if (this.readiness.get(sub) === mine) return mine.resolve();
        // Unsubscribed while this connection registered it (a reconnect
        // restoring it): take it back here, unless another has the name.
        if (!this.subs.has(sub.name)) void conn.unregister(sub.name);
      },
      (err: unknown) => {
        if (this.readiness.get(sub) !== mine) return; // unsubscribed meanwhile
        if (err instanceof IpcborError && err.code === 'IPCBOR_ERR_CONNECTION_CLOSED' && !this.final && this.policy) return;
        this.readiness.delete(sub);
        this.subs.delete(sub);
        mine.reject(err);
        sub.close(err);
        conn.peer.flow.update();
      },
    );
  }

  private unsubscribe(sub: Subscription): Promise<void> {
    const d = this.readiness.get(sub);
    if (d === undefined) return Promise.resolve();
    this.readiness.delete(sub);
    if (!d.settled) d.resolve();
    const last = this.subs.delete(sub);
    // A reader that stopped may have been the one holding reading back.
    this.conn.peer.flow.update();
    return last ? this.conn.unregister(sub.name) : Promise.resolve();
  }

  // ---- connections -------------------------------------------------------------

  private watch(conn: ClientConnection): void {
    void conn.closed.then((reason) => {
      if (conn !== this.conn || this.finished) return;
      if (!this.policy || this.final) this.finish(reason);
      else this.retry(reason, true);
    });
  }

  /** Wait, then make attempt number `attempt + 1`; give up after maxAttempts. */
  private retry(error: IpcborError, dropped: boolean): void {
    const policy = this.policy!;
    if (dropped) {
      this.attempt = 0;
      if (this.step > 0 && Date.now() - this.openedAt >= backoffCap(policy, this.step)) this.step = 0;
    }
    if (this.attempt >= policy.maxAttempts) {
      this.final = true;
      this.finish(new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', `gave up reconnecting to ${this.address} after ${this.attempt} attempts`, { cause: error }));
      return;
    }
    const attempt = ++this.attempt;
    const delay = backoffDelay(policy, ++this.step);
    this.setState('reconnecting', { attempt, delay, error });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.reconnect(attempt);
    }, delay);
  }

  private async reconnect(attempt: number): Promise<void> {
    this.setState('connecting', { attempt });
    const ac = new AbortController();
    this.attemptAbort = ac;
    const deadline = Date.now() + (this.making.options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT);
    let conn: ClientConnection;
    try {
      // The last connection spoke the extended protocol: only an explicit
      // base-framing answer to the hello says the server changed its mind.
      conn = await establish(this.dial, this.address, this.making, ac.signal, deadline, this.conn.protocol === 'base');
    } catch (err) {
      this.attemptAbort = undefined;
      if (this.final) return;
      this.retry(asIpcborError(err, { code: 'IPCBOR_ERR_CONNECT', context: `could not connect to ${this.address}` }), false);
      return;
    }
    // Restore the subscriptions before anything else goes out, and before
    // the client says it is open: events from then on reach them.
    const subs = new Set(this.readiness.keys());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), Math.max(0, deadline - Date.now()))));
    const aborted = new Promise<'aborted'>((resolve) => ac.signal.addEventListener('abort', () => resolve('aborted'), { once: true }));
    const outcome = subs.size === 0 || conn.protocol !== 'extended' ? 'done' : await Promise.race([Promise.all([...subs].map((s) => this.register(conn, s))).then(() => 'done' as const), late, aborted]);
    clearTimeout(timer);
    this.attemptAbort = undefined;
    if (this.final) {
      conn.destroy();
      return;
    }
    if (outcome === 'late' || conn.state !== 'open') {
      const err = new IpcborError('IPCBOR_ERR_CONNECT', `could not connect to ${this.address}: restoring subscriptions ${outcome === 'late' ? 'timed out' : 'failed'}`, conn.reason ? { cause: conn.reason } : {});
      conn.destroy(err);
      this.retry(err, false);
      return;
    }
    if (conn.protocol !== 'extended') {
      // Now a base-framing peer: there are no events to restore.
      const err = new IpcborError('IPCBOR_ERR_NOT_SUPPORTED', 'events need the extended protocol, which this server does not speak');
      for (const [sub, d] of this.readiness) {
        d.reject(err);
        this.subs.delete(sub);
        sub.close(err);
      }
      this.readiness.clear();
    }
    // Subscribed while this attempt restored the others.
    for (const s of this.readiness.keys()) if (!subs.has(s)) void this.register(conn, s);
    this.conn = conn;
    this.attempt = 0;
    this.openedAt = Date.now();
    this.watch(conn);
    this.setState('open');
    this.flush();
  }

  /** Closed for good: settle what waits, end the subscriptions, resolve `closed`. */
  private finish(reason: IpcborError): void {
    if (this.finished) return;
    this.finished = true;
    this.final = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.attemptAbort?.abort();
    const queued = this.waiting;
    this.waiting = [];
    for (const w of queued) {
      discardIterable(w.params);
      if (w instanceof OutgoingCall) w.finish(undefined, new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', `the client closed before ${w.method} could be sent`, { method: w.method, cause: reason }));
    }
    const err = new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', `the connection closed: ${reason.message}`, { cause: reason });
    for (const [sub, d] of this.readiness) {
      if (!d.settled) d.reject(err);
      sub.close(err);
    }
    this.readiness.clear();
    for (const sub of this.subs.all()) this.subs.delete(sub);
    this.setState('closed', { error: reason });
    this.resolveClosed(reason);
  }

  /** Closing while not connected: nothing to wait for. */
  private stopReconnecting(): boolean {
    if (this.policy === undefined || this.finished || (this.st !== 'reconnecting' && this.st !== 'connecting')) return false;
    this.final = true;
    this.setState('closing');
    this.finish(new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', `the client of ${this.address} was closed while reconnecting`));
    return true;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.final = true;
      if (this.stopReconnecting() || this.finished) return;
      this.setState('closing');
      const connection = this.conn;
      // Calls in flight and open result streams may finish, for at most
      // closeTimeout: a stream nobody reads never ends by itself.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([connection.idle(), new Promise<void>((r) => (timer = setTimeout(r, this.making.options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT)))]);
      clearTimeout(timer);
      // The peer closes its side in turn; one that does not is cut after the linger.
      connection.end();
      await connection.closed;
      await this.closed;
    })();
    return this.closing;
  }

  destroy(): void {
    this.final = true;
    if (this.stopReconnecting()) return;
    this.conn.destroy();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * A client over a transport of your own: `dial` opens a connection (and
 * again for each reconnection), `address` names it in errors and in
 * `client.address`. It offers the extended protocol and falls back to the
 * base framing as `options.protocol` says, all within `connectTimeout`.
 *
 * Rejects with `IPCBOR_ERR_CONNECT` (the dial failed or timed out),
 * `IPCBOR_ERR_CANCELLED` (`options.signal` aborted), `IPCBOR_ERR_NOT_SUPPORTED`
 * (`protocol: 'extended'` and a server of the base framing only), or what
 * `dial` rejected with.
 *
 * @param dial - opens one transport; it should give up when its signal aborts
 * @param address - how errors and `client.address` name the other end
 * @param options - see {@link ClientOptions}
 * @example
 * ```ts
 * import { createClient, type OpenTransport } from 'ipcbor/core';
 *
 * const client = await createClient(async (signal) => openMyTransport(signal), 'pipe:worker');
 * await client.call('ping');
 * ```
 */
export async function createClient(dial: Dialer, address: string, options: ClientOptions = {}): Promise<Client> {
  const policy = policyOf(options.reconnect);
  const wd = options.whileDisconnected;
  if (wd !== undefined && wd !== 'fail' && wd !== 'wait') throw new RangeError(`whileDisconnected must be 'fail' or 'wait', got ${String(wd)}`);
  const mq = options.maxQueued;
  if (mq !== undefined && !(typeof mq === 'number' && mq >= 0)) throw new RangeError(`maxQueued must be a non-negative number, got ${String(mq)}`);
  const resolved = clientConnectionOptions(options, checkTimeout(options.timeout));
  const making: Making = { options, resolved, subs: new SubscriptionSet(resolved.events) };
  const connection = await establish(dial, address, making, options.signal, Date.now() + (options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT));
  return new ClientImpl(dial, address, making, policy, connection);
}
