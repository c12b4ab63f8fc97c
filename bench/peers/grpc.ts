/**
 * @grpc/grpc-js (pure JS, HTTP/2) over a unix socket, unary calls. No protoc:
 * the service is defined by hand with makeGenericClientConstructor, with a
 * JSON codec for the small params (`Echo`) and the identity codec for W3's
 * bytes (`EchoBytes`, the bytes are the message). Every client has its own
 * channel and connection (a local subchannel pool: grpc-js would otherwise
 * share one connection among all the clients of a process).
 */
import { unlinkSync } from 'node:fs';
import type { Caller, Workload } from '../workloads.js';
import { peerRequire } from './load.js';

type Callback = (err: Error | null, value?: unknown) => void;
interface GrpcClient {
  waitForReady(deadline: number, cb: (err?: Error) => void): void;
  close(): void;
  [method: string]: unknown;
}
interface Grpc {
  makeGenericClientConstructor(def: object, name: string): new (target: string, creds: unknown, options?: object) => GrpcClient;
  credentials: { createInsecure(): unknown };
  ServerCredentials: { createInsecure(): unknown };
  Server: new (options?: object) => {
    addService(def: object, impl: object): void;
    bindAsync(target: string, creds: unknown, cb: (err: Error | null, port: number) => void): void;
    tryShutdown(cb: () => void): void;
    forceShutdown(): void;
  };
}

export const PACKAGE = '@grpc/grpc-js';
export const load = () => peerRequire<Grpc>('@grpc/grpc-js');

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const unjson = (b: Buffer) => JSON.parse(b.toString('utf8')) as unknown;
const asBuffer = (v: Uint8Array) => (Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength));
const same = (b: Buffer) => b;
// W3's 1 MiB is under grpc-js's 4 MiB default receive limit, so no option is needed.
const SERVICE = {
  Echo: { path: '/ipcbor.bench.Bench/Echo', requestStream: false, responseStream: false, requestSerialize: json, requestDeserialize: unjson, responseSerialize: json, responseDeserialize: unjson },
  EchoBytes: { path: '/ipcbor.bench.Bench/EchoBytes', requestStream: false, responseStream: false, requestSerialize: asBuffer, requestDeserialize: same, responseSerialize: asBuffer, responseDeserialize: same },
};

export async function serve(socketPath: string): Promise<{ address: string; stop: () => Promise<void> }> {
  const grpc = load();
  const server = new grpc.Server();
  const echo = (call: { request: unknown }, cb: Callback) => cb(null, call.request);
  server.addService(SERVICE, { Echo: echo, EchoBytes: echo });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  return {
    address: socketPath,
    stop: () =>
      new Promise<void>((resolve) => {
        const t = setTimeout(() => server.forceShutdown(), 1000);
        server.tryShutdown(() => {
          clearTimeout(t);
          try {
            unlinkSync(socketPath);
          } catch {
            // gone
          }
          resolve();
        });
      }),
  };
}

export async function connect(socketPath: string, w: Workload): Promise<Caller> {
  const grpc = load();
  const Client = grpc.makeGenericClientConstructor(SERVICE, 'Bench');
  const client = new Client(`unix://${socketPath}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
  const method = (w.params instanceof Uint8Array ? client.EchoBytes : client.Echo) as (req: unknown, cb: Callback) => void;
  const params = w.params;
  return {
    call: () => new Promise((resolve, reject) => method.call(client, params, (err, value) => (err ? reject(err) : resolve(value)))),
    close: async () => client.close(),
  };
}
