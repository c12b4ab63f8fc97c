/**
 * A relay without sockets: it takes the transports of incoming
 * connections, opens a connection to the service for each through a
 * Dialer, and links the two (link.ts). The Node relay (src/node/relay.ts)
 * listens and dials; a WebSocket bridge hands it WebSocket transports.
 *
 * The bounds are a server's: connections held at once (those still
 * dialing the service included), bytes per connection and across all of
 * them, a frame's size and the time it may take to arrive. What a client
 * sends toward a service that does not read counts against that client's
 * budget; what the service sends toward a client that does not read stops
 * the relay reading the service for that client alone.
 */
import { wireCodec, type Codec } from '../codec/cbor.js';
import { CLOSE_LINGER_MS, DEFAULT_CLOSE_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_SERVER_BYTES, DEFAULT_STREAM_WINDOW, FAIL_GRACE_MS } from '../constants.js';
import { IpcborError, asIpcborError, guarded, messageOf } from '../errors.js';
import { ConnectionBudget, ServerBudget } from '../peer/budget.js';
import { peerConfig } from '../peer/peer.js';
import { afterIo, WriteTurns } from '../peer/turns.js';
import { backgroundTimer } from '../peer/timers.js';
import { Kind } from '../protocol/heads.js';
import { refuseConnection } from '../server/server.js';
import { serverLimits, type ServerLimits } from '../server/connection.js';
import type { ConnectionInfo, Dialer, OpenTransport } from '../transport.js';
import { RelayLink, type LinkShared } from './link.js';
import type { RelayObserver } from './observe.js';

export interface RelayCoreOptions extends Pick<ServerLimits, 'maxFrameBytes' | 'maxMethodBytes' | 'maxConnectionBytes' | 'frameTimeout' | 'idleTimeout'> {
  codec?: Codec;
  /** Clients relayed at once, those whose service connection is still opening included (default 10,000); more are refused. */
  maxConnections?: number;
  /** Bytes all relayed connections together may make the relay hold (default 256 MiB). */
  maxServerBytes?: number;
  /** How long opening the service's connection may take, in ms (default 10,000). */
  connectTimeout?: number;
  /**
   * How long, once one end has closed, the other end has to take what was
   * already sent to it and close in turn before it is cut, in ms (default
   * 10,000). `close()` waits as long for calls in flight.
   */
  closeTimeout?: number;
  /** Told of what a client or the service did wrong that nobody else hears of, and of a service that could not be reached. */
  onError?: (err: IpcborError, connection: Omit<ConnectionInfo, 'protocol'>) => void;
  /**
   * Told of every frame the relay moves, both ways, and of each relayed
   * connection's open and its two ends' close (RelayEvent, observe.ts): for
   * watching the traffic (`ipcbor monitor`). Called synchronously; an
   * exception it throws is rethrown later, outside the relay.
   */
  observe?: RelayObserver;
}

/** What each relayed connection is: the facts about its client, and the link once the service's connection is open. */
interface Relayed {
  readonly info: Omit<ConnectionInfo, 'protocol'>;
  link: RelayLink | undefined;
  /** Aborts the service's connection while it is being opened. */
  readonly dialing: AbortController;
}

/** Relayed connection ids are unique in the process. */
let nextRelayId = 1;

export class RelayCore implements AsyncDisposable {
  /** @internal what all relayed connections together hold */
  readonly budget: ServerBudget;
  private readonly options: RelayCoreOptions;
  private readonly shared: LinkShared;
  private readonly connections = new Set<Relayed>();
  private readonly maxConnections: number;
  private readonly maxConnectionBytes: number;
  private closing: Promise<void> | undefined;
  private refusing = 0;

  constructor(
    private readonly dial: Dialer,
    options: RelayCoreOptions = {},
  ) {
    this.options = options;
    const limits = serverLimits(options);
    this.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.maxConnectionBytes = limits.maxConnectionBytes;
    this.budget = new ServerBudget(options.maxServerBytes ?? DEFAULT_MAX_SERVER_BYTES);
    const codec = options.codec ?? wireCodec;
    const turns = new WriteTurns(afterIo, this.budget);
    const common = { codec, maxFrameBytes: limits.maxFrameBytes, window: DEFAULT_STREAM_WINDOW, frameTimeout: limits.frameTimeout, turns };
    const closeTimeout = options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT;
    this.shared = Object.freeze({
      codec,
      maxFrameBytes: limits.maxFrameBytes,
      failGrace: FAIL_GRACE_MS,
      // The client's end is a server's: its unsent answers are charged, and
      // a client that reads none of them while the relay is short of room is cut.
      client: peerConfig({
        ...common,
        maxMethodBytes: limits.maxMethodBytes,
        receives: 'request',
        takes: [Kind.Call, Kind.Notify, Kind.Cancel, Kind.Error, Kind.Item, Kind.End, Kind.Credit],
        other: 'client',
        guardWrites: true,
        idleTimeout: limits.idleTimeout,
        linger: closeTimeout,
      }),
      // The service's end is a client's: it reads on while its own writes
      // wait (the service may be waiting for its answers to leave first).
      service: peerConfig({
        ...common,
        receives: 'response',
        takes: [Kind.Cancel, Kind.Result, Kind.Error, Kind.Item, Kind.End, Kind.Credit, Kind.Event],
        other: 'service',
        guardWrites: false,
        idleTimeout: 0,
        linger: CLOSE_LINGER_MS,
      }),
      observe: options.observe,
      report: (err: IpcborError, link: RelayLink) => {
        for (const r of this.connections) if (r.link === link) return this.report(err, r.info);
      },
    });
  }

