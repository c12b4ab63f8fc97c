/**
 * Run by encode-transfer.test.ts in a child process (it may crash): a handler
 * transfers the buffer of its own cbor.encode() result, as docs/CODEC.md
 * says a caller may, while another call's result waits in the socket
 * transport's queue for the tick's flush.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cbor, connect, serve } from '../../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'ipcbor-r17-'));

const server = await serve(
  {
    first: () => ({ v: 'A'.repeat(40) }),
    second: () => {
      const mine = cbor.encode({ w: 1 });
      // What worker.postMessage(mine, [mine.buffer]) does to the buffer.
      structuredClone(mine, { transfer: [mine.buffer as ArrayBuffer] });
      return 'ok';
    },
  },
  `unix:${join(dir, 's.sock')}`,
);
const client = await connect(server.addresses[0]!);
const results = await Promise.allSettled([client.call('first'), client.call('second')]);
process.stdout.write(JSON.stringify(results.map((r) => (r.status === 'fulfilled' ? r.value : String(r.reason)))) + '\n');
await client.close();
await server.close();
rmSync(dir, { recursive: true, force: true });
