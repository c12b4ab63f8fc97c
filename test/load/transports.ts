/**
 * The transports the load tests run over. Each starts the server in a child
 * process (test/fuzz/fuzz-server.ts: `echo`, `conns`, `mem`…) and says how a
 * client connects to it: a unix socket, and TLS on loopback with throwaway
 * certificates (test/tls-helpers.ts). Every load test runs over each.
 */
import { connect, IpcborError, type Client, type ConnectOptions, type ServeOptions } from '../../src/index.js';
import { sleep, startServer, type ChildServer } from '../attack/harness.js';
import { FUZZ_SCRIPT } from '../fuzz/fuzz.js';
import { tempSocket } from '../helpers.js';
import { certs, openssl } from '../tls-helpers.js';

export interface LoadServer {
  child: ChildServer;
  address: string;
  connectOptions: ConnectOptions;
}

export interface LoadTransport {
  name: string;
  /** Why its tests are skipped here (a missing prerequisite), or false. */
  skip: string | false;
  start(options?: ServeOptions): Promise<LoadServer>;
}

export const TRANSPORTS: LoadTransport[] = [
  {
    name: 'unix socket',
    skip: false,
    async start(options = {}) {
      const child = await startServer({ address: `unix:${tempSocket()}`, options, script: FUZZ_SCRIPT });
      return { child, address: child.address, connectOptions: {} };
    },
  },
  {
    name: 'TLS',
    skip: openssl.skip,
    async start(options = {}) {
      const c = certs();
      const child = await startServer({ address: 'tls:127.0.0.1:0', options: { ...options, tls: { cert: c.server.cert, key: c.server.key } }, script: FUZZ_SCRIPT });
      return { child, address: child.address, connectOptions: { tls: { ca: c.ca } } };
    },
  },
];

/** The OS said "try again": a full listen backlog (EAGAIN on a unix socket, ECONNREFUSED on some systems). */
function retryable(err: unknown): boolean {
  const code = (err as { cause?: { code?: string } }).cause?.code;
  return err instanceof IpcborError && err.code === 'IPCBOR_ERR_CONNECT' && (code === 'EAGAIN' || code === 'ECONNREFUSED' || code === 'ETIMEDOUT');
}

/**
 * Open `n` clients in batches (a unix socket's listen backlog refuses with
 * EAGAIN when full, where TCP would queue): a refused one is retried after
 * a pause. Returns them in order; counts the retries.
 */
export async function openMany(n: number, open: (i: number) => Promise<Client>, batch = 100): Promise<{ clients: Client[]; retries: number }> {
  const clients: Client[] = [];
  let retries = 0;
  const one = async (i: number): Promise<Client> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await open(i);
      } catch (err) {
        if (!retryable(err) || attempt >= 50) throw err;
        retries++;
        await sleep(10 + attempt * 10);
      }
    }
  };
  for (let i = 0; i < n; i += batch) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => one(i + j)))));
  }
  return { clients, retries };
}

export { connect };
