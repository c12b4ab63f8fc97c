/**
 * vscode-jsonrpc over a unix socket: its node StreamMessageReader/Writer
 * (Content-Length headers, JSON bodies), one MessageConnection per socket,
 * requests matched by id. W3's bytes travel as base64 text (see load.ts).
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { unlinkSync } from 'node:fs';
import type { Caller, Workload } from '../workloads.js';
import { fromJson, peerRequire, toJson } from './load.js';

interface MessageConnection {
  onRequest(method: string, handler: (params: unknown) => unknown): void;
  sendRequest(method: string, params: unknown): Promise<unknown>;
  onError(handler: (e: unknown) => void): void;
  listen(): void;
  dispose(): void;
}

interface JsonRpc {
  StreamMessageReader: new (s: NodeJS.ReadableStream) => unknown;
  StreamMessageWriter: new (s: NodeJS.WritableStream) => unknown;
  createMessageConnection(reader: unknown, writer: unknown): MessageConnection;
}

export const PACKAGE = 'vscode-jsonrpc';
export const load = () => peerRequire<JsonRpc>('vscode-jsonrpc/node');

const over = (rpc: JsonRpc, socket: Socket) => rpc.createMessageConnection(new rpc.StreamMessageReader(socket), new rpc.StreamMessageWriter(socket));

export async function serve(socketPath: string): Promise<{ address: string; stop: () => Promise<void> }> {
  const rpc = load();
  const server = createServer((socket) => {
    const conn = over(rpc, socket);
    conn.onRequest('echo', (params) => params);
    conn.onError(() => undefined);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => conn.dispose());
    conn.listen();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: socketPath, backlog: 1024 }, resolve);
  });
  return {
    address: socketPath,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        try {
          unlinkSync(socketPath);
        } catch {
          // gone
        }
      }),
  };
}

export async function connect(socketPath: string, w: Workload): Promise<Caller> {
  const rpc = load();
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = createConnection(socketPath);
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const conn = over(rpc, socket);
  conn.onError(() => undefined);
  conn.listen();
  const bytes = w.params instanceof Uint8Array;
  return {
    call: bytes ? async () => fromJson(await conn.sendRequest('echo', toJson(w.params))) : () => conn.sendRequest('echo', w.params),
    close: async () => {
      conn.dispose();
      socket.end();
      await closed;
    },
  };
}
