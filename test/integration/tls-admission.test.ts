/**
 * Admission to the TLS handshake: connections still in their handshake have
 * their own allowance (tls.maxHandshakes), apart from maxConnections; past
 * it a new connection closes the oldest handshake. An attacker holding
 * every handshake slot with raw TCP sockets (silent, or half a
 * ClientHello) must not keep a mutual-TLS client out. Real sockets on
 * 127.0.0.1; every step waits for the server's own doing (an attacker
 * socket it closed), never for time to pass.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_MAX_HANDSHAKES } from '../../src/core/constants.js';
import { connect, serve, type Server, type ServeOptions } from '../../src/index.js';
import { rejectsWith, waitFor } from '../extended-helpers.js';
import { certs, type Certs } from '../tls-helpers.js';

let c: Certs;
before(() => {
  c = certs();
});

const servers: Server[] = [];
const attackers: Attacker[] = [];
after(async () => {
  for (const a of attackers) a.destroy();
  await Promise.all(servers.map((s) => s.close()));
});

const handlers = { echo: (p: unknown) => p };

/** No handshake times out while a test runs: every socket the server closes, it closed to admit another. */
const NO_TIMEOUT = 600_000;

async function tlsServer(tls: Partial<NonNullable<ServeOptions['tls']>> = {}, more: ServeOptions = {}): Promise<{ server: Server; address: string; port: number }> {
  const server = await serve(handlers, 'tls:127.0.0.1:0', { tls: { cert: c.server.cert, key: c.server.key, handshakeTimeout: NO_TIMEOUT, ...tls }, ...more });
  servers.push(server);
  const address = server.addresses[0]!;
  return { server, address, port: Number(address.slice(address.lastIndexOf(':') + 1)) };
}

/** A TLS record announcing a 512-byte ClientHello, and its first few bytes: the server waits for the rest. */
const HALF_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

/** Raw TCP sockets that never finish a handshake, opened one at a time; counts those the server closed. */
class Attacker {
  readonly open = new Set<Socket>();
  closed = 0;

  constructor(private readonly port: number) {
    attackers.push(this);
  }

  /** Open one more (connected before this returns): silent, or with half a ClientHello. */
  async dial(half: boolean): Promise<void> {
    const s = createConnection({ host: '127.0.0.1', port: this.port });
    s.on('error', () => {});
    await once(s, 'connect');
    s.resume();
    if (half) s.write(HALF_HELLO);
    this.open.add(s);
    s.once('close', () => {
      if (this.open.delete(s)) this.closed++;
    });
  }

  /** Open `n`, alternately silent and half a hello. */
  async dialMany(n: number): Promise<void> {
    for (let i = 0; i < n; i++) await this.dial(i % 2 === 1);
  }

  /** Wait until the server has closed `n` of them in all. */
  closedReaches(n: number, what: string): Promise<void> {
    return waitFor(() => this.closed >= n, `${what} (${n} attacker sockets closed by the server, ${this.closed} so far)`);
  }

  destroy(): void {
    for (const s of this.open) s.destroy();
  }
}

const alice = () => ({ tls: { ca: c.ca, cert: c.alice.cert, key: c.alice.key } });

describe('TLS connections in their handshake', () => {
  it('an attacker holding every handshake slot does not keep a mutual-TLS client out: 25 of 25', async () => {
    const H = 16;
    const { address, port } = await tlsServer({ clientCa: c.ca, maxHandshakes: H });
    const attacker = new Attacker(port);
    // H + 1 sockets: the last one closes the first, so the server has
    // accepted them all and holds H, every slot, before the client dials.
    await attacker.dialMany(H + 1);
    await attacker.closedReaches(1, 'the first attacker socket closed for the last');
    assert.equal(attacker.open.size, H);
    let evicted = 1;
    let served = 0;
    for (let round = 0; round < 25; round++) {
      const client = await connect(address, alice());
      assert.deepEqual(await client.call('echo', { round }), { round });
      assert.equal(client.peer?.subject.CN, 'localhost');
      await client.close();
      served++;
      // The client's connection took the oldest attacker's slot.
      await attacker.closedReaches(++evicted, `round ${round}: the client's connection closed the oldest handshake`);
      // The attacker takes the freed slot back, and one more, to see the
      // server has accepted both: it closes the oldest again.
      await attacker.dialMany(2);
      await attacker.closedReaches(++evicted, `round ${round}: the attacker refilled every slot`);
      assert.equal(attacker.open.size, H, 'the attacker holds every slot again');
    }
    assert.equal(served, 25);
    assert.equal(attacker.closed, 1 + 2 * 25, 'the server closed attacker sockets only to admit others');
  });

  it('are not counted in maxConnections, and never close a connection whose handshake is done', async () => {
    const { server, address, port } = await tlsServer({ maxHandshakes: 4 }, { maxConnections: 2 });
    const attacker = new Attacker(port);
    await attacker.dialMany(5);
    await attacker.closedReaches(1, 'the handshake slots full');
    // Both connection slots are free for clients: the handshakes held do not count there.
    const a = await connect(address, { tls: { ca: c.ca } });
    const b = await connect(address, { tls: { ca: c.ca } });
    assert.equal(server.connections, 2);
    // The first client closed the oldest handshake; the second found a slot free.
    await attacker.closedReaches(2, 'the first client admitted');
    // A flood of handshakes closes handshakes, not the connections that finished theirs.
    await attacker.dialMany(40);
    await attacker.closedReaches(45 - 4, 'the flood admitted');
    assert.equal(attacker.open.size, 4);
    assert.deepEqual(await a.call('echo', 'a'), 'a');
    assert.deepEqual(await b.call('echo', 'b'), 'b');
    assert.equal(server.connections, 2);
    // maxConnections counts the connections whose handshake is done: a third is refused.
    await rejectsWith(connect(address, { tls: { ca: c.ca } }), 'IPCBOR_ERR_OVERLOADED');
    await a.close();
    await b.close();
  });

  it(`hold at most tls.maxHandshakes (default ${DEFAULT_MAX_HANDSHAKES}) silent peers; close() closes those still in their handshake`, async () => {
    const { server, address, port } = await tlsServer();
    const attacker = new Attacker(port);
    const flood = DEFAULT_MAX_HANDSHAKES + 50;
    await attacker.dialMany(flood);
    await attacker.closedReaches(50, 'the oldest of the flood closed');
    assert.equal(attacker.open.size, DEFAULT_MAX_HANDSHAKES);
    const client = await connect(address, { tls: { ca: c.ca } });
    assert.deepEqual(await client.call('echo', 1), 1);
    await client.close();
    await server.close();
    await attacker.closedReaches(flood, 'close() closed every handshake under way');
    assert.equal(attacker.open.size, 0);
  });

  it('refuses a tls.maxHandshakes that is not a positive integer', async () => {
    for (const maxHandshakes of [0, -1, 1.5, Number.NaN]) {
      await rejectsWith(serve(handlers, 'tls:127.0.0.1:0', { tls: { cert: c.server.cert, key: c.server.key, maxHandshakes } }), 'IPCBOR_ERR_INVALID_ADDRESS');
    }
  });
});
