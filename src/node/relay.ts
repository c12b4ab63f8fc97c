/**
 * `createRelay()`: expose a service on other addresses without the service
 * knowing (libIPC's protocol daemons). Each client that connects to a
 * listener gets its own connection to the service, and whole frames move
 * both ways, their payloads never decoded (src/core/relay/). Listeners:
 * `tcp:`, `tls:` and unix sockets, and `ws:` / `wss:` through the WebSocket
 * bridge (bridge.ts, loaded only when such an address is given).
 */
import { DEFAULT_KEEPALIVE } from '../core/constants.js';
import { IpcborError } from '../core/errors.js';
import { adaptTransport, type RelayAdapter } from '../core/relay/adapt.js';
import { RelayCore, type RelayCoreOptions } from '../core/relay/relay.js';
import type { ConnectionInfo } from '../core/transport.js';
import { formatAddress, isLoopbackHost, parseAddress, tcpAddress, type Address } from './address.js';
import type { BridgeOptions } from './bridge.js';
import { dialerFor } from './client.js';
import { checkListeners, listenAll, type Listening } from './server.js';
import type { TlsClientOptions, TlsServerOptions } from './tls.js';

export type { RelayAdapter } from '../core/relay/adapt.js';
export type { BridgeOptions } from './bridge.js';

/**
 * The options of {@link createRelay}: where to listen (`listen`), the
 * service (`to`), and the relay's limits. Limits not given take the
 * server's defaults ({@link DEFAULT_MAX_FRAME_BYTES},
 * {@link DEFAULT_MAX_CONNECTION_BYTES}, {@link DEFAULT_FRAME_TIMEOUT}, …);
 * `idleTimeout` is 0 (never) unless the relay has a `ws:` or `wss:`
 * listener, where it is {@link DEFAULT_WS_IDLE_TIMEOUT}.
 */
export interface RelayOptions extends Omit<RelayCoreOptions, 'codec'> {
  /**
   * Where clients connect, one address or several: `tcp:HOST:PORT`,
   * `tls:HOST:PORT`, a unix socket path or service name, and for the
   * WebSocket bridge `ws:HOST:PORT` or `wss:HOST:PORT`. Port 0 picks a free
   * port (see `addresses`).
   */
  listen: string | readonly string[];
  /** The service: a name, a unix socket path, `tcp:HOST:PORT` or `tls:HOST:PORT`. */
  to: string | Address;
  /**
   * The certificate and key of `tls:` and `wss:` listeners, and the
   * clients' CA for mutual TLS (as for serve()). Required with such a
   * listener, refused without one (IPCBOR_ERR_INVALID_ADDRESS).
   */
  tls?: TlsServerOptions;
  /**
   * Allow plaintext (`tcp:`, `ws:`) on a network address (anything but
   * loopback). Default false: such a listener is refused, as by serve().
   */
  insecure?: boolean;
  /** How to reach a `tls:` service: its CA, this relay's certificate for mutual TLS. Default: Node's trusted CAs, no client certificate. */
  toTls?: TlsClientOptions;
  /**
   * The service's unix socket: whose socket to accept besides your own and
   * root's, a uid or `'any'` (as for connect()). Default: only your own and
   * root's; another's is refused each time a client's connection is opened.
   */
  socketOwner?: number | 'any';
  /** The WebSocket bridge (`ws:` and `wss:` listeners): origins, token, pages, pings. Default: see {@link BridgeOptions}. */
  websocket?: BridgeOptions;
  /**
   * Clients of the `tcp:`, `tls:` and unix listeners speak another format:
   * make an adapter for each connection (see RelayAdapter). Default: none,
   * they speak ipcbor (the base framing or the extended protocol).
   */
  adapter?: () => RelayAdapter;
  /** Mode bits of a unix socket file (default 0o600). */
  permissions?: number;
  /** TCP keepalive of listeners and of the service's connection, idle ms before the first probe (default {@link DEFAULT_KEEPALIVE}, 60,000; 0: off). */
  keepAlive?: number;
  /** Connections the operating system queues for accept() (default: Node's, 511). */
  backlog?: number;
}

/** A running relay, made by {@link createRelay}. `await using` closes it. */
export interface Relay extends AsyncDisposable {
  /** Where the relay listens, with real ports (`tcp:127.0.0.1:43117`, `ws:127.0.0.1:8080`). */
  readonly addresses: readonly string[];
  /** The service, as an address (`unix:/run/user/1000/ipcbor/timer.sock`, `tcp:127.0.0.1:9099`, or a service name). */
  readonly to: string;
  /** Clients relayed now, those whose connection to the service is still opening included. */
  readonly connections: number;
  /**
   * Stop listening, let calls in flight finish (each relayed connection
   * ends once quiet), then close; a connection still busy after
   * `closeTimeout` (default {@link DEFAULT_CLOSE_TIMEOUT}) is cut. Every
   * call returns the same promise.
   */
  close(): Promise<void>;
  /** Stop at once: every relayed connection is cut. */
  destroy(): void;
}

/** The idle timeout of a relay with a WebSocket listener unless one is given, in ms: browsers leave tabs open. */
export const DEFAULT_WS_IDLE_TIMEOUT = 300_000;

