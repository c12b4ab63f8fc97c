/**
 * TLS, secure defaults and reconnection at their edges: the handshake
 * timeout against a trickling peer, keepalive on tls: connections, and the
 * reconnection backoff against a server that drops every connection. Real
 * sockets on 127.0.0.1, throwaway certificates.
 */
import assert from 'node:assert/strict';
import { createConnection, createServer, Socket, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect, IpcborError, serve, type Client, type Server, type ServeOptions } from '../../src/index.js';
import { sleep, waitFor } from '../extended-helpers.js';
import { tempSocket } from '../helpers.js';
import { certs, cutByServer, openssl, type Certs } from '../tls-helpers.js';

let c: Certs;
// Made where openssl is; where it is missing, the TLS suites below are
// skipped, or (IPCBOR_REQUIRE_OPENSSL=1) fail in their own before hook.
before(() => {
  if (openssl.missing === undefined) c = certs();
});

const servers: Server[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

const handlers = { echo: (p: unknown) => p };

async function tlsServer(tls: Partial<NonNullable<ServeOptions['tls']>> = {}, more: ServeOptions = {}): Promise<{ server: Server; address: string; port: number }> {
  const server = await serve(handlers, 'tls:127.0.0.1:0', { tls: { cert: c.server.cert, key: c.server.key, ...tls }, ...more });
  servers.push(server);
  const address = server.addresses[0]!;
  return { server, address, port: Number(address.slice(address.lastIndexOf(':') + 1)) };
}

describe('TLS handshake timeout', { skip: openssl.skip }, () => {
  before(() => openssl.check());
  it('cuts off a peer that trickles its ClientHello a byte at a time (a deadline, not an idle timer)', async () => {
    const { port } = await tlsServer({ handshakeTimeout: 300 });
    const started = Date.now();
    const slow = createConnection({ host: '127.0.0.1', port });
    slow.resume();
    // A handshake record that announces 16 KiB, then its body a byte every
    // 100 ms: it never completes, and never goes 300 ms without a byte.
    slow.write(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00]));
    const drip = setInterval(() => {
      if (slow.writable) slow.write(Buffer.from([0x01]));
    }, 100);
    // The server closes a socket it has not read to the end: the peer sees a
    // clean close or a reset, as timing has it. Either is the server's cut.
    const cut = await cutByServer(slow).finally(() => clearInterval(drip));
    const ms = Date.now() - started;
    assert.ok(cut.how === 'closed' || cut.how === 'reset');
    // Not at once (the record is well-formed so far, nothing else refuses it): at the deadline.
    assert.ok(ms >= 250, `cut after ${ms} ms, before the 300 ms handshake timeout`);
  });
});

describe('cutByServer (the helper the handshake-timeout tests use)', () => {
  /** A TCP server on loopback that does `onConnection` to each connection; a connection to it. */
  async function against(onConnection: (s: Socket) => void): Promise<{ socket: Socket; close: () => void }> {
    const held: Socket[] = [];
    const server = createServer((s) => {
      held.push(s);
      s.on('error', () => {});
      onConnection(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const socket = createConnection({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
    return {
      socket,
      close: () => {
        for (const s of held) s.destroy();
        server.close();
      },
    };
  }

  it('takes a clean close and a reset alike as the server\'s cut, and fails when there is none', async () => {
    const clean = await against((s) => s.destroy());
    assert.equal((await cutByServer(clean.socket)).how, 'closed');
    clean.close();
    const reset = await against((s) => s.resetAndDestroy());
    assert.equal((await cutByServer(reset.socket)).how, 'reset');
    reset.close();
    const none = await against(() => {});
    await assert.rejects(cutByServer(none.socket, 200), /had not cut the connection after 200 ms/);
    none.close();
  });
});

describe('TCP keepalive on the client', { skip: openssl.skip }, () => {
  before(() => openssl.check());
  /** The setKeepAlive calls made on any socket (TLSSocket inherits it) while `fn` runs. */
  async function keepAliveCalls(fn: () => Promise<void>): Promise<unknown[][]> {
    const calls: unknown[][] = [];
    const original = Socket.prototype.setKeepAlive;
    Socket.prototype.setKeepAlive = function (this: Socket, ...args: unknown[]) {
      calls.push(args);
      return original.apply(this, args as Parameters<typeof original>);
    };
    try {
      await fn();
    } finally {
      Socket.prototype.setKeepAlive = original;
    }
    return calls;
  }

  it('is set on tls: connections as on tcp: ones (keepAlive, and the default with reconnect)', async () => {
    // The server sets none (keepAlive: 0): whatever is seen is the client's.
    const { address } = await tlsServer({}, { keepAlive: 0 });
    const explicit = await keepAliveCalls(async () => {
      const client = await connect(address, { tls: { ca: c.ca }, keepAlive: 4321 });
      await client.close();
    });
    assert.deepEqual(explicit, [[true, 4321]]);
    const byDefault = await keepAliveCalls(async () => {
      const client = await connect(address, { tls: { ca: c.ca }, reconnect: true });
      await client.close();
    });
    assert.deepEqual(byDefault, [[true, 60_000]]);
  });
});

describe('reconnection backoff', () => {
  it('keeps growing against a server that accepts, answers the hello, then drops every connection', async () => {
    const path = tempSocket();
    // Closes each connection 20 ms after it goes idle: the hello succeeds, then the connection drops.
    const server = await serve(handlers, `unix:${path}`, { idleTimeout: 20 });
    servers.push(server);
    const client = await connect(`unix:${path}`, { reconnect: { initialDelay: 50, maxDelay: 10_000, jitter: 0 } });
    const delays: number[] = [];
    const watching = (async () => {
      for await (const s of client.states()) if (s.state === 'reconnecting') delays.push(s.delay!);
    })();
    // Four drops, however long they take here: counted, not timed.
    await waitFor(() => delays.length >= 4, 'four reconnections', 20_000);
    client.destroy();
    await watching;
    // With backoff (no jitter): 50, 100, 200, 400 ms. Reset after every successful hello, it would be 50 each time.
    assert.deepEqual(delays.slice(0, 4), [50, 100, 200, 400], `the delay grows: ${delays.join(', ')}`);
  });
});
