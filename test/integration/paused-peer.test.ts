/**
 * A connection the server has stopped reading (its calls hold its whole
 * budget, and they end only when the client cancels them or leaves) still
 * learns that its client left, and closes: found by the server fuzzer,
 * whose leftover connections were exactly these. Node reports a client's
 * FIN only once everything before it has been read, and a paused socket
 * stops reading after one read ahead, so nothing told the connection.
 * Over a real unix socket, with the pause made first and the client's
 * bytes and leaving after it, each step waited for: the only timer is the
 * server's own check of its paused sockets (SocketTransport, every
 * PEER_CHECK_MS), well inside the deadlines here. The same for a relay's
 * WebSocket clients (the bridge pauses them as a server does), over ws:
 * and wss:.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { defineService, method } from '../../src/index.js';
import { parseAddress, tcpAddress } from '../../src/node/address.js';
import { listenWebSocket } from '../../src/node/bridge.js';
import { dialerFor } from '../../src/node/client.js';
import { serveWith, type Listening, type Server } from '../../src/node/server.js';
import { RelayCore } from '../../src/core/relay/relay.js';
import type { OpenTransport } from '../../src/core/transport.js';
import { PEER_CHECK_MS } from '../../src/node/socket-transport.js';
import type { ServerCore } from '../../src/core/server/server.js';
import type { ServerConnection } from '../../src/core/server/connection.js';
import type { CallContext } from '../../src/core/dispatcher.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { baseFrame } from '../attack/harness.js';
import { rawConnect, tempSocket } from '../helpers.js';
import { waitFor } from '../extended-helpers.js';
import { nothingEscapes } from '../escapes.js';
import { certs, openssl } from '../tls-helpers.js';

nothingEscapes();

const KiB = 1024;
/** Small, so that one call holds it all. */
const BUDGET = 64 * KiB;
/** Long enough for several checks of a paused socket, whatever the load. */
const DEADLINE_MS = 20 * PEER_CHECK_MS;

const svc = defineService({
  name: 'paused',
  version: '1.0.0',
  methods: {
    // A handler that waits for its client: it ends only when its signal aborts.
    hang: method({ handler: (_params: unknown, ctx: CallContext) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(null), { once: true })) }),
  },
});

let server: Server;
let core: ServerCore;
let address: string;
const opened: ServerConnection[] = [];
before(async () => {
  ({ server, core } = await serveWith(svc, `unix:${tempSocket()}`, { maxConnectionBytes: BUDGET, maxFrameBytes: 1024 * KiB, onError: () => {} }, undefined));
  core.onConnect((c) => opened.push(c as ServerConnection));
  address = server.addresses[0]!;
});
after(() => server.destroy());

/** The server's socket of a connection (test code: the transport's own). */
function socketOf(c: ServerConnection): Socket {
  return (c.peer.transport as unknown as { socket: Socket }).socket;
}

/**
 * A raw client whose connection the server has stopped reading: its first
 * call (a `hang`) holds more than the connection's budget. Resolves once
 * the server runs that call, by which time it has paused the socket.
 */
async function pausedClient(): Promise<{ client: Socket; conn: ServerConnection; server: Socket; readAtPause: number }> {
  const before = opened.length;
  const client = await rawConnect(address);
  client.on('data', () => {});
  client.on('error', () => {});
  client.write(baseFrame('hang', cbor.encode(new Uint8Array(BUDGET + 16 * KiB))));
  await waitFor(() => opened.length > before && opened[before]!.inflight === 1, 'the hang call to run');
  const conn = opened[before]!;
  const s = socketOf(conn);
  assert.ok(conn.peer.budget.held > BUDGET, 'the call holds more than the budget');
  assert.ok(s.isPaused(), 'the server stopped reading the connection');
  return { client, conn, server: s, readAtPause: s.bytesRead };
}

