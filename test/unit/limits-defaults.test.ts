/**
 * README "Limits": each default checked against a server built with no
 * options at all (the memory transport: no socket needed).
 */
import type { ServerConnection } from '../../src/core/server/connection.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createClient } from '../../src/core/client/client.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { encodeRequest } from '../../src/core/frame/encoder.js';
import { FrameDecoder } from '../../src/core/frame/decoder.js';
import { ServerCore } from '../../src/core/server/server.js';
import { MemoryTransport } from '../memory-transport.js';
import { rejectsWith, waitFor } from '../extended-helpers.js';

async function pair() {
  const core = new ServerCore({ ping: () => 'pong', whoami: (_p: unknown, ctx: { connection: { id: number } }) => ctx.connection.id });
  const [c, s] = MemoryTransport.pair();
  s.attach(core.accept(s, { transport: 'memory' })!);
  const client = await createClient(async () => c, 'memory');
  return { core, client, c };
}

describe('README limits: the defaults', () => {
  it('the hello announces 16 MiB frames, a window of 64 and 1024 calls in flight', async () => {
    const { client } = await pair();
    assert.equal(client.server?.maxFrameBytes, 16 * 1024 * 1024);
    assert.equal(client.server?.window, 64);
    assert.equal(client.server?.maxInflight, 1024);
    await client.close();
  });

  it('256 subscriptions per connection, event names of 256 bytes', async () => {
    const { client } = await pair();
    await client.subscribe('x'.repeat(256)).ready;
    await rejectsWith(client.subscribe('y'.repeat(257)).ready, 'IPCBOR_ERR_INVALID_PARAMS');
    for (let i = 1; i < 256; i++) await client.subscribe(`e${i}`).ready;
    await rejectsWith(client.subscribe('one-too-many').ready, 'IPCBOR_ERR_OVERLOADED');
    client.destroy();
  });

  it('1024 events queued for a connection that does not read, the oldest dropped', async () => {
    const { core, client, c } = await pair();
    await client.subscribe('tick').ready;
    const conn = core.connection(await client.call<number>('whoami')) as ServerConnection;
    c.pause();
    // Big enough to back the transport up (1 MiB high-water mark), small enough to stay under 4 MiB queued.
    const blob = new Uint8Array(2048);
    for (let i = 0; i < 3000; i++) core.emit('tick', blob);
    assert.ok(conn.eventsDropped > 0, 'some were dropped');
    const queued = (conn as unknown as { eventBacklog: unknown[] }).eventBacklog.length;
    assert.equal(queued, 1024);
    client.destroy();
  });

  it('a method name of 256 bytes is taken, 257 refused', async () => {
    const core = new ServerCore({ ['m'.repeat(256)]: () => 'ok' });
    const [c, s] = MemoryTransport.pair();
    s.attach(core.accept(s, { transport: 'memory' })!);
    const answers: number[] = [];
    const decoder = new FrameDecoder('response', { response: (ret) => answers.push(ret) });
    c.attach({ onData: (b) => decoder.push(b), onDrain() {}, onClose() {} });
    for (const p of encodeRequest('m'.repeat(256), cbor.encode({}))) c.writeRaw(p);
    for (const p of encodeRequest('m'.repeat(257), cbor.encode({}))) c.writeRaw(p);
    await waitFor(() => answers.length === 2, 'two answers');
    assert.deepEqual(answers, [0, 1]);
  });
});