/** A listen address: the kinds of serve(), and `ws:` / `wss:` for the bridge. */
function parseListen(text: string): { address: Address; websocket: boolean } {
  const m = /^(wss?):(.+):(\d+)$/.exec(text);
  if (m) {
    const host = m[2]!.startsWith('[') && m[2]!.endsWith(']') ? m[2]!.slice(1, -1) : m[2]!;
    return { address: tcpAddress(host, m[3]!, m[1] === 'wss' ? 'tls' : 'tcp'), websocket: true };
  }
  return { address: parseAddress(text), websocket: false };
}

/**
 * Expose a service on other addresses without the service knowing: each
 * client that connects to a listener gets its own connection to the
 * service (`to`), and whole frames move both ways, never decoded. Clients
 * may speak the base framing or the extended protocol, whatever the
 * service answers. `ws:` and `wss:` listeners are the WebSocket bridge,
 * for browsers (see {@link BridgeOptions}). Resolves once every address
 * listens; the service is only dialed when a client connects.
 *
 * Rejects with IPCBOR_ERR_INVALID_ADDRESS for an address it cannot parse,
 * no `listen` address, a `tls:` or `wss:` listener without `tls`, `tls`
 * without such a listener, plaintext (`tcp:`, `ws:`) on a network address
 * without `insecure`, a bridge token that cannot travel as a subprotocol,
 * or an address it cannot listen on (a port in use: Node's error is its
 * `cause`); with IPCBOR_ERR_ALREADY_RUNNING when a live server has the unix
 * socket. Nothing stays bound when it rejects.
 *
 * @param options - see {@link RelayOptions}
 * @example
 * ```ts
 * import { createRelay } from 'ipcbor';
 *
 * // The local service `timer`, reachable over TCP and from browsers.
 * await using relay = await createRelay({
 *   to: 'timer',
 *   listen: ['tcp:127.0.0.1:9099', 'ws:127.0.0.1:8080'],
 * });
 * console.log(relay.addresses); // [ 'tcp:127.0.0.1:9099', 'ws:127.0.0.1:8080' ]
 * ```
 */
export async function createRelay(options: RelayOptions): Promise<Relay> {
  const to = parseAddress(options.to);
  const listens = (typeof options.listen === 'string' ? [options.listen] : options.listen).map(parseListen);
  if (listens.length === 0) throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', 'the relay needs at least one address to listen on');
  const plain = listens.filter((l) => !l.websocket).map((l) => l.address);
  const web = listens.filter((l) => l.websocket).map((l) => l.address);
  // The rules of serve(): no tls option without a tls: listener, no plaintext off loopback unless insecure.
  checkListeners(
    listens.map((l) => l.address),
    options,
    false,
  );
  for (const a of web) {
    if (a.kind === 'tcp' && !isLoopbackHost(a.host) && options.insecure !== true) throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', `refusing plaintext ws: on the network address ${a.host}: use wss: with a certificate, or insecure: true`);
  }
  const keepAlive = options.keepAlive ?? DEFAULT_KEEPALIVE;
  const dial = dialerFor(to, { ...(options.toTls ? { tls: options.toTls } : {}), ...(options.socketOwner === undefined ? {} : { socketOwner: options.socketOwner }) }, keepAlive);
  // Browsers leave tabs open: with a WebSocket listener, clients that go quiet are let go.
  const core = new RelayCore(dial, web.length > 0 && options.idleTimeout === undefined ? { ...options, idleTimeout: DEFAULT_WS_IDLE_TIMEOUT } : options);
  const adapter = options.adapter;
  const listening: Listening[] = [];
  try {
    if (plain.length > 0) {
      listening.push(
        await listenAll(plain, options, () => (transport, info) => {
          core.accept(adapter === undefined ? transport : adaptTransport(transport, adapter()), info);
        }),
      );
    }
    if (web.length > 0) {
      // Loaded here only: an application that never bridges never loads ws.
      const { listenWebSocket } = await import('./bridge.js');
      const report = (err: IpcborError) => options.onError?.(err, { id: 0, transport: 'ws' } satisfies Omit<ConnectionInfo, 'protocol'>);
      listening.push(await listenWebSocket(web, core, { ...options.websocket, ...pick(options), maxFrameBytes: core.maxFrameBytes }, report));
    }
  } catch (err) {
    for (const l of listening) l.stop();
    core.destroy();
    throw err;
  }
  const stop = () => {
    for (const l of listening) l.stop();
  };
  const relay: Relay = {
    addresses: listening.flatMap((l) => l.addresses),
    to: formatAddress(to),
    get connections() {
      return core.size;
    },
    async close() {
      stop();
      await core.close();
    },
    destroy() {
      stop();
      core.destroy();
    },
    [Symbol.asyncDispose]() {
      return relay.close();
    },
  };
  return relay;
}

/** The listen options the bridge shares with the relay's other listeners. */
function pick(options: RelayOptions): { tls?: TlsServerOptions; keepAlive?: number; permissions?: number; backlog?: number } {
  const out: { tls?: TlsServerOptions; keepAlive?: number; permissions?: number; backlog?: number } = {};
  if (options.tls !== undefined) out.tls = options.tls;
  if (options.keepAlive !== undefined) out.keepAlive = options.keepAlive;
  if (options.permissions !== undefined) out.permissions = options.permissions;
  if (options.backlog !== undefined) out.backlog = options.backlog;
  return out;
}
