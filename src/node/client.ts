/**
 * `connect()`: a client over a unix socket, TCP, or TLS. Everything but
 * dialing (the hello, the base-framing fallback, the connect deadline, the Client)
 * is the core's createClient.
 */
import { createConnection, type Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import { createClient, type Client as CoreClient, type ClientOptions } from '../core/client/client.js';
import type { Dialer, OpenTransport } from '../core/transport.js';
import { DEFAULT_KEEPALIVE } from '../core/constants.js';
import { IpcborError } from '../core/errors.js';
import type { PeerIdentity } from '../core/transport.js';
import { formatAddress, parseAddress, type Address } from './address.js';
import { SocketTransport } from './socket-transport.js';
import { clientContext, dialTls, looksLikeTlsPort, type TlsClientOptions } from './tls.js';
import { checkUnixPeer } from './trust.js';

/**
 * The client of Node's {@link connect}: the core client (calls, typed
 * services, events, reconnection) and the TLS peer's certificate.
 */
export interface Client extends CoreClient {
  /** `tls:` addresses: the server's verified certificate, from the last completed TLS handshake (the open connection's while `state` is `open`); undefined otherwise. */
  readonly peer: PeerIdentity | undefined;
}

/**
 * The options of Node's {@link connect}: those of every client
 * ({@link ClientOptions}: timeouts, reconnection, limits) and the socket's.
 *
 * @example
 * ```ts
 * const client = await connect('tls:db.example.org:9443', {
 *   tls: { ca: readFileSync('ca.pem'), cert: readFileSync('me.pem'), key: readFileSync('me.key') },
 *   reconnect: true,
 * });
 * ```
 */
export interface ConnectOptions extends ClientOptions {
  /**
   * Unix sockets: whose socket to accept besides your own and root's (a
   * uid), or `'any'` for no check. By default a socket owned by another
   * user, or a symlink, is refused with IPCBOR_ERR_CONNECT (see trust.ts).
   */
  socketOwner?: number | 'any';
  /**
   * TCP keepalive: idle ms before the first probe (0: off). Default
   * {@link DEFAULT_KEEPALIVE} (60,000) with `reconnect`, else off. Lets the operating system find a server
   * that vanished without a FIN (minutes, with the system's probe count).
   */
  keepAlive?: number;
  /**
   * `tls:` addresses: the CA to trust for the server's certificate, this
   * client's certificate and key for mutual TLS, the name to verify. The
   * server is always verified. Refused (IPCBOR_ERR_INVALID_ADDRESS) with
   * any other kind of address: it would not be encrypted.
   */
  tls?: TlsClientOptions;
}

/** First wait before dialing a unix socket again whose backlog was full (EAGAIN); doubles up to MAX. */
const EAGAIN_FIRST_MS = 1;
const EAGAIN_MAX_MS = 100;

/**
 * Open a socket. A unix socket whose listen backlog is full refuses at once
 * with EAGAIN (TCP would queue the SYN instead): that is a busy server, not
 * an absent one, so it is tried again, with backoff and jitter, until the
 * connect deadline (the signal) ends it.
 */
async function dial(address: Address, signal: AbortSignal, keepAlive: number): Promise<OpenTransport> {
  for (let wait = EAGAIN_FIRST_MS; ; wait = Math.min(wait * 2, EAGAIN_MAX_MS)) {
    try {
      return await dialOnce(address, signal, keepAlive);
    } catch (err) {
      const code = ((err as IpcborError).cause as NodeJS.ErrnoException | undefined)?.code;
      if (address.kind !== 'unix' || code !== 'EAGAIN' || signal.aborted) throw err;
      await new Promise((r) => setTimeout(r, wait / 2 + Math.random() * (wait / 2)));
      if (signal.aborted) throw err;
    }
  }
}

function dialOnce(address: Address, signal: AbortSignal, keepAlive: number): Promise<OpenTransport> {
  return new Promise((resolve, reject) => {
    const socket: Socket = address.kind === 'unix' ? createConnection(address.path) : createConnection({ host: address.host, port: address.port, noDelay: true });
    const onAbort = () => socket.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      if (address.kind === 'tcp' && keepAlive > 0) socket.setKeepAlive(true, keepAlive);
      resolve(new SocketTransport(socket));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      signal.removeEventListener('abort', onAbort);
      reject(new IpcborError('IPCBOR_ERR_CONNECT', `could not connect to ${formatAddress(address)}: ${err.code ?? err.message}`, { cause: err }));
    });
  });
}

