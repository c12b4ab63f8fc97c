/**
 * node-ipc 14 over a unix socket: its event API (`emit('echo', data)`) with
 * its default `fast` parser profile (JSON `{type, data}` envelopes delimited
 * by \f). It has no request/response: answers come back in order on a
 * connection, so a FIFO matches them. W3's bytes travel as base64 text (see
 * load.ts). One `IPC` instance per client, as separate programs would have.
 *
 * Version 14.0.0, exact (the current release), its dependency tree checked
 * for protestware: node-ipc 14.0.0 -> event-pubsub 6.1.1 (-> strong-type
 * 2.0.0), js-message 3.1.0, js-queue 3.1.0 (-> easy-stack 2.1.0). None has
 * an install script (and bench/peers installs with --ignore-scripts anyway);
 * none makes a network call or writes a file, except that a node-ipc server
 * unlinks its own socket path before it listens, after checking that the
 * path is a socket (it also creates its owner-only socket root, but only for
 * a socket path inside that root, which the bench's are not); no
 * `peacenotwar` (the protestware of 9.2.2 and 11.x; 10.1.1-10.1.2 carried
 * the file-overwriting code).
 *
 * node-ipc 14 is an ES module whose engines field asks for Node >= 22.13;
 * it is loaded with import(), and on an older Node the report says so on its
 * row (it loads and echoes correctly on Node 20.20; each cell checks an
 * echo, and a Node where it does not load shows it as unavailable).
 */
import type { Caller, Workload } from '../workloads.js';
import { Fifo, fromJson, peerImport, toJson } from './load.js';

interface Emitter {
  on(event: string, handler: (...args: unknown[]) => void): void;
}
interface IpcInstance {
  config: Record<string, unknown>;
  of: Record<string, Emitter & { emit(type: string, data: unknown): void }>;
  server: Emitter & { emit(socket: unknown, type: string, data: unknown): void; start(): void; stop(): void };
  serve(path: string, onStart: () => void): void;
  connectTo(id: string, path: string, cb?: () => void): void;
  disconnect(id: string): void;
}
/** The module's default export, the singleton, carries the class. */
interface NodeIpc {
  default: { IPC: new () => IpcInstance };
}

export const PACKAGE = 'node-ipc';
let loaded: Promise<NodeIpc> | undefined;
export const load = () => (loaded ??= peerImport<NodeIpc>('node-ipc'));

// Room for W6's 10,000 clients and more (its default is 100).
const quiet = (ipc: IpcInstance) => Object.assign(ipc.config, { silent: true, logInColor: false, maxConnections: 20_000 });

export async function serve(socketPath: string): Promise<{ address: string; stop: () => Promise<void> }> {
  const ipc = new (await load()).default.IPC();
  quiet(ipc);
  await new Promise<void>((resolve) => {
    ipc.serve(socketPath, () => {
      ipc.server.on('echo', (data, socket) => ipc.server.emit(socket, 'echo', data));
      resolve();
    });
    ipc.server.start();
  });
  return { address: socketPath, stop: async () => ipc.server.stop() };
}

let nextId = 0;

export async function connect(socketPath: string, w: Workload): Promise<Caller> {
  const ipc = new (await load()).default.IPC();
  quiet(ipc);
  // node-ipc retries a failed connect by itself (here: every 20 ms, 100 times).
  Object.assign(ipc.config, { retry: 20, maxRetries: 100 });
  const id = `bench${nextId++}`;
  const fifo = new Fifo();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('node-ipc: no connection within 10 s')), 10_000);
    ipc.connectTo(id, socketPath, () => {
      const of = ipc.of[id]!;
      of.on('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      of.on('echo', (data) => fifo.resolve(data));
      of.on('disconnect', () => fifo.fail(new Error('node-ipc: disconnected')));
    });
  });
  const of = ipc.of[id]!;
  const bytes = w.params instanceof Uint8Array;
  const sent = toJson(w.params);
  return {
    call: bytes
      ? async () => {
          of.emit('echo', toJson(w.params));
          return fromJson(await fifo.wait());
        }
      : () => {
          of.emit('echo', sent);
          return fifo.wait();
        },
    close: async () => ipc.disconnect(id),
  };
}
