/**
 * `connect()`: a client over a unix socket, TCP, or TLS. Everything but
 * dialing (the hello, the seed fallback, the connect deadline, the Client)
 * is the core's createClient.
 */
import { createConnection, type Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import { createClient, type Client as CoreClient, type ClientOptions, type OpenTransport } from '../core/client/client.js';
import { IpcborError } from '../core/errors.js';
import type { PeerIdentity } from '../core/transport.js';
import { formatAddress, parseAddress, type Address } from './address.js';
import { SocketTransport } from './socket-transport.js';
import { clientContext, dialTls, type TlsClientOptions } from './tls.js';
import { checkUnixPeer } from './trust.js';

export interface Client extends CoreClient {
  /** `tls:` addresses: the server's verified certificate (of the connection now open); undefined otherwise. */
  readonly peer: PeerIdentity | undefined;
}

export interface ConnectOptions extends ClientOptions {
  /**
   * Unix sockets: whose socket to accept besides your own and root's (a
   * uid), or `'any'` for no check. By default a socket owned by another
   * user, or a symlink, is refused with IPCBOR_ERR_CONNECT (see trust.ts).
   */
  socketOwner?: number | 'any';
  /**
   * `tls:` addresses: the CA to trust for the server's certificate, this
   * client's certificate and key for mutual TLS, the name to verify. The
   * server is always verified. Refused (IPCBOR_ERR_INVALID_ADDRESS) with
   * any other kind of address: it would not be encrypted.
   */
  tls?: TlsClientOptions;
}

function dial(address: Address, signal: AbortSignal): Promise<OpenTransport> {
  return new Promise((resolve, reject) => {
    const socket: Socket = address.kind === 'unix' ? createConnection(address.path) : createConnection({ host: address.host, port: address.port, noDelay: true });
    const onAbort = () => socket.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      resolve(new SocketTransport(socket));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      signal.removeEventListener('abort', onAbort);
      reject(new IpcborError('IPCBOR_ERR_CONNECT', `could not connect to ${formatAddress(address)}: ${err.code ?? err.message}`, { cause: err }));
    });
  });
}

export async function connect(address: string | Address, options: ConnectOptions = {}): Promise<Client> {
  const addr = parseAddress(address);
  let context: SecureContext | undefined;
  if (addr.kind === 'tls') context = clientContext(addr, options.tls);
  else if (options.tls !== undefined) throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', `the tls option was given for ${formatAddress(addr)}, which is not a tls: address: the connection would not be encrypted`);
  let peer: PeerIdentity | undefined;
  const client = (await createClient(
    async (signal) => {
      if (addr.kind === 'tls') {
        const opened = await dialTls(addr, context!, options.tls, signal);
        peer = opened.peer;
        return opened.transport;
      }
      // Checked at every dial (a reconnect too): whose socket is this?
      checkUnixPeer(addr, options.socketOwner);
      return dial(addr, signal);
    },
    formatAddress(addr),
    options,
  )) as Client;
  Object.defineProperty(client, 'peer', { get: () => peer, enumerable: true });
  return client;
}
