/** The client's close() against its server, as a careful user would use it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createClient } from '../../src/core/client/client.js';
import { ServerCore, type Servable } from '../../src/core/server/server.js';
import { MemoryTransport } from '../memory-transport.js';

async function pair(handlers: Servable) {
  const core = new ServerCore(handlers);
  const [c, s] = MemoryTransport.pair();
  s.attach(core.accept(s, { transport: 'memory' })!);
  const client = await createClient(async () => c, 'memory', { closeTimeout: 200 });
  return { core, client };
}

const within = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => 'settled', () => 'settled'), new Promise((r) => setTimeout(() => r('pending'), ms))]);

describe('client close()', () => {
  it('settles within closeTimeout when a result stream was never read', async () => {
    const { client, core } = await pair({
      endless: async function* () {
        for (let i = 0; ; i++) yield i;
      },
    });
    const stream = await client.call<AsyncIterable<number>>('endless');
    void stream;
    assert.equal(await within(client.close(), 3000), 'settled');
    client.destroy();
    core.destroy();
  });
});
