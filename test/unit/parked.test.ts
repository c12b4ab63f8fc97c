/**
 * Parked calls (the lazy server's and the event loop's executor): a call
 * that ends while parked (cancelled, past its deadline) gives back its
 * budget at once, so nothing but the queue itself may hold it. The queue
 * must not then grow with ended calls, nor keep their payloads, for as long
 * as the application does not poll.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createClient } from '../../src/core/client/client.js';
import { IpcborError } from '../../src/core/errors.js';
import { ParkedCalls } from '../../src/core/server/parked.js';
import { ServerCore } from '../../src/core/server/server.js';
import { MemoryTransport } from '../memory-transport.js';
import { waitFor } from '../extended-helpers.js';

describe('parked calls', () => {
  it('calls that end while parked do not pile up in the queue, nor keep their payloads', async () => {
    const parked = new ParkedCalls();
    const core = new ServerCore({ echo: (p: unknown) => p }, { maxConnectionBytes: 1 << 20 }, parked.executor);
    const [c, s] = MemoryTransport.pair();
    s.attach(core.accept(s, { transport: 'memory' })!);
    const client = await createClient(async () => c, 'memory');
    const payload = new Uint8Array(32 * 1024);
    // 2,000 calls of 32 KiB (64 MB in all, far over the connection's
    // budget of 1 MiB), each past its deadline while it waits.
    for (let batch = 0; batch < 20; batch++) {
      const calls = Array.from({ length: 100 }, () =>
        client.call('echo', payload, { timeout: 1 }).then(
          () => assert.fail('not run'),
          (e: unknown) => assert.ok(e instanceof IpcborError),
        ),
      );
      await Promise.all(calls);
    }
    await waitFor(() => core.budget.held === 0, 'every call to end');
    assert.ok(parked.size <= 200, `${parked.size} ended calls still parked`);
    const held = parked.take();
    assert.equal(held.length, 0);
    await client.close();
  });
});
