/**
 * The server of the idle-connection bench (bench/idle.ts), forked with
 * --expose-gc: one `echo` method, room for more connections than the bench
 * opens, and answers on its IPC channel to `{type: 'mem', id}` (memory
 * after two GCs) and `{type: 'conns', id}` (connections held). Beside it,
 * on `<socket>.plain`, a bare `net` server that only holds its sockets:
 * the floor, what Node itself costs per connection.
 */
import { createServer } from 'node:net';
import { serve, type Server } from '../src/index.js';
import { runChild } from './child.js';

let server: Server | undefined;
let plain = 0;
const gc = (globalThis as { gc?: () => void }).gc;

process.on('message', (m: { type?: string; id?: number }) => {
  if (m.type === 'mem') {
    // Twice: the second GC first finishes sweeping what the first one freed.
    gc?.();
    gc?.();
    process.send!({ id: m.id, mem: process.memoryUsage() });
  } else if (m.type === 'conns') {
    process.send!({ id: m.id, conns: (server?.connections ?? 0) + plain });
  }
});

runChild(async (socketPath) => {
  const s = await serve({ echo: (params: unknown) => params }, `unix:${socketPath}`, { maxConnections: 1_000_000 });
  server = s;
  const bare = createServer((sock) => {
    plain++;
    sock.on('error', () => {});
    sock.on('close', () => plain--);
  });
  await new Promise<void>((r) => bare.listen(`${socketPath}.plain`, r));
  return {
    address: s.addresses[0]!,
    stop: async () => {
      bare.close();
      await s.close();
    },
  };
});
