/**
 * Review of issue 9 (TLS, secure defaults, reconnection): what an attacker
 * or a careful user found. Real sockets on 127.0.0.1, throwaway certificates.
 */
import assert from 'node:assert/strict';
import { createConnection, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect, serve, type Server, type ServeOptions } from '../../src/index.js';
import { tempSocket } from '../helpers.js';
import { certs, type Certs } from '../tls-helpers.js';

let c: Certs;
before(() => {
  c = certs();
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

describe('TLS handshake timeout', () => {
  it('cuts off a peer that trickles its ClientHello a byte at a time (a deadline, not an idle timer)', async () => {
    const { port } = await tlsServer({ handshakeTimeout: 300 });
    const slow = createConnection({ host: '127.0.0.1', port });
    slow.on('error', () => {});
    slow.resume();
    // A handshake record that announces 16 KiB, then its body a byte every 100 ms.
    slow.write(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00]));
    const drip = setInterval(() => slow.write(Buffer.from([0x01])), 100);
    const started = Date.now();
    const guard = setTimeout(() => slow.destroy(new Error('still open after 3 s')), 3000);
    await new Promise((resolve) => slow.once('close', resolve));
    clearInterval(drip);
    clearTimeout(guard);
    assert.equal(slow.errored, null, `closed by the server, not by the guard (after ${Date.now() - started} ms)`);
  });
});

describe('TCP keepalive on the client', () => {
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
    await new Promise((r) => setTimeout(r, 1500));
    client.destroy();
    await watching;
    // With backoff: 50, 100, 200, 400, 800 ms (plus 20 ms idle each) is at most 5 attempts in 1.5 s.
    // Reset after every successful hello, it is 50 ms each time: about 20.
    assert.ok(delays.length <= 6, `${delays.length} reconnections in 1.5 s, delays ${delays.join(', ')}`);
    assert.ok(delays.at(-1)! > 50, `the delay grows: ${delays.join(', ')}`);
  });
});