/** Resolves when the connection has closed; fails if it has not within DEADLINE_MS. */
async function closesSoon(conn: ServerConnection, what: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: the server still holds the connection ${DEADLINE_MS} ms after its client left`)), DEADLINE_MS);
  });
  try {
    await Promise.race([conn.closed, late]);
  } finally {
    clearTimeout(timer);
  }
  assert.equal(conn.inflight, 0, 'its call ended with it');
  assert.equal(conn.peer.budget.held, 0, 'and all it held was released');
}

describe('a paused server connection learns that its client left', () => {
  for (const leaves of ['closes', 'half-closes'] as const) {
    it(`a client that ${leaves} after a frame more (Node reads its FIN, behind that frame in the paused socket's buffer)`, async () => {
      const { client, conn, server: s } = await pausedClient();
      // A frame Node reads into the paused socket's buffer, and then the FIN behind it.
      client.write(baseFrame('hang', cbor.encode(new Uint8Array(KiB))));
      await waitFor(() => s.readableLength > 0, 'the frame in the paused socket');
      assert.ok(s.readableLength < s.readableHighWaterMark, 'Node still reads the socket: it will read the FIN');
      if (leaves === 'closes') client.destroy();
      else client.end();
      await closesSoon(conn, `a client that ${leaves}`);
      // A half-closed client hears the server close its side in turn.
      if (leaves === 'half-closes') await waitFor(() => client.closed, 'the client to see the close', DEADLINE_MS);
    });
  }

  it('a client that closes after sending more than Node reads ahead (its FIN is not read: the close is found without reading more)', async () => {
    const { client, conn, server: s, readAtPause } = await pausedClient();
    client.write(Buffer.alloc(512 * KiB));
    await waitFor(() => s.readableLength >= s.readableHighWaterMark, 'Node to fill its buffer for the paused socket and stop reading');
    client.destroy();
    await closesSoon(conn, 'a client that closed with bytes unread');
    // What it sent past one read ahead was never read.
    assert.ok(s.bytesRead - readAtPause <= s.readableHighWaterMark + 64 * KiB, `read ${s.bytesRead - readAtPause} bytes after the pause`);
  });

  it('a client still there is not taken for gone: its paused connection stays open', async () => {
    const { client, conn, server: s } = await pausedClient();
    client.write(Buffer.alloc(512 * KiB));
    await waitFor(() => s.readableLength >= s.readableHighWaterMark, 'Node to stop reading');
    const bytesRead = s.bytesRead;
    // Three checks of the paused socket pass.
    await new Promise((r) => setTimeout(r, 3 * PEER_CHECK_MS + 100));
    assert.equal(conn.reason, undefined, 'still open');
    assert.equal(s.bytesRead, bytesRead, 'and still not read');
    client.destroy();
    await closesSoon(conn, 'the client that then closed');
  });
});

/**
 * The same over the WebSocket bridge: a relay's `ws:` (or `wss:`) listener
 * in front of the server above. The client's WebSocket connection is
 * paused by the relay when it holds more than its budget (here: its calls
 * wait to be written to the service, which stopped reading them, held by
 * the hang), and the relay must then still learn that the client left,
 * and close its side of the link, so that the service's connection closes
 * too and the hanging call is aborted.
 */
