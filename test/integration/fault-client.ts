/**
 * A client that the fault tests kill (SIGKILL) in the middle of its
 * requests. Usage: node fault-client.js '<json>', json `{address, mode, n,
 * size}`. `calls`: n calls of `hold` with `size` bytes of params each.
 * `partial`: one raw base-framing frame of `size` bytes, only half of it written.
 * Prints `ready` once the bytes are written, then waits to be killed.
 */
import { createConnection } from 'node:net';
import { once } from 'node:events';
import { connect } from '../../src/index.js';
import { encodeRequest } from '../../src/core/frame/encoder.js';

const cfg = JSON.parse(process.argv[2] ?? '{}') as { address: string; mode: 'calls' | 'partial'; n?: number; size?: number };
const size = cfg.size ?? 1024;
if (cfg.mode === 'calls') {
  const client = await connect(cfg.address);
  for (let i = 0; i < (cfg.n ?? 1); i++) client.call('hold', { pad: new Uint8Array(size) }).catch(() => {});
} else {
  const socket = createConnection(cfg.address.slice('unix:'.length));
  await once(socket, 'connect');
  const frame = Buffer.concat(encodeRequest('hold', new Uint8Array(size)));
  socket.write(frame.subarray(0, frame.length >> 1));
}
process.stdout.write('ready\n');
setInterval(() => {}, 60_000);
