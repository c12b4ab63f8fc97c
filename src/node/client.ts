/**
 * `connect()`: a client over a unix socket or TCP. Everything but dialing
 * (the hello, the seed fallback, the connect deadline, the Client) is the
 * core's createClient.
 */
import { createConnection, type Socket } from 'node:net';
import { createClient, type Client, type ClientOptions, type OpenTransport } from '../core/client/client.js';
import { IpcborError } from '../core/errors.js';
import { formatAddress, parseAddress, type Address } from './address.js';
import { SocketTransport } from './socket-transport.js';

export type { Client } from '../core/client/client.js';

export type ConnectOptions = ClientOptions;

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

export function connect(address: string | Address, options: ConnectOptions = {}): Promise<Client> {
  let addr: Address;
  try {
    addr = parseAddress(address);
  } catch (err) {
    return Promise.reject(err);
  }
  return createClient((signal) => dial(addr, signal), formatAddress(addr), options);
}
