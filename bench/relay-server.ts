/**
 * A relay in front of a bench server, in its own process as a relay daemon
 * runs: `relay-server.js SOCKET tcp|ws SERVICE`. It listens on a loopback
 * port (`tcp:` for the TCP relay, `ws:` for the WebSocket bridge) and
 * reports that address; each client it takes gets its own connection to
 * SERVICE (the ipcbor bench server's unix socket). SOCKET is unused: the
 * life cycle is the other servers' (child.ts).
 */
import { createRelay } from '../src/index.js';
import { runChild } from './child.js';

const kind = process.argv[3];
const service = process.argv[4];
if ((kind !== 'tcp' && kind !== 'ws') || !service) {
  console.error('usage: relay-server.js SOCKET tcp|ws SERVICE');
  process.exit(2);
}

runChild(async () => {
  const relay = await createRelay(
    kind === 'ws'
      ? // The bench's client is a program, not a browser: it sends no Origin.
        { listen: 'ws:127.0.0.1:0', to: service, websocket: { allowNoOrigin: true } }
      : { listen: 'tcp:127.0.0.1:0', to: service },
  );
  return { address: relay.addresses[0]!, stop: () => relay.close() };
});