/**
 * @internal How to open transports to `address`, every time the same way:
 * TLS with its context made once, a unix socket checked for its owner at
 * each dial. Its `identity()` is the verified server of the last TLS
 * connection it made (the client's `peer`).
 */
export function dialerFor(addr: Address, options: Pick<ConnectOptions, 'tls' | 'socketOwner'>, keepAlive: number): Dialer {
  let context: SecureContext | undefined;
  let peer: PeerIdentity | undefined;
  if (addr.kind === 'tls') context = clientContext(addr, options.tls);
  else if (options.tls !== undefined) throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', `the tls option was given for ${formatAddress(addr)}, which is not a tls: address: the connection would not be encrypted`);
  const dialer: Dialer = async (signal) => {
    if (addr.kind === 'tls') {
      const tls = await dialTls(addr, context!, options.tls, signal, keepAlive);
      peer = tls.peer;
      return tls.transport;
    }
    // Checked at every dial (a reconnect too): whose socket is this?
    checkUnixPeer(addr, options.socketOwner);
    return dial(addr, signal, keepAlive);
  };
  dialer.identity = () => peer;
  // A tcp: server that closed on the hello may be a TLS port: say so rather than take it for a base-framing peer.
  if (addr.kind === 'tcp') {
    dialer.explainClose = async (signal) =>
      (await looksLikeTlsPort(addr, signal))
        ? new IpcborError(
            'IPCBOR_ERR_CONNECT',
            `could not connect to ${formatAddress(addr)}: this looks like a TLS port (the server answered a TLS handshake, and closed the connection without TLS): use ${formatAddress({ ...addr, kind: 'tls' })}`,
          )
        : undefined;
  }
  return dialer;
}

/**
 * Connect to a server: resolves with a {@link Client} once the connection is
 * open and the hello answered (a server of the base framing only is
 * detected and spoken to in it, unless `protocol` says otherwise).
 *
 * `address` is a service name (a socket in the runtime directory, see
 * {@link socketPathFor}), `unix:/path`, `tcp:HOST:PORT`, `tls:HOST:PORT`, or
 * an {@link Address}.
 *
 * Rejects with `IPCBOR_ERR_INVALID_ADDRESS` (an address it cannot parse, or
 * `tls` options for an address that is not `tls:`), `IPCBOR_ERR_CONNECT` (no
 * server there, refused, a unix socket owned by another user, a TLS
 * certificate that does not verify, or past `connectTimeout`,
 * {@link DEFAULT_CONNECT_TIMEOUT}), `IPCBOR_ERR_CANCELLED` (`signal`), and
 * `IPCBOR_ERR_NOT_SUPPORTED` (`protocol: 'extended'` against a server of the
 * base framing only).
 *
 * @param address - where the server listens
 * @param options - see {@link ConnectOptions}
 * @example
 * ```ts
 * import { connect } from 'ipcbor';
 * import type { Greeter } from './greeter.js';
 *
 * await using client = await connect('greeter');
 * const { text } = await client.service<Greeter>().hello({ name: 'ada' });
 * ```
 */
export async function connect(address: string | Address, options: ConnectOptions = {}): Promise<Client> {
  const addr = parseAddress(address);
  const keepAlive = options.keepAlive ?? (options.reconnect ? DEFAULT_KEEPALIVE : 0);
  return createClient(dialerFor(addr, options, keepAlive), formatAddress(addr), options);
}
