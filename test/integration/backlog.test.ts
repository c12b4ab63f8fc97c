/** A burst of connects on a unix socket with a short listen backlog: busy is not absent. */
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { describe, it } from 'node:test';
import { connect, serve, type Client } from '../../src/index.js';
import { tempSocket } from '../helpers.js';

const N = 400;

describe('listen backlog', () => {
  it('with a backlog of 4, a raw burst meets EAGAIN, and connect() retries it until every client is in', async () => {
    await using server = await serve({ ping: () => 'pong' }, `unix:${tempSocket()}`, { backlog: 4 });
    const path = server.addresses[0]!.slice('unix:'.length);
    // The condition exists: plain sockets in a burst are refused with EAGAIN.
    const raw = await Promise.all(
      Array.from({ length: N }, () => new Promise<string>((resolve) => {
        const s = createConnection(path);
        s.once('connect', () => (s.destroy(), resolve('ok')));
        s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      })),
    );
    const refused = raw.filter((r) => r === 'EAGAIN').length;
    assert.ok(refused > 0, `the burst should overflow a backlog of 4 (${refused} EAGAIN)`);
    // The same burst through connect(): every one gets in.
    const clients = await Promise.all(Array.from({ length: N }, () => connect(server.addresses[0]!, { connectTimeout: 60_000, protocol: 'base' })));
    try {
      assert.equal(clients.length, N);
      assert.equal(await clients[N - 1]!.call('ping'), 'pong');
    } finally {
      for (const c of clients as Client[]) c.destroy();
    }
  });
});