  /** The relay's frame limit. */
  get maxFrameBytes(): number {
    return this.shared.maxFrameBytes;
  }

  /** Clients relayed now (those whose service connection is opening included). */
  get size(): number {
    return this.connections.size;
  }

  /**
   * A client connected on `transport` (not yet attached: the relay attaches
   * it). The service's connection is opened for it; its bytes wait
   * unread until then. Over maxConnections, while closing, or when the
   * service cannot be reached, the client is refused: a hello hears why as
   * its answer, a base-framing client as the error of its first call.
   */
  accept(transport: OpenTransport, info: Omit<ConnectionInfo, 'id' | 'protocol'>): void {
    const full = { ...info, id: nextRelayId++ };
    if (this.closing || this.connections.size >= this.maxConnections) {
      const why = this.closing
        ? new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the relay is shutting down')
        : new IpcborError('IPCBOR_ERR_OVERLOADED', `the relay holds its maximum of ${this.maxConnections} connections`);
      return this.refuse(transport, full, why);
    }
    const relayed: Relayed = { info: full, link: undefined, dialing: new AbortController() };
    this.connections.add(relayed);
    // Until the service's connection is open the client's transport is not
    // read; if it closes meanwhile, the dial is given up.
    void this.open(transport, relayed);
  }

  private async open(transport: OpenTransport, relayed: Relayed): Promise<void> {
    const limit = this.options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
    const timer = backgroundTimer(() => relayed.dialing.abort(new IpcborError('IPCBOR_ERR_CONNECT', `the service did not accept the connection within ${limit} ms`)), limit);
    let service: OpenTransport;
    try {
      service = await this.dial(relayed.dialing.signal);
    } catch (err) {
      this.connections.delete(relayed);
      const cause = relayed.dialing.signal.aborted ? relayed.dialing.signal.reason : err;
      const why = new IpcborError('IPCBOR_ERR_CONNECT', `the relay could not reach the service: ${messageOf(cause)}`, { cause });
      this.report(why, relayed.info);
      if (this.closing && cause instanceof IpcborError && cause.code === 'IPCBOR_ERR_SHUTTING_DOWN') return transport.destroy();
      return this.refuse(transport, relayed.info, why);
    } finally {
      clearTimeout(timer);
    }
    if (relayed.dialing.signal.aborted) {
      // Destroyed while the dial finished.
      service.destroy();
      transport.destroy();
      this.connections.delete(relayed);
      return;
    }
    const link = new RelayLink(this.shared, transport, service, new ConnectionBudget(this.maxConnectionBytes, this.budget), new ConnectionBudget(this.maxConnectionBytes), relayed.info);
    relayed.link = link;
    const observe = this.options.observe;
    if (observe !== undefined) {
      const event = { type: 'open', connection: relayed.info, time: performance.now() } as const;
      guarded(() => observe(event));
    }
    void link.closed.then(() => this.connections.delete(relayed));
    transport.attach(link.client);
    service.attach(link.service);
  }

  private refuse(transport: OpenTransport, info: Omit<ConnectionInfo, 'protocol'>, why: IpcborError): void {
    if (this.refusing >= 64) return transport.destroy();
    this.refusing++;
    const c = refuseConnection(transport, info, why, { codec: this.shared.codec }, new ConnectionBudget(this.maxConnectionBytes, this.budget));
    void c.closed.then(() => this.refusing--);
    transport.attach(c);
  }

  private report(err: IpcborError, info: Omit<ConnectionInfo, 'protocol'>): void {
    const onError = this.options.onError;
    if (onError) guarded(() => onError(asIpcborError(err), info));
  }

  /**
   * Take no new clients; end each relayed connection once nothing is in
   * flight on it (cut after closeTimeout), and give up the service
   * connections still opening. Safe to call twice.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const limit = this.options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT;
      await Promise.all(
        [...this.connections].map(async (r) => {
          const link = r.link;
          if (link === undefined) return r.dialing.abort(new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the relay is shutting down'));
          let timer: ReturnType<typeof setTimeout> | undefined;
          const cut = new Promise<void>((resolve) => {
            timer = setTimeout(() => {
              link.destroy(new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', `the relay shut down with calls still in flight after ${limit} ms`));
              resolve();
            }, limit);
          });
          await Promise.race([link.shutdown(), cut]);
          clearTimeout(timer);
        }),
      );
    })();
    return this.closing;
  }

  /** Stop at once: every relayed connection is cut, both ends. */
  destroy(): void {
    this.closing ??= Promise.resolve();
    for (const r of this.connections) {
      if (r.link === undefined) r.dialing.abort(new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the relay is shutting down'));
      else r.link.destroy(new IpcborError('IPCBOR_ERR_SHUTTING_DOWN', 'the relay was stopped'));
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
