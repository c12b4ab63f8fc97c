/**
 * Server-pushed events of the extended protocol over real sockets
 * (docs/PROTOCOL.md §10): subscriptions as iterators and callbacks, `*` and
 * prefixed names, unsubscribe and dispose, the end of a connection, the
 * base framing, and the overflow policy for slow subscribers on both sides.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, IpcborError, serve, type Server } from '../../src/index.js';
import { createTimer, type EchoFired } from '../../examples/timer/timer.js';
import { tempSocket } from '../helpers.js';
import { RawExtended, deferred, payloadOf, rejectsWith, waitFor } from '../extended-helpers.js';

const unix = () => `unix:${tempSocket()}`;
const echo = (message: string) => ({ req: { message, delayMs: 0 } });
const fired = (message: string): EchoFired => ({ eventType: 'on_echo_fired', payload: { message, echoCount: 1 } });

describe('extended protocol: events of a service (the timer)', () => {
  let server: Server;
  let address: string;
  before(async () => {
    server = await serve(createTimer('ipc-server'), unix());
    address = server.addresses[0]!;
  });
  after(() => server.close());

  it('delivers on_echo_fired to a subscribed client when any client calls echo (async iterator)', async () => {
    await using subscriber = await connect(address);
    await using caller = await connect(address);
    const sub = subscriber.subscribe<EchoFired>('on_echo_fired');
    await sub.ready;
    const events = sub[Symbol.asyncIterator]();
    await caller.call('echo', echo('hi'));
    assert.deepEqual(await events.next(), { value: { name: 'on_echo_fired', payload: fired('hi') }, done: false });
    await subscriber.call('echo', echo('mine too'));
    assert.deepEqual((await events.next()).value, { name: 'on_echo_fired', payload: fired('mine too') });
    await sub.unsubscribe();
    assert.deepEqual(await events.next(), { value: undefined, done: true });
  });

  it('calls a listener with the payload and the name instead (callback)', async () => {
    await using subscriber = await connect(address);
    await using caller = await connect(address);
    const got = deferred<{ payload: EchoFired; name: string }>();
    const sub = subscriber.subscribe<EchoFired>('on_echo_fired', (payload, name) => got.resolve({ payload, name }));
    await sub.ready;
    await caller.call('echo', echo('by callback'));
    assert.deepEqual(await got.promise, { payload: fired('by callback'), name: 'on_echo_fired' });
    await sub.unsubscribe();
  });

  it('delivers to "*" under the name it is subscribed by (the default service\'s bare name), and to the prefixed name under that name', async () => {
    await using star = await connect(address);
    await using prefixed = await connect(address);
    const all: [string, unknown][] = [];
    const byPrefix: [string, unknown][] = [];
    await star.subscribe('*', (payload, name) => all.push([name, payload])).ready;
    await prefixed.subscribe('timer.on_echo_fired', (payload, name) => byPrefix.push([name, payload])).ready;
    await star.call('echo', echo('everyone'));
    await prefixed.call('version'); // a round trip: the event was sent before its answer
    assert.deepEqual(all, [['on_echo_fired', fired('everyone')]]);
    assert.deepEqual(byPrefix, [['timer.on_echo_fired', fired('everyone')]]);
  });

  it('delivers to each of a connection\'s subscriptions under its own name', async () => {
    await using client = await connect(address);
    const bare: string[] = [];
    const prefixed: string[] = [];
    const all: string[] = [];
    await Promise.all([
      client.subscribe('on_echo_fired', (_p, name) => bare.push(name)).ready,
      client.subscribe('timer.on_echo_fired', (_p, name) => prefixed.push(name)).ready,
      client.subscribe('*', (_p, name) => all.push(name)).ready,
    ]);
    await client.call('echo', echo('three ways'));
    await client.call('version');
    assert.deepEqual({ bare, prefixed, all }, { bare: ['on_echo_fired'], prefixed: ['timer.on_echo_fired'], all: ['on_echo_fired'] });
  });

  it('sends nothing more once unsubscribed (raw frames)', async () => {
    const raw = await RawExtended.open(address);
    try {
      raw.send([1, 1, '$ipcbor.subscribe'], { event: 'on_echo_fired' });
      const ok = await raw.next();
      assert.deepEqual([ok.head, payloadOf(ok)], [[4, 1], null]);
      raw.send([1, 2, 'echo'], echo('before'));
      const event = await raw.next();
      assert.deepEqual(event.head, [9, 'timer.on_echo_fired', 0, 'on_echo_fired'], 'one frame naming the event and the bare alias it was subscribed by');
      assert.deepEqual(payloadOf(event), fired('before'));
      assert.deepEqual((await raw.next()).head, [4, 2]);
      raw.send([1, 3, '$ipcbor.unsubscribe'], { event: 'on_echo_fired' });
      assert.deepEqual((await raw.next()).head, [4, 3]);
      raw.send([1, 4, 'echo'], echo('after'));
      assert.deepEqual((await raw.next()).head, [4, 4], 'the answer, with no EVENT before it');
      assert.equal(raw.frames.length, 0);
    } finally {
      raw.destroy();
    }
  });
});

describe('extended protocol: server.emit and subscription lifetimes', () => {
  let server: Server;
  let address: string;
  before(async () => {
    server = await serve({ ping: () => 'pong' }, unix(), { eventQueue: 10 });
    address = server.addresses[0]!;
  });
  after(() => server.close());

  it('sends server.emit(name, payload) to every subscribed connection and says how many', async () => {
    await using a = await connect(address);
    await using b = await connect(address);
    await using other = await connect(address);
    const gotA: unknown[] = [];
    const gotB: unknown[] = [];
    await a.subscribe('tick', (p) => gotA.push(p)).ready;
    await b.subscribe('tick', (p) => gotB.push(p)).ready;
    await other.subscribe('tock', () => assert.fail('not subscribed to tick')).ready;
    assert.equal(server.emit('tick', { n: 1, bytes: Uint8Array.of(1, 2, 3) }), 2);
    assert.equal(server.emit('tick'), 2, 'no payload: null');
    assert.equal(server.emit('nobody-listens', 1), 0);
    await Promise.all([a.call('ping'), b.call('ping'), other.call('ping')]);
    assert.deepEqual(gotA, [{ n: 1, bytes: Uint8Array.of(1, 2, 3) }, null]);
    assert.deepEqual(gotB, gotA);
  });

  it('stops delivery on unsubscribe, on dispose and on break, and ends a waiting iterator', async () => {
    await using client = await connect(address);
    // unsubscribe() while a for-await loop waits: the loop ends.
    const sub = client.subscribe<number>('tick');
    await sub.ready;
    const loop = (async () => {
      const got: number[] = [];
      for await (const e of sub) got.push(e.payload);
      return got;
    })();
    server.emit('tick', 1);
    await client.call('ping');
    await sub.unsubscribe();
    assert.deepEqual(await loop, [1]);
    assert.equal(sub.closed, true);
    assert.equal(server.emit('tick', 2), 0, 'the server stopped sending it to this connection');
    await sub.unsubscribe(); // twice is fine

    // `using`: disposed at the end of the block.
    let calls = 0;
    {
      using disposable = client.subscribe('tick', () => calls++);
      await disposable.ready;
      assert.equal(server.emit('tick', 3), 1);
      await client.call('ping');
    }
    await client.call('ping'); // the unsubscribe went out before this call
    assert.equal(server.emit('tick', 4), 0);
    assert.equal(calls, 1);

    // `break` out of the iterator unsubscribes too.
    const broken = client.subscribe('tick');
    await broken.ready;
    server.emit('tick', 5);
    for await (const e of broken) {
      assert.equal(e.payload, 5);
      break;
    }
    assert.equal(broken.closed, true, 'ended locally at once');
    await client.call('ping'); // the unsubscribe went out before this call
    assert.equal(server.emit('tick', 6), 0);

    // Two subscriptions to one name: dropping one keeps the other.
    const one: unknown[] = [];
    const two: unknown[] = [];
    const s1 = client.subscribe('tick', (p) => one.push(p));
    const s2 = client.subscribe('tick', (p) => two.push(p));
    await Promise.all([s1.ready, s2.ready]);
    await s1.unsubscribe();
    assert.equal(server.emit('tick', 7), 1);
    await client.call('ping');
    assert.deepEqual([one, two], [[], [7]]);
    await s2.unsubscribe();
  });

  it('ends subscriptions with IPCBOR_ERR_CONNECTION_CLOSED when the connection closes, after the events already queued', async () => {
    const local = await serve({ ping: () => 'pong' }, unix());
    const client = await connect(local.addresses[0]!);
    const queued = client.subscribe<number>('tick');
    const waiting = client.subscribe<number>('tick');
    const listening = client.subscribe('tick', () => {});
    await Promise.all([queued.ready, waiting.ready, listening.ready]);
    assert.equal(local.emit('tick', 1), 1);
    local.emit('tick', 2);
    await client.call('ping'); // both events came before this answer
    const reader = waiting[Symbol.asyncIterator]();
    assert.deepEqual((await reader.next()).value, { name: 'tick', payload: 1 });
    assert.deepEqual((await reader.next()).value, { name: 'tick', payload: 2 });
    const pending = reader.next();
    local.destroy();
    await rejectsWith(pending, 'IPCBOR_ERR_CONNECTION_CLOSED');
    const it = queued[Symbol.asyncIterator]();
    assert.deepEqual((await it.next()).value, { name: 'tick', payload: 1 });
    assert.deepEqual((await it.next()).value, { name: 'tick', payload: 2 });
    await rejectsWith(it.next(), 'IPCBOR_ERR_CONNECTION_CLOSED');
    assert.ok(queued.closed && waiting.closed && listening.closed);
    await client.closed;
    assert.throws(() => client.subscribe('tick'), (e: IpcborError) => e.code === 'IPCBOR_ERR_CONNECTION_CLOSED');
  });

  it('refuses to subscribe over the base framing with IPCBOR_ERR_NOT_SUPPORTED', async () => {
    await using base = await connect(address, { protocol: 'base' });
    assert.throws(() => base.subscribe('tick'), (e: IpcborError) => e.code === 'IPCBOR_ERR_NOT_SUPPORTED');
    await using plain = await serve({ ping: () => 'pong' }, unix(), { extended: false });
    await using fallback = await connect(plain.addresses[0]!);
    assert.equal(fallback.protocol, 'base');
    assert.throws(() => fallback.subscribe('*', () => {}), (e: IpcborError) => e.code === 'IPCBOR_ERR_NOT_SUPPORTED');
    assert.equal(plain.emit('tick', 1), 0, 'base-framing connections never get events');
  });

  it('lets a subscription succeed after an earlier subscribe to that name failed', async () => {
    const release = deferred();
    const holding = deferred();
    const local = await serve(
      {
        hold: async () => {
          holding.resolve();
          await release.promise;
          return 'held';
        },
        ping: () => 'pong',
      },
      unix(),
      { maxInflight: 1 },
    );
    // Every call, $ipcbor.subscribe included, times out after 1 s. The first
    // subscribe fails because the server, at maxInflight, does not read it
    // until the held call ends (which the test holds past that); any
    // transient failure of that call would do. The second is answered at
    // once, well within its second.
    const client = await connect(local.addresses[0]!, { timeout: 1000 });
    try {
      const held = client.call('hold', {}, { timeout: 5000 });
      held.catch(() => {});
      await holding.promise; // the server reads nothing more until it ends
      const first = client.subscribe('tick');
      await assert.rejects(first.ready, IpcborError);
      release.resolve();
      assert.equal(await held, 'held');
      const second = client.subscribe<number>('tick');
      await second.ready;
      local.emit('tick', 1);
      assert.deepEqual((await second[Symbol.asyncIterator]().next()).value, { name: 'tick', payload: 1 });
    } finally {
      client.destroy();
      local.destroy();
    }
  });
});

describe('extended protocol: slow subscribers (overflow policy)', () => {
  const blob = 'x'.repeat(256);

  it('bounds what it queues for a subscriber that stops reading, while another subscriber gets every event', async () => {
    const N = 50_000;
    await using server = await serve({ ping: () => 'pong' }, unix(), { eventQueue: 10 });
    const address = server.addresses[0]!;
    // The slow one speaks the protocol by hand, subscribes, then stops reading.
    const slow = await RawExtended.open(address);
    try {
      slow.send([1, 1, '$ipcbor.subscribe'], { event: 'tick' });
      assert.deepEqual((await slow.next()).head, [4, 1]);
      slow.pause();

      await using fast = await connect(address);
      const seqs: number[] = [];
      const fastSub = fast.subscribe<{ seq: number; blob: string }>('tick', (p) => seqs.push(p.seq));
      await fastSub.ready;
      // Emit in batches, letting the fast subscriber (in this same process) read between them.
      for (let seq = 0; seq < N; ) {
        const end = Math.min(N, seq + 1000);
        for (; seq < end; seq++) assert.equal(server.emit('tick', { seq, blob }), 2);
        await waitFor(() => seqs.length === end, `the fast subscriber to get ${end} events`);
      }
      assert.equal(fastSub.dropped, 0);
      for (let i = 0; i < N; i++) if (seqs[i] !== i) assert.fail(`fast subscriber: event ${i} is ${seqs[i]}`);
      assert.equal(await fast.call('ping'), 'pong', 'the server is not held up');

      // The slow one reads again: what it gets, plus what it is told was dropped, is every event.
      slow.resume();
      let delivered = 0;
      let dropped = 0;
      let prev = -1;
      let firstDrop = -1;
      while (delivered + dropped < N) {
        const frame = await slow.next();
        assert.equal(frame.head[0], 9);
        assert.equal(frame.head[1], 'tick');
        const d = (frame.head[2] as number | undefined) ?? 0;
        const { seq } = payloadOf(frame) as { seq: number };
        assert.equal(seq, prev + 1 + d, 'the dropped count is exactly the gap before this event');
        if (d > 0 && firstDrop < 0) firstDrop = delivered;
        prev = seq;
        dropped += d;
        delivered++;
      }
      assert.equal(prev, N - 1, 'the newest event is never dropped');
      assert.ok(firstDrop > 0, 'what was already written is delivered, then an EVENT head carries the dropped count');
      assert.ok(dropped > N / 2, `most events were dropped (${dropped}) rather than queued`);
      assert.ok(slow.bytes < 6 * 1024 * 1024, `the server queued a bounded amount for the slow reader (${slow.bytes} bytes of ${N * 290})`);
      assert.equal(delivered + dropped, N);
    } finally {
      slow.destroy();
    }
  });

  it('reports events the server dropped to the client\'s subscription through dropped and onDrop', async () => {
    const N = 20_000;
    await using server = await serve({ ping: () => 'pong' }, unix(), { eventQueue: 10 });
    await using client = await connect(server.addresses[0]!);
    const seqs: number[] = [];
    const drops: number[] = [];
    const sub = client.subscribe<{ seq: number }>('tick', (p) => seqs.push(p.seq));
    sub.onDrop = (n) => drops.push(n);
    await sub.ready;
    // One synchronous burst: this process cannot read the client's socket meanwhile.
    for (let seq = 0; seq < N; seq++) server.emit('tick', { seq, blob });
    await waitFor(() => seqs.length + sub.dropped === N, 'every event delivered or counted as dropped');
    assert.ok(sub.dropped > 0);
    assert.ok(drops.length > 0 && drops.every((n) => n > 0));
    assert.equal(drops.reduce((a, b) => a + b, 0), sub.dropped);
    assert.equal(seqs.at(-1), N - 1);
    assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'in order');
    assert.equal(await client.call('ping'), 'pong');
  });

  it('drops the oldest events of a subscription whose iterator falls behind (client eventQueue)', async () => {
    await using server = await serve({ ping: () => 'pong' }, unix());
    await using client = await connect(server.addresses[0]!, { eventQueue: 5 });
    const sub = client.subscribe<{ seq: number }>('tick');
    const drops: number[] = [];
    sub.onDrop = (n) => drops.push(n);
    await sub.ready;
    for (let seq = 0; seq < 20; seq++) server.emit('tick', { seq });
    await client.call('ping'); // the events came before this answer
    assert.equal(sub.dropped, 15);
    assert.equal(drops.length, 15);
    assert.ok(drops.every((n) => n === 1));
    const events = sub[Symbol.asyncIterator]();
    const got: number[] = [];
    for (let i = 0; i < 5; i++) got.push((await events.next()).value!.payload.seq);
    assert.deepEqual(got, [15, 16, 17, 18, 19], 'the newest five');
    server.emit('tick', { seq: 20 });
    assert.equal((await events.next()).value!.payload.seq, 20, 'and it goes on');
    await sub.unsubscribe();
  });
});
