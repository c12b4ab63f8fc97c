/** Event loop and lazy server: what a careful user, or an attacker, would try. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IpcborError, connect, createLoop, serveLazy } from '../../src/index.js';
import { rejectsWith } from '../extended-helpers.js';
import { tempSocket } from '../helpers.js';

describe('event loop, as a user would use it', () => {
  it('message.params() gives the same params every time it is called', async () => {
    await using loop = createLoop();
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    await using client = await connect(address!);
    const answer = client.call('add', { a: 2, b: 3 });
    let ev = await loop.wait(5000);
    while (ev.type !== 'message') ev = await loop.wait(5000);
    const first = ev.message.params() as { a: number; b: number };
    const again = ev.message.params() as { a: number; b: number } | undefined;
    assert.deepEqual(again, first);
    ev.message.reply(first.a + first.b);
    assert.equal(await answer, 5);
  });
});

describe('event loop, as an attacker would use it', () => {
  it('messages that end while queued (deadline, cancel) do not pile up in the loop', async () => {
    await using loop = createLoop();
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    const client = await connect(address!);
    const payload = new Uint8Array(16 * 1024);
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(Array.from({ length: 100 }, () => client.call('echo', payload, { timeout: 1 }).catch(() => undefined)));
    }
    // Answered by the loop itself, after every frame before it was read.
    await client.call('$ipcbor.describe');
    assert.ok(loop.pending <= 200, `${loop.pending} events queued for 1,000 calls that all ended`);
    client.destroy();
  });
});

describe('lazy server, as a user would use it', () => {
  it('nextMessage() settles when the server closes', async () => {
    const server = await serveLazy({ ping: () => 'pong' }, `unix:${tempSocket()}`);
    const next = server.nextMessage();
    await server.close();
    const outcome = await Promise.race([next.then(() => 'resolved', (e: unknown) => (e instanceof IpcborError ? e.code : 'other')), new Promise((r) => setTimeout(() => r('pending'), 2000))]);
    assert.equal(outcome, 'IPCBOR_ERR_SHUTTING_DOWN');
    await rejectsWith(server.nextMessage(), 'IPCBOR_ERR_SHUTTING_DOWN');
  });
});
