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
 * PEER_CHECK_MS), well inside the deadlines here.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { defineService, method } from '../../src/index.js';
import { serveWith, type Server } from '../../src/node/server.js';
import { PEER_CHECK_MS } from '../../src/node/socket-transport.js';
import type { ServerCore } from '../../src/core/server/server.js';
import type { ServerConnection } from '../../src/core/server/connection.js';
import type { CallContext } from '../../src/core/dispatcher.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { baseFrame } from '../attack/harness.js';
import { rawConnect, tempSocket } from '../helpers.js';
import { waitFor } from '../extended-helpers.js';
import { nothingEscapes } from '../escapes.js';

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
