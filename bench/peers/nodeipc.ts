/**
 * node-ipc 9.2.1 over a unix socket: its event API (`emit('echo', data)`,
 * JSON messages delimited by \f). It has no request/response: answers come
 * back in order on a connection, so a FIFO matches them. W3's bytes travel
 * as base64 text (see load.ts).
 *
 * Pinned at 9.2.1, the last 9.x without the protestware (9.2.2 and 11.x
 * pull in `peacenotwar`; 10.1.1–10.1.2 carried the file-overwriting code).
 */
import type { Caller, Workload } from '../workloads.js';
import { Fifo, fromJson, peerRequire, toJson } from './load.js';

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
interface NodeIpc {
  IPC: new () => IpcInstance;
}

export const PACKAGE = 'node-ipc';
const load = () => peerRequire<NodeIpc>('node-ipc');

const quiet = (ipc: IpcInstance) => Object.assign(ipc.config, { silent: true, logInColor: false, maxConnections: 10_000 });

export async function serve(socketPath: string): Promise<{ address: string; stop: () => Promise<void> }> {
  const ipc = new (load().IPC)();
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
  const ipc = new (load().IPC)();
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
