/**
 * `npm run demo:web`: the timer service on a temporary unix socket, and in
 * front of it the WebSocket bridge, which also serves the page in
 * examples/web/public. Open the URL it prints in a browser. Ctrl-C stops
 * both and removes the socket.
 *
 *   node dist/examples/web/demo.js [--port N] [--token TOKEN]
 *
 * `--port 0` picks a free port. With `--token`, every WebSocket client must
 * present the token; the printed URL carries it in its fragment, where the
 * page reads it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRelay, serve } from '../../src/index.js';
import { createTimer } from '../timer/timer.js';

const usage = 'usage: demo-web [--port N] [--token TOKEN]';
// The page is served from the source folder (this file runs as dist/examples/web/demo.js).
const pages = fileURLToPath(new URL('../../../examples/web/public/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ipcbor-web-'));

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({ args: process.argv.slice(2), strict: true, options: { port: { type: 'string', default: '8080' }, token: { type: 'string' } } }));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${usage}`);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port wants a number from 0 to 65535\n${usage}`);

  const server = await serve(createTimer('ipc-server'), `unix:${join(dir, 'timer.sock')}`);
  const relay = await createRelay({
    listen: `ws:127.0.0.1:${port}`,
    to: server.addresses[0]!,
    websocket: { pages, ...(values.token === undefined ? {} : { token: values.token }) },
    // Refused upgrades (a foreign origin, a wrong token) and broken connections.
    onError: (err) => console.error(`[bridge] ${err.message}`),
  }).catch(async (err: Error) => {
    await server.close();
    throw err;
  });

  let stopping = false;
  const stop = () => {
    // A second Ctrl-C does not wait for open pages and calls to finish.
    if (stopping) {
      relay.destroy();
      server.destroy();
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    }
    stopping = true;
    void (async () => {
      await relay.close();
      await server.close(); // removes the socket file
      rmSync(dir, { recursive: true, force: true });
      console.log('bridge and service stopped; socket and temp dir removed');
      process.exit(0);
    })();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  console.log(`timer service on ${server.addresses[0]}`);
  console.log(`bridge on ${relay.addresses[0]}`);
  const url = `http://${relay.addresses[0]!.slice('ws:'.length)}/${values.token === undefined ? '' : `#token=${encodeURIComponent(values.token)}`}`;
  console.log(`open ${url}`);
}

main().catch((err: Error) => {
  console.error(`demo-web: ${err.message}`);
  if (err.message.includes('EADDRINUSE')) console.error('another program has that port: pick another with --port N, or --port 0 for any free one');
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
});