for (const scheme of ['ws', 'wss'] as const) {
  describe(`a paused WebSocket bridge connection (${scheme}:) learns that its client left`, { skip: scheme === 'wss' ? openssl.skip : false }, () => {
    let relay: RelayCore;
    let bridge: Listening;
    let url: string;
    let ca: string | undefined;
    /** The relay's transport of each WebSocket client, in the order they came. */
    const accepted: OpenTransport[] = [];
    before(async () => {
      relay = new RelayCore(dialerFor(parseAddress(address), {}, 0), { maxConnectionBytes: BUDGET, maxFrameBytes: 1024 * KiB, onError: () => {} });
      const accept = relay.accept.bind(relay);
      relay.accept = (transport, info) => {
        accepted.push(transport);
        accept(transport, info);
      };
      const c = scheme === 'wss' ? certs() : undefined;
      ca = c?.ca;
      // No keepalive pings (pingInterval 0): the relay's own check of its paused sockets is the only timer at work.
      bridge = await listenWebSocket([tcpAddress('127.0.0.1', 0, scheme === 'wss' ? 'tls' : 'tcp')], relay, { pingInterval: 0, maxFrameBytes: relay.maxFrameBytes, ...(c ? { tls: { cert: c.server.cert, key: c.server.key } } : {}) }, () => {});
      url = `${scheme}://${bridge.addresses[0]!.slice(scheme.length + 1)}/`;
    });
    after(() => {
      bridge.stop();
      relay.destroy();
    });

    /**
     * A WebSocket client whose relay connection the relay has stopped
     * reading: a `hang` call holds the service's connection over its
     * budget (the service stops reading the relay), and the client then
     * sends calls, each once the relay has read the last, until those
     * waiting to be written to the service hold more than the relay
     * connection's budget. Resolves once everything sent has been read.
     */
    async function pausedWsClient(): Promise<{ client: WebSocket; service: ServerConnection; ws: WebSocket; server: Socket }> {
      const servedBefore = opened.length;
      const acceptedBefore = accepted.length;
      const client = new WebSocket(url, ['ipcbor'], { origin: 'http://localhost', ...(ca === undefined ? {} : { ca }) });
      client.on('error', () => {});
      await once(client, 'open');
      const sent = (client as unknown as { _socket: Socket })._socket;
      await waitFor(() => accepted.length > acceptedBefore, 'the relay to take the WebSocket');
      const { ws, socket: s } = accepted[acceptedBefore] as unknown as { ws: WebSocket; socket: Socket };
      const allRead = () => s.bytesRead === sent.bytesWritten;
      client.send(baseFrame('hang', cbor.encode(new Uint8Array(BUDGET + 16 * KiB))));
      await waitFor(() => opened.length > servedBefore && opened[servedBefore]!.inflight === 1, 'the hang call to run at the service');
      const service = opened[servedBefore]!;
      await waitFor(() => socketOf(service).isPaused(), 'the service to stop reading the relay');
      // Small calls, well under what a paused socket reads ahead, one at a time.
      for (let i = 0; !ws.isPaused; i++) {
        assert.ok(i < 4096, 'the relay never stopped reading the client');
        client.send(baseFrame('hang', cbor.encode(new Uint8Array(4 * KiB))));
        await waitFor(() => ws.isPaused || allRead(), 'the relay to read the call, or stop reading');
      }
      await waitFor(allRead, 'the relay to read what was sent before it stopped');
      assert.ok(s.isPaused(), 'the relay stopped reading the socket');
      assert.ok(s.readableLength < s.readableHighWaterMark, 'and Node still reads it ahead');
      return { client, service, ws, server: s };
    }

    /**
     * Resolves when the relay's side of the WebSocket, and then the
     * service's connection, have closed (its call aborted), and the relay
     * holds nothing of them; fails if either is not within DEADLINE_MS.
     */
    async function bothCloseSoon(ws: WebSocket, service: ServerConnection, what: string): Promise<void> {
      await waitFor(() => ws.readyState === WebSocket.CLOSED, `${what}: the relay to close the WebSocket of the client that left`, DEADLINE_MS);
      await closesSoon(service, `${what}, then the relay`);
      await waitFor(() => relay.size === 0 && relay.budget.held === 0, `${what}: the relay to let go of the link and of all it held`);
    }

    for (const leaves of ['leaves', 'half-closes'] as const) {
      it(`a client that ${leaves} after a message more (Node reads its FIN, behind that message in the paused socket's buffer)`, async () => {
        const { client, service, ws, server: s } = await pausedWsClient();
        const buffered = s.readableLength;
        client.send(baseFrame('hang', cbor.encode(new Uint8Array(KiB))));
        await waitFor(() => s.readableLength > buffered, 'the message in the paused socket');
        assert.ok(s.readableLength < s.readableHighWaterMark, 'Node still reads the socket: it will read the FIN');
        if (leaves === 'leaves') client.terminate();
        else (client as unknown as { _socket: Socket })._socket.end();
        await bothCloseSoon(ws, service, `a client that ${leaves}`);
      });
    }

    it('a client that leaves after sending more than Node reads ahead (its FIN is not read: the leaving is found without reading more)', async () => {
      const { client, service, ws, server: s } = await pausedWsClient();
      const readAtPause = s.bytesRead;
      client.send(baseFrame('hang', cbor.encode(new Uint8Array(512 * KiB))));
      await waitFor(() => s.readableLength >= s.readableHighWaterMark, 'Node to fill its buffer for the paused socket and stop reading');
      client.terminate();
      await bothCloseSoon(ws, service, 'a client that left with bytes unread');
      // What it sent past one read ahead was never read.
      assert.ok(s.bytesRead - readAtPause <= s.readableHighWaterMark + 64 * KiB, `read ${s.bytesRead - readAtPause} bytes after the pause`);
    });

    it('a client still there is not taken for gone: its paused connection stays open', async () => {
      const { client, service, ws, server: s } = await pausedWsClient();
      client.send(baseFrame('hang', cbor.encode(new Uint8Array(512 * KiB))));
      await waitFor(() => s.readableLength >= s.readableHighWaterMark, 'Node to stop reading');
      const bytesRead = s.bytesRead;
      let pinged = 0;
      client.on('ping', () => pinged++);
      // Three checks of the paused socket pass, each a ping the client answers (its pongs are not read).
      await new Promise((r) => setTimeout(r, 3 * PEER_CHECK_MS + 100));
      assert.ok(pinged > 0, 'the relay asked the client');
      assert.equal(ws.readyState, WebSocket.OPEN, 'still open');
      assert.equal(service.reason, undefined, 'and so is its connection to the service');
      assert.equal(s.bytesRead, bytesRead, 'and still not read');
      client.terminate();
      await bothCloseSoon(ws, service, 'the client that then left');
    });
  });
}
