/**
 * `connect()`: a client over a unix socket or TCP. Everything but dialing
 * (the hello, the seed fallback, the connect deadline, the Client) is the
 * core's createClient.
 */
import { createConnection, type Socket } from 'node:net';
import { createClient, type Client, type ClientOptions, type OpenTransport } from '../core/client/client.js';
import { DEFAULT_KEEPALIVE } from '../core/constants.js';
import { IpcborError } from '../core/errors.js';
import { formatAddress, parseAddress, type Address } from './address.js';
import { SocketTransport } from './socket-transport.js';
import { checkUnixPeer } from './trust.js';

export type { Client } from '../core/client/client.js';

export interface ConnectOptions extends ClientOptions {
  /**
   * Unix sockets: whose socket to accept besides your own and root's (a
   * uid), or `'any'` for no check. By default a socket owned by another
   * user, or a symlink, is refused with IPCBOR_ERR_CONNECT (see trust.ts).
   */
  socketOwner?: number | 'any';
  /**
   * TCP keepalive: idle ms before the first probe (0: off). Default 60,000
   * with `reconnect`, else off. Lets the operating system find a server
   * that vanished without a FIN (minutes, with the system's probe count).
   */
  keepAlive?: number;
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

export function connect(address: string | Address, options: ConnectOptions = {}): Promise<Client> {
  let addr: Address;
  try {
    addr = parseAddress(address);
  } catch (err) {
    return Promise.reject(err);
  }
  const keepAlive = options.keepAlive ?? (options.reconnect ? DEFAULT_KEEPALIVE : 0);
  return createClient(
    async (signal) => {
      // Checked at every dial (a reconnect too): whose socket is this?
      checkUnixPeer(addr, options.socketOwner);
      return dial(addr, signal, keepAlive);
    },
    formatAddress(addr),
    options,
  );
}
