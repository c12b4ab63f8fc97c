/** The event loop over real sockets: every event type, replies now and later, write to one connection. */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { connect, createLoop, serve, type LoopEvent } from '../../src/index.js';
import { rejectsWith, waitFor } from '../extended-helpers.js';
import { RawReader, rawConnect, tempSocket } from '../helpers.js';
import { golden, hex, toHex } from '../fixtures/golden.js';

/** The next event of a given type (others before it are returned too, in order). */
async function until<T extends LoopEvent['type']>(loop: ReturnType<typeof createLoop>, type: T, seen: LoopEvent[] = []): Promise<Extract<LoopEvent, { type: T }>> {
  for (let i = 0; i < 100; i++) {
    const ev = await loop.wait(5000);
    seen.push(ev);
    if (ev.type === type) return ev as Extract<LoopEvent, { type: T }>;
    if (ev.type === 'timer') break;
  }
  assert.fail(`no ${type} event (saw ${seen.map((e) => e.type).join(', ')})`);
}

describe('event loop', () => {
  it('yields connection, message and disconnection; a message is answered now', async () => {
    await using loop = createLoop();
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    const client = await connect(address!);
    const conn = await until(loop, 'connection');
    assert.equal(conn.connection.info.protocol, 'extended');
    const answer = client.call('add', { a: 2, b: 3 });
    const msg = await until(loop, 'message');
    assert.equal(msg.message.method, 'add');
    assert.equal(msg.connection, conn.connection, 'the same connection object');
    const p = msg.message.params() as { a: number; b: number };
    msg.message.reply(p.a + p.b);
    assert.equal(await answer, 5);
    client.destroy();
    const gone = await until(loop, 'disconnection');
    assert.equal(gone.connection, conn.connection);
    assert.equal(gone.reason, undefined, 'a clean close carries no error');
  });

  it('a message may be answered later, or failed with a code; notifications are one-way', async () => {
    await using loop = createLoop();
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    await using client = await connect(address!);
    await until(loop, 'connection');
    const first = client.call('slow');
    const second = client.call('bad');
    client.notify('log', { line: 'x' });
    const kept = (await until(loop, 'message')).message;
    const bad = (await until(loop, 'message')).message;
    const note = (await until(loop, 'message')).message;
    assert.deepEqual([kept.method, bad.method, note.method, note.oneWay, kept.oneWay], ['slow', 'bad', 'log', true, false]);
    bad.fail(new Error('no such thing'));
    await rejectsWith(second, 'IPCBOR_ERR_HANDLER');
    note.reply(null);
    kept.reply('at last');
    assert.equal(await first, 'at last');
    assert.equal(kept.done, true);
  });

  it('yields timer when nothing happens within the timeout', async () => {
    await using loop = createLoop();
    const t0 = Date.now();
    assert.deepEqual(await loop.wait(30), { type: 'timer' });
    assert.ok(Date.now() - t0 >= 25);
  });

  it('delivers an added stream as external events, null at its end; remove() stops it', async () => {
    await using loop = createLoop();
    const input = new PassThrough();
    loop.add(input);
    input.write('line 1\n');
    const ev = await until(loop, 'external');
    assert.equal(ev.source, input);
    assert.equal(String(ev.data), 'line 1\n');
    input.end('line 2\n');
    const more = await until(loop, 'external');
    assert.equal(String(more.data), 'line 2\n');
    const end = await until(loop, 'external');
    assert.equal(end.data, null);
    const other = new PassThrough();
    loop.add(other);
    loop.remove(other);
    other.write('ignored');
    assert.deepEqual(await loop.wait(30), { type: 'timer' });
  });

  it('reports a failing external source as an error event', async () => {
    await using loop = createLoop();
    const input = new PassThrough();
    loop.add(input);
    input.destroy(new Error('disk gone'));
    const ev = await until(loop, 'error');
    assert.match(ev.error.message, /disk gone/);
  });

  it('write() sends an event to one connection only', async () => {
    await using loop = createLoop();
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    await using a = await connect(address!);
    await using b = await connect(address!);
    const gotA: unknown[] = [];
    const gotB: unknown[] = [];
    await a.subscribe('*', (p) => gotA.push(p)).ready;
    await b.subscribe('*', (p) => gotB.push(p)).ready;
    const who = a.call('who');
    const m = await until(loop, 'message');
    loop.write(m.connection, 'note', { to: 'a' });
    m.message.reply(null);
    // The event left before the answer, on the same connection.
    await who;
    assert.deepEqual(gotA, [{ to: 'a' }]);
    assert.equal(await b.call('$ipcbor.describe').then(() => gotB.length), 0);
    assert.equal(loop.emit('note', 'all'), 2);
  });

  it('answers $ipcbor.describe itself, and runs the methods of `handlers` without the loop', async () => {
    await using loop = createLoop({ handlers: { version: () => 'v1' } });
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    await using client = await connect(address!);
    assert.equal(await client.call('version'), 'v1');
    const d = (await client.call('$ipcbor.describe')) as { methods: string[] };
    assert.deepEqual(d.methods, ['version']);
    const other = client.call('other');
    const m = await until(loop, 'message');
    assert.equal(m.message.method, 'other');
    m.message.reply(1);
    assert.equal(await other, 1);
  });

  it('serves a base-framing client byte for byte', async () => {
    await using loop = createLoop();
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    const base = await rawConnect(address!);
    try {
      const r = new RawReader(base);
      base.write(hex(golden.versionRequest));
      const m = await until(loop, 'message');
      assert.equal(m.connection.info.protocol, 'base');
      m.message.reply('nim-timer v0.1.0');
      assert.equal(toHex((await r.response()).bytes), toHex(hex(golden.versionResponse)));
    } finally {
      base.destroy();
    }
  });

  it('connects to other servers; their closing is a disconnection', async () => {
    const server = await serve({ ping: () => 'pong' }, `unix:${tempSocket()}`);
    await using loop = createLoop();
    const client = await loop.connect(server.addresses[0]!);
    assert.equal(await client.call('ping'), 'pong');
    await server.close();
    const gone = await until(loop, 'disconnection');
    assert.equal(gone.connection.info.transport, 'client');
  });

  it('a message cancelled while waiting in the loop is skipped', async () => {
    await using loop = createLoop();
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    await using client = await connect(address!);
    await until(loop, 'connection');
    const ac = new AbortController();
    const call = client.call('never', {}, { signal: ac.signal });
    await waitFor(() => loop.pending > 0, 'the message to arrive');
    ac.abort();
    await rejectsWith(call, 'IPCBOR_ERR_CANCELLED');
    // A round trip the loop answers by itself: the CANCEL before it has arrived.
    await client.call('$ipcbor.describe');
    const live = client.call('live');
    const m = await until(loop, 'message');
    assert.equal(m.message.method, 'live', 'the cancelled one was never handed out');
    m.message.reply(true);
    await live;
  });

  it('async iteration yields the events and ends when the loop closes', async () => {
    const loop = createLoop();
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    const client = await connect(address!);
    const types: string[] = [];
    const done = (async () => {
      for await (const ev of loop) {
        types.push(ev.type);
        if (ev.type === 'message') ev.message.reply('ok');
      }
    })();
    assert.equal(await client.call('x'), 'ok');
    client.destroy();
    await waitFor(() => types.includes('disconnection'), 'the disconnection');
    await loop.close();
    await done;
    assert.deepEqual(types, ['connection', 'message', 'disconnection']);
  });

  it('bounds what waits: a connection whose messages pile up is no longer read', async () => {
    await using loop = createLoop({ maxConnectionBytes: 16 * 1024 });
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    await using client = await connect(address!);
    const calls = Array.from({ length: 500 }, (_, i) => client.call('n', { i }));
    await until(loop, 'connection');
    await waitFor(() => loop.pending > 0, 'messages');
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(loop.pending < 150, `only what fits the budget waits (${loop.pending} of 500)`);
    let answered = 0;
    while (answered < 500) {
      const ev = await loop.wait(5000);
      assert.equal(ev.type, 'message');
      if (ev.type === 'message') {
        ev.message.reply(answered++);
      }
    }
    assert.equal((await Promise.all(calls)).length, 500);
  });
});
