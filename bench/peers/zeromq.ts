/**
 * zeromq (zeromq.js 6, libzmq) over `ipc://`: a DEALER per client, one
 * ROUTER in the server. Messages are [request id, kind, body]: the id
 * matches answers to calls (64 in flight on W2), the kind says whether the
 * body is JSON (the small params, parsed and re-serialised by the server as
 * any JSON service would) or bytes (W3's payload, a frame of its own, no
 * encoding).
 *
 * The npm tarball ships prebuilt addons (build/<platform>/<arch>/...), and
 * they load without the package's install script, which only downloads or
 * builds one when no prebuild fits.
 */
import { unlinkSync } from 'node:fs';
import type { Caller, Workload } from '../workloads.js';
import { openFileLimit, peerRequire } from './load.js';

type Frames = Buffer[];
interface ZSocket extends AsyncIterable<Frames> {
  linger: number;
  bind(address: string): Promise<void>;
  connect(address: string): void;
  send(frames: (Buffer | Uint8Array | string)[]): Promise<void>;
  close(): void;
}
interface Zmq {
  Router: new () => ZSocket;
  Dealer: new () => ZSocket;
  context: { maxSockets: number };
}

export const PACKAGE = 'zeromq';
let zmq: Zmq | undefined;
/**
 * The module, its shared context allowed W6's 10,000 sockets and more
 * (libzmq's default is 1,023; the limit is read when the context's first
 * socket is made, so it is set before).
 */
export function load(): Zmq {
  if (zmq === undefined) {
    zmq = peerRequire<Zmq>('zeromq');
    zmq.context.maxSockets = 20_000;
  }
  return zmq;
}

const JSON_KIND = Buffer.from('j');
const BYTES_KIND = Buffer.from('b');

export async function serve(socketPath: string): Promise<{ address: string; stop: () => Promise<void> }> {
  const zmq = load();
  const router = new zmq.Router();
  router.linger = 0;
  await router.bind(`ipc://${socketPath}`);
  const loop = (async () => {
    try {
      for await (const [identity, id, kind, body] of router) {
        const answer = kind![0] === BYTES_KIND[0] ? body! : Buffer.from(JSON.stringify(JSON.parse(body!.toString('utf8'))));
        await router.send([identity!, id!, answer]);
      }
    } catch {
      // closed
    }
  })();
  return {
    address: socketPath,
    stop: async () => {
      router.close();
      await loop;
      try {
        unlinkSync(socketPath);
      } catch {
        // gone
      }
    },
  };
}

/** File descriptors a DEALER holds in the client process: its connection and its mailbox's eventfd (counted: 2 per socket). */
const FDS_PER_CLIENT = 2;

/**
 * Why this client process cannot hold the workload's connections, if it
 * cannot: one process holds them all, and at two descriptors a socket
 * 10,000 DEALERs need more than a 20,000 open-file limit leaves (libzmq
 * then waits to connect rather than failing, so the bench says so up front).
 */
export function cannot(w: Workload): string | undefined {
  const limit = openFileLimit();
  const need = w.connections * FDS_PER_CLIENT;
  if (limit === undefined || need + 200 <= limit) return undefined;
  return `one process holding ${w.connections.toLocaleString('en-US')} DEALER sockets needs over ${need.toLocaleString('en-US')} file descriptors (each holds its connection and its mailbox's eventfd), and the open-file limit (ulimit -n) is ${limit.toLocaleString('en-US')}`;
}

export async function connect(socketPath: string, w: Workload): Promise<Caller> {
  const zmq = load();
  const dealer = new zmq.Dealer();
  dealer.linger = 0;
  dealer.connect(`ipc://${socketPath}`);
  const waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let next = 0;
  const bytes = w.params instanceof Uint8Array;
  const kind = bytes ? BYTES_KIND : JSON_KIND;

  // zeromq.js allows one pending send() per socket (it is pending only when
  // the high-water mark is reached): the rest wait here, in order.
  const queue: Frames[] = [];
  let sending = false;
  const send = (frames: Frames) => {
    if (sending) return void queue.push(frames);
    sending = true;
    dealer.send(frames).then(drain, fail);
  };
  const drain = () => {
    const frames = queue.shift();
    if (frames) dealer.send(frames).then(drain, fail);
    else sending = false;
  };
  const fail = (err: Error) => {
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  };
  const receiving = (async () => {
    try {
      for await (const [id, body] of dealer) {
        const n = id!.readUInt32LE(0);
        const w = waiting.get(n);
        waiting.delete(n);
        w?.resolve(bytes ? new Uint8Array(body!.buffer, body!.byteOffset, body!.byteLength) : JSON.parse(body!.toString('utf8')));
      }
    } catch (err) {
      fail(err as Error);
    }
  })();
  const big = bytes ? Buffer.from((w.params as Uint8Array).buffer, (w.params as Uint8Array).byteOffset, (w.params as Uint8Array).byteLength) : undefined;
  return {
    call: () => {
      const n = next++ >>> 0;
      const id = Buffer.allocUnsafe(4);
      id.writeUInt32LE(n, 0);
      // The client encodes its params on every call, as a JSON client must.
      send([id, kind, big ?? Buffer.from(JSON.stringify(w.params))]);
      return new Promise((resolve, reject) => waiting.set(n, { resolve, reject }));
    },
    close: async () => {
      dealer.close();
      await receiving;
    },
  };
}
